//! Faults around the real binary: reloads under scrape load, a hanging upstream, every
//! upstream down, SIGTERM with polls in flight, and slow clients of the exporter's own
//! server. The upstreams are the library's simulator, on 127.0.0.1 in this process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{has_line, onprem_target, value, Auth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whatsapp_exporter::simulator::{Cluster, Endpoint, Fault, SimulatorHandle, SimulatorOptions};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");

/// How long any wait on the daemon may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// The exporter binary, killed when the test ends however it ends, with its JSON log
/// lines collected as they come.
struct Daemon {
    child: Child,
    url: String,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    http: reqwest::Client,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
                "--config.file",
            ])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let reader = {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("whatsapp-exporter listening") {
                        let address = serde_json::from_str::<serde_json::Value>(&line)
                            .ok()
                            .and_then(|v| v["fields"]["address"].as_str().map(str::to_owned));
                        let _ = address_tx.send(address);
                    }
                    logs.lock().unwrap().push(line);
                }
            })
        };
        let address = match address_rx.recv_timeout(WAIT_LIMIT) {
            Ok(Some(address)) => address,
            other => {
                let _ = child.kill();
                panic!(
                    "no listening address ({other:?}); log:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Daemon {
            child,
            url: format!("http://{address}"),
            logs,
            reader: Some(reader),
            // No pooled connection: every request is a connection of its own, so the
            // exporter's count of open files does not depend on this client.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("/metrics answers");
        assert_eq!(response.status(), 200);
        response.text().await.expect("a body")
    }

    async fn reload(&self) -> reqwest::Response {
        self.http
            .post(format!("{}/-/reload", self.url))
            .send()
            .await
            .expect("/-/reload answers")
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let metrics = self.metrics().await;
            if done(&metrics) {
                return metrics;
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "waited {WAIT_LIMIT:?} for {what}; last /metrics:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its status and whole log.
    fn wait_for_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < limit,
                "still running {limit:?} after the signal"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.logs.lock().unwrap().clone())
    }
}

fn gauge(metrics: &str, series: &str) -> f64 {
    value(metrics, series).unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// A target name whose first poll comes within half a second of the start: a target's
/// polls are spread over its interval by a hash of its name.
fn early_name(prefix: &str, interval: Duration) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|name| whatsapp_exporter::poller::phase(name, interval) < Duration::from_millis(500))
        .expect("some name polls early")
}

fn onprem_config(
    simulator: &SimulatorHandle,
    interval: &str,
    targets: &[(&str, Cluster)],
) -> String {
    let options = simulator.simulator().options();
    let mut text = common::global(interval);
    for (name, cluster) in targets {
        text.push_str(&onprem_target(
            name,
            &simulator.base_url(*cluster),
            options,
            Auth::ApiKey,
        ));
    }
    text
}

/// What must come back to where it was once a burst of work is over.
#[derive(Debug, Clone, Copy)]
struct Resources {
    fds: f64,
    poller_tasks: f64,
    runtime_tasks: f64,
    resident_bytes: f64,
}

impl Resources {
    fn of(metrics: &str) -> Resources {
        Resources {
            fds: gauge(metrics, "process_open_fds"),
            poller_tasks: gauge(metrics, "whatsapp_exporter_poller_tasks"),
            runtime_tasks: gauge(metrics, "whatsapp_exporter_runtime_alive_tasks"),
            resident_bytes: gauge(metrics, "process_resident_memory_bytes"),
        }
    }
}

/// Open files and runtime tasks may differ from a baseline by the idle keep-alive
/// connections of the exporter's HTTP client to the simulator (one file and one task
/// each), which depend on how many polls happened to overlap; a leak per reload or per
/// connection would be tens or hundreds above.
const POOL_SLACK: f64 = 6.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_reloads_under_scrape_load_leak_nothing() {
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    // "keep" is in every valid config; "gen-N" is new at every valid reload, so each one
    // starts a task and stops another.
    let valid = |n: usize| {
        onprem_config(
            &simulator,
            "200ms",
            &[
                ("keep", Cluster::Single),
                (&format!("gen-{n}"), Cluster::Ha),
            ],
        )
    };
    let invalid = |n: usize| {
        if n % 4 == 1 {
            "targets:\n  - name: broken\n    type: onprem\n    bogus_key: 1\n".to_owned()
        } else {
            "targets: [unclosed\n".to_owned()
        }
    };
    std::fs::write(&path, valid(0)).unwrap();
    let daemon = Daemon::start(&path);
    let first = daemon
        .wait_until("both targets up", |m| {
            has_line(m, "whatsapp_up{target=\"keep\"} 1")
                && has_line(m, "whatsapp_up{target=\"gen-0\"} 1")
        })
        .await;
    assert!(
        has_line(&first, "whatsapp_exporter_poller_tasks 2"),
        "{first}"
    );
    // Settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = Resources::of(&daemon.metrics().await);
    assert_eq!(baseline.poller_tasks, 2.0);

    // Scrapers hammer /metrics for the whole run; every scrape must answer 200.
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let mut scrapers = Vec::new();
    for _ in 0..2 {
        let (stop, scrapes, url) = (
            Arc::clone(&stop),
            Arc::clone(&scrapes),
            format!("{}/metrics", daemon.url),
        );
        scrapers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let response = http.get(&url).send().await.expect("a scrape answers");
                assert_eq!(response.status(), 200);
                let body = response.text().await.expect("a whole body");
                assert!(body.contains("whatsapp_exporter_build_info{"), "{body}");
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut failures = 0u64;
    for n in 1..=100usize {
        let is_valid = n % 2 == 0;
        let text = if is_valid { valid(n) } else { invalid(n) };
        std::fs::write(&path, text).unwrap();
        if n % 10 == 3 || n % 10 == 8 {
            // SIGHUP has no answer: wait for the reload to be counted.
            let before = daemon.metrics().await;
            let counted = |m: &str| {
                gauge(
                    m,
                    "whatsapp_exporter_config_reloads_total{result=\"success\"}",
                ) + gauge(
                    m,
                    "whatsapp_exporter_config_reloads_total{result=\"failure\"}",
                )
            };
            let target = counted(&before) + 1.0;
            daemon.signal("HUP");
            daemon
                .wait_until(&format!("SIGHUP reload {n} to be counted"), |m| {
                    counted(m) == target
                })
                .await;
        } else {
            let response = daemon.reload().await;
            let expected = if is_valid { 200 } else { 500 };
            assert_eq!(response.status(), expected, "reload {n}");
        }
        if !is_valid {
            failures += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for scraper in scrapers {
        scraper.await.expect("no scrape failed");
    }
    let scraped = scrapes.load(Ordering::Relaxed);
    assert!(scraped > 0, "the scrapers never scraped");

    // The last valid config (gen-100) runs; the reload metrics say so.
    let end = daemon
        .wait_until("gen-100 to be up and the resources back", |m| {
            let now = Resources::of(m);
            has_line(m, "whatsapp_up{target=\"gen-100\"} 1")
                && now.poller_tasks == baseline.poller_tasks
                && now.fds <= baseline.fds + POOL_SLACK
                && now.runtime_tasks <= baseline.runtime_tasks + POOL_SLACK
        })
        .await;
    for line in [
        "whatsapp_up{target=\"keep\"} 1",
        "whatsapp_up{target=\"gen-100\"} 1",
        "whatsapp_exporter_targets 2",
        "whatsapp_exporter_poller_tasks 2",
        "whatsapp_exporter_config_last_reload_successful 1",
        "whatsapp_exporter_config_reloads_total{result=\"success\"} 51",
        "whatsapp_exporter_config_reloads_total{result=\"failure\"} 50",
        "whatsapp_exporter_target_panics_total 0",
    ] {
        assert!(has_line(&end, line), "missing {line}\n{end}");
    }
    assert_eq!(failures, 50);
    assert!(!end.contains("target=\"gen-98\""), "{end}");
    assert!(!end.contains("target=\"broken\""), "{end}");
    let now = Resources::of(&end);
    // Memory: flat within a wide margin (a debug build, two scrapers, 100 reloads).
    assert!(
        now.resident_bytes < baseline.resident_bytes + 64.0 * 1024.0 * 1024.0,
        "resident memory grew from {} to {} bytes",
        baseline.resident_bytes,
        now.resident_bytes
    );
    eprintln!("{scraped} scrapes during 100 reloads; baseline {baseline:?}, end {now:?}");
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_blocks_neither_other_targets_nor_scrapes() {
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let sim = simulator.simulator().clone();
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::Hang));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let options = sim.options();
    // "hang" waits up to a minute for an answer that never comes; a single poll slot
    // would be the worst case for the others, so max_concurrent_polls is 2.
    let hang = early_name("hang", Duration::from_secs(120));
    let text = format!(
        "global:\n  interval: 200ms\n  timeout: 200ms\n  max_concurrent_polls: 2\ntargets:\n\
         {}    interval: 2m\n    timeout: 1m\n    endpoints: [health]\n{}{}",
        onprem_target(
            &hang,
            &simulator.base_url(Cluster::Ha),
            options,
            Auth::ApiKey
        ),
        onprem_target(
            "ok",
            &simulator.base_url(Cluster::Single),
            options,
            Auth::ApiKey
        ),
        onprem_target(
            "ok-too",
            &simulator.base_url(Cluster::Multiconnect),
            options,
            Auth::ApiKey
        ),
    );
    std::fs::write(&path, text).unwrap();
    let daemon = Daemon::start(&path);
    // The hanging poll is in flight: the upstream has the request, the target has no
    // result yet.
    daemon
        .wait_until("the hanging request to arrive", |_| {
            sim.requests(Cluster::Ha, Endpoint::Health) == 1
        })
        .await;
    let single = sim.requests(Cluster::Single, Endpoint::Health);
    let multi = sim.requests(Cluster::Multiconnect, Endpoint::Health);
    // Meanwhile the others keep polling, and every scrape answers.
    let metrics = daemon
        .wait_until("the other targets to poll ten more times", |_| {
            sim.requests(Cluster::Single, Endpoint::Health) >= single + 10
                && sim.requests(Cluster::Multiconnect, Endpoint::Health) >= multi + 10
        })
        .await;
    assert_eq!(sim.requests(Cluster::Ha, Endpoint::Health), 1);
    assert!(
        !metrics.contains(&format!("whatsapp_up{{target=\"{hang}\"}}")),
        "{metrics}"
    );
    for line in [
        "whatsapp_up{target=\"ok\"} 1",
        "whatsapp_up{target=\"ok-too\"} 1",
        "whatsapp_exporter_poller_tasks 3",
        "whatsapp_exporter_target_panics_total 0",
    ] {
        assert!(has_line(&metrics, line), "missing {line}\n{metrics}");
    }
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_while_every_upstream_is_down() {
    // The demo's seven targets (each type), then their upstream closed: every base URL
    // points at a port nobody listens on.
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let text = whatsapp_exporter::cli::demo_config(&simulator, Duration::from_millis(300));
    simulator.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let targets = [
        "onprem-single",
        "onprem-ha",
        "onprem-multiconnect",
        "cloud-acme",
        "dialog360-sales",
        "kapso-support",
        "kapso-project",
    ];
    let daemon = Daemon::start(&path);
    let metrics = daemon
        .wait_until("every target to have failed a few polls", |m| {
            targets.iter().all(|t| {
                common::poll_errors(m, t) >= 3.0
                    && has_line(m, &format!("whatsapp_up{{target=\"{t}\"}} 0"))
            })
        })
        .await;
    for target in targets {
        let refused = format!("whatsapp_poll_errors_total{{target=\"{target}\",");
        assert!(
            metrics.lines().any(|l| l.starts_with(&refused)
                && l.contains("reason=\"connection_refused\"}")
                && !l.ends_with(" 0")),
            "no refused connection counted for {target}\n{metrics}"
        );
    }
    for line in [
        "whatsapp_exporter_targets 7",
        "whatsapp_exporter_poller_tasks 7",
        "whatsapp_exporter_target_panics_total 0",
    ] {
        assert!(has_line(&metrics, line), "missing {line}\n{metrics}");
    }
    common::promtool_check(&metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_slow_polls_in_flight_exits_cleanly() {
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let sim = simulator.simulator().clone();
    for cluster in [Cluster::Single, Cluster::Ha] {
        sim.set_fault(
            cluster,
            Endpoint::Health,
            Some(Fault::Slow(Duration::from_secs(60))),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    // Polled every minute, each poll waiting up to 50s: the first polls come early (see
    // early_name) and are still waiting for their answers at the signal.
    let interval = Duration::from_secs(60);
    let (a, b) = (early_name("a", interval), early_name("b", interval));
    let text = onprem_config(
        &simulator,
        "1m",
        &[(&a, Cluster::Single), (&b, Cluster::Ha)],
    )
    .replacen("timeout: 1m", "timeout: 50s", 1);
    std::fs::write(&path, &text).unwrap();
    let mut daemon = Daemon::start(&path);
    daemon
        .wait_until("both slow requests to arrive", |_| {
            sim.requests(Cluster::Single, Endpoint::Health) == 1
                && sim.requests(Cluster::Ha, Endpoint::Health) == 1
        })
        .await;
    let metrics = daemon.metrics().await;
    assert!(!metrics.contains("whatsapp_up{"), "{metrics}");
    daemon.signal("TERM");
    let (status, logs) =
        tokio::task::block_in_place(|| daemon.wait_for_exit(Duration::from_secs(5)));
    assert_eq!(status.code(), Some(0), "{}", logs.join("\n"));
    // Every log line is whole JSON, and the last one says the exporter shut down.
    for line in &logs {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a partial log line: {line:?}"
        );
    }
    let last: serde_json::Value = serde_json::from_str(logs.last().expect("a log")).unwrap();
    assert_eq!(
        last["fields"]["message"],
        "shut down",
        "{}",
        logs.join("\n")
    );
    assert!(
        logs.iter().any(|l| l.contains("SIGTERM: shutting down")),
        "{}",
        logs.join("\n")
    );
    // It writes nothing: the directory holds the config alone.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("config.yaml")]);
    simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off() {
    let simulator = common::simulator(SimulatorOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        onprem_config(&simulator, "500ms", &[("a", Cluster::Single)]),
    )
    .unwrap();
    let daemon = Daemon::start(&path);
    daemon
        .wait_until("the target to be up", |m| {
            has_line(m, "whatsapp_up{target=\"a\"} 1")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = Resources::of(&daemon.metrics().await);

    // 64 clients trickle a request head one byte every 200ms: 160 bytes would take 32s,
    // longer than the server's 10s header read timeout.
    const SLOW_CLIENTS: usize = 64;
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(120)
    );
    let mut slow = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(daemon.address())
            .await
            .unwrap();
        let head = head.clone().into_bytes();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            for byte in head {
                if stream.write_all(&[byte]).await.is_err() {
                    return (started.elapsed(), true);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // The whole head went out: was the connection cut before?
            let mut buffer = [0u8; 256];
            let cut = matches!(
                tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await,
                Ok(Ok(0)) | Ok(Err(_))
            );
            (started.elapsed(), cut)
        }));
    }
    // And clients that connect and send nothing at all.
    const SILENT_CLIENTS: usize = 16;
    let mut silent = Vec::new();
    for _ in 0..SILENT_CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(daemon.address())
            .await
            .unwrap();
        silent.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buffer = [0u8; 256];
            let read =
                tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await;
            (started.elapsed(), matches!(read, Ok(Ok(0)) | Ok(Err(_))))
        }));
    }
    // Meanwhile a normal client is served, again and again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = daemon.metrics().await;
    let open = gauge(&during, "process_open_fds");
    assert!(
        open >= baseline.fds + (SLOW_CLIENTS + SILENT_CLIENTS) as f64,
        "the slow connections are not open ({open} files, baseline {})",
        baseline.fds
    );
    for _ in 0..10 {
        let metrics = daemon.metrics().await;
        assert!(
            has_line(&metrics, "whatsapp_up{target=\"a\"} 1"),
            "{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each slow client is cut off by the server, well before its head is complete.
    for client in slow {
        let (elapsed, cut) = client.await.unwrap();
        assert!(cut, "a slow client was never cut off");
        assert!(
            elapsed < Duration::from_secs(25),
            "cut off only after {elapsed:?}"
        );
    }
    for client in silent {
        let (elapsed, cut) = client.await.unwrap();
        assert!(cut, "a silent client was never cut off");
        assert!(
            elapsed < Duration::from_secs(25),
            "cut off only after {elapsed:?}"
        );
    }
    // And their connections are gone.
    let end = daemon
        .wait_until("the slow connections to be closed", |m| {
            gauge(m, "process_open_fds") <= baseline.fds + POOL_SLACK
        })
        .await;
    let now = Resources::of(&end);
    assert!(
        now.runtime_tasks <= baseline.runtime_tasks + POOL_SLACK,
        "{now:?} {baseline:?}"
    );
    assert_eq!(now.poller_tasks, 1.0);
    simulator.shutdown().await;
}
