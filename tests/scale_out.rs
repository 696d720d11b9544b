//! Scale-out on Prometheus' own machinery: three sharded processes of the real binary over
//! one config, `/probe` scraped by a real Prometheus, and target files re-read when they
//! change.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{has_line, value};
use whatsapp_exporter::exporter::Options;
use whatsapp_exporter::simulator::{
    Cluster, Endpoint, Fault, RateLimit, SimulatorHandle, SimulatorOptions,
};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");

/// A child process killed (by its pid) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn no_rate_limit() -> SimulatorOptions {
    SimulatorOptions {
        rate_limit: None::<RateLimit>,
        ..SimulatorOptions::default()
    }
}

/// `count` On-Premises targets on the simulator's single instance, by API key.
fn fleet(s: &SimulatorHandle, names: &[String]) -> String {
    let o = s.simulator().options();
    let mut text = common::global("1s");
    for name in names {
        text.push_str(&common::onprem_target(
            name,
            &s.base_url(Cluster::Single),
            o,
            common::Auth::ApiKey,
        ));
    }
    text
}

/// Starts a shard of the real binary; returns it and its /metrics URL.
fn start_shard(config: &Path, index: u32, count: u32) -> (Process, String) {
    let mut child = Command::new(BIN)
        .args([
            "--web.listen-address=127.0.0.1:0",
            "--log.format=json",
            &format!("--shard.count={count}"),
            &format!("--shard.index=whatsapp-exporter-{index}"),
            "--config.file",
        ])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let process = Process(child);
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the exporter logs its address")
            .unwrap();
        if line.contains("whatsapp-exporter listening") {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap();
            break json["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep reading the log so the pipe never fills.
    std::thread::spawn(move || for _ in lines {});
    (process, format!("http://{address}/metrics"))
}

/// The targets a shard polls: those with a whatsapp_up series, once it has polled them all.
async fn polled(url: &str, expected_up: impl Fn(&BTreeSet<String>) -> bool) -> BTreeSet<String> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(url).send().await {
            let body = response.text().await.unwrap_or_default();
            let up: BTreeSet<String> = body
                .lines()
                .filter_map(|l| l.strip_prefix("whatsapp_up{target=\""))
                .filter(|l| l.ends_with("\"} 1"))
                .map(|l| l.trim_end_matches("\"} 1").to_owned())
                .collect();
            let info: BTreeSet<String> = body
                .lines()
                .filter_map(|l| l.strip_prefix("whatsapp_target_info{target=\""))
                .filter_map(|l| l.split('"').next())
                .map(str::to_owned)
                .collect();
            if up == info && expected_up(&up) {
                return up;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{url}: the shard never polled its targets"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_poll_every_target_exactly_once_across_restarts_and_reloads() {
    let simulator = common::simulator(no_rate_limit()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let names: Vec<String> = (0..30).map(|i| format!("number-{i:02}")).collect();
    std::fs::write(&config, fleet(&simulator, &names)).unwrap();
    let mut shards: Vec<(Process, String)> = (0..3).map(|i| start_shard(&config, i, 3)).collect();
    let mut owned = Vec::new();
    for (_, url) in &shards {
        owned.push(polled(url, |up| !up.is_empty()).await);
    }
    // Exactly once: disjoint, and together every target.
    let all: BTreeSet<String> = names.iter().cloned().collect();
    let union: BTreeSet<String> = owned.iter().flatten().cloned().collect();
    assert_eq!(union, all);
    assert_eq!(
        owned.iter().map(BTreeSet::len).sum::<usize>(),
        names.len(),
        "{owned:?}"
    );

    // A restarted replica polls the same targets.
    let restarted = 1;
    drop(shards.remove(restarted));
    shards.insert(restarted, start_shard(&config, restarted as u32, 3));
    let again = polled(&shards[restarted].1, |up| !up.is_empty()).await;
    assert_eq!(again, owned[restarted]);

    // A reload that adds targets keeps every existing one where it was.
    let mut more = names.clone();
    more.extend((30..36).map(|i| format!("number-{i:02}")));
    std::fs::write(&config, fleet(&simulator, &more)).unwrap();
    for (process, _) in &shards {
        let status = Command::new("kill")
            .args(["-HUP", &process.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // Wait until the three shards together poll every target of the new config.
    let started = Instant::now();
    let after = loop {
        let mut sets = Vec::new();
        for (_, url) in &shards {
            sets.push(polled(url, |_| true).await);
        }
        if sets.iter().map(BTreeSet::len).sum::<usize>() >= more.len() {
            break sets;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{sets:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (i, set) in after.iter().enumerate() {
        assert!(
            set.is_superset(&owned[i]),
            "shard {i} lost targets on reload"
        );
    }
    let union: BTreeSet<String> = after.iter().flatten().cloned().collect();
    assert_eq!(union, more.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(after.iter().map(BTreeSet::len).sum::<usize>(), more.len());
    simulator.shutdown().await;
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_polls_one_target_now_and_a_failure_is_data() {
    let run = common::start_with(
        SimulatorOptions::default(),
        |s| {
            let o = s.simulator().options();
            let mut text = common::global("10s");
            text.push_str(&common::onprem_target(
                "single",
                &s.base_url(Cluster::Single),
                o,
                common::Auth::ApiKeyAndLogin,
            ));
            text.push_str(&common::onprem_target(
                "ha",
                &s.base_url(Cluster::Ha),
                o,
                common::Auth::Login,
            ));
            text
        },
        None,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .await;
    let sim = run.simulator.simulator().clone();
    // No background polling: /metrics has no target series, and nothing is polled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = run.metrics().await;
    assert!(!metrics.contains("whatsapp_up{"), "{metrics}");
    assert!(has_line(&metrics, "whatsapp_exporter_targets 0"));
    assert_eq!(sim.requests(Cluster::Single, Endpoint::Health), 0);

    let probe = format!("{}/probe?target=single", run.url);
    let (status, body) = get(&probe, &[]).await;
    assert_eq!(status, 200);
    for line in [
        "whatsapp_up{target=\"single\"} 1",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"connected\"} 1",
        "whatsapp_target_info{target=\"single\",type=\"onprem\"} 1",
    ] {
        assert!(has_line(&body, line), "missing {line}\n{body}");
    }
    // Its metrics only: no other target, no exporter metrics.
    assert!(!body.contains("target=\"ha\""));
    assert!(!body.contains("whatsapp_exporter_"));
    common::promtool_check(&body);
    // The login is kept between probes.
    for _ in 0..3 {
        assert_eq!(get(&probe, &[]).await.0, 200);
    }
    assert_eq!(sim.logins(Cluster::Single), 1);

    // A failed poll is data: HTTP 200 and whatsapp_up 0, with its reason counted.
    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Status(502)));
    let (status, body) = get(&probe, &[]).await;
    assert_eq!(status, 200);
    assert!(
        has_line(&body, "whatsapp_up{target=\"single\"} 0"),
        "{body}"
    );
    assert_eq!(
        value(&body, "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"http_status\"}"),
        Some(1.0)
    );
    // The scrape timeout bounds the probe: a hanging upstream, a 10 s target timeout, and
    // a 1 s scrape timeout give an answer in about half a second.
    sim.set_fault(Cluster::Single, Endpoint::Health, Some(Fault::Hang));
    let started = Instant::now();
    let (status, body) = get(&probe, &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(950), "{took:?}");
    assert_eq!(
        value(
            &body,
            "whatsapp_poll_errors_total{target=\"single\",endpoint=\"health\",reason=\"timeout\"}"
        ),
        Some(1.0),
        "{body}"
    );
    sim.set_fault(Cluster::Single, Endpoint::Health, None);

    // Asking for nothing, or for a target that is not configured, is the caller's error.
    let (status, body) = get(&format!("{}/probe", run.url), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "target parameter is missing: /probe?target=<name of a configured target>\n"
        )
    );
    let (status, body) = get(&format!("{}/probe?target=nope", run.url), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "unknown target \"nope\": /probe takes the name of a configured target\n"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_two_targets_through_probe() {
    let run = common::start_with(
        SimulatorOptions::default(),
        |s| {
            let o = s.simulator().options();
            let mut text = common::global("10s");
            text.push_str(&common::onprem_target(
                "single",
                &s.base_url(Cluster::Single),
                o,
                common::Auth::ApiKey,
            ));
            text.push_str(&format!(
                "  - name: d360\n    type: dialog360\n    base_url: {}\n    api_key: {}\n",
                s.dialog360_base_url(),
                o.dialog360_api_keys[0]
            ));
            text
        },
        None,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .await;
    let exporter = run.url.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The README's scrape config for /probe, pointed at this exporter.
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: whatsapp-probe\n    metrics_path: /probe\n    scrape_timeout: 1s\n\
         \x20   static_configs:\n      - targets: [single, d360]\n\
         \x20   relabel_configs:\n\
         \x20     - source_labels: [__address__]\n        target_label: __param_target\n\
         \x20     - source_labels: [__param_target]\n        target_label: instance\n\
         \x20     - target_label: __address__\n        replacement: {exporter}\n"
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(&config_path)
        .output()
        .expect("promtool is installed (tests/run.sh installs Debian's prometheus package)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Process(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (tests/run.sh installs Debian's prometheus package)"),
    );
    let client = reqwest::Client::new();
    let query = |expr: &'static str| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", expr)])
                .send()
                .await
                .ok()?;
            let json: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
            json["data"]["result"].as_array().cloned()
        }
    };
    let started = Instant::now();
    let result = loop {
        let result = query("whatsapp_up{job=\"whatsapp-probe\"} == 1")
            .await
            .unwrap_or_default();
        if result.len() == 2 {
            break result;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus never scraped both targets through /probe: {result:?}; log in {}",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let instances: BTreeSet<String> = result
        .iter()
        .map(|r| format!("{}={}", r["metric"]["instance"], r["metric"]["target"]))
        .collect();
    assert_eq!(
        instances,
        BTreeSet::from([
            "\"d360\"=\"d360\"".to_owned(),
            "\"single\"=\"single\"".to_owned()
        ])
    );
    // The targets' data came through too.
    let data = query("whatsapp_gateway_status{job=\"whatsapp-probe\",status=\"connected\"} == 1")
        .await
        .unwrap_or_default();
    assert_eq!(data.len(), 1, "{data:?}");
    let health =
        query("whatsapp_messaging_health_status{job=\"whatsapp-probe\",status=\"AVAILABLE\"} == 1")
            .await
            .unwrap_or_default();
    assert_eq!(health.len(), 1, "{health:?}");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_files_are_reread_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let targets = dir.path().join("targets");
    std::fs::create_dir(&targets).unwrap();
    let simulator_for_files = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let shared = simulator_for_files.clone();
    let run = common::start_with_file(
        SimulatorOptions::default(),
        move |s| {
            let o = s.simulator().options();
            *shared.lock().unwrap() = Some((s.base_url(Cluster::Ha), o.api_key.clone()));
            let mut text = common::global("300ms");
            text.insert_str(0, "target_files: [\"targets/*.yaml\"]\n");
            text = text.replace(
                "  timeout: 300ms\n",
                "  timeout: 300ms\n  target_files_refresh_interval: 200ms\n",
            );
            text.push_str(&common::onprem_target(
                "inline",
                &s.base_url(Cluster::Single),
                o,
                common::Auth::ApiKey,
            ));
            text
        },
        Some(&config),
    )
    .await;
    let (base, key) = simulator_for_files.lock().unwrap().clone().unwrap();
    let target = |name: &str| {
        format!("- name: {name}\n  type: onprem\n  base_url: {base}\n  api_key: {key}\n")
    };
    run.wait_for_lines(&["whatsapp_up{target=\"inline\"} 1"])
        .await;

    // A new file: its targets start.
    std::fs::write(targets.join("a.yaml"), target("from-file-a")).unwrap();
    run.wait_for_lines(&["whatsapp_up{target=\"from-file-a\"} 1"])
        .await;
    // A changed file: a target added, none lost.
    std::fs::write(
        targets.join("a.yaml"),
        format!("{}{}", target("from-file-a"), target("from-file-b")),
    )
    .unwrap();
    let metrics = run
        .wait_for_lines(&["whatsapp_up{target=\"from-file-b\"} 1"])
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"from-file-a\"} 1"));
    // An invalid file: refused, the running targets stay, the failure is counted.
    std::fs::write(
        targets.join("bad.yaml"),
        "- name: broken\n  type: onprem\n  bogus: 1\n",
    )
    .unwrap();
    let metrics = run
        .wait_for_lines(&["whatsapp_exporter_config_last_reload_successful 0"])
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"from-file-b\"} 1"));
    assert!(!metrics.contains("target=\"broken\""));
    // Fixed by removing it, and a file removed: its targets vanish.
    std::fs::remove_file(targets.join("bad.yaml")).unwrap();
    std::fs::write(targets.join("a.yaml"), target("from-file-b")).unwrap();
    let metrics = run
        .wait_until(
            |m| {
                !m.contains("target=\"from-file-a\"")
                    && has_line(m, "whatsapp_exporter_config_last_reload_successful 1")
            },
            "from-file-a to vanish",
        )
        .await;
    assert!(has_line(&metrics, "whatsapp_up{target=\"from-file-b\"} 1"));
    assert!(has_line(&metrics, "whatsapp_up{target=\"inline\"} 1"));
    run.stop().await;
}
