//! Every On-Premises body parser on the same bytes, then the samples the poller makes of a
//! report that parsed.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::exposition::Samples;
use whatsapp_exporter::providers::onprem::{
    health_samples, payload, support_samples, SharedSeries,
};

fuzz_target!(|body: &[u8]| {
    let shared = SharedSeries {
        api_info: true,
        role: true,
    };
    let mut out = Samples::new("fuzz");
    if let Ok(report) = payload::parse_health(body) {
        health_samples(&mut out, &report, shared);
    }
    if let Ok(report) = payload::parse_support(body) {
        support_samples(
            &mut out,
            &report,
            shared,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
    }
    let _ = payload::parse_login(body);
    let _ = payload::envelope_errors(body);
});
