//! Fault suite: each way an upstream can fail is counted with its reason, logged, and
//! fails only its own target: the bystander keeps polling on time and `/metrics` stays
//! valid (`promtool check metrics`). Everything listens on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{has_line, promtool_check, value, Running, WAIT_LIMIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use whatsapp_exporter::simulator::{
    CloudApiEndpoint, CloudApiFault, Cluster, Endpoint, Fault, SimulatorHandle, SimulatorOptions,
};

/// The bystander polls the HA cluster at this interval.
const BYSTANDER_INTERVAL: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------
// Logs: one subscriber for the whole test binary, in the exporter's logfmt, into memory.
// Target names differ between tests, so each test reads its own lines.

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let layer = tracing_logfmt::builder()
            .with_target(false)
            .with_span_name(false)
            .with_span_path(false)
            .layer()
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .with_filter(tracing_subscriber::EnvFilter::new(
                "warn,whatsapp_exporter=info",
            ));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only global subscriber of this test binary");
        buffer
    });
}

/// The captured log lines of `target` (its `target_name=` field).
fn log_lines(target: &str) -> Vec<String> {
    let field = format!("target_name={target} ");
    let buffer = LOGS.get().expect("capture_logs() first");
    let text =
        String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    text.lines()
        .filter(|l| l.contains(&field))
        .map(str::to_owned)
        .collect()
}

/// Waits for a `poll failed` line of `target`'s `endpoint` with `reason` whose error
/// contains `error`; returns it.
async fn wait_for_poll_failed(target: &str, endpoint: &str, reason: &str, error: &str) -> String {
    let started = Instant::now();
    loop {
        let lines = log_lines(target);
        if let Some(line) = lines.iter().find(|l| {
            l.contains("level=warn")
                && l.contains("message=\"poll failed\"")
                && l.contains(&format!(" endpoint={endpoint} "))
                && l.contains(&format!(" reason={reason} "))
                && l.contains(error)
        }) {
            return line.clone();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no poll failed line for {target}/{endpoint} {reason} with {error:?}; lines:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Configuration and checks.

fn onprem(name: &str, base_url: &str, o: &SimulatorOptions, extra: &str) -> String {
    format!(
        "  - name: {name}\n    type: onprem\n    base_url: {base_url}\n    api_key: {}\n{extra}",
        o.api_key
    )
}

/// Global section and the bystander: the HA cluster, health with the API key.
fn with_bystander(s: &SimulatorHandle) -> String {
    let mut text = format!(
        "global:\n  interval: {0}ms\n  timeout: {0}ms\ntargets:\n",
        BYSTANDER_INTERVAL.as_millis()
    );
    text.push_str(&onprem(
        "bystander",
        &s.base_url(Cluster::Ha),
        s.simulator().options(),
        "",
    ));
    text
}

fn errors(metrics: &str, target: &str, endpoint: &str, reason: &str) -> f64 {
    value(
        metrics,
        &format!("whatsapp_poll_errors_total{{target=\"{target}\",endpoint=\"{endpoint}\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Polls of the bystander so far (it alone polls the HA cluster's health).
fn bystander_polls(run: &Running) -> u64 {
    run.simulator
        .simulator()
        .requests(Cluster::Ha, Endpoint::Health)
}

/// Watches the bystander from now on.
struct Bystander {
    since: Instant,
    polls: u64,
}

impl Bystander {
    fn watch(run: &Running) -> Self {
        Bystander {
            since: Instant::now(),
            polls: bystander_polls(run),
        }
    }

    /// The bystander polled on its interval meanwhile (loosely: at least half its slots,
    /// on a busy machine), is up, and its last success is recent.
    async fn assert_on_time(&self, run: &Running, what: &str) {
        // Long enough a window that a stalled bystander shows.
        let window = Duration::from_millis(1500);
        if let Some(rest) = window.checked_sub(self.since.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        let elapsed = self.since.elapsed();
        let polls = bystander_polls(run) - self.polls;
        let slots = (elapsed.as_secs_f64() / BYSTANDER_INTERVAL.as_secs_f64()) as u64;
        assert!(
            polls * 2 >= slots && polls >= 2,
            "{what}: the bystander polled {polls} times in {elapsed:?} ({slots} slots)"
        );
        let metrics = run.metrics().await;
        assert!(
            has_line(&metrics, "whatsapp_up{target=\"bystander\"} 1"),
            "{what}\n{metrics}"
        );
        let last = value(
            &metrics,
            "whatsapp_last_poll_success_timestamp_seconds{target=\"bystander\",endpoint=\"health\"}",
        )
        .expect("bystander success timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        assert!(
            now - last < 5.0 * BYSTANDER_INTERVAL.as_secs_f64(),
            "{what}: the bystander's last success is {}s old",
            now - last
        );
    }
}

/// Waits until `target`'s `endpoint` counted one more error of `reason` than in `before`,
/// and its `poll failed` line carries `log`. Checks the bystander meanwhile and runs
/// promtool on the scrape. Returns that scrape.
async fn expect_counted(
    run: &Running,
    before: &str,
    (target, endpoint, reason): (&str, &str, &str),
    log: &str,
    bystander: &Bystander,
) -> String {
    let counted = errors(before, target, endpoint, reason);
    let metrics = run
        .wait_until(
            |m| errors(m, target, endpoint, reason) > counted,
            &format!("{target}/{endpoint} counted as {reason}"),
        )
        .await;
    assert!(
        has_line(&metrics, &format!("whatsapp_up{{target=\"{target}\"}} 0")),
        "{target}\n{metrics}"
    );
    let line = wait_for_poll_failed(target, endpoint, reason, log).await;
    assert!(
        line.contains(&format!(
            "target_name={target} endpoint={endpoint} reason={reason} "
        )),
        "{line}"
    );
    bystander.assert_on_time(run, target).await;
    promtool_check(&run.metrics().await);
    metrics
}

// ---------------------------------------------------------------------------------------
// Body and stream faults of the simulator.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_and_stream_faults_each_counted_and_logged() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let mut text = with_bystander(s);
        // Polled every second with a timeout of one second: a dripped body takes longer.
        text.push_str(&onprem(
            "body-victim",
            &s.base_url(Cluster::Single),
            s.simulator().options(),
            "    interval: 1s\n    timeout: 1s\n",
        ));
        text
    })
    .await;
    run.wait_for_lines(&[
        "whatsapp_up{target=\"body-victim\"} 1",
        "whatsapp_up{target=\"bystander\"} 1",
    ])
    .await;
    let sim = run.simulator.simulator().clone();
    let cases: [(Fault, &str, &str); 8] = [
        (
            Fault::Reset,
            "connection_reset",
            "reading body: Connection reset by peer (os error 104)",
        ),
        (
            Fault::Truncated,
            "connect",
            "reading body: end of file before message length reached",
        ),
        (
            Fault::OversizedBody(2 << 20),
            "body_too_large",
            "response body exceeds the limit of 1048576 bytes",
        ),
        (
            Fault::HugeJson(64 << 20),
            "body_too_large",
            "response body exceeds the limit of 1048576 bytes",
        ),
        (
            Fault::InvalidUtf8,
            "decode",
            "malformed JSON at line 1, column 3: invalid unicode code point",
        ),
        (
            Fault::DeepNesting(100_000),
            "decode",
            "malformed JSON at line 1, column 128: recursion limit exceeded",
        ),
        (
            Fault::Drip(Duration::from_millis(50)),
            "timeout",
            "no complete response within the timeout of 1s",
        ),
        (
            Fault::Hang,
            "timeout",
            "no complete response within the timeout of 1s",
        ),
    ];
    for (fault, reason, log) in cases {
        let before = run.metrics().await;
        let bystander = Bystander::watch(&run);
        sim.set_fault(Cluster::Single, Endpoint::Health, Some(fault.clone()));
        let metrics = expect_counted(
            &run,
            &before,
            ("body-victim", "health", reason),
            log,
            &bystander,
        )
        .await;
        if reason == "timeout" {
            // The whole poll, body included, ends at the timeout (loosely bounded).
            let took = value(
                &metrics,
                "whatsapp_poll_duration_seconds{target=\"body-victim\",endpoint=\"health\"}",
            )
            .expect("duration");
            assert!(
                (0.9..3.0).contains(&took),
                "{fault:?}: the poll took {took}s"
            );
        }
        sim.set_fault(Cluster::Single, Endpoint::Health, None);
        run.wait_for_lines(&["whatsapp_up{target=\"body-victim\"} 1"])
            .await;
    }
    run.stop().await;
}

// ---------------------------------------------------------------------------------------
// Connections: refused, DNS, TLS.

/// A CA and certificates it signs, all made here.
struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Pki {
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid now or, with `expired`, only in 2020.
    fn server(&self, names: &[&str], expired: bool) -> (Vec<u8>, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("server params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// An On-Premises health answer.
const HEALTH_BODY: &str = r#"{"health":{"gateway_status":"connected"},"meta":{"version":"v2.53.2","api_status":"stable"}}"#;

/// Serves `HEALTH_BODY` over HTTPS with this certificate until aborted.
async fn https_listener(cert_der: Vec<u8>, key_der: Vec<u8>) -> (SocketAddr, JoinHandle<()>) {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert_der)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .expect("server TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake ends here: that is the point of most listeners.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                if read_head(&mut tls).await.is_some() {
                    let _ = tls.write_all(http_ok(HEALTH_BODY).as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

fn http_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads a request head (up to 64 KiB).
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 64 << 10 {
            return None;
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_dns_and_tls_failures_each_counted_and_logged() {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let trusted = Pki::new("whatsapp-exporter test CA");
    let unknown = Pki::new("an unknown CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).expect("CA written");

    let (good, good_task) = {
        let (cert, key) = trusted.server(&["127.0.0.1"], false);
        https_listener(cert, key).await
    };
    let (unknown_ca, unknown_task) = {
        let (cert, key) = unknown.server(&["127.0.0.1"], false);
        https_listener(cert, key).await
    };
    let (expired, expired_task) = {
        let (cert, key) = trusted.server(&["127.0.0.1"], true);
        https_listener(cert, key).await
    };
    let (wrong_host, wrong_host_task) = {
        let (cert, key) = trusted.server(&["wrong-host.example"], false);
        https_listener(cert, key).await
    };
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };

    let tls = format!("    tls_config:\n      ca_file: {}\n", ca_file.display());
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = with_bystander(s);
        text.push_str(&onprem("tls-good", &format!("https://{good}"), o, &tls));
        // No ca_file: the certificate's CA is unknown to the Mozilla roots.
        text.push_str(&onprem(
            "tls-unknown-ca",
            &format!("https://{unknown_ca}"),
            o,
            "",
        ));
        text.push_str(&onprem(
            "tls-expired",
            &format!("https://{expired}"),
            o,
            &tls,
        ));
        text.push_str(&onprem(
            "tls-wrong-host",
            &format!("https://{wrong_host}"),
            o,
            &tls,
        ));
        text.push_str(&onprem("refused", &format!("http://{refused}"), o, ""));
        // A label over 63 bytes fails inside the resolver library: the name does not
        // resolve and no query leaves the machine.
        let unresolvable = format!("http://{}.invalid:10109", "a".repeat(64));
        text.push_str(&onprem("dns", &unresolvable, o, ""));
        text
    })
    .await;

    // The control: the listener and ca_file work, so the failures below are the
    // certificates' own.
    run.wait_for_lines(&["whatsapp_up{target=\"tls-good\"} 1"])
        .await;
    let before = run.metrics().await;
    let bystander = Bystander::watch(&run);
    let cases = [
        (
            "refused",
            "connection_refused",
            "connect: Connection refused",
        ),
        (
            "dns",
            "dns",
            "connect: failed to lookup address information",
        ),
        (
            "tls-unknown-ca",
            "tls_unknown_ca",
            "TLS: invalid peer certificate: UnknownIssuer",
        ),
        (
            "tls-expired",
            "tls_expired",
            "TLS: invalid peer certificate: certificate expired",
        ),
        (
            "tls-wrong-host",
            "tls_wrong_host",
            "TLS: invalid peer certificate: certificate not valid for name \\\"127.0.0.1\\\"",
        ),
    ];
    for (target, reason, log) in cases {
        let metrics =
            expect_counted(&run, &before, (target, "health", reason), log, &bystander).await;
        // Each failure is counted under its reason only.
        let total = common::poll_errors(&metrics, target);
        assert_eq!(
            total,
            errors(&metrics, target, "health", reason),
            "{target}: {metrics}"
        );
    }
    let metrics = run.metrics().await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"tls-good\"} 1"));
    assert_eq!(common::poll_errors(&metrics, "tls-good"), 0.0);
    run.stop().await;
    for task in [good_task, unknown_task, expired_task, wrong_host_task] {
        task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Redirects and credentials.

/// Records the request heads it gets and answers `HEALTH_BODY`, until aborted.
async fn recorder() -> (SocketAddr, Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                if let Some(head) = read_head(&mut stream).await {
                    seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
                    let _ = stream.write_all(http_ok(HEALTH_BODY).as_bytes()).await;
                }
            });
        }
    });
    (addr, heads, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_stay_within_the_origin_and_credentials_never_leave() {
    capture_logs();
    let (elsewhere, heads, recorder_task) = recorder().await;
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = with_bystander(s);
        text.push_str(&onprem(
            "redirect-onprem",
            &s.base_url(Cluster::Single),
            o,
            "",
        ));
        text.push_str(&format!(
            "  - name: redirect-d360\n    type: dialog360\n    base_url: {}\n    api_key: {}\n\
             \x20 - name: redirect-kapso\n    type: kapso\n    base_url: {}\n    api_key: {}\n    config_id: {}\n",
            s.dialog360_base_url(),
            o.dialog360_api_keys[0],
            s.kapso_base_url(),
            o.kapso_api_key,
            o.kapso_config_ids[0],
        ));
        text
    })
    .await;
    let targets = ["redirect-onprem", "redirect-d360", "redirect-kapso"];
    let up: Vec<String> = targets
        .iter()
        .map(|t| format!("whatsapp_up{{target=\"{t}\"}} 1"))
        .collect();
    run.wait_for_lines(&up.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let sim = run.simulator.simulator().clone();
    // Each API redirects to the same path on another port of 127.0.0.1: another origin.
    sim.set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::Redirect(format!(
            "http://{elsewhere}/single/v1/health"
        ))),
    );
    sim.set_dialog360_fault(
        None,
        Some(Fault::Redirect(format!(
            "http://{elsewhere}/360dialog/health_status"
        ))),
    );
    sim.set_kapso_fault(
        None,
        Some(Fault::Redirect(format!(
            "http://{elsewhere}/kapso/api/v1/whatsapp_configs/kapso-config-1/health"
        ))),
    );
    let before = run.metrics().await;
    let bystander = Bystander::watch(&run);
    for (target, endpoint) in [
        ("redirect-onprem", "health"),
        ("redirect-d360", "health_status"),
        ("redirect-kapso", "health"),
    ] {
        expect_counted(
            &run,
            &before,
            (target, endpoint, "http_status"),
            "redirect: redirect to another origin refused",
            &bystander,
        )
        .await;
    }
    // Nothing reached the other origin: no Authorization, D360-API-KEY or X-API-Key.
    let o = sim.options();
    let got = heads.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(got.is_empty(), "the other origin got requests: {got:#?}");
    for secret in [&o.api_key, &o.dialog360_api_keys[0], &o.kapso_api_key] {
        assert!(log_lines("redirect-onprem")
            .iter()
            .chain(log_lines("redirect-d360").iter())
            .chain(log_lines("redirect-kapso").iter())
            .all(|l| !l.contains(secret.as_str())));
    }

    // Within the origin the redirect is followed, with the credential: the HA cluster's
    // nodes answer for the single instance's path.
    sim.set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::Redirect(format!(
            "{}/v1/health",
            run.simulator.base_url(Cluster::Ha)
        ))),
    );
    let ha_node = format!(
        "whatsapp_gateway_status{{target=\"redirect-onprem\",node=\"{}\",status=\"connected\"}}",
        sim.node_keys(Cluster::Ha)[0]
    );
    let metrics = run
        .wait_until(
            |m| has_line(m, "whatsapp_up{target=\"redirect-onprem\"} 1") && m.contains(&ha_node),
            "the same-origin redirect followed",
        )
        .await;
    promtool_check(&metrics);
    assert!(heads.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
    run.stop().await;
    recorder_task.abort();
}

// ---------------------------------------------------------------------------------------
// Refusals: 401 loops, 429/503 with Retry-After, Graph rate-limit codes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_401s_back_off_the_logins() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = with_bystander(s);
        text.push_str(&format!(
            "  - name: relogin\n    type: onprem\n    base_url: {}\n    username: {}\n    password: {}\n\
             \x20 - name: wrong-password\n    type: onprem\n    base_url: {}\n    username: {}\n    password: not-the-password\n",
            s.base_url(Cluster::Single),
            o.username,
            o.password,
            s.base_url(Cluster::Multiconnect),
            o.username,
        ));
        text
    })
    .await;
    run.wait_for_lines(&["whatsapp_up{target=\"relogin\"} 1"])
        .await;
    let sim = run.simulator.simulator().clone();
    // Every token is refused, though the login itself succeeds.
    let refused = Fault::ErrorEnvelope {
        status: 401,
        code: 1005,
        title: "Access denied".into(),
    };
    let logins = sim.requests(Cluster::Single, Endpoint::Login);
    let wrong_logins = sim.requests(Cluster::Multiconnect, Endpoint::Login);
    let before = run.metrics().await;
    let bystander = Bystander::watch(&run);
    sim.set_fault(Cluster::Single, Endpoint::Health, Some(refused.clone()));
    sim.set_fault(Cluster::Single, Endpoint::Support, Some(refused));
    expect_counted(
        &run,
        &before,
        ("relogin", "health", "unauthorized"),
        "HTTP 401: 1005 Access denied (Injected by the simulator)",
        &bystander,
    )
    .await;
    wait_for_poll_failed(
        "relogin",
        "support",
        "unauthorized",
        "login held back after 1 refused in a row",
    )
    .await;
    // Six seconds of 300 ms polls: twenty polls of two endpoints. Without a backoff each
    // would log in again; with it (1 s, 2 s, 4 s) a handful of logins.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = run.metrics().await;
    let polls = errors(&metrics, "relogin", "health", "unauthorized")
        + errors(&metrics, "relogin", "support", "unauthorized");
    let relogins = sim.requests(Cluster::Single, Endpoint::Login) - logins;
    assert!(polls >= 20.0, "{polls} refused polls");
    assert!(
        (1..=5).contains(&relogins),
        "{relogins} logins for {polls} refused polls"
    );
    // A wrong password backs off the same way.
    let wrong = sim.requests(Cluster::Multiconnect, Endpoint::Login) - wrong_logins;
    let wrong_polls = errors(&metrics, "wrong-password", "health", "unauthorized");
    assert!(wrong_polls >= 10.0, "{wrong_polls}");
    assert!(wrong <= 5, "{wrong} logins with a wrong password");
    assert!(!metrics.contains("not-the-password"));
    assert!(log_lines("wrong-password")
        .iter()
        .all(|l| !l.contains("not-the-password")));
    promtool_check(&metrics);
    // Accepted again: the next login after the backoff brings the target back.
    sim.set_fault(Cluster::Single, Endpoint::Health, None);
    sim.set_fault(Cluster::Single, Endpoint::Support, None);
    run.wait_for_lines(&["whatsapp_up{target=\"relogin\"} 1"])
        .await;
    run.stop().await;
}

/// An HTTP date `ahead` from now, as Retry-After carries it.
fn http_date(ahead: Duration) -> String {
    let at = chrono::Utc::now() + chrono::TimeDelta::from_std(ahead).expect("a short duration");
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_in_seconds_and_as_a_date_holds_polls_back() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let mut text = with_bystander(s);
        text.push_str(&onprem(
            "retry-after",
            &s.base_url(Cluster::Single),
            s.simulator().options(),
            "",
        ));
        text
    })
    .await;
    run.wait_for_lines(&["whatsapp_up{target=\"retry-after\"} 1"])
        .await;
    let sim = run.simulator.simulator().clone();
    let cases = [
        (
            Fault::TooManyRequests {
                retry_after: Some(http_date(Duration::from_secs(4))),
            },
            "HTTP 429: 1015 Too many requests",
        ),
        (
            Fault::ServiceUnavailable {
                retry_after: Some("3".into()),
            },
            "HTTP 503: 1016 System overloaded",
        ),
    ];
    for (fault, log) in cases {
        let before = run.metrics().await;
        let bystander = Bystander::watch(&run);
        sim.set_fault(Cluster::Single, Endpoint::Health, Some(fault.clone()));
        expect_counted(
            &run,
            &before,
            ("retry-after", "health", "rate_limited"),
            log,
            &bystander,
        )
        .await;
        // The upstream asked for at least 3 s; the interval is 300 ms. Checked over
        // 1.5 s after the refusal was counted (expect_counted waited some of it).
        let requests = sim.requests(Cluster::Single, Endpoint::Health);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            sim.requests(Cluster::Single, Endpoint::Health),
            requests,
            "{fault:?}: polled before the Retry-After"
        );
        sim.set_fault(Cluster::Single, Endpoint::Health, None);
        run.wait_for_lines(&["whatsapp_up{target=\"retry-after\"} 1"])
            .await;
    }
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_rate_limit_codes_are_rate_limited() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let mut text = with_bystander(s);
        text.push_str(&format!(
            "  - name: graph-victim\n    type: cloud_api\n    base_url: {}\n    access_token: {}\n    phone_number_ids: [\"{}\"]\n",
            s.cloud_api_base_url(),
            s.simulator().options().cloud_api_token,
            whatsapp_exporter::simulator::meta::PHONE_NUMBER_IDS[0],
        ));
        text
    })
    .await;
    run.wait_for_lines(&["whatsapp_up{target=\"graph-victim\"} 1"])
        .await;
    let sim = run.simulator.simulator().clone();
    for code in [4, 17, 32, 613, 80007, 80008] {
        let message = format!("rate limit {code} reached");
        let before = run.metrics().await;
        let bystander = Bystander::watch(&run);
        sim.set_cloud_api_fault(
            CloudApiEndpoint::Ids,
            Some(CloudApiFault::GraphError {
                status: 400,
                code,
                message: message.clone(),
            }),
        );
        expect_counted(
            &run,
            &before,
            ("graph-victim", "health", "rate_limited"),
            &format!("HTTP 400: Graph error {code}: {message}"),
            &bystander,
        )
        .await;
        sim.set_cloud_api_fault(CloudApiEndpoint::Ids, None);
        run.wait_for_lines(&["whatsapp_up{target=\"graph-victim\"} 1"])
            .await;
    }
    run.stop().await;
}

// ---------------------------------------------------------------------------------------
// Cardinality and escaping.

/// Poll series of a target: not data, not under the series limit.
const POLL_FAMILIES: [&str; 9] = [
    "whatsapp_target_info{",
    "whatsapp_items_skipped_total{",
    "whatsapp_up{",
    "whatsapp_poll_",
    "whatsapp_last_poll_success_timestamp_seconds{",
    "whatsapp_upstream_errors_total{",
    "whatsapp_upstream_requests_total{",
    "whatsapp_series_dropped_total{",
    "whatsapp_auth_token_expiry_timestamp_seconds{",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_nodes_are_cut_at_the_series_limit() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        s.simulator().add_nodes(Cluster::Multiconnect, 10_000);
        let mut text = with_bystander(s);
        text.push_str(&onprem(
            "many",
            &s.base_url(Cluster::Multiconnect),
            s.simulator().options(),
            "    interval: 1s\n    timeout: 1s\n",
        ));
        text
    })
    .await;
    let sim = run.simulator.simulator().clone();
    let nodes = sim.node_keys(Cluster::Multiconnect).len();
    assert_eq!(nodes, 10_004);
    // Per node five gateway states and three roles, and one whatsapp_api_info.
    let answered = nodes * 8 + 1;
    let dropped = (answered - 1000) as f64;
    let bystander = Bystander::watch(&run);
    let series = "whatsapp_series_dropped_total{target=\"many\",endpoint=\"health\"}";
    let metrics = run
        .wait_until(
            |m| value(m, series).is_some_and(|v| v >= dropped),
            "series dropped over the limit",
        )
        .await;
    let total = value(&metrics, series).expect("dropped series counted");
    assert_eq!(total % dropped, 0.0, "{total} is whole polls of {dropped}");
    let polls = total / dropped;
    // The poll itself succeeds, with the first 1,000 series in exposition order.
    assert!(has_line(&metrics, "whatsapp_up{target=\"many\"} 1"));
    let data: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("{target=\"many\""))
        .filter(|l| !POLL_FAMILIES.iter().any(|p| l.starts_with(p)))
        .collect();
    assert_eq!(data.len(), 1000, "{:#?}", &data[..data.len().min(5)]);
    assert!(has_line(
        &metrics,
        "whatsapp_api_info{target=\"many\",version=\"v2.53.2\",api_status=\"stable\"} 1"
    ));
    assert_eq!(
        data.iter()
            .filter(|l| l.starts_with("whatsapp_gateway_status{"))
            .count(),
        999
    );
    // Logged once per poll, not per series.
    let logged = log_lines("many")
        .into_iter()
        .filter(|l| l.contains("message=\"answer over series_limit: series left out\""))
        .collect::<Vec<_>>();
    assert!(logged.len() as f64 >= polls, "{logged:#?}");
    assert!(
        logged.len() as u64 <= sim.requests(Cluster::Multiconnect, Endpoint::Health),
        "{logged:#?}"
    );
    assert!(
        logged[0].contains(&format!(
            "level=warn message=\"answer over series_limit: series left out\" target_name=many endpoint=health series={answered} dropped={dropped} series_limit=1000"
        )),
        "{}",
        logged[0]
    );
    bystander.assert_on_time(&run, "many").await;
    promtool_check(&run.metrics().await);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_label_values_are_escaped() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let mut text = with_bystander(s);
        text.push_str(&onprem(
            "escape",
            &s.base_url(Cluster::Single),
            s.simulator().options(),
            "",
        ));
        text
    })
    .await;
    run.wait_for_lines(&["whatsapp_up{target=\"escape\"} 1"])
        .await;
    let sim = run.simulator.simulator().clone();
    sim.set_gateway_status(
        Cluster::Single,
        None,
        "down \"hard\" at C:\\wa\\\nsecond line: ünïcødé ✓ 日本語",
    );
    let line = "whatsapp_gateway_status{target=\"escape\",node=\"\",status=\"down \\\"hard\\\" at C:\\\\wa\\\\\\nsecond line: ünïcødé ✓ 日本語\"} 1";
    let metrics = run.wait_for_lines(&[line]).await;
    // The known states stay, at 0, and every line of the family is one line.
    assert!(has_line(
        &metrics,
        "whatsapp_gateway_status{target=\"escape\",node=\"\",status=\"connected\"} 0"
    ));
    assert_eq!(
        common::family(&metrics, "whatsapp_gateway_status")
            .iter()
            .filter(|l| l.contains("target=\"escape\""))
            .count(),
        6
    );
    assert!(log_lines("escape").iter().any(|l| l.contains(
        "message=\"unknown value from upstream, exported as its own series\" target_name=escape endpoint=health metric=whatsapp_gateway_status"
    )));
    promtool_check(&metrics);
    // OpenMetrics escapes the same way.
    let om = reqwest::Client::new()
        .get(format!("{}/metrics", run.url))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(has_line(&om, line), "{om}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_parser_survives_deep_nesting_bad_bytes_and_endless_json() {
    capture_logs();
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = with_bystander(s);
        text.push_str(&format!(
            "  - name: parse-d360\n    type: dialog360\n    base_url: {}\n    api_key: {}\n\
             \x20 - name: parse-kapso\n    type: kapso\n    base_url: {}\n    api_key: {}\n    config_id: {}\n\
             \x20 - name: parse-graph\n    type: cloud_api\n    base_url: {}\n    access_token: {}\n    phone_number_ids: [\"{}\"]\n",
            s.dialog360_base_url(),
            o.dialog360_api_keys[0],
            s.kapso_base_url(),
            o.kapso_api_key,
            o.kapso_config_ids[0],
            s.cloud_api_base_url(),
            o.cloud_api_token,
            whatsapp_exporter::simulator::meta::PHONE_NUMBER_IDS[0],
        ));
        text
    })
    .await;
    let targets = [
        ("parse-d360", "health_status"),
        ("parse-kapso", "health"),
        ("parse-graph", "health"),
    ];
    let up: Vec<String> = targets
        .iter()
        .map(|(t, _)| format!("whatsapp_up{{target=\"{t}\"}} 1"))
        .collect();
    let up: Vec<&str> = up.iter().map(String::as_str).collect();
    run.wait_for_lines(&up).await;
    let sim = run.simulator.simulator().clone();
    // Every parser reads JSON with serde_json's recursion limit: an error, no overflow.
    let cases = [
        (
            Fault::DeepNesting(100_000),
            "decode",
            "malformed JSON at line 1, column 128: recursion limit exceeded",
        ),
        (
            Fault::InvalidUtf8,
            "decode",
            "malformed JSON at line 1, column 3: invalid unicode code point",
        ),
        (
            Fault::HugeJson(64 << 20),
            "body_too_large",
            "response body exceeds the limit of 1048576 bytes",
        ),
    ];
    for (fault, reason, log) in cases {
        let before = run.metrics().await;
        let bystander = Bystander::watch(&run);
        sim.set_dialog360_fault(None, Some(fault.clone()));
        sim.set_kapso_fault(None, Some(fault.clone()));
        sim.set_cloud_api_fault(CloudApiEndpoint::Ids, Some(fault.clone().into()));
        for (target, endpoint) in targets {
            expect_counted(&run, &before, (target, endpoint, reason), log, &bystander).await;
        }
        sim.set_dialog360_fault(None, None);
        sim.set_kapso_fault(None, None);
        sim.set_cloud_api_fault(CloudApiEndpoint::Ids, None);
        run.wait_for_lines(&up).await;
    }
    run.stop().await;
}
