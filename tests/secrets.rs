//! No secret ever leaves the exporter: the real binary, at log level debug, in both log
//! formats, runs against the simulator with distinctive credentials of every kind (the
//! webhook receiver's app secrets, verify and bearer tokens among them, inline and in
//! files), while every endpoint and the receiver are exercised with right and wrong
//! credentials and the upstreams fail in every way the test can make them.
//! Then every log line, every response (head and body, gzip bodies unpacked) and every
//! `--config.check` message is searched for each secret.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::process::{curl, CurlAnswer, ExporterProcess, BIN};
use whatsapp_exporter::simulator::{
    Cluster, Endpoint, Fault, RateLimit, SimulatorHandle, SimulatorOptions,
};

/// Every secret holds this marker, so a partial leak is found too.
const MARKER: &str = "sEcReT";
const ONPREM_API_KEY: &str = "sEcReT-onprem-apikey-7f3a91";
const ONPREM_USER: &str = "monitoring-user";
const ONPREM_PASSWORD: &str = "sEcReT-onprem-password-52c8e0";
const ONPREM_BEARER: &str = "sEcReT-onprem-bearer-d41e77";
const WRONG_API_KEY: &str = "sEcReT-wrong-apikey-0b9c3d";
const WRONG_PASSWORD: &str = "sEcReT-wrong-password-a8e210";
const CLOUD_API_TOKEN: &str = "sEcReT-graph-token-EAAG91b2";
const WRONG_CLOUD_API_TOKEN: &str = "sEcReT-graph-wrong-77aa01";
/// An app token (`<app id>|<app secret>`) that debug_token refuses: the business target's
/// token inspection fails with it, and its errors must not show it.
const APP_TOKEN: &str = "634974688087057|sEcReT-app-secret-c0ffee";
const DIALOG360_KEYS: [&str; 3] = [
    "sEcReT-d360-key-one-11",
    "sEcReT-d360-key-two-22",
    "sEcReT-d360-key-three-33",
];
const WRONG_DIALOG360_KEY: &str = "sEcReT-d360-wrong-44";
const KAPSO_KEY: &str = "sEcReT-kapso-key-9e8d7c";
const WRONG_KAPSO_KEY: &str = "sEcReT-kapso-wrong-5f";
const WEB_USER: &str = "scraper";
const WEB_PASSWORD: &str = "sEcReT-web-password-4411";
/// The webhook receiver's secrets, inline and in files, and the wrong ones callers present.
const WEBHOOK_APP_SECRET: &str = "sEcReT-webhook-app-5a1f90";
const WEBHOOK_APP_SECRET_IN_FILE: &str = "sEcReT-webhook-app-file-8c2e";
const WEBHOOK_VERIFY_TOKEN: &str = "sEcReT-webhook-verify-3d7b";
const WEBHOOK_VERIFY_TOKEN_IN_FILE: &str = "sEcReT-webhook-verify-file-61a0";
const WEBHOOK_BEARER_TOKEN: &str = "sEcReT-webhook-bearer-e94c";
const WEBHOOK_BEARER_TOKEN_IN_FILE: &str = "sEcReT-webhook-bearer-file-27d5";
const WRONG_WEBHOOK_SECRET: &str = "sEcReT-webhook-forged-0c3a";
const WEBHOOK_SECRETS: [&str; 7] = [
    WEBHOOK_APP_SECRET,
    WEBHOOK_APP_SECRET_IN_FILE,
    WEBHOOK_VERIFY_TOKEN,
    WEBHOOK_VERIFY_TOKEN_IN_FILE,
    WEBHOOK_BEARER_TOKEN,
    WEBHOOK_BEARER_TOKEN_IN_FILE,
    WRONG_WEBHOOK_SECRET,
];

fn simulator_options() -> SimulatorOptions {
    SimulatorOptions {
        api_key: ONPREM_API_KEY.to_owned(),
        username: ONPREM_USER.to_owned(),
        password: ONPREM_PASSWORD.to_owned(),
        cloud_api_token: CLOUD_API_TOKEN.to_owned(),
        dialog360_api_keys: DIALOG360_KEYS.map(str::to_owned).to_vec(),
        kapso_api_key: KAPSO_KEY.to_owned(),
        rate_limit: None::<RateLimit>,
        ..SimulatorOptions::default()
    }
}

/// The webhook receiver's secret files in `dir`: app secret, verify token, bearer token.
fn webhook_files(dir: &Path) -> [std::path::PathBuf; 3] {
    [
        "webhook-app.secret",
        "webhook-verify.token",
        "webhook-relay.token",
    ]
    .map(|f| dir.join(f))
}

/// Targets of every kind and credential, good and bad, and one on a closed port; the
/// webhook receiver with each of its secrets inline and in a file (of `webhook_files`).
fn config_text(s: &SimulatorHandle, key_file: &Path, closed_port: u16) -> String {
    use whatsapp_exporter::simulator::meta;
    let o = s.simulator().options();
    let [app_file, verify_file, bearer_file] =
        webhook_files(key_file.parent().expect("the key file's directory"));
    format!(
        "webhooks:\n  listen_address: 127.0.0.1:0\n\
         \x20 verify_token: {WEBHOOK_VERIFY_TOKEN}\n  verify_token_file: {verify_file}\n\
         \x20 app_secret: {WEBHOOK_APP_SECRET}\n  app_secret_file: {app_file}\n\
         \x20 bearer_token: {WEBHOOK_BEARER_TOKEN}\n  bearer_token_file: {bearer_file}\n\
         global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
         - name: onprem-good\n  type: onprem\n  base_url: {single}\n  api_key: {ONPREM_API_KEY}\n  username: {ONPREM_USER}\n  password: {ONPREM_PASSWORD}\n\
         - name: onprem-key-file\n  type: onprem\n  base_url: {single}\n  api_key_file: {key_file}\n\
         - name: onprem-wrong\n  type: onprem\n  base_url: {ha}\n  api_key: {WRONG_API_KEY}\n  username: {ONPREM_USER}\n  password: {WRONG_PASSWORD}\n\
         - name: onprem-bearer\n  type: onprem\n  base_url: {mc}\n  bearer_token: {ONPREM_BEARER}\n\
         - name: onprem-closed\n  type: onprem\n  base_url: http://127.0.0.1:{closed_port}\n  api_key: {ONPREM_API_KEY}\n  username: {ONPREM_USER}\n  password: {ONPREM_PASSWORD}\n\
         - name: cloud-good\n  type: cloud_api\n  base_url: {graph}\n  access_token: {CLOUD_API_TOKEN}\n  waba_id: \"{waba}\"\n  phone_number_ids: [\"{number}\"]\n  discover: true\n  discovery_interval: 1s\n\
         - name: cloud-business\n  type: cloud_api\n  base_url: {graph}\n  access_token: {CLOUD_API_TOKEN}\n  debug_token_access_token: \"{APP_TOKEN}\"\n  business_id: \"{business}\"\n  discovery_interval: 1s\n\
         - name: cloud-wrong\n  type: cloud_api\n  base_url: {graph}\n  access_token: {WRONG_CLOUD_API_TOKEN}\n  phone_number_ids: [\"{number}\"]\n\
         - name: d360-good\n  type: dialog360\n  base_url: {d360}\n  api_key: {d360_key}\n\
         - name: d360-wrong\n  type: dialog360\n  base_url: {d360}\n  api_key: {WRONG_DIALOG360_KEY}\n\
         - name: kapso-good\n  type: kapso\n  base_url: {kapso}\n  api_key: {KAPSO_KEY}\n  config_id: {kapso_config}\n\
         - name: kapso-wrong\n  type: kapso\n  base_url: {kapso}\n  api_key: {WRONG_KAPSO_KEY}\n  config_id: {kapso_config}\n\
         - name: kapso-platform-good\n  type: kapso_platform\n  base_url: {kapso_platform}\n  api_key: {KAPSO_KEY}\n  discover: true\n\
         - name: kapso-platform-wrong\n  type: kapso_platform\n  base_url: {kapso_platform}\n  api_key: {WRONG_KAPSO_KEY}\n  discover: true\n",
        single = s.base_url(Cluster::Single),
        ha = s.base_url(Cluster::Ha),
        mc = s.base_url(Cluster::Multiconnect),
        key_file = key_file.display(),
        graph = s.cloud_api_base_url(),
        waba = meta::WABA_ID,
        business = meta::BUSINESS_ID,
        number = meta::PHONE_NUMBER_IDS[0],
        d360 = s.dialog360_base_url(),
        d360_key = DIALOG360_KEYS[0],
        kapso = s.kapso_base_url(),
        kapso_platform = s.kapso_platform_base_url(),
        kapso_config = o.kapso_config_ids[0],
        app_file = app_file.display(),
        verify_file = verify_file.display(),
        bearer_file = bearer_file.display(),
    )
}

/// Every string that must never come out: the secrets, the basic-auth forms of the
/// passwords and the web config's bcrypt hash.
fn secrets(web_hash: &str) -> Vec<String> {
    let basic = |user: &str, password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    };
    let mut all: Vec<String> = [
        MARKER,
        ONPREM_API_KEY,
        ONPREM_PASSWORD,
        ONPREM_BEARER,
        WRONG_API_KEY,
        WRONG_PASSWORD,
        CLOUD_API_TOKEN,
        WRONG_CLOUD_API_TOKEN,
        APP_TOKEN,
        WRONG_DIALOG360_KEY,
        KAPSO_KEY,
        WRONG_KAPSO_KEY,
        WEB_PASSWORD,
        web_hash,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.extend(DIALOG360_KEYS.iter().map(|s| (*s).to_owned()));
    all.extend(WEBHOOK_SECRETS.iter().map(|s| (*s).to_owned()));
    all.push(basic(ONPREM_USER, ONPREM_PASSWORD));
    all.push(basic(ONPREM_USER, WRONG_PASSWORD));
    all.push(basic(WEB_USER, WEB_PASSWORD));
    // The bcrypt salt and digest part alone, in case the hash is printed reformatted.
    all.push(web_hash[7..].to_owned());
    all
}

/// What the exporter said, in all channels.
#[derive(Default)]
struct Captured {
    /// Labelled texts: (where, text).
    texts: Vec<(String, String)>,
    responses: usize,
}

impl Captured {
    fn answer(&mut self, what: &str, answer: &CurlAnswer) -> String {
        self.responses += 1;
        self.texts
            .push((format!("{what}: response head"), answer.head.clone()));
        let body = if answer.header("Content-Encoding").as_deref() == Some("gzip") {
            self.texts.push((
                format!("{what}: raw gzip body"),
                String::from_utf8_lossy(&answer.body).into_owned(),
            ));
            let mut text = String::new();
            flate2::read::GzDecoder::new(answer.body.as_slice())
                .read_to_string(&mut text)
                .expect("a gzip body");
            text
        } else {
            answer.text()
        };
        self.texts.push((format!("{what}: body"), body.clone()));
        self.texts
            .push((format!("{what}: curl messages"), answer.stderr.clone()));
        body
    }

    fn bytes(&self) -> usize {
        self.texts.iter().map(|(_, t)| t.len()).sum()
    }
}

struct Scene {
    exporter: ExporterProcess,
    base: String,
    /// The webhook receiver's URL: its own listener, without the web config's basic auth.
    webhooks: String,
    credentials: String,
    captured: Captured,
}

impl Scene {
    fn request(&mut self, what: &str, extra: &[&str], path: &str) -> (u16, String) {
        let mut args: Vec<String> = vec!["--user".into(), self.credentials.clone()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(format!("{}{path}", self.base));
        let answer = curl(args);
        let body = self.captured.answer(what, &answer);
        (answer.status, body)
    }

    /// A request to the webhook receiver; `args` before its URL (`query` after it).
    fn webhook(&mut self, what: &str, args: &[String], query: &str) -> (u16, String) {
        let mut args = args.to_vec();
        args.push(format!("{}{query}", self.webhooks));
        let answer = curl(args);
        let body = self.captured.answer(what, &answer);
        if answer.status == 401 {
            assert_eq!(answer.header("WWW-Authenticate").as_deref(), Some("Bearer"));
        }
        (answer.status, body)
    }

    /// Scrapes (bounded) until /metrics has every line.
    fn wait_for_lines(&mut self, lines: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let (status, body) = self.request("/metrics (waiting)", &[], "/metrics");
            if status == 200 && lines.iter().all(|l| common::has_line(&body, l)) {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "waited for {lines:#?}; last /metrics:\n{body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (bounded) until a "poll failed" line after the first `since` lines of the log
    /// names `target`, `endpoint` and `reason`.
    fn wait_for_failure(&self, since: usize, target: &str, endpoint: &str, reason: &str) {
        let started = Instant::now();
        let has = |line: &str, name: &str, value: &str| {
            line.contains(&format!("{name}={value} "))
                || line.contains(&format!("\"{name}\":\"{value}\""))
        };
        loop {
            let found = self.exporter.log().iter().skip(since).any(|line| {
                line.contains("poll failed")
                    && has(line, "target_name", target)
                    && has(line, "endpoint", endpoint)
                    && has(line, "reason", reason)
            });
            if found {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no 'poll failed' of {target} {endpoint} with reason {reason}; the log:\n{}",
                self.exporter.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn run_check(captured: &mut Captured, config: &Path, what: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(["--config.check", "--log.level=debug", "--config.file"])
        .arg(config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{what}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    captured
        .texts
        .push((format!("{what}: stdout"), stdout.clone()));
    captured.texts.push((
        format!("{what}: stderr"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
    stdout
}

async fn no_secret_leaves_the_exporter(log_format: &str) {
    let simulator = common::simulator(simulator_options()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("onprem.key");
    std::fs::write(&key_file, format!("{ONPREM_API_KEY}\n")).unwrap();
    let [app_file, verify_file, bearer_file] = webhook_files(dir.path());
    for (file, secret) in [
        (&app_file, WEBHOOK_APP_SECRET_IN_FILE),
        (&verify_file, WEBHOOK_VERIFY_TOKEN_IN_FILE),
        (&bearer_file, WEBHOOK_BEARER_TOKEN_IN_FILE),
    ] {
        std::fs::write(file, format!("{secret}\n")).unwrap();
    }
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config_path = dir.path().join("config.yaml");
    let good_config = config_text(&simulator, &key_file, closed_port);
    std::fs::write(&config_path, &good_config).unwrap();
    let web_hash = bcrypt::hash(WEB_PASSWORD, 4).unwrap();
    let web_path = dir.path().join("web.yml");
    std::fs::write(
        &web_path,
        format!("basic_auth_users:\n  {WEB_USER}: '{web_hash}'\n"),
    )
    .unwrap();

    let exporter = ExporterProcess::start([
        "--log.level=debug",
        &format!("--log.format={log_format}"),
        "--config.file",
        &config_path.display().to_string(),
        "--web.config.file",
        &web_path.display().to_string(),
    ]);
    let base = format!("http://{}", exporter.address);
    let webhooks = format!("http://{}/webhooks/whatsapp", exporter.webhook_address());
    let mut scene = Scene {
        exporter,
        base,
        webhooks,
        credentials: format!("{WEB_USER}:{WEB_PASSWORD}"),
        captured: Captured::default(),
    };

    // Good targets up, bad ones down, for the reasons they should be.
    scene.wait_for_lines(&[
        "whatsapp_up{target=\"onprem-good\"} 1",
        "whatsapp_up{target=\"onprem-key-file\"} 1",
        "whatsapp_up{target=\"cloud-good\"} 1",
        "whatsapp_up{target=\"d360-good\"} 1",
        "whatsapp_up{target=\"kapso-good\"} 1",
        "whatsapp_up{target=\"kapso-platform-good\"} 1",
        "whatsapp_up{target=\"onprem-wrong\"} 0",
        "whatsapp_up{target=\"onprem-bearer\"} 0",
        "whatsapp_up{target=\"onprem-closed\"} 0",
        "whatsapp_up{target=\"cloud-wrong\"} 0",
        // Its health is read with the good token; debug_token refuses the app token.
        "whatsapp_poll_success{target=\"cloud-business\",endpoint=\"health\"} 1",
        "whatsapp_up{target=\"cloud-business\"} 0",
        "whatsapp_up{target=\"d360-wrong\"} 0",
        "whatsapp_up{target=\"kapso-wrong\"} 0",
        "whatsapp_up{target=\"kapso-platform-wrong\"} 0",
    ]);
    for (target, endpoint) in [
        ("onprem-wrong", "health"),
        ("onprem-wrong", "support"),
        ("onprem-bearer", "health"),
        ("cloud-wrong", "health"),
        ("cloud-business", "token"),
        ("d360-wrong", "health_status"),
        ("kapso-wrong", "health"),
        ("kapso-platform-wrong", "discovery"),
    ] {
        scene.wait_for_failure(0, target, endpoint, "unauthorized");
    }
    scene.wait_for_failure(0, "onprem-closed", "health", "connection_refused");

    // The simulator's failure switches, one after the other, on the good target.
    let sim = simulator.simulator().clone();
    let faults = [
        (Endpoint::Health, Fault::MalformedJson, "health", "decode"),
        (
            Endpoint::Health,
            Fault::Status(502),
            "health",
            "http_status",
        ),
        (
            Endpoint::Health,
            Fault::ErrorEnvelope {
                status: 401,
                code: 1005,
                title: "Access denied".into(),
            },
            "health",
            "unauthorized",
        ),
        (Endpoint::Login, Fault::EmptyBody, "support", "decode"),
    ];
    for (endpoint, fault, polled, reason) in faults {
        let since = scene.exporter.log().len();
        sim.set_fault(Cluster::Single, endpoint, Some(fault));
        if endpoint == Endpoint::Login {
            // A refused token makes the exporter log in again, into the broken login.
            sim.revoke_tokens(Cluster::Single);
        }
        scene.wait_for_failure(since, "onprem-good", polled, reason);
        sim.set_fault(Cluster::Single, endpoint, None);
    }
    scene.wait_for_lines(&["whatsapp_up{target=\"onprem-good\"} 1"]);

    // Every endpoint, in every way.
    let requests: [(&str, &[&str], &str, u16); 16] = [
        ("landing page", &[], "/", 200),
        ("metrics", &[], "/metrics", 200),
        (
            "metrics gzip",
            &["-H", "Accept-Encoding: gzip"],
            "/metrics",
            200,
        ),
        (
            "metrics openmetrics",
            &["-H", "Accept: application/openmetrics-text; version=1.0.0"],
            "/metrics",
            200,
        ),
        (
            "metrics openmetrics gzip",
            &[
                "-H",
                "Accept: application/openmetrics-text; version=1.0.0",
                "-H",
                "Accept-Encoding: gzip",
            ],
            "/metrics",
            200,
        ),
        ("probe good", &[], "/probe?target=onprem-good", 200),
        ("probe cloud", &[], "/probe?target=cloud-good", 200),
        ("probe wrong key", &[], "/probe?target=onprem-wrong", 200),
        ("probe closed port", &[], "/probe?target=onprem-closed", 200),
        ("probe wrong token", &[], "/probe?target=cloud-wrong", 200),
        ("probe unknown", &[], "/probe?target=nope", 400),
        ("probe without target", &[], "/probe", 400),
        ("config page", &[], "/config", 200),
        ("healthy", &[], "/-/healthy", 200),
        ("ready", &[], "/-/ready", 200),
        ("not found", &[], "/secrets", 404),
    ];
    for (what, extra, path, expected) in requests {
        let (status, body) = scene.request(what, extra, path);
        assert_eq!(status, expected, "{what}: {body}");
    }
    // The trace of one poll of every target: request URLs, response headers and bodies,
    // the login answer with its token, and the errors of the failing ones.
    for target in [
        "onprem-good",
        "onprem-key-file",
        "onprem-wrong",
        "onprem-bearer",
        "onprem-closed",
        "cloud-good",
        "cloud-business",
        "cloud-wrong",
        "d360-good",
        "d360-wrong",
        "kapso-good",
        "kapso-wrong",
        "kapso-platform-good",
        "kapso-platform-wrong",
    ] {
        let what = format!("debug probe {target}");
        let (status, trace) =
            scene.request(&what, &[], &format!("/probe?target={target}&debug=true"));
        assert_eq!(status, 200, "{what}: {trace}");
        assert!(
            trace.contains("\n  request 1: GET ") || trace.contains("\n  request 1: POST "),
            "{what}: {trace}"
        );
        assert!(
            trace.contains(&format!("\nwhatsapp_up{{target=\"{target}\"}} ")),
            "{what}: {trace}"
        );
    }
    // A debug probe that logs in: the login answer, its token redacted, is in the trace.
    sim.revoke_tokens(Cluster::Single);
    let (_, trace) = scene.request(
        "debug probe onprem-good after a revoked token",
        &[],
        "/probe?target=onprem-good&debug=true",
    );
    assert!(trace.contains("\"token\":\"<redacted>\""), "{trace}");
    let (status, _) = scene.request(
        "debug probe bad value",
        &[],
        "/probe?target=onprem-good&debug=sEcReT",
    );
    assert_eq!(status, 400);
    let (status, _) = scene.request("reload by GET", &[], "/-/reload");
    assert_eq!(status, 405);
    let (_, probe) = scene.request("probe wrong key again", &[], "/probe?target=onprem-wrong");
    assert!(
        common::has_line(&probe, "whatsapp_up{target=\"onprem-wrong\"} 0"),
        "{probe}"
    );
    let (_, config_page) = scene.request("config page again", &[], "/config");
    assert!(
        config_page.contains(&format!("  api_key_file: {}\n", key_file.display())),
        "{config_page}"
    );
    for (key, file) in [
        ("verify_token", &verify_file),
        ("app_secret", &app_file),
        ("bearer_token", &bearer_file),
    ] {
        let shown = format!(
            "  {key}:\n  - <secret>\n  {key}_file:\n  - {}\n",
            file.display()
        );
        assert!(config_page.contains(&shown), "{shown}\n{config_page}");
    }
    // 17 of the targets, the receiver's inline three.
    assert_eq!(config_page.matches("<secret>").count(), 20, "{config_page}");

    // The webhook receiver: the handshake with each verify token and a wrong one, a
    // delivery signed with each app secret and a forged one, with each bearer token and a
    // wrong one, and without any credential.
    for (what, token, expected) in [
        ("handshake, inline token", WEBHOOK_VERIFY_TOKEN, 200),
        (
            "handshake, token from file",
            WEBHOOK_VERIFY_TOKEN_IN_FILE,
            200,
        ),
        ("handshake, wrong token", WRONG_WEBHOOK_SECRET, 403),
    ] {
        let query =
            format!("?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444");
        let (status, body) = scene.webhook(what, &[], &query);
        assert_eq!(status, expected, "{what}: {body}");
    }
    let delivery = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/webhooks/messages-status-failed-131049.json"
    ))
    .unwrap();
    let signed = |secret: &str| {
        let signature = whatsapp_exporter::simulator::webhook_sender::signature(
            delivery.as_bytes(),
            &whatsapp_exporter::secret::Secret::new(secret),
        );
        format!("X-Hub-Signature-256: {signature}")
    };
    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    for (what, header, expected) in [
        (
            "delivery, inline app secret",
            signed(WEBHOOK_APP_SECRET),
            200,
        ),
        (
            "delivery, app secret from file",
            signed(WEBHOOK_APP_SECRET_IN_FILE),
            200,
        ),
        (
            "delivery, forged signature",
            signed(WRONG_WEBHOOK_SECRET),
            403,
        ),
        (
            "delivery, inline bearer token",
            bearer(WEBHOOK_BEARER_TOKEN),
            200,
        ),
        (
            "delivery, bearer token from file",
            bearer(WEBHOOK_BEARER_TOKEN_IN_FILE),
            200,
        ),
        (
            "delivery, wrong bearer token",
            bearer(WRONG_WEBHOOK_SECRET),
            403,
        ),
        ("delivery, no credential", "X-Nothing: 1".to_owned(), 401),
    ] {
        let args = [
            "-H".to_owned(),
            "Content-Type: application/json".to_owned(),
            "-H".to_owned(),
            header,
            "--data-binary".to_owned(),
            delivery.clone(),
        ];
        let (status, body) = scene.webhook(what, &args, "");
        assert_eq!(status, expected, "{what}: {body}");
    }
    scene.wait_for_lines(&[
        "whatsapp_webhook_verifications_total{result=\"accepted\"} 2",
        "whatsapp_webhook_verifications_total{result=\"bad_token\"} 1",
        "whatsapp_webhook_requests_total{result=\"accepted\"} 4",
        "whatsapp_webhook_requests_total{result=\"bad_signature\"} 2",
        "whatsapp_webhook_requests_total{result=\"unauthenticated\"} 1",
    ]);
    // Unauthenticated and wrongly authenticated requests.
    for (what, credentials) in [
        ("no credentials", None),
        (
            "wrong web password",
            Some(format!("{WEB_USER}:{WRONG_PASSWORD}")),
        ),
    ] {
        let mut args = Vec::new();
        if let Some(c) = credentials {
            args.push("--user".to_owned());
            args.push(c);
        }
        args.push(format!("{}/metrics", scene.base));
        let answer = curl(args);
        assert_eq!(answer.status, 401);
        scene.captured.answer(what, &answer);
    }

    // Reloads: the same config, a config with an unknown key, one whose syntax error is on
    // a secret's line, one with a secret too short to be an API key, secrets of the
    // wrong type, a webhook secret file that is not there, and back.
    let (status, body) = scene.request("reload valid", &["-X", "POST"], "/-/reload");
    assert_eq!((status, body.as_str()), (200, "configuration reloaded\n"));
    let broken = [
        (
            "unknown key",
            format!("{good_config}  intervall: 5s\n"),
            "unknown field `intervall`",
        ),
        (
            "syntax error on a secret's line",
            good_config.replacen(
                &format!("api_key: {ONPREM_API_KEY}\n"),
                &format!("api_key: {ONPREM_API_KEY}: x\n"),
                1,
            ),
            "mapping values are not allowed",
        ),
        (
            "secret of a bad length",
            good_config.replacen(
                &format!("api_key: {WRONG_API_KEY}\n"),
                "api_key: sEcReT-1\n",
                1,
            ),
            "api_key must be 12 to 128 characters long (it has 8)",
        ),
        (
            "secret in a value of the wrong type",
            good_config.replacen(
                &format!("access_token: {CLOUD_API_TOKEN}\n"),
                &format!("access_token: [{CLOUD_API_TOKEN}]\n"),
                1,
            ),
            "invalid type: sequence",
        ),
        (
            "syntax error on a webhook secret's line",
            good_config.replacen(
                &format!("app_secret: {WEBHOOK_APP_SECRET}\n"),
                &format!("app_secret: {WEBHOOK_APP_SECRET}: x\n"),
                1,
            ),
            "mapping values are not allowed",
        ),
        (
            "webhook token of the wrong type",
            good_config.replacen(
                &format!("bearer_token: {WEBHOOK_BEARER_TOKEN}\n"),
                &format!("bearer_token: {{token: {WEBHOOK_BEARER_TOKEN}}}\n"),
                1,
            ),
            "webhooks.bearer_token: invalid type: map, expected a string or a list of strings",
        ),
        (
            "webhook secret file missing",
            good_config.replacen(
                &app_file.display().to_string(),
                &dir.path().join("webhook-app.missing").display().to_string(),
                1,
            ),
            "webhook-app.missing",
        ),
    ];
    for (what, text, expected) in &broken {
        std::fs::write(&config_path, text).unwrap();
        let (status, body) = scene.request(what, &["-X", "POST"], "/-/reload");
        assert_eq!(status, 500, "{what}: {body}");
        assert!(body.contains(expected), "{what}: {body}");
        let stdout = run_check(&mut scene.captured, &config_path, what);
        assert!(stdout.starts_with("FAILED: "), "{what}: {stdout}");
        assert!(stdout.contains(expected), "{what}: {stdout}");
    }
    std::fs::write(&config_path, &good_config).unwrap();
    let (status, _) = scene.request("reload valid again", &["-X", "POST"], "/-/reload");
    assert_eq!(status, 200);
    let metrics = scene.wait_for_lines(&[
        "whatsapp_exporter_config_last_reload_successful 1",
        "whatsapp_up{target=\"onprem-good\"} 1",
    ]);
    assert!(
        common::has_line(
            &metrics,
            "whatsapp_exporter_config_reloads_total{result=\"failure\"} 7"
        ),
        "{metrics}"
    );

    scene.exporter.stop();
    let log = scene.exporter.log();
    simulator.shutdown().await;

    // The check cannot pass on nothing: plenty was said, and the failures were logged.
    assert!(log.len() >= 30, "only {} log lines", log.len());
    assert!(
        scene.captured.responses >= 30,
        "{}",
        scene.captured.responses
    );
    assert!(
        scene.captured.bytes() >= 50_000,
        "{}",
        scene.captured.bytes()
    );
    let joined = log.join("\n");
    for expected in [
        "poll failed",
        "configuration reload failed",
        "request refused: basic auth",
        "login token refused, logging in again",
        "webhook receiver listening",
        "webhook handshake refused",
        "webhook delivery refused",
        "shut down",
    ] {
        assert!(
            joined.contains(expected),
            "no {expected:?} in the log:\n{joined}"
        );
    }
    if log_format == "json" {
        assert!(log.iter().all(|l| l.starts_with('{')), "{joined}");
    } else {
        assert!(log.iter().any(|l| l.contains("level=debug")), "{joined}");
    }

    // And no secret anywhere.
    let mut texts = scene.captured.texts;
    texts.extend(
        log.iter()
            .enumerate()
            .map(|(i, l)| (format!("log line {i}"), l.clone())),
    );
    for secret in secrets(&web_hash) {
        for (place, text) in &texts {
            assert!(
                !text.contains(&secret),
                "{secret:?} leaked in {place}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logfmt_logs_pages_or_errors() {
    no_secret_leaves_the_exporter("logfmt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_json_logs_pages_or_errors() {
    no_secret_leaves_the_exporter("json").await;
}
