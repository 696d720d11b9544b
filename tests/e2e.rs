//! End to end with real components: the simulator and the exporter in this process, a real
//! Prometheus scraping the exporter every second and evaluating the shipped rules (their
//! `for` durations divided by 60 here, not in the shipped file; 20 s for the `absent()`
//! rule, which must outlast Prometheus's first scrape), and a real Alertmanager
//! with the shipped example config, its receivers pointed at a webhook receiver run by the
//! test. Each scenario's alerts must reach the receiver with the right labels and
//! annotations, resolve when the scenario recovers, and no other alert may reach it. Last,
//! every dashboard panel's query is evaluated against that Prometheus.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whatsapp_exporter::simulator::meta::{self, PHONE_NUMBER_IDS};
use whatsapp_exporter::simulator::{Cluster, Endpoint, Fault, SimulatorHandle, SimulatorOptions};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long one scenario may take to fire or to resolve.
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);

/// A child process killed (by its pid) when the test ends, however it ends.
struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(program: &str, args: &[String], log: &Path) -> Process {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{program} could not start ({e}): tests/run.sh installs Debian's prometheus \
                 and prometheus-alertmanager packages"
            )
        });
    Process { child }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Notifications Alertmanager posted, as (receiver path, payload).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(String, Json)>>>,
}

impl Receiver {
    async fn serve(listener: tokio::net::TcpListener, received: Receiver) {
        while let Ok((mut stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let header_end = loop {
                        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buffer.len() < header_end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buffer
                        .drain(..header_end + length)
                        .skip(header_end)
                        .collect();
                    if let Ok(json) = serde_json::from_slice::<Json>(&body) {
                        received.received.lock().unwrap().push((path, json));
                    }
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    }

    fn len(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Every alert of every notification since index `from`: (path, status, alert).
    fn alerts_since(&self, from: usize) -> Vec<(String, String, Json)> {
        let received = self.received.lock().unwrap();
        received[from..]
            .iter()
            .flat_map(|(path, payload)| {
                payload["alerts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|alert| {
                        let status = alert["status"].as_str().unwrap_or("").to_owned();
                        (path.clone(), status, alert)
                    })
            })
            .collect()
    }
}

/// The `for` of rules built on `absent()`, longer than Prometheus takes to scrape first.
const ABSENT_FOR: &str = "20s";

/// Prometheus durations of the shipped rules, divided by 60 (5m -> 5s), at least 1s.
fn shorten(duration: &str) -> String {
    let (number, unit) = duration.split_at(
        duration
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(duration.len()),
    );
    let number: u64 = number.parse().expect("a duration in the rules");
    let seconds = number
        * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            other => panic!("unit {other} in a for duration"),
        };
    format!("{}s", (seconds / 60).max(1))
}

fn write_rules(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            continue;
        }
        let mut rules: Yaml =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for group in rules["groups"].as_sequence_mut().unwrap() {
            for rule in group["rules"].as_sequence_mut().unwrap() {
                if let Some(duration) = rule.get("for").and_then(Yaml::as_str).map(str::to_owned) {
                    // Prometheus 2.x hands discovered targets to the scrape loops at most
                    // every 5 s, while rules are evaluated from its start: `absent(up)` is
                    // true for the first 5 to 6 s, which a 5 s `for` does not outlast on a
                    // slow machine. The shipped 5m does.
                    let uses_absent = rule["expr"].as_str().is_some_and(|e| e.contains("absent("));
                    let shortened = if uses_absent {
                        ABSENT_FOR.to_owned()
                    } else {
                        shorten(&duration)
                    };
                    rule["for"] = Yaml::String(shortened);
                }
            }
        }
        let out = dir.join(path.file_name().unwrap());
        std::fs::write(&out, serde_yaml::to_string(&rules).unwrap()).unwrap();
        files.push(out.display().to_string());
    }
    assert!(!files.is_empty(), "no rule files in alerts/");
    files
}

/// The shipped Alertmanager config, its receivers sent to `receiver` and its timers short.
fn write_alertmanager_config(dir: &Path, receiver: &str) -> PathBuf {
    let shipped = Path::new(ROOT).join("deploy/alertmanager/alertmanager.yml");
    let mut config: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
    // The root route gets short timers; a child route keeps inheriting them, unless it
    // sets its own, which are shortened too.
    fn fast(route: &mut Yaml, root: bool) {
        let Some(map) = route.as_mapping_mut() else {
            return;
        };
        for (key, value) in [
            ("group_wait", "1s"),
            ("group_interval", "1s"),
            ("repeat_interval", "1h"),
        ] {
            if root || map.contains_key(key) {
                map.insert(Yaml::from(key), Yaml::from(value));
            }
        }
        if let Some(routes) = map.get_mut("routes").and_then(Yaml::as_sequence_mut) {
            routes.iter_mut().for_each(|r| fast(r, false));
        }
    }
    fast(&mut config["route"], true);
    for receiver_config in config["receivers"].as_sequence_mut().unwrap() {
        let name = receiver_config["name"].as_str().unwrap().to_owned();
        if let Some(hooks) = receiver_config
            .get_mut("webhook_configs")
            .and_then(Yaml::as_sequence_mut)
        {
            for hook in hooks {
                hook["url"] = Yaml::from(format!("http://{receiver}/{name}"));
            }
        }
    }
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

struct Stack {
    receiver: Receiver,
    /// Meta's side of the webhooks: the exporter's receiver, fed by the simulator's sender.
    _webhooks: whatsapp_exporter::webhooks::server::Running,
    prometheus: String,
    http: reqwest::Client,
    _processes: Vec<Process>,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn query(&self, expr: &str) -> Result<Vec<Json>, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.prometheus))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let json: Json = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if json["status"] != "success" {
            return Err(format!("{}: {}", json["errorType"], json["error"]));
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until the receiver got `alertname` with `status` (firing or resolved) and the
    /// given labels, since notification index `from`; returns that alert.
    async fn wait_for_alert(
        &self,
        from: usize,
        alertname: &str,
        status: &str,
        labels: &[(&str, &str)],
    ) -> Json {
        let started = Instant::now();
        loop {
            let matching = self
                .receiver
                .alerts_since(from)
                .into_iter()
                .find(|(_, s, alert)| {
                    s == status
                        && alert["labels"]["alertname"] == alertname
                        && labels.iter().all(|(k, v)| alert["labels"][*k] == *v)
                });
            if let Some((_, _, alert)) = matching {
                return alert;
            }
            if started.elapsed() > SCENARIO_LIMIT {
                let seen: Vec<_> = self
                    .receiver
                    .alerts_since(from)
                    .into_iter()
                    .map(|(p, s, a)| format!("{p} {s} {}", a["labels"]))
                    .collect();
                let alerts = self.query("ALERTS").await.unwrap_or_default();
                panic!("{alertname} {status} {labels:?} never reached the receiver\nreceived: {seen:#?}\nALERTS: {alerts:#?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every alert that fired since `from` has also been resolved, so the
    /// next scenario starts from a quiet receiver.
    async fn settle(&self, from: usize) {
        let started = Instant::now();
        loop {
            let alerts = self.receiver.alerts_since(from);
            let open: Vec<&Json> = alerts
                .iter()
                .filter(|(_, status, alert)| {
                    status == "firing"
                        && !alerts.iter().any(|(_, s, other)| {
                            s == "resolved" && other["labels"] == alert["labels"]
                        })
                })
                .map(|(_, _, alert)| &alert["labels"])
                .collect();
            if open.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < SCENARIO_LIMIT,
                "never resolved: {open:#?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The alert names that reached the receiver since `from`.
    fn names_since(&self, from: usize) -> BTreeSet<String> {
        self.receiver
            .alerts_since(from)
            .into_iter()
            .map(|(_, _, a)| a["labels"]["alertname"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

fn config(s: &SimulatorHandle) -> String {
    let o = s.simulator().options();
    let mut text = common::global("1s");
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
    text.push_str(&common::onprem_target(
        "mc",
        &s.base_url(Cluster::Multiconnect),
        o,
        common::Auth::ApiKeyAndLogin,
    ));
    text.push_str(&format!(
        "  - name: cloud\n    type: cloud_api\n    base_url: {}\n    access_token: {}\n    waba_id: \"{}\"\n    discover: true\n    discovery_interval: 5s\n",
        s.cloud_api_base_url(),
        o.cloud_api_token,
        meta::WABA_ID
    ));
    text.push_str(&format!(
        "  - name: business\n    type: cloud_api\n    base_url: {}\n    access_token: {}\n    business_id: \"{}\"\n    discovery_interval: 5s\n",
        s.cloud_api_base_url(),
        o.cloud_api_token,
        meta::BUSINESS_ID
    ));
    text.push_str(&format!(
        "  - name: d360\n    type: dialog360\n    base_url: {}\n    api_key: {}\n",
        s.dialog360_base_url(),
        o.dialog360_api_keys[1]
    ));
    text.push_str(&format!(
        "  - name: kapso\n    type: kapso\n    base_url: {}\n    api_key: {}\n    config_id: {}\n",
        s.kapso_base_url(),
        o.kapso_api_key,
        o.kapso_config_ids[0]
    ));
    text.push_str(&format!(
        "webhooks:\n  listen_address: 127.0.0.1:0\n  app_secret: {WEBHOOK_APP_SECRET}\n"
    ));
    text
}

const WEBHOOK_APP_SECRET: &str = "e2e-webhook-app-secret-0123";

/// Starts the exporter's webhook receiver (as `run` does) and the simulator's sender
/// posting signed statuses to it: 50 a second, 1% failed (far below the alert's 5%, even
/// in the first seconds), and no business event (each one pages by design).
async fn start_webhooks(run: &common::Running) -> whatsapp_exporter::webhooks::server::Running {
    use whatsapp_exporter::simulator::webhook_sender::{self, SenderOptions, SenderStats};
    let ingest = run
        .exporter
        .webhooks()
        .expect("the config has a webhooks section");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter = Arc::clone(&run.exporter);
    let deliver: whatsapp_exporter::webhooks::server::Deliver =
        Arc::new(move |changes| exporter.webhook_changes(changes));
    let receiver = whatsapp_exporter::webhooks::server::start(listener, ingest, deliver).unwrap();
    let url = format!("http://{}/webhooks/whatsapp", receiver.address);
    let options = SenderOptions {
        statuses_per_second: 50.0,
        failed_share: 0.01,
        event_every: None,
        ..SenderOptions::demo(
            url.parse().unwrap(),
            whatsapp_exporter::secret::Secret::new(WEBHOOK_APP_SECRET),
        )
    };
    tokio::spawn(webhook_sender::run(
        options,
        reqwest::Client::new(),
        Arc::new(SenderStats::default()),
    ));
    receiver
}

async fn start_stack() -> (Stack, common::Running) {
    let dir = tempfile::tempdir().unwrap();
    // A healthy fleet: the Graph token does not expire in a few days, as the demo's does.
    let options = SimulatorOptions {
        cloud_api_token_lifetime: None,
        ..SimulatorOptions::default()
    };
    let run = common::start(options, config).await;
    // Healthy: an app receives the client WABA's webhooks too.
    run.simulator
        .simulator()
        .set_app_subscribed(meta::CLIENT_WABA_ID, true);
    let exporter = run.url.trim_start_matches("http://").to_owned();
    let webhooks = start_webhooks(&run).await;

    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_address = receiver_listener.local_addr().unwrap().to_string();
    let receiver = Receiver::default();
    tokio::spawn(Receiver::serve(receiver_listener, receiver.clone()));

    let am_port = free_port();
    let am_config = write_alertmanager_config(dir.path(), &receiver_address);
    let alertmanager = spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &dir.path().join("alertmanager.log"),
    );

    let rules = write_rules(dir.path());
    let prom_port = free_port();
    let prom_config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n{}\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n  - job_name: whatsapp-exporter\n    static_configs:\n      - targets: ['{exporter}']\n",
        rules.iter().map(|r| format!("  - {r}\n")).collect::<String>()
    );
    let prom_config_path = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config_path, prom_config).unwrap();
    let prometheus = spawn(
        "prometheus",
        &[
            format!("--config.file={}", prom_config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
    );
    let stack = Stack {
        receiver,
        _webhooks: webhooks,
        prometheus: format!("http://127.0.0.1:{prom_port}"),
        http: reqwest::Client::new(),
        _processes: vec![alertmanager, prometheus],
        _dir: dir,
    };
    // Prometheus scrapes the exporter and knows the Alertmanager.
    let started = Instant::now();
    loop {
        let up = stack
            .query("up{job=\"whatsapp-exporter\"} == 1")
            .await
            .unwrap_or_default();
        let ams = stack
            .http
            .get(format!("{}/api/v1/alertmanagers", stack.prometheus))
            .send()
            .await
            .ok();
        let am_known = match ams {
            Some(r) => r
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                .is_some_and(|j| {
                    j["data"]["activeAlertmanagers"]
                        .as_array()
                        .is_some_and(|a| !a.is_empty())
                }),
            None => false,
        };
        if !up.is_empty() && am_known {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped the exporter: see the logs in {}",
            stack._dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (stack, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_and_dashboards_query_prometheus() {
    let (stack, run) = start_stack().await;
    let sim = run.simulator.simulator().clone();

    // Quiet: a healthy fleet, whose HA standby nodes are disconnected as they should be,
    // sends nothing. Wait for every target's first poll and for a few rule evaluations
    // past the longest shortened `for` of a gateway alert.
    run.wait_for_lines(&[
        "whatsapp_up{target=\"cloud\"} 1",
        "whatsapp_up{target=\"kapso\"} 1",
        "whatsapp_up{target=\"ha\"} 1",
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        stack.receiver.len(),
        0,
        "alerts on a healthy fleet: {:#?}",
        stack.receiver.alerts_since(0)
    );
    let firing = stack.query("ALERTS{alertstate=\"firing\"}").await.unwrap();
    assert!(firing.is_empty(), "firing on a healthy fleet: {firing:#?}");

    // A single instance disconnected: paged, then resolved.
    let from = stack.receiver.len();
    sim.set_gateway_status(Cluster::Single, None, "disconnected");
    let alert = stack
        .wait_for_alert(
            from,
            "WhatsAppGatewayDown",
            "firing",
            &[("target", "single"), ("severity", "critical")],
        )
        .await;
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("single"),
        "{alert}"
    );
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("#whatsappgatewaydown"),
        "{alert}"
    );
    assert!(!alert["annotations"]["summary"].as_str().unwrap().is_empty());
    sim.set_gateway_status(Cluster::Single, None, "connected");
    stack
        .wait_for_alert(
            from,
            "WhatsAppGatewayDown",
            "resolved",
            &[("target", "single")],
        )
        .await;
    stack.settle(from).await;
    assert_eq!(
        stack.names_since(from),
        BTreeSet::from(["WhatsAppGatewayDown".to_owned()])
    );

    // A number LIMITED for less than its `for` and AVAILABLE again: nothing.
    let from = stack.receiver.len();
    let number = PHONE_NUMBER_IDS[1];
    sim.set_phone_health(number, "LIMITED", None);
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.set_phone_health(number, "AVAILABLE", None);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        stack.receiver.len(),
        from,
        "{:#?}",
        stack.receiver.alerts_since(from)
    );

    // BLOCKED, with the error's description and solution: paged; its LIMITED alert, if
    // any, is inhibited.
    let from = stack.receiver.len();
    sim.set_phone_health(number, "BLOCKED", None);
    let (_, _, description, solution) = meta::default_detail("PHONE_NUMBER");
    let alert = stack
        .wait_for_alert(
            from,
            "WhatsAppEntityBlocked",
            "firing",
            &[
                ("target", "d360"),
                ("entity_type", "PHONE_NUMBER"),
                ("entity_id", number),
                ("severity", "critical"),
            ],
        )
        .await;
    let text = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        text.contains(description) && text.contains(solution),
        "{alert}"
    );
    sim.set_phone_health(number, "AVAILABLE", None);
    stack
        .wait_for_alert(
            from,
            "WhatsAppEntityBlocked",
            "resolved",
            &[("target", "d360")],
        )
        .await;
    stack.settle(from).await;
    let names = stack.names_since(from);
    assert!(
        names.iter().all(|n| n == "WhatsAppEntityBlocked"),
        "{names:?}"
    );

    // Kapso unhealthy: paged, then resolved.
    let from = stack.receiver.len();
    let config_id = sim.options().kapso_config_ids[0].clone();
    sim.set_kapso_status(&config_id, "unhealthy", None);
    stack
        .wait_for_alert(
            from,
            "WhatsAppKapsoConfigUnhealthy",
            "firing",
            &[("target", "kapso"), ("severity", "critical")],
        )
        .await;
    sim.set_kapso_status(&config_id, "healthy", None);
    stack
        .wait_for_alert(
            from,
            "WhatsAppKapsoConfigUnhealthy",
            "resolved",
            &[("target", "kapso")],
        )
        .await;
    stack.settle(from).await;
    assert_eq!(
        stack.names_since(from),
        BTreeSet::from(["WhatsAppKapsoConfigUnhealthy".to_owned()])
    );

    // Quality RED on a Cloud API number: paged.
    let from = stack.receiver.len();
    sim.set_quality(PHONE_NUMBER_IDS[2], "RED");
    stack
        .wait_for_alert(
            from,
            "WhatsAppPhoneQualityRed",
            "firing",
            &[
                ("target", "cloud"),
                ("phone_number_id", PHONE_NUMBER_IDS[2]),
            ],
        )
        .await;
    sim.set_quality(PHONE_NUMBER_IDS[2], "GREEN");
    stack
        .wait_for_alert(
            from,
            "WhatsAppPhoneQualityRed",
            "resolved",
            &[("target", "cloud")],
        )
        .await;
    stack.settle(from).await;
    assert_eq!(
        stack.names_since(from),
        BTreeSet::from(["WhatsAppPhoneQualityRed".to_owned()])
    );

    // A target that cannot be polled: paged, and its other alerts are inhibited.
    let from = stack.receiver.len();
    sim.set_fault(Cluster::Ha, Endpoint::Health, Some(Fault::Status(500)));
    sim.set_fault(Cluster::Ha, Endpoint::Support, Some(Fault::Status(500)));
    stack
        .wait_for_alert(
            from,
            "WhatsAppTargetDown",
            "firing",
            &[("target", "ha"), ("severity", "critical")],
        )
        .await;
    sim.set_fault(Cluster::Ha, Endpoint::Health, None);
    sim.set_fault(Cluster::Ha, Endpoint::Support, None);
    stack
        .wait_for_alert(from, "WhatsAppTargetDown", "resolved", &[("target", "ha")])
        .await;
    stack.settle(from).await;
    let names = stack.names_since(from);
    assert!(names.contains("WhatsAppTargetDown"), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "WhatsAppTargetDown" || n == "WhatsAppDataStale"),
        "{names:?}"
    );

    // The dashboards: every panel's query, its variables substituted, returns data on the
    // demo's state (one number LIMITED, one BLOCKED).
    sim.set_phone_health(PHONE_NUMBER_IDS[1], "LIMITED", None);
    sim.set_phone_health(PHONE_NUMBER_IDS[2], "BLOCKED", None);
    run.wait_until(
        |m| {
            m.contains("whatsapp_entity_limitation_info{")
                && m.contains("whatsapp_entity_error_info{")
        },
        "LIMITED and BLOCKED data",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    check_dashboards(&stack).await;

    // The exporter itself gone: paged.
    let from = stack.receiver.len();
    run.stop().await;
    stack
        .wait_for_alert(
            from,
            "WhatsAppExporterDown",
            "firing",
            &[("severity", "critical")],
        )
        .await;
}

/// Every panel query of every dashboard, with `$target` and `$node` matching everything
/// and Grafana's interval variables replaced, must evaluate and return data.
async fn check_dashboards(stack: &Stack) {
    let dir = Path::new(ROOT).join("dashboards");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let dashboard: Json =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut panels: Vec<&Json> = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            panels.push(panel);
            panels.extend(panel["panels"].as_array().into_iter().flatten());
        }
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let query = substitute(expr);
                checked += 1;
                match stack.query(&query).await {
                    Ok(result) if !result.is_empty() => {}
                    Ok(_) => failures.push(format!(
                        "{} / {}: no data for {query}",
                        path.display(),
                        panel["title"]
                    )),
                    Err(e) => failures.push(format!(
                        "{} / {}: {e} for {query}",
                        path.display(),
                        panel["title"]
                    )),
                }
            }
        }
    }
    assert!(checked > 0, "no panel queries found");
    assert!(
        failures.is_empty(),
        "{} of {checked} panel queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn substitute(expr: &str) -> String {
    [
        ("${target:regex}", ".*"),
        ("${target}", ".*"),
        ("$target", ".*"),
        ("${node:regex}", ".*"),
        ("${node}", ".*"),
        ("$node", ".*"),
        ("$__rate_interval", "1m"),
        ("${__rate_interval}", "1m"),
        ("$__interval", "15s"),
        ("${__interval}", "15s"),
        ("$__range", "5m"),
        ("${__range}", "5m"),
    ]
    .iter()
    .fold(expr.to_owned(), |e, (from, to)| e.replace(from, to))
}
