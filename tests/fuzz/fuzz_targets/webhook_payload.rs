//! Meta's webhook body reader on any bytes, then what the receiver would read of the
//! result (each change's business event).
#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::webhooks::payload;

fuzz_target!(|body: &[u8]| {
    let mut problems = whatsapp_exporter::json::Problems::default();
    if let Ok(delivery) = payload::parse_delivery(body, &mut problems) {
        for change in &delivery.changes {
            let _ = change.event.business_event();
        }
    }
});
