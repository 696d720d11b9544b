//! On-Premises targets against the simulator: exact exposition lines for each shape, state
//! transitions, vanishing nodes, login and token renewal, rate limits and staleness.

mod common;

use std::time::Duration;

use common::{family, global, has_line, onprem_target, value, Auth};
use whatsapp_exporter::simulator::{onprem as sim, Cluster, Endpoint, Fault, SimulatorOptions};

fn three_clusters(s: &whatsapp_exporter::simulator::SimulatorHandle) -> String {
    let o = s.simulator().options();
    let mut text = global("300ms");
    text.push_str(&onprem_target(
        "single",
        &s.base_url(Cluster::Single),
        o,
        Auth::ApiKeyAndLogin,
    ));
    text.push_str("    labels:\n      team: messaging\n      site: \"eu-1\"\n");
    text.push_str(&onprem_target(
        "ha",
        &s.base_url(Cluster::Ha),
        o,
        Auth::Login,
    ));
    text.push_str(&onprem_target(
        "mc",
        &s.base_url(Cluster::Multiconnect),
        o,
        Auth::ApiKeyAndLogin,
    ));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_instance_exact_lines() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_up{target=\"single\"} 1",
            "whatsapp_poll_success{target=\"single\",endpoint=\"health\"} 1",
            "whatsapp_poll_success{target=\"single\",endpoint=\"support\"} 1",
        ])
        .await;
    for line in [
        "whatsapp_target_info{target=\"single\",type=\"onprem\",site=\"eu-1\",team=\"messaging\"} 1",
        "whatsapp_api_info{target=\"single\",version=\"v2.53.2\",api_status=\"stable\"} 1",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connecting\"} 0",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"disconnected\"} 0",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"uninitialized\"} 0",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"unregistered\"} 0",
        "whatsapp_socket_connection{target=\"single\",node=\"\",state=\"UP\"} 1",
        "whatsapp_socket_connection{target=\"single\",node=\"\",state=\"UP receiving offline\"} 0",
        "whatsapp_free_space_bytes{target=\"single\",node=\"\",volume=\"data\"} 9223372036853727000",
        "whatsapp_free_space_bytes{target=\"single\",node=\"\",volume=\"logs\"} 14269902848",
        "whatsapp_schema_version{target=\"single\",node=\"\",schema=\"message\"} 12",
        "whatsapp_schema_version{target=\"single\",node=\"\",schema=\"axolotl\"} 3",
        "whatsapp_multiconnect_enabled{target=\"single\",node=\"\"} 0",
        // Every reason is there from the first poll, at 0.
        "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"timeout\"} 0",
        "whatsapp_poll_errors_total{target=\"single\",endpoint=\"support\",reason=\"body_too_large\"} 0",
        "whatsapp_upstream_errors_total{target=\"single\",endpoint=\"health\"} 0",
        "whatsapp_build_info{target=\"single\",node=\"\",version=\"v2.53.2\",db_engine=\"MYSQL\",os_name=\"ubuntu-x86_64\",os_version=\"20.04\"} 1",
    ] {
        assert!(has_line(&metrics, line), "missing {line}\n{metrics}");
    }
    // A single instance has no role series.
    assert!(!metrics.contains("whatsapp_node_role{target=\"single\""));
    // The build expires 42 days after the simulator started; the clock is in step.
    let expiry = value(
        &metrics,
        "whatsapp_build_expiry_timestamp_seconds{target=\"single\",node=\"\"}",
    )
    .expect("build expiry");
    let expected =
        run.simulator.simulator().started_at().timestamp() as f64 + sim::EXPIRE_AFTER.as_secs_f64();
    assert!((expiry - expected).abs() <= 1.0, "{expiry} vs {expected}");
    let skew = value(
        &metrics,
        "whatsapp_clock_skew_seconds{target=\"single\",node=\"\"}",
    )
    .expect("clock skew");
    assert!(skew.abs() < 2.0, "{skew}");
    // User labels are on the info metric only.
    assert_eq!(metrics.matches("team=\"messaging\"").count(), 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_cluster_exact_lines() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let metrics = run.wait_for_lines(&["whatsapp_up{target=\"ha\"} 1"]).await;
    for (node, (role, status)) in sim::HA_NODES
        .iter()
        .zip(sim::HA_ROLES.iter().zip(sim::HA_GATEWAY_STATUS))
    {
        for known in ["primary_master", "secondary_master", "coreapp"] {
            let line = format!(
                "whatsapp_node_role{{target=\"ha\",node=\"{node}\",role=\"{known}\"}} {}",
                u8::from(known == *role)
            );
            assert!(has_line(&metrics, &line), "missing {line}\n{metrics}");
        }
        let line = format!(
            "whatsapp_gateway_status{{target=\"ha\",node=\"{node}\",status=\"{status}\"}} 1"
        );
        assert!(has_line(&metrics, &line), "missing {line}");
    }
    // Roles come from one endpoint only: three nodes x three roles.
    assert_eq!(
        family(&metrics, "whatsapp_node_role")
            .iter()
            .filter(|l| l.contains("target=\"ha\""))
            .count(),
        9
    );
    assert!(has_line(
        &metrics,
        "whatsapp_free_space_bytes{target=\"ha\",node=\"wa-ha-1:9f1c2a7b3d4e\",volume=\"data\"} 107374182400"
    ));
    assert!(has_line(
        &metrics,
        "whatsapp_build_info{target=\"ha\",node=\"wa-ha-3:c3d5e7f9a1b2\",version=\"v2.53.2\",db_engine=\"PGSQL\",os_name=\"ubuntu-x86_64\",os_version=\"20.04\"} 1"
    ));
    // Login only: health uses the Bearer token too, and one login served every poll.
    assert_eq!(run.simulator.simulator().logins(Cluster::Ha), 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiconnect_shards() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let [primary, secondary, core1, core2] = sim::MULTICONNECT_NODES;
    let metrics = run
        .wait_for_lines(&[
            &format!("whatsapp_node_shards{{target=\"mc\",node=\"{primary}\"}} 2"),
            &format!("whatsapp_node_shards{{target=\"mc\",node=\"{secondary}\"}} 0"),
            &format!("whatsapp_node_shards{{target=\"mc\",node=\"{core1}\"}} 1"),
            &format!("whatsapp_node_shards{{target=\"mc\",node=\"{core2}\"}} 1"),
        ])
        .await;
    for node in sim::MULTICONNECT_NODES {
        let line = format!("whatsapp_multiconnect_enabled{{target=\"mc\",node=\"{node}\"}} 1");
        assert!(has_line(&metrics, &line), "missing {line}");
    }
    assert!(has_line(
        &metrics,
        &format!("whatsapp_gateway_status{{target=\"mc\",node=\"{secondary}\",status=\"disconnected\"}} 1")
    ));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_transitions_and_vanishing_node() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&[
        "whatsapp_up{target=\"single\"} 1",
        "whatsapp_up{target=\"ha\"} 1",
    ])
    .await;
    for status in [
        "connecting",
        "disconnected",
        "uninitialized",
        "unregistered",
        "connected",
    ] {
        sim.set_gateway_status(Cluster::Single, None, status);
        run.wait_for_lines(&[&format!(
            "whatsapp_gateway_status{{target=\"single\",node=\"\",status=\"{status}\"}} 1"
        )])
        .await;
    }
    sim.set_socket_conn(Cluster::Single, None, "SC");
    run.wait_for_lines(&[
        "whatsapp_socket_connection{target=\"single\",node=\"\",state=\"SC\"} 1",
        "whatsapp_socket_connection{target=\"single\",node=\"\",state=\"UP\"} 0",
    ])
    .await;
    // A failover: the roles move with it.
    sim.set_role(Cluster::Ha, sim::HA_NODES[2], "secondary_master");
    sim.set_role(Cluster::Ha, sim::HA_NODES[1], "coreapp");
    run.wait_for_lines(&[
        &format!(
            "whatsapp_node_role{{target=\"ha\",node=\"{}\",role=\"coreapp\"}} 1",
            sim::HA_NODES[1]
        ),
        &format!(
            "whatsapp_node_role{{target=\"ha\",node=\"{}\",role=\"secondary_master\"}} 1",
            sim::HA_NODES[2]
        ),
    ])
    .await;
    // A node the next successful poll does not return vanishes at once.
    sim.remove_node(Cluster::Ha, sim::HA_NODES[0]);
    let metrics = run
        .wait_until(
            |m| !m.contains(sim::HA_NODES[0]),
            "the removed node to vanish",
        )
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"ha\"} 1"));
    assert!(metrics.contains(sim::HA_NODES[1]));
    run.stop().await;
}

/// A coreapp that answers 1011 "Service not ready" in place of its health: shown as such,
/// its siblings as usual, nothing skipped, and back to its status once it answers one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_answers_an_error_is_shown_beside_its_siblings() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&["whatsapp_up{target=\"ha\"} 1"]).await;
    let core = sim::HA_NODES[2];
    sim.set_node_error(Cluster::Ha, Some(core), Some((1011, "Service not ready")));
    let error_line = format!(
        "whatsapp_node_error_info{{target=\"ha\",node=\"{core}\",code=\"1011\",title=\"Service not ready\"}} 1"
    );
    let metrics = run.wait_for_lines(&[&error_line]).await;
    for status in whatsapp_exporter::providers::onprem::GATEWAY_STATUSES {
        let line = format!(
            "whatsapp_gateway_status{{target=\"ha\",node=\"{core}\",status=\"{status}\"}} 0"
        );
        assert!(has_line(&metrics, &line), "{line}\n{metrics}");
    }
    for (node, status) in [
        (sim::HA_NODES[0], sim::HA_GATEWAY_STATUS[0]),
        (sim::HA_NODES[1], sim::HA_GATEWAY_STATUS[1]),
    ] {
        let line = format!(
            "whatsapp_gateway_status{{target=\"ha\",node=\"{node}\",status=\"{status}\"}} 1"
        );
        assert!(has_line(&metrics, &line), "{line}\n{metrics}");
    }
    assert!(has_line(
        &metrics,
        &format!("whatsapp_node_role{{target=\"ha\",node=\"{core}\",role=\"coreapp\"}} 1")
    ));
    assert!(has_line(&metrics, "whatsapp_up{target=\"ha\"} 1"));
    assert!(has_line(
        &metrics,
        "whatsapp_items_skipped_total{target=\"ha\",endpoint=\"health\"} 0"
    ));
    common::promtool_check(&metrics);
    sim.set_node_error(Cluster::Ha, Some(core), None);
    let metrics = run
        .wait_until(
            |m| !m.contains("whatsapp_node_error_info{"),
            "the node error to go",
        )
        .await;
    assert!(has_line(
        &metrics,
        &format!(
            "whatsapp_gateway_status{{target=\"ha\",node=\"{core}\",status=\"{}\"}} 1",
            sim::HA_GATEWAY_STATUS[2]
        )
    ));
    run.stop().await;
}

/// One node of the answer that is not an object (health), one field that is not a number
/// (support): the node is skipped and counted, the field left out, the rest exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_odd_node_is_skipped_and_counted_alone() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&["whatsapp_up{target=\"ha\"} 1"]).await;
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::OddItem));
    sim.set_fault(Cluster::Ha, Endpoint::Support, Some(Fault::OddItem));
    let skipped = "whatsapp_items_skipped_total{target=\"ha\",endpoint=\"health\"}";
    let metrics = run
        .wait_until(|m| value(m, skipped).is_some_and(|v| v >= 1.0), skipped)
        .await;
    let [odd, second, third] = sim::HA_NODES;
    assert!(
        !family(&metrics, "whatsapp_gateway_status")
            .iter()
            .any(|l| l.contains(odd)),
        "{metrics}"
    );
    for line in [
        format!(
            "whatsapp_gateway_status{{target=\"ha\",node=\"{second}\",status=\"disconnected\"}} 1"
        ),
        format!("whatsapp_gateway_status{{target=\"ha\",node=\"{third}\",status=\"connected\"}} 1"),
        "whatsapp_up{target=\"ha\"} 1".to_owned(),
        "whatsapp_items_skipped_total{target=\"ha\",endpoint=\"support\"} 0".to_owned(),
    ] {
        assert!(has_line(&metrics, &line), "{line}\n{metrics}");
    }
    // Support: the odd node keeps its other volumes; only free_space_logs is left out.
    let volumes: Vec<&str> = family(&metrics, "whatsapp_free_space_bytes")
        .into_iter()
        .filter(|l| l.contains(&format!("target=\"ha\",node=\"{odd}\"")))
        .collect();
    assert!(
        volumes.iter().any(|l| l.contains("volume=\"data\"")),
        "{volumes:?}"
    );
    assert!(
        !volumes.iter().any(|l| l.contains("volume=\"logs\"")),
        "{volumes:?}"
    );
    sim.set_fault(Cluster::Ha, Endpoint::Health, None);
    sim.set_fault(Cluster::Ha, Endpoint::Support, None);
    run.wait_until(
        |m| {
            family(m, "whatsapp_gateway_status")
                .iter()
                .any(|l| l.contains(odd))
        },
        "the node back",
    )
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_values_pass_through() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::UnknownValue));
    sim.set_fault(
        Cluster::Single,
        Endpoint::Support,
        Some(Fault::UnknownValue),
    );
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"rebooting\"} 1",
            "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 0",
            "whatsapp_socket_connection{target=\"single\",node=\"\",state=\"XYZ\"} 1",
        ])
        .await;
    // An unknown value is data, not an error.
    assert!(has_line(&metrics, "whatsapp_up{target=\"single\"} 1"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_renewed_before_expiry_and_after_revocation() {
    // Tokens last 5 s: renewed at four fifths of their life, never used past expiry.
    let options = SimulatorOptions {
        token_ttl: Duration::from_secs(5),
        ..SimulatorOptions::default()
    };
    let run = common::start(options, three_clusters).await;
    let sim = run.simulator.simulator().clone();
    let metrics = run.wait_for_lines(&["whatsapp_up{target=\"ha\"} 1"]).await;
    let first_expiry = value(
        &metrics,
        "whatsapp_auth_token_expiry_timestamp_seconds{target=\"ha\"}",
    )
    .expect("token expiry exported");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        first_expiry > now && first_expiry <= now + 6.0,
        "{first_expiry} vs {now}"
    );
    let metrics = run
        .wait_until(
            |m| {
                value(
                    m,
                    "whatsapp_auth_token_expiry_timestamp_seconds{target=\"ha\"}",
                )
                .is_some_and(|e| e > first_expiry)
            },
            "a renewed token",
        )
        .await;
    assert!(sim.logins(Cluster::Ha) >= 2);
    // Renewal happens before expiry: no poll was refused.
    assert_eq!(common::poll_errors(&metrics, "ha"), 0.0, "{metrics}");
    // A revoked token: one new login, the poll still succeeds, nothing counted.
    let logins = sim.logins(Cluster::Ha);
    let support_requests = sim.requests(Cluster::Ha, Endpoint::Support);
    sim.revoke_tokens(Cluster::Ha);
    run.wait_until(
        |_| sim.requests(Cluster::Ha, Endpoint::Support) > support_requests + 2,
        "more support polls",
    )
    .await;
    let after = sim.logins(Cluster::Ha);
    assert!(after > logins, "no login after revocation");
    assert!(after <= logins + 2, "login storm: {logins} -> {after}");
    let metrics = run.metrics().await;
    assert!(
        has_line(&metrics, "whatsapp_up{target=\"ha\"} 1"),
        "{metrics}"
    );
    assert_eq!(common::poll_errors(&metrics, "ha"), 0.0, "{metrics}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_unauthorized_without_a_login_storm() {
    let run = common::start(SimulatorOptions::default(), |s| {
        let mut options = s.simulator().options().clone();
        options.password = "not-the-password".into();
        let mut text = global("300ms");
        text.push_str(&onprem_target(
            "ha",
            &s.base_url(Cluster::Ha),
            &options,
            Auth::Login,
        ));
        text
    })
    .await;
    let metrics = run
        .wait_until(
            |m| {
                value(m, "whatsapp_poll_errors_total{target=\"ha\",endpoint=\"support\",reason=\"unauthorized\"}")
                    .is_some_and(|v| v >= 3.0)
            },
            "three unauthorized polls",
        )
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"ha\"} 0"));
    // At most one login per endpoint poll: no retry loop on a refused login.
    let polls = run
        .simulator
        .simulator()
        .requests(Cluster::Ha, Endpoint::Login);
    let errors = value(&metrics, "whatsapp_poll_errors_total{target=\"ha\",endpoint=\"health\",reason=\"unauthorized\"}").unwrap_or(0.0)
        + value(&metrics, "whatsapp_poll_errors_total{target=\"ha\",endpoint=\"support\",reason=\"unauthorized\"}").unwrap_or(0.0);
    assert!(
        polls as f64 <= errors + 2.0,
        "{polls} logins for {errors} failed polls"
    );
    // The password is in no line of /metrics.
    assert!(!metrics.contains("not-the-password"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_is_honoured() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&["whatsapp_up{target=\"single\"} 1"])
        .await;
    sim.set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::TooManyRequests {
            retry_after: Some("2".into()),
        }),
    );
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"rate_limited\"} 1",
            "whatsapp_poll_success{target=\"single\",endpoint=\"health\"} 0",
            "whatsapp_up{target=\"single\"} 0",
        ])
        .await;
    // The data of the last good poll stays while it is fresh.
    assert!(has_line(
        &metrics,
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1"
    ));
    // Retry-After: 2 holds the next poll back for two seconds although the interval is
    // 300 ms.
    let requests = sim.requests(Cluster::Single, Endpoint::Health);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.requests(Cluster::Single, Endpoint::Health), requests);
    // The other targets kept polling meanwhile.
    let ha_polls = sim.requests(Cluster::Ha, Endpoint::Health);
    assert!(ha_polls > 3, "{ha_polls}");
    sim.set_fault(Cluster::Single, Endpoint::Health, None);
    run.wait_for_lines(&["whatsapp_up{target=\"single\"} 1"])
        .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_without_retry_after_backs_off() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&["whatsapp_up{target=\"single\"} 1"])
        .await;
    sim.set_fault(
        Cluster::Single,
        Endpoint::Health,
        Some(Fault::ServiceUnavailable { retry_after: None }),
    );
    run.wait_until(
        |m| {
            value(m, "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"rate_limited\"}")
                .is_some_and(|v| v >= 1.0)
        },
        "a rate-limited poll",
    )
    .await;
    // While refused, each poll waits the interval plus a backoff of half to one more
    // interval: in three seconds at most 3000 / 450 + 1 polls, where the plain interval
    // would give ten.
    let before = sim.requests(Cluster::Single, Endpoint::Health);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = sim.requests(Cluster::Single, Endpoint::Health) - before;
    assert!(
        (3..=7).contains(&polls),
        "{polls} polls in 3 s at a 300 ms interval"
    );
    // Recovery brings the normal pace back.
    sim.set_fault(Cluster::Single, Endpoint::Health, None);
    run.wait_for_lines(&["whatsapp_up{target=\"single\"} 1"])
        .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_data_goes_after_stale_after_and_poll_series_stay() {
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let mut text = global("300ms");
        text.push_str(&onprem_target(
            "single",
            &s.base_url(Cluster::Single),
            o,
            Auth::ApiKey,
        ));
        text.push_str("    stale_after: 1500ms\n");
        text
    })
    .await;
    let sim = run.simulator.simulator().clone();
    run.wait_for_lines(&[
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1",
    ])
    .await;
    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Status(500)));
    let failing = run
        .wait_for_lines(&["whatsapp_poll_success{target=\"single\",endpoint=\"health\"} 0"])
        .await;
    // Kept while younger than stale_after (the failure came within a poll or two).
    assert!(
        has_line(
            &failing,
            "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1"
        ),
        "{failing}"
    );
    let stale = run.wait_for_absence("whatsapp_gateway_status{").await;
    assert!(!stale.contains("whatsapp_api_info{"));
    for line in [
        "whatsapp_up{target=\"single\"} 0",
        "whatsapp_poll_success{target=\"single\",endpoint=\"health\"} 0",
        "whatsapp_target_info{target=\"single\",type=\"onprem\"} 1",
    ] {
        assert!(has_line(&stale, line), "missing {line}\n{stale}");
    }
    assert!(stale.contains(
        "whatsapp_last_poll_success_timestamp_seconds{target=\"single\",endpoint=\"health\"}"
    ));
    assert!(stale.contains(
        "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"http_status\"}"
    ));
    sim.set_fault(Cluster::Single, Endpoint::Health, None);
    run.wait_for_lines(&[
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1",
    ])
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_and_gzip_when_asked() {
    let run = common::start(SimulatorOptions::default(), three_clusters).await;
    run.wait_for_lines(&["whatsapp_up{target=\"single\"} 1"])
        .await;
    let client = reqwest::Client::builder().build().unwrap();
    let response = client
        .get(format!("{}/metrics", run.url))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE whatsapp_target info\n"));
    let plain = client
        .get(format!("{}/metrics", run.url))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.headers()["content-encoding"], "gzip");
    assert_eq!(
        plain.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let compressed = plain.bytes().await.unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("# TYPE whatsapp_target_info gauge\n"));
    assert!(!text.contains("# EOF"));
    run.stop().await;
}
