//! The `demo` and `simulate` subcommands: the built-in simulator with the exporter against
//! it, or alone.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::{bind, parse_listen_address, serve_until_signal, termination, DEFAULT_SIMULATOR_PORT};
use crate::config::Config;
use crate::exporter::{Exporter, Options};
use crate::secret::Secret;
use crate::simulator::fleet::FleetBusinesses;
use crate::simulator::webhook_sender::{self, SenderOptions};
use crate::simulator::{Cluster, FleetFault, FleetFaults, Simulator, SimulatorOptions};
use crate::web::WebOptions;
use std::sync::Arc;

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Address for the simulator (port 0 picks a free one).
    #[arg(long = "simulator.listen-address", default_value = "127.0.0.1:0")]
    simulator_address: String,
    /// Poll interval of the demo's targets.
    #[arg(long = "interval", default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How often the simulated states move on (0s: never).
    #[arg(long = "step", default_value = "15s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// Address for the webhook receiver, which the simulator's signed deliveries reach
    /// (port 0 picks a free one).
    #[arg(long = "webhooks.listen-address", default_value = "127.0.0.1:0")]
    webhooks_address: String,
}

/// The demo receiver's app secret and verify token: public, like the simulator's demo
/// credentials; the simulator signs its deliveries with the secret.
pub const DEMO_APP_SECRET: &str = "demo-app-secret";
pub const DEMO_VERIFY_TOKEN: &str = "demo-verify-token";

#[derive(Debug, Args)]
pub(super) struct SimulateArgs {
    /// How often the simulated states move on (0s: never).
    #[arg(long = "step", default_value = "15s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// Also serve a fleet of N On-Premises instances and N Cloud API numbers under /fleet,
    /// for load tests (0: none).
    #[arg(long = "targets", default_value_t = 0)]
    targets: usize,
    /// Fraction of the fleet's targets failing in any second (0 to 1), a different set each
    /// second; with --targets.
    #[arg(long = "fleet.fault-ratio", default_value_t = 0.0, value_parser = parse_ratio)]
    fleet_fault_ratio: f64,
    /// How failing fleet targets answer, mixed evenly: server_error, unavailable,
    /// malformed_json, slow, reset (comma-separated; default: all).
    #[arg(long = "fleet.fault-kinds", value_delimiter = ',')]
    fleet_fault_kinds: Vec<FleetFault>,
    /// Also serve B businesses on the fleet's Graph API, for business-wide discovery
    /// (0: none; works without --targets).
    #[arg(long = "fleet.businesses", default_value_t = 0)]
    fleet_businesses: usize,
    /// WABAs of each fleet business; with --fleet.businesses.
    #[arg(long = "fleet.wabas-per-business", default_value_t = 10)]
    fleet_wabas_per_business: usize,
    /// Phone numbers of each fleet WABA; with --fleet.businesses.
    #[arg(long = "fleet.numbers-per-waba", default_value_t = 10)]
    fleet_numbers_per_waba: usize,
}

/// A fraction from 0 to 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a fraction from 0 to 1")),
    }
}

/// The demo's configuration: one target of each type against the simulator, with the
/// simulator's own (public) demo credentials.
pub fn demo_config(simulator: &crate::simulator::SimulatorHandle, interval: Duration) -> String {
    format!(
        "global:\n  interval: {every}\n  timeout: {every}\ntargets:\n{targets}",
        every = humantime::format_duration(interval),
        targets = crate::providers::demo_targets(simulator, interval),
    )
}

/// [`demo_config`] with a webhook receiver on `listen_address`, verified with the demo's
/// public app secret and verify token.
pub fn demo_config_with_webhooks(
    simulator: &crate::simulator::SimulatorHandle,
    interval: Duration,
    listen_address: &str,
) -> String {
    format!(
        "{}webhooks:\n  listen_address: {listen_address:?}\n  app_secret: {DEMO_APP_SECRET}\n  verify_token: {DEMO_VERIFY_TOKEN}\n",
        demo_config(simulator, interval)
    )
}

pub(super) async fn demo(
    args: DemoArgs,
    listen_address: Option<String>,
    web: WebOptions,
) -> anyhow::Result<()> {
    let simulator = Simulator::new(SimulatorOptions {
        auto_step: Some(args.step).filter(|s| !s.is_zero()),
        // Graph's pages hold 100: each of the demo's WABAs costs one request a poll, as it
        // would, where the simulator's default of 2 makes the tests page.
        cloud_api_page_size: crate::simulator::cloud_api::MAX_LIMIT,
        ..SimulatorOptions::default()
    })
    .spawn(&args.simulator_address)
    .await
    .with_context(|| format!("cannot start the simulator on {}", args.simulator_address))?;
    // Two numbers stay LIMITED and BLOCKED throughout, so every series of the contract
    // (the error and limitation info among them) is on /metrics while the scenario plays.
    let numbers = crate::simulator::meta::PHONE_NUMBER_IDS;
    simulator
        .simulator()
        .set_phone_health(numbers[1], "LIMITED", None);
    simulator
        .simulator()
        .set_phone_health(numbers[2], "BLOCKED", None);
    let config_text = demo_config_with_webhooks(&simulator, args.interval, &args.webhooks_address);
    let config = Config::parse(&config_text, std::path::Path::new("<demo>"))?;
    let listener = bind(listen_address.as_deref().unwrap_or("127.0.0.1:10109")).await?;
    let address = listener.local_addr()?;
    let exporter = Exporter::start(config, None, Options::default())?;
    let receiver = super::start_receiver(&exporter).await?;
    let webhooks_url = match &receiver {
        Some(running) => {
            let url = format!(
                "http://{}{}",
                running.address,
                crate::webhooks::config::DEFAULT_PATH
            );
            let options = SenderOptions {
                simulator: Some(simulator.simulator().clone()),
                ..SenderOptions::demo(reqwest::Url::parse(&url)?, Secret::new(DEMO_APP_SECRET))
            };
            let ingest = exporter.webhooks();
            let first_poll_within = args.interval * 3;
            tokio::spawn(async move {
                if let Some(ingest) = ingest {
                    wait_for_route(&ingest, crate::simulator::meta::WABA_ID, first_poll_within)
                        .await;
                }
                webhook_sender::run(
                    options,
                    reqwest::Client::new(),
                    Arc::new(webhook_sender::SenderStats::default()),
                )
                .await;
            });
            url
        }
        None => String::new(),
    };
    let scheme = if web.security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("whatsapp-exporter demo");
    println!("  metrics:      {scheme}://{address}{}", web.telemetry_path);
    println!("  landing page: {scheme}://{address}/");
    println!("  simulator:    http://{}", simulator.addr);
    println!("  webhooks:     {webhooks_url} (the simulator posts signed statuses and events)");
    print_simulator(&simulator);
    println!(
        "Targets are polled every {}; simulated states move every {}. Ctrl-C stops.",
        humantime::format_duration(args.interval),
        humantime::format_duration(args.step)
    );
    let result = serve_until_signal(listener, exporter, web, receiver).await;
    simulator.shutdown().await;
    result
}

/// Waits (at most `limit`) until the WABA's deliveries route to a target: the demo's
/// business target knows its WABAs only once it has polled, and what comes before is
/// counted without its name for good.
async fn wait_for_route(ingest: &crate::webhooks::ingest::Ingest, waba_id: &str, limit: Duration) {
    let started = std::time::Instant::now();
    while ingest.waba_target(waba_id).is_none() && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn simulate(
    args: SimulateArgs,
    listen_address: Option<String>,
) -> anyhow::Result<()> {
    let address = listen_address.unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_SIMULATOR_PORT}"));
    let businesses = FleetBusinesses {
        businesses: args.fleet_businesses,
        wabas_per_business: args.fleet_wabas_per_business,
        numbers_per_waba: args.fleet_numbers_per_waba,
    };
    businesses.check()?;
    let fleet = args.targets > 0 || businesses.businesses > 0;
    if !fleet && (args.fleet_fault_ratio > 0.0 || !args.fleet_fault_kinds.is_empty()) {
        anyhow::bail!(
            "--fleet.fault-ratio and --fleet.fault-kinds need a fleet: --targets N or --fleet.businesses B"
        );
    }
    let fleet_faults = FleetFaults {
        ratio: args.fleet_fault_ratio,
        kinds: if args.fleet_fault_kinds.is_empty() {
            FleetFault::ALL.to_vec()
        } else {
            args.fleet_fault_kinds
        },
    };
    let simulator = Simulator::new(SimulatorOptions {
        auto_step: Some(args.step).filter(|s| !s.is_zero()),
        fleet: args.targets,
        fleet_faults,
        fleet_businesses: businesses,
        ..SimulatorOptions::default()
    });
    let handle = simulator
        .spawn(&parse_listen_address(&address)?.to_string())
        .await
        .with_context(|| format!("cannot start the simulator on {address}"))?;
    println!("WhatsApp Business API simulator on http://{}", handle.addr);
    print_simulator(&handle);
    if fleet {
        print_fleet(&handle, args.targets);
    }
    termination().await;
    handle.shutdown().await;
    Ok(())
}

/// Where the fleet of `simulate --targets N` is, and how to get a config for it.
fn print_fleet(handle: &crate::simulator::SimulatorHandle, n: usize) {
    use crate::simulator::fleet;
    let shape = handle.simulator().options().fleet_businesses;
    if shape.businesses > 0 {
        println!(
            "  fleet of {} businesses of {} WABAs of {} numbers on the Graph API:",
            shape.businesses, shape.wabas_per_business, shape.numbers_per_waba
        );
        println!(
            "    cloud_api          base_url {}  business_id [{} + b]",
            handle.fleet_cloud_api_base_url(),
            fleet::BUSINESS_ID_BASE
        );
        println!(
            "    exporter config    http://{}/fleet/config?businesses={}&interval=30s",
            handle.addr, shape.businesses
        );
    }
    if n == 0 {
        println!("    request counters   http://{}/fleet/stats", handle.addr);
        return;
    }
    let last = n - 1;
    println!("  fleet of {n} On-Premises instances and {n} Cloud API numbers (index i in 0..{n}):");
    println!(
        "    onprem             base_url {}  (api_key, login or bearer_token {})",
        handle
            .fleet_onprem_base_url(last)
            .replace(&format!("/{last}"), "/{i}"),
        fleet::FLEET_TOKEN
    );
    println!(
        "    dialog360          base_url {}  api_key {}{{i}}",
        handle.fleet_dialog360_base_url(),
        fleet::DIALOG360_KEY_PREFIX
    );
    println!(
        "    kapso              base_url {}  config_id {}{{i}}",
        handle.fleet_kapso_base_url(),
        fleet::KAPSO_CONFIG_PREFIX
    );
    println!(
        "    cloud_api          base_url {}  phone_number_ids [{} + i]",
        handle.fleet_cloud_api_base_url(),
        fleet::PHONE_NUMBER_ID_BASE
    );
    println!(
        "    exporter config    http://{}/fleet/config?onprem={}&cloud={}&interval=30s",
        handle.addr,
        n / 10,
        n - n / 10
    );
    println!("    request counters   http://{}/fleet/stats", handle.addr);
    let faults = &handle.simulator().options().fleet_faults;
    if faults.ratio > 0.0 && !faults.kinds.is_empty() {
        let kinds: Vec<&str> = faults.kinds.iter().map(|k| k.as_str()).collect();
        println!(
            "    faults             {}% of the targets each second: {}",
            faults.ratio * 100.0,
            kinds.join(", ")
        );
    }
}

/// The simulator's base URLs and credentials, as a target's config would use them.
fn print_simulator(handle: &crate::simulator::SimulatorHandle) {
    let options = handle.simulator().options();
    for cluster in [Cluster::Single, Cluster::Ha, Cluster::Multiconnect] {
        println!(
            "  onprem {:<13} base_url {}",
            cluster.as_str(),
            handle.base_url(cluster)
        );
    }
    println!(
        "  onprem credentials:  api_key {}  username {}  password {}",
        options.api_key, options.username, options.password
    );
    println!(
        "  cloud_api            base_url {}  access_token {}  business_id {}  waba_id {}, {}",
        handle.cloud_api_base_url(),
        options.cloud_api_token,
        crate::simulator::meta::BUSINESS_ID,
        crate::simulator::meta::WABA_ID,
        crate::simulator::meta::CLIENT_WABA_ID
    );
    println!(
        "  dialog360            base_url {}  api_key {}",
        handle.dialog360_base_url(),
        options.dialog360_api_keys.join(", ")
    );
    println!(
        "  kapso                base_url {}  api_key {}  config_id {}",
        handle.kapso_base_url(),
        options.kapso_api_key,
        options.kapso_config_ids.join(", ")
    );
    println!(
        "  kapso_platform       base_url {}  api_key {}  phone_number_ids {}",
        handle.kapso_platform_base_url(),
        options.kapso_api_key,
        crate::simulator::meta::PHONE_NUMBER_IDS.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn demo_takes_an_interval() {
        let demo = Cli::try_parse_from(["whatsapp-exporter", "demo", "--interval=2s"]).unwrap();
        assert!(
            matches!(demo.command, Some(Command::Demo(DemoArgs { interval, .. })) if interval == Duration::from_secs(2))
        );
    }

    #[test]
    fn simulate_takes_fleet_faults() {
        let cli = Cli::try_parse_from([
            "whatsapp-exporter",
            "simulate",
            "--targets=100",
            "--fleet.fault-ratio=0.05",
            "--fleet.fault-kinds=slow,reset",
        ])
        .unwrap();
        let Some(Command::Simulate(args)) = cli.command else {
            panic!("not simulate: {cli:?}");
        };
        assert_eq!(args.fleet_fault_ratio, 0.05);
        assert_eq!(
            args.fleet_fault_kinds,
            vec![FleetFault::Slow, FleetFault::Reset]
        );
        let cli = Cli::try_parse_from(["whatsapp-exporter", "simulate"]).unwrap();
        let Some(Command::Simulate(args)) = cli.command else {
            panic!("not simulate: {cli:?}");
        };
        assert_eq!(args.fleet_fault_ratio, 0.0);
        assert!(args.fleet_fault_kinds.is_empty());
        for bad in [
            "--fleet.fault-ratio=1.5",
            "--fleet.fault-ratio=-0.1",
            "--fleet.fault-ratio=NaN",
            "--fleet.fault-ratio=five",
            "--fleet.fault-kinds=timeout",
        ] {
            assert!(
                Cli::try_parse_from(["whatsapp-exporter", "simulate", "--targets=1", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
