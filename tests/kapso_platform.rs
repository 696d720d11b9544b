//! Kapso's Platform API (`kapso_platform` targets) against the simulator: discovery over
//! several pages, every number's series, an odd listing item and a failing number left out
//! while the rest stands, Meta's relayed rate limit and Kapso's 401.

mod common;

use common::{has_line, value, Running};
use whatsapp_exporter::simulator::meta::{DISPLAY_PHONE_NUMBERS, PHONE_NUMBER_IDS, VERIFIED_NAMES};
use whatsapp_exporter::simulator::{CloudApiFault, Fault, SimulatorHandle, SimulatorOptions};

/// A `kapso_platform` target named `name` on the simulator, with `extra` keys.
fn target(s: &SimulatorHandle, name: &str, key: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    type: kapso_platform\n    base_url: {base}\n    api_key: {key}\n{extra}",
        base = s.kapso_platform_base_url(),
    )
}

fn key(s: &SimulatorHandle) -> String {
    s.simulator().options().kapso_api_key.clone()
}

/// One `kapso_platform` target `kp` discovering once (its discovery interval is an hour).
async fn discovering(prepare: impl FnOnce(&SimulatorHandle)) -> Running {
    common::start(SimulatorOptions::default(), |s| {
        prepare(s);
        format!(
            "{}{}",
            common::global("300ms"),
            target(
                s,
                "kp",
                &key(s),
                "    discover: true\n    discovery_interval: 1h\n"
            ),
        )
    })
    .await
}

/// The lines every healthy number `i` of target `kp` has.
fn number_lines(i: usize) -> Vec<String> {
    let id = PHONE_NUMBER_IDS[i];
    let t = format!("target=\"kp\",phone_number_id=\"{id}\"");
    vec![
        format!("whatsapp_config_health_status{{{t},status=\"healthy\"}} 1"),
        format!("whatsapp_config_health_status{{{t},status=\"unhealthy\"}} 0"),
        format!("whatsapp_health_check_passed{{{t},check=\"messaging_health\"}} 1"),
        format!("whatsapp_health_check_passed{{{t},check=\"phone_number_access\"}} 1"),
        format!("whatsapp_health_check_passed{{{t},check=\"webhook_subscription\"}} 1"),
        format!("whatsapp_health_check_passed{{{t},check=\"webhook_verified\"}} 1"),
        format!("whatsapp_webhook_subscribed{{{t}}} 1"),
        format!("whatsapp_webhook_verified_timestamp_seconds{{{t}}} 1705314600"),
        format!("whatsapp_phone_quality_rating{{{t},rating=\"GREEN\"}} 1"),
        format!(
            "whatsapp_phone_number_info{{{t},display_phone_number=\"{}\",verified_name=\"{}\"}} 1",
            DISPLAY_PHONE_NUMBERS[i], VERIFIED_NAMES[i]
        ),
        format!("whatsapp_phone_messaging_limit_tier{{{t},tier=\"TIER_10K\"}} 1"),
        format!("whatsapp_phone_messaging_limit{{{t}}} 10000"),
        format!("whatsapp_phone_number_status{{{t},status=\"CONNECTED\"}} 1"),
        format!("whatsapp_can_send_message{{target=\"kp\",entity_type=\"PHONE_NUMBER\",entity_id=\"{id}\",status=\"AVAILABLE\"}} 1"),
    ]
}

fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_of_every_page_and_every_numbers_series() {
    // Beside a legacy `kapso` target: the same families with and without phone_number_id
    // pass promtool together.
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        format!(
            "{}{}  - name: legacy\n    type: kapso\n    base_url: {}\n    api_key: {}\n    config_id: {}\n",
            common::global("300ms"),
            target(s, "kp", &key(s), "    discover: true\n    discovery_interval: 1h\n"),
            s.kapso_base_url(),
            o.kapso_api_key,
            o.kapso_config_ids[0],
        )
    })
    .await;
    // Three numbers, at most two per page: the third is on the second page.
    let mut lines: Vec<String> = (0..3).flat_map(number_lines).collect();
    lines.extend(
        [
            "whatsapp_up{target=\"kp\"} 1",
            "whatsapp_target_info{target=\"kp\",type=\"kapso_platform\"} 1",
            "whatsapp_poll_success{target=\"kp\",endpoint=\"discovery\"} 1",
            "whatsapp_poll_success{target=\"kp\",endpoint=\"health\"} 1",
            "whatsapp_items_skipped_total{target=\"kp\",endpoint=\"discovery\"} 0",
            "whatsapp_items_skipped_total{target=\"kp\",endpoint=\"health\"} 0",
            "whatsapp_messaging_health_status{target=\"kp\",status=\"AVAILABLE\"} 1",
            "whatsapp_up{target=\"legacy\"} 1",
            "whatsapp_config_health_status{target=\"legacy\",status=\"healthy\"} 1",
        ]
        .map(String::from),
    );
    let metrics = run.wait_for_lines(&refs(&lines)).await;
    // The entities every number shares come out once.
    let wabas = common::family(&metrics, "whatsapp_can_send_message")
        .into_iter()
        .filter(|l| l.contains("target=\"kp\",entity_type=\"WABA\"") && l.ends_with(" 1"))
        .count();
    assert_eq!(wabas, 1, "{metrics}");
    assert!(!metrics.contains(&key(&run.simulator)));
    common::promtool_check(&metrics);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_item_and_a_failing_number_leave_the_rest() {
    let run = discovering(|s| {
        let sim = s.simulator();
        sim.set_kapso_item_without_id(true);
        // The second number BLOCKED, its config unhealthy.
        sim.set_phone_health(PHONE_NUMBER_IDS[1], "BLOCKED", None);
        sim.set_kapso_status("kapso-config-2", "unhealthy", None);
    })
    .await;
    let blocked = format!("target=\"kp\",phone_number_id=\"{}\"", PHONE_NUMBER_IDS[1]);
    let mut lines = number_lines(0);
    lines.extend(number_lines(2));
    lines.extend([
        "whatsapp_items_skipped_total{target=\"kp\",endpoint=\"discovery\"} 1".to_owned(),
        "whatsapp_poll_success{target=\"kp\",endpoint=\"discovery\"} 1".to_owned(),
        format!("whatsapp_config_health_status{{{blocked},status=\"unhealthy\"}} 1"),
        format!("whatsapp_config_health_status{{{blocked},status=\"healthy\"}} 0"),
        format!("whatsapp_health_check_passed{{{blocked},check=\"messaging_health\"}} 0"),
        format!("whatsapp_health_check_passed{{{blocked},check=\"phone_number_access\"}} 1"),
        format!(
            "whatsapp_can_send_message{{target=\"kp\",entity_type=\"PHONE_NUMBER\",entity_id=\"{}\",status=\"BLOCKED\"}} 1",
            PHONE_NUMBER_IDS[1]
        ),
        "whatsapp_messaging_health_status{target=\"kp\",status=\"BLOCKED\"} 1".to_owned(),
    ]);
    run.wait_for_lines(&refs(&lines)).await;

    // The third number's health answers 500, then malformed JSON: it goes, the others stay.
    let sim = run.simulator.simulator().clone();
    let third = format!("target=\"kp\",phone_number_id=\"{}\"", PHONE_NUMBER_IDS[2]);
    for fault in [Fault::Status(500), Fault::MalformedJson] {
        sim.set_kapso_fault(Some("kapso-config-3"), Some(fault));
        let metrics = run
            .wait_for_absence(&format!("whatsapp_config_health_status{{{third},"))
            .await;
        for line in number_lines(0) {
            assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
        }
        for line in [
            "whatsapp_poll_success{target=\"kp\",endpoint=\"health\"} 1",
            "whatsapp_up{target=\"kp\"} 1",
        ] {
            assert!(has_line(&metrics, line), "missing {line}\n{metrics}");
        }
        assert!(!metrics.contains(&format!("whatsapp_phone_quality_rating{{{third},")));
        let skipped = value(
            &metrics,
            "whatsapp_items_skipped_total{target=\"kp\",endpoint=\"health\"}",
        );
        assert!(skipped.is_some_and(|n| n >= 1.0), "{metrics}");
        // Back to healthy: the number returns.
        sim.set_kapso_fault(Some("kapso-config-3"), None);
        run.wait_for_lines(&refs(&number_lines(2))).await;
    }
    common::promtool_check(&run.metrics().await);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_rate_limit_relayed_and_kapsos_401() {
    let run = common::start(SimulatorOptions::default(), |s| {
        s.simulator()
            .set_kapso_platform_fault(Some(CloudApiFault::GraphError {
                status: 400,
                code: 80007,
                message: "(#80007) Rate limit hit for this WhatsApp Business Account".into(),
            }));
        format!(
            "{}{}{}{}",
            common::global("300ms"),
            target(s, "listing", &key(s), "    discover: true\n"),
            target(
                s,
                "numbers",
                &key(s),
                &format!("    phone_number_ids: [\"{}\"]\n", PHONE_NUMBER_IDS[0]),
            ),
            target(s, "wrong-key", "not-the-kapso-key", "    discover: true\n"),
        )
    })
    .await;
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_poll_errors_total{target=\"listing\",endpoint=\"discovery\",reason=\"rate_limited\"} 1",
            "whatsapp_poll_success{target=\"listing\",endpoint=\"discovery\"} 0",
            "whatsapp_poll_errors_total{target=\"numbers\",endpoint=\"health\",reason=\"rate_limited\"} 1",
            "whatsapp_poll_success{target=\"numbers\",endpoint=\"health\"} 0",
            "whatsapp_poll_success{target=\"wrong-key\",endpoint=\"discovery\"} 0",
            "whatsapp_up{target=\"wrong-key\"} 0",
        ])
        .await;
    for (target, endpoint) in [("listing", "discovery"), ("numbers", "health")] {
        for reason in ["unauthorized", "decode", "http_status"] {
            let line = format!("whatsapp_poll_errors_total{{target=\"{target}\",endpoint=\"{endpoint}\",reason=\"{reason}\"}} 0");
            assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
        }
    }
    let unauthorized = value(
        &metrics,
        "whatsapp_poll_errors_total{target=\"wrong-key\",endpoint=\"discovery\",reason=\"unauthorized\"}",
    );
    assert!(unauthorized.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(has_line(
        &metrics,
        "whatsapp_poll_errors_total{target=\"wrong-key\",endpoint=\"discovery\",reason=\"rate_limited\"} 0"
    ));
    // The rate limit stopped the cycle: the health endpoint of the discovering target was
    // never polled.
    assert!(!metrics.contains("whatsapp_poll_success{target=\"listing\",endpoint=\"health\"}"));

    // The limit lifted: both recover.
    run.simulator.simulator().set_kapso_platform_fault(None);
    let mut lines = vec![
        "whatsapp_up{target=\"listing\"} 1".to_owned(),
        "whatsapp_up{target=\"numbers\"} 1".to_owned(),
    ];
    lines.extend(
        number_lines(0)
            .into_iter()
            .map(|l| l.replace("\"kp\"", "\"numbers\"")),
    );
    run.wait_for_lines(&refs(&lines)).await;
    run.stop().await;
}
