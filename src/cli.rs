//! Command line, in Prometheus' conventions: `--config.file`, `--web.listen-address`,
//! `--config.check`, and the `demo` and `simulate` subcommands of the `simulator` feature.

#[cfg(feature = "simulator")]
mod demo;
#[cfg(feature = "simulator")]
pub use demo::demo_config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::exporter::{Exporter, Options};
use crate::logging::{self, LogFormat, LogLevel};
use crate::shard::Shard;
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
    #[cfg(feature = "simulator")]
    Demo(demo::DemoArgs),
    /// Serve the built-in simulator of the WhatsApp Business APIs alone.
    #[cfg(feature = "simulator")]
    Simulate(demo::SimulateArgs),
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
            #[cfg(feature = "simulator")]
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
            #[cfg(feature = "simulator")]
            Some(Command::Demo(args)) => demo::demo(args, cli.listen_address, web).await,
            #[cfg(feature = "simulator")]
            Some(Command::Simulate(args)) => demo::simulate(args, cli.listen_address).await,
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
            // The TLS files are read when clients are built: check them too, once for each
            // distinct setting (the first target that has it names a failure).
            let mut checked = std::collections::HashSet::new();
            for target in &config.targets {
                if checked.insert(&target.tls) {
                    crate::upstream::build_client(&target.tls)
                        .with_context(|| format!("target {:?}", target.name))?;
                }
            }
            // The receiver reads its secrets and TLS files when it starts: so does the check.
            if let Some(webhooks) = &config.webhooks {
                webhooks.credentials().context("webhooks")?;
                if let Some(file) = &webhooks.web_config_file {
                    WebSecurity::load(file).context("webhooks: web_config_file")?;
                }
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
        .with_context(|| format!("invalid listen address {text:?}: want host:port"))
}

pub(crate) async fn bind(address: &str) -> anyhow::Result<TcpListener> {
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
    let text = Config::read(config_file)?;
    let config = Config::parse(&text, config_file)?;
    let listener = bind(listen_address.as_deref().unwrap_or(":10109")).await?;
    let configured = config.targets.len();
    let exporter =
        Exporter::start_with_source(config, Some(config_file.to_owned()), Some(text), options)?;
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
    let receiver = start_receiver(&exporter).await?;
    serve_until_signal(listener, exporter, web, receiver).await
}

/// Starts the webhook receiver when the config has a `webhooks:` section, handing the
/// business changes it accepts to the exporter's targets.
pub async fn start_receiver(
    exporter: &Arc<Exporter>,
) -> anyhow::Result<Option<crate::webhooks::server::Running>> {
    let Some(ingest) = exporter.webhooks() else {
        return Ok(None);
    };
    let settings = ingest.settings();
    let listener = bind(&settings.listen_address)
        .await
        .context("webhooks.listen_address")?;
    let target_side = Arc::clone(exporter);
    let deliver: crate::webhooks::server::Deliver =
        Arc::new(move |changes| target_side.webhook_changes(changes));
    let running = crate::webhooks::server::start(listener, ingest, deliver)?;
    tracing::info!(
        address = %running.address,
        path = settings.path,
        tls = running.tls,
        "webhook receiver listening"
    );
    Ok(Some(running))
}

pub(crate) async fn serve_until_signal(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    web: WebOptions,
    receiver: Option<crate::webhooks::server::Running>,
) -> anyhow::Result<()> {
    let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&exporter)));
    let served = web::serve(listener, Arc::clone(&exporter), web, termination()).await;
    if let Some(receiver) = receiver {
        receiver.stop().await;
    }
    served?;
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
    }
}
