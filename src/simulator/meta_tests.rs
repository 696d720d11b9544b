//! Tests of the simulated Graph API, 360dialog and Kapso over real sockets (reqwest, and a
//! raw socket for requests reqwest will not send).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::cloud_api::{CLOUD_API_TOKEN, REGAIN_ACCESS_MINUTES};
use super::dialog360::DIALOG360_API_KEYS;
use super::kapso::{KAPSO_API_KEY, KAPSO_CONFIG_IDS};
use super::meta::{
    APP_ID, BUSINESS_ID, DISPLAY_NAME_LIMIT, DISPLAY_PHONE_NUMBERS, INITIAL_APP_USAGE,
    INITIAL_BUSINESS_USAGE, KAPSO_DEFAULT_ERROR, KAPSO_WEBHOOK_VERIFIED_AT, PHONE_NUMBER_IDS,
    TEMPLATE_CATEGORIES, TEMPLATE_IDS, TEMPLATE_LANGUAGES, TEMPLATE_NAMES, VERIFIED_NAMES, WABA_ID,
    WABA_NAME,
};
use super::*;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const PRIMARY: &str = PHONE_NUMBER_IDS[0];
const SECOND: &str = PHONE_NUMBER_IDS[1];
const PENDING_TEMPLATE: &str = TEMPLATE_IDS[4];
const SCENARIO_TEMPLATE: &str = TEMPLATE_IDS[1];
const TEMPLATE_NOT_APPROVED: &str = "Message templates can only be sent out if they are approved.";

#[derive(Debug)]
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_json(&self, name: &str) -> Value {
        let text = self
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header"));
        serde_json::from_str(text).expect("header is JSON")
    }

    /// `error.code` of a Graph error.
    fn graph_code(&self) -> i64 {
        let v = self.json();
        assert!(v["error"]["fbtrace_id"].is_string(), "{v}");
        assert!(v["error"]["type"].is_string(), "{v}");
        v["error"]["code"].as_i64().unwrap_or(-1)
    }
}

fn opts() -> SimulatorOptions {
    SimulatorOptions {
        rate_limit: None,
        ..Default::default()
    }
}

async fn start(opts: SimulatorOptions) -> SimulatorHandle {
    Simulator::new(opts)
        .spawn("127.0.0.1:0")
        .await
        .expect("spawn simulator")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(IO_TIMEOUT)
        .build()
        .expect("client")
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    Got {
        status,
        headers,
        body,
    }
}

fn bearer() -> String {
    format!("Bearer {CLOUD_API_TOKEN}")
}

/// `GET {cloud_api_base_url}/{path}` with the token.
async fn graph(h: &SimulatorHandle, path: &str) -> Got {
    let auth = bearer();
    get(
        &format!("{}/{path}", h.cloud_api_base_url()),
        &[("Authorization", &auth)],
    )
    .await
}

async fn graph_ok(h: &SimulatorHandle, path: &str) -> Value {
    let r = graph(h, path).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

async fn dialog360(h: &SimulatorHandle, key: &str) -> Got {
    get(
        &format!("{}/health_status", h.dialog360_base_url()),
        &[("D360-API-KEY", key)],
    )
    .await
}

async fn kapso(h: &SimulatorHandle, config_id: &str) -> Got {
    get(
        &format!(
            "{}/api/v1/whatsapp_configs/{config_id}/health",
            h.kapso_base_url()
        ),
        &[("X-API-Key", KAPSO_API_KEY)],
    )
    .await
}

async fn kapso_ok(h: &SimulatorHandle, config_id: &str) -> Value {
    let r = kapso(h, config_id).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The entity of `entity_type` in a `health_status` object.
fn entity<'a>(health: &'a Value, entity_type: &str) -> &'a Value {
    health["entities"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["entity_type"] == entity_type))
        .unwrap_or_else(|| panic!("no {entity_type} in {health}"))
}

fn entity_types(health: &Value) -> Vec<String> {
    health["entities"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["entity_type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends raw bytes, reads until the server closes, returns what came back.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    timeout(IO_TIMEOUT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("raw request timed out")
}

#[test]
fn cloud_options_have_defaults_and_redact_secrets() {
    let o = SimulatorOptions::default();
    assert_eq!(o.cloud_api_token, "sim-graph-token-0123456789");
    assert_eq!(o.cloud_api_page_size, 2);
    assert_eq!(
        o.dialog360_api_keys,
        ["sim-360-key-0001", "sim-360-key-0002", "sim-360-key-0003"]
    );
    assert_eq!(o.dialog360_min_interval, None);
    assert_eq!(o.kapso_api_key, "sim-kapso-key-0123456789");
    assert_eq!(
        o.kapso_config_ids,
        ["kapso-config-1", "kapso-config-2", "kapso-config-3"]
    );
    let dbg = format!("{o:?}");
    for secret in ["sim-graph-token", "sim-360-key", "sim-kapso-key"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(dbg.contains("kapso-config-1"), "{dbg}");
    assert_eq!(meta::legacy_tier("TIER_2K"), Some("TIER_1K"));
    assert_eq!(meta::legacy_tier("TIER_10K"), Some("TIER_10K"));
    assert_eq!(meta::legacy_tier("TIER_NOT_SET"), None);
    assert_eq!(
        meta::overall(&["AVAILABLE", "LIMITED", "BLOCKED"]),
        "BLOCKED"
    );
    assert_eq!(meta::overall(&["AVAILABLE", "LIMITED"]), "LIMITED");
    assert_eq!(meta::overall(&["AVAILABLE", "whatever"]), "AVAILABLE");
}

#[tokio::test]
async fn handle_base_urls() {
    let h = start(opts()).await;
    assert_eq!(h.cloud_api_base_url(), format!("http://{}/graph", h.addr));
    assert_eq!(
        h.dialog360_base_url(),
        format!("http://{}/360dialog", h.addr)
    );
    assert_eq!(h.kapso_base_url(), format!("http://{}/kapso", h.addr));
    h.shutdown().await;
}

#[tokio::test]
async fn graph_rejects_bad_tokens_with_190() {
    let h = start(opts()).await;
    let url = format!(
        "{}/v24.0/{PRIMARY}?fields=health_status",
        h.cloud_api_base_url()
    );
    let wrong = [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic c2ltOnNpbQ=="),
        Some(CLOUD_API_TOKEN),
    ];
    for (i, auth) in wrong.into_iter().enumerate() {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = get(&url, &headers).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.graph_code(), 190);
        let v = r.json();
        assert_eq!(v["error"]["message"], "Invalid OAuth access token.");
        assert_eq!(v["error"]["type"], "OAuthException");
        assert!(r.header("www-authenticate").is_some());
        assert!(r.header("x-business-use-case-usage").is_some());
        assert!(r.header("x-app-usage").is_some());
        assert_eq!(
            h.simulator()
                .cloud_api_requests(CloudApiEndpoint::PhoneNumber),
            i as u64 + 1
        );
    }
    let lower = format!("bearer {CLOUD_API_TOKEN}");
    let r = get(&url, &[("Authorization", &lower)]).await;
    assert_eq!(r.status, 200);
    // Another token can be configured.
    h.shutdown().await;
    let h = start(SimulatorOptions {
        cloud_api_token: "other-token-000000".into(),
        ..opts()
    })
    .await;
    assert_eq!(graph(&h, &format!("v24.0/{PRIMARY}")).await.status, 401);
    let url = format!("{}/v24.0/{PRIMARY}", h.cloud_api_base_url());
    let r = get(&url, &[("Authorization", "Bearer other-token-000000")]).await;
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn graph_phone_number_fields_depend_on_the_version() {
    let h = start(opts()).await;
    let all = "health_status,quality_rating,whatsapp_business_manager_messaging_limit,\
               messaging_limit_tier,status,name_status,throughput,display_phone_number,\
               verified_name,code_verification_status,account_mode,platform_type";
    for (i, id) in PHONE_NUMBER_IDS.iter().enumerate() {
        let v = graph_ok(&h, &format!("v24.0/{id}?fields={all}")).await;
        assert_eq!(v["id"], *id);
        assert_eq!(v["quality_rating"], "GREEN");
        assert_eq!(v["whatsapp_business_manager_messaging_limit"], "TIER_10K");
        assert_eq!(v["messaging_limit_tier"], "TIER_10K");
        assert_eq!(v["status"], "CONNECTED");
        assert_eq!(v["name_status"], "APPROVED");
        assert_eq!(v["throughput"], json!({"level": "STANDARD"}));
        assert_eq!(v["display_phone_number"], DISPLAY_PHONE_NUMBERS[i]);
        assert_eq!(v["verified_name"], VERIFIED_NAMES[i]);
        assert_eq!(v["code_verification_status"], "VERIFIED");
        assert_eq!(v["account_mode"], "LIVE");
        assert_eq!(v["platform_type"], "CLOUD_API");
        assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");
        assert_eq!(v.as_object().map(|m| m.len()), Some(13));
    }
    // Only what was asked, plus id; URL-encoded commas work.
    let v = graph_ok(
        &h,
        &format!("v24.0/{PRIMARY}?fields=quality_rating%2Cstatus"),
    )
    .await;
    assert_eq!(
        v,
        json!({"quality_rating": "GREEN", "status": "CONNECTED", "id": PRIMARY})
    );
    // The new tier field does not exist before v24.0; the old one does.
    let r = graph(
        &h,
        &format!("v23.0/{PRIMARY}?fields=whatsapp_business_manager_messaging_limit"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.graph_code(), 100);
    assert_eq!(
        r.json()["error"]["message"],
        "(#100) Tried accessing nonexisting field (whatsapp_business_manager_messaging_limit) \
         on node type (WhatsAppBusinessPhoneNumber)"
    );
    let v = graph_ok(&h, &format!("v23.0/{PRIMARY}?fields=messaging_limit_tier")).await;
    assert_eq!(v["messaging_limit_tier"], "TIER_10K");
    let v = graph_ok(
        &h,
        &format!("v25.1/{PRIMARY}?fields=whatsapp_business_manager_messaging_limit"),
    )
    .await;
    assert_eq!(v["whatsapp_business_manager_messaging_limit"], "TIER_10K");
    // Unversioned: the default version (v24.0).
    let v = graph_ok(
        &h,
        &format!("{PRIMARY}?fields=whatsapp_business_manager_messaging_limit"),
    )
    .await;
    assert_eq!(v["whatsapp_business_manager_messaging_limit"], "TIER_10K");
    // Without fields: the default ones.
    let v = graph_ok(&h, &format!("v24.0/{PRIMARY}")).await;
    let keys: BTreeSet<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "id",
            "verified_name",
            "code_verification_status",
            "display_phone_number",
            "quality_rating",
            "platform_type",
            "throughput"
        ]
        .into()
    );
    // Nested selections read as the field.
    let v = graph_ok(
        &h,
        &format!("v24.0/{PRIMARY}?fields=health_status%7Bcan_send_message%7D"),
    )
    .await;
    assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");
    h.shutdown().await;
}

#[tokio::test]
async fn graph_health_status_bodies_follow_meta() {
    let h = start(opts()).await;
    // A number: PHONE_NUMBER, WABA, BUSINESS, APP; SIP on the number and the app.
    let v = graph_ok(&h, &format!("v24.0/{PRIMARY}?fields=health_status")).await;
    let hs = &v["health_status"];
    assert_eq!(v["id"], PRIMARY);
    assert_eq!(hs["can_send_message"], "AVAILABLE");
    assert_eq!(
        entity_types(hs),
        ["PHONE_NUMBER", "WABA", "BUSINESS", "APP"]
    );
    assert_eq!(entity(hs, "PHONE_NUMBER")["id"], PRIMARY);
    assert_eq!(entity(hs, "WABA")["id"], WABA_ID);
    assert_eq!(entity(hs, "BUSINESS")["id"], BUSINESS_ID);
    assert_eq!(entity(hs, "APP")["id"], APP_ID);
    assert_eq!(
        entity(hs, "PHONE_NUMBER")["can_receive_call_sip"],
        "AVAILABLE"
    );
    assert_eq!(entity(hs, "APP")["can_receive_call_sip"], "AVAILABLE");
    assert!(entity(hs, "WABA").get("can_receive_call_sip").is_none());
    assert!(entity(hs, "BUSINESS").get("can_receive_call_sip").is_none());
    for e in hs["entities"].as_array().into_iter().flatten() {
        assert!(e.get("additional_info").is_none() && e.get("errors").is_none());
    }

    // The WABA: its fields and its health (no node entity).
    let v = graph_ok(&h, &format!("v24.0/{WABA_ID}?fields=id,name,health_status")).await;
    assert_eq!(v["id"], WABA_ID);
    assert_eq!(v["name"], WABA_NAME);
    assert_eq!(
        entity_types(&v["health_status"]),
        ["WABA", "BUSINESS", "APP"]
    );
    let r = graph(&h, &format!("v24.0/{WABA_ID}?fields=quality_rating")).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .ends_with("on node type (WhatsAppBusinessAccount)"));

    // The pending template is BLOCKED as in Meta's example.
    let v = graph_ok(
        &h,
        &format!("v24.0/{PENDING_TEMPLATE}?fields=health_status,status,name"),
    )
    .await;
    assert_eq!(v["status"], "PENDING");
    assert_eq!(v["name"], TEMPLATE_NAMES[4]);
    let hs = &v["health_status"];
    assert_eq!(hs["can_send_message"], "BLOCKED");
    assert_eq!(
        entity_types(hs),
        ["MESSAGE_TEMPLATE", "WABA", "BUSINESS", "APP"]
    );
    assert_eq!(
        entity(hs, "MESSAGE_TEMPLATE")["errors"],
        json!([{
            "error_code": 141002,
            "error_description": TEMPLATE_NOT_APPROVED,
            "possible_solution": "Edit or appeal the message template review decision.",
        }])
    );
    assert!(entity(hs, "MESSAGE_TEMPLATE")
        .get("can_receive_call_sip")
        .is_none());
    let v = graph_ok(
        &h,
        &format!("v24.0/{}?fields=health_status", TEMPLATE_IDS[0]),
    )
    .await;
    assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");
    h.shutdown().await;
}

#[tokio::test]
async fn graph_unknown_nodes_fields_paths_and_methods() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let r = graph(&h, "v24.0/999999999?fields=health_status").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.graph_code(), 100);
    let v = r.json();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("Unsupported get request."));
    assert_eq!(v["error"]["error_subcode"], 33);
    // Unknown field, edge on a number, unknown edge, path shapes.
    let r = graph(&h, &format!("v24.0/{PRIMARY}?fields=quality_rating,bogus")).await;
    assert_eq!(
        r.json()["error"]["message"],
        "(#100) Tried accessing nonexisting field (bogus) on node type (WhatsAppBusinessPhoneNumber)"
    );
    let r = graph(&h, &format!("v24.0/{PRIMARY}/phone_numbers")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.graph_code(), 100);
    let r = graph(&h, &format!("v24.0/{WABA_ID}/assigned_users")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.graph_code(), 100);
    let r = graph(&h, "v24.0/999/phone_numbers").await;
    assert_eq!(r.graph_code(), 100);
    for path in ["v24.0", "", "v24.0/a/b/c"] {
        let r = graph(&h, path).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.graph_code(), 2500, "{path}");
        assert!(r.header("x-app-usage").is_some());
    }
    let r = get(
        &format!("{}/v24.0/{PRIMARY}", h.cloud_api_base_url()),
        &[("Authorization", &bearer())],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = client()
        .post(format!("{}/v24.0/{PRIMARY}", h.cloud_api_base_url()))
        .header("Authorization", bearer())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let v: Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    assert_eq!(v["error"]["code"], 100);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("Unsupported post request."));
    // Counted: the requests naming the number (the bad field, the plain GET, the POST);
    // unknown nodes, edges on the number and unknown edges are not.
    assert_eq!(sim.cloud_api_requests(CloudApiEndpoint::PhoneNumber), 3);
    assert_eq!(sim.cloud_api_requests(CloudApiEndpoint::PhoneNumbers), 0);
    assert_eq!(sim.cloud_api_requests(CloudApiEndpoint::Waba), 0);
    h.shutdown().await;
}

/// Follows `next` from `first` and returns every page.
async fn pages(h: &SimulatorHandle, first: &str) -> Vec<Value> {
    let auth = bearer();
    let mut out = vec![graph_ok(h, first).await];
    for _ in 0..20 {
        let Some(next) = out
            .last()
            .and_then(|p| p["paging"]["next"].as_str())
            .map(str::to_string)
        else {
            return out;
        };
        assert!(next.starts_with(&h.cloud_api_base_url()), "{next}");
        let r = get(&next, &[("Authorization", &auth)]).await;
        assert_eq!(r.status, 200, "{next}");
        out.push(r.json());
    }
    panic!("more than 20 pages");
}

fn ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["data"].as_array().cloned().unwrap_or_default())
        .map(|item| item["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn graph_paging_spans_several_pages_and_next_links_work() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let numbers = pages(
        &h,
        &format!(
            "v24.0/{WABA_ID}/phone_numbers?fields=display_phone_number,quality_rating,\
             whatsapp_business_manager_messaging_limit&limit=100"
        ),
    )
    .await;
    assert_eq!(numbers.len(), 2);
    assert_eq!(ids(&numbers), PHONE_NUMBER_IDS);
    assert!(numbers[1]["paging"].get("next").is_none());
    let next = numbers[0]["paging"]["next"].as_str().unwrap_or("");
    assert!(next.contains("fields=") && next.contains("limit=100") && next.contains("after="));
    for page in &numbers {
        for item in page["data"].as_array().into_iter().flatten() {
            assert_eq!(item["quality_rating"], "GREEN");
            assert_eq!(
                item["whatsapp_business_manager_messaging_limit"],
                "TIER_10K"
            );
            assert!(item.get("status").is_none());
        }
        let cursors = &page["paging"]["cursors"];
        assert!(cursors["before"].is_string() && cursors["after"].is_string());
    }
    assert_eq!(sim.cloud_api_requests(CloudApiEndpoint::PhoneNumbers), 2);

    // Templates: 5 over 3 pages, then 5 pages with limit=1.
    let q = "fields=id,name,language,status,category,quality_score";
    let templates = pages(&h, &format!("v24.0/{WABA_ID}/message_templates?{q}")).await;
    assert_eq!(
        templates
            .iter()
            .map(|p| p["data"].as_array().map_or(0, Vec::len))
            .collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert_eq!(ids(&templates), TEMPLATE_IDS);
    let items: Vec<Value> = templates
        .iter()
        .flat_map(|p| p["data"].as_array().cloned().unwrap_or_default())
        .collect();
    for (i, t) in items.iter().enumerate() {
        assert_eq!(t["name"], TEMPLATE_NAMES[i]);
        assert_eq!(t["language"], TEMPLATE_LANGUAGES[i]);
        assert_eq!(t["category"], TEMPLATE_CATEGORIES[i]);
        let want = if i == 4 { "UNKNOWN" } else { "GREEN" };
        // Both shapes Meta sends: an object for the 1st, 3rd, 5th, a string otherwise.
        if i % 2 == 0 {
            assert_eq!(t["quality_score"], json!({"score": want}), "{t}");
        } else {
            assert_eq!(t["quality_score"], want, "{t}");
        }
        assert_eq!(t["status"], if i == 4 { "PENDING" } else { "APPROVED" });
    }
    let one = pages(
        &h,
        &format!("v24.0/{WABA_ID}/message_templates?limit=1&{q}"),
    )
    .await;
    assert_eq!(one.len(), 5);
    assert_eq!(ids(&one), TEMPLATE_IDS);

    // `previous` goes back.
    let prev = one[2]["paging"]["previous"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(one[0]["paging"].get("previous").is_none());
    let r = get(&prev, &[("Authorization", &bearer())]).await;
    assert_eq!(ids(&[r.json()]), [TEMPLATE_IDS[1]]);

    // Bad limit and cursor; past the end.
    let base = format!("v24.0/{WABA_ID}/message_templates");
    for bad in ["limit=0", "limit=abc", "after=zzz", "before=00"] {
        let r = graph(&h, &format!("{base}?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.graph_code(), 100);
    }
    let last = one[4]["paging"]["cursors"]["after"].as_str().unwrap_or("");
    let v = graph_ok(&h, &format!("{base}?after={last}")).await;
    assert_eq!(v, json!({"data": []}));

    // A larger configured page size: one page, no next.
    h.shutdown().await;
    let h = start(SimulatorOptions {
        cloud_api_page_size: 50,
        ..opts()
    })
    .await;
    let all = pages(&h, &format!("v24.0/{WABA_ID}/message_templates")).await;
    assert_eq!(all.len(), 1);
    assert_eq!(ids(&all), TEMPLATE_IDS);
    let three = pages(&h, &format!("v24.0/{WABA_ID}/message_templates?limit=3")).await;
    assert_eq!(three.len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn graph_usage_headers_and_80008_at_100_percent() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let path = format!("v24.0/{PRIMARY}?fields=quality_rating");
    let r = graph(&h, &path).await;
    assert_eq!(
        r.header_json("x-business-use-case-usage"),
        json!({WABA_ID: [{
            "type": "whatsapp_business_management",
            "call_count": INITIAL_BUSINESS_USAGE,
            "total_cputime": INITIAL_BUSINESS_USAGE / 2,
            "total_time": INITIAL_BUSINESS_USAGE / 2,
            "estimated_time_to_regain_access": 0,
        }]})
    );
    assert_eq!(
        r.header_json("x-app-usage"),
        json!({"call_count": INITIAL_APP_USAGE, "total_time": INITIAL_APP_USAGE,
               "total_cputime": INITIAL_APP_USAGE})
    );

    sim.set_cloud_api_usage(85, 30);
    let r = graph(&h, &path).await;
    assert_eq!(r.status, 200);
    let buc = r.header_json("x-business-use-case-usage");
    assert_eq!(buc[WABA_ID][0]["call_count"], 85);
    assert_eq!(buc[WABA_ID][0]["total_time"], 42);
    assert_eq!(r.header_json("x-app-usage")["call_count"], 30);

    sim.set_cloud_api_usage(100, 30);
    for p in [
        path.clone(),
        format!("v24.0/{WABA_ID}/phone_numbers"),
        "v24.0/12345".into(),
    ] {
        let r = graph(&h, &p).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.graph_code(), 80008);
        let v = r.json();
        assert_eq!(
            v["error"]["message"],
            "(#80008) There have been too many calls to this WhatsApp Business account."
        );
        assert_eq!(v["error"]["is_transient"], true);
        let buc = r.header_json("x-business-use-case-usage");
        assert_eq!(buc[WABA_ID][0]["call_count"], 100);
        let regain = buc[WABA_ID][0]["estimated_time_to_regain_access"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(regain, u64::from(REGAIN_ACCESS_MINUTES));
        assert!(regain > 0);
    }
    // The token is checked first; the headers are there too.
    let r = get(
        &format!("{}/{path}", h.cloud_api_base_url()),
        &[("Authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(r.graph_code(), 190);
    assert_eq!(
        r.header_json("x-business-use-case-usage")[WABA_ID][0]["call_count"],
        100
    );

    sim.set_cloud_api_usage(250, 0);
    assert_eq!(graph(&h, &path).await.graph_code(), 80008);
    sim.set_cloud_api_usage(10, 100);
    let r = graph(&h, &path).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.graph_code(), 4);
    assert_eq!(r.json()["error"]["is_transient"], true);
    sim.set_cloud_api_usage(10, 99);
    assert_eq!(graph(&h, &path).await.status, 200);
    sim.reset();
    let r = graph(&h, &path).await;
    assert_eq!(
        r.header_json("x-app-usage")["call_count"],
        INITIAL_APP_USAGE
    );
    h.shutdown().await;
}

#[tokio::test]
async fn graph_faults_apply_per_kind() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let number = format!("v24.0/{PRIMARY}?fields=health_status,quality_rating,status,throughput");
    let waba = format!("v24.0/{WABA_ID}?fields=health_status");
    let numbers = format!("v24.0/{WABA_ID}/phone_numbers?fields=quality_rating,status");

    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(CloudApiFault::GraphError {
            status: 401,
            code: 190,
            message: "Error validating access token: Session has expired.".into(),
        }),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.graph_code(), 190);
    assert_eq!(
        r.json()["error"]["message"],
        "Error validating access token: Session has expired."
    );
    assert!(r.header("x-business-use-case-usage").is_some());
    assert_eq!(graph(&h, &waba).await.status, 200, "other kinds unaffected");

    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(CloudApiFault::GraphError {
            status: 503,
            code: 2,
            message: "Service temporarily unavailable".into(),
        }),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.graph_code(), 2);
    assert_eq!(r.json()["error"]["is_transient"], true);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(CloudApiFault::GraphError {
            status: 400,
            code: 4,
            message: "(#4) Application request limit reached".into(),
        }),
    );
    assert_eq!(graph(&h, &number).await.graph_code(), 4);

    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::MissingField.into()),
    );
    assert_eq!(graph_ok(&h, &number).await, json!({"id": PRIMARY}));
    sim.set_cloud_api_fault(CloudApiEndpoint::PhoneNumber, Some(Fault::NullField.into()));
    let v = graph_ok(&h, &number).await;
    assert!(v["health_status"].is_null() && v["quality_rating"].is_null());
    assert_eq!(v["id"], PRIMARY);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::UnknownValue.into()),
    );
    let v = graph_ok(&h, &number).await;
    assert_eq!(v["health_status"]["can_send_message"], "DEGRADED");
    assert_eq!(
        entity(&v["health_status"], "PHONE_NUMBER")["can_send_message"],
        "DEGRADED"
    );
    assert_eq!(v["quality_rating"], "PURPLE");
    assert_eq!(v["status"], "HIBERNATING");
    assert_eq!(v["throughput"]["level"], "TURBO");
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(
            Fault::ErrorEnvelope {
                status: 500,
                code: 1,
                title: "An unknown error occurred".into(),
            }
            .into(),
        ),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.graph_code(), 1);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(
            Fault::TooManyRequests {
                retry_after: Some("7".into()),
            }
            .into(),
        ),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.graph_code(), 4);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::ServiceUnavailable { retry_after: None }.into()),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.graph_code(), 2);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::Status(502).into()),
    );
    let r = graph(&h, &number).await;
    assert_eq!(r.status, 502);
    assert!(String::from_utf8_lossy(&r.body).contains("502 Bad Gateway"));
    assert!(r.header("x-app-usage").is_some());
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::MalformedJson.into()),
    );
    let r = graph(&h, &number).await;
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    sim.set_cloud_api_fault(CloudApiEndpoint::PhoneNumber, Some(Fault::EmptyBody.into()));
    assert!(graph(&h, &number).await.body.is_empty());
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::OversizedBody(100_000).into()),
    );
    assert_eq!(graph(&h, &number).await.body.len(), 100_000);
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumber,
        Some(Fault::Slow(Duration::from_millis(200)).into()),
    );
    let t0 = tokio::time::Instant::now();
    assert_eq!(graph(&h, &number).await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    sim.set_cloud_api_fault(CloudApiEndpoint::PhoneNumber, None);
    assert_eq!(graph(&h, &number).await.status, 200);

    // Edges: the field faults damage every item.
    sim.set_cloud_api_fault(
        CloudApiEndpoint::PhoneNumbers,
        Some(Fault::MissingField.into()),
    );
    let v = graph_ok(&h, &numbers).await;
    assert_eq!(
        v["data"],
        json!([{"id": PHONE_NUMBER_IDS[0]}, {"id": PHONE_NUMBER_IDS[1]}])
    );
    assert!(v["paging"]["next"].is_string());
    sim.set_cloud_api_fault(
        CloudApiEndpoint::MessageTemplates,
        Some(Fault::UnknownValue.into()),
    );
    let v = graph_ok(
        &h,
        &format!("v24.0/{WABA_ID}/message_templates?fields=status,quality_score"),
    )
    .await;
    assert_eq!(v["data"][0]["quality_score"], json!({"score": "PURPLE"}));
    assert_eq!(v["data"][1]["quality_score"], "PURPLE");
    assert_eq!(v["data"][1]["status"], "HIBERNATING");
    // Truncated and Hang.
    sim.set_cloud_api_fault(CloudApiEndpoint::Waba, Some(Fault::Truncated.into()));
    let resp = client()
        .get(format!("{}/{waba}", h.cloud_api_base_url()))
        .header("Authorization", bearer())
        .send()
        .await
        .expect("head arrives");
    assert!(resp.bytes().await.is_err());
    sim.set_cloud_api_fault(CloudApiEndpoint::Template, Some(Fault::Hang.into()));
    let err = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client")
        .get(format!(
            "{}/v24.0/{}",
            h.cloud_api_base_url(),
            TEMPLATE_IDS[0]
        ))
        .header("Authorization", bearer())
        .send()
        .await
        .expect_err("hangs");
    assert!(err.is_timeout());
    // Faults come after the token check, and unknown nodes are never faulted.
    let r = get(
        &format!("{}/{waba}", h.cloud_api_base_url()),
        &[("Authorization", "Bearer x")],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(graph(&h, "v24.0/424242").await.graph_code(), 100);
    timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown ends the hanging request");
}

#[tokio::test]
async fn dialog360_serves_one_number_per_key() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    for (i, key) in DIALOG360_API_KEYS.iter().enumerate() {
        let r = dialog360(&h, key).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["id"], PHONE_NUMBER_IDS[i]);
        let hs = &v["health_status"];
        assert_eq!(hs["can_send_message"], "AVAILABLE");
        assert_eq!(
            entity_types(hs),
            ["PHONE_NUMBER", "WABA", "BUSINESS", "APP"]
        );
        assert_eq!(entity(hs, "PHONE_NUMBER")["id"], PHONE_NUMBER_IDS[i]);
        assert_eq!(entity(hs, "WABA")["id"], WABA_ID);
        // The same body as the Graph API's for that number.
        let g = graph_ok(
            &h,
            &format!("v24.0/{}?fields=health_status", PHONE_NUMBER_IDS[i]),
        )
        .await;
        assert_eq!(g, v);
    }
    let url = format!("{}/health_status", h.dialog360_base_url());
    let unauthorized =
        json!({"meta": {"httpCode": 401, "developerMessage": "Invalid api_key", "success": false}});
    for headers in [
        vec![],
        vec![("D360-API-KEY", "wrong-key")],
        vec![("D360-API-KEY", "")],
        vec![("Authorization", "Bearer sim-360-key-0001")],
    ] {
        let r = get(&url, &headers).await;
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.json(), unauthorized);
    }
    // Header names are case-insensitive.
    assert_eq!(
        get(&url, &[("d360-api-key", DIALOG360_API_KEYS[1])])
            .await
            .status,
        200
    );
    let r = client()
        .post(&url)
        .header("D360-API-KEY", DIALOG360_API_KEYS[0])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);
    let before = sim.dialog360_requests();
    let r = get(
        &format!("{}/v1/other", h.dialog360_base_url()),
        &[("D360-API-KEY", DIALOG360_API_KEYS[0])],
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["meta"]["success"], false);
    assert_eq!(
        sim.dialog360_requests(),
        before,
        "unknown paths not counted"
    );
    assert_eq!(sim.dialog360_requests(), 3 + 4 + 1 + 1);
    h.shutdown().await;
}

#[tokio::test]
async fn dialog360_rate_limit_per_key() {
    let h = start(SimulatorOptions {
        dialog360_min_interval: Some(Duration::from_millis(400)),
        ..opts()
    })
    .await;
    let [a, b, _] = DIALOG360_API_KEYS;
    assert_eq!(dialog360(&h, a).await.status, 200);
    let r = dialog360(&h, a).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"meta": {"httpCode": 400,
            "developerMessage": "You have exceeded the limit of 1 request every 0.4 seconds",
            "success": false}})
    );
    // Other keys have their own clock; a wrong key is still 401.
    assert_eq!(dialog360(&h, b).await.status, 200);
    assert_eq!(dialog360(&h, "nope").await.status, 401);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(dialog360(&h, a).await.status, 200);
    h.shutdown().await;

    let h = start(SimulatorOptions {
        dialog360_min_interval: Some(Duration::from_secs(1)),
        ..opts()
    })
    .await;
    assert_eq!(dialog360(&h, a).await.status, 200);
    let r = dialog360(&h, a).await;
    assert_eq!(
        r.json()["meta"]["developerMessage"],
        "You have exceeded the limit of 1 request every 1 seconds"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn kapso_health_shape_auth_and_unknown_configs() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    for (i, config) in KAPSO_CONFIG_IDS.iter().enumerate() {
        let v = kapso_ok(&h, config).await;
        assert_eq!(v["status"], "healthy");
        assert!(v.get("error").is_none());
        let ts = v["timestamp"].as_str().unwrap_or("");
        let ts = chrono::DateTime::parse_from_rfc3339(ts).expect("timestamp");
        assert!((chrono::Utc::now() - ts.with_timezone(&chrono::Utc)).num_seconds() < 5);
        let checks = &v["checks"];
        assert_eq!(
            checks["phone_number_access"],
            json!({"passed": true, "details": {
                "verified_name": VERIFIED_NAMES[i],
                "display_phone_number": DISPLAY_PHONE_NUMBERS[i],
                "quality_rating": "GREEN",
                "id": PHONE_NUMBER_IDS[i],
            }})
        );
        let mh = &checks["messaging_health"];
        assert_eq!(mh["passed"], true);
        assert_eq!(mh["overall_status"], "AVAILABLE");
        assert_eq!(
            entity(&mh["details"], "PHONE_NUMBER")["id"],
            PHONE_NUMBER_IDS[i]
        );
        assert_eq!(
            checks["webhook_subscription"],
            json!({"passed": true, "details": {
                "app_id": 634974688087057u64, "subscribed": true, "subscribed_fields": null,
            }})
        );
        assert_eq!(checks["webhook_verified"]["passed"], true);
        assert_eq!(
            checks["webhook_verified"]["details"]["verified_at"],
            KAPSO_WEBHOOK_VERIFIED_AT
        );
    }
    let url = format!(
        "{}/api/v1/whatsapp_configs/{}/health",
        h.kapso_base_url(),
        KAPSO_CONFIG_IDS[0]
    );
    for headers in [
        vec![],
        vec![("X-API-Key", "wrong")],
        vec![("Authorization", "Bearer sim-kapso-key-0123456789")],
    ] {
        let r = get(&url, &headers).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"error": "Invalid API key"}));
    }
    let r = kapso(&h, "no-such-config").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "WhatsApp config not found"}));
    // The key comes first.
    let r = get(
        &format!(
            "{}/api/v1/whatsapp_configs/no-such-config/health",
            h.kapso_base_url()
        ),
        &[],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = client()
        .delete(&url)
        .header("X-API-Key", KAPSO_API_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);
    let before = sim.kapso_requests();
    for path in ["/api/v1/whatsapp_configs//health", "/api/v1/x", ""] {
        let r = get(
            &format!("{}{path}", h.kapso_base_url()),
            &[("X-API-Key", KAPSO_API_KEY)],
        )
        .await;
        assert_eq!(r.status, 404, "{path}");
    }
    assert_eq!(sim.kapso_requests(), before);
    assert_eq!(before, 3 + 3 + 1 + 1 + 1);
    h.shutdown().await;
}

#[tokio::test]
async fn kapso_error_state_and_messages() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let config = KAPSO_CONFIG_IDS[2];
    sim.set_kapso_status(config, "error", Some("Meta API request failed: timeout"));
    let v = kapso_ok(&h, config).await;
    assert!(v["timestamp"].is_string());
    let mut without_ts = v.clone();
    if let Some(m) = without_ts.as_object_mut() {
        m.remove("timestamp");
    }
    assert_eq!(
        without_ts,
        json!({"status": "error", "error": "Meta API request failed: timeout", "checks": {}})
    );
    sim.set_kapso_status(config, "error", None);
    assert_eq!(kapso_ok(&h, config).await["error"], KAPSO_DEFAULT_ERROR);
    // Other statuses keep their checks; an error message rides along.
    sim.set_kapso_status(config, "degraded", Some("Webhook delivery failures"));
    let v = kapso_ok(&h, config).await;
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["error"], "Webhook delivery failures");
    assert!(v["checks"]["messaging_health"].is_object());
    sim.set_kapso_status(config, "healthy", None);
    let v = kapso_ok(&h, config).await;
    assert!(v.get("error").is_none());
    assert_eq!(kapso_ok(&h, KAPSO_CONFIG_IDS[0]).await["status"], "healthy");
    h.shutdown().await;
}

#[tokio::test]
async fn provider_faults_per_channel_and_config() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let [k1, k2, k3] = DIALOG360_API_KEYS;
    sim.set_dialog360_fault(Some(k2), Some(Fault::MissingField));
    assert_eq!(
        dialog360(&h, k2).await.json(),
        json!({"id": PHONE_NUMBER_IDS[1]})
    );
    assert_eq!(
        dialog360(&h, k1).await.json()["health_status"]["can_send_message"],
        "AVAILABLE"
    );
    sim.set_dialog360_fault(Some("not-a-key"), Some(Fault::Hang));
    assert_eq!(dialog360(&h, k3).await.status, 200);
    sim.set_dialog360_fault(None, Some(Fault::NullField));
    for k in DIALOG360_API_KEYS {
        assert!(dialog360(&h, k).await.json()["health_status"].is_null());
    }
    sim.set_dialog360_fault(None, Some(Fault::UnknownValue));
    let v = dialog360(&h, k1).await.json();
    assert_eq!(v["health_status"]["can_send_message"], "DEGRADED");
    assert_eq!(
        entity(&v["health_status"], "WABA")["can_send_message"],
        "DEGRADED"
    );
    sim.set_dialog360_fault(
        Some(k1),
        Some(Fault::ErrorEnvelope {
            status: 500,
            code: 0,
            title: "Internal error".into(),
        }),
    );
    let r = dialog360(&h, k1).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({"meta": {"httpCode": 500, "developerMessage": "Internal error", "success": false}})
    );
    sim.set_dialog360_fault(
        Some(k1),
        Some(Fault::TooManyRequests {
            retry_after: Some("3".into()),
        }),
    );
    let r = dialog360(&h, k1).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    sim.set_dialog360_fault(None, None);
    assert_eq!(
        dialog360(&h, k3).await.json()["health_status"]["can_send_message"],
        "AVAILABLE"
    );
    // A fault never hides a bad key.
    sim.set_dialog360_fault(None, Some(Fault::Status(502)));
    assert_eq!(dialog360(&h, "bad").await.status, 401);
    assert_eq!(dialog360(&h, k1).await.status, 502);
    sim.set_dialog360_fault(None, None);

    let [c1, c2, _] = KAPSO_CONFIG_IDS;
    sim.set_kapso_fault(Some(c1), Some(Fault::MissingField));
    let v = kapso_ok(&h, c1).await;
    assert!(v.get("status").is_none() && v["checks"].is_object());
    assert_eq!(kapso_ok(&h, c2).await["status"], "healthy");
    sim.set_kapso_fault(Some(c1), Some(Fault::NullField));
    assert!(kapso_ok(&h, c1).await["status"].is_null());
    sim.set_kapso_fault(Some(c1), Some(Fault::UnknownValue));
    let v = kapso_ok(&h, c1).await;
    assert_eq!(v["status"], "flaky");
    assert_eq!(
        v["checks"]["messaging_health"]["overall_status"],
        "DEGRADED"
    );
    sim.set_kapso_fault(
        None,
        Some(Fault::ServiceUnavailable {
            retry_after: Some("60".into()),
        }),
    );
    let r = kapso(&h, c2).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(
        r.json(),
        json!({"error": "Service temporarily unavailable"})
    );
    sim.set_kapso_fault(
        None,
        Some(Fault::ErrorEnvelope {
            status: 422,
            code: 0,
            title: "Unprocessable".into(),
        }),
    );
    let r = kapso(&h, c2).await;
    assert_eq!(
        (r.status, r.json()),
        (422, json!({"error": "Unprocessable"}))
    );
    assert_eq!(
        kapso(&h, "unknown").await.status,
        404,
        "unknown configs unfaulted"
    );
    sim.set_kapso_fault(None, None);
    assert_eq!(kapso_ok(&h, c1).await["status"], "healthy");
    h.shutdown().await;
}

#[tokio::test]
async fn cloud_setters_change_every_api() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let fields = "health_status,quality_rating,whatsapp_business_manager_messaging_limit,\
                  messaging_limit_tier,status,name_status,throughput";
    let number = |id: &str| format!("v24.0/{id}?fields={fields}");

    // Phone health with and without detail.
    sim.set_phone_health(PRIMARY, "LIMITED", Some("Custom limit"));
    let v = graph_ok(&h, &number(PRIMARY)).await;
    let pn = entity(&v["health_status"], "PHONE_NUMBER");
    assert_eq!(pn["can_send_message"], "LIMITED");
    assert_eq!(pn["additional_info"], json!(["Custom limit"]));
    assert!(pn.get("errors").is_none());
    assert_eq!(v["health_status"]["can_send_message"], "LIMITED");
    sim.set_phone_health(PRIMARY, "LIMITED", None);
    let v = graph_ok(&h, &number(PRIMARY)).await;
    assert_eq!(
        entity(&v["health_status"], "PHONE_NUMBER")["additional_info"],
        json!([DISPLAY_NAME_LIMIT])
    );
    sim.set_phone_health(PRIMARY, "BLOCKED", Some("Number banned"));
    let v = graph_ok(&h, &number(PRIMARY)).await;
    let pn = entity(&v["health_status"], "PHONE_NUMBER");
    assert_eq!(pn["errors"][0]["error_description"], "Number banned");
    assert!(pn["errors"][0]["error_code"].is_i64());
    assert!(pn["errors"][0]["possible_solution"].is_string());
    assert!(pn.get("additional_info").is_none());
    assert_eq!(v["health_status"]["can_send_message"], "BLOCKED");
    // 360dialog and Kapso see it too.
    let d = dialog360(&h, DIALOG360_API_KEYS[0]).await.json();
    assert_eq!(d["health_status"]["can_send_message"], "BLOCKED");
    let k = kapso_ok(&h, KAPSO_CONFIG_IDS[0]).await;
    assert_eq!(k["checks"]["messaging_health"]["passed"], false);
    assert_eq!(k["checks"]["messaging_health"]["overall_status"], "BLOCKED");
    sim.set_phone_health(PRIMARY, "AVAILABLE", Some("ignored"));
    let v = graph_ok(&h, &number(PRIMARY)).await;
    let pn = entity(&v["health_status"], "PHONE_NUMBER");
    assert!(pn.get("errors").is_none() && pn.get("additional_info").is_none());

    // Shared entities: every number's overall follows.
    sim.set_entity_status("WABA", WABA_ID, "LIMITED");
    for id in PHONE_NUMBER_IDS {
        let v = graph_ok(&h, &number(id)).await;
        assert_eq!(v["health_status"]["can_send_message"], "LIMITED");
        assert!(entity(&v["health_status"], "WABA")["additional_info"].is_array());
    }
    sim.set_entity_status("BUSINESS", BUSINESS_ID, "BLOCKED");
    let v = graph_ok(&h, &format!("v24.0/{WABA_ID}?fields=health_status")).await;
    assert_eq!(v["health_status"]["can_send_message"], "BLOCKED");
    assert_eq!(
        entity(&v["health_status"], "BUSINESS")["errors"][0]["error_code"],
        141010
    );
    sim.set_entity_status("APP", APP_ID, "LIMITED");
    sim.set_call_sip_status(APP_ID, "BLOCKED");
    sim.set_call_sip_status(SECOND, "LIMITED");
    sim.set_entity_status("WABA", "not-the-waba", "BLOCKED");
    sim.set_entity_status("NOPE", WABA_ID, "BLOCKED");
    let v = graph_ok(&h, &number(SECOND)).await;
    let hs = &v["health_status"];
    assert_eq!(entity(hs, "APP")["can_send_message"], "LIMITED");
    assert_eq!(entity(hs, "APP")["can_receive_call_sip"], "BLOCKED");
    assert_eq!(
        entity(hs, "PHONE_NUMBER")["can_receive_call_sip"],
        "LIMITED"
    );
    assert_eq!(entity(hs, "WABA")["can_send_message"], "LIMITED");
    sim.set_entity_health(
        "MESSAGE_TEMPLATE",
        TEMPLATE_IDS[0],
        "LIMITED",
        Some("Low quality"),
    );
    let v = graph_ok(
        &h,
        &format!("v24.0/{}?fields=health_status", TEMPLATE_IDS[0]),
    )
    .await;
    assert_eq!(
        entity(&v["health_status"], "MESSAGE_TEMPLATE")["additional_info"],
        json!(["Low quality"])
    );
    sim.reset();

    // Number fields.
    sim.set_quality(SECOND, "YELLOW");
    sim.set_tier(SECOND, "TIER_2K");
    sim.set_phone_status(SECOND, "FLAGGED");
    sim.set_name_status(SECOND, "DECLINED");
    sim.set_throughput(SECOND, "HIGH");
    sim.set_quality("000", "RED");
    let v = graph_ok(&h, &number(SECOND)).await;
    assert_eq!(v["quality_rating"], "YELLOW");
    assert_eq!(v["whatsapp_business_manager_messaging_limit"], "TIER_2K");
    assert_eq!(v["messaging_limit_tier"], "TIER_1K");
    assert_eq!(v["status"], "FLAGGED");
    assert_eq!(v["name_status"], "DECLINED");
    assert_eq!(v["throughput"], json!({"level": "HIGH"}));
    assert_eq!(
        kapso_ok(&h, KAPSO_CONFIG_IDS[1]).await["checks"]["phone_number_access"]["details"]
            ["quality_rating"],
        "YELLOW"
    );
    sim.set_tier(SECOND, "TIER_NOT_SET");
    let v = graph_ok(&h, &number(SECOND)).await;
    assert_eq!(
        v["whatsapp_business_manager_messaging_limit"],
        "TIER_NOT_SET"
    );
    assert!(v.get("messaging_limit_tier").is_none());
    // The primary is untouched.
    let v = graph_ok(&h, &number(PRIMARY)).await;
    assert_eq!(v["quality_rating"], "GREEN");

    // Templates.
    let templates = |h: &SimulatorHandle| {
        let url = format!(
            "v24.0/{WABA_ID}/message_templates?fields=name,status,quality_score,language,category&limit=100"
        );
        let h_url = format!("{}/{url}", h.cloud_api_base_url());
        async move {
            let auth = bearer();
            let mut all = Vec::new();
            let mut next = Some(h_url);
            for _ in 0..10 {
                let Some(u) = next.take() else { break };
                let v = get(&u, &[("Authorization", &auth)]).await.json();
                all.extend(v["data"].as_array().cloned().unwrap_or_default());
                next = v["paging"]["next"].as_str().map(str::to_string);
            }
            all
        }
    };
    sim.set_template_status(TEMPLATE_IDS[0], "PAUSED");
    sim.set_template_quality(TEMPLATE_IDS[0], "RED");
    sim.set_template_quality(TEMPLATE_IDS[1], "YELLOW");
    let all = templates(&h).await;
    assert_eq!(all[0]["status"], "PAUSED");
    assert_eq!(all[0]["quality_score"], json!({"score": "RED"}));
    assert_eq!(all[1]["quality_score"], "YELLOW");
    let v = graph_ok(
        &h,
        &format!("v24.0/{}?fields=health_status", TEMPLATE_IDS[0]),
    )
    .await;
    let t = entity(&v["health_status"], "MESSAGE_TEMPLATE");
    assert_eq!(t["can_send_message"], "BLOCKED");
    assert_eq!(t["errors"][0]["error_code"], 141002);
    sim.set_template_status(PENDING_TEMPLATE, "APPROVED");
    let v = graph_ok(
        &h,
        &format!("v24.0/{PENDING_TEMPLATE}?fields=health_status"),
    )
    .await;
    assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");

    sim.remove_template(TEMPLATE_IDS[2]);
    sim.remove_template("no-such-template");
    assert_eq!(
        graph(&h, &format!("v24.0/{}", TEMPLATE_IDS[2]))
            .await
            .graph_code(),
        100
    );
    sim.add_template(
        "555000111222333",
        "new_promo",
        "es_ES",
        "MARKETING",
        "PENDING",
    );
    let all = templates(&h).await;
    let ids: Vec<&str> = all.iter().map(|t| t["id"].as_str().unwrap_or("")).collect();
    assert_eq!(
        ids,
        [
            TEMPLATE_IDS[0],
            TEMPLATE_IDS[1],
            TEMPLATE_IDS[3],
            TEMPLATE_IDS[4],
            "555000111222333"
        ]
    );
    assert_eq!(sim.template_ids(), ids);
    let new = &all[4];
    assert_eq!(new["name"], "new_promo");
    assert_eq!(new["language"], "es_ES");
    assert_eq!(new["category"], "MARKETING");
    assert_eq!(new["status"], "PENDING");
    assert!(
        new["quality_score"] == json!("UNKNOWN")
            || new["quality_score"] == json!({"score": "UNKNOWN"})
    );
    let v = graph_ok(&h, "v24.0/555000111222333?fields=health_status").await;
    assert_eq!(v["health_status"]["can_send_message"], "BLOCKED");
    sim.add_template(
        "555000111222333",
        "new_promo",
        "es_ES",
        "MARKETING",
        "APPROVED",
    );
    assert_eq!(sim.template_ids().len(), 5);
    let v = graph_ok(&h, "v24.0/555000111222333?fields=status").await;
    assert_eq!(v["status"], "APPROVED");

    // Kapso webhooks.
    sim.set_webhook_subscribed(KAPSO_CONFIG_IDS[1], false);
    sim.set_webhook_verified(KAPSO_CONFIG_IDS[1], false);
    sim.set_webhook_subscribed("no-such-config", false);
    let v = kapso_ok(&h, KAPSO_CONFIG_IDS[1]).await;
    assert_eq!(v["checks"]["webhook_subscription"]["passed"], false);
    assert_eq!(
        v["checks"]["webhook_subscription"]["details"]["subscribed"],
        false
    );
    assert_eq!(v["checks"]["webhook_verified"]["passed"], false);
    assert!(v["checks"]["webhook_verified"]["details"]["verified_at"].is_null());
    assert_eq!(
        kapso_ok(&h, KAPSO_CONFIG_IDS[0]).await["checks"]["webhook_subscription"]["passed"],
        true
    );

    // reset() brings everything back.
    sim.reset();
    assert_eq!(sim.template_ids(), TEMPLATE_IDS);
    let v = graph_ok(&h, &number(SECOND)).await;
    assert_eq!(v["quality_rating"], "GREEN");
    assert_eq!(v["messaging_limit_tier"], "TIER_10K");
    assert_eq!(
        kapso_ok(&h, KAPSO_CONFIG_IDS[1]).await["checks"]["webhook_subscription"]["passed"],
        true
    );
    h.shutdown().await;
}

/// What the scenario test reads after each step.
#[derive(Debug, Default)]
struct Seen {
    primary: Vec<String>,
    quality: Vec<String>,
    tier: Vec<String>,
    old_tier: Vec<String>,
    template: Vec<String>,
    kapso: Vec<String>,
    webhook: Vec<bool>,
}

/// Consecutive duplicates removed.
fn changes<T: PartialEq + Clone>(seq: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for v in seq {
        if out.last() != Some(v) {
            out.push(v.clone());
        }
    }
    out
}

/// Every body of every Cloud API route (Kapso timestamps removed).
async fn snapshot(h: &SimulatorHandle) -> Vec<Value> {
    let all = "health_status,quality_rating,whatsapp_business_manager_messaging_limit,\
               messaging_limit_tier,status,name_status,throughput,display_phone_number,\
               verified_name,code_verification_status,account_mode,platform_type";
    let mut out = Vec::new();
    for id in PHONE_NUMBER_IDS {
        out.push(graph_ok(h, &format!("v24.0/{id}?fields={all}")).await);
    }
    for id in TEMPLATE_IDS {
        out.push(
            graph_ok(
                h,
                &format!(
                    "v24.0/{id}?fields=name,language,status,category,quality_score,health_status"
                ),
            )
            .await,
        );
    }
    out.push(graph_ok(h, &format!("v24.0/{WABA_ID}?fields=id,name,health_status")).await);
    for key in DIALOG360_API_KEYS {
        out.push(dialog360(h, key).await.json());
    }
    for config in KAPSO_CONFIG_IDS {
        let mut v = kapso_ok(h, config).await;
        if let Some(m) = v.as_object_mut() {
            m.remove("timestamp");
        }
        out.push(v);
    }
    out
}

#[tokio::test]
async fn cloud_step_moves_through_every_listed_state() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let initial = snapshot(&h).await;
    let mut seen = Seen::default();
    let mut saw_limited_info = false;
    let mut saw_blocked_errors = false;
    let mut saw_template_blocked = false;
    let mut saw_kapso_error_shape = false;
    let mut record = |seen: &mut Seen, v: &[Value; 4], k1: &Value, k2: &Value| {
        let [p, s, t, th] = v;
        let pn = entity(&p["health_status"], "PHONE_NUMBER");
        let state = pn["can_send_message"].as_str().unwrap_or("").to_string();
        if state == "LIMITED" {
            assert_eq!(pn["additional_info"], json!([DISPLAY_NAME_LIMIT]));
            assert_eq!(p["health_status"]["can_send_message"], "LIMITED");
            saw_limited_info = true;
        }
        if state == "BLOCKED" {
            assert!(pn["errors"][0]["error_code"].is_i64(), "{pn}");
            assert_eq!(p["health_status"]["can_send_message"], "BLOCKED");
            saw_blocked_errors = true;
        }
        seen.primary.push(state);
        seen.quality
            .push(s["quality_rating"].as_str().unwrap_or("").into());
        seen.tier.push(
            s["whatsapp_business_manager_messaging_limit"]
                .as_str()
                .unwrap_or("")
                .into(),
        );
        seen.old_tier
            .push(s["messaging_limit_tier"].as_str().unwrap_or("").into());
        let status = t["status"].as_str().unwrap_or("").to_string();
        let te = entity(&th["health_status"], "MESSAGE_TEMPLATE");
        if status == "PAUSED" {
            assert_eq!(te["can_send_message"], "BLOCKED");
            assert_eq!(te["errors"][0]["error_code"], 141002);
            assert_eq!(te["errors"][0]["error_description"], TEMPLATE_NOT_APPROVED);
            saw_template_blocked = true;
        } else {
            assert_eq!(te["can_send_message"], "AVAILABLE");
        }
        seen.template.push(status);
        let ks = k1["status"].as_str().unwrap_or("").to_string();
        if ks == "error" {
            assert_eq!(k1["checks"], json!({}));
            assert!(k1["error"].is_string());
            saw_kapso_error_shape = true;
        }
        seen.kapso.push(ks);
        seen.webhook.push(
            k2["checks"]["webhook_subscription"]["passed"]
                .as_bool()
                .unwrap_or(true),
        );
    };
    let read = |h: &SimulatorHandle| {
        let base = h.cloud_api_base_url();
        async move {
            let auth = bearer();
            let g = |p: String| {
                let url = format!("{base}/{p}");
                let auth = auth.clone();
                async move { get(&url, &[("Authorization", &auth)]).await.json() }
            };
            [
                g(format!("v24.0/{PRIMARY}?fields=health_status")).await,
                g(format!(
                    "v24.0/{SECOND}?fields=quality_rating,whatsapp_business_manager_messaging_limit,messaging_limit_tier"
                ))
                .await,
                g(format!("v24.0/{SCENARIO_TEMPLATE}?fields=status,quality_score")).await,
                g(format!("v24.0/{SCENARIO_TEMPLATE}?fields=health_status")).await,
            ]
        }
    };
    let v = read(&h).await;
    let k1 = kapso_ok(&h, KAPSO_CONFIG_IDS[0]).await;
    let k2 = kapso_ok(&h, KAPSO_CONFIG_IDS[1]).await;
    record(&mut seen, &v, &k1, &k2);
    for _ in 0..SCENARIO_LEN {
        sim.step();
        let v = read(&h).await;
        let k1 = kapso_ok(&h, KAPSO_CONFIG_IDS[0]).await;
        let k2 = kapso_ok(&h, KAPSO_CONFIG_IDS[1]).await;
        record(&mut seen, &v, &k1, &k2);
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        changes(&seen.primary),
        s(&["AVAILABLE", "LIMITED", "BLOCKED", "AVAILABLE"])
    );
    assert_eq!(
        changes(&seen.quality),
        s(&["GREEN", "YELLOW", "RED", "GREEN"])
    );
    assert_eq!(changes(&seen.tier), s(&["TIER_10K", "TIER_2K", "TIER_10K"]));
    assert_eq!(
        changes(&seen.old_tier),
        s(&["TIER_10K", "TIER_1K", "TIER_10K"])
    );
    assert_eq!(
        changes(&seen.template),
        s(&["APPROVED", "PAUSED", "APPROVED"])
    );
    assert_eq!(
        changes(&seen.kapso),
        s(&["healthy", "degraded", "unhealthy", "error", "healthy"])
    );
    assert_eq!(changes(&seen.webhook), [true, false, true]);
    assert!(
        saw_limited_info && saw_blocked_errors && saw_template_blocked && saw_kapso_error_shape
    );
    assert_eq!(sim.steps(), SCENARIO_LEN);

    // A full cycle is back to the initial state, on every route.
    assert_eq!(snapshot(&h).await, initial);
    // And reset() too, from the middle of the cycle.
    for _ in 0..4 {
        sim.step();
    }
    assert_ne!(snapshot(&h).await, initial);
    sim.reset();
    assert_eq!(snapshot(&h).await, initial);
    h.shutdown().await;
}

#[tokio::test]
async fn cloud_initial_state_is_deterministic() {
    let a = start(opts()).await;
    let b = start(opts()).await;
    let (sa, sb) = (snapshot(&a).await, snapshot(&b).await);
    assert_eq!(sa, sb);
    let pa = pages(&a, &format!("v24.0/{WABA_ID}/message_templates")).await;
    let pb = pages(&b, &format!("v24.0/{WABA_ID}/message_templates")).await;
    assert_eq!(ids(&pa), ids(&pb));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn cloud_garbage_requests_do_not_hurt_the_server() {
    let h = start(opts()).await;
    let auth = format!("Authorization: Bearer {CLOUD_API_TOKEN}\r\n");
    let inputs = [
        format!("GET /graph/v24.0/{PRIMARY}?fields=%ff%fe,%%%,{{{{,}}}}}} HTTP/1.1\r\n{auth}Connection: close\r\n\r\n"),
        format!("GET /graph/v24.0/{WABA_ID}/phone_numbers?limit=99999999999999999999999&after=%zz HTTP/1.1\r\n{auth}Connection: close\r\n\r\n"),
        format!("GET /graph/v24.0/{WABA_ID}/phone_numbers?&&=&limit HTTP/1.1\r\n{auth}Connection: close\r\n\r\n"),
        format!("GET /graph/v24.0/{PRIMARY}?fields={} HTTP/1.1\r\n{auth}Connection: close\r\n\r\n", "x".repeat(20_000)),
        "GET /graph/v24.0/1 HTTP/1.1\r\nAuthorization: Bearer \u{e9}\r\nConnection: close\r\n\r\n".to_string(),
        "GET /360dialog/health_status HTTP/1.1\r\nD360-API-KEY: \u{e9}\u{e9}\r\nConnection: close\r\n\r\n".to_string(),
        "GET /kapso/api/v1/whatsapp_configs/%ff%00/health HTTP/1.1\r\nX-API-Key: sim-kapso-key-0123456789\r\nConnection: close\r\n\r\n".to_string(),
        "GET /graph/v24.0/1 HTTP/1.0\r\n\r\n".to_string(),
    ];
    for input in &inputs {
        let out = raw(h.addr, input.as_bytes()).await;
        assert!(out.starts_with("HTTP/1."), "{input:?} -> {out:?}");
        let status: u16 = out
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!((200..500).contains(&status), "{input:?} -> {out}");
    }
    // No Host (HTTP/1.0): page links fall back to the listening address.
    let out = raw(
        h.addr,
        format!("GET /graph/v24.0/{WABA_ID}/phone_numbers HTTP/1.0\r\n{auth}\r\n").as_bytes(),
    )
    .await;
    assert!(
        out.contains(&format!(
            "http://{}/graph/v24.0/{WABA_ID}/phone_numbers?after=",
            h.addr
        )),
        "{out}"
    );
    assert_eq!(graph(&h, &format!("v24.0/{PRIMARY}")).await.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn graph_waba_expands_its_edges_with_their_fields_and_limits() {
    let h = start(opts()).await;
    let v = graph_ok(
        &h,
        &format!("v24.0/{WABA_ID}?fields=health_status,phone_numbers.limit(100){{id,quality_rating}},message_templates.limit(1){{id,status}},subscribed_apps"),
    )
    .await;
    assert_eq!(v["id"], WABA_ID);
    assert_eq!(v["health_status"]["can_send_message"], "AVAILABLE");
    // Pages hold two items here whatever the limit: the third number is on the edge's
    // next page, which the link names with the inner fields kept.
    let numbers = &v["phone_numbers"];
    assert_eq!(numbers["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        numbers["data"][0],
        json!({"id": PRIMARY, "quality_rating": "GREEN"})
    );
    let next = numbers["paging"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{}/v24.0/{WABA_ID}/phone_numbers?",
            h.cloud_api_base_url()
        )),
        "{next}"
    );
    let rest = get(next, &[("Authorization", &bearer())]).await.json();
    assert_eq!(
        rest["data"],
        json!([{"id": PHONE_NUMBER_IDS[2], "quality_rating": "GREEN"}])
    );
    assert_eq!(
        v["message_templates"]["data"],
        json!([{"id": TEMPLATE_IDS[0], "status": "APPROVED"}])
    );
    assert_eq!(
        v["subscribed_apps"],
        json!({"data": [{"whatsapp_business_api_data": {
            "id": APP_ID,
            "link": format!("https://www.facebook.com/games/?app_id={APP_ID}"),
            "name": meta::APP_NAME,
        }}], "paging": {"cursors": {"before": v["subscribed_apps"]["paging"]["cursors"]["before"], "after": v["subscribed_apps"]["paging"]["cursors"]["after"]}}})
    );
    // The client WABA: its own number and WABA entity, no templates, no app subscribed.
    let client = graph_ok(
        &h,
        &format!("v24.0/{}?fields=health_status,phone_numbers{{id,health_status}},message_templates,subscribed_apps", meta::CLIENT_WABA_ID),
    )
    .await;
    let number = &client["phone_numbers"]["data"][0];
    assert_eq!(number["id"], meta::CLIENT_PHONE_NUMBER_IDS[0]);
    assert_eq!(
        entity(&number["health_status"], "WABA")["id"],
        meta::CLIENT_WABA_ID
    );
    assert_eq!(
        entity(&client["health_status"], "WABA")["id"],
        meta::CLIENT_WABA_ID
    );
    assert_eq!(client["message_templates"], json!({"data": []}));
    assert_eq!(client["subscribed_apps"], json!({"data": []}));
    // The edge itself answers the same.
    let apps = graph_ok(
        &h,
        &format!("v24.0/{}/subscribed_apps", meta::CLIENT_WABA_ID),
    )
    .await;
    assert_eq!(apps, json!({"data": []}));
    assert_eq!(h.simulator().cloud_api_requests(CloudApiEndpoint::Waba), 2);
    assert_eq!(
        h.simulator()
            .cloud_api_requests(CloudApiEndpoint::SubscribedApps),
        1
    );
}

#[tokio::test]
async fn graph_business_lists_owned_and_client_wabas() {
    let h = start(opts()).await;
    for (edge, id) in [
        ("owned_whatsapp_business_accounts", WABA_ID),
        ("client_whatsapp_business_accounts", meta::CLIENT_WABA_ID),
    ] {
        let v = graph_ok(
            &h,
            &format!("v24.0/{BUSINESS_ID}/{edge}?fields=id,name&limit=100"),
        )
        .await;
        assert_eq!(ids(&[v]), vec![id.to_string()], "{edge}");
    }
    assert_eq!(
        h.simulator()
            .cloud_api_requests(CloudApiEndpoint::BusinessWabas),
        2
    );
    let r = graph(&h, &format!("v24.0/{BUSINESS_ID}/phone_numbers")).await;
    assert_eq!((r.status, r.graph_code()), (400, 100));
}

#[tokio::test]
async fn graph_multi_id_lookup_answers_each_number_or_fails_whole() {
    let h = start(opts()).await;
    let client_number = meta::CLIENT_PHONE_NUMBER_IDS[0];
    for root in ["v24.0/", "v24.0", ""] {
        let v = graph_ok(
            &h,
            &format!("{root}?ids={PRIMARY},{client_number}&fields=id,status"),
        )
        .await;
        assert_eq!(
            v,
            json!({
                PRIMARY: {"id": PRIMARY, "status": "CONNECTED"},
                client_number: {"id": client_number, "status": "CONNECTED"},
            }),
            "{root}"
        );
    }
    let r = graph(&h, &format!("v24.0/?ids={PRIMARY},999&fields=id")).await;
    assert_eq!((r.status, r.graph_code()), (404, 803));
    assert_eq!(
        r.json()["error"]["message"],
        "(#803) Some of the aliases you requested do not exist: 999"
    );
    let many: Vec<String> = (0..51).map(|_| PRIMARY.to_string()).collect();
    let r = graph(&h, &format!("v24.0/?ids={}&fields=id", many.join(","))).await;
    assert_eq!((r.status, r.graph_code()), (400, 100));
    assert_eq!(h.simulator().cloud_api_requests(CloudApiEndpoint::Ids), 5);
}

#[tokio::test]
async fn graph_debug_token_tells_validity_expiry_and_scopes() {
    let h = start(opts()).await;
    let started = h.simulator().started_at().timestamp();
    let v = graph_ok(
        &h,
        &format!("v24.0/debug_token?input_token={CLOUD_API_TOKEN}"),
    )
    .await;
    let data = &v["data"];
    assert_eq!(data["is_valid"], true);
    assert_eq!(data["app_id"], APP_ID);
    assert_eq!(data["expires_at"], started + 4 * 24 * 3600);
    assert_eq!(data["data_access_expires_at"], started + 90 * 24 * 3600);
    assert_eq!(
        data["scopes"],
        json!([
            "business_management",
            "whatsapp_business_management",
            "whatsapp_business_messaging"
        ])
    );
    let other = graph_ok(&h, "v24.0/debug_token?input_token=someone-elses").await;
    assert_eq!(
        other,
        json!({"data": {"error": {"code": 190, "message": "Invalid OAuth access token."}, "is_valid": false, "scopes": []}})
    );
    let r = graph(&h, "v24.0/debug_token").await;
    assert_eq!((r.status, r.graph_code()), (400, 100));
    // Without a lifetime the token never expires: Graph's 0.
    let forever = start(SimulatorOptions {
        cloud_api_token_lifetime: None,
        ..opts()
    })
    .await;
    let v = graph_ok(
        &forever,
        &format!("debug_token?input_token={CLOUD_API_TOKEN}"),
    )
    .await;
    assert_eq!(v["data"]["expires_at"], 0);
}
