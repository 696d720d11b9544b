//! Cloud API, 360dialog and Kapso targets against the simulator: exact lines for each
//! scenario, discovery over several pages, a template that disappears, usage headers
//! slowing a target down, and Graph API errors.

mod common;

use std::time::Duration;

use common::{has_line, value, Running};
use whatsapp_exporter::simulator::meta::{self, PHONE_NUMBER_IDS, TEMPLATE_IDS, WABA_ID};
use whatsapp_exporter::simulator::{
    CloudApiEndpoint, CloudApiFault, Fault, SimulatorHandle, SimulatorOptions,
};

const LIMITED_INFO: &str = "Your display name has not been approved yet. Your message limit will increase after the display name is approved.";

fn providers(s: &SimulatorHandle) -> String {
    let o = s.simulator().options();
    format!(
        "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
         - name: d360\n  type: dialog360\n  base_url: {d360}\n  api_key: {key}\n\
         - name: kapso\n  type: kapso\n  base_url: {kapso}\n  api_key: {kapso_key}\n  config_id: {config}\n",
        d360 = s.dialog360_base_url(),
        key = o.dialog360_api_keys[0],
        kapso = s.kapso_base_url(),
        kapso_key = o.kapso_api_key,
        config = o.kapso_config_ids[0],
    )
}

fn cloud_target(s: &SimulatorHandle, extra: &str) -> String {
    format!(
        "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
         - name: cloud\n  type: cloud_api\n  base_url: {graph}\n  access_token: {token}\n  waba_id: \"{WABA_ID}\"\n{extra}",
        graph = s.cloud_api_base_url(),
        token = s.simulator().options().cloud_api_token,
    )
}

async fn cloud(extra: String) -> Running {
    common::start(SimulatorOptions::default(), move |s| {
        cloud_target(s, &extra)
    })
    .await
}

fn state_line(family: &str, labels: &str, state_label: &str, state: &str, value: u8) -> String {
    format!("{family}{{{labels},{state_label}=\"{state}\"}} {value}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog360_available_limited_blocked_available() {
    let run = common::start(SimulatorOptions::default(), providers).await;
    let number = PHONE_NUMBER_IDS[0];
    let phone = format!("target=\"d360\",entity_type=\"PHONE_NUMBER\",entity_id=\"{number}\"");
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_up{target=\"d360\"} 1",
            "whatsapp_messaging_health_status{target=\"d360\",status=\"AVAILABLE\"} 1",
        ])
        .await;
    for line in [
        "whatsapp_target_info{target=\"d360\",type=\"dialog360\"} 1".to_owned(),
        "whatsapp_poll_success{target=\"d360\",endpoint=\"health_status\"} 1".to_owned(),
        "whatsapp_messaging_health_status{target=\"d360\",status=\"LIMITED\"} 0".to_owned(),
        state_line("whatsapp_can_send_message", &phone, "status", "AVAILABLE", 1),
        state_line("whatsapp_can_send_message", &phone, "status", "BLOCKED", 0),
        state_line("whatsapp_can_receive_call_sip", &phone, "status", "AVAILABLE", 1),
        format!("whatsapp_can_send_message{{target=\"d360\",entity_type=\"WABA\",entity_id=\"{WABA_ID}\",status=\"AVAILABLE\"}} 1"),
        format!("whatsapp_can_send_message{{target=\"d360\",entity_type=\"BUSINESS\",entity_id=\"{}\",status=\"AVAILABLE\"}} 1", meta::BUSINESS_ID),
        format!("whatsapp_can_send_message{{target=\"d360\",entity_type=\"APP\",entity_id=\"{}\",status=\"AVAILABLE\"}} 1", meta::APP_ID),
    ] {
        assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
    }
    assert!(!metrics.contains("whatsapp_entity_error_info{target=\"d360\""));

    let sim = run.simulator.simulator().clone();
    sim.set_phone_health(number, "LIMITED", None);
    run.wait_for_lines(&[
        "whatsapp_messaging_health_status{target=\"d360\",status=\"LIMITED\"} 1",
        &state_line("whatsapp_can_send_message", &phone, "status", "LIMITED", 1),
        &format!("whatsapp_entity_limitation_info{{{phone},info=\"{LIMITED_INFO}\"}} 1"),
    ])
    .await;

    sim.set_phone_health(
        number,
        "BLOCKED",
        Some("The \"display name\" was rejected.\nAppeal it."),
    );
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_messaging_health_status{target=\"d360\",status=\"BLOCKED\"} 1",
            &state_line("whatsapp_can_send_message", &phone, "status", "BLOCKED", 1),
        ])
        .await;
    // The error's description comes through escaped, with its code and solution.
    let errors: Vec<&str> = common::family(&metrics, "whatsapp_entity_error_info")
        .into_iter()
        .filter(|l| l.contains("target=\"d360\""))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "whatsapp_entity_error_info{{{phone},error_code=\"131031\",error_description=\"The \\\"display name\\\" was rejected.\\nAppeal it.\",possible_solution=\""
        )),
        "{}",
        errors[0]
    );
    // LIMITED's info went at once with the LIMITED state.
    assert!(!metrics.contains("whatsapp_entity_limitation_info{target=\"d360\""));

    sim.set_phone_health(number, "AVAILABLE", None);
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_messaging_health_status{target=\"d360\",status=\"AVAILABLE\"} 1",
        ])
        .await;
    assert!(!metrics.contains("whatsapp_entity_error_info{target=\"d360\""));
    let output = run.metrics().await;
    common::promtool_check(&output);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog360_key_and_rate_limit_errors() {
    let options = SimulatorOptions {
        dialog360_min_interval: Some(Duration::from_secs(2)),
        ..SimulatorOptions::default()
    };
    let run = common::start(options, |s| {
        format!(
            "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
             - name: limited\n  type: dialog360\n  base_url: {url}\n  api_key: {key}\n\
             - name: wrong\n  type: dialog360\n  base_url: {url}\n  api_key: not-a-channel-key\n",
            url = s.dialog360_base_url(),
            key = s.simulator().options().dialog360_api_keys[1],
        )
    })
    .await;
    let metrics = run
        .wait_until(
            |m| {
                value(m, "whatsapp_poll_errors_total{target=\"wrong\",endpoint=\"health_status\",reason=\"unauthorized\"}").is_some_and(|v| v >= 1.0)
                    && value(m, "whatsapp_poll_errors_total{target=\"limited\",endpoint=\"health_status\",reason=\"rate_limited\"}").is_some_and(|v| v >= 1.0)
            },
            "401 and 400-rate-limit counted",
        )
        .await;
    // The first poll got data; a 360dialog rate limit keeps it and holds polls back for
    // the window the message names (2 s), not the 300 ms interval.
    assert!(has_line(&metrics, "whatsapp_up{target=\"limited\"} 0"));
    assert!(metrics.contains("whatsapp_can_send_message{target=\"limited\""));
    let before = run.simulator.simulator().dialog360_requests();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = run.simulator.simulator().dialog360_requests() - before;
    // "wrong" polls every 300 ms (about 5), "limited" at most once.
    assert!(during <= 7, "{during} requests in 1.5 s");
    assert!(!run.metrics().await.contains("not-a-channel-key"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kapso_states_checks_webhook_and_error_field() {
    let run = common::start(SimulatorOptions::default(), providers).await;
    let sim = run.simulator.simulator().clone();
    let config = sim.options().kapso_config_ids[0].clone();
    let number = PHONE_NUMBER_IDS[0];
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_up{target=\"kapso\"} 1",
            "whatsapp_config_health_status{target=\"kapso\",status=\"healthy\"} 1",
        ])
        .await;
    for line in [
        "whatsapp_config_health_status{target=\"kapso\",status=\"degraded\"} 0".to_owned(),
        "whatsapp_health_check_passed{target=\"kapso\",check=\"messaging_health\"} 1".to_owned(),
        "whatsapp_health_check_passed{target=\"kapso\",check=\"phone_number_access\"} 1".to_owned(),
        "whatsapp_health_check_passed{target=\"kapso\",check=\"webhook_subscription\"} 1".to_owned(),
        "whatsapp_health_check_passed{target=\"kapso\",check=\"webhook_verified\"} 1".to_owned(),
        "whatsapp_webhook_subscribed{target=\"kapso\"} 1".to_owned(),
        "whatsapp_webhook_verified_timestamp_seconds{target=\"kapso\"} 1705314600".to_owned(),
        format!("whatsapp_phone_quality_rating{{target=\"kapso\",phone_number_id=\"{number}\",rating=\"GREEN\"}} 1"),
        format!("whatsapp_phone_number_info{{target=\"kapso\",phone_number_id=\"{number}\",display_phone_number=\"+1 555-012-3401\",verified_name=\"Acme Support\"}} 1"),
        "whatsapp_messaging_health_status{target=\"kapso\",status=\"AVAILABLE\"} 1".to_owned(),
        format!("whatsapp_can_send_message{{target=\"kapso\",entity_type=\"PHONE_NUMBER\",entity_id=\"{number}\",status=\"AVAILABLE\"}} 1"),
    ] {
        assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
    }
    for status in ["degraded", "unhealthy"] {
        sim.set_kapso_status(&config, status, None);
        run.wait_for_lines(&[&format!(
            "whatsapp_config_health_status{{target=\"kapso\",status=\"{status}\"}} 1"
        )])
        .await;
    }
    sim.set_kapso_status(&config, "healthy", None);
    sim.set_webhook_subscribed(&config, false);
    run.wait_for_lines(&[
        "whatsapp_webhook_subscribed{target=\"kapso\"} 0",
        "whatsapp_health_check_passed{target=\"kapso\",check=\"webhook_subscription\"} 0",
    ])
    .await;
    // The error state: the answer is good, the upstream's error is logged and counted, and
    // the checks it no longer reports vanish.
    sim.set_kapso_status(
        &config,
        "error",
        Some("Meta API timeout while checking health"),
    );
    let metrics = run
        .wait_until(
            |m| {
                value(
                    m,
                    "whatsapp_upstream_errors_total{target=\"kapso\",endpoint=\"health\"}",
                )
                .is_some_and(|v| v >= 2.0)
            },
            "upstream errors counted",
        )
        .await;
    assert!(has_line(
        &metrics,
        "whatsapp_config_health_status{target=\"kapso\",status=\"error\"} 1"
    ));
    assert!(has_line(&metrics, "whatsapp_up{target=\"kapso\"} 1"));
    assert!(!metrics.contains("whatsapp_health_check_passed{target=\"kapso\""));
    let page = run.get("/").await.text().await.unwrap();
    assert!(
        page.contains("Meta API timeout while checking health"),
        "{page}"
    );
    // A wrong key is a failed poll.
    sim.set_kapso_fault(None, Some(Fault::Status(401)));
    run.wait_until(
        |m| value(m, "whatsapp_poll_errors_total{target=\"kapso\",endpoint=\"health\",reason=\"unauthorized\"}").is_some_and(|v| v >= 1.0),
        "401 counted",
    )
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_api_discovery_over_several_pages_and_a_vanishing_template() {
    let run = cloud("  discover: true\n  discovery_interval: 1s\n".into()).await;
    let sim = run.simulator.simulator().clone();
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_up{target=\"cloud\"} 1",
            "whatsapp_poll_success{target=\"cloud\",endpoint=\"health\"} 1",
            "whatsapp_template_status{target=\"cloud\",template_id=\"1187362539104427\",template_name=\"order_confirmation\",language=\"en_US\",status=\"APPROVED\"} 1",
        ])
        .await;
    // Pages hold two items: the WABA's answer carried the first page of its 3 numbers and
    // 5 templates, their edges the other 1 and 2 pages.
    assert!(sim.cloud_api_requests(CloudApiEndpoint::MessageTemplates) >= 2);
    assert!(sim.cloud_api_requests(CloudApiEndpoint::PhoneNumbers) >= 1);
    for (i, id) in TEMPLATE_IDS.iter().enumerate() {
        let line = format!(
            "whatsapp_template_status{{target=\"cloud\",template_id=\"{id}\",template_name=\"{}\",language=\"{}\",status=\"{}\"}} 1",
            meta::TEMPLATE_NAMES[i],
            meta::TEMPLATE_LANGUAGES[i],
            meta::TEMPLATE_STATUSES[i],
        );
        assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
        let quality = format!(
            "whatsapp_template_quality{{target=\"cloud\",template_id=\"{id}\",template_name=\"{}\",language=\"{}\",rating=\"{}\"}} 1",
            meta::TEMPLATE_NAMES[i],
            meta::TEMPLATE_LANGUAGES[i],
            meta::TEMPLATE_QUALITIES[i],
        );
        assert!(has_line(&metrics, &quality), "missing {quality}");
    }
    // Every discovered number is polled as if configured.
    for (i, number) in PHONE_NUMBER_IDS.iter().enumerate() {
        for line in [
            format!("whatsapp_phone_quality_rating{{target=\"cloud\",phone_number_id=\"{number}\",rating=\"GREEN\"}} 1"),
            format!("whatsapp_phone_messaging_limit_tier{{target=\"cloud\",phone_number_id=\"{number}\",tier=\"TIER_10K\"}} 1"),
            format!("whatsapp_phone_messaging_limit{{target=\"cloud\",phone_number_id=\"{number}\"}} 10000"),
            format!("whatsapp_phone_number_status{{target=\"cloud\",phone_number_id=\"{number}\",status=\"CONNECTED\"}} 1"),
            format!("whatsapp_phone_name_status{{target=\"cloud\",phone_number_id=\"{number}\",status=\"APPROVED\"}} 1"),
            format!("whatsapp_phone_throughput_level{{target=\"cloud\",phone_number_id=\"{number}\",level=\"STANDARD\"}} 1"),
            format!(
                "whatsapp_phone_number_info{{target=\"cloud\",phone_number_id=\"{number}\",display_phone_number=\"{}\",verified_name=\"{}\"}} 1",
                meta::DISPLAY_PHONE_NUMBERS[i],
                meta::VERIFIED_NAMES[i]
            ),
            format!("whatsapp_can_send_message{{target=\"cloud\",entity_type=\"PHONE_NUMBER\",entity_id=\"{number}\",status=\"AVAILABLE\"}} 1"),
        ] {
            assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
        }
    }
    // The default api_version, v25.0, is served until 2028-07-29 (Meta's date).
    assert!(
        has_line(
            &metrics,
            "whatsapp_graph_api_version_expiry_timestamp_seconds{target=\"cloud\",version=\"v25.0\"} 1848441600"
        ),
        "{metrics}"
    );
    // WABA, business and app are shared by every answer: one series each.
    let waba = format!("whatsapp_can_send_message{{target=\"cloud\",entity_type=\"WABA\",entity_id=\"{WABA_ID}\",status=\"AVAILABLE\"}} 1");
    assert_eq!(metrics.lines().filter(|l| *l == waba).count(), 1);

    // A template removed upstream vanishes at the next discovery; a paused one shows.
    sim.remove_template(TEMPLATE_IDS[3]);
    sim.set_template_status(TEMPLATE_IDS[1], "PAUSED");
    let metrics = run
        .wait_until(
            |m| !m.contains(TEMPLATE_IDS[3]),
            "the removed template to vanish",
        )
        .await;
    assert!(has_line(
        &metrics,
        &format!("whatsapp_template_status{{target=\"cloud\",template_id=\"{}\",template_name=\"shipping_update\",language=\"es_ES\",status=\"PAUSED\"}} 1", TEMPLATE_IDS[1])
    ), "{metrics}");
    common::promtool_check(&metrics);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_api_quality_tier_status_and_old_api_versions() {
    let run = cloud(format!(
        "  phone_number_ids: [{}]\n  api_version: v23.0\n",
        PHONE_NUMBER_IDS[1]
    ))
    .await;
    let sim = run.simulator.simulator().clone();
    let number = PHONE_NUMBER_IDS[1];
    let id = format!("target=\"cloud\",phone_number_id=\"{number}\"");
    // v23.0 has no whatsapp_business_manager_messaging_limit: the old tier field is used.
    run.wait_for_lines(&[&format!(
        "whatsapp_phone_messaging_limit_tier{{{id},tier=\"TIER_10K\"}} 1"
    )])
    .await;
    sim.set_quality(number, "RED");
    sim.set_tier(number, "TIER_2K");
    sim.set_phone_status(number, "FLAGGED");
    let metrics = run
        .wait_for_lines(&[
            &format!("whatsapp_phone_quality_rating{{{id},rating=\"RED\"}} 1"),
            &format!("whatsapp_phone_quality_rating{{{id},rating=\"GREEN\"}} 0"),
            &format!("whatsapp_phone_number_status{{{id},status=\"FLAGGED\"}} 1"),
        ])
        .await;
    // The old field names TIER_2K as TIER_1K (Meta's old tiers).
    assert!(
        has_line(
            &metrics,
            &format!("whatsapp_phone_messaging_limit_tier{{{id},tier=\"TIER_1K\"}} 1")
        ),
        "{metrics}"
    );
    assert!(has_line(
        &metrics,
        &format!("whatsapp_phone_messaging_limit{{{id}}} 1000")
    ));
    // v23.0 is served until 2027-10-08.
    assert_eq!(
        common::family(&metrics, "whatsapp_graph_api_version_expiry_timestamp_seconds"),
        ["whatsapp_graph_api_version_expiry_timestamp_seconds{target=\"cloud\",version=\"v23.0\"} 1822953600"]
    );
    // Without discovery there is no discovery endpoint and no template series.
    assert!(!metrics.contains("endpoint=\"discovery\""));
    assert!(!metrics.contains("whatsapp_template_status{"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_headers_slow_a_target_down_until_they_fall() {
    let run = cloud("  usage_threshold: 0.8\n".into()).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&[&format!(
        "whatsapp_graph_api_usage_ratio{{target=\"cloud\",business_object_id=\"{WABA_ID}\",usage_type=\"whatsapp_business_management\",measure=\"call_count\"}} 0.04"
    )])
    .await;
    let metrics = run.metrics().await;
    assert!(has_line(&metrics, "whatsapp_graph_api_usage_ratio{target=\"cloud\",business_object_id=\"\",usage_type=\"app\",measure=\"call_count\"} 0.01"), "{metrics}");
    let pace = |window: Duration| {
        let sim = sim.clone();
        async move {
            let before = sim.cloud_api_requests(CloudApiEndpoint::Waba);
            tokio::time::sleep(window).await;
            sim.cloud_api_requests(CloudApiEndpoint::Waba) - before
        }
    };
    let normal = pace(Duration::from_secs(3)).await;
    assert!(normal >= 7, "{normal} polls in 3 s at a 300 ms interval");
    sim.set_cloud_api_usage(85, 1);
    run.wait_for_lines(&[&format!(
        "whatsapp_graph_api_usage_ratio{{target=\"cloud\",business_object_id=\"{WABA_ID}\",usage_type=\"whatsapp_business_management\",measure=\"call_count\"}} 0.85"
    )])
    .await;
    // Above the threshold the wait doubles per poll up to 8 intervals (2.4 s).
    let slowed = pace(Duration::from_secs(4)).await;
    assert!(
        slowed <= 4,
        "{slowed} polls in 4 s while above the threshold"
    );
    sim.set_cloud_api_usage(10, 1);
    // The next poll sees the usage fall and the pace comes back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back = pace(Duration::from_secs(3)).await;
    assert!(back >= 7, "{back} polls in 3 s after usage fell");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_errors_map_to_their_reasons() {
    let run = cloud("  phone_number_ids: [106540352242922]\n".into()).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&["whatsapp_up{target=\"cloud\"} 1"])
        .await;
    let cases = [
        (
            CloudApiFault::GraphError {
                status: 401,
                code: 190,
                message: "Error validating access token: Session has expired.".into(),
            },
            "unauthorized",
        ),
        (
            CloudApiFault::GraphError {
                status: 400,
                code: 80007,
                message: "Rate limit hit".into(),
            },
            "rate_limited",
        ),
        (
            CloudApiFault::GraphError {
                status: 503,
                code: 2,
                message: "Service temporarily unavailable".into(),
            },
            "unavailable",
        ),
    ];
    for (fault, reason) in cases {
        sim.set_cloud_api_fault(CloudApiEndpoint::Waba, Some(fault));
        let series = format!("whatsapp_poll_errors_total{{target=\"cloud\",endpoint=\"health\",reason=\"{reason}\"}}");
        let metrics = run
            .wait_until(|m| value(m, &series).is_some_and(|v| v >= 1.0), &series)
            .await;
        assert!(has_line(&metrics, "whatsapp_up{target=\"cloud\"} 0"));
        sim.set_cloud_api_fault(CloudApiEndpoint::Waba, None);
        run.wait_for_lines(&["whatsapp_up{target=\"cloud\"} 1"])
            .await;
    }
    // A WABA answer that cannot be read concerns that WABA alone: it is skipped and
    // counted, the number (asked apart) is still exported.
    sim.set_cloud_api_fault(
        CloudApiEndpoint::Waba,
        Some(CloudApiFault::Fault(Fault::MalformedJson)),
    );
    let skipped = "whatsapp_items_skipped_total{target=\"cloud\",endpoint=\"health\"}";
    let metrics = run
        .wait_until(|m| value(m, skipped).is_some_and(|v| v >= 1.0), skipped)
        .await;
    assert!(
        has_line(&metrics, "whatsapp_up{target=\"cloud\"} 1"),
        "{metrics}"
    );
    assert!(has_line(
        &metrics,
        "whatsapp_phone_quality_rating{target=\"cloud\",phone_number_id=\"106540352242922\",rating=\"GREEN\"} 1"
    ));
    sim.set_cloud_api_fault(CloudApiEndpoint::Waba, None);
    // 100% usage: the simulator answers 80008 and the target backs off.
    sim.set_cloud_api_usage(100, 1);
    run.wait_until(
        |m| value(m, "whatsapp_poll_errors_total{target=\"cloud\",endpoint=\"health\",reason=\"rate_limited\"}").is_some_and(|v| v >= 2.0),
        "80008 counted",
    )
    .await;
    let page = run.get("/").await.text().await.unwrap();
    assert!(page.contains("Graph error 80008"), "{page}");
    run.stop().await;
}

/// An entity without its id in a number's health_status: that entity alone is skipped and
/// counted; the number's other fields, the other entities and the poll stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_without_id_is_skipped_alone() {
    let run = cloud("  phone_number_ids: [106540352242922]\n".into()).await;
    let sim = run.simulator.simulator().clone();
    let entity = "whatsapp_can_send_message{target=\"cloud\",entity_type=\"PHONE_NUMBER\",entity_id=\"106540352242922\",status=\"AVAILABLE\"} 1";
    run.wait_for_lines(&[
        "whatsapp_up{target=\"cloud\"} 1",
        entity,
        "whatsapp_items_skipped_total{target=\"cloud\",endpoint=\"health\"} 0",
    ])
    .await;
    // The configured number outside the WABA's answer comes from a multi-id lookup.
    sim.set_cloud_api_fault(
        CloudApiEndpoint::Ids,
        Some(CloudApiFault::Fault(Fault::OddItem)),
    );
    let skipped = "whatsapp_items_skipped_total{target=\"cloud\",endpoint=\"health\"}";
    let metrics = run
        .wait_until(|m| value(m, skipped).is_some_and(|v| v >= 1.0), skipped)
        .await;
    assert!(!has_line(&metrics, entity), "{metrics}");
    for line in [
        "whatsapp_up{target=\"cloud\"} 1",
        "whatsapp_poll_success{target=\"cloud\",endpoint=\"health\"} 1",
        "whatsapp_phone_quality_rating{target=\"cloud\",phone_number_id=\"106540352242922\",rating=\"GREEN\"} 1",
        "whatsapp_can_send_message{target=\"cloud\",entity_type=\"WABA\",entity_id=\"102290129340398\",status=\"AVAILABLE\"} 1",
    ] {
        assert!(has_line(&metrics, line), "{line}\n{metrics}");
    }
    common::promtool_check(&metrics);
    sim.set_cloud_api_fault(CloudApiEndpoint::Ids, None);
    run.wait_for_lines(&[entity]).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    let run = common::start(SimulatorOptions::default(), |s| {
        format!(
            "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
             - name: cloud\n  type: cloud_api\n  base_url: {}\n  access_token: a-wrong-graph-token-xyz\n  phone_number_ids: [\"{}\"]\n",
            s.cloud_api_base_url(),
            PHONE_NUMBER_IDS[0]
        )
    })
    .await;
    let metrics = run
        .wait_until(
            |m| value(m, "whatsapp_poll_errors_total{target=\"cloud\",endpoint=\"health\",reason=\"unauthorized\"}").is_some_and(|v| v >= 1.0),
            "190 counted",
        )
        .await;
    assert!(!metrics.contains("a-wrong-graph-token-xyz"));
    let page = run.get("/").await.text().await.unwrap();
    assert!(page.contains("Graph error 190"), "{page}");
    assert!(!page.contains("a-wrong-graph-token-xyz"));
    run.stop().await;
}

/// The demo's business: it owns one WABA and serves a client WABA. Every series of the
/// target names its WABA; each poll asks one request per WABA and nothing else (pages hold
/// 100 here, so no edge needs a second page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_with_two_wabas_costs_one_request_per_waba() {
    let options = SimulatorOptions {
        cloud_api_page_size: 100,
        ..SimulatorOptions::default()
    };
    let run = common::start(options, |s| {
        format!(
            "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
             - name: biz\n  type: cloud_api\n  base_url: {}\n  access_token: {}\n  business_id: \"{}\"\n  discovery_interval: 1h\n",
            s.cloud_api_base_url(),
            s.simulator().options().cloud_api_token,
            meta::BUSINESS_ID,
        )
    })
    .await;
    let sim = run.simulator.simulator().clone();
    let client = meta::CLIENT_WABA_ID;
    let client_number = meta::CLIENT_PHONE_NUMBER_IDS[0];
    let started = sim.started_at().timestamp();
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_business_wabas{target=\"biz\"} 2",
            &format!("whatsapp_phone_quality_rating{{target=\"biz\",waba_id=\"{WABA_ID}\",phone_number_id=\"{}\",rating=\"GREEN\"}} 1", PHONE_NUMBER_IDS[2]),
            &format!("whatsapp_phone_quality_rating{{target=\"biz\",waba_id=\"{client}\",phone_number_id=\"{client_number}\",rating=\"GREEN\"}} 1"),
            &format!("whatsapp_can_send_message{{target=\"biz\",waba_id=\"{client}\",entity_type=\"WABA\",entity_id=\"{client}\",status=\"AVAILABLE\"}} 1"),
            &format!("whatsapp_can_send_message{{target=\"biz\",waba_id=\"{WABA_ID}\",entity_type=\"BUSINESS\",entity_id=\"{}\",status=\"AVAILABLE\"}} 1", meta::BUSINESS_ID),
            &format!("whatsapp_messaging_health_status{{target=\"biz\",waba_id=\"{client}\",status=\"AVAILABLE\"}} 1"),
            &format!("whatsapp_template_status{{target=\"biz\",waba_id=\"{WABA_ID}\",template_id=\"{}\",template_name=\"order_confirmation\",language=\"en_US\",status=\"APPROVED\"}} 1", TEMPLATE_IDS[0]),
            &format!("whatsapp_webhook_subscribed_apps{{target=\"biz\",waba_id=\"{WABA_ID}\"}} 1"),
            &format!("whatsapp_webhook_subscribed_apps{{target=\"biz\",waba_id=\"{client}\"}} 0"),
            &format!("whatsapp_webhook_app_subscribed{{target=\"biz\",waba_id=\"{WABA_ID}\",app_id=\"{}\",app_name=\"{}\"}} 1", meta::APP_ID, meta::APP_NAME),
            "whatsapp_access_token_valid{target=\"biz\"} 1",
            &format!("whatsapp_access_token_expiry_timestamp_seconds{{target=\"biz\"}} {}", started + 4 * 24 * 3600),
            &format!("whatsapp_access_token_data_access_expiry_timestamp_seconds{{target=\"biz\"}} {}", started + 90 * 24 * 3600),
            "whatsapp_access_token_scope{target=\"biz\",scope=\"whatsapp_business_management\"} 1",
            "whatsapp_access_token_scope{target=\"biz\",scope=\"whatsapp_business_messaging\"} 1",
            "whatsapp_access_token_scope{target=\"biz\",scope=\"business_management\"} 1",
            "whatsapp_poll_success{target=\"biz\",endpoint=\"token\"} 1",
            "whatsapp_poll_success{target=\"biz\",endpoint=\"discovery\"} 1",
            "whatsapp_items_skipped_total{target=\"biz\",endpoint=\"health\"} 0",
        ])
        .await;
    // The client WABA has no templates, and no series comes without its WABA.
    assert!(!metrics.contains(&format!(
        "whatsapp_template_status{{target=\"biz\",waba_id=\"{client}\""
    )));
    for line in metrics.lines().filter(|l| {
        l.starts_with("whatsapp_phone_")
            || l.starts_with("whatsapp_can_send_message{")
            || l.starts_with("whatsapp_template_")
    }) {
        assert!(line.contains(",waba_id=\""), "{line}");
    }
    common::promtool_check(&metrics);

    // From now on: two WABA requests a poll, nothing else.
    let count = |kind| sim.cloud_api_requests(kind);
    let others = || {
        [
            CloudApiEndpoint::PhoneNumber,
            CloudApiEndpoint::PhoneNumbers,
            CloudApiEndpoint::MessageTemplates,
            CloudApiEndpoint::SubscribedApps,
            CloudApiEndpoint::Ids,
            CloudApiEndpoint::Template,
        ]
        .map(|k| sim.cloud_api_requests(k))
    };
    let (before, before_others) = (count(CloudApiEndpoint::Waba), others());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = count(CloudApiEndpoint::Waba) - before;
    assert!(
        asked >= 4,
        "{asked} WABA requests in 2 s at a 300 ms interval"
    );
    assert_eq!(others(), before_others);
    // Listed once (owned, client), the token checked once: the discovery interval is 1 h.
    assert_eq!(count(CloudApiEndpoint::BusinessWabas), 2);
    assert_eq!(count(CloudApiEndpoint::DebugToken), 1);
    let requests = value(
        &run.metrics().await,
        "whatsapp_business_wabas{target=\"biz\"}",
    );
    assert_eq!(requests, Some(2.0));
    run.stop().await;
}

/// A token Graph refuses is reported invalid by the token endpoint (asked with itself), as
/// is one debug_token calls invalid when an app token asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_reads_invalid() {
    let run = common::start(SimulatorOptions::default(), |s| {
        let graph = s.cloud_api_base_url();
        let good = s.simulator().options().cloud_api_token.clone();
        format!(
            "global:\n  interval: 300ms\n  timeout: 300ms\ntargets:\n\
             - name: refused\n  type: cloud_api\n  base_url: {graph}\n  access_token: not-the-token-123\n  waba_id: \"{WABA_ID}\"\n\
             - name: inspected\n  type: cloud_api\n  base_url: {graph}\n  access_token: not-the-token-456\n  debug_token_access_token: {good}\n  waba_id: \"{WABA_ID}\"\n"
        )
    })
    .await;
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_access_token_valid{target=\"refused\"} 0",
            "whatsapp_access_token_valid{target=\"inspected\"} 0",
            "whatsapp_poll_success{target=\"refused\",endpoint=\"token\"} 1",
            "whatsapp_poll_success{target=\"inspected\",endpoint=\"token\"} 1",
        ])
        .await;
    assert!(!metrics.contains("whatsapp_access_token_expiry_timestamp_seconds{"));
    assert!(!metrics.contains("whatsapp_access_token_scope{"));
    assert!(!metrics.contains("not-the-token"));
    run.stop().await;
}

/// Configured numbers outside the WABA come from one multi-id lookup; when Graph refuses it
/// for one id it no longer knows (803), each is asked alone and the known ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_number_does_not_hide_its_siblings() {
    let run = cloud(format!(
        "  phone_number_ids: [\"{}\", \"{}\", \"999000111\"]\n",
        PHONE_NUMBER_IDS[0],
        meta::CLIENT_PHONE_NUMBER_IDS[0]
    ))
    .await;
    let sim = run.simulator.simulator().clone();
    let skipped = "whatsapp_items_skipped_total{target=\"cloud\",endpoint=\"health\"}";
    let metrics = run
        .wait_until(|m| value(m, skipped).is_some_and(|v| v >= 1.0), skipped)
        .await;
    for number in [PHONE_NUMBER_IDS[0], meta::CLIENT_PHONE_NUMBER_IDS[0]] {
        let line = format!("whatsapp_phone_quality_rating{{target=\"cloud\",phone_number_id=\"{number}\",rating=\"GREEN\"}} 1");
        assert!(has_line(&metrics, &line), "{line}\n{metrics}");
    }
    assert!(has_line(
        &metrics,
        "whatsapp_poll_success{target=\"cloud\",endpoint=\"health\"} 1"
    ));
    assert!(sim.cloud_api_requests(CloudApiEndpoint::Ids) >= 1);
    // Then one by one (the simulator counts requests for the numbers it knows).
    assert!(sim.cloud_api_requests(CloudApiEndpoint::PhoneNumber) >= 2);
    run.stop().await;
}

/// A token that cannot be inspected (here Graph refuses the debug_token call) fails the
/// token endpoint alone, and is asked again ever more rarely, not at every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_inspected_is_asked_ever_more_rarely() {
    // Refused from the very first inspection: the fault is set before the exporter starts.
    let run = common::start(SimulatorOptions::default(), |s| {
        s.simulator().set_cloud_api_fault(
            CloudApiEndpoint::DebugToken,
            Some(CloudApiFault::GraphError {
                status: 400,
                code: 100,
                message: "(#100) The App_id in the input_token did not match the Viewing App"
                    .into(),
            }),
        );
        cloud_target(s, "  discover: true\n  discovery_interval: 1h\n")
    })
    .await;
    let sim = run.simulator.simulator().clone();
    let token_errors =
        "whatsapp_poll_errors_total{target=\"cloud\",endpoint=\"token\",reason=\"http_status\"}";
    run.wait_until(
        |m| value(m, token_errors).is_some_and(|v| v >= 1.0),
        token_errors,
    )
    .await;
    let (waba_before, token_before) = (
        sim.cloud_api_requests(CloudApiEndpoint::Waba),
        sim.cloud_api_requests(CloudApiEndpoint::DebugToken),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = sim.cloud_api_requests(CloudApiEndpoint::Waba) - waba_before;
    let inspections = sim.cloud_api_requests(CloudApiEndpoint::DebugToken) - token_before;
    // Waits of 1, 2, 4, 8 intervals after the failures: at most 3 more in 10 polls.
    assert!(
        polls >= 6,
        "{polls} health polls in 3 s at a 300 ms interval"
    );
    assert!(
        inspections * 3 <= polls,
        "{inspections} token inspections in {polls} polls"
    );
    let metrics = run.metrics().await;
    assert!(has_line(
        &metrics,
        "whatsapp_poll_success{target=\"cloud\",endpoint=\"token\"} 0"
    ));
    assert!(has_line(
        &metrics,
        "whatsapp_poll_success{target=\"cloud\",endpoint=\"health\"} 1"
    ));
    assert!(!metrics.contains("whatsapp_access_token_valid{"));
    run.stop().await;
}
