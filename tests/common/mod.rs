//! Test harness: the simulator and the exporter's own server, both on 127.0.0.1:0 in this
//! process, and bounded waits on /metrics.
#![allow(dead_code)]

pub mod process;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use whatsapp_exporter::config::Config;
use whatsapp_exporter::exporter::{Exporter, Options};
use whatsapp_exporter::simulator::{Simulator, SimulatorHandle, SimulatorOptions};
use whatsapp_exporter::web::{self, WebOptions};

/// How long a wait for a condition may take before the test fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(15);

pub struct Running {
    pub simulator: SimulatorHandle,
    pub exporter: Arc<Exporter>,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

/// Starts a simulator on the simulators' own runtime.
///
/// The simulator stands for upstreams on other machines. On the test's runtime, its work
/// (answers of 10,000 nodes, fault bodies) would hold the same two worker threads as the
/// exporter under test, and the exporter's polls would wait for it: a timeout the
/// exporter alone would not have. On its own threads the operating system shares the
/// cores between the two, as between two processes.
pub async fn simulator(options: SimulatorOptions) -> SimulatorHandle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("simulator")
            .enable_all()
            .build()
            .expect("the simulators' runtime starts")
    });
    runtime
        .spawn(async move { Simulator::new(options).spawn("127.0.0.1:0").await })
        .await
        .expect("simulator task")
        .expect("simulator starts")
}

/// Starts the exporter with the config that `config_for` writes for the simulator.
pub async fn start(
    options: SimulatorOptions,
    config_for: impl FnOnce(&SimulatorHandle) -> String,
) -> Running {
    start_with_file(options, config_for, None).await
}

pub async fn start_with_file(
    options: SimulatorOptions,
    config_for: impl FnOnce(&SimulatorHandle) -> String,
    file: Option<&Path>,
) -> Running {
    start_with(options, config_for, file, Options::default()).await
}

/// Starts the exporter with `exporter_options` (shard, background polling).
pub async fn start_with(
    options: SimulatorOptions,
    config_for: impl FnOnce(&SimulatorHandle) -> String,
    file: Option<&Path>,
    exporter_options: Options,
) -> Running {
    let simulator = simulator(options).await;
    let text = config_for(&simulator);
    if let Some(path) = file {
        std::fs::write(path, &text).expect("config written");
    }
    let config =
        Config::parse(&text, file.unwrap_or(Path::new("test.yaml"))).expect("valid test config");
    let exporter = Exporter::start(config, file.map(Path::to_owned), exporter_options)
        .expect("exporter starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(
        listener,
        Arc::clone(&exporter),
        WebOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        simulator,
        exporter,
        url,
        stop: Some(stop),
        server: Some(server),
        http: reqwest::Client::new(),
    }
}

impl Running {
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }

    /// Scrapes until every line of `lines` is in /metrics; fails the test after
    /// [`WAIT_LIMIT`], showing the last scrape.
    pub async fn wait_for_lines(&self, lines: &[&str]) -> String {
        self.wait_until(
            |m| lines.iter().all(|l| has_line(m, l)),
            &format!("{lines:#?}"),
        )
        .await
    }

    /// Scrapes until no line of /metrics starts with `prefix`.
    pub async fn wait_for_absence(&self, prefix: &str) -> String {
        self.wait_until(|m| !m.lines().any(|l| l.starts_with(prefix)), prefix)
            .await
    }

    pub async fn wait_until(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let started = Instant::now();
        loop {
            let metrics = self.metrics().await;
            if done(&metrics) {
                return metrics;
            }
            if started.elapsed() > WAIT_LIMIT {
                panic!("waited {WAIT_LIMIT:?} for {what}\nlast /metrics:\n{metrics}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.exporter.shutdown();
        self.simulator.shutdown().await;
    }
}

pub fn has_line(metrics: &str, line: &str) -> bool {
    metrics.lines().any(|l| l == line)
}

/// The value of the series `series` (name and labels exactly as exposed).
pub fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// Lines of one metric family (samples only).
pub fn family<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    let with_labels = format!("{name}{{");
    let bare = format!("{name} ");
    metrics
        .lines()
        .filter(|l| l.starts_with(&with_labels) || l.starts_with(&bare))
        .collect()
}

/// A target block of the config, for the simulator's credentials.
pub fn onprem_target(name: &str, base_url: &str, options: &SimulatorOptions, auth: Auth) -> String {
    let mut text = format!("  - name: {name}\n    type: onprem\n    base_url: {base_url}\n");
    if matches!(auth, Auth::ApiKey | Auth::ApiKeyAndLogin) {
        text.push_str(&format!("    api_key: {}\n", options.api_key));
    }
    if matches!(auth, Auth::Login | Auth::ApiKeyAndLogin) {
        text.push_str(&format!(
            "    username: {}\n    password: {}\n",
            options.username, options.password
        ));
    }
    text
}

#[derive(Clone, Copy)]
pub enum Auth {
    ApiKey,
    Login,
    ApiKeyAndLogin,
}

/// A fast global section: polls every `interval`, times out at the same.
pub fn global(interval: &str) -> String {
    format!("global:\n  interval: {interval}\n  timeout: {interval}\ntargets:\n")
}

/// `promtool check metrics` on a real exposition: no finding, exit 0.
pub fn promtool_check(metrics: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (tests/run.sh installs Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let out = promtool.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// All poll errors counted for `target`, over every endpoint and reason.
pub fn poll_errors(metrics: &str, target: &str) -> f64 {
    let prefix = format!("whatsapp_poll_errors_total{{target=\"{target}\",");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
