//! Command line, in Prometheus' conventions: `--config.file`, `--web.listen-address`,
//! `--config.check`, and the `demo` and `simulate` subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::exporter::{Exporter, Options};
use crate::logging::{self, LogFormat, LogLevel};
use crate::shard::Shard;
use crate::simulator::{Cluster, FleetFault, FleetFaults, Simulator, SimulatorOptions};
use crate::web::{self, WebOptions};
use crate::web_config::WebSecurity;

/// The exporter's own port: outside 9100-9999, which the Prometheus port registry has
/// entirely allocated.
pub const DEFAULT_PORT: u16 = 10109;
pub const DEFAULT_SIMULATOR_PORT: u16 = 10110;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("WHATSAPP_EXPORTER_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "whatsapp-exporter",
    version = LONG_VERSION,
    about = "Prometheus exporter for WhatsApp Business API health: polls each target on its \
             interval and serves the latest results on /metrics."
)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(long = "config.file", default_value = "whatsapp-exporter.yaml")]
    config_file: PathBuf,
    /// Validate the configuration file, print what is wrong, and exit 0 (valid) or 1.
    #[arg(long = "config.check")]
    config_check: bool,
    /// Address to listen on for /metrics and the web pages [default: :10109; demo: 127.0.0.1:10109].
    #[arg(long = "web.listen-address", global = true)]
    listen_address: Option<String>,
    /// Web config file (exporter-toolkit format): TLS and basic auth for every endpoint.
    #[arg(long = "web.config.file", global = true)]
    web_config_file: Option<PathBuf>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", global = true)]
    telemetry_path: String,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    log_level: LogLevel,
    /// Output format of log messages.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    log_format: LogFormat,
    /// Number of replicas the targets are sharded over.
    #[arg(long = "shard.count", default_value_t = 1)]
    shard_count: u32,
    /// This replica's shard, 0 to shard.count - 1; a name ending in -N (a
    /// StatefulSet pod name) gives N.
    #[arg(long = "shard.index", default_value = "0")]
    shard_index: String,
    /// Poll the targets in the background; with false, only /probe polls them.
    #[arg(long = "poll.background", default_value_t = true, action = clap::ArgAction::Set)]
    poll_background: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the built-in simulator and the exporter against it, with a generated config:
    /// no credentials needed.
    Demo(DemoArgs),
    /// Serve the built-in simulator of the WhatsApp Business APIs alone.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Address for the simulator (port 0 picks a free one).
    #[arg(long = "simulator.listen-address", default_value = "127.0.0.1:0")]
    simulator_address: String,
    /// Poll interval of the demo's targets.
    #[arg(long = "interval", default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How often the simulated states move on (0s: never).
    #[arg(long = "step", default_value = "15s", value_parser = humantime::parse_duration)]
    step: Duration,
}

#[derive(Debug, Args)]
struct SimulateArgs {
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
}

/// A fraction from 0 to 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a fraction from 0 to 1")),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_level, cli.log_format) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if cli.config_check {
        if let Err(e) = Shard::parse(&cli.shard_index, cli.shard_count) {
            println!("FAILED: {e}");
            return ExitCode::FAILURE;
        }
        let checked = check_config(&cli.config_file);
        return match &cli.web_config_file {
            Some(path) if checked == ExitCode::SUCCESS => check_web_config(path),
            _ => checked,
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        // The simulator serves no exporter pages: it takes no web config.
        let security = match (&cli.web_config_file, &cli.command) {
            (Some(_), Some(Command::Simulate(_))) => {
                anyhow::bail!("--web.config.file does not apply to `simulate`")
            }
            (Some(path), _) => WebSecurity::load(path)?,
            (None, _) => WebSecurity::default(),
        };
        let web = WebOptions {
            telemetry_path: cli.telemetry_path,
            security,
        };
        match cli.command {
            None => {
                let options = Options {
                    shard: Shard::parse(&cli.shard_index, cli.shard_count)?,
                    background: cli.poll_background,
                };
                run(&cli.config_file, cli.listen_address, web, options).await
            }
            Some(Command::Demo(args)) => demo(args, cli.listen_address, web).await,
            Some(Command::Simulate(args)) => simulate(args, cli.listen_address).await,
        }
    });
    // Polls still in flight are abandoned: they only read.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_web_config(path: &std::path::Path) -> ExitCode {
    match WebSecurity::load(path) {
        Ok(security) => {
            println!(
                "SUCCESS: {} is valid: TLS {}, basic auth {}",
                path.display(),
                if security.tls.is_some() { "on" } else { "off" },
                match &security.auth {
                    Some(auth) => format!("for {} user(s)", auth.users()),
                    None => "off".to_owned(),
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let loaded = Config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            // The TLS files are read when clients are built: check them too.
            for target in &config.targets {
                crate::upstream::build_client(&target.tls)
                    .with_context(|| format!("target {:?}", target.name))?;
            }
            Ok(config)
        });
    match loaded {
        Ok(config) => {
            println!(
                "SUCCESS: {} is valid: {} target(s)",
                path.display(),
                config.targets.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `:10109` means every interface, as in Prometheus' flags.
pub fn parse_listen_address(text: &str) -> anyhow::Result<SocketAddr> {
    let text = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    text.parse()
        .with_context(|| format!("invalid --web.listen-address {text:?}: want host:port"))
}

async fn bind(address: &str) -> anyhow::Result<TcpListener> {
    let address = parse_listen_address(address)?;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

async fn run(
    config_file: &std::path::Path,
    listen_address: Option<String>,
    web: WebOptions,
    options: Options,
) -> anyhow::Result<()> {
    let config = Config::load(config_file)?;
    let listener = bind(listen_address.as_deref().unwrap_or(":10109")).await?;
    let configured = config.targets.len();
    let exporter = Exporter::start(config, Some(config_file.to_owned()), options)?;
    tracing::info!(
        version = LONG_VERSION,
        address = %listener.local_addr()?,
        config = %config_file.display(),
        configured,
        polled = exporter.targets().len(),
        shard = %options.shard,
        background = options.background,
        tls = web.security.tls.is_some(),
        basic_auth = web.security.auth.is_some(),
        "whatsapp-exporter listening"
    );
    serve_until_signal(listener, exporter, web).await
}

async fn serve_until_signal(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    web: WebOptions,
) -> anyhow::Result<()> {
    let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&exporter)));
    web::serve(listener, Arc::clone(&exporter), web, termination()).await?;
    reloader.abort();
    exporter.shutdown();
    tracing::info!("shut down");
    Ok(())
}

async fn reload_on_sighup(exporter: Arc<Exporter>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP: reload through POST /-/reload only");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        // The outcome is logged and counted by reload itself.
        let _ = exporter.reload().await;
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
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

async fn demo(
    args: DemoArgs,
    listen_address: Option<String>,
    web: WebOptions,
) -> anyhow::Result<()> {
    let simulator = Simulator::new(SimulatorOptions {
        auto_step: Some(args.step).filter(|s| !s.is_zero()),
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
    let config_text = demo_config(&simulator, args.interval);
    let config = Config::parse(&config_text, std::path::Path::new("<demo>"))?;
    let listener = bind(listen_address.as_deref().unwrap_or("127.0.0.1:10109")).await?;
    let address = listener.local_addr()?;
    let exporter = Exporter::start(config, None, Options::default())?;
    let scheme = if web.security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("whatsapp-exporter demo");
    println!("  metrics:      {scheme}://{address}{}", web.telemetry_path);
    println!("  landing page: {scheme}://{address}/");
    println!("  simulator:    http://{}", simulator.addr);
    print_simulator(&simulator);
    println!(
        "Targets are polled every {}; simulated states move every {}. Ctrl-C stops.",
        humantime::format_duration(args.interval),
        humantime::format_duration(args.step)
    );
    let result = serve_until_signal(listener, exporter, web).await;
    simulator.shutdown().await;
    result
}

async fn simulate(args: SimulateArgs, listen_address: Option<String>) -> anyhow::Result<()> {
    let address = listen_address.unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_SIMULATOR_PORT}"));
    if args.targets == 0 && (args.fleet_fault_ratio > 0.0 || !args.fleet_fault_kinds.is_empty()) {
        anyhow::bail!("--fleet.fault-ratio and --fleet.fault-kinds need a fleet: --targets N");
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
        ..SimulatorOptions::default()
    });
    let handle = simulator
        .spawn(&parse_listen_address(&address)?.to_string())
        .await
        .with_context(|| format!("cannot start the simulator on {address}"))?;
    println!("WhatsApp Business API simulator on http://{}", handle.addr);
    print_simulator(&handle);
    if args.targets > 0 {
        print_fleet(&handle, args.targets);
    }
    termination().await;
    handle.shutdown().await;
    Ok(())
}

/// Where the fleet of `simulate --targets N` is, and how to get a config for it.
fn print_fleet(handle: &crate::simulator::SimulatorHandle, n: usize) {
    use crate::simulator::fleet;
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
        handle.fleet_graph_base_url(),
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
        "  cloud_api            base_url {}  access_token {}  waba_id {}",
        handle.graph_base_url(),
        options.graph_token,
        crate::simulator::meta::WABA_ID
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":10109").unwrap(),
            "0.0.0.0:10109".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(parse_listen_address("localhost").is_err());
    }

    #[test]
    fn flags_follow_prometheus_conventions() {
        let cli = Cli::try_parse_from([
            "whatsapp-exporter",
            "--config.file=/etc/wa.yaml",
            "--web.listen-address=:9999",
            "--web.telemetry-path=/m",
            "--log.level=debug",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.config_file, PathBuf::from("/etc/wa.yaml"));
        assert_eq!(cli.listen_address.as_deref(), Some(":9999"));
        assert_eq!(cli.telemetry_path, "/m");
        assert_eq!(cli.log_level, LogLevel::Debug);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.web_config_file, None);
        let secured =
            Cli::try_parse_from(["whatsapp-exporter", "--web.config.file=/etc/wa/web.yml"])
                .unwrap();
        assert_eq!(
            secured.web_config_file,
            Some(PathBuf::from("/etc/wa/web.yml"))
        );
        assert!(Cli::try_parse_from(["whatsapp-exporter", "--log.format=xml"]).is_err());
        assert_eq!(cli.shard_count, 1);
        assert!(cli.poll_background);
        let sharded = Cli::try_parse_from([
            "whatsapp-exporter",
            "--shard.count=3",
            "--shard.index=whatsapp-exporter-2",
            "--poll.background=false",
        ])
        .unwrap();
        assert_eq!(
            Shard::parse(&sharded.shard_index, sharded.shard_count),
            Ok(Shard { index: 2, count: 3 })
        );
        assert!(!sharded.poll_background);
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
