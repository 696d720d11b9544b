//! Correctness under load: a fleet of 1,000 simulated targets polled every second while
//! four scrapers read /metrics as fast as they can. Every scrape must hold each target's
//! series exactly once, each family's metadata once, and pass `promtool check metrics`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use whatsapp_exporter::simulator::{fleet_config, FleetKind, SimulatorOptions};

const ONPREM: usize = 100;
const CLOUD: usize = 900;

/// The fleet's target names, as `fleet_config` writes them.
fn names() -> Vec<String> {
    let [dialog360, kapso, _] = whatsapp_exporter::simulator::fleet::cloud_split(CLOUD);
    let mut names: Vec<String> = (0..ONPREM).map(|i| format!("onprem-{i}")).collect();
    for i in 0..CLOUD {
        names.push(if i < dialog360 {
            format!("dialog360-{i}")
        } else if i < dialog360 + kapso {
            format!("kapso-{i}")
        } else {
            format!("cloud-{i}")
        });
    }
    names
}

/// Checks one scrape; returns how many targets were up in it.
fn check_scrape(body: &str, names: &[String]) -> usize {
    let mut series = HashSet::new();
    let mut help = HashSet::new();
    let mut info: HashMap<&str, usize> = HashMap::new();
    let mut up: HashMap<&str, &str> = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            assert!(help.insert(name.to_owned()), "HELP of {name} twice");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (identity, _) = line.rsplit_once(' ').expect("a sample line has a value");
        assert!(series.insert(identity), "series twice: {identity}");
        let target = identity
            .split_once("{target=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(target, _)| target);
        if let Some(target) = target {
            if identity.starts_with("whatsapp_target_info{") {
                *info.entry(target).or_default() += 1;
            }
            if identity.starts_with("whatsapp_up{") {
                up.insert(target, line.rsplit(' ').next().unwrap_or_default());
            }
        }
    }
    for name in names {
        assert_eq!(
            info.get(name.as_str()),
            Some(&1),
            "whatsapp_target_info of {name}"
        );
    }
    assert_eq!(info.len(), names.len(), "no target beyond the fleet");
    up.values().filter(|v| **v == "1").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_fleet_under_scrape_load_shows_every_target_once() {
    let run = common::start(
        SimulatorOptions {
            fleet: ONPREM.max(CLOUD),
            ..SimulatorOptions::default()
        },
        |s| fleet_config(s, ONPREM, CLOUD, Duration::from_secs(1)),
    )
    .await;
    let names = names();

    // Four scrapers at once, for as long as it takes every target to be polled and up.
    let url = format!("{}/metrics", run.url);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut scrapers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        let names = names.clone();
        scrapers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut scrapes = 0;
            loop {
                let body = http
                    .get(&url)
                    .send()
                    .await
                    .expect("scrape")
                    .text()
                    .await
                    .expect("body");
                let up = check_scrape(&body, &names);
                scrapes += 1;
                if up == names.len() && scrapes >= 5 {
                    return (scrapes, body);
                }
                assert!(
                    Instant::now() < deadline,
                    "only {up} of {} targets up after {scrapes} scrapes",
                    names.len()
                );
            }
        }));
    }
    let mut last = String::new();
    for scraper in scrapers {
        let (scrapes, body) = scraper.await.expect("scraper");
        assert!(scrapes >= 5);
        last = body;
    }
    common::promtool_check(&last);

    // Every target was polled by the simulator's count, too.
    let simulator = run.simulator.simulator();
    for i in 0..ONPREM {
        assert!(
            simulator.fleet_target_requests(FleetKind::OnPremHealth, i) > 0,
            "onprem-{i} never polled"
        );
    }
    // cloud_api targets read their numbers with multi-id lookups.
    for i in 0..CLOUD {
        let polled: u64 = [
            FleetKind::Dialog360,
            FleetKind::Kapso,
            FleetKind::CloudApi,
            FleetKind::GraphIds,
        ]
        .iter()
        .map(|&kind| simulator.fleet_target_requests(kind, i))
        .sum();
        assert!(polled > 0, "number {i} never polled");
    }
    run.stop().await;
}
