//! Tests of the fleet mode over real sockets.

use std::time::Duration;

use serde_json::Value;

use super::fleet::{
    self, dialog360_key, display_phone_number, kapso_config_id, phone_number_id, FleetBusinesses,
    FLEET_TOKEN,
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

/// A fleet of `businesses` businesses of `wabas` WABAs of `numbers` numbers (and no
/// per-number targets).
async fn start_businesses(businesses: usize, wabas: usize, numbers: usize) -> SimulatorHandle {
    Simulator::new(SimulatorOptions {
        fleet_businesses: FleetBusinesses {
            businesses,
            wabas_per_business: wabas,
            numbers_per_waba: numbers,
        },
        ..SimulatorOptions::default()
    })
    .spawn("127.0.0.1:0")
    .await
    .expect("spawn simulator")
}

fn bearer(h: &SimulatorHandle) -> String {
    format!("Bearer {}", h.simulator().options().cloud_api_token)
}

/// GETs `url` with the Graph token, expecting a 200 with JSON.
async fn graph_ok(h: &SimulatorHandle, url: &str) -> Value {
    let got = get(url, &[("Authorization", &bearer(h))]).await;
    assert_eq!(
        got.status,
        200,
        "{url}: {}",
        String::from_utf8_lossy(&got.body)
    );
    assert!(
        got.headers.contains_key("x-business-use-case-usage"),
        "{url}"
    );
    assert!(got.headers.contains_key("x-app-usage"), "{url}");
    got.json()
}

/// Every page of a listing from `url` on, following `next` (at most 50 pages): the items
/// and the number of pages.
async fn all_pages(h: &SimulatorHandle, url: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut next = Some(url.to_string());
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        assert!(pages <= 50, "too many pages");
        let page = graph_ok(h, &url).await;
        items.extend(page["data"].as_array().expect("data").iter().cloned());
        next = page["paging"]["next"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(
                n.starts_with(&format!("http://{}/fleet/graph/", h.addr)),
                "{n}"
            );
        }
    }
    (items, pages)
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn businesses_list_their_owned_and_client_wabas_page_by_page() {
    let h = start_businesses(2, 10, 3).await;
    let graph = h.fleet_cloud_api_base_url();
    let business = fleet::business_id(1);
    let owned =
        format!("{graph}/v24.0/{business}/owned_whatsapp_business_accounts?fields=id,name&limit=3");
    let (items, pages) = all_pages(&h, &owned).await;
    // Places 3 and 7 of each business's ten are its client WABAs.
    let expected: Vec<String> = [10, 11, 12, 14, 15, 16, 18, 19]
        .into_iter()
        .map(fleet::waba_id)
        .collect();
    assert_eq!(ids_of(&items), expected);
    assert_eq!(pages, 3);
    assert_eq!(items[3]["name"], "Fleet WABA 14");
    let client = format!(
        "{graph}/v24.0/{business}/client_whatsapp_business_accounts?fields=id,name&limit=100"
    );
    let page = graph_ok(&h, &client).await;
    assert_eq!(
        ids_of(page["data"].as_array().expect("data")),
        [fleet::waba_id(13), fleet::waba_id(17)]
    );
    assert!(page["paging"]["cursors"]["after"].is_string());
    assert!(page["paging"].get("next").is_none(), "{page}");
    // The next link keeps the version, the fields and the limit.
    let addr = h.addr;
    let first = graph_ok(&h, &owned).await;
    let next = first["paging"]["next"].as_str().expect("next");
    assert!(
        next.starts_with(&format!(
            "http://{addr}/fleet/graph/v24.0/{business}/owned_whatsapp_business_accounts?fields=id,name&limit=3&after="
        )),
        "{next}"
    );
    // Business 0 lists its own WABAs; without a version, Graph's default page.
    let page = graph_ok(
        &h,
        &format!(
            "{graph}/{}/owned_whatsapp_business_accounts",
            fleet::business_id(0)
        ),
    )
    .await;
    assert_eq!(page["data"][0]["id"], fleet::waba_id(0));
    assert_eq!(page["data"].as_array().map(Vec::len), Some(8));
    // Unknown businesses and bad parameters.
    let token = bearer(&h);
    for (path, status, code) in [
        (
            format!("{}/owned_whatsapp_business_accounts", fleet::business_id(2)),
            400,
            100,
        ),
        (
            format!("{business}/owned_whatsapp_business_accounts?limit=0"),
            400,
            100,
        ),
        (
            format!("{business}/owned_whatsapp_business_accounts?after=nope"),
            400,
            100,
        ),
    ] {
        let got = get(
            &format!("{graph}/v24.0/{path}"),
            &[("Authorization", &token)],
        )
        .await;
        assert_eq!(got.status, status, "{path}");
        assert_eq!(got.json()["error"]["code"], code, "{path}");
    }
    h.shutdown().await;

    // A page holds at most 100.
    let h = start_businesses(1, 150, 0).await;
    let url = format!(
        "{}/v24.0/{}/owned_whatsapp_business_accounts?limit=500",
        h.fleet_cloud_api_base_url(),
        fleet::business_id(0)
    );
    let page = graph_ok(&h, &url).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(100));
    let (items, pages) = all_pages(&h, &url).await;
    assert_eq!((items.len(), pages), (150 - 37, 2));
    h.shutdown().await;
}

const NUMBER_FIELDS: &str = "id,health_status,quality_rating,whatsapp_business_manager_messaging_limit,status,name_status,throughput,display_phone_number,verified_name";
const TEMPLATE_FIELDS: &str = "id,name,language,status,category,quality_score";

#[tokio::test]
async fn a_waba_answers_its_numbers_templates_and_apps_by_field_expansion() {
    let h = start_businesses(2, 10, 3).await;
    let graph = h.fleet_cloud_api_base_url();
    // WABA 17: business 1, numbers 51..54 (53 is LIMITED).
    let w = 17;
    let url = format!(
        "{graph}/v24.0/{}?fields=id,health_status,phone_numbers.limit(100){{{NUMBER_FIELDS}}},\
         message_templates.limit(100){{{TEMPLATE_FIELDS}}},subscribed_apps",
        fleet::waba_id(w)
    );
    let v = graph_ok(&h, &url).await;
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "health_status",
            "id",
            "message_templates",
            "phone_numbers",
            "subscribed_apps"
        ]
    );
    assert_eq!(v["id"], fleet::waba_id(w));
    assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");
    let entities: Vec<(&str, &str, &str)> = v["health_status"]["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("?");
            (text("entity_type"), text("id"), text("can_send_message"))
        })
        .collect();
    let (waba, business) = (fleet::waba_id(w), fleet::business_id(1));
    assert_eq!(
        entities,
        [
            ("WABA", waba.as_str(), "AVAILABLE"),
            ("BUSINESS", business.as_str(), "AVAILABLE"),
            ("APP", fleet::FLEET_APP_ID, "AVAILABLE"),
        ]
    );
    let numbers = v["phone_numbers"]["data"].as_array().expect("numbers");
    assert_eq!(
        ids_of(numbers),
        (51..54).map(phone_number_id).collect::<Vec<_>>()
    );
    assert!(v["phone_numbers"]["paging"].get("next").is_none(), "{v}");
    for (k, n) in numbers.iter().enumerate() {
        let i = 51 + k;
        // The number as the fleet answers it alone, which the exporter reads.
        let alone = graph_ok(&h, &format!("{graph}/v24.0/{}", phone_number_id(i))).await;
        assert_eq!(n, &alone, "{i}");
        let phone = crate::providers::cloud_api::payload::parse_phone_number(
            n.to_string().as_bytes(),
            &mut crate::json::Problems::default(),
        )
        .expect("parses");
        assert_eq!(
            phone.health_status.map(|h| h.can_send_message).as_deref(),
            Some(fleet::number_can_send(i))
        );
        let entities = n["health_status"]["entities"].as_array().expect("entities");
        let entity = |t: &str| {
            entities
                .iter()
                .find(|e| e["entity_type"] == t)
                .map(|e| e["id"].clone())
        };
        assert_eq!(entity("PHONE_NUMBER"), Some(phone_number_id(i).into()));
        assert_eq!(entity("WABA"), Some(fleet::waba_id(w).into()));
        assert_eq!(entity("BUSINESS"), Some(fleet::business_id(1).into()));
    }
    assert_eq!(
        v["message_templates"]["data"],
        serde_json::json!([
            {"id": fleet::template_id(w, 0), "name": "fleet_order_update", "language": "en_US",
             "status": "APPROVED", "category": "UTILITY", "quality_score": {"score": "GREEN"}},
            {"id": fleet::template_id(w, 1), "name": "fleet_spring_sale", "language": "es_ES",
             "status": "APPROVED", "category": "MARKETING", "quality_score": {"score": "GREEN"}},
            {"id": fleet::template_id(w, 2), "name": "fleet_login_code", "language": "en_US",
             "status": "APPROVED", "category": "AUTHENTICATION", "quality_score": {"score": "GREEN"}},
        ])
    );
    assert_eq!(
        v["subscribed_apps"],
        serde_json::json!({"data": [{"whatsapp_business_api_data": {
            "id": fleet::FLEET_APP_ID, "link": "https://example.com", "name": "Fleet App"}}]})
    );
    // Only the fields asked; without fields, id and name; an unknown field is refused.
    let v = graph_ok(
        &h,
        &format!("{graph}/v24.0/{}?fields=health_status", fleet::waba_id(3)),
    )
    .await;
    assert_eq!(v.as_object().map(|m| m.len()), Some(2), "{v}");
    assert_eq!(
        v["health_status"]["entities"][1]["id"],
        fleet::business_id(0)
    );
    let v = graph_ok(&h, &format!("{graph}/{}", fleet::waba_id(3))).await;
    assert_eq!(
        v,
        serde_json::json!({"id": fleet::waba_id(3), "name": "Fleet WABA 3"})
    );
    let token = bearer(&h);
    for fields in ["id,currency", "phone_numbers.limit(0){id}", "x{y}"] {
        let got = get(
            &format!("{graph}/v24.0/{}?fields={fields}", fleet::waba_id(3)),
            &[("Authorization", &token)],
        )
        .await;
        assert_eq!(got.status, 400, "{fields}");
        assert_eq!(got.json()["error"]["code"], 100, "{fields}");
    }
    // WABA 7 has its second template paused; WABA 13 has no app subscribed.
    let v = graph_ok(
        &h,
        &format!(
            "{graph}/v24.0/{}?fields=message_templates,subscribed_apps",
            fleet::waba_id(7)
        ),
    )
    .await;
    assert_eq!(v["message_templates"]["data"][1]["status"], "PAUSED");
    assert_eq!(
        v["message_templates"]["data"][1]["quality_score"]["score"],
        "RED"
    );
    assert_eq!(fleet::template_status(7, 1), "PAUSED");
    assert!(fleet::waba_subscribed(7));
    let v = graph_ok(
        &h,
        &format!("{graph}/v24.0/{}/subscribed_apps", fleet::waba_id(13)),
    )
    .await;
    assert_eq!(v, serde_json::json!({"data": []}));
    h.shutdown().await;
}

#[tokio::test]
async fn a_waba_with_more_numbers_than_the_limit_pages_them_on_its_edge() {
    let h = start_businesses(1, 2, 5).await;
    let graph = h.fleet_cloud_api_base_url();
    let w = fleet::waba_id(1);
    let addr = h.addr;
    let url = format!(
        "{graph}/v23.0/{w}?fields=id,phone_numbers.limit(2){{id,health_status{{can_send_message}}}}"
    );
    let v = graph_ok(&h, &url).await;
    let first = v["phone_numbers"]["data"]
        .as_array()
        .expect("numbers")
        .clone();
    assert_eq!(ids_of(&first), [phone_number_id(5), phone_number_id(6)]);
    let next = v["phone_numbers"]["paging"]["next"]
        .as_str()
        .expect("next")
        .to_string();
    assert!(
        next.starts_with(&format!(
            "http://{addr}/fleet/graph/v23.0/{w}/phone_numbers?fields=id,health_status%7Bcan_send_message%7D&limit=2&after="
        )),
        "{next}"
    );
    let (rest, pages) = all_pages(&h, &next).await;
    assert_eq!(pages, 2);
    assert_eq!(
        ids_of(&rest),
        (7..10).map(phone_number_id).collect::<Vec<_>>()
    );
    // The edge from its start, and the templates' edge.
    let (all, pages) = all_pages(&h, &format!("{graph}/v24.0/{w}/phone_numbers?limit=4")).await;
    assert_eq!((all.len(), pages), (5, 2));
    let (templates, pages) = all_pages(
        &h,
        &format!("{graph}/v24.0/{w}/message_templates?fields={TEMPLATE_FIELDS}&limit=2"),
    )
    .await;
    assert_eq!(
        (ids_of(&templates), pages),
        (
            (0..3).map(|t| fleet::template_id(1, t)).collect::<Vec<_>>(),
            2
        )
    );
    // Past the end: an empty page.
    let after_last = rest.len();
    assert_eq!(after_last, 3);
    let page = graph_ok(&h, &format!("{graph}/{w}/phone_numbers?limit=100")).await;
    let last = page["paging"]["cursors"]["after"].as_str().expect("after");
    let page = graph_ok(&h, &format!("{graph}/{w}/phone_numbers?after={last}")).await;
    assert_eq!(page, serde_json::json!({"data": []}));
    // An unknown WABA, an unknown edge.
    let token = bearer(&h);
    for path in [
        format!("{}/phone_numbers", fleet::waba_id(2)),
        format!("{w}/assigned_users"),
    ] {
        let got = get(
            &format!("{graph}/v24.0/{path}"),
            &[("Authorization", &token)],
        )
        .await;
        assert_eq!(got.status, 400, "{path}");
        assert_eq!(got.json()["error"]["code"], 100, "{path}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn ids_look_up_up_to_fifty_numbers_and_refuse_unknown_ones() {
    let h = start_businesses(1, 10, 10).await;
    let graph = h.fleet_cloud_api_base_url();
    let ids: Vec<String> = [3, 57, 99].into_iter().map(phone_number_id).collect();
    for root in ["/v24.0/", "/v24.0", ""] {
        let v = graph_ok(
            &h,
            &format!("{graph}{root}?ids={}&fields={NUMBER_FIELDS}", ids.join(",")),
        )
        .await;
        let m = v.as_object().expect("object");
        assert_eq!(m.len(), 3, "{root}");
        for (id, i) in ids.iter().zip([3, 57, 99]) {
            assert_eq!(m[id]["id"], *id);
            assert_eq!(m[id]["quality_rating"], fleet::number_quality(i));
            let alone = graph_ok(&h, &format!("{graph}/v24.0/{id}")).await;
            assert_eq!(m[id], alone);
        }
    }
    let token = bearer(&h);
    let fifty: Vec<String> = (0..50).map(phone_number_id).collect();
    let v = graph_ok(&h, &format!("{graph}/v24.0/?ids={}", fifty.join(","))).await;
    assert_eq!(v.as_object().map(|m| m.len()), Some(50));
    let fifty_one: Vec<String> = (0..51).map(phone_number_id).collect();
    let got = get(
        &format!("{graph}/v24.0/?ids={}", fifty_one.join(",")),
        &[("Authorization", &token)],
    )
    .await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["code"], 100);
    assert!(
        got.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Maximum: 50")),
        "{}",
        got.json()
    );
    let unknown = phone_number_id(100);
    let got = get(
        &format!("{graph}/v24.0/?ids={},{unknown}", ids[0]),
        &[("Authorization", &token)],
    )
    .await;
    assert_eq!(got.status, 404);
    let e = &got.json()["error"];
    assert_eq!(e["code"], 803);
    assert_eq!(
        e["message"],
        format!("(#803) Some of the aliases you requested do not exist: {unknown}")
    );
    let got = get(
        &format!("{graph}/v24.0/?ids="),
        &[("Authorization", &token)],
    )
    .await;
    assert_eq!(got.status, 400);
    let got = get(
        &format!("{graph}/v24.0/?ids={}", ids[0]),
        &[("Authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.json()["error"]["code"], 190);
    h.shutdown().await;
}

#[tokio::test]
async fn debug_token_describes_the_fleet_token_and_refuses_others() {
    let h = start_businesses(2, 3, 1).await;
    let graph = h.fleet_cloud_api_base_url();
    let token = h.simulator().options().cloud_api_token.clone();
    let now = Utc::now().timestamp();
    for auth in [bearer(&h), format!("Bearer {}", fleet::FLEET_APP_TOKEN)] {
        let got = get(
            &format!("{graph}/v24.0/debug_token?input_token={token}"),
            &[("Authorization", &auth)],
        )
        .await;
        assert_eq!(got.status, 200);
        let d = &got.json()["data"];
        assert_eq!(d["is_valid"], true);
        assert_eq!(d["app_id"], fleet::FLEET_APP_ID);
        assert_eq!(d["type"], "SYSTEM_USER");
        assert_eq!(d["expires_at"], 0);
        assert_eq!(d["user_id"], fleet::FLEET_SYSTEM_USER_ID);
        let expires = d["data_access_expires_at"].as_i64().expect("expiry");
        assert!((expires - (now + 90 * 86_400)).abs() < 60, "{d}");
        let issued = d["issued_at"].as_i64().expect("issued");
        assert!((issued - (now - 30 * 86_400)).abs() < 60, "{d}");
        assert_eq!(
            d["scopes"],
            serde_json::json!([
                "whatsapp_business_management",
                "whatsapp_business_messaging",
                "business_management"
            ])
        );
        let wabas: Vec<String> = (0..6).map(fleet::waba_id).collect();
        assert_eq!(
            d["granular_scopes"][0],
            serde_json::json!({"scope": "whatsapp_business_management", "target_ids": wabas})
        );
        assert_eq!(
            d["granular_scopes"][2]["target_ids"],
            serde_json::json!([fleet::business_id(0), fleet::business_id(1)])
        );
    }
    // Another input token: 200 with is_valid false.
    let v = graph_ok(
        &h,
        &format!("{graph}/v24.0/debug_token?input_token=someone-elses"),
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"data": {"is_valid": false, "error": {"code": 190,
            "message": "Invalid OAuth access token."}, "scopes": []}})
    );
    // No input token; a bearer that is neither token; the app token elsewhere.
    let got = get(
        &format!("{graph}/v24.0/debug_token"),
        &[("Authorization", &bearer(&h))],
    )
    .await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["code"], 100);
    let got = get(
        &format!("{graph}/v24.0/debug_token?input_token={token}"),
        &[("Authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(got.status, 401);
    let got = get(
        &format!("{graph}/v24.0/{}", fleet::waba_id(0)),
        &[(
            "Authorization",
            &format!("Bearer {}", fleet::FLEET_APP_TOKEN),
        )],
    )
    .await;
    assert_eq!(got.status, 401);
    h.shutdown().await;
}

#[tokio::test]
async fn graph_requests_are_counted_by_kind_and_target() {
    // Numbers 0..24 belong to businesses; 24..30 are per-number targets only.
    let h = Simulator::new(SimulatorOptions {
        fleet: 30,
        fleet_businesses: FleetBusinesses {
            businesses: 2,
            wabas_per_business: 4,
            numbers_per_waba: 3,
        },
        ..SimulatorOptions::default()
    })
    .spawn("127.0.0.1:0")
    .await
    .expect("spawn simulator");
    let graph = h.fleet_cloud_api_base_url();
    let b1 = fleet::business_id(1);
    let token = bearer(&h);
    let auth = [("Authorization", token.as_str())];
    for path in [
        format!("{b1}/owned_whatsapp_business_accounts?limit=2"),
        format!("{b1}/owned_whatsapp_business_accounts?limit=2&after=x"),
        format!("{b1}/client_whatsapp_business_accounts"),
        format!("{}?fields=id,phone_numbers", fleet::waba_id(5)),
        format!("{}/phone_numbers", fleet::waba_id(5)),
        format!("{}/message_templates", fleet::waba_id(6)),
        format!("{}/subscribed_apps", fleet::waba_id(6)),
        format!("?ids={},{}", phone_number_id(2), phone_number_id(29)),
        format!("?ids={}", phone_number_id(2)),
        "debug_token?input_token=x".to_string(),
        phone_number_id(29),
        phone_number_id(30),
    ] {
        get(&format!("{graph}/v24.0/{path}"), &auth).await;
    }
    // Unauthorised requests count too.
    get(&format!("{graph}/v24.0/{}", fleet::waba_id(5)), &[]).await;
    let sim = h.simulator();
    let expected = [
        (FleetKind::GraphOwnedWabas, 2),
        (FleetKind::GraphClientWabas, 1),
        (FleetKind::GraphWaba, 2),
        (FleetKind::GraphWabaPhoneNumbers, 1),
        (FleetKind::GraphWabaTemplates, 1),
        (FleetKind::GraphWabaSubscribedApps, 1),
        (FleetKind::GraphIds, 2),
        (FleetKind::GraphDebugToken, 1),
        (FleetKind::CloudApi, 2),
    ];
    for (kind, n) in expected {
        assert_eq!(sim.fleet_requests(kind), n, "{kind:?}");
    }
    assert_eq!(sim.fleet_target_requests(FleetKind::GraphOwnedWabas, 1), 2);
    assert_eq!(sim.fleet_target_requests(FleetKind::GraphWaba, 5), 2);
    assert_eq!(sim.fleet_target_requests(FleetKind::GraphIds, 2), 2);
    assert_eq!(sim.fleet_target_requests(FleetKind::GraphIds, 29), 1);
    assert_eq!(sim.fleet_target_requests(FleetKind::CloudApi, 29), 1);
    assert!(FleetKind::ALL.iter().filter(|k| k.is_graph()).count() == 9);
    let got = get(&format!("http://{}/fleet/stats?per_target=1", h.addr), &[]).await;
    let stats = got.json();
    assert_eq!(stats["graph_requests"], 13);
    assert_eq!(stats["requests"]["graph_waba"], 2);
    assert_eq!(stats["requests"]["graph_waba_message_templates"], 1);
    assert_eq!(stats["requests"]["onprem_health"], 0);
    assert_eq!(
        stats["businesses"],
        serde_json::json!({"businesses": 2, "wabas_per_business": 4, "numbers_per_waba": 3,
            "wabas": 8, "numbers": 24})
    );
    let per_target = &stats["per_target"];
    assert_eq!(per_target["graph_owned_wabas"], serde_json::json!([0, 2]));
    assert_eq!(per_target["graph_waba"].as_array().map(Vec::len), Some(8));
    assert_eq!(per_target["graph"].as_array().map(Vec::len), Some(30));
    assert_eq!(per_target["graph_debug_token"], serde_json::json!([]));
    assert_eq!(
        per_target["onprem_health"].as_array().map(Vec::len),
        Some(30)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_config_route_writes_one_target_per_business() {
    let h = start_businesses(3, 2, 2).await;
    let url = |q: &str| format!("http://{}/fleet/config?{q}", h.addr);
    let got = get(
        &url("businesses=2&interval=20s&discovery_interval=5m&debug_token=1"),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    let text = String::from_utf8(got.body).expect("UTF-8");
    assert_eq!(
        text,
        fleet::fleet_config_for(
            &h,
            &fleet::FleetConfigAsk {
                businesses: 2,
                interval: Duration::from_secs(20),
                discovery_interval: Duration::from_secs(300),
                debug_token: true,
                ..fleet::FleetConfigAsk::default()
            }
        )
    );
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let targets = yaml["targets"].as_sequence().expect("targets");
    assert_eq!(targets.len(), 2, "{text}");
    for (b, t) in targets.iter().enumerate() {
        assert_eq!(t["name"].as_str(), Some(format!("business-{b}").as_str()));
        assert_eq!(t["type"].as_str(), Some("cloud_api"));
        assert_eq!(
            t["business_id"].as_str(),
            Some(fleet::business_id(b).as_str())
        );
        assert_eq!(
            t["base_url"].as_str(),
            Some(h.fleet_cloud_api_base_url().as_str())
        );
        assert_eq!(
            t["access_token"].as_str(),
            Some(h.simulator().options().cloud_api_token.as_str())
        );
        assert_eq!(t["api_version"].as_str(), Some("v24.0"));
        assert_eq!(t["discovery_interval"].as_str(), Some("5m"));
        // 4 numbers a business, 100 series each, and 1,000.
        assert_eq!(t["series_limit"].as_u64(), Some(1_400));
        assert_eq!(
            t["debug_token_access_token"].as_str(),
            Some(fleet::FLEET_APP_TOKEN)
        );
    }
    assert_eq!(yaml["global"]["interval"].as_str(), Some("20s"));
    // Without debug_token: no app token; the default discovery interval.
    let got = get(&url("businesses=3"), &[]).await;
    let text = String::from_utf8(got.body).expect("UTF-8");
    assert_eq!(text.matches("type: cloud_api").count(), 3, "{text}");
    assert!(!text.contains("debug_token_access_token"), "{text}");
    assert!(text.contains("discovery_interval: 10m"), "{text}");
    for bad in [
        "businesses=4",
        "businesses=x",
        "discovery_interval=0s",
        "cloud=1",
    ] {
        let got = get(&url(bad), &[]).await;
        assert_eq!(got.status, 400, "{bad}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn failing_wabas_answer_faults_and_listings_do_not_fail() {
    let h = Simulator::new(SimulatorOptions {
        fleet_businesses: FleetBusinesses {
            businesses: 1,
            wabas_per_business: 4,
            numbers_per_waba: 2,
        },
        fleet_faults: FleetFaults {
            ratio: 1.0,
            kinds: vec![FleetFault::ServerError],
        },
        ..SimulatorOptions::default()
    })
    .spawn("127.0.0.1:0")
    .await
    .expect("spawn simulator");
    let graph = h.fleet_cloud_api_base_url();
    let token = bearer(&h);
    let auth = [("Authorization", token.as_str())];
    for path in [
        fleet::waba_id(1),
        format!("{}/phone_numbers", fleet::waba_id(1)),
        format!("?ids={}", phone_number_id(3)),
        phone_number_id(3),
    ] {
        let got = get(&format!("{graph}/v24.0/{path}"), &auth).await;
        assert_eq!(got.status, 500, "{path}");
        assert!(got.headers.contains_key("x-app-usage"), "{path}");
    }
    for path in [
        format!("{}/owned_whatsapp_business_accounts", fleet::business_id(0)),
        "debug_token?input_token=x".to_string(),
    ] {
        let got = get(&format!("{graph}/v24.0/{path}"), &auth).await;
        assert_eq!(got.status, 200, "{path}");
    }
    // Bad requests answer as without faults.
    let got = get(
        &format!("{graph}/v24.0/{}?fields=nope", fleet::waba_id(1)),
        &auth,
    )
    .await;
    assert_eq!(got.status, 400);
    assert_eq!(
        h.simulator().fleet_faults_answered(FleetFault::ServerError),
        4
    );
    h.shutdown().await;
}
