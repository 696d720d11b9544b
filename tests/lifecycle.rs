//! Reloads through the library's server, and the real binary: --config.check, --version,
//! SIGHUP, SIGTERM, and the demo's /metrics through `promtool check metrics`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{global, has_line, onprem_target, value, Auth};
use whatsapp_exporter::exposition::Family;
use whatsapp_exporter::simulator::{Cluster, SimulatorHandle, SimulatorOptions};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");

fn config(s: &SimulatorHandle, clusters: &[(&str, Cluster)]) -> String {
    let o = s.simulator().options();
    let mut text = global("300ms");
    for (name, cluster) in clusters {
        text.push_str(&onprem_target(name, &s.base_url(*cluster), o, Auth::ApiKey));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_targets_and_rejects_invalid_configs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let run = common::start_with_file(
        SimulatorOptions::default(),
        |s| config(s, &[("first", Cluster::Single), ("second", Cluster::Ha)]),
        Some(&path),
    )
    .await;
    run.wait_for_lines(&[
        "whatsapp_up{target=\"first\"} 1",
        "whatsapp_up{target=\"second\"} 1",
        "whatsapp_exporter_config_last_reload_successful 1",
        "whatsapp_exporter_targets 2",
    ])
    .await;
    // "first" keeps running across the reload: its counter of successes is not reset.
    let sim = run.simulator.simulator().clone();
    std::fs::write(
        &path,
        config(
            &run.simulator,
            &[("first", Cluster::Single), ("third", Cluster::Multiconnect)],
        ),
    )
    .unwrap();
    let response = run.post("/-/reload").await;
    assert_eq!(response.status(), 200);
    let metrics = run
        .wait_for_lines(&[
            "whatsapp_up{target=\"third\"} 1",
            "whatsapp_exporter_targets 2",
        ])
        .await;
    assert!(!metrics.contains("target=\"second\""), "{metrics}");
    assert!(has_line(
        &metrics,
        "whatsapp_exporter_config_reloads_total{result=\"success\"} 2"
    ));
    let reloaded_at = value(
        &metrics,
        "whatsapp_exporter_config_last_reload_success_timestamp_seconds",
    )
    .expect("reload timestamp");
    assert!(reloaded_at > 1.7e9);

    // An invalid config: refused with its error, the running config stays.
    std::fs::write(
        &path,
        "targets:\n  - name: x\n    type: onprem\n    bogus_key: 1\n",
    )
    .unwrap();
    let response = run.post("/-/reload").await;
    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(body.contains("unknown field `bogus_key`"), "{body}");
    assert!(body.contains("line 4"), "{body}");
    let requests = sim.requests(
        Cluster::Multiconnect,
        whatsapp_exporter::simulator::Endpoint::Health,
    );
    let metrics = run
        .wait_until(
            |_| {
                sim.requests(
                    Cluster::Multiconnect,
                    whatsapp_exporter::simulator::Endpoint::Health,
                ) > requests + 1
            },
            "the old config to keep polling",
        )
        .await;
    for line in [
        "whatsapp_exporter_config_last_reload_successful 0",
        "whatsapp_exporter_config_reloads_total{result=\"failure\"} 1",
        "whatsapp_up{target=\"first\"} 1",
        "whatsapp_up{target=\"third\"} 1",
    ] {
        assert!(has_line(&metrics, line), "missing {line}\n{metrics}");
    }
    assert!(!metrics.contains("target=\"x\""));
    // GET is not a reload.
    assert_eq!(run.get("/-/reload").await.status(), 405);
    assert_eq!(run.get("/-/healthy").await.status(), 200);
    assert_eq!(run.get("/-/ready").await.status(), 200);
    assert_eq!(run.get("/nope").await.status(), 404);
    run.stop().await;
}

#[test]
fn config_check_of_the_example_and_of_a_bad_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let text = std::fs::read_to_string(example).expect("config.example.yaml exists");
    // Give every ${VAR} the example uses a value of a valid length.
    let mut command = Command::new(BIN);
    for var in text
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
    {
        command.env(var, "example-secret-value-0123");
    }
    let out = command
        .args(["--config.check", "--config.file", example])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("SUCCESS: "), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "global:\n  interval: 30s\ntargets:\n  - name: a\n    type: onprem\n    base_url: http://h\n    api_key: abcdefghijklmnop\n    intervall: 5s\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config.check", "--config.file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "FAILED: {}: targets[0]: unknown field `intervall`",
            bad.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("at line 8"), "{stdout}");

    // So are shard flags that cannot work.
    let out = Command::new(BIN)
        .args([
            "--config.check",
            "--shard.count=3",
            "--shard.index=pod-3",
            "--config.file",
            example,
        ])
        .envs(
            text.split("${")
                .skip(1)
                .filter_map(|rest| rest.split('}').next())
                .map(|v| (v, "example-secret-value-0123")),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "FAILED: --shard.index 3 is not below --shard.count 3\n"
    );

    // A TLS file that cannot be used is found by the check too; the first target that
    // uses it is named.
    let tls = dir.path().join("tls.yaml");
    let tls_target = |name: &str| {
        format!("  - name: {name}\n    type: onprem\n    base_url: https://h\n    api_key: abcdefghijklmnop\n    tls_config:\n      ca_file: /nonexistent/ca.pem\n")
    };
    std::fs::write(
        &tls,
        format!(
            "targets:\n  - {{name: plain, type: onprem, base_url: \"https://h\", api_key: abcdefghijklmnop}}\n{}{}",
            tls_target("a"),
            tls_target("b")
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config.check", "--config.file"])
        .arg(&tls)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "FAILED: target \"a\": tls_config: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)\n"
    );

    // So are the webhook receiver's secret files and its TLS file, read as at start.
    let webhooks = dir.path().join("webhooks.yaml");
    let targets = "targets:\n  - name: a\n    type: onprem\n    base_url: http://h\n    api_key: abcdefghijklmnop\n";
    let check = |section: &str| {
        std::fs::write(&webhooks, format!("{targets}webhooks:\n{section}")).unwrap();
        let out = Command::new(BIN)
            .args(["--config.check", "--config.file"])
            .arg(&webhooks)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        check("  app_secret_file: /nonexistent/app-secret\n"),
        (
            Some(1),
            "FAILED: webhooks: cannot read secret file /nonexistent/app-secret: No such file or directory (os error 2)\n".to_owned()
        )
    );
    let secret = dir.path().join("app-secret");
    std::fs::write(&secret, "webhook-app-secret-0123\n").unwrap();
    let (code, stdout) = check(&format!(
        "  app_secret_file: {}\n  web_config_file: /nonexistent/web.yml\n",
        secret.display()
    ));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with("FAILED: webhooks: web_config_file: ")
            && stdout.contains("/nonexistent/web.yml"),
        "{stdout}"
    );
    let (code, stdout) = check(&format!("  app_secret_file: {}\n", secret.display()));
    assert_eq!(
        (code, stdout),
        (
            Some(0),
            format!("SUCCESS: {} is valid: 1 target(s)\n", webhooks.display())
        )
    );

    // Starting with a bad config exits 1 with the same message.
    let out = Command::new(BIN)
        .args(["--web.listen-address", "127.0.0.1:0", "--config.file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `intervall`"), "{stderr}");
}

#[test]
fn version_names_the_revision() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "whatsapp-exporter {} (revision ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

/// A child process that is killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads stdout lines until one starts with `prefix`; returns its rest.
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, prefix: &str) -> String {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim_start().strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
    panic!("no line starting with {prefix:?}");
}

fn scrape(url: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(response) = http_get::get(url) {
            return response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{url} never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod http_get {
    /// A tiny blocking GET over std, so the binary tests need no runtime.
    pub fn get(url: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = std::net::TcpStream::connect(host)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if !head.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(head.to_owned()));
        }
        Ok(body.to_owned())
    }
}

fn wait_for(url: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let body = scrape(url);
        if done(&body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "condition never met; last body:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_output_passes_promtool_and_stops_on_sigterm() {
    let child = Command::new(BIN)
        .args([
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--interval",
            "1s",
            "--step",
            "3s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut process = Process(child);
    let stdout = process.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = read_until(&mut lines, "metrics:");
    // Every family of the contract, and the exporter's own, is in the demo's output once
    // the scenario has moved a step (step 1 has an HA node answer an error in place of its
    // status, for whatsapp_node_error_info, until step 2).
    let mut names: Vec<String> = Family::ALL.iter().map(|f| f.name().to_owned()).collect();
    names.extend(
        [
            "whatsapp_exporter_build_info",
            "whatsapp_exporter_config_last_reload_successful",
            "whatsapp_exporter_config_last_reload_success_timestamp_seconds",
            "whatsapp_exporter_config_reloads_total",
            "whatsapp_exporter_targets",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ]
        .map(String::from),
    );
    let present = |m: &str, name: &str| {
        m.contains(&format!("\n{name}{{")) || m.contains(&format!("\n{name} "))
    };
    let targets = [
        "onprem-single",
        "onprem-ha",
        "onprem-multiconnect",
        "cloud-acme",
        "dialog360-sales",
        "kapso-support",
        "kapso-project",
    ];
    let metrics = wait_for(&url, |m| {
        names.iter().all(|name| present(m, name))
            && targets
                .iter()
                .all(|t| m.contains(&format!("whatsapp_up{{target=\"{t}\"}} 1")))
    });
    // promtool lints the real output: no finding, exit 0.
    common::promtool_check(&metrics);
    // SIGTERM: a clean exit within a few seconds.
    signal(&process.0, "TERM");
    let started = Instant::now();
    loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no exit 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reloads_on_sighup() {
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config(&simulator, &[("first", Cluster::Single)])).unwrap();
    let child = Command::new(BIN)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--config.file",
        ])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut process = Process(child);
    let stderr = process.0.stderr.take().unwrap();
    // The listening address is in the first log line.
    let (address, mut logs) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("whatsapp-exporter listening") {
                let value: serde_json::Value = serde_json::from_str(&line).unwrap();
                let address = value["fields"]["address"].as_str().unwrap().to_owned();
                return (address, lines);
            }
        }
        panic!("no listening line");
    })
    .await
    .unwrap();
    let url = format!("http://{address}/metrics");
    let wait = |predicate: fn(&str) -> bool| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || wait_for(&url, predicate))
    };
    wait(|m| m.contains("whatsapp_up{target=\"first\"} 1"))
        .await
        .unwrap();
    std::fs::write(&path, config(&simulator, &[("second", Cluster::Ha)])).unwrap();
    signal(&process.0, "HUP");
    let metrics = wait(|m| m.contains("whatsapp_up{target=\"second\"} 1"))
        .await
        .unwrap();
    assert!(!metrics.contains("target=\"first\""));
    signal(&process.0, "TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = process.0.wait().unwrap();
        // The log says why the reload happened and that it worked.
        let rest: Vec<String> = logs.by_ref().map_while(Result::ok).collect();
        (status, rest)
    })
    .await
    .unwrap();
    assert!(status.0.success());
    let log = status.1.join("\n");
    assert!(log.contains("SIGHUP: reloading the configuration"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(
        !log.contains(&simulator.simulator().options().api_key),
        "secret in the log"
    );
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_closes_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let run = common::start(SimulatorOptions::default(), |_| "targets: []\n".into()).await;
    let address = run.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = vec![0u8; 1024];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    // The connection is idle and kept alive; stopping the server must close it, or a
    // scraper would go on scraping a stopped exporter.
    let started = Instant::now();
    run.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer))
        .await
        .expect("the connection is closed, not left open");
    assert_eq!(read.unwrap_or(0), 0, "the connection still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_share_one_encoding_until_the_data_changes() {
    use std::io::Read;
    use whatsapp_exporter::exposition::Format;
    // An hour-long interval: the target's first poll is somewhere in the hour, so nothing
    // changes its data during the test once its task has published its request counters
    // (at 0, before any poll); it has its info series from the start.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let run = common::start_with_file(
        SimulatorOptions::default(),
        |s| {
            let o = s.simulator().options();
            let mut text = "global:\n  interval: 1h\n  timeout: 10s\ntargets:\n".to_owned();
            text.push_str(&common::onprem_target(
                "single",
                &s.base_url(Cluster::Single),
                o,
                common::Auth::ApiKey,
            ));
            text
        },
        Some(&path),
    )
    .await;
    run.wait_for_lines(&[
        "whatsapp_upstream_requests_total{target=\"single\",endpoint=\"health\"} 0",
    ])
    .await;
    let first = run.exporter.exposition(Format::Text, false);
    let second = run.exporter.exposition(Format::Text, false);
    let targets_part = |body: &whatsapp_exporter::exposition::Body| {
        let bytes: Vec<u8> = body.shared.iter().flat_map(|c| c.to_vec()).collect();
        String::from_utf8(bytes).unwrap()
    };
    assert!(targets_part(&first)
        .contains("whatsapp_target_info{target=\"single\",type=\"onprem\"} 1\n"));
    // The targets' part is the same buffers, not an equal copy: nothing was encoded again.
    assert!(Arc::ptr_eq(&first.shared, &second.shared));
    // The exporter's own part is fresh at every scrape.
    assert_ne!(first.own[0].as_ptr(), second.own[0].as_ptr());
    let gz1 = run.exporter.exposition(Format::Text, true);
    let gz2 = run.exporter.exposition(Format::Text, true);
    assert!(
        Arc::ptr_eq(&gz1.shared, &gz2.shared),
        "the compressed part is cached too"
    );
    // What is sent decompresses, as one gzip member, to the plain body.
    let stream = gz1.to_vec();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&stream[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with(&targets_part(&first)));
    assert!(text.contains("whatsapp_exporter_build_info{"));
    let open_metrics = run.exporter.exposition(Format::OpenMetrics, false);
    assert!(std::str::from_utf8(&open_metrics.own[0])
        .unwrap()
        .ends_with("# EOF\n"));
    // A reload (a change of the set of targets) makes a new encoding.
    assert_eq!(run.post("/-/reload").await.status(), 200);
    let third = run.exporter.exposition(Format::Text, false);
    assert!(!Arc::ptr_eq(&third.shared, &first.shared));
    assert_eq!(targets_part(&third), targets_part(&first));
    run.stop().await;
}
