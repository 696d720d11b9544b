//! Kapso's config health body and error body, then the samples the poller makes of a
//! health that parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::exposition::Samples;
use whatsapp_exporter::providers::kapso::{health_samples, payload};

fuzz_target!(|body: &[u8]| {
    if let Ok(health) = payload::parse_health(body) {
        let mut out = Samples::new("fuzz");
        health_samples(&mut out, &health);
    }
    let _ = payload::parse_error(body);
});
