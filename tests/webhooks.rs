//! The webhook receiver of the real binary, over real HTTP: Meta's subscription handshake,
//! Meta's published example deliveries signed as Meta signs them, every way a delivery is
//! refused, stalled and oversized bodies, and a flood of bad signatures. Each is checked on
//! /metrics by exact exposition lines, at once after its answer (a delivery is counted
//! before its answer goes out), and the output passes `promtool check metrics`. The binary
//! runs at log level debug, and nothing of a body (customers' numbers, message ids and
//! texts) nor any secret may appear in its log or on /metrics.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::process::ExporterProcess;
use common::{family, promtool_check, value};
use whatsapp_exporter::secret::Secret;
use whatsapp_exporter::simulator::webhook_sender::signature;

const APP_SECRET: &str = "whk-app-secret-5e0c1f";
const FORGED_APP_SECRET: &str = "whk-forged-secret-77b2a0";
const VERIFY_TOKEN: &str = "whk-verify-token-a91d3c";
const WRONG_VERIFY_TOKEN: &str = "whk-guessed-token-0f3e58";
const BEARER_TOKEN: &str = "whk-relay-token-c4d8e2";
const WRONG_BEARER_TOKEN: &str = "whk-stale-relay-token-19b7";
/// The cloud_api target's token: it polls a closed port, and its errors must not show it.
const ACCESS_TOKEN: &str = "whk-graph-token-EAAG3d1f";
const SECRETS: [&str; 7] = [
    APP_SECRET,
    FORGED_APP_SECRET,
    VERIFY_TOKEN,
    WRONG_VERIFY_TOKEN,
    BEARER_TOKEN,
    WRONG_BEARER_TOKEN,
    ACCESS_TOKEN,
];

/// The WABA and business number of Meta's examples: the configured target "cloud"'s.
const WABA_ID: &str = "102290129340398";
const NUMBER_ID: &str = "106540352242922";
/// The WABA of Meta's business_capability_update example: no target's.
const OTHER_WABA_ID: &str = "524126980791429";

/// What Meta's example bodies and the tests' own hold: customers' numbers, names and
/// texts, message ids (`wamid.`, and the base64 of the recipient's number one embeds),
/// error and alert texts, template names. Never in a log line or on /metrics.
const BODY_DATA: [&str; 14] = [
    "16505551234",
    "Does it come in another color",
    "Fictitious Customer",
    "wamid",
    "HBgLMTY1MDM4Nzk0Mzk",
    "+15550001111",
    "my card number is",
    "whk-message-",
    // Texts and names of Meta's business examples.
    "ecosystem engagement",
    "Rate limit hit",
    "Limits cannot be increased",
    "order_confirmation",
    "abandoned_cart",
    "welcome_template",
];

const PATH: &str = "/webhooks/whatsapp";

fn corpus(name: &str) -> String {
    let path = format!(
        "{}/tests/corpus/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A `messages` change with one status of the example number, message `id`.
fn status_body(id: &str, status: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA_ID}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{NUMBER_ID}"}},"statuses":[{{"id":"wamid.whk-message-{id}","status":"{status}","timestamp":"1750030073","recipient_id":"16505551234"}}]}},"field":"messages"}}]}}]}}"#
    )
}

fn signed(body: &str, secret: &str) -> String {
    signature(body.as_bytes(), &Secret::new(secret))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The exporter binary with a `webhooks:` section on 127.0.0.1:0, its secrets in files,
/// and a cloud_api target that names Meta's example WABA and number (polling a closed
/// port, once an hour).
struct Receiver {
    process: ExporterProcess,
    /// host:port of the receiver.
    address: String,
    /// The delivery URL.
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// What a receiver answered.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Receiver {
    /// `section` is added to the `webhooks:` section (two-space indented keys).
    fn start(section: &str) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{text}\n")).unwrap();
            path.display().to_string()
        };
        let app_secret = write("app.secret", APP_SECRET);
        let verify_token = write("verify.token", VERIFY_TOKEN);
        let bearer_token = write("relay.token", BEARER_TOKEN);
        let closed_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let config = write(
            "config.yaml",
            &format!(
                "global:\n  interval: 1h\n  timeout: 5s\ntargets:\n\
                 \x20 - name: cloud\n    type: cloud_api\n    base_url: http://127.0.0.1:{closed_port}\n    access_token: {ACCESS_TOKEN}\n    waba_id: \"{WABA_ID}\"\n    phone_number_ids: [\"{NUMBER_ID}\"]\n\
                 webhooks:\n  listen_address: 127.0.0.1:0\n  app_secret_file: {app_secret}\n  verify_token_file: {verify_token}\n  bearer_token_file: {bearer_token}\n{section}"
            ),
        );
        let process = ExporterProcess::start(["--log.level=debug", "--config.file", &config]);
        let address = process.webhook_address();
        Receiver {
            url: format!("http://{address}{PATH}"),
            address,
            process,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the receiver answers");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("a body"),
        }
    }

    /// A handshake GET with `query`.
    async fn handshake(&self, query: &str) -> Answer {
        Self::answer(self.http.get(format!("{}?{query}", self.url))).await
    }

    /// A POST of `body` with `headers`.
    async fn post(&self, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::answer(request).await
    }

    /// Delivers `body` signed with the app secret, as Meta does: 200, empty.
    async fn deliver(&self, body: &str) {
        let answer = self
            .post(body, &[("X-Hub-Signature-256", &signed(body, APP_SECRET))])
            .await;
        assert_eq!((answer.status, answer.body.as_str()), (200, ""), "{body}");
    }

    async fn metrics(&self) -> String {
        let answer = Self::answer(
            self.http
                .get(format!("http://{}/metrics", self.process.address)),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// Stops the binary and checks its whole log and `pages` (the last /metrics, answers)
    /// for anything of a body and any secret; and that it never panicked.
    fn stop_and_check_nothing_leaked(mut self, pages: &[&str]) -> Vec<String> {
        self.process.stop();
        // The last line: once it is read, so is every line before it.
        self.process.wait_for_log("shut down");
        let log = self.process.log();
        let joined = log.join("\n");
        // The check cannot pass on nothing: the debug log was on and said something.
        assert!(
            joined.contains("webhook receiver listening") && joined.contains("level=debug"),
            "{joined}"
        );
        assert!(!joined.contains("panicked"), "{joined}");
        for needle in BODY_DATA.iter().chain(&SECRETS) {
            assert!(!joined.contains(needle), "{needle:?} in the log:\n{joined}");
            for page in pages {
                assert!(!page.contains(needle), "{needle:?} in:\n{page}");
            }
        }
        log
    }
}

/// The lines of `whatsapp_webhook_requests_total`: every result, `counts` as given, the
/// others 0.
fn requests(counts: &[(&str, u64)]) -> Vec<String> {
    [
        "accepted",
        "bad_signature",
        "unauthenticated",
        "malformed",
        "too_large",
        "timeout",
    ]
    .iter()
    .map(|result| {
        let count = counts
            .iter()
            .find(|(r, _)| r == result)
            .map_or(0, |(_, c)| *c);
        format!("whatsapp_webhook_requests_total{{result=\"{result}\"}} {count}")
    })
    .collect()
}

/// The family's samples are exactly `expected`, in order.
fn assert_family(metrics: &str, name: &str, expected: &[String]) {
    assert_eq!(
        family(metrics, name),
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "{name} in\n{metrics}"
    );
}

fn lines(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

/// The example number's status lines: `sent`, `delivered`, `read`, `failed` counts.
fn statuses(sent: u64, delivered: u64, read: u64, failed: u64) -> Vec<String> {
    [
        ("delivered", delivered),
        ("failed", failed),
        ("read", read),
        ("sent", sent),
    ]
    .iter()
    .map(|(status, count)| {
        format!("whatsapp_message_statuses_total{{target=\"cloud\",phone_number_id=\"{NUMBER_ID}\",status=\"{status}\"}} {count}")
    })
    .collect()
}

/// Sends `bytes` on a new connection and stalls; returns all the receiver sent until it
/// closed the connection. Fails when it keeps it open for 60 s.
async fn send_and_stall(address: &str, bytes: Vec<u8>) -> Vec<u8> {
    let address = address.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(&bytes).unwrap();
        let mut received = Vec::new();
        match stream.read_to_end(&mut received) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "the receiver kept a stalled connection open ({e}); it sent {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
        received
    })
    .await
    .unwrap()
}

fn status_line(received: &[u8]) -> String {
    String::from_utf8_lossy(received)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_echoes_the_challenge_only_for_the_verify_token() {
    let receiver = Receiver::start("");
    let accepted = receiver
        .handshake(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!(
        (accepted.status, accepted.body.as_str()),
        (200, "1158201444")
    );
    assert_eq!(
        accepted.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let refusals = [
        format!("hub.mode=subscribe&hub.verify_token={WRONG_VERIFY_TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=2".to_owned(),
        // The app secret is no verify token.
        format!("hub.mode=subscribe&hub.verify_token={APP_SECRET}&hub.challenge=3"),
        format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=4"),
        format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
    ];
    let mut pages = Vec::new();
    for query in &refusals {
        let refused = receiver.handshake(query).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (403, "Forbidden\n"),
            "{query}"
        );
        pages.push(refused.body);
    }
    // Another path of the receiver's port is no handshake, and shows nothing else.
    let elsewhere = Receiver::answer(receiver.http.get(format!(
        "http://{}/metrics?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=5",
        receiver.address
    )))
    .await;
    assert_eq!(
        (elsewhere.status, elsewhere.body.as_str()),
        (404, "Not Found\n")
    );

    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_verifications_total",
        &lines(&[
            "whatsapp_webhook_verifications_total{result=\"accepted\"} 1",
            "whatsapp_webhook_verifications_total{result=\"bad_token\"} 3",
            "whatsapp_webhook_verifications_total{result=\"bad_mode\"} 1",
            "whatsapp_webhook_verifications_total{result=\"bad_challenge\"} 1",
        ]),
    );
    // A handshake is no delivery.
    assert_family(&metrics, "whatsapp_webhook_requests_total", &requests(&[]));
    pages.push(metrics);
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    receiver.stop_and_check_nothing_leaked(&pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_example_deliveries_are_counted_once_with_their_labels() {
    let receiver = Receiver::start("");
    let before = receiver.metrics().await;
    // The configured number's statuses are there at 0 before any delivery; no other
    // receiver family has a series yet.
    assert_family(
        &before,
        "whatsapp_message_statuses_total",
        &statuses(0, 0, 0, 0),
    );
    for name in [
        "whatsapp_webhook_events_total",
        "whatsapp_webhook_last_event_timestamp_seconds",
        "whatsapp_message_errors_total",
        "whatsapp_message_billable_total",
        "whatsapp_business_events_total",
    ] {
        assert_family(&before, name, &[]);
    }

    let started = unix_now().floor();
    for example in [
        "messages-status-sent-marketing",
        "messages-status-failed-131049",
        "messages-errors-130429",
        "messages-text-incoming",
        // The same message's `sent` again, as Meta's v24 example writes it (same wamid):
        // a redelivery.
        "messages-status-sent-v24-no-pricing",
        "account-alerts-capabilities-deferred",
        "account-update-account-violation",
        "account-update-disabled-update",
        "business-capability-update",
        "phone-number-quality-update-throughput-upgrade",
        "template-category-update-completed",
        "template-category-update-impending",
        "template-quality-update-green-yellow",
        "template-status-approved",
        "template-status-rejected-invalid-format",
    ] {
        receiver.deliver(&corpus(example)).await;
    }
    let metrics = receiver.metrics().await;
    let target = format!("target=\"cloud\",phone_number_id=\"{NUMBER_ID}\"");
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(1, 0, 0, 1),
    );
    assert_family(
        &metrics,
        "whatsapp_message_errors_total",
        &[
            // Of the value's `errors` (no message), then of the failed status.
            format!("whatsapp_message_errors_total{{{target},error_code=\"130429\"}} 1"),
            format!("whatsapp_message_errors_total{{{target},error_code=\"131049\"}} 1"),
        ],
    );
    assert_family(
        &metrics,
        "whatsapp_message_billable_total",
        &[format!(
            "whatsapp_message_billable_total{{{target},category=\"marketing\"}} 1"
        )],
    );
    let waba = format!("target=\"cloud\",waba_id=\"{WABA_ID}\"");
    let other = format!("target=\"\",waba_id=\"{OTHER_WABA_ID}\"");
    assert_family(
        &metrics,
        "whatsapp_webhook_events_total",
        &[
            format!("whatsapp_webhook_events_total{{{other},field=\"business_capability_update\"}} 1"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"account_alerts\"}} 1"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"account_update\"}} 2"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"message_template_status_update\"}} 3"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"messages\"}} 5"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"phone_number_quality_update\"}} 1"),
            format!("whatsapp_webhook_events_total{{{waba},field=\"template_category_update\"}} 2"),
        ],
    );
    assert_family(
        &metrics,
        "whatsapp_business_events_total",
        &[
            // business_capability_update has no event.
            format!("whatsapp_business_events_total{{{other},field=\"business_capability_update\",event=\"\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"account_alerts\",event=\"INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"account_update\",event=\"ACCOUNT_VIOLATION\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"account_update\",event=\"DISABLED_UPDATE\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"message_template_status_update\",event=\"APPROVED\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"message_template_status_update\",event=\"REJECTED\"}} 1"),
            // Meta's quality example comes under the status field; its event is the new score.
            format!("whatsapp_business_events_total{{{waba},field=\"message_template_status_update\",event=\"YELLOW\"}} 1"),
            format!("whatsapp_business_events_total{{{waba},field=\"phone_number_quality_update\",event=\"THROUGHPUT_UPGRADE\"}} 1"),
            // Both the impending and the completed change: the category it ends in.
            format!("whatsapp_business_events_total{{{waba},field=\"template_category_update\",event=\"MARKETING\"}} 2"),
        ],
    );
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("accepted", 15)]),
    );
    for (name, count) in [
        ("whatsapp_webhook_duplicate_statuses_total", 1),
        ("whatsapp_webhook_items_skipped_total", 0),
        ("whatsapp_webhook_series_dropped_total", 0),
    ] {
        assert_family(&metrics, name, &[format!("{name} {count}")]);
    }
    // When the receiver got them, not the bodies' `time`.
    let stamps = family(&metrics, "whatsapp_webhook_last_event_timestamp_seconds");
    assert_eq!(stamps.len(), 2, "{metrics}");
    let finished = unix_now().ceil();
    for series in [&other, &waba] {
        let name = format!("whatsapp_webhook_last_event_timestamp_seconds{{{series}}}");
        let at = value(&metrics, &name).unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        assert!((started..=finished).contains(&at), "{name} {at}");
    }

    // Meta redelivers: the same failed status three more times counts once, as duplicates;
    // each is still an event of its WABA.
    let failed = corpus("messages-status-failed-131049");
    for _ in 0..3 {
        receiver.deliver(&failed).await;
    }
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(1, 0, 0, 1),
    );
    assert_family(
        &metrics,
        "whatsapp_message_errors_total",
        &[
            format!("whatsapp_message_errors_total{{{target},error_code=\"130429\"}} 1"),
            format!("whatsapp_message_errors_total{{{target},error_code=\"131049\"}} 1"),
        ],
    );
    assert_family(
        &metrics,
        "whatsapp_webhook_duplicate_statuses_total",
        &lines(&["whatsapp_webhook_duplicate_statuses_total 4"]),
    );
    assert!(
        common::has_line(
            &metrics,
            &format!("whatsapp_webhook_events_total{{{waba},field=\"messages\"}} 8")
        ),
        "{metrics}"
    );
    // The next statuses of the same message are new: delivered, then read.
    let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";
    let sent = corpus("messages-status-sent-v24-no-pricing");
    assert!(sent.contains(wamid));
    receiver
        .deliver(&sent.replace("\"sent\"", "\"delivered\""))
        .await;
    receiver
        .deliver(&sent.replace("\"sent\"", "\"read\""))
        .await;
    receiver
        .deliver(&sent.replace("\"sent\"", "\"read\""))
        .await;
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(1, 1, 1, 1),
    );
    assert_family(
        &metrics,
        "whatsapp_webhook_duplicate_statuses_total",
        &lines(&["whatsapp_webhook_duplicate_statuses_total 5"]),
    );
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("accepted", 21)]),
    );
    promtool_check(&metrics);
    receiver.stop_and_check_nothing_leaked(&[&metrics]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_deliveries_get_their_status_and_are_counted() {
    let receiver = Receiver::start("  body_size_limit: 4KiB\n");
    let body = status_body("refused", "delivered");
    let mut pages = Vec::new();
    let mut expect = |answer: Answer, status: u16, text: &str, what: &str| {
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (status, text),
            "{what}"
        );
        pages.push(format!("{:?}\n{}", answer.headers, answer.body));
        answer
    };

    // No credential at all: 401, and how to authenticate.
    let answer = expect(
        receiver.post(&body, &[]).await,
        401,
        "Unauthorized\n",
        "unsigned",
    );
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    // A signature by another app's secret, one over another body, one garbled: 403.
    let forged = signed(&body, FORGED_APP_SECRET);
    let other_body = signed(&status_body("other", "delivered"), APP_SECRET);
    let garbled = format!("{}zz", &signed(&body, APP_SECRET)[..69]);
    for (what, header) in [
        ("forged", forged.as_str()),
        ("another body's", other_body.as_str()),
        ("garbled", garbled.as_str()),
        (
            "not sha256",
            "sha1=0123456789abcdef0123456789abcdef01234567",
        ),
    ] {
        expect(
            receiver
                .post(&body, &[("X-Hub-Signature-256", header)])
                .await,
            403,
            "Forbidden\n",
            what,
        );
    }
    // A wrong bearer token, or not a bearer one: 403, as a bad signature.
    let wrong_bearer = format!("Bearer {WRONG_BEARER_TOKEN}");
    let basic = format!("Basic {BEARER_TOKEN}");
    for (what, header) in [("wrong bearer", wrong_bearer), ("basic", basic)] {
        let answer = expect(
            receiver
                .post(&body, &[("Authorization", header.as_str())])
                .await,
            403,
            "Forbidden\n",
            what,
        );
        assert_eq!(answer.header("www-authenticate"), None, "{what}");
    }
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("bad_signature", 6), ("unauthenticated", 1)]),
    );

    // Over body_size_limit (4 KiB), signed: 413, by its Content-Length.
    let big = format!(
        r#"{{"object":"whatsapp_business_account","entry":[],"padding":"{}"}}"#,
        "x".repeat(5000)
    );
    expect(
        receiver
            .post(&big, &[("X-Hub-Signature-256", &signed(&big, APP_SECRET))])
            .await,
        413,
        "Payload Too Large\n",
        "too large",
    );
    // And without one (chunked): 413 once the limit is read.
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {sig}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        address = receiver.address,
        sig = signed(&big, APP_SECRET),
    );
    let mut chunked = head.into_bytes();
    chunked.extend_from_slice(format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len()).as_bytes());
    let received = send_and_stall(&receiver.address, chunked).await;
    assert_eq!(
        status_line(&received),
        "HTTP/1.1 413 Payload Too Large",
        "{}",
        String::from_utf8_lossy(&received)
    );
    // Signed, but not JSON (cut short after a customer's number), or JSON but not Meta's
    // format: 400.
    let cut = &status_body("cut", "read")[..260];
    assert!(
        cut.contains("16505551234") || cut.contains("whk-message-"),
        "{cut}"
    );
    for (what, text) in [
        ("cut short", cut),
        ("not an object", "[\"+15550001111\"]"),
        ("entry not a list", "{\"entry\":\"my card number is 4111\"}"),
    ] {
        expect(
            receiver
                .post(text, &[("X-Hub-Signature-256", &signed(text, APP_SECRET))])
                .await,
            400,
            "Bad Request\n",
            what,
        );
    }
    // Neither the handshake's nor any other method.
    let put = Receiver::answer(
        receiver
            .http
            .put(&receiver.url)
            .header("X-Hub-Signature-256", signed(&body, APP_SECRET))
            .body(body.clone()),
    )
    .await;
    assert_eq!((put.status, put.header("allow")), (405, Some("GET, POST")));

    // The relay's bearer token is accepted, and so is Meta's signature; nothing refused
    // was counted anywhere else.
    let bearer = format!("Bearer {BEARER_TOKEN}");
    expect(
        receiver
            .post(&body, &[("Authorization", bearer.as_str())])
            .await,
        200,
        "",
        "relay",
    );
    receiver.deliver(&status_body("signed", "read")).await;
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[
            ("accepted", 2),
            ("bad_signature", 6),
            ("unauthenticated", 1),
            ("malformed", 3),
            ("too_large", 2),
        ]),
    );
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(0, 1, 1, 0),
    );
    assert_family(
        &metrics,
        "whatsapp_webhook_events_total",
        &[format!(
            "whatsapp_webhook_events_total{{target=\"cloud\",waba_id=\"{WABA_ID}\",field=\"messages\"}} 2"
        )],
    );
    for name in [
        "whatsapp_webhook_duplicate_statuses_total",
        "whatsapp_webhook_items_skipped_total",
        "whatsapp_webhook_series_dropped_total",
    ] {
        assert_family(&metrics, name, &[format!("{name} 0")]);
    }
    promtool_check(&metrics);
    pages.push(metrics);
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    let log = receiver.stop_and_check_nothing_leaked(&pages);
    // Every refusal was logged (at debug, without the request's values).
    let refused = log
        .iter()
        .filter(|l| l.contains("webhook delivery refused"))
        .count();
    assert_eq!(refused, 6, "{}", log.join("\n"));
    let malformed = log
        .iter()
        .filter(|l| l.contains("webhook delivery is not Meta"))
        .count();
    assert_eq!(malformed, 3, "{}", log.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out_and_the_daemon_keeps_serving() {
    let receiver = Receiver::start("  header_timeout: 2s\n  body_timeout: 2s\n");
    let body = status_body("slow", "sent");
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {sig}\r\nContent-Length: {length}\r\n\r\n",
        address = receiver.address,
        sig = signed(&body, APP_SECRET),
        length = body.len(),
    );
    // The headers and half the body, then nothing: 408 after body_timeout, and the
    // connection closed.
    let mut bytes = head.clone().into_bytes();
    bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
    let received = send_and_stall(&receiver.address, bytes).await;
    assert_eq!(
        status_line(&received),
        "HTTP/1.1 408 Request Timeout",
        "{}",
        String::from_utf8_lossy(&received)
    );
    // Half the headers, then nothing: closed after header_timeout, without an answer or a
    // count.
    let received = send_and_stall(&receiver.address, head.as_bytes()[..40].to_vec()).await;
    assert_eq!(String::from_utf8_lossy(&received), "");

    // /metrics answers, and so does the receiver.
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("timeout", 1)]),
    );
    receiver.deliver(&body).await;
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("accepted", 1), ("timeout", 1)]),
    );
    // The stalled body's status was never counted; the full one once.
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(1, 0, 0, 0),
    );
    receiver.stop_and_check_nothing_leaked(&[&metrics]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_is_counted_exactly() {
    const TASKS: usize = 8;
    const EACH: usize = 250;
    let receiver = Receiver::start("");
    let mut flood = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (http, url) = (receiver.http.clone(), receiver.url.clone());
        flood.spawn(async move {
            let mut refused = 0;
            for i in 0..EACH {
                // Every body distinct, as a forger trying message ids would send.
                let body = status_body(&format!("flood-{task}-{i}"), "failed");
                let response = http
                    .post(&url)
                    .header("X-Hub-Signature-256", signed(&body, FORGED_APP_SECRET))
                    .body(body)
                    .send()
                    .await
                    .expect("the receiver answers");
                assert_eq!(response.status(), 403);
                refused += 1;
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(done) = flood.join_next().await {
        refused += done.expect("a flooding task");
    }
    assert_eq!(refused, TASKS * EACH);
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("bad_signature", 2000)]),
    );
    // Nothing of them counted elsewhere: no event, the number's statuses at 0.
    assert_family(&metrics, "whatsapp_webhook_events_total", &[]);
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(0, 0, 0, 0),
    );
    // And a real delivery goes through.
    receiver.deliver(&status_body("after", "failed")).await;
    let metrics = receiver.metrics().await;
    assert_family(
        &metrics,
        "whatsapp_webhook_requests_total",
        &requests(&[("accepted", 1), ("bad_signature", 2000)]),
    );
    assert_family(
        &metrics,
        "whatsapp_message_statuses_total",
        &statuses(0, 0, 0, 1),
    );
    let log = receiver.stop_and_check_nothing_leaked(&[&metrics]);
    let refusals = log
        .iter()
        .filter(|l| l.contains("webhook delivery refused"))
        .count();
    assert_eq!(refusals, 2000);
}
