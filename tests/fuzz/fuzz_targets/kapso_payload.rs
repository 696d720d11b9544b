//! Kapso's health body and error body, then the samples the poller makes of a health that
//! parsed (as a legacy config's and as one of a Platform API target's numbers); and the
//! Platform API's phone number listing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::exposition::Samples;
use whatsapp_exporter::json::Problems;
use whatsapp_exporter::providers::kapso::{check_samples, health_samples, payload};
use whatsapp_exporter::providers::kapso_platform::payload::parse_phone_numbers_page;

fuzz_target!(|body: &[u8]| {
    if let Ok(health) = payload::parse_health(body) {
        let mut out = Samples::new("fuzz");
        health_samples(&mut out, &health);
        check_samples(&mut out, &health, Some("106540352242922"));
    }
    let _ = payload::parse_error(body);
    let _ = parse_phone_numbers_page(body, &mut Problems::default());
});
