//! Tests of the simulator over real sockets, with a tiny HTTP/1.1 client.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::onprem::{
    HA_FREE_SPACE, HA_GATEWAY_STATUS, HA_ROLES, MULTICONNECT_FREE_SPACE,
    MULTICONNECT_GATEWAY_STATUS, MULTICONNECT_ROLES, SCHEMA_TABLES, SCHEMA_VERSIONS,
    SINGLE_FREE_SPACE, VOLUMES,
};
use super::*;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `errors[0].code` of an errors envelope.
    fn error_code(&self) -> i64 {
        let v = self.json();
        assert!(v["meta"]["version"].is_string(), "{v}");
        v["errors"][0]["code"].as_i64().unwrap_or(-1)
    }
}

/// Sends raw bytes, reads until the server closes (or errors), returns what came back.
async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    timeout(IO_TIMEOUT, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    })
    .await
    .expect("raw request timed out")
}

/// Sends raw bytes and returns what came back within `wait` (the client then goes away).
async fn raw_for(addr: SocketAddr, request: &[u8], wait: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = timeout(wait, s.read_to_end(&mut out)).await;
    out
}

fn parse(bytes: &[u8]) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

async fn send(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    parse(&raw(addr, req.as_bytes()).await)
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

fn apikey(h: &SimulatorHandle) -> String {
    format!("Apikey {}", h.simulator().options().api_key)
}

fn path(cluster: Cluster, endpoint: Endpoint) -> String {
    format!("/{}{}", cluster.as_str(), endpoint.path())
}

async fn health(h: &SimulatorHandle, cluster: Cluster) -> Value {
    let r = send(
        h.addr,
        "GET",
        &path(cluster, Endpoint::Health),
        Some(&apikey(h)),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn login(h: &SimulatorHandle, cluster: Cluster) -> String {
    let r = send(
        h.addr,
        "POST",
        &path(cluster, Endpoint::Login),
        Some(&h.simulator().basic_authorization()),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    v["users"][0]["token"]
        .as_str()
        .expect("token in login answer")
        .to_string()
}

async fn support(h: &SimulatorHandle, cluster: Cluster, token: &str) -> Value {
    let r = send(
        h.addr,
        "GET",
        &path(cluster, Endpoint::Support),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn assert_meta(v: &Value, api_status: &str) {
    assert_eq!(v["meta"]["version"], "v2.53.2", "{v}");
    assert_eq!(v["meta"]["api_status"], api_status, "{v}");
}

/// Checks the fields every support node carries.
fn assert_support_node(n: &Value, multi_connect: bool, free_space: [u64; 4]) {
    for field in [
        "context",
        "db_engine",
        "debug_info",
        "description",
        "os_name",
        "lc",
        "lg",
    ] {
        assert!(n[field].is_string(), "{field} in {n}");
    }
    assert_eq!(n["context"], "healthcheck");
    assert!(
        matches!(n["db_engine"].as_str(), Some("MYSQL" | "PGSQL")),
        "{n}"
    );
    assert!(n["db_info"].is_array());
    assert!(n["env"].is_array());
    assert!(n["e2e"]["identity_timestamp"].is_string());
    assert!(n["e2e"]["registration_id"].is_u64());
    assert_eq!(n["multi_connect"], multi_connect);
    assert_eq!(n["os_name"], "ubuntu-x86_64");
    assert_eq!(n["os_version"], "20.04");
    assert_eq!(n["version"], SINGLE_VERSION);
    assert_eq!(n["lc"], "en");
    assert_eq!(n["lg"], "US");
    for (volume, bytes) in VOLUMES.iter().zip(free_space) {
        assert_eq!(
            n[format!("free_space_{volume}")].as_u64(),
            Some(bytes),
            "{volume}"
        );
    }
    for (table, version) in SCHEMA_TABLES.iter().zip(SCHEMA_VERSIONS) {
        assert_eq!(n["schema"][table].as_u64(), Some(version), "{table}");
    }
    let expire = n["expire_timestamp"].as_str().expect("expire_timestamp");
    let expire = NaiveDateTime::parse_from_str(expire, onprem::EXPIRE_FORMAT).expect("format");
    let weeks = (expire - Utc::now().naive_utc()).num_days();
    assert!((41..=42).contains(&weeks), "expire in {weeks} days");
    let device = n["device_iso8601"].as_str().expect("device_iso8601");
    let device = chrono::DateTime::parse_from_rfc3339(device).expect("rfc3339");
    let off = (device.with_timezone(&Utc) - Utc::now())
        .num_seconds()
        .abs();
    assert!(off <= 5, "device clock {off}s off");
}

#[test]
fn base64_matches_the_seed_example() {
    assert_eq!(base64_encode(b"admin:secret"), "YWRtaW46c2VjcmV0");
    assert_eq!(base64_encode(b""), "");
    assert_eq!(base64_encode(b"f"), "Zg==");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert_eq!(base64_encode(b"foo"), "Zm9v");
    assert_eq!(base64_encode(&[0xff, 0xfe, 0xfd, 0xfc]), "//79/A==");
}

#[test]
fn cluster_names_round_trip() {
    for c in Cluster::ALL {
        assert_eq!(c.as_str().parse::<Cluster>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert!("nope".parse::<Cluster>().is_err());
    let dbg = format!("{:?}", SimulatorOptions::default());
    assert!(
        !dbg.contains("sim-password-1") && !dbg.contains("sim-api-key"),
        "{dbg}"
    );
}

#[tokio::test]
async fn single_health_and_support_shapes() {
    let h = start(opts()).await;
    let v = health(&h, Cluster::Single).await;
    assert_eq!(
        v["health"],
        serde_json::json!({"gateway_status": "connected"})
    );
    assert_meta(&v, "stable");

    let token = login(&h, Cluster::Single).await;
    let v = support(&h, Cluster::Single, &token).await;
    assert_meta(&v, "stable");
    let n = &v["support"];
    assert_support_node(n, false, SINGLE_FREE_SPACE);
    assert_eq!(n["socket_conn"], "UP");
    assert_eq!(n["db_engine"], "MYSQL");
    assert_eq!(n["debug_info"], onprem::SINGLE_PHONE);
    assert_eq!(n["free_space_data"].as_u64(), Some(FREE_SPACE_UNLIMITED));
    assert!(n.get("role").is_none() && n.get("shards").is_none(), "{n}");
    h.shutdown().await;
}

#[tokio::test]
async fn ha_health_and_support_shapes() {
    let h = start(opts()).await;
    let v = health(&h, Cluster::Ha).await;
    let nodes = v["health"].as_object().expect("keyed health");
    assert_eq!(nodes.len(), 3);
    for (i, key) in HA_NODES.iter().enumerate() {
        assert_eq!(nodes[*key]["role"], HA_ROLES[i]);
        assert_eq!(nodes[*key]["gateway_status"], HA_GATEWAY_STATUS[i]);
    }
    assert_eq!(nodes[HA_NODES[0]]["role"], "primary_master");
    assert_eq!(nodes[HA_NODES[0]]["gateway_status"], "disconnected");
    assert_eq!(nodes[HA_NODES[2]]["gateway_status"], "connected");

    let token = login(&h, Cluster::Ha).await;
    let v = support(&h, Cluster::Ha, &token).await;
    let nodes = v["support"].as_object().expect("keyed support");
    assert_eq!(nodes.len(), 3);
    for (i, key) in HA_NODES.iter().enumerate() {
        let n = &nodes[*key];
        assert_support_node(n, false, HA_FREE_SPACE);
        assert_eq!(n["role"], HA_ROLES[i]);
        assert_eq!(n["db_engine"], "PGSQL");
        let want = if i == 2 { "UP" } else { "DN" };
        assert_eq!(n["socket_conn"], want);
    }
    assert_eq!(
        nodes[HA_NODES[0]]["shards"],
        serde_json::json!([[-1, -1], [0, 0]])
    );
    assert_eq!(nodes[HA_NODES[1]]["shards"], serde_json::json!([]));
    h.shutdown().await;
}

#[tokio::test]
async fn multiconnect_health_and_support_shapes() {
    let h = start(opts()).await;
    let v = health(&h, Cluster::Multiconnect).await;
    let nodes = v["health"].as_object().expect("keyed health");
    assert_eq!(nodes.len(), 4);
    for (i, key) in MULTICONNECT_NODES.iter().enumerate() {
        assert_eq!(nodes[*key]["role"], MULTICONNECT_ROLES[i]);
        assert_eq!(
            nodes[*key]["gateway_status"],
            MULTICONNECT_GATEWAY_STATUS[i]
        );
    }
    let token = login(&h, Cluster::Multiconnect).await;
    let v = support(&h, Cluster::Multiconnect, &token).await;
    let nodes = v["support"].as_object().expect("keyed support");
    let shards = [
        serde_json::json!([[-1, -1], [0, 0]]),
        serde_json::json!([]),
        serde_json::json!([[1, 1]]),
        serde_json::json!([[2, 2]]),
    ];
    for (i, key) in MULTICONNECT_NODES.iter().enumerate() {
        let n = &nodes[*key];
        assert_support_node(n, true, MULTICONNECT_FREE_SPACE);
        assert_eq!(n["shards"], shards[i], "{key}");
        assert_eq!(n["role"], MULTICONNECT_ROLES[i]);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn initial_state_is_deterministic() {
    let a = start(opts()).await;
    let b = start(opts()).await;
    for c in Cluster::ALL {
        assert_eq!(health(&a, c).await, health(&b, c).await);
        let strip = |mut v: Value| {
            let s = &mut v["support"];
            let nodes: Vec<&mut Value> = if c == Cluster::Single {
                vec![s]
            } else {
                s.as_object_mut()
                    .map(|m| m.values_mut().collect())
                    .unwrap_or_default()
            };
            for n in nodes {
                if let Some(m) = n.as_object_mut() {
                    m.remove("device_iso8601");
                    m.remove("expire_timestamp");
                }
            }
            v
        };
        let ta = login(&a, c).await;
        let tb = login(&b, c).await;
        assert_eq!(
            strip(support(&a, c, &ta).await),
            strip(support(&b, c, &tb).await)
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn api_status_is_settable() {
    let h = start(opts()).await;
    for status in ["deprecated", "experimental", "stable"] {
        h.simulator().set_api_status(status);
        assert_meta(&health(&h, Cluster::Single).await, status);
        let r = send(h.addr, "GET", "/single/v1/health", None).await;
        assert_meta(&r.json(), status);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn auth_rules() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let key = apikey(&h);
    for c in Cluster::ALL {
        // No header: 401 everywhere.
        for (m, e) in [
            ("GET", Endpoint::Health),
            ("GET", Endpoint::Support),
            ("POST", Endpoint::Login),
        ] {
            let r = send(h.addr, m, &path(c, e), None).await;
            assert_eq!(r.status, 401, "{c} {e:?}");
            assert_eq!(r.error_code(), 1005);
            assert_eq!(r.json()["errors"][0]["title"], "Access denied");
        }
        // Apikey: health yes (case-insensitive scheme), support no, wrong key no.
        let hp = path(c, Endpoint::Health);
        let sp = path(c, Endpoint::Support);
        assert_eq!(send(h.addr, "GET", &hp, Some(&key)).await.status, 200);
        let lower = key.replacen("Apikey", "apikey", 1);
        assert_eq!(send(h.addr, "GET", &hp, Some(&lower)).await.status, 200);
        assert_eq!(
            send(h.addr, "GET", &hp, Some("Apikey wrong-key-000000"))
                .await
                .status,
            401
        );
        assert_eq!(send(h.addr, "GET", &hp, Some("Apikey")).await.status, 401);
        assert_eq!(send(h.addr, "GET", &sp, Some(&key)).await.status, 401);
        // Unknown token and scheme.
        assert_eq!(
            send(h.addr, "GET", &sp, Some("Bearer not-a-token"))
                .await
                .status,
            401
        );
        assert_eq!(
            send(h.addr, "GET", &hp, Some("Digest abc")).await.status,
            401
        );
        // Bad Basic credentials.
        let lp = path(c, Endpoint::Login);
        let wrong = format!("Basic {}", base64_encode(b"admin:wrong"));
        assert_eq!(send(h.addr, "POST", &lp, Some(&wrong)).await.status, 401);
        assert_eq!(send(h.addr, "POST", &lp, Some(&key)).await.status, 401);
        // Basic login gives a token that works on support and health.
        assert_eq!(sim.logins(c), 0);
        let token = login(&h, c).await;
        assert_eq!(sim.logins(c), 1);
        let bearer = format!("Bearer {token}");
        assert_eq!(send(h.addr, "GET", &sp, Some(&bearer)).await.status, 200);
        assert_eq!(send(h.addr, "GET", &hp, Some(&bearer)).await.status, 200);
        // Basic is not accepted on health/support.
        let basic = sim.basic_authorization();
        assert_eq!(send(h.addr, "GET", &sp, Some(&basic)).await.status, 401);
    }
    // Tokens belong to their cluster.
    let token = login(&h, Cluster::Ha).await;
    let r = send(
        h.addr,
        "GET",
        &path(Cluster::Single, Endpoint::Support),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(r.status, 401);
    h.shutdown().await;
}

#[tokio::test]
async fn login_answer_shape() {
    let h = start(opts()).await;
    let r = send(
        h.addr,
        "POST",
        "/single/v1/users/login",
        Some(&h.simulator().basic_authorization()),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let v = r.json();
    assert_meta(&v, "stable");
    let user = &v["users"][0];
    assert!(user["token"].as_str().is_some_and(|t| t.len() > 20));
    let exp = user["expires_after"].as_str().expect("expires_after");
    let exp = NaiveDateTime::parse_from_str(exp, "%Y-%m-%d %H:%M:%S+00:00").expect("format");
    let days = (exp - Utc::now().naive_utc()).num_hours();
    assert!((167..=168).contains(&days), "{days} hours");
    h.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let h = start(SimulatorOptions {
        token_ttl: Duration::from_millis(300),
        ..opts()
    })
    .await;
    let token = login(&h, Cluster::Single).await;
    let bearer = format!("Bearer {token}");
    let sp = path(Cluster::Single, Endpoint::Support);
    assert_eq!(send(h.addr, "GET", &sp, Some(&bearer)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = send(h.addr, "GET", &sp, Some(&bearer)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errors"][0]["details"], "Token expired");
    // Removed once found expired.
    let r = send(h.addr, "GET", &sp, Some(&bearer)).await;
    assert_eq!(r.json()["errors"][0]["details"], "Invalid token");
    h.shutdown().await;
}

#[tokio::test]
async fn revoked_token_is_401() {
    let h = start(opts()).await;
    let single = login(&h, Cluster::Single).await;
    let ha = login(&h, Cluster::Ha).await;
    h.simulator().revoke_tokens(Cluster::Single);
    let r = send(
        h.addr,
        "GET",
        &path(Cluster::Single, Endpoint::Support),
        Some(&format!("Bearer {single}")),
    )
    .await;
    assert_eq!(r.status, 401);
    // Other clusters keep theirs; a new login works again.
    support(&h, Cluster::Ha, &ha).await;
    let again = login(&h, Cluster::Single).await;
    support(&h, Cluster::Single, &again).await;
    h.shutdown().await;
}

#[tokio::test]
async fn rate_limit_429_past_the_burst() {
    let h = start(SimulatorOptions {
        rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 3,
        }),
        ..opts()
    })
    .await;
    let key = apikey(&h);
    let hp = path(Cluster::Ha, Endpoint::Health);
    for _ in 0..3 {
        assert_eq!(send(h.addr, "GET", &hp, Some(&key)).await.status, 200);
    }
    let r = send(h.addr, "GET", &hp, Some(&key)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.error_code(), 1015);
    // Rejected requests are counted; other clusters have their own bucket.
    assert_eq!(h.simulator().requests(Cluster::Ha, Endpoint::Health), 4);
    let sp = path(Cluster::Single, Endpoint::Health);
    assert_eq!(send(h.addr, "GET", &sp, Some(&key)).await.status, 200);
    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(h.addr, "GET", &hp, Some(&key)).await.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn default_rate_limit_allows_a_burst_of_60() {
    let h = start(SimulatorOptions::default()).await;
    let key = apikey(&h);
    let hp = path(Cluster::Single, Endpoint::Health);
    // The bucket starts full: 60 pass whatever the timing.
    for i in 0..60 {
        assert_eq!(
            send(h.addr, "GET", &hp, Some(&key)).await.status,
            200,
            "#{i}"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn rate_limit_can_be_disabled() {
    let h = start(opts()).await;
    let key = apikey(&h);
    let hp = path(Cluster::Single, Endpoint::Health);
    for i in 0..80 {
        assert_eq!(
            send(h.addr, "GET", &hp, Some(&key)).await.status,
            200,
            "#{i}"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let h = start(opts()).await;
    let key = apikey(&h);
    for p in [
        "/",
        "/v1/health",
        "/nope/v1/health",
        "/single",
        "/single/",
        "/single/v1/health/",
        "/single/v1/stats/app",
        "/HA/v1/health",
    ] {
        let r = send(h.addr, "GET", p, Some(&key)).await;
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.error_code(), 1006, "{p}");
    }
    let r = send(h.addr, "POST", "/single/v1/health", Some(&key)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = send(h.addr, "GET", "/single/v1/users/login", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // Query strings are ignored.
    let r = send(h.addr, "GET", "/single/v1/health?x=1", Some(&key)).await;
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn request_counters() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    send(h.addr, "GET", "/ha/v1/health", None).await;
    send(h.addr, "PUT", "/ha/v1/health", None).await;
    health(&h, Cluster::Ha).await;
    let t = login(&h, Cluster::Ha).await;
    support(&h, Cluster::Ha, &t).await;
    send(h.addr, "GET", "/nope/v1/health", None).await;
    assert_eq!(sim.requests(Cluster::Ha, Endpoint::Health), 3);
    assert_eq!(sim.requests(Cluster::Ha, Endpoint::Support), 1);
    assert_eq!(sim.requests(Cluster::Ha, Endpoint::Login), 1);
    assert_eq!(sim.requests(Cluster::Single, Endpoint::Health), 0);
    assert_eq!(sim.logins(Cluster::Ha), 1);
    h.shutdown().await;
}

async fn faulty(h: &SimulatorHandle, fault: Fault) -> Reply {
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, Some(fault));
    send(h.addr, "GET", "/single/v1/health", Some(&apikey(h))).await
}

#[tokio::test]
async fn body_faults() {
    let h = start(opts()).await;

    let r = faulty(&h, Fault::MalformedJson).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert!(!r.body.is_empty());

    let r = faulty(&h, Fault::WrongContentType).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert_eq!(r.json()["health"]["gateway_status"], "connected");

    let r = faulty(&h, Fault::MissingField).await;
    assert_eq!(r.json()["health"], serde_json::json!({}));
    let r = faulty(&h, Fault::NullField).await;
    assert_eq!(
        r.json()["health"],
        serde_json::json!({"gateway_status": null})
    );
    let r = faulty(&h, Fault::UnknownValue).await;
    assert_eq!(r.json()["health"]["gateway_status"], "rebooting");

    let r = faulty(&h, Fault::EmptyBody).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("0"));

    for size in [10, 5000, 1 << 20] {
        let r = faulty(&h, Fault::OversizedBody(size)).await;
        let v = r.json();
        assert_eq!(v["health"]["gateway_status"], "connected");
        if size > 100 {
            assert_eq!(r.body.len(), size);
        } else {
            assert!(v.get("padding").is_none(), "too small to pad: left as is");
        }
    }

    // Cleared: back to normal.
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, None);
    assert_eq!(
        health(&h, Cluster::Single).await["health"]["gateway_status"],
        "connected"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn truncated_fault_cuts_the_body() {
    let h = start(opts()).await;
    let r = faulty(&h, Fault::Truncated).await;
    assert_eq!(r.status, 200);
    let announced: usize = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(!r.body.is_empty(), "the first half arrives");
    assert!(r.body.len() < announced, "{} < {announced}", r.body.len());
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    // The server is fine afterwards.
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, None);
    health(&h, Cluster::Single).await;
    h.shutdown().await;
}

#[tokio::test]
async fn status_faults() {
    let h = start(opts()).await;
    let r = faulty(
        &h,
        Fault::ErrorEnvelope {
            status: 500,
            code: 1014,
            title: "Internal error".into(),
        },
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.error_code(), 1014);
    assert_eq!(r.json()["errors"][0]["title"], "Internal error");

    let r = faulty(
        &h,
        Fault::ErrorEnvelope {
            status: 42,
            code: 1,
            title: "x".into(),
        },
    )
    .await;
    assert_eq!(r.status, 500);

    let r = faulty(&h, Fault::Status(502)).await;
    assert_eq!(r.status, 502);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(String::from_utf8_lossy(&r.body).contains("502 Bad Gateway"));
    let r = faulty(&h, Fault::Status(101)).await;
    assert_eq!(r.status, 500);
    // Statuses without a body do not upset the server.
    for status in [204, 304] {
        let r = faulty(&h, Fault::Status(status)).await;
        assert_eq!(r.status, status);
        assert!(r.body.is_empty());
    }

    let r = faulty(
        &h,
        Fault::TooManyRequests {
            retry_after: Some("7".into()),
        },
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.error_code(), 1015);
    let r = faulty(&h, Fault::TooManyRequests { retry_after: None }).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    let r = faulty(
        &h,
        Fault::TooManyRequests {
            retry_after: Some("bad\nvalue".into()),
        },
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);

    let r = faulty(
        &h,
        Fault::ServiceUnavailable {
            retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        },
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(r.error_code(), 1016);
    let r = faulty(&h, Fault::ServiceUnavailable { retry_after: None }).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), None);
    h.shutdown().await;
}

#[tokio::test]
async fn faults_need_credentials_first() {
    let h = start(opts()).await;
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Status(502)));
    let r = send(h.addr, "GET", "/single/v1/health", None).await;
    assert_eq!(r.status, 401);
    // Other endpoints and clusters are not affected.
    health(&h, Cluster::Ha).await;
    h.shutdown().await;
}

#[tokio::test]
async fn slow_fault_delays_the_answer() {
    let h = start(opts()).await;
    let started = Instant::now();
    let r = faulty(&h, Fault::Slow(Duration::from_millis(300))).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.json()["health"]["gateway_status"], "connected");
    h.shutdown().await;
}

#[tokio::test]
async fn hang_fault_never_answers() {
    let h = start(opts()).await;
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Hang));
    let req = format!(
        "GET /single/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        apikey(&h)
    );
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = [0u8; 64];
    let read = timeout(Duration::from_millis(500), s.read(&mut buf)).await;
    assert!(read.is_err(), "no answer expected, got {read:?}");
    drop(s);

    // A second hanging connection is cut, without an answer, at shutdown.
    let mut s2 = TcpStream::connect(h.addr).await.expect("connect");
    s2.write_all(req.as_bytes()).await.expect("write");
    // The server still answers others meanwhile.
    health(&h, Cluster::Ha).await;
    let started = Instant::now();
    timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown with a hanging request");
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut rest = Vec::new();
    let _ = timeout(IO_TIMEOUT, s2.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn support_and_login_field_faults() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let token = login(&h, Cluster::Ha).await;
    for (fault, want) in [
        (Fault::NullField, Some(Value::Null)),
        (Fault::UnknownValue, Some(Value::from("XYZ"))),
        (Fault::MissingField, None),
    ] {
        sim.set_fault(Cluster::Ha, Endpoint::Support, Some(fault));
        let v = support(&h, Cluster::Ha, &token).await;
        for key in HA_NODES {
            assert_eq!(v["support"][key].get("socket_conn"), want.as_ref(), "{key}");
            assert!(v["support"][key]["version"].is_string());
        }
    }
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::UnknownValue));
    let v = health(&h, Cluster::Ha).await;
    for key in HA_NODES {
        assert_eq!(v["health"][key]["gateway_status"], "rebooting");
        assert!(v["health"][key]["role"].is_string());
    }

    let lp = path(Cluster::Single, Endpoint::Login);
    let basic = sim.basic_authorization();
    sim.set_fault(Cluster::Single, Endpoint::Login, Some(Fault::MissingField));
    let v = send(h.addr, "POST", &lp, Some(&basic)).await.json();
    assert!(v["users"][0].get("token").is_none());
    assert!(v["users"][0]["expires_after"].is_string());
    sim.set_fault(Cluster::Single, Endpoint::Login, Some(Fault::NullField));
    let v = send(h.addr, "POST", &lp, Some(&basic)).await.json();
    assert!(v["users"][0]["token"].is_null());
    sim.set_fault(Cluster::Single, Endpoint::Login, Some(Fault::UnknownValue));
    let v = send(h.addr, "POST", &lp, Some(&basic)).await.json();
    assert_eq!(v["users"][0]["expires_after"], "never");
    sim.set_fault(
        Cluster::Single,
        Endpoint::Login,
        Some(Fault::ErrorEnvelope {
            status: 401,
            code: 1005,
            title: "Access denied".into(),
        }),
    );
    let before = sim.logins(Cluster::Single);
    assert_eq!(send(h.addr, "POST", &lp, Some(&basic)).await.status, 401);
    assert_eq!(sim.logins(Cluster::Single), before, "no token issued");
    h.shutdown().await;
}

#[tokio::test]
async fn step_moves_through_every_documented_value() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let token = login(&h, Cluster::Single).await;
    let ha_token = login(&h, Cluster::Ha).await;
    let initial: Vec<Value> = {
        let mut v = Vec::new();
        for c in Cluster::ALL {
            v.push(health(&h, c).await);
        }
        v
    };

    let mut gateway = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    let mut logs = Vec::new();
    let mut message_schema = BTreeSet::new();
    let mut ha_coreapps = BTreeSet::new();
    let mut mc_skewed = false;
    for _ in 0..SCENARIO_LEN {
        sim.step();
        let hv = health(&h, Cluster::Single).await;
        gateway.insert(
            hv["health"]["gateway_status"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        let sv = support(&h, Cluster::Single, &token).await;
        let n = &sv["support"];
        sockets.insert(n["socket_conn"].as_str().unwrap_or("").to_string());
        logs.push(n["free_space_logs"].as_u64().unwrap_or(0));
        message_schema.insert(n["schema"]["message"].as_u64().unwrap_or(0));
        if n["debug_info"] == "unregistered" {
            assert_eq!(hv["health"]["gateway_status"], "unregistered");
        }

        let ha = health(&h, Cluster::Ha).await;
        let coreapps: Vec<&str> = HA_NODES
            .iter()
            .filter(|k| ha["health"][**k]["role"] == "coreapp")
            .copied()
            .collect();
        assert_eq!(coreapps.len(), 1, "one coreapp at a time: {ha}");
        ha_coreapps.insert(coreapps[0].to_string());
        let ha_support = support(&h, Cluster::Ha, &ha_token).await;
        assert_eq!(ha_support["support"][coreapps[0]]["role"], "coreapp");

        let mc = {
            let t = login(&h, Cluster::Multiconnect).await;
            support(&h, Cluster::Multiconnect, &t).await
        };
        let device = mc["support"][MULTICONNECT_NODES[2]]["device_iso8601"]
            .as_str()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .expect("device_iso8601");
        if (device.with_timezone(&Utc) - Utc::now()).num_seconds() > 60 {
            mc_skewed = true;
        }
    }
    let want_gateway: BTreeSet<String> = [
        "connected",
        "connecting",
        "disconnected",
        "uninitialized",
        "unregistered",
    ]
    .map(String::from)
    .into();
    assert_eq!(gateway, want_gateway);
    let want_sockets: BTreeSet<String> = ["UP", "DN", "SC", "UP receiving offline", "UNK"]
        .map(String::from)
        .into();
    assert_eq!(sockets, want_sockets);
    assert!(logs.windows(2).take(9).all(|w| w[1] < w[0]), "{logs:?}");
    assert!(logs[9] < SINGLE_FREE_SPACE[1]);
    assert_eq!(logs[10], SINGLE_FREE_SPACE[1]);
    assert_eq!(
        message_schema,
        [SCHEMA_VERSIONS[6], SCHEMA_VERSIONS[6] + 1].into()
    );
    assert_eq!(
        ha_coreapps,
        [HA_NODES[1], HA_NODES[2]].map(String::from).into()
    );
    assert!(mc_skewed);
    assert_eq!(sim.steps(), SCENARIO_LEN);

    // A full cycle comes back to the initial health of every cluster.
    for (i, c) in Cluster::ALL.into_iter().enumerate() {
        assert_eq!(health(&h, c).await, initial[i], "{c}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn setters_change_the_payloads() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let key = HA_NODES[2];
    sim.set_gateway_status(Cluster::Single, None, "unregistered");
    sim.set_gateway_status(Cluster::Ha, Some(key), "connecting");
    sim.set_role(Cluster::Ha, HA_NODES[0], "secondary_master");
    sim.set_role(Cluster::Single, "anything", "coreapp");
    sim.set_socket_conn(Cluster::Ha, Some(key), "UP receiving offline");
    sim.set_socket_conn(Cluster::Single, None, "UNK");
    sim.set_free_space(Cluster::Ha, Some(key), "media_incoming", 1234);
    sim.set_free_space(Cluster::Ha, Some(key), "free_space_logs", 99);
    sim.set_free_space(Cluster::Ha, Some(key), "nope", 1);
    sim.set_clock_skew(Cluster::Ha, Some(key), -3600);
    sim.set_schema_version(Cluster::Ha, None, "contact", 10);
    sim.set_version(Cluster::Multiconnect, None, "v2.55.1");
    sim.set_gateway_status(Cluster::Ha, Some("no-such-node"), "connected");

    let v = health(&h, Cluster::Single).await;
    assert_eq!(
        v["health"],
        serde_json::json!({"gateway_status": "unregistered"})
    );
    let v = health(&h, Cluster::Ha).await;
    assert_eq!(v["health"][key]["gateway_status"], "connecting");
    assert_eq!(v["health"][HA_NODES[0]]["role"], "secondary_master");
    assert_eq!(v["health"].as_object().map(|m| m.len()), Some(3));

    let t = login(&h, Cluster::Single).await;
    let n = support(&h, Cluster::Single, &t).await["support"].clone();
    assert_eq!(n["socket_conn"], "UNK");
    assert_eq!(n["debug_info"], "unregistered");
    assert!(n.get("role").is_none());

    let t = login(&h, Cluster::Ha).await;
    let v = support(&h, Cluster::Ha, &t).await;
    let n = &v["support"][key];
    assert_eq!(n["socket_conn"], "UP receiving offline");
    assert_eq!(n["free_space_media_incoming"].as_u64(), Some(1234));
    assert_eq!(n["free_space_logs"].as_u64(), Some(99));
    assert_eq!(n["schema"]["contact"].as_u64(), Some(10));
    assert_eq!(
        v["support"][HA_NODES[0]]["schema"]["contact"].as_u64(),
        Some(10)
    );
    let device = chrono::DateTime::parse_from_rfc3339(n["device_iso8601"].as_str().unwrap_or(""))
        .expect("device_iso8601");
    let skew = (device.with_timezone(&Utc) - Utc::now()).num_seconds();
    assert!((-3605..=-3595).contains(&skew), "{skew}");

    let t = login(&h, Cluster::Multiconnect).await;
    let v = support(&h, Cluster::Multiconnect, &t).await;
    for k in MULTICONNECT_NODES {
        assert_eq!(v["support"][k]["version"], "v2.55.1");
    }

    sim.reset();
    assert_eq!(
        health(&h, Cluster::Single).await["health"]["gateway_status"],
        "connected"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn remove_node_vanishes_from_health_and_support() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    sim.remove_node(Cluster::Multiconnect, MULTICONNECT_NODES[3]);
    sim.remove_node(Cluster::Multiconnect, "no-such-node");
    sim.remove_node(Cluster::Single, "");
    let v = health(&h, Cluster::Multiconnect).await;
    let nodes = v["health"].as_object().expect("keyed");
    assert_eq!(nodes.len(), 3);
    assert!(!nodes.contains_key(MULTICONNECT_NODES[3]));
    let t = login(&h, Cluster::Multiconnect).await;
    let v = support(&h, Cluster::Multiconnect, &t).await;
    let nodes = v["support"].as_object().expect("keyed");
    assert_eq!(nodes.len(), 3);
    assert!(!nodes.contains_key(MULTICONNECT_NODES[3]));
    assert_eq!(sim.node_keys(Cluster::Multiconnect).len(), 3);
    // Steps that name a removed node do not bring it back.
    for _ in 0..SCENARIO_LEN {
        sim.step();
    }
    assert_eq!(sim.node_keys(Cluster::Multiconnect).len(), 3);
    // The single instance cannot be removed.
    assert_eq!(
        health(&h, Cluster::Single).await["health"]["gateway_status"],
        "connected"
    );
    sim.reset();
    assert_eq!(sim.node_keys(Cluster::Multiconnect).len(), 4);
    h.shutdown().await;
}

#[tokio::test]
async fn auto_step_advances_on_a_timer() {
    let h = start(SimulatorOptions {
        auto_step: Some(Duration::from_millis(50)),
        ..opts()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.simulator().steps() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.simulator().steps() >= 3);
    timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown stops the stepper");
}

#[tokio::test]
async fn garbage_requests_do_not_hurt_the_server() {
    let h = start(opts()).await;
    let inputs: [&[u8]; 8] = [
        b"\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /single/v1/health HTTP/9.9\r\n\r\n",
        b"GET /single/v1/health HTTP/1.1\r\nAuthorization: Apikey \xff\xfe\r\n\r\n",
        b"GET /single/v1/health HTTP/1.1\r\nAuthorization: \r\n\r\n",
        b"POST /single/v1/users/login HTTP/1.1\r\nAuthorization: Basic ====\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST /single/v1/users/login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\xc3\x28/v1/health HTTP/1.1\r\n\r\n",
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        let out = raw_for(h.addr, input, Duration::from_millis(300)).await;
        // hyper skips leading empty lines and waits for a request: no answer to the first.
        if i > 0 {
            assert!(
                out.starts_with(b"HTTP/1.1 4"),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    // Half a request, then the client goes away.
    {
        let mut s = TcpStream::connect(h.addr).await.expect("connect");
        s.write_all(b"GET /single/v1/hea").await.expect("write");
    }
    let r = send(
        h.addr,
        "GET",
        "/single/v1/health",
        Some("Authorization-is-missing"),
    )
    .await;
    assert_eq!(r.status, 401);
    health(&h, Cluster::Single).await;
    h.shutdown().await;
}

#[tokio::test]
async fn keep_alive_connection_serves_several_requests() {
    let h = start(opts()).await;
    let req = format!(
        "GET /ha/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        apikey(&h)
    );
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    let two = format!(
        "{req}{}",
        req.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
    );
    s.write_all(two.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    timeout(IO_TIMEOUT, s.read_to_end(&mut out))
        .await
        .expect("read timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    h.shutdown().await;
}

#[tokio::test]
async fn run_stops_when_shutdown_resolves() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Simulator::new(opts()).run(listener, async move {
        let _ = rx.await;
    }));
    let r = send(addr, "GET", "/single/v1/health", None).await;
    assert_eq!(r.status, 401);
    let _ = tx.send(());
    let res = timeout(Duration::from_secs(5), task)
        .await
        .expect("run returned")
        .expect("join");
    assert!(res.is_ok());
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let h = start(opts()).await;
    let addr = h.addr;
    health(&h, Cluster::Single).await;
    drop(h);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn reqwest_sees_the_faults_as_intended() {
    let h = start(opts()).await;
    let sim = h.simulator().clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let url = format!("{}/v1/health", h.base_url(Cluster::Single));
    let get = || client.get(&url).header("Authorization", apikey(&h)).send();

    let body = get().await.expect("send").bytes().await.expect("body");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["health"]["gateway_status"], "connected");

    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Truncated));
    let resp = get().await.expect("head arrives");
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "a cut body is an error");

    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Hang));
    let err = get().await.expect_err("hangs");
    assert!(err.is_timeout(), "{err}");

    sim.set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::MalformedJson),
    );
    let body = get().await.expect("send").bytes().await.expect("body");
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    sim.set_fault(Cluster::Single, Endpoint::Health, None);
    assert_eq!(get().await.expect("send").status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn huge_token_ttl_does_not_overflow() {
    let h = start(SimulatorOptions {
        token_ttl: Duration::MAX,
        auto_step: Some(Duration::MAX),
        ..opts()
    })
    .await;
    let token = login(&h, Cluster::Single).await;
    support(&h, Cluster::Single, &token).await;
    h.simulator().set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::Slow(Duration::MAX)),
    );
    let out = raw_for(
        h.addr,
        format!(
            "GET /single/v1/health HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            apikey(&h)
        )
        .as_bytes(),
        Duration::from_millis(200),
    )
    .await;
    assert!(out.is_empty());
    timeout(Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown");
}

/// The request of [`faulty`], as raw bytes.
fn health_request(h: &SimulatorHandle) -> String {
    format!(
        "GET /single/v1/health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: {}\r\n\r\n",
        h.addr,
        apikey(h)
    )
}

#[tokio::test]
async fn reset_fault_resets_the_connection_mid_body() {
    let h = start(opts()).await;
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Reset));
    let (bytes, error) = timeout(IO_TIMEOUT, async {
        let mut s = TcpStream::connect(h.addr).await.expect("connect");
        s.write_all(health_request(&h).as_bytes())
            .await
            .expect("write");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => break (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break (out, Some(e.kind())),
            }
        }
    })
    .await
    .expect("reset within the timeout");
    assert_eq!(error, Some(std::io::ErrorKind::ConnectionReset));
    let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    // The server is fine afterwards.
    h.simulator()
        .set_fault(Cluster::Single, Endpoint::Health, None);
    health(&h, Cluster::Single).await;
    h.shutdown().await;
}

#[tokio::test]
async fn drip_fault_sends_the_body_byte_by_byte() {
    let h = start(opts()).await;
    h.simulator().set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::Drip(Duration::from_millis(50))),
    );
    // Within 300 ms the head and a few bytes arrive, not the whole body.
    let partial = parse(
        &raw_for(
            h.addr,
            health_request(&h).as_bytes(),
            Duration::from_millis(300),
        )
        .await,
    );
    assert_eq!(partial.status, 200);
    let announced: usize = partial
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(!partial.body.is_empty());
    assert!(partial.body.len() < announced / 2, "{partial:?}");
    // Faster, the whole answer comes, unchanged.
    h.simulator().set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::Drip(Duration::from_millis(1))),
    );
    let whole = faulty(&h, Fault::Drip(Duration::from_millis(1))).await;
    assert_eq!(whole.json()["health"]["gateway_status"], "connected");
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_nesting_huge_json_and_redirect_faults() {
    let h = start(opts()).await;

    let r = faulty(&h, Fault::InvalidUtf8).await;
    assert_eq!(r.status, 200);
    assert!(std::str::from_utf8(&r.body).is_err());
    assert!(r.body.starts_with(b"{\"\xFF\xFE"), "{:?}", r.body);

    let r = faulty(&h, Fault::DeepNesting(1000)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 2000);
    assert!(r.body[..1000].iter().all(|&b| b == b'['));
    assert!(r.body[1000..].iter().all(|&b| b == b']'));

    let r = faulty(&h, Fault::HugeJson(300_000)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    // Chunk framing included: the array's bytes and a few per chunk.
    assert!(r.body.len() >= 300_000, "{}", r.body.len());
    assert!(r.body.len() < 300_000 + 1000, "{}", r.body.len());

    let r = faulty(&h, Fault::Redirect("http://127.0.0.1:1/elsewhere".into())).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://127.0.0.1:1/elsewhere"));
    h.shutdown().await;
}

#[tokio::test]
async fn added_nodes_answer_in_health() {
    let h = start(opts()).await;
    h.simulator().add_nodes(Cluster::Ha, 2000);
    h.simulator().add_nodes(Cluster::Single, 5);
    let ha = health(&h, Cluster::Ha).await;
    let nodes = ha["health"].as_object().expect("nodes");
    assert_eq!(nodes.len(), HA_NODES.len() + 2000);
    assert_eq!(
        nodes["wa-extra-1002:0000000003ea"],
        serde_json::json!({"gateway_status": "connected", "role": "coreapp"})
    );
    let single = health(&h, Cluster::Single).await;
    assert_eq!(single["health"]["gateway_status"], "connected");
    h.simulator().reset();
    let ha = health(&h, Cluster::Ha).await;
    assert_eq!(
        ha["health"].as_object().map(|m| m.len()),
        Some(HA_NODES.len())
    );
    h.shutdown().await;
}
