//! `whatsapp_upstream_requests_total`: for one target of each type, the count of every
//! endpoint is exactly what the simulator received, logins included; every endpoint of a
//! target not polled yet is exported at 0; a `/probe` poll counts its own requests, one
//! refused included.

mod common;

use std::time::Duration;

use common::{has_line, value};
use whatsapp_exporter::poller::phase;
use whatsapp_exporter::simulator::{CloudApiEndpoint, Cluster, Endpoint, SimulatorOptions};

/// One poll an hour: after its first poll, a target sends nothing more during the test.
const INTERVAL: Duration = Duration::from_secs(3600);

/// A name starting with `prefix` whose place in the interval satisfies `fits` (the first
/// poll comes that long after the start: the phase is a hash of the name).
fn name_with_phase(prefix: &str, fits: impl Fn(Duration) -> bool) -> String {
    (0..1_000_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|name| fits(phase(name, INTERVAL)))
        .expect("some name has such a phase")
}

/// Polled within two seconds of the start, then not for an hour.
fn soon(prefix: &str) -> String {
    name_with_phase(prefix, |p| p < Duration::from_secs(2))
}

fn requests(metrics: &str, target: &str, endpoint: &str) -> f64 {
    let series =
        format!("whatsapp_upstream_requests_total{{target=\"{target}\",endpoint=\"{endpoint}\"}}");
    value(metrics, &series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_sent_upstream_is_counted_once_per_target_and_endpoint() {
    let onprem = soon("onprem");
    let cloud = soon("cloud");
    let d360 = soon("d360");
    let kapso = soon("kapso");
    let platform = soon("platform");
    // Not polled before the hour's second half: its counter stays at its start.
    let idle = name_with_phase("idle", |p| p > INTERVAL / 2);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let names = [&onprem, &cloud, &d360, &kapso, &platform];
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        format!(
            "global:\n  interval: 1h\n  timeout: 10s\ntargets:\n\
             {onprem_target}    endpoints: [health, support]\n\
             \x20 - name: {cloud}\n    type: cloud_api\n    base_url: {graph}\n    access_token: {token}\n    business_id: \"{business}\"\n    discovery_interval: 1h\n\
             \x20 - name: {d360}\n    type: dialog360\n    base_url: {d360_url}\n    api_key: {d360_key}\n\
             \x20 - name: {kapso}\n    type: kapso\n    base_url: {kapso_url}\n    api_key: {kapso_key}\n    config_id: {config}\n\
             \x20 - name: {platform}\n    type: kapso_platform\n    base_url: {platform_url}\n    api_key: {kapso_key}\n    discover: true\n    discovery_interval: 1h\n\
             \x20 - name: {idle}\n    type: dialog360\n    base_url: http://{closed}\n    api_key: {d360_key}\n",
            onprem_target = common::onprem_target(
                &onprem,
                &s.base_url(Cluster::Single),
                o,
                common::Auth::ApiKeyAndLogin
            ),
            graph = s.cloud_api_base_url(),
            token = o.cloud_api_token,
            business = whatsapp_exporter::simulator::meta::BUSINESS_ID,
            d360_url = s.dialog360_base_url(),
            d360_key = o.dialog360_api_keys[0],
            kapso_url = s.kapso_base_url(),
            kapso_key = o.kapso_api_key,
            config = o.kapso_config_ids[0],
            platform_url = s.kapso_platform_base_url(),
        )
    })
    .await;
    let metrics = run
        .wait_until(
            |m| {
                names
                    .iter()
                    .all(|n| value(m, &format!("whatsapp_up{{target=\"{n}\"}}")).is_some())
            },
            "the first poll of every target",
        )
        .await;
    for name in names {
        assert!(
            has_line(&metrics, &format!("whatsapp_up{{target=\"{name}\"}} 1")),
            "{name}\n{metrics}"
        );
    }
    let sim = run.simulator.simulator().clone();

    // The API key reads /v1/health; /v1/support needs the login token, so the login is
    // one of support's requests.
    assert_eq!(
        requests(&metrics, &onprem, "health"),
        sim.requests(Cluster::Single, Endpoint::Health) as f64
    );
    assert_eq!(
        requests(&metrics, &onprem, "support"),
        (sim.requests(Cluster::Single, Endpoint::Support)
            + sim.requests(Cluster::Single, Endpoint::Login)) as f64
    );
    assert_eq!(sim.requests(Cluster::Single, Endpoint::Login), 1);

    // The token is inspected once, the business's two WABA listings read once; health
    // asks each WABA once, and the pages past the first of its numbers and templates
    // (the simulator's pages hold two).
    let graph = |kind| sim.cloud_api_requests(kind);
    assert_eq!(
        requests(&metrics, &cloud, "token"),
        graph(CloudApiEndpoint::DebugToken) as f64
    );
    assert_eq!(graph(CloudApiEndpoint::DebugToken), 1);
    assert_eq!(
        requests(&metrics, &cloud, "discovery"),
        graph(CloudApiEndpoint::BusinessWabas) as f64
    );
    assert_eq!(graph(CloudApiEndpoint::BusinessWabas), 2);
    let health = [
        CloudApiEndpoint::Waba,
        CloudApiEndpoint::PhoneNumbers,
        CloudApiEndpoint::MessageTemplates,
        CloudApiEndpoint::SubscribedApps,
        CloudApiEndpoint::Ids,
        CloudApiEndpoint::PhoneNumber,
    ]
    .map(graph);
    assert_eq!(
        requests(&metrics, &cloud, "health"),
        health.iter().sum::<u64>() as f64
    );
    assert_eq!(graph(CloudApiEndpoint::Waba), 2);
    assert_eq!(graph(CloudApiEndpoint::Template), 0);

    assert_eq!(
        requests(&metrics, &d360, "health_status"),
        sim.dialog360_requests() as f64
    );
    assert_eq!(
        requests(&metrics, &kapso, "health"),
        sim.kapso_requests() as f64
    );
    assert_eq!(
        requests(&metrics, &platform, "discovery") + requests(&metrics, &platform, "health"),
        sim.kapso_platform_requests() as f64
    );
    assert!(
        requests(&metrics, &platform, "discovery") >= 1.0,
        "{metrics}"
    );

    // The idle target is exported at 0 from the start, before any poll.
    assert_eq!(requests(&metrics, &idle, "health_status"), 0.0);
    assert!(!metrics.contains(&format!("whatsapp_up{{target=\"{idle}\"}}")));

    // A probe polls with a runner of its own and answers its own count: the refused
    // connection was sent, so it counts.
    let probe = run
        .get(&format!("/probe?target={idle}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        has_line(
            &probe,
            &format!(
                "whatsapp_upstream_requests_total{{target=\"{idle}\",endpoint=\"health_status\"}} 1"
            )
        ),
        "{probe}"
    );
    assert!(
        has_line(
            &probe,
            &format!("whatsapp_poll_errors_total{{target=\"{idle}\",endpoint=\"health_status\",reason=\"connection_refused\"}} 1")
        ),
        "{probe}"
    );
    let metrics = run.metrics().await;
    assert_eq!(requests(&metrics, &idle, "health_status"), 0.0);
    common::promtool_check(&metrics);
    run.stop().await;
}
