//! 360dialog's health body and error envelope, and the rate-limit reading of the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::providers::dialog360::payload;

fuzz_target!(|body: &[u8]| {
    let _ = payload::parse_health_status_body(body, &mut whatsapp_exporter::json::Problems::default());
    if let Some(error) = payload::parse_error(body) {
        let _ = payload::is_rate_limit(&error);
        let _ = payload::rate_limit_window(&error);
    }
});
