//! Every Graph API (Cloud API) body parser on the same bytes, and the usage header parsers
//! on them read as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_exporter::providers::cloud_api::payload;

fuzz_target!(|body: &[u8]| {
    let _ = payload::parse_health_status_body(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_phone_number(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_phone_numbers_page(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_templates_page(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_waba(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_phone_numbers_by_id(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_subscribed_apps_page(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_wabas_page(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_debug_token(body, &mut whatsapp_exporter::json::Problems::default());
    let _ = payload::parse_graph_error(body);
    if let Ok(header) = std::str::from_utf8(body) {
        let _ = payload::parse_business_use_case_usage(header);
        let _ = payload::parse_app_usage(header);
        let _ = payload::regain_access_minutes(header);
    }
});
