//! Rendering: a target's samples (`exposition::Samples`) from parsed payloads, and
//! `render_families` (/probe) and `encode_families` (/metrics) over 1,000 targets in both
//! text formats.
//!
//! `cargo bench --bench render` (add `-- --warm-up-time 1 --measurement-time 2` for a short
//! run). The payloads are the example payloads in `tests/fixtures/`.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use whatsapp_exporter::exposition::{encode_families, render_families, Family, Format, Samples};
use whatsapp_exporter::providers::onprem::{self, SharedSeries};
use whatsapp_exporter::providers::{cloud_api, dialog360, kapso};
use whatsapp_exporter::upstream::Reason;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The parsed example payloads.
struct Payloads {
    health_ha: onprem::payload::HealthReport,
    support_ha: onprem::payload::SupportReport,
    health_single: onprem::payload::HealthReport,
    support_single: onprem::payload::SupportReport,
    phone: cloud_api::payload::PhoneNumber,
    dialog360: cloud_api::payload::HealthStatus,
    kapso: kapso::payload::KapsoHealth,
}

impl Payloads {
    fn load() -> Self {
        use onprem::payload::{parse_health, parse_support};
        Payloads {
            health_ha: parse_health(&fixture("onprem/health_ha.json")).expect("health_ha"),
            support_ha: parse_support(&fixture("onprem/support_ha.json")).expect("support_ha"),
            health_single: parse_health(&fixture("onprem/health_single.json")).expect("health"),
            support_single: parse_support(&fixture("onprem/support_single.json")).expect("support"),
            phone: cloud_api::payload::parse_phone_number(
                &fixture("graph/phone_number_v24.json"),
                &mut whatsapp_exporter::json::Problems::default(),
            )
            .expect("phone number"),
            dialog360: dialog360::payload::parse_health_status_body(
                &fixture("dialog360/health_status_limited.json"),
                &mut whatsapp_exporter::json::Problems::default(),
            )
            .expect("360dialog"),
            kapso: kapso::payload::parse_health(&fixture("kapso/health_degraded.json"))
                .expect("kapso"),
        }
    }
}

const HEALTH: SharedSeries = SharedSeries {
    api_info: true,
    role: true,
};
const SUPPORT: SharedSeries = SharedSeries {
    api_info: false,
    role: false,
};

/// The data of an On-Premises target: health, then support, as one poll leaves them.
fn onprem_samples(
    name: &str,
    health: &onprem::payload::HealthReport,
    support: &onprem::payload::SupportReport,
) -> [Samples; 2] {
    let mut h = Samples::new(name);
    onprem::health_samples(&mut h, health, HEALTH);
    let mut s = Samples::new(name);
    onprem::support_samples(&mut s, support, SUPPORT, SystemTime::now());
    [h, s]
}

/// The data of a `cloud_api` target with one phone number.
fn cloud_samples(name: &str, phone: &cloud_api::payload::PhoneNumber) -> Samples {
    let mut out = Samples::new(name);
    whatsapp_exporter::meta::phone_samples(&mut out, phone);
    let statuses: Vec<_> = phone.health_status.iter().collect();
    whatsapp_exporter::meta::messaging_samples(&mut out, &statuses);
    out
}

fn dialog360_samples(name: &str, health: &cloud_api::payload::HealthStatus) -> Samples {
    let mut out = Samples::new(name);
    whatsapp_exporter::meta::messaging_samples(&mut out, &[health]);
    out
}

fn kapso_samples(name: &str, health: &kapso::payload::KapsoHealth) -> Samples {
    let mut out = Samples::new(name);
    kapso::health_samples(&mut out, health);
    out
}

/// `whatsapp_target_info` and the poll series of a target polled once, as the poller
/// publishes them.
fn poll_samples(name: &str, kind: &str, endpoints: &[&str]) -> [Samples; 2] {
    let mut info = Samples::new(name);
    info.push(Family::TargetInfo, &[("type", kind)], 1.0);
    let mut poll = Samples::new(name);
    poll.push(Family::Up, &[], 1.0);
    for endpoint in endpoints {
        let labels = [("endpoint", *endpoint)];
        poll.push(Family::PollSuccess, &labels, 1.0);
        poll.push(Family::PollDuration, &labels, 0.004_215);
        poll.push(Family::LastPollSuccess, &labels, 1_763_700_000.123);
        for reason in Reason::ALL {
            poll.push(
                Family::PollErrors,
                &[("endpoint", endpoint), ("reason", reason.as_str())],
                0.0,
            );
        }
        poll.push(Family::UpstreamErrors, &labels, 0.0);
    }
    [info, poll]
}

fn target_samples(c: &mut Criterion) {
    let p = Payloads::load();
    let mut g = c.benchmark_group("samples");
    let bytes = |s: &[Samples]| s.iter().map(Samples::len).sum::<usize>() as u64;
    g.throughput(Throughput::Bytes(bytes(&onprem_samples(
        "wa-eu-prod",
        &p.health_ha,
        &p.support_ha,
    ))));
    g.bench_function("onprem_ha", |b| {
        b.iter(|| onprem_samples(black_box("wa-eu-prod"), &p.health_ha, &p.support_ha))
    });
    g.throughput(Throughput::Bytes(bytes(&[cloud_samples(
        "cloud-acme",
        &p.phone,
    )])));
    g.bench_function("cloud_api_one_number", |b| {
        b.iter(|| cloud_samples(black_box("cloud-acme"), &p.phone))
    });
    g.throughput(Throughput::Bytes(bytes(&[dialog360_samples(
        "sales",
        &p.dialog360,
    )])));
    g.bench_function("dialog360", |b| {
        b.iter(|| dialog360_samples(black_box("sales"), &p.dialog360))
    });
    g.throughput(Throughput::Bytes(bytes(&[kapso_samples(
        "support", &p.kapso,
    )])));
    g.bench_function("kapso", |b| {
        b.iter(|| kapso_samples(black_box("support"), &p.kapso))
    });
    g.throughput(Throughput::Bytes(bytes(&poll_samples(
        "wa-eu-prod",
        "onprem",
        &["health", "support"],
    ))));
    g.bench_function("poll_series_two_endpoints", |b| {
        b.iter(|| poll_samples(black_box("wa-eu-prod"), "onprem", &["health", "support"]))
    });
    g.finish();
}

/// 1,000 targets in the fleet's proportions: 100 On-Premises (single instance, health and
/// support), 300 each of dialog360, kapso and cloud_api (one number), each with its
/// target info and poll series.
fn thousand_targets(p: &Payloads) -> Vec<Samples> {
    let mut all = Vec::new();
    for i in 0..1000 {
        let (name, kind, endpoints): (String, &str, &[&str]) = match i % 10 {
            0 => (format!("onprem-{i}"), "onprem", &["health", "support"]),
            1..=3 => (format!("dialog360-{i}"), "dialog360", &["health_status"]),
            4..=6 => (format!("kapso-{i}"), "kapso", &["health"]),
            _ => (format!("cloud-{i}"), "cloud_api", &["health"]),
        };
        all.extend(poll_samples(&name, kind, endpoints));
        match kind {
            "onprem" => all.extend(onprem_samples(&name, &p.health_single, &p.support_single)),
            "dialog360" => all.push(dialog360_samples(&name, &p.dialog360)),
            "kapso" => all.push(kapso_samples(&name, &p.kapso)),
            _ => all.push(cloud_samples(&name, &p.phone)),
        }
    }
    all
}

fn render(c: &mut Criterion) {
    let p = Payloads::load();
    let mut samples = thousand_targets(&p);
    // As the poller leaves them: packed, ready to be shared by /metrics.
    for part in &mut samples {
        part.shrink();
    }
    let parts: Vec<&Samples> = samples.iter().collect();
    let mut g = c.benchmark_group("render_families");
    for (label, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        let mut probe = String::new();
        render_families(&mut probe, format, &parts);
        g.throughput(Throughput::Bytes(probe.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("1000_targets", label),
            &format,
            |b, &format| {
                b.iter(|| {
                    let mut out = String::with_capacity(probe.len() + 4096);
                    render_families(&mut out, format, black_box(&parts));
                    out
                })
            },
        );
    }
    g.finish();
    // What /metrics does: the same grouping, sharing each part's buffer.
    let mut g = c.benchmark_group("encode_families");
    for (label, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
        g.bench_with_input(
            BenchmarkId::new("1000_targets", label),
            &format,
            |b, &format| b.iter(|| encode_families(format, black_box(&parts))),
        );
    }
    g.finish();
}

criterion_group!(benches, target_samples, render);
criterion_main!(benches);
