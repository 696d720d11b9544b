//! Published payloads, run through the real binary.
//!
//! Every body under tests/corpus/ was published by someone else (Meta's documentation and
//! OpenAPI description, provider documentation, the test fixtures of client libraries and
//! monitoring tools), copied as published, with a `.source.md` beside it naming where it
//! comes from and what it means. Here a mock upstream on 127.0.0.1 answers the real
//! binary's requests with them, and each case asserts what the payload means on /metrics:
//! the exact series, the poll's result and reason, and what was skipped. Graph's multi-id
//! lookups and field-expanded reads are put together from the published answers of their
//! parts, as Graph documents them (see `answer_of`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::ExporterProcess;
use common::{has_line, promtool_check};

/// How one request of a case is answered: the first rule whose text is in the request's
/// path and query wins.
struct Rule {
    contains: &'static str,
    status: u16,
    /// A file under tests/corpus/, or an inline body when it starts with `{`.
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const fn answer(contains: &'static str, status: u16, body: &'static str) -> Rule {
    Rule {
        contains,
        status,
        body,
        headers: &[],
    }
}

/// The expected lines of a case, as owned strings.
macro_rules! lines {
    ($($line:expr),* $(,)?) => {
        vec![$(String::from($line)),*]
    };
}

struct Case {
    /// The target's name, and its path prefix on the mock upstream.
    name: &'static str,
    /// The target's keys besides name and base_url.
    keys: &'static str,
    rules: Vec<Rule>,
    /// Lines that must all be on /metrics (`{t}` is the target label); a counter written
    /// `series >= 1` counts at least once (the binary polls every second).
    expect: Vec<String>,
    /// Series prefixes that must not be there.
    absent: Vec<&'static str>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn body_of(rule: &Rule) -> Vec<u8> {
    if rule.body.starts_with('{') {
        return rule.body.as_bytes().to_vec();
    }
    let path = corpus_dir().join(rule.body);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The mock upstream: answers each request of case `/<name>/...` by that case's rules.
struct Upstream {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start(cases: Arc<Vec<Case>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let cases = Arc::clone(&cases);
                    std::thread::spawn(move || serve(stream, &cases));
                }
            })
        };
        Upstream {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection: read the head (and any body), answer, close.
fn serve(stream: TcpStream, cases: &[Case]) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut request_body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut request_body);
    let answer = cases.iter().find_map(|case| {
        let rest = target.strip_prefix(&format!("/{}/", case.name))?;
        Some(answer_of(case, rest))
    });
    let (status, body, headers) = answer.unwrap_or((404, b"{}".to_vec(), &[]));
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

type Answer = (u16, Vec<u8>, &'static [(&'static str, &'static str)]);

fn rule_of<'a>(case: &'a Case, request: &str) -> Option<&'a Rule> {
    case.rules.iter().find(|r| request.contains(r.contains))
}

/// The answer to `request` (path and query after the case's prefix): its rule's. Graph
/// also answers two kinds of requests by putting the answers of simpler ones together, and
/// the published payloads are those simpler answers, so for a `cloud_api` case they are
/// put together here the way Graph documents it:
/// - a multi-id lookup, `GET /?ids=a,b&fields=...`, is `{"a": <GET /a?fields=...>, ...}`
///   ("Multiple ID Read Requests"); one id answered with an error fails the whole lookup
///   with that answer, as Graph refuses a lookup naming an id it cannot read;
/// - a node read expanding edges, `GET /{node}?fields=health_status,phone_numbers{...}`,
///   is the node with each edge's page (`GET /{node}/phone_numbers`) under the edge's name
///   ("Field Expansion"), and each plain field as `GET /{node}?fields=<field>` answers it;
///   an edge or field answered with an error fails the whole read.
fn answer_of(case: &Case, request: &str) -> Answer {
    let graph = case.keys.contains("type: cloud_api");
    let (path, query) = request.split_once('?').unwrap_or((request, ""));
    let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let fields = param("fields").unwrap_or("");
    if let (true, Some(ids)) = (graph, param("ids")) {
        let mut lookup = serde_json::Map::new();
        for id in ids.split(',') {
            let (status, body, headers) = answer_of(case, &format!("{path}{id}?fields={fields}"));
            if !(200..300).contains(&status) {
                return (status, body, headers);
            }
            let node = serde_json::from_slice(&body).expect("a published node is JSON");
            lookup.insert(id.to_owned(), node);
        }
        return (200, serde_json::to_vec(&lookup).expect("JSON"), &[]);
    }
    let parts = top_level_fields(fields);
    let is_edge = |f: &&str| EDGES.contains(&field_name(f));
    let node = path.rsplit('/').next().unwrap_or("");
    if !graph || !parts.iter().any(is_edge) || path.matches('/').count() != 1 {
        return match rule_of(case, request) {
            Some(rule) => (rule.status, body_of(rule), rule.headers),
            None => (404, b"{}".to_vec(), &[]),
        };
    }
    let mut read = serde_json::Map::new();
    read.insert("id".to_owned(), node.into());
    for part in &parts {
        let name = field_name(part);
        let edge = EDGES.contains(&name);
        let asked = match (edge, part.split_once('{')) {
            (true, Some((_, inner))) => {
                format!("{path}/{name}?fields={}", inner.trim_end_matches('}'))
            }
            (true, None) => format!("{path}/{name}"),
            (false, _) => format!("{path}?fields={name}"),
        };
        let (status, body, headers) = answer_of(case, &asked);
        if !(200..300).contains(&status) {
            return (status, body, headers);
        }
        let serde_json::Value::Object(mut answer) =
            serde_json::from_slice(&body).expect("a published answer is JSON")
        else {
            panic!("{asked}: not a JSON object");
        };
        // A whole node answer holds the field itself; an edge's own page is the edge.
        let value = match answer.remove(name) {
            Some(value) => Some(value),
            None if edge && answer.contains_key("data") => Some(answer.into()),
            None => None,
        };
        if let Some(value) = value {
            read.insert(name.to_owned(), value);
        }
    }
    (200, serde_json::to_vec(&read).expect("JSON"), &[])
}

/// The edges of a WABA that Graph can expand in the WABA's own answer.
const EDGES: &[&str] = &["phone_numbers", "message_templates", "subscribed_apps"];

/// `a,b.limit(5){c,d},e` → `a`, `b.limit(5){c,d}`, `e`.
fn top_level_fields(fields: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in fields.char_indices() {
        match c {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&fields[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&fields[start..]);
    parts.retain(|p| !p.is_empty());
    parts
}

/// `phone_numbers.limit(100){id}` → `phone_numbers`.
fn field_name(part: &str) -> &str {
    part.split(['.', '{']).next().unwrap_or(part)
}

fn scrape(address: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the exporter");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    match response.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_owned(),
        None => String::new(),
    }
}

fn line(template: &str, target: &str) -> String {
    template.replace("{t}", &format!("target=\"{target}\""))
}

/// Whether /metrics has `expected`: the exact line, or for `series >= N` the series at N or
/// more.
fn satisfied(metrics: &str, expected: &str) -> bool {
    match expected.split_once(" >= ") {
        None => has_line(metrics, expected),
        Some((series, least)) => {
            let least: f64 = least.parse().expect("a number after >=");
            common::value(metrics, series).is_some_and(|v| v >= least)
        }
    }
}

/// A target whose every request is answered with `status` and the body of `file`, and
/// whose polls of `endpoint` must fail with `reason`.
fn fails(
    name: &'static str,
    keys: &'static str,
    status: u16,
    file: &'static str,
    endpoint: &str,
    reason: &str,
) -> Case {
    Case {
        name,
        keys,
        rules: vec![answer("", status, file)],
        expect: vec![format!(
            r#"whatsapp_poll_errors_total{{{{t}},endpoint="{endpoint}",reason="{reason}"}} >= 1"#
        )],
        absent: vec![],
    }
}

fn cases() -> Vec<Case> {
    vec![
        // --- On-Premises ---------------------------------------------------------------------
        Case {
            name: "onprem-ha-1011",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "v1/health",
                200,
                "onprem/health-ha-master-unregistered-core-error-1011.json",
            )],
            expect: lines![
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-master-441234567890-0",status="unregistered"} 1"#,
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-master-441234567890-0",status="connected"} 0"#,
                r#"whatsapp_node_role{{t},node="10.212.65.151:wa-master-441234567890-0",role="primary_master"} 1"#,
                // The node that answered errors: in no state, with its error.
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-core-441234567890-1",status="connected"} 0"#,
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-core-441234567890-1",status="disconnected"} 0"#,
                r#"whatsapp_node_error_info{{t},node="10.212.65.151:wa-core-441234567890-1",code="1011",title="Service not ready"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="health"} 0"#,
            ],
            absent: vec![],
        },
        Case {
            name: "onprem-ha-core-connected",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "v1/health",
                200,
                "onprem/health-ha-master-disconnected-core-connected.json",
            )],
            expect: lines![
                r#"whatsapp_gateway_status{{t},node="10.210.71.117:wa-master-447418342132-0",status="disconnected"} 1"#,
                r#"whatsapp_gateway_status{{t},node="10.210.72.103:wa-core-447418342132-0",status="connected"} 1"#,
                r#"whatsapp_node_role{{t},node="10.210.72.103:wa-core-447418342132-0",role="coreapp"} 1"#,
                r#"whatsapp_up{{t}} 1"#,
            ],
            absent: vec!["whatsapp_node_error_info{target=\"onprem-ha-core-connected\""],
        },
        Case {
            name: "onprem-multiconnect",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "v1/health",
                200,
                "onprem/health-multiconnect-5-nodes-partial.json",
            )],
            expect: lines![
                r#"whatsapp_gateway_status{{t},node="10.210.70.141:wa-core-97145031111-2",status="disconnected"} 1"#,
                r#"whatsapp_gateway_status{{t},node="10.210.71.84:wa-master-97145031111-0",status="connected"} 1"#,
                r#"whatsapp_api_info{{t},version="v2.21.6",api_status="stable"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "onprem-single-node",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "v1/health",
                200,
                "onprem/health-single-core-disconnected.json",
            )],
            expect: lines![
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-core-441234567890-1",status="disconnected"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
            ],
            absent: vec!["whatsapp_node_role{target=\"onprem-single-node\""],
        },
        Case {
            name: "onprem-doc-template",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            // Meta's reference lists the allowed values joined by " | ": an unknown state,
            // exported as its own series beside the known ones at 0.
            rules: vec![answer("v1/health", 200, "onprem/health-ha-doc-template.json")],
            expect: lines![
                r#"whatsapp_gateway_status{{t},node="your-hostname1:your-container-id1",status="connected"} 0"#,
                r#"whatsapp_gateway_status{{t},node="your-hostname1:your-container-id1",status="connected | connecting | disconnected | uninitialized | unregistered"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "onprem-login",
            keys: "type: onprem\n    endpoints: [health]\n    username: admin\n    password: corpus-password-1",
            rules: vec![
                answer("v1/users/login", 200, "onprem/login-ok.json"),
                answer(
                    "v1/health",
                    200,
                    "onprem/health-primary-master-connected.json",
                ),
            ],
            expect: lines![
                // expires_after "2021-09-14 15:29:26+00:00"
                r#"whatsapp_auth_token_expiry_timestamp_seconds{{t}} 1631633366"#,
                r#"whatsapp_up{{t}} 1"#,
                r#"whatsapp_gateway_status{{t},node="10.212.65.151:wa-master-441234567890-0",status="connected"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "onprem-1005",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer("v1/health", 401, "onprem/error-1005-access-denied.json")],
            expect: lines![
                r#"whatsapp_poll_success{{t},endpoint="health"} 0"#,
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="unauthorized"} >= 1"#,
            ],
            absent: vec!["whatsapp_gateway_status{target=\"onprem-1005\""],
        },
        Case {
            name: "onprem-1006",
            keys: "type: onprem\n    endpoints: [health]\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "v1/health",
                404,
                "onprem/error-1006-resource-not-found.json",
            )],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="http_status"} >= 1"#,
            ],
            absent: vec![],
        },
        // --- Cloud API on Graph --------------------------------------------------------------
        Case {
            name: "graph-connected-1k",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1234567890123456\"]",
            rules: vec![
                answer("debug_token", 200, "cloud_api/debug-token-user-expiring.json"),
                answer(
                    "1234567890123456",
                    200,
                    "cloud_api/phone-number-connected-tier-1k.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_phone_quality_rating{{t},phone_number_id="1234567890123456",rating="GREEN"} 1"#,
                r#"whatsapp_phone_number_status{{t},phone_number_id="1234567890123456",status="CONNECTED"} 1"#,
                r#"whatsapp_phone_name_status{{t},phone_number_id="1234567890123456",status="APPROVED"} 1"#,
                r#"whatsapp_phone_messaging_limit_tier{{t},phone_number_id="1234567890123456",tier="TIER_1K"} 1"#,
                r#"whatsapp_phone_messaging_limit{{t},phone_number_id="1234567890123456"} 1000"#,
                r#"whatsapp_phone_number_info{{t},phone_number_id="1234567890123456",display_phone_number="+1 631-555-5555",verified_name="Jasper's Market"} 1"#,
                // A long-lived user token: valid, with its expiry and its one scope.
                r#"whatsapp_access_token_valid{{t}} 1"#,
                r#"whatsapp_access_token_expiry_timestamp_seconds{{t}} 1673934788"#,
                r#"whatsapp_access_token_data_access_expiry_timestamp_seconds{{t}} 1676526788"#,
                r#"whatsapp_access_token_scope{{t},scope="public_profile"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-unverified",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"2345678901234567\"]",
            rules: vec![
                // Graph answers 200 for a token it cannot read: what it says is the token's
                // state, not a failed check.
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-invalid-190-not-decrypted.json",
                ),
                answer(
                    "2345678901234567",
                    200,
                    "cloud_api/phone-number-unverified.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_phone_number_status{{t},phone_number_id="2345678901234567",status="UNVERIFIED"} 1"#,
                r#"whatsapp_phone_quality_rating{{t},phone_number_id="2345678901234567",rating="NA"} 1"#,
                r#"whatsapp_phone_name_status{{t},phone_number_id="2345678901234567",status="NONE"} 1"#,
                r#"whatsapp_access_token_valid{{t}} 0"#,
                r#"whatsapp_poll_success{{t},endpoint="token"} 1"#,
            ],
            absent: vec![
                "whatsapp_phone_messaging_limit_tier{target=\"graph-unverified\"",
                "whatsapp_access_token_expiry_timestamp_seconds{target=\"graph-unverified\"",
                "whatsapp_access_token_scope{target=\"graph-unverified\"",
            ],
        },
        Case {
            name: "graph-tier-250",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    api_version: v24.0\n    phone_number_ids: [\"106540352242922\"]",
            rules: vec![
                // An expired token: invalid, yet its expiry and scopes are still told.
                answer("debug_token", 200, "cloud_api/debug-token-expired-463.json"),
                answer(
                    "106540352242922",
                    200,
                    "cloud_api/phone-number-messaging-limit-tier-250.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_phone_messaging_limit_tier{{t},phone_number_id="106540352242922",tier="TIER_250"} 1"#,
                r#"whatsapp_phone_messaging_limit{{t},phone_number_id="106540352242922"} 250"#,
                r#"whatsapp_access_token_valid{{t}} 0"#,
                r#"whatsapp_access_token_expiry_timestamp_seconds{{t}} 1668613551"#,
                r#"whatsapp_access_token_data_access_expiry_timestamp_seconds{{t}} 1671205551"#,
                r#"whatsapp_access_token_scope{{t},scope="email"} 1"#,
                r#"whatsapp_access_token_scope{{t},scope="public_profile"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-limited",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"106540352242922\"]",
            rules: vec![
                // The token asks about itself and Graph refuses it (190): invalid.
                answer("debug_token", 400, "cloud_api/error-190-debug-only-token.json"),
                answer(
                    "106540352242922",
                    200,
                    "cloud_api/health-status-phone-limited-display-name.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_messaging_health_status{{t},status="LIMITED"} 1"#,
                r#"whatsapp_can_send_message{{t},entity_type="PHONE_NUMBER",entity_id="106540352242922",status="LIMITED"} 1"#,
                r#"whatsapp_can_send_message{{t},entity_type="WABA",entity_id="102290129340398",status="AVAILABLE"} 1"#,
                r#"whatsapp_entity_limitation_info{{t},entity_type="PHONE_NUMBER",entity_id="106540352242922",info="Your display name has not been approved yet. Your message limit will increase after the display name is approved."} 1"#,
                r#"whatsapp_access_token_valid{{t}} 0"#,
                r#"whatsapp_poll_success{{t},endpoint="token"} 1"#,
            ],
            absent: vec!["whatsapp_access_token_scope{target=\"graph-limited\""],
        },
        Case {
            name: "graph-template-blocked",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"2632273056924580\"]",
            rules: vec![
                // The asking token may not inspect tokens: the check fails, and says nothing
                // of the token's validity.
                answer(
                    "debug_token",
                    400,
                    "cloud_api/error-100-debug-token-needs-app-token.json",
                ),
                answer(
                    "2632273056924580",
                    200,
                    "cloud_api/health-status-template-blocked-141002.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_messaging_health_status{{t},status="BLOCKED"} 1"#,
                r#"whatsapp_can_send_message{{t},entity_type="MESSAGE_TEMPLATE",entity_id="2632273056924580",status="BLOCKED"} 1"#,
                r#"whatsapp_entity_error_info{{t},entity_type="MESSAGE_TEMPLATE",entity_id="2632273056924580",error_code="141002",error_description="Message templates can only be sent out if they are approved.",possible_solution="Edit or appeal the message template review decision."} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="token"} 0"#,
                r#"whatsapp_poll_errors_total{{t},endpoint="token",reason="http_status"} >= 1"#,
            ],
            absent: vec!["whatsapp_access_token_valid{target=\"graph-template-blocked\""],
        },
        Case {
            name: "graph-sip-blocked",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"597727103418254\"]",
            // Overall BLOCKED while every entity may send: calling is what is blocked.
            rules: vec![answer(
                "597727103418254",
                200,
                "cloud_api/health-status-sip-blocked-138024.json",
            )],
            expect: lines![
                r#"whatsapp_messaging_health_status{{t},status="BLOCKED"} 1"#,
                r#"whatsapp_can_send_message{{t},entity_type="PHONE_NUMBER",entity_id="597727103418254",status="AVAILABLE"} 1"#,
                r#"whatsapp_can_receive_call_sip{{t},entity_type="PHONE_NUMBER",entity_id="597727103418254",status="BLOCKED"} 1"#,
                r#"whatsapp_can_receive_call_sip{{t},entity_type="APP",entity_id="634974688087057",status="BLOCKED"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-waba",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    waba_id: \"102290129340398\"\n    discover: true",
            // One request: the WABA's health_status with its numbers, templates and webhook
            // subscriptions expanded, each as its own published page.
            rules: vec![
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-system-user-never-expires.json",
                ),
                answer(
                    "/phone_numbers",
                    200,
                    "cloud_api/phone-numbers-page-quality-na.json",
                ),
                answer(
                    "/message_templates",
                    200,
                    "cloud_api/message-templates-page-full-components.json",
                ),
                answer(
                    "/subscribed_apps",
                    200,
                    "cloud_api/subscribed-apps-override-callback.json",
                ),
                answer(
                    "102290129340398?",
                    200,
                    "cloud_api/health-status-phone-available.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_template_status{{t},template_id="1192339204654487",template_name="hello_world",language="en_US",status="APPROVED"} 1"#,
                r#"whatsapp_template_status{{t},template_id="920070352646140",template_name="2023_april_promo",language="en_US",status="APPROVED"} 1"#,
                r#"whatsapp_phone_quality_rating{{t},phone_number_id="1906385232743451",rating="GREEN"} 1"#,
                r#"whatsapp_phone_quality_rating{{t},phone_number_id="1913623884432103",rating="NA"} 1"#,
                r#"whatsapp_phone_number_info{{t},phone_number_id="1906385232743451",display_phone_number="+1 631-555-5555",verified_name="Jasper's Market"} 1"#,
                r#"whatsapp_messaging_health_status{{t},status="AVAILABLE"} 1"#,
                // An app with an alternate callback is subscribed all the same.
                r#"whatsapp_webhook_subscribed_apps{{t},waba_id="102290129340398"} 1"#,
                r#"whatsapp_webhook_app_subscribed{{t},waba_id="102290129340398",app_id="670843887433847",app_name="Lucky Shrub"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="health"} 0"#,
                // A system user token: valid, and never expires (Graph's 0).
                r#"whatsapp_access_token_valid{{t}} 1"#,
                r#"whatsapp_access_token_expiry_timestamp_seconds{{t}} +Inf"#,
                r#"whatsapp_access_token_data_access_expiry_timestamp_seconds{{t}} +Inf"#,
                r#"whatsapp_access_token_scope{{t},scope="whatsapp_business_management"} 1"#,
                r#"whatsapp_access_token_scope{{t},scope="whatsapp_business_messaging"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="token"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-waba-live",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    waba_id: \"443766598811720\"\n    discover: true",
            // A WABA answer Graph gave with its phone_numbers edge expanded (a live capture):
            // it holds that edge only, so the read is that edge, without health_status,
            // templates or subscriptions.
            rules: vec![answer(
                "443766598811720",
                200,
                "cloud_api/waba-phone-numbers-expanded-live.json",
            )],
            expect: lines![
                r#"whatsapp_phone_quality_rating{{t},phone_number_id="378162705390851",rating="GREEN"} 1"#,
                r#"whatsapp_phone_throughput_level{{t},phone_number_id="378162705390851",level="STANDARD"} 1"#,
                r#"whatsapp_phone_number_info{{t},phone_number_id="378162705390851",display_phone_number="+52 1 612 555 0100",verified_name="Lavarenta"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="health"} 0"#,
            ],
            absent: vec![
                "whatsapp_messaging_health_status{target=\"graph-waba-live\"",
                "whatsapp_template_status{target=\"graph-waba-live\"",
                "whatsapp_webhook_subscribed_apps{target=\"graph-waba-live\"",
            ],
        },
        Case {
            name: "graph-ids-fallback",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1906385232743451\", \"1913623884432103\"]",
            // Graph cannot read the second number, so it refuses the lookup of both; each is
            // then asked alone and the readable one stays.
            rules: vec![
                answer(
                    "1906385232743451",
                    200,
                    "cloud_api/phone-number-connected-tier-1k.json",
                ),
                answer(
                    "1913623884432103",
                    400,
                    "cloud_api/error-100-33-object-not-found.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_phone_number_status{{t},phone_number_id="1234567890123456",status="CONNECTED"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-templates-relayed",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    waba_id: \"102290129340398\"\n    discover: true",
            // The page asked for name, category and status only (no language), and its
            // `next` names graph.facebook.com: the listing goes on from paging.cursors.after
            // on the configured host instead.
            rules: vec![
                answer("after=QVFIU", 200, r#"{"data":[]}"#),
                answer(
                    "/message_templates",
                    200,
                    "cloud_api/message-templates-page-approved-pending-rejected.json",
                ),
                answer("/phone_numbers", 200, r#"{"data":[]}"#),
                answer("/subscribed_apps", 200, "cloud_api/subscribed-apps-none.json"),
                answer(
                    "102290129340398?",
                    200,
                    "cloud_api/health-status-phone-available.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_template_status{{t},template_id="1387372356726668",template_name="reservation_confirmation",language="",status="APPROVED"} 1"#,
                r#"whatsapp_template_status{{t},template_id="1137051647947973",template_name="address_update",language="",status="PENDING"} 1"#,
                r#"whatsapp_template_status{{t},template_id="1166414785519855",template_name="reservation_confirmation_short_banner",language="",status="REJECTED"} 1"#,
                // No app subscribed: the WABA's webhooks go nowhere.
                r#"whatsapp_webhook_subscribed_apps{{t},waba_id="102290129340398"} 0"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="health"} 0"#,
            ],
            absent: vec!["whatsapp_webhook_app_subscribed{target=\"graph-templates-relayed\""],
        },
        Case {
            name: "graph-business",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    business_id: \"1234567890\"",
            // A business that owns two WABAs and serves two clients' WABAs. Each WABA is one
            // request, its parts published pages; every series of a WABA names it.
            rules: vec![
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-system-user-never-expires.json",
                ),
                answer(
                    "owned_whatsapp_business_accounts",
                    200,
                    "cloud_api/owned-wabas-page-cursors.json",
                ),
                // The client listing's `next` names graph.facebook.com: it goes on from
                // its cursor here, and that page is the last.
                answer("after=QVFIUjNpUWpVWmRBd0Rn", 200, r#"{"data":[]}"#),
                answer(
                    "client_whatsapp_business_accounts",
                    200,
                    "cloud_api/client-wabas-page-next.json",
                ),
                answer(
                    "102290129340398/phone_numbers",
                    200,
                    "cloud_api/phone-numbers-page-quality-na.json",
                ),
                answer(
                    "102290129340398/message_templates",
                    200,
                    "cloud_api/message-templates-page-full-components.json",
                ),
                answer(
                    "102290129340398/subscribed_apps",
                    200,
                    "cloud_api/subscribed-apps-override-callback.json",
                ),
                answer(
                    "102290129340398?",
                    200,
                    "cloud_api/health-status-phone-limited-display-name.json",
                ),
                answer("after=QVFIU", 200, r#"{"data":[]}"#),
                answer(
                    "104996122399160/phone_numbers",
                    200,
                    "cloud_api/phone-numbers-page-linked-pending-after-cursor.json",
                ),
                answer(
                    "104996122399160/message_templates",
                    200,
                    "cloud_api/message-templates-page-approved-pending-rejected.json",
                ),
                answer(
                    "104996122399160/subscribed_apps",
                    200,
                    "cloud_api/subscribed-apps-two-apps.json",
                ),
                answer(
                    "104996122399160?",
                    200,
                    "cloud_api/health-status-phone-available.json",
                ),
                answer(
                    "1234567890123456/subscribed_apps",
                    200,
                    "cloud_api/subscribed-apps-none.json",
                ),
                answer("1234567890123456/", 200, r#"{"data":[]}"#),
                answer(
                    "1234567890123456?",
                    200,
                    "cloud_api/health-status-sip-blocked-138024.json",
                ),
                // The client WABA still pending review is not the token's to read.
                answer(
                    "2345678901234567",
                    403,
                    "cloud_api/error-200-permission-1349174.json",
                ),
            ],
            expect: lines![
                r#"whatsapp_business_wabas{{t}} 4"#,
                r#"whatsapp_poll_success{{t},endpoint="discovery"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="discovery"} 0"#,
                r#"whatsapp_access_token_valid{{t}} 1"#,
                r#"whatsapp_access_token_expiry_timestamp_seconds{{t}} +Inf"#,
                r#"whatsapp_access_token_scope{{t},scope="whatsapp_business_management"} 1"#,
                // Owned: limited by its number's display name.
                r#"whatsapp_messaging_health_status{{t},waba_id="102290129340398",status="LIMITED"} 1"#,
                r#"whatsapp_can_send_message{{t},waba_id="102290129340398",entity_type="WABA",entity_id="102290129340398",status="AVAILABLE"} 1"#,
                r#"whatsapp_phone_quality_rating{{t},waba_id="102290129340398",phone_number_id="1913623884432103",rating="NA"} 1"#,
                r#"whatsapp_template_status{{t},waba_id="102290129340398",template_id="1192339204654487",template_name="hello_world",language="en_US",status="APPROVED"} 1"#,
                r#"whatsapp_webhook_subscribed_apps{{t},waba_id="102290129340398"} 1"#,
                r#"whatsapp_webhook_app_subscribed{{t},waba_id="102290129340398",app_id="670843887433847",app_name="Lucky Shrub"} 1"#,
                // Owned: available, a number pending, templates relayed with their `next`.
                r#"whatsapp_messaging_health_status{{t},waba_id="104996122399160",status="AVAILABLE"} 1"#,
                r#"whatsapp_phone_number_status{{t},waba_id="104996122399160",phone_number_id="1913623884432103",status="PENDING"} 1"#,
                r#"whatsapp_phone_messaging_limit_tier{{t},waba_id="104996122399160",phone_number_id="1906385232743451",tier="TIER_1K"} 1"#,
                r#"whatsapp_template_status{{t},waba_id="104996122399160",template_id="1137051647947973",template_name="address_update",language="",status="PENDING"} 1"#,
                r#"whatsapp_webhook_subscribed_apps{{t},waba_id="104996122399160"} 2"#,
                r#"whatsapp_webhook_app_subscribed{{t},waba_id="104996122399160",app_id="2345678901234567",app_name="Customer Support Bot"} 1"#,
                // A client's: calling blocked, no app subscribed.
                r#"whatsapp_messaging_health_status{{t},waba_id="1234567890123456",status="BLOCKED"} 1"#,
                r#"whatsapp_can_receive_call_sip{{t},waba_id="1234567890123456",entity_type="APP",entity_id="634974688087057",status="BLOCKED"} 1"#,
                r#"whatsapp_webhook_subscribed_apps{{t},waba_id="1234567890123456"} 0"#,
                // The unreadable one is skipped alone.
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="health"} >= 1"#,
            ],
            absent: vec![
                "whatsapp_messaging_health_status{target=\"graph-business\",waba_id=\"2345678901234567\"",
                "whatsapp_webhook_subscribed_apps{target=\"graph-business\",waba_id=\"2345678901234567\"",
            ],
        },
        Case {
            name: "graph-190",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1\"]",
            rules: vec![answer(
                "",
                401,
                "cloud_api/error-190-463-session-expired.json",
            )],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="unauthorized"} >= 1"#,
                // debug_token asked with the refused token meets the same 190: invalid.
                r#"whatsapp_access_token_valid{{t}} 0"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-80007",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1\"]",
            rules: vec![
                // The token check (asked first) passes: the health requests meet the error.
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-system-user-never-expires.json",
                ),
                answer("", 400, "cloud_api/error-80007-waba-rate-limit.json"),
            ],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="rate_limited"} >= 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-4",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1\"]",
            rules: vec![
                // The token check (asked first) passes: the health requests meet the error.
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-system-user-never-expires.json",
                ),
                answer("", 400, "cloud_api/error-4-app-rate-limit.json"),
            ],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="rate_limited"} >= 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-2",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1\"]",
            rules: vec![
                // The token check (asked first) passes: the health requests meet the error.
                answer(
                    "debug_token",
                    200,
                    "cloud_api/debug-token-system-user-never-expires.json",
                ),
                answer("", 500, "cloud_api/error-2-service-unavailable.json"),
            ],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="unavailable"} >= 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "graph-200",
            keys: "type: cloud_api\n    access_token: corpus-token-0123\n    phone_number_ids: [\"1\"]",
            rules: vec![answer(
                "",
                403,
                "cloud_api/error-200-permission-1349174.json",
            )],
            expect: lines![
                r#"whatsapp_poll_errors_total{{t},endpoint="health",reason="unauthorized"} >= 1"#,
            ],
            absent: vec![],
        },
        // --- 360dialog -----------------------------------------------------------------------
        // Meta's envelope relayed: a rate limit by its code.
        fails(
            "d360-613",
            "type: dialog360\n    api_key: corpus-key-0123",
            429,
            "dialog360/error-613-relayed-rate-limit.json",
            "health_status",
            "rate_limited",
        ),
        fails(
            "d360-401",
            "type: dialog360\n    api_key: corpus-key-0123",
            401,
            "dialog360/error-401-invalid-api-key.json",
            "health_status",
            "unauthorized",
        ),
        fails(
            "d360-usage-limit",
            "type: dialog360\n    api_key: corpus-key-0123",
            400,
            "dialog360/error-400-usage-limit.json",
            "health_status",
            "rate_limited",
        ),
        fails(
            "d360-500",
            "type: dialog360\n    api_key: corpus-key-0123",
            500,
            "dialog360/error-500-internal.json",
            "health_status",
            "http_status",
        ),
        Case {
            name: "d360-available",
            keys: "type: dialog360\n    api_key: corpus-key-0123",
            rules: vec![answer(
                "",
                200,
                "cloud_api/health-status-phone-available.json",
            )],
            expect: lines![
                r#"whatsapp_messaging_health_status{{t},status="AVAILABLE"} 1"#,
                r#"whatsapp_can_send_message{{t},entity_type="APP",entity_id="634974688087057",status="AVAILABLE"} 1"#,
            ],
            absent: vec![],
        },
        // --- Kapso ---------------------------------------------------------------------------
        Case {
            name: "kapso-healthy",
            keys: "type: kapso\n    api_key: corpus-key-0123\n    config_id: c1",
            rules: vec![answer("", 200, "kapso/legacy-config-health-healthy.json")],
            expect: lines![
                r#"whatsapp_config_health_status{{t},status="healthy"} 1"#,
                r#"whatsapp_messaging_health_status{{t},status="AVAILABLE"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "kapso-payment",
            keys: "type: kapso\n    api_key: corpus-key-0123\n    config_id: c1",
            rules: vec![answer(
                "",
                200,
                "kapso/legacy-config-health-unhealthy-payment-141006.json",
            )],
            expect: lines![
                r#"whatsapp_config_health_status{{t},status="unhealthy"} 1"#,
                r#"whatsapp_messaging_health_status{{t},status="BLOCKED"} 1"#,
                r#"whatsapp_health_check_passed{{t},check="messaging_health"} 0"#,
            ],
            absent: vec![],
        },
        Case {
            name: "kapso-token-190",
            keys: "type: kapso\n    api_key: corpus-key-0123\n    config_id: c1",
            // The Meta error is upstream data here: the checks fail, the poll does not.
            rules: vec![answer(
                "",
                200,
                "kapso/legacy-config-health-unhealthy-invalid-token-190.json",
            )],
            expect: lines![
                r#"whatsapp_config_health_status{{t},status="unhealthy"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "kapso-error",
            keys: "type: kapso\n    api_key: corpus-key-0123\n    config_id: c1",
            rules: vec![answer("", 200, "kapso/legacy-config-health-error.json")],
            expect: lines![
                r#"whatsapp_config_health_status{{t},status="error"} 1"#,
                r#"whatsapp_upstream_errors_total{{t},endpoint="health"} >= 1"#,
            ],
            absent: vec![],
        },
        Case {
            name: "kapso-platform",
            keys: "type: kapso_platform\n    api_key: corpus-key-0123\n    discover: true",
            // Kapso's listing (page-number paging) and one number's health, as its Platform
            // API documentation shows them.
            rules: vec![
                answer(
                    "phone_numbers/1234567890/health",
                    200,
                    "kapso/phone-health-healthy.json",
                ),
                answer("phone_numbers", 200, "kapso/phone-numbers-list.json"),
            ],
            expect: lines![
                r#"whatsapp_config_health_status{{t},phone_number_id="1234567890",status="healthy"} 1"#,
                r#"whatsapp_messaging_health_status{{t},status="AVAILABLE"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="discovery"} 1"#,
                r#"whatsapp_poll_success{{t},endpoint="health"} 1"#,
                r#"whatsapp_items_skipped_total{{t},endpoint="discovery"} 0"#,
            ],
            absent: vec![],
        },
        fails(
            "kapso-401",
            "type: kapso\n    api_key: corpus-key-0123\n    config_id: c1",
            401,
            "kapso/legacy-error-401-invalid-api-key.json",
            "health",
            "unauthorized",
        ),
    ]
}

#[test]
fn published_payloads_mean_what_their_sources_say() {
    let cases = Arc::new(cases());
    for case in cases.iter() {
        for rule in &case.rules {
            if !rule.body.starts_with('{') {
                let source = corpus_dir().join(rule.body.replace(".json", ".source.md"));
                assert!(source.exists(), "{} has no provenance beside it", rule.body);
            }
        }
    }
    let upstream = Upstream::start(Arc::clone(&cases));
    let mut config = String::from("global:\n  interval: 1s\n  timeout: 1s\ntargets:\n");
    for case in cases.iter() {
        config.push_str(&format!(
            "  - name: {}\n    base_url: http://127.0.0.1:{}/{}/\n    {}\n",
            case.name, upstream.port, case.name, case.keys
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("corpus.yaml");
    std::fs::write(&config_path, &config).expect("config written");
    let mut exporter = ExporterProcess::start([format!("--config.file={}", config_path.display())]);

    let expected: Vec<(String, &str)> = cases
        .iter()
        .flat_map(|c| c.expect.iter().map(move |l| (line(l, c.name), c.name)))
        .collect();
    let started = Instant::now();
    let metrics = loop {
        let metrics = scrape(&exporter.address);
        let missing: Vec<&(String, &str)> = expected
            .iter()
            .filter(|(l, _)| !satisfied(&metrics, l))
            .collect();
        if missing.is_empty() {
            break metrics;
        }
        if started.elapsed() > Duration::from_secs(20) {
            exporter.stop();
            panic!(
                "missing after 20 s:\n{}\n\n/metrics:\n{metrics}\n\nlog:\n{}",
                missing
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                exporter.log().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for case in cases.iter() {
        for prefix in &case.absent {
            assert!(
                !metrics.lines().any(|l| l.starts_with(prefix)),
                "{}: {prefix} should not be there:\n{metrics}",
                case.name
            );
        }
    }
    // The number Graph could not read was skipped and counted, once per poll.
    let skipped = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"whatsapp_items_skipped_total{target="graph-ids-fallback",endpoint="health"} "#,
            )
        })
        .and_then(|v| v.parse::<f64>().ok());
    assert!(skipped.is_some_and(|n| n >= 1.0), "{metrics}");
    // (The WABAs of other cases list that number: only this target's series count.)
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("target=\"graph-ids-fallback\"")
                && l.contains("phone_number_id=\"1913623884432103\"")),
        "the unreadable number has no series"
    );
    promtool_check(&metrics);
    let log = exporter.log().join("\n");
    assert!(
        log.contains("item skipped: phone number 1913623884432103: http_status: HTTP 400: Graph error 100 (subcode 33)"),
        "the skip is logged with its reason:\n{log}"
    );
    exporter.stop();
}
