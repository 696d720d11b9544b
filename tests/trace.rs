//! `/probe?target=NAME&debug=true` against the simulator: the trace of one poll, its
//! requests, answers and results in order, then the series, and never a credential.

mod common;

use common::{has_line, onprem_target, Auth, Running};
use whatsapp_exporter::exporter::Options;
use whatsapp_exporter::simulator::meta::{PHONE_NUMBER_IDS, WABA_ID};
use whatsapp_exporter::simulator::{Cluster, Endpoint, Fault, SimulatorHandle, SimulatorOptions};

fn config(s: &SimulatorHandle) -> String {
    let o = s.simulator().options();
    let mut text = common::global("5s");
    text.push_str(&onprem_target(
        "login",
        &s.base_url(Cluster::Single),
        o,
        Auth::Login,
    ));
    text.push_str(&onprem_target(
        "broken",
        &s.base_url(Cluster::Ha),
        o,
        Auth::ApiKeyAndLogin,
    ));
    text.push_str(&format!(
        "  - name: cloud\n    type: cloud_api\n    base_url: {graph}\n    access_token: {token}\n    waba_id: \"{WABA_ID}\"\n    phone_number_ids: [\"{number}\"]\n",
        graph = s.cloud_api_base_url(),
        token = o.cloud_api_token,
        number = PHONE_NUMBER_IDS[0],
    ));
    text
}

/// The exporter without background polls: every poll is a probe's, so the first one of
/// a target logs in.
async fn start() -> Running {
    common::start_with(
        SimulatorOptions::default(),
        config,
        None,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .await
}

async fn trace(run: &Running, target: &str) -> String {
    let answer = run.get(&format!("/probe?target={target}&debug=true")).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    answer.text().await.expect("body")
}

/// Whether `line` matches `pattern`, where each `*` stands for any text.
fn matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The lines of `text` from the one matching `patterns[0]` on are exactly `patterns`.
fn assert_block(text: &str, patterns: &[&str]) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| matches(patterns[0], l))
        .unwrap_or_else(|| panic!("no line {:?} in\n{text}", patterns[0]));
    for (i, pattern) in patterns.iter().enumerate() {
        let line = lines.get(start + i).copied().unwrap_or("<end>");
        assert!(
            matches(pattern, line),
            "line {} is {line:?}, expected {pattern:?}, in\n{text}",
            start + i + 1
        );
    }
}

#[test]
fn the_pattern_matcher_matches() {
    assert!(matches("a*c", "abc"));
    assert!(matches("a*", "a"));
    assert!(matches("abc", "abc"));
    assert!(!matches("abc", "abcd"));
    assert!(matches("*b*d", "abcd"));
    assert!(!matches("a*c", "abd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onprem_login_is_traced_without_its_token() {
    let run = start().await;
    let sim = run.simulator.simulator().clone();
    let base = run.simulator.base_url(Cluster::Single);
    let base = base.trim_end_matches('/');
    let options = sim.options().clone();
    let text = trace(&run, "login").await;
    assert_block(
        &text,
        &[
            "# Debug trace of one poll of target \"login\" (type onprem) by whatsapp-exporter *.",
            "# Credentials are shown as <redacted>, request headers by name only; bodies are cut after 2,000 bytes.",
            "",
            "endpoint health",
            &format!("  request 1: POST {base}/v1/users/login"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: *",
            "    body (* bytes):",
            "      {\"meta\":{\"api_status\":\"stable\",\"version\":\"v2.53.2\"},\"users\":[{\"expires_after\":\"* *+00:00\",\"token\":\"<redacted>\"}]}",
            &format!("  request 2: GET {base}/v1/health"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: 92",
            "    body (92 bytes):",
            "      {\"health\":{\"gateway_status\":\"connected\"},\"meta\":{\"api_status\":\"stable\",\"version\":\"v2.53.2\"}}",
            "  result: success",
            "",
            "endpoint support",
            &format!("  request 3: GET {base}/v1/support"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: *",
            "    body (* bytes):",
            "      {\"meta\":{\"api_status\":\"stable\",\"version\":\"v2.53.2\"},\"support\":{*,\"socket_conn\":\"UP\",\"version\":\"v2.53.2\"}}",
            "  result: success",
            "",
            "series",
            "# HELP whatsapp_target_info Configured target: its type and the user labels from the config. Join on target.",
            "# TYPE whatsapp_target_info gauge",
            "whatsapp_target_info{target=\"login\",type=\"onprem\"} 1",
        ],
    );
    for line in [
        "whatsapp_up{target=\"login\"} 1",
        "whatsapp_poll_success{target=\"login\",endpoint=\"support\"} 1",
        "whatsapp_gateway_status{target=\"login\",node=\"\",status=\"connected\"} 1",
        "whatsapp_socket_connection{target=\"login\",node=\"\",state=\"UP\"} 1",
    ] {
        assert!(has_line(&text, line), "missing {line}\n{text}");
    }
    // The simulator's tokens are JWT-shaped; nothing of the token, the password or the
    // Basic credentials is shown.
    assert!(!text.contains("eyJ"), "{text}");
    assert!(!text.contains(&options.password), "{text}");
    assert!(!text.contains("Basic "), "{text}");

    // A debug probe is a poll like any other: the next one uses its login token, and the
    // normal probe after it sees what it found.
    let text = trace(&run, "login").await;
    assert!(
        text.contains(&format!("\n  request 1: GET {base}/v1/health\n")),
        "{text}"
    );
    assert!(!text.contains("/v1/users/login"), "{text}");
    assert_eq!(sim.logins(Cluster::Single), 1);
    let probe = run
        .get("/probe?target=login")
        .await
        .text()
        .await
        .expect("body");
    assert!(
        has_line(&probe, "whatsapp_up{target=\"login\"} 1"),
        "{probe}"
    );
    assert!(!probe.contains("endpoint health"), "{probe}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_api_poll_is_traced_without_its_access_token() {
    let run = start().await;
    let graph = run.simulator.cloud_api_base_url();
    let graph = graph.trim_end_matches('/');
    let token = run.simulator.simulator().options().cloud_api_token.clone();
    let number = PHONE_NUMBER_IDS[0];
    let text = trace(&run, "cloud").await;
    assert_block(
        &text,
        &[
            "endpoint token",
            &format!("  request 1: GET {graph}/v25.0/debug_token?input_token=<redacted>"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    x-business-use-case-usage: *",
            "    x-app-usage: *",
            "    content-length: *",
            "    body (* bytes):",
            "      {\"data\":{\"app_id\":*,\"is_valid\":true,*}}",
            "  result: success",
            "",
            "endpoint health",
            &format!("  request 2: GET {graph}/v25.0/{WABA_ID}?fields=health_status"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            &format!("    x-business-use-case-usage: {{\"{WABA_ID}\":[{{\"call_count\":*,\"type\":\"whatsapp_business_management\"}}]}}"),
            "    x-app-usage: {\"call_count\":*}",
            "    content-length: *",
            "    body (* bytes):",
            &format!("      {{\"health_status\":{{\"can_send_message\":\"AVAILABLE\",*}},\"id\":\"{WABA_ID}\"}}"),
            &format!("  request 3: GET {graph}/v25.0/?ids={number}&fields=id,health_status,quality_rating,whatsapp_business_manager_messaging_limit,status,name_status,throughput,display_phone_number,verified_name"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    x-business-use-case-usage: *",
            "    x-app-usage: *",
            "    content-length: *",
            "    body (* bytes):",
            &format!("      {{\"{number}\":{{\"display_phone_number\":\"+1 555-012-3401\",\"health_status\":{{\"can_send_message\":\"AVAILABLE\",*,\"id\":\"{number}\",*,\"whatsapp_business_manager_messaging_limit\":\"TIER_10K\"}}}}"),
            "  result: success",
            "",
            "series",
        ],
    );
    for line in [
        "whatsapp_up{target=\"cloud\"} 1",
        "whatsapp_messaging_health_status{target=\"cloud\",status=\"AVAILABLE\"} 1",
        &format!("whatsapp_phone_quality_rating{{target=\"cloud\",phone_number_id=\"{number}\",rating=\"GREEN\"}} 1"),
    ] {
        assert!(has_line(&text, line), "missing {line}\n{text}");
    }
    assert!(!text.contains(&token), "{text}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_poll_shows_status_body_and_error() {
    let run = start().await;
    let sim = run.simulator.simulator().clone();
    let base = run.simulator.base_url(Cluster::Ha);
    let base = base.trim_end_matches('/');
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::MalformedJson));
    sim.set_fault(Cluster::Ha, Endpoint::Support, Some(Fault::Status(500)));
    let text = trace(&run, "broken").await;
    assert_block(
        &text,
        &[
            "endpoint health",
            &format!("  request 1: GET {base}/v1/health"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: 297",
            "    body (297 bytes):",
            // The first `:` is missing.
            "      {\"health\"{\"wa-ha-1:9f1c2a7b3d4e\":{\"gateway_status\":\"disconnected\",\"role\":\"primary_master\"},*}},\"meta\":{\"api_status\":\"stable\",\"version\":\"v2.53.2\"}}",
            "  result: failed, reason decode: malformed JSON at line 1, column 10: expected `:`",
            "",
            "endpoint support",
            &format!("  request 2: POST {base}/v1/users/login"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: *",
            "    body (* bytes):",
            "      {\"meta\":*,\"users\":[{\"expires_after\":\"*\",\"token\":\"<redacted>\"}]}",
            &format!("  request 3: GET {base}/v1/support"),
            "    request headers (values not shown): authorization",
            "    response: 500 Internal Server Error after * ms",
            "    content-type: text/html",
            "    content-length: 170",
            "    body (170 bytes):",
            "      <html>",
            "      <head><title>500 Internal Server Error</title></head>",
            "      <body>",
            "      <center><h1>500 Internal Server Error</h1></center>",
            "      <hr><center>nginx</center>",
            "      </body>",
            "      </html>",
            "  result: failed, reason http_status: HTTP 500",
            "",
            "series",
        ],
    );
    for line in [
        "whatsapp_up{target=\"broken\"} 0",
        "whatsapp_poll_errors_total{target=\"broken\",endpoint=\"health\",reason=\"decode\"} 1",
        "whatsapp_poll_errors_total{target=\"broken\",endpoint=\"support\",reason=\"http_status\"} 1",
    ] {
        assert!(has_line(&text, line), "missing {line}\n{text}");
    }

    // One node that cannot be read: the others are, and the trace names the path of the
    // one that could not be. A long body is cut, and says by how much. The login token
    // of the last poll serves, so no login this time.
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::OddItem));
    sim.set_fault(
        Cluster::Ha,
        Endpoint::Support,
        Some(Fault::OversizedBody(5000)),
    );
    let text = trace(&run, "broken").await;
    assert_block(
        &text,
        &[
            "endpoint health",
            &format!("  request 1: GET {base}/v1/health"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: *",
            "    body (* bytes):",
            "      {\"health\":{\"wa-ha-1:9f1c2a7b3d4e\":\"connected\",\"wa-ha-2:4b7e8d1c0a92\":{*}",
            "  result: success",
            "  could not be read (the rest of the answer was used):",
            "    item skipped: wrong type at `health[\"wa-ha-1:9f1c2a7b3d4e\"]`: expected object, found string",
            "  items skipped: 1",
            "",
            "endpoint support",
            &format!("  request 2: GET {base}/v1/support"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: 5000",
            "    body (5,000 bytes):",
            "      {\"meta\":{\"api_status\":\"stable\",\"version\":\"v2.53.2\"},\"padding\":\"xxxx*",
            "      ... (3,000 more bytes not shown)",
            "  result: success",
        ],
    );
    let cut = text
        .lines()
        .find(|l| l.starts_with("      {\"meta\""))
        .unwrap_or_default();
    assert_eq!(cut.len(), "      ".len() + 2000, "{cut}");
    assert!(
        has_line(
            &text,
            "whatsapp_items_skipped_total{target=\"broken\",endpoint=\"health\"} 1"
        ),
        "{text}"
    );
    assert!(
        has_line(&text, "whatsapp_up{target=\"broken\"} 1"),
        "{text}"
    );

    // A login answer cut in the middle of its token: what there is of it is redacted.
    sim.set_fault(Cluster::Ha, Endpoint::Health, None);
    sim.set_fault(Cluster::Ha, Endpoint::Support, None);
    sim.set_fault(Cluster::Ha, Endpoint::Login, Some(Fault::Truncated));
    sim.revoke_tokens(Cluster::Ha);
    let text = trace(&run, "broken").await;
    assert!(!text.contains("eyJ"), "{text}");
    assert_block(
        &text,
        &[
            &format!("  request 3: POST {base}/v1/users/login"),
            "    request headers (values not shown): authorization",
            "    response: 200 OK after * ms",
            "    content-type: application/json",
            "    content-length: *",
            "    failed: connect: reading body: *",
            "    body (* bytes read):",
            "      {\"meta\":*,\"users\":[{\"expires_after\":\"*\",\"token\":\"<redacted>",
            "  result: failed, reason connect: reading body: *",
        ],
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_takes_true_or_false() {
    let run = start().await;
    for value in ["yes", "1", "TRUE", ""] {
        let answer = run.get(&format!("/probe?target=login&debug={value}")).await;
        assert_eq!(answer.status(), 400, "{value}");
        assert_eq!(
            answer.text().await.expect("body"),
            "debug takes true or false: /probe?target=<name>&debug=true answers the trace of one poll\n"
        );
    }
    let answer = run.get("/probe?target=login&debug=false").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = answer.text().await.expect("body");
    assert!(has_line(&body, "whatsapp_up{target=\"login\"} 1"), "{body}");
    assert!(!body.contains("endpoint health"), "{body}");
    let answer = run.get("/probe?target=nope&debug=true").await;
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer.text().await.expect("body"),
        "unknown target \"nope\": /probe takes the name of a configured target\n"
    );
    let answer = run.get("/probe?debug=true").await;
    assert_eq!(answer.status(), 400);
    run.stop().await;
}
