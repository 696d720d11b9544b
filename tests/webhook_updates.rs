//! Webhook business events change the polled series of their target at once: against the
//! simulator, a `business_id` target polls once (then not for an hour), and signed
//! deliveries to the real receiver pause a template, flag a number and upgrade a number of
//! the discovered client WABA, each visible on /metrics while the target's upstream request
//! counts show no poll in between. The discovered WABAs' webhook series carry the target's
//! name.

mod common;

use std::time::Duration;

use common::{has_line, value, Running};
use whatsapp_exporter::poller::phase;
use whatsapp_exporter::secret::Secret;
use whatsapp_exporter::simulator::meta::{
    BUSINESS_ID, CLIENT_DISPLAY_PHONE_NUMBERS, CLIENT_PHONE_NUMBER_IDS, CLIENT_WABA_ID,
    DISPLAY_PHONE_NUMBERS, PHONE_NUMBER_IDS, TEMPLATE_IDS, TEMPLATE_LANGUAGES, TEMPLATE_NAMES,
    WABA_ID,
};
use whatsapp_exporter::simulator::webhook_sender::signature;
use whatsapp_exporter::simulator::SimulatorOptions;
use whatsapp_exporter::webhooks::server::Running as Receiver;

const INTERVAL: Duration = Duration::from_secs(3600);
const APP_SECRET: &str = "test-app-secret";

/// A target name whose first poll comes within two seconds of the start; the next one an
/// hour later, long after the test.
fn polled_soon() -> String {
    (0..1_000_000)
        .map(|i| format!("biz-{i}"))
        .find(|name| phase(name, INTERVAL) < Duration::from_secs(2))
        .expect("some name has such a phase")
}

/// The simulated business's target, and a receiver verifying with [`APP_SECRET`], with its
/// URL.
async fn start(name: &str) -> (Running, Receiver, String) {
    let run = common::start(SimulatorOptions::default(), |s| {
        format!(
            "global:\n  interval: 1h\n  timeout: 10s\ntargets:\n\
             \x20 - name: {name}\n    type: cloud_api\n    base_url: {graph}\n    access_token: {token}\n    business_id: \"{BUSINESS_ID}\"\n    discovery_interval: 1h\n\
             webhooks:\n  listen_address: \"127.0.0.1:0\"\n  app_secret: {APP_SECRET}\n",
            graph = s.cloud_api_base_url(),
            token = s.simulator().options().cloud_api_token,
        )
    })
    .await;
    let receiver = whatsapp_exporter::cli::start_receiver(&run.exporter)
        .await
        .expect("the receiver starts")
        .expect("the config has a webhooks section");
    let url = format!("http://{}/webhooks/whatsapp", receiver.address);
    (run, receiver, url)
}

/// POSTs `body` signed as Meta does; the receiver answers 200.
async fn deliver(url: &str, body: &str) {
    let signed = signature(body.as_bytes(), &Secret::new(APP_SECRET));
    let response = reqwest::Client::new()
        .post(url)
        .header("X-Hub-Signature-256", signed)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
}

/// A body of one change, shaped as Meta's examples (tests/corpus/webhooks/).
fn body(waba: &str, field: &str, value: &str) -> String {
    format!(
        r#"{{"entry":[{{"id":"{waba}","time":1751247548,"changes":[{{"value":{value},"field":"{field}"}}]}}],"object":"whatsapp_business_account"}}"#
    )
}

fn template_status(template: usize, event: &str) -> String {
    body(
        WABA_ID,
        "message_template_status_update",
        &format!(
            r#"{{"event":"{event}","message_template_id":{id},"message_template_name":"{name}","message_template_language":"{language}","reason":"NONE","message_template_category":"MARKETING"}}"#,
            id = TEMPLATE_IDS[template],
            name = TEMPLATE_NAMES[template],
            // As Meta's examples write it; the Graph API lists `pt_BR`.
            language = TEMPLATE_LANGUAGES[template].replace('_', "-"),
        ),
    )
}

fn phone_quality(waba: &str, display: &str, event: &str, limit: &str) -> String {
    let digits: String = display.chars().filter(char::is_ascii_digit).collect();
    body(
        waba,
        "phone_number_quality_update",
        &format!(
            r#"{{"display_phone_number":"{digits}","event":"{event}","current_limit":"{limit}"}}"#
        ),
    )
}

/// The state set's lines of one series, `current` at 1.
fn state_lines(
    family: &str,
    labels: &str,
    label: &str,
    states: &[&str],
    current: &str,
) -> Vec<String> {
    states
        .iter()
        .map(|s| {
            format!(
                "{family}{{{labels},{label}=\"{s}\"}} {}",
                u8::from(*s == current)
            )
        })
        .collect()
}

fn requests(metrics: &str, target: &str, endpoint: &str) -> f64 {
    let series =
        format!("whatsapp_upstream_requests_total{{target=\"{target}\",endpoint=\"{endpoint}\"}}");
    value(metrics, &series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

fn assert_lines(metrics: &str, lines: &[String]) {
    for line in lines {
        assert!(has_line(metrics, line), "missing {line}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_events_change_the_polled_series_before_the_next_poll() {
    let name = polled_soon();
    let (run, receiver, url) = start(&name).await;
    let target = format!("target=\"{name}\"");
    let template = 2; // welcome_offer, pt_BR
    let template_labels = format!(
        "{target},waba_id=\"{WABA_ID}\",template_id=\"{}\",template_name=\"{}\",language=\"{}\"",
        TEMPLATE_IDS[template], TEMPLATE_NAMES[template], TEMPLATE_LANGUAGES[template]
    );
    let statuses = whatsapp_exporter::meta::TEMPLATE_STATUSES;
    let approved = state_lines(
        "whatsapp_template_status",
        &template_labels,
        "status",
        statuses,
        "APPROVED",
    );
    let flagged_number = format!(
        "{target},waba_id=\"{WABA_ID}\",phone_number_id=\"{}\"",
        PHONE_NUMBER_IDS[1]
    );
    let ratings = whatsapp_exporter::meta::QUALITY_RATINGS;
    let green = state_lines(
        "whatsapp_phone_quality_rating",
        &flagged_number,
        "rating",
        ratings,
        "GREEN",
    );
    let client_number = format!(
        "{target},waba_id=\"{CLIENT_WABA_ID}\",phone_number_id=\"{}\"",
        CLIENT_PHONE_NUMBER_IDS[0]
    );
    let tiers = whatsapp_exporter::meta::MESSAGING_TIERS;
    let tier_10k = state_lines(
        "whatsapp_phone_messaging_limit_tier",
        &client_number,
        "tier",
        tiers,
        "TIER_10K",
    );
    let mut first: Vec<String> = approved.clone();
    first.extend(green.clone());
    first.extend(tier_10k.clone());
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let polled = run.wait_for_lines(&first).await;
    let polls =
        |m: &str| ["token", "discovery", "health"].map(|endpoint| requests(m, &name, endpoint));
    let after_first_poll = polls(&polled);

    // A template paused: its status at once.
    deliver(&url, &template_status(template, "PAUSED")).await;
    let paused = state_lines(
        "whatsapp_template_status",
        &template_labels,
        "status",
        statuses,
        "PAUSED",
    );
    let metrics = run
        .wait_for_lines(&paused.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_lines(
        &metrics,
        &[format!(
            "whatsapp_business_events_total{{{target},waba_id=\"{WABA_ID}\",field=\"message_template_status_update\",event=\"PAUSED\"}} 1"
        )],
    );
    // The other templates are as polled.
    let other = format!(
        "{target},waba_id=\"{WABA_ID}\",template_id=\"{}\",template_name=\"{}\",language=\"{}\"",
        TEMPLATE_IDS[0], TEMPLATE_NAMES[0], TEMPLATE_LANGUAGES[0]
    );
    assert_lines(
        &metrics,
        &state_lines(
            "whatsapp_template_status",
            &other,
            "status",
            statuses,
            "APPROVED",
        ),
    );

    // A number flagged: its quality RED at once.
    deliver(
        &url,
        &phone_quality(WABA_ID, DISPLAY_PHONE_NUMBERS[1], "FLAGGED", "TIER_10K"),
    )
    .await;
    let red = state_lines(
        "whatsapp_phone_quality_rating",
        &flagged_number,
        "rating",
        ratings,
        "RED",
    );
    let metrics = run
        .wait_for_lines(&red.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let unflagged = format!(
        "{target},waba_id=\"{WABA_ID}\",phone_number_id=\"{}\"",
        PHONE_NUMBER_IDS[0]
    );
    assert_lines(
        &metrics,
        &state_lines(
            "whatsapp_phone_quality_rating",
            &unflagged,
            "rating",
            ratings,
            "GREEN",
        ),
    );

    // A number of the client WABA, which only discovery found, upgraded: its tier.
    deliver(
        &url,
        &phone_quality(
            CLIENT_WABA_ID,
            CLIENT_DISPLAY_PHONE_NUMBERS[0],
            "UPGRADE",
            "TIER_100K",
        ),
    )
    .await;
    let tier_100k = state_lines(
        "whatsapp_phone_messaging_limit_tier",
        &client_number,
        "tier",
        tiers,
        "TIER_100K",
    );
    let metrics = run
        .wait_for_lines(&tier_100k.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_lines(
        &metrics,
        &[format!(
            "whatsapp_phone_messaging_limit{{{client_number}}} 100000"
        )],
    );

    // A template the business does not have: counted, nothing else changes.
    let unknown = template_status(template, "DISABLED").replace(TEMPLATE_IDS[template], "1");
    deliver(&url, &unknown).await;
    let metrics = run
        .wait_for_lines(&[&format!(
            "whatsapp_business_events_total{{{target},waba_id=\"{WABA_ID}\",field=\"message_template_status_update\",event=\"DISABLED\"}} 1"
        )])
        .await;
    assert_lines(&metrics, &paused);
    assert_lines(&metrics, &red);
    assert_lines(&metrics, &tier_100k);

    // The discovered WABAs' webhook series carry the target's name, none goes without.
    for (waba, field, count) in [
        (WABA_ID, "message_template_status_update", 2),
        (WABA_ID, "phone_number_quality_update", 1),
        (CLIENT_WABA_ID, "phone_number_quality_update", 1),
    ] {
        assert_lines(
            &metrics,
            &[format!(
                "whatsapp_webhook_events_total{{{target},waba_id=\"{waba}\",field=\"{field}\"}} {count}"
            )],
        );
    }
    assert_lines(
        &metrics,
        &[
            format!("whatsapp_business_events_total{{{target},waba_id=\"{WABA_ID}\",field=\"phone_number_quality_update\",event=\"FLAGGED\"}} 1"),
            format!("whatsapp_business_events_total{{{target},waba_id=\"{CLIENT_WABA_ID}\",field=\"phone_number_quality_update\",event=\"UPGRADE\"}} 1"),
        ],
    );
    assert!(
        !metrics.contains("target=\"\""),
        "a series without its target:\n{metrics}"
    );

    // No poll came in between: every change above was the webhooks'.
    assert_eq!(polls(&metrics), after_first_poll);
    receiver.stop().await;
    run.stop().await;
}
