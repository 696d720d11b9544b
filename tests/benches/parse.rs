//! Parsing of every upstream payload kind, from the example payloads in `tests/fixtures/`.
//!
//! `cargo bench --bench parse` (add `-- --warm-up-time 1 --measurement-time 2` for a short
//! run). Each benchmark reports its throughput in bytes of payload parsed.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use whatsapp_exporter::providers::{cloud_api, dialog360, kapso, onprem};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Benchmarks `parse` on the fixture at `path`, after checking that it parses.
fn bench<T, E: std::fmt::Debug>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    path: &str,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) {
    let body = fixture(path);
    if let Err(e) = parse(&body) {
        panic!("{path} does not parse: {e:?}");
    }
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(name, |b| b.iter(|| parse(black_box(&body))));
    g.finish();
}

fn onprem_payloads(c: &mut Criterion) {
    use onprem::payload::{parse_health, parse_login, parse_support};
    bench(
        c,
        "onprem",
        "health_single",
        "onprem/health_single.json",
        parse_health,
    );
    bench(
        c,
        "onprem",
        "health_ha",
        "onprem/health_ha.json",
        parse_health,
    );
    bench(
        c,
        "onprem",
        "health_multiconnect",
        "onprem/health_multiconnect.json",
        parse_health,
    );
    bench(
        c,
        "onprem",
        "support_single",
        "onprem/support_single.json",
        parse_support,
    );
    bench(
        c,
        "onprem",
        "support_ha",
        "onprem/support_ha.json",
        parse_support,
    );
    bench(
        c,
        "onprem",
        "support_multiconnect",
        "onprem/support_multiconnect.json",
        parse_support,
    );
    bench(c, "onprem", "login", "onprem/login.json", parse_login);
}

fn graph_payloads(c: &mut Criterion) {
    use cloud_api::payload::{
        parse_business_use_case_usage, parse_graph_error, parse_health_status_body,
        parse_phone_number, parse_phone_numbers_page, parse_templates_page,
    };

    // Meta's health_status body, as the Graph API answers it for a node (and 360dialog
    // relays it).
    bench(
        c,
        "graph",
        "health_status",
        "dialog360/health_status_limited.json",
        |b| parse_health_status_body(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "graph",
        "phone_number_v24",
        "graph/phone_number_v24.json",
        |b| parse_phone_number(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "graph",
        "phone_number_legacy",
        "graph/phone_number_legacy.json",
        |b| parse_phone_number(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "graph",
        "phone_numbers_page",
        "graph/phone_numbers_page.json",
        |b| parse_phone_numbers_page(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "graph",
        "templates_page",
        "graph/templates_page_1.json",
        |b| parse_templates_page(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(c, "graph", "error_80007", "graph/error_80007.json", |b| {
        parse_graph_error(b).ok_or("not a Graph error")
    });
    let header = r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":4,"total_cputime":2,"total_time":2,"estimated_time_to_regain_access":0}]}"#;
    let mut g = c.benchmark_group("graph");
    g.throughput(Throughput::Bytes(header.len() as u64));
    g.bench_function("business_use_case_usage_header", |b| {
        b.iter(|| parse_business_use_case_usage(black_box(header)))
    });
    g.finish();
}

fn provider_payloads(c: &mut Criterion) {
    use dialog360::payload::{parse_error, parse_health_status_body};
    bench(
        c,
        "dialog360",
        "health_status_available",
        "dialog360/health_status_available.json",
        |b| parse_health_status_body(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "dialog360",
        "health_status_blocked",
        "dialog360/health_status_blocked.json",
        |b| parse_health_status_body(b, &mut whatsapp_exporter::json::Problems::default()),
    );
    bench(
        c,
        "dialog360",
        "error_rate_limit",
        "dialog360/error_rate_limit.json",
        |b| parse_error(b).ok_or("not a 360dialog error"),
    );
    bench(
        c,
        "kapso",
        "health_healthy",
        "kapso/health_healthy.json",
        kapso::payload::parse_health,
    );
    bench(
        c,
        "kapso",
        "health_degraded",
        "kapso/health_degraded.json",
        kapso::payload::parse_health,
    );
    bench(
        c,
        "kapso",
        "health_error",
        "kapso/health_error.json",
        kapso::payload::parse_health,
    );
}

criterion_group!(benches, onprem_payloads, graph_payloads, provider_payloads);
criterion_main!(benches);
