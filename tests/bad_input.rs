//! Every bad input fails only its own target's poll, counted with its reason, while the
//! other targets keep polling and /metrics keeps answering.

mod common;

use common::{global, has_line, onprem_target, value, Auth, Running};
use std::time::Duration;
use whatsapp_exporter::simulator::{Cluster, Endpoint, Fault, SimulatorOptions};

const BYSTANDER_SUCCESS: &str =
    "whatsapp_last_poll_success_timestamp_seconds{target=\"bystander\",endpoint=\"health\"}";

async fn start() -> Running {
    common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = global("300ms");
        text.push_str(&onprem_target(
            "victim",
            &s.base_url(Cluster::Single),
            o,
            Auth::ApiKeyAndLogin,
        ));
        text.push_str(&onprem_target(
            "bystander",
            &s.base_url(Cluster::Ha),
            o,
            Auth::Login,
        ));
        text
    })
    .await
}

fn errors(metrics: &str, endpoint: &str, reason: &str) -> f64 {
    value(
        metrics,
        &format!("whatsapp_poll_errors_total{{target=\"victim\",endpoint=\"{endpoint}\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Injects `fault`, waits for one more error of `reason`, checks the bystander polled
/// meanwhile and the victim is down, then clears the fault and waits for recovery.
async fn expect_failure(run: &Running, endpoint: Endpoint, fault: Fault, reason: &str) {
    let sim = run.simulator.simulator();
    let name = match endpoint {
        Endpoint::Health => "health",
        Endpoint::Support => "support",
        Endpoint::Login => "support",
    };
    let before = run.metrics().await;
    let counted = errors(&before, name, reason);
    let bystander_before = value(&before, BYSTANDER_SUCCESS).expect("bystander polled");
    sim.set_fault(Cluster::Single, endpoint, Some(fault.clone()));
    if endpoint == Endpoint::Login {
        // The held token is good for days: make the next poll need a new login.
        sim.revoke_tokens(Cluster::Single);
    }
    let after = run
        .wait_until(
            |m| errors(m, name, reason) > counted,
            &format!("{fault:?} counted as {reason}"),
        )
        .await;
    assert!(
        has_line(&after, "whatsapp_up{target=\"victim\"} 0"),
        "{fault:?}\n{after}"
    );
    assert!(
        has_line(
            &after,
            &format!("whatsapp_poll_success{{target=\"victim\",endpoint=\"{name}\"}} 0")
        ),
        "{fault:?}"
    );
    // The other target polled on while this one failed.
    run.wait_until(
        |m| value(m, BYSTANDER_SUCCESS).is_some_and(|t| t > bystander_before),
        "the bystander to keep polling",
    )
    .await;
    let metrics = run.metrics().await;
    assert!(
        has_line(&metrics, "whatsapp_up{target=\"bystander\"} 1"),
        "{fault:?}"
    );
    sim.set_fault(Cluster::Single, endpoint, None);
    run.wait_for_lines(&["whatsapp_up{target=\"victim\"} 1"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_payload_is_counted_with_its_reason() {
    let run = start().await;
    run.wait_for_lines(&[
        "whatsapp_up{target=\"victim\"} 1",
        "whatsapp_up{target=\"bystander\"} 1",
    ])
    .await;
    let cases = [
        (Endpoint::Health, Fault::MalformedJson, "decode"),
        (Endpoint::Support, Fault::MalformedJson, "decode"),
        (Endpoint::Health, Fault::WrongContentType, "decode"),
        (Endpoint::Health, Fault::MissingField, "decode"),
        (Endpoint::Health, Fault::NullField, "decode"),
        (Endpoint::Health, Fault::EmptyBody, "decode"),
        (
            Endpoint::Health,
            Fault::ErrorEnvelope {
                status: 200,
                code: 1014,
                title: "Internal error".into(),
            },
            "decode",
        ),
        (
            Endpoint::Health,
            Fault::ErrorEnvelope {
                status: 500,
                code: 1014,
                title: "Internal error".into(),
            },
            "http_status",
        ),
        (Endpoint::Health, Fault::Status(502), "http_status"),
        (Endpoint::Health, Fault::Truncated, "connect"),
        (
            Endpoint::Health,
            Fault::OversizedBody(2 << 20),
            "body_too_large",
        ),
        (Endpoint::Health, Fault::Hang, "timeout"),
        (
            Endpoint::Health,
            Fault::Slow(Duration::from_secs(2)),
            "timeout",
        ),
        (
            Endpoint::Health,
            Fault::ServiceUnavailable {
                retry_after: Some("1".into()),
            },
            "rate_limited",
        ),
        (Endpoint::Health, Fault::Status(401), "unauthorized"),
        // A login that answers garbage fails the endpoint that needed the token.
        (Endpoint::Login, Fault::MissingField, "decode"),
    ];
    for (endpoint, fault, reason) in cases {
        expect_failure(&run, endpoint, fault, reason).await;
    }
    // Support fields are optional: a null socket_conn drops its series, nothing fails.
    let sim = run.simulator.simulator();
    sim.set_fault(Cluster::Single, Endpoint::Support, Some(Fault::NullField));
    let metrics = run
        .wait_for_absence("whatsapp_socket_connection{target=\"victim\"")
        .await;
    assert!(
        has_line(&metrics, "whatsapp_up{target=\"victim\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("whatsapp_free_space_bytes{target=\"victim\""));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_refused_targets_fail_alone() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = global("300ms");
        text.push_str(&onprem_target(
            "refused",
            &format!("http://{closed}"),
            o,
            Auth::ApiKey,
        ));
        let mut wrong = o.clone();
        wrong.api_key = "a-wrong-api-key-1234".into();
        text.push_str(&onprem_target(
            "wrong-key",
            &s.base_url(Cluster::Single),
            &wrong,
            Auth::ApiKey,
        ));
        text.push_str(&onprem_target(
            "bystander",
            &s.base_url(Cluster::Ha),
            o,
            Auth::Login,
        ));
        text
    })
    .await;
    let metrics = run
        .wait_until(
            |m| {
                value(m, "whatsapp_poll_errors_total{target=\"refused\",endpoint=\"health\",reason=\"connection_refused\"}")
                    .is_some_and(|v| v >= 2.0)
                    && value(m, "whatsapp_poll_errors_total{target=\"wrong-key\",endpoint=\"health\",reason=\"unauthorized\"}")
                        .is_some_and(|v| v >= 2.0)
                    && has_line(m, "whatsapp_up{target=\"bystander\"} 1")
            },
            "refused and unauthorized counted, bystander up",
        )
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"refused\"} 0"));
    assert!(has_line(&metrics, "whatsapp_up{target=\"wrong-key\"} 0"));
    // A target that never succeeded has no data series and no success timestamp.
    assert!(!metrics.contains("whatsapp_last_poll_success_timestamp_seconds{target=\"refused\""));
    assert!(!metrics.contains("whatsapp_gateway_status{target=\"refused\""));
    // The key is in no line.
    assert!(!metrics.contains("a-wrong-api-key-1234"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_shows_errors_and_escapes_them() {
    let run = start().await;
    run.wait_for_lines(&["whatsapp_up{target=\"victim\"} 1"])
        .await;
    run.simulator.simulator().set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::ErrorEnvelope {
            status: 500,
            code: 1014,
            title: "<b>Internal</b> error".into(),
        }),
    );
    run.wait_for_lines(&["whatsapp_up{target=\"victim\"} 0"])
        .await;
    let page = run.get("/").await.text().await.unwrap();
    let victim = target_rows(&page, "victim");
    assert!(victim.contains("data-verdict=\"fail\""), "{victim}");
    assert!(
        victim.contains("<td data-endpoint=\"health\">health</td>"),
        "{victim}"
    );
    assert!(victim.contains("<td class=\"fail\">down</td>"), "{victim}");
    assert!(
        victim.contains("http_status: HTTP 500: 1014 &lt;b&gt;Internal&lt;/b&gt; error"),
        "{victim}"
    );
    let bystander = target_rows(&page, "bystander");
    assert!(
        bystander.contains("<td data-endpoint=\"health\">health</td>"),
        "{bystander}"
    );
    assert!(!page.contains("<b>Internal</b>"));
    run.stop().await;
}

/// The landing page's rows of one target.
fn target_rows<'a>(page: &'a str, target: &str) -> &'a str {
    let open = format!("<tbody data-target=\"{target}\">");
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("no {open}: {page}"));
    let end = page[start..]
        .find("</tbody>")
        .map_or(page.len(), |e| start + e);
    &page[start..end]
}
