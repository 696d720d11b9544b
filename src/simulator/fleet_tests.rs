//! Tests of the fleet mode over real sockets.

use std::time::Duration;

use serde_json::Value;

use super::fleet::{
    self, dialog360_key, display_phone_number, kapso_config_id, phone_number_id, FLEET_TOKEN,
};
use super::*;

const N: usize = 120;

async fn start(fleet: usize) -> SimulatorHandle {
    Simulator::new(SimulatorOptions {
        fleet,
        ..SimulatorOptions::default()
    })
    .spawn("127.0.0.1:0")
    .await
    .expect("spawn simulator")
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn request(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Got {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    Got {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    request(reqwest::Method::GET, url, headers).await
}

fn apikey(h: &SimulatorHandle) -> String {
    format!("Apikey {}", h.simulator().options().api_key)
}

#[tokio::test]
async fn onprem_instances_answer_with_their_state() {
    let h = start(N).await;
    let key = apikey(&h);
    for i in [0, 3, 9, 50, N - 1] {
        let got = get(
            &format!("{}/v1/health", h.fleet_onprem_base_url(i)),
            &[("Authorization", &key)],
        )
        .await;
        assert_eq!(got.status, 200, "{i}");
        let report =
            crate::providers::onprem::payload::parse_health(&got.body).expect("exporter parses");
        let v = got.json();
        assert_eq!(
            v["health"]["gateway_status"],
            fleet::onprem_gateway_status(i),
            "{i}: {v}"
        );
        assert_eq!(v["meta"]["version"], onprem::META_VERSION);
        assert!(report.meta.is_some());
    }
    // Support with the fleet token, parsed by the exporter, with the clock spliced in.
    let bearer = format!("Bearer {FLEET_TOKEN}");
    let got = get(
        &format!("{}/v1/support", h.fleet_onprem_base_url(7)),
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(got.status, 200);
    crate::providers::onprem::payload::parse_support(&got.body).expect("exporter parses support");
    let device = got.json()["support"]["device_iso8601"]
        .as_str()
        .expect("device time")
        .to_string();
    let device = chrono::DateTime::parse_from_rfc3339(&device).expect("RFC 3339");
    assert!(
        (Utc::now() - device.with_timezone(&Utc))
            .num_seconds()
            .abs()
            < 5
    );
    // The API key is for health only; support needs the token.
    let got = get(
        &format!("{}/v1/support", h.fleet_onprem_base_url(7)),
        &[("Authorization", &key)],
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["errors"][0]["code"], 1005);
    // A login answers the fleet token.
    let basic = h.simulator().basic_authorization();
    let got = request(
        reqwest::Method::POST,
        &format!("{}/v1/users/login", h.fleet_onprem_base_url(2)),
        &[("Authorization", &basic)],
    )
    .await;
    assert_eq!(got.status, 200);
    let token =
        crate::providers::onprem::payload::parse_login(&got.body).expect("exporter parses login");
    assert_eq!(got.json()["users"][0]["token"], FLEET_TOKEN);
    drop(token);
    let got = request(
        reqwest::Method::POST,
        &format!("{}/v1/users/login", h.fleet_onprem_base_url(2)),
        &[("Authorization", "Basic d3Jvbmc6d3Jvbmc=")],
    )
    .await;
    assert_eq!(got.status, 401);
    // Wrong method, unknown instance, non-canonical index, unknown endpoint.
    let got = request(
        reqwest::Method::POST,
        &format!("{}/v1/health", h.fleet_onprem_base_url(2)),
        &[("Authorization", &key)],
    )
    .await;
    assert_eq!(got.status, 405);
    for path in [
        format!("/fleet/onprem/{N}/v1/health"),
        "/fleet/onprem/07/v1/health".to_string(),
        "/fleet/onprem/x/v1/health".to_string(),
        "/fleet/onprem/1/v1/stats".to_string(),
        "/fleet/nothing".to_string(),
    ] {
        let got = get(
            &format!("http://{}{path}", h.addr),
            &[("Authorization", &key)],
        )
        .await;
        assert_eq!(got.status, 404, "{path}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn cloud_numbers_answer_on_every_provider() {
    let h = start(N).await;
    let opts = h.simulator().options().clone();
    for i in [0, 3, 7, 11, 42, 57, N - 1] {
        let can_send = fleet::number_can_send(i);
        // 360dialog: Meta's body for the channel's number.
        let key = dialog360_key(i);
        let got = get(
            &format!("{}/health_status", h.fleet_dialog360_base_url()),
            &[("D360-API-KEY", &key)],
        )
        .await;
        assert_eq!(got.status, 200, "{i}");
        let health = crate::providers::cloud_api::payload::parse_health_status_body(
            &got.body,
            &mut crate::json::Problems::default(),
        )
        .expect("parses");
        assert_eq!(health.can_send_message, can_send, "{i}");
        assert_eq!(got.json()["id"], phone_number_id(i));
        // Graph: the number's fields, whatever `fields` asks, with the usage headers.
        let bearer = format!("Bearer {}", opts.cloud_api_token);
        let got = get(
            &format!(
                "{}/v24.0/{}?fields=health_status,quality_rating",
                h.fleet_cloud_api_base_url(),
                phone_number_id(i)
            ),
            &[("Authorization", &bearer)],
        )
        .await;
        assert_eq!(got.status, 200, "{i}");
        assert!(got.headers.contains_key("x-business-use-case-usage"));
        assert!(got.headers.contains_key("x-app-usage"));
        let phone = crate::providers::cloud_api::payload::parse_phone_number(
            &got.body,
            &mut crate::json::Problems::default(),
        )
        .expect("parses");
        assert_eq!(phone.id, phone_number_id(i));
        assert_eq!(
            phone.quality_rating.as_deref(),
            Some(fleet::number_quality(i))
        );
        assert_eq!(
            phone.messaging_limit_tier.as_deref(),
            Some(fleet::number_tier(i))
        );
        assert_eq!(
            phone.display_phone_number.as_deref(),
            Some(display_phone_number(i).as_str())
        );
        assert_eq!(phone.verified_name, Some(format!("Fleet {i}")));
        assert_eq!(
            phone.health_status.map(|h| h.can_send_message).as_deref(),
            Some(can_send)
        );
        // Kapso: the config's status and checks.
        let got = get(
            &format!(
                "{}/api/v1/whatsapp_configs/{}/health",
                h.fleet_kapso_base_url(),
                kapso_config_id(i)
            ),
            &[("X-API-Key", &opts.kapso_api_key)],
        )
        .await;
        assert_eq!(got.status, 200, "{i}");
        let kapso = crate::providers::kapso::payload::parse_health(&got.body).expect("parses");
        assert_eq!(kapso.status, fleet::kapso_status(i), "{i}");
        if kapso.status != "error" {
            assert_eq!(
                kapso.webhook_subscribed,
                Some(fleet::kapso_webhook_subscribed(i)),
                "{i}"
            );
            assert_eq!(kapso.overall_status.as_deref(), Some(can_send), "{i}");
        }
    }
    // Wrong credentials and unknown targets, in each API's words.
    let got = get(
        &format!("{}/health_status", h.fleet_dialog360_base_url()),
        &[("D360-API-KEY", &dialog360_key(N))],
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["meta"]["developerMessage"], "Invalid api_key");
    let kapso = |id: String| {
        format!(
            "{}/api/v1/whatsapp_configs/{id}/health",
            h.fleet_kapso_base_url()
        )
    };
    let got = get(
        &kapso(kapso_config_id(1)),
        &[("X-API-Key", "wrong-key-0123")],
    )
    .await;
    assert_eq!(got.status, 401);
    let got = get(
        &kapso(kapso_config_id(N)),
        &[("X-API-Key", &opts.kapso_api_key)],
    )
    .await;
    assert_eq!(got.status, 404);
    let graph = |id: String| format!("{}/v24.0/{id}", h.fleet_cloud_api_base_url());
    let got = get(
        &graph(phone_number_id(1)),
        &[("Authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["error"]["code"], 190);
    let bearer = format!("Bearer {}", opts.cloud_api_token);
    let got = get(&graph(phone_number_id(N)), &[("Authorization", &bearer)]).await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["code"], 100);
    h.shutdown().await;
}

#[tokio::test]
async fn requests_are_counted_per_kind_target_and_second() {
    let h = start(N).await;
    let sim = h.simulator().clone();
    let key = apikey(&h);
    for _ in 0..3 {
        get(
            &format!("{}/v1/health", h.fleet_onprem_base_url(5)),
            &[("Authorization", &key)],
        )
        .await;
    }
    get(
        &format!("{}/health_status", h.fleet_dialog360_base_url()),
        &[("D360-API-KEY", &dialog360_key(8))],
    )
    .await;
    get(
        &format!("{}/health_status", h.fleet_dialog360_base_url()),
        &[("D360-API-KEY", "unknown")],
    )
    .await;
    assert_eq!(sim.fleet_size(), N);
    assert_eq!(sim.fleet_requests(FleetKind::OnPremHealth), 3);
    assert_eq!(sim.fleet_target_requests(FleetKind::OnPremHealth, 5), 3);
    assert_eq!(sim.fleet_target_requests(FleetKind::OnPremHealth, 4), 0);
    assert_eq!(sim.fleet_requests(FleetKind::Dialog360), 2);
    assert_eq!(sim.fleet_target_requests(FleetKind::Dialog360, 8), 1);
    assert_eq!(sim.fleet_requests(FleetKind::CloudApi), 0);
    // Nothing else is counted as the fleet's.
    assert_eq!(sim.requests(Cluster::Single, Endpoint::Health), 0);
    let got = get(
        &format!("http://{}/fleet/stats?per_target=1&from=0", h.addr),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    let stats = got.json();
    assert_eq!(stats["targets"], N);
    assert_eq!(stats["requests"]["onprem_health"], 3);
    assert_eq!(stats["per_target"]["onprem_health"][5], 3);
    assert_eq!(
        stats["per_target"]["dialog360"].as_array().map(Vec::len),
        Some(N)
    );
    // Every request so far lies in the current second or the ones before it.
    let second = stats["second"].as_u64().expect("second");
    let counted: u64 = stats["per_second"]["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    let (from, counts) = sim.fleet_requests_per_second(Some(0));
    assert_eq!(from, 0);
    assert!(counts.len() as u64 <= second + 1);
    assert!(counted <= 5);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, counts) = sim.fleet_requests_per_second(Some(0));
    assert_eq!(counts.iter().map(|&c| u64::from(c)).sum::<u64>(), 5);
    h.shutdown().await;
}

#[tokio::test]
async fn config_route_writes_a_loadable_fleet_config() {
    let h = start(N).await;
    let got = get(
        &format!(
            "http://{}/fleet/config?onprem=10&cloud=31&interval=20s",
            h.addr
        ),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    let text = String::from_utf8(got.body).expect("UTF-8");
    assert_eq!(
        text,
        fleet_config(&h, 10, 31, Duration::from_secs(20)),
        "the route and the helper agree"
    );
    let config = crate::config::Config::parse(&text, std::path::Path::new("<fleet>"))
        .expect("the fleet config loads");
    assert_eq!(config.targets.len(), 41);
    let count = |kind: &str| {
        config
            .targets
            .iter()
            .filter(|t| t.type_name() == kind)
            .count()
    };
    assert_eq!(count("onprem"), 10);
    assert_eq!(count("dialog360"), 11);
    assert_eq!(count("kapso"), 10);
    assert_eq!(count("cloud_api"), 10);
    assert!(config
        .targets
        .iter()
        .all(|t| t.interval == Duration::from_secs(20)));
    for bad in ["onprem=x", "cloud=99999", "interval=0s", "interval=soon"] {
        let got = get(&format!("http://{}/fleet/config?{bad}", h.addr), &[]).await;
        assert_eq!(got.status, 400, "{bad}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn without_a_fleet_nothing_is_served_under_fleet() {
    let h = start(0).await;
    assert_eq!(h.simulator().fleet_size(), 0);
    let got = get(
        &format!("{}/v1/health", h.fleet_onprem_base_url(0)),
        &[("Authorization", &apikey(&h))],
    )
    .await;
    assert_eq!(got.status, 404);
    let got = get(&format!("http://{}/fleet/stats", h.addr), &[]).await;
    assert_eq!(got.status, 404);
    // The simulator's own APIs are unaffected.
    let got = get(
        &format!("{}/v1/health", h.base_url(Cluster::Single)),
        &[("Authorization", &apikey(&h))],
    )
    .await;
    assert_eq!(got.status, 200);
    h.shutdown().await;
}

/// A fleet in which every target fails in every second, with one of `kinds`.
async fn start_failing(kinds: Vec<FleetFault>) -> SimulatorHandle {
    Simulator::new(SimulatorOptions {
        fleet: N,
        fleet_faults: FleetFaults { ratio: 1.0, kinds },
        ..SimulatorOptions::default()
    })
    .spawn("127.0.0.1:0")
    .await
    .expect("spawn simulator")
}

/// A request of the tests: which API, its URL and its headers.
type ApiRequest = (&'static str, String, Vec<(String, String)>);

/// One good request of each API of the fleet, for target `i`.
fn requests_of(h: &SimulatorHandle, i: usize) -> Vec<ApiRequest> {
    let opts = h.simulator().options();
    let header = |k: &str, v: String| vec![(k.to_string(), v)];
    vec![
        (
            "onprem",
            format!("{}/v1/health", h.fleet_onprem_base_url(i)),
            header("Authorization", apikey(h)),
        ),
        (
            "dialog360",
            format!("{}/health_status", h.fleet_dialog360_base_url()),
            header("D360-API-KEY", dialog360_key(i)),
        ),
        (
            "kapso",
            format!(
                "{}/api/v1/whatsapp_configs/{}/health",
                h.fleet_kapso_base_url(),
                kapso_config_id(i)
            ),
            header("X-API-Key", opts.kapso_api_key.clone()),
        ),
        (
            "graph",
            format!(
                "{}/v24.0/{}",
                h.fleet_cloud_api_base_url(),
                phone_number_id(i)
            ),
            header("Authorization", format!("Bearer {}", opts.cloud_api_token)),
        ),
    ]
}

#[tokio::test]
async fn failing_targets_answer_each_kind_of_fault_in_their_api_words() {
    for kind in FleetFault::ALL {
        let h = start_failing(vec![kind]).await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let requests = requests_of(&h, 5);
        for (api, url, headers) in &requests {
            let mut req = client.get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let sent = req.send().await;
            match kind {
                FleetFault::Slow => {
                    let e = sent.expect_err("a slow answer outlasts the timeout");
                    assert!(e.is_timeout(), "{kind} {api}: {e}");
                    continue;
                }
                FleetFault::Reset => {
                    let resp = sent.expect("the head comes");
                    assert_eq!(resp.status(), 200, "{kind} {api}");
                    assert!(resp.bytes().await.is_err(), "{kind} {api}: body complete");
                    continue;
                }
                _ => {}
            }
            let resp = sent.unwrap_or_else(|e| panic!("{kind} {api}: {e}"));
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.expect("body").to_vec();
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let json = serde_json::from_slice::<Value>(&body);
            match kind {
                FleetFault::ServerError => {
                    assert_eq!(status, 500, "{kind} {api}");
                    assert!(content_type.starts_with("text/html"), "{kind} {api}");
                }
                FleetFault::Unavailable => {
                    assert_eq!(status, 503, "{kind} {api}");
                    assert_eq!(headers["retry-after"], "1", "{kind} {api}");
                    let v = json.unwrap_or_else(|e| panic!("{kind} {api}: {e}"));
                    match *api {
                        "onprem" => assert_eq!(v["errors"][0]["code"], 1016, "{v}"),
                        "graph" => assert_eq!(v["error"]["code"], 2, "{v}"),
                        "kapso" => assert_eq!(v["error"], "Service temporarily unavailable"),
                        _ => assert_eq!(v["meta"]["developerMessage"], "Service unavailable"),
                    }
                }
                FleetFault::MalformedJson => {
                    assert_eq!(status, 200, "{kind} {api}");
                    assert!(
                        json.is_err(),
                        "{kind} {api}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    // Still the target's own body, damaged.
                    let text = String::from_utf8_lossy(&body);
                    let own = if *api == "onprem" {
                        "gateway_status".to_string()
                    } else {
                        phone_number_id(5)
                    };
                    assert!(text.contains(&own), "{kind} {api}: {text}");
                }
                FleetFault::Slow | FleetFault::Reset => unreachable!(),
            }
            if *api == "graph" {
                assert!(headers.contains_key("x-app-usage"), "{kind}: usage headers");
            }
        }
        let sim = h.simulator();
        for other in FleetFault::ALL {
            let expected = if other == kind {
                requests.len() as u64
            } else {
                0
            };
            assert_eq!(
                sim.fleet_faults_answered(other),
                expected,
                "{kind}: {other}"
            );
        }
        h.shutdown().await;
    }
}

#[tokio::test]
async fn faults_replace_good_answers_only_and_are_counted_in_stats() {
    let h = start_failing(vec![FleetFault::ServerError]).await;
    let key = apikey(&h);
    // Unknown targets and wrong credentials answer as without faults.
    let got = get(
        &format!("{}/v1/health", h.fleet_onprem_base_url(N)),
        &[("Authorization", &key)],
    )
    .await;
    assert_eq!(got.status, 404);
    let got = get(
        &format!("{}/v1/health", h.fleet_onprem_base_url(1)),
        &[("Authorization", "Apikey wrong-key-0123456789")],
    )
    .await;
    assert_eq!(got.status, 401);
    let got = get(
        &format!("{}/health_status", h.fleet_dialog360_base_url()),
        &[("D360-API-KEY", "unknown")],
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(
        h.simulator().fleet_faults_answered(FleetFault::ServerError),
        0
    );
    // Logins fail too: the instance is down.
    let basic = h.simulator().basic_authorization();
    let got = request(
        reqwest::Method::POST,
        &format!("{}/v1/users/login", h.fleet_onprem_base_url(2)),
        &[("Authorization", &basic)],
    )
    .await;
    assert_eq!(got.status, 500);
    let got = get(&format!("http://{}/fleet/stats", h.addr), &[]).await;
    let faults = &got.json()["faults"];
    assert_eq!(faults["ratio"], 1.0);
    assert_eq!(faults["kinds"], serde_json::json!(["server_error"]));
    assert_eq!(faults["answered"]["server_error"], 1);
    assert_eq!(faults["answered"]["reset"], 0);
    h.shutdown().await;

    // Without faults asked for, nothing fails.
    let h = start(N).await;
    for i in [0, 1, 2, 3] {
        for (api, url, headers) in requests_of(&h, i) {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(get(&url, &headers).await.status, 200, "{api} {i}");
        }
    }
    let got = get(&format!("http://{}/fleet/stats", h.addr), &[]).await;
    assert_eq!(got.json()["faults"]["ratio"], 0.0);
    h.shutdown().await;
}
