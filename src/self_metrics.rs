//! The exporter's own metrics: build, config reloads and the standard `process_*` set,
//! kept in a `prometheus-client` registry (they live as long as the process, unlike target
//! data, which comes and goes with each poll).

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::exposition::{openmetrics_to_text, Format};
use crate::shard::Shard;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from, set by build.rs ("unknown" outside a checkout).
pub const REVISION: &str = env!("WHATSAPP_EXPORTER_REVISION");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    pub reload_successful: Gauge,
    pub reload_success_timestamp: Gauge<f64, AtomicU64>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub targets: Gauge,
    /// Live polling tasks: one per target this replica polls, down again when a target
    /// is removed or the exporter shuts down.
    pub poller_tasks: Gauge,
    /// Panics caught in a target's task (the task is restarted).
    pub target_panics: Counter,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new(Shard::default())
    }
}

impl SelfMetrics {
    pub fn new(shard: Shard) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "whatsapp_exporter_shard",
            "Which shard of the configured targets this replica polls (--shard.index of --shard.count)",
            Info::new(vec![
                ("index", shard.index.to_string()),
                ("count", shard.count.to_string()),
            ]),
        );
        registry.register(
            "whatsapp_exporter_build",
            "Version and git revision of the running whatsapp-exporter",
            Info::new(vec![("version", VERSION), ("revision", REVISION)]),
        );
        let reload_successful = Gauge::default();
        registry.register(
            "whatsapp_exporter_config_last_reload_successful",
            "1 when the last configuration load or reload succeeded",
            reload_successful.clone(),
        );
        let reload_success_timestamp = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "whatsapp_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load or reload",
            reload_success_timestamp.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "whatsapp_exporter_config_reloads",
            "Configuration reloads by result (success, failure)",
            reloads.clone(),
        );
        for result in ["success", "failure"] {
            let _ = reloads.get_or_create(&ReloadLabels { result });
        }
        let targets = Gauge::default();
        registry.register(
            "whatsapp_exporter_targets",
            "Targets this replica polls in the background (its shard of the configuration)",
            targets.clone(),
        );
        let poller_tasks = Gauge::default();
        registry.register(
            "whatsapp_exporter_poller_tasks",
            "Polling tasks running, one per target this replica polls",
            poller_tasks.clone(),
        );
        let target_panics = Counter::default();
        registry.register(
            "whatsapp_exporter_target_panics",
            "Panics caught in a target's polling task, which was then restarted",
            target_panics.clone(),
        );
        registry.register_collector(Box::new(RuntimeCollector));
        registry.register_collector(Box::new(ProcessCollector));
        SelfMetrics {
            registry,
            reload_successful,
            reload_success_timestamp,
            reloads,
            targets,
            poller_tasks,
            target_panics,
        }
    }

    /// Appends the registry in `format` (without the OpenMetrics EOF line).
    pub fn render(&self, out: &mut String, format: Format) {
        let mut openmetrics = String::new();
        if let Err(e) =
            prometheus_client::encoding::text::encode_registry(&mut openmetrics, &self.registry)
        {
            tracing::error!(error = %e, "encoding the exporter's own metrics failed");
            return;
        }
        match format {
            Format::OpenMetrics => out.push_str(&openmetrics),
            Format::Text => openmetrics_to_text(&openmetrics, out),
        }
    }
}

/// The tasks alive in the async runtime that renders the metrics (pollers, connections,
/// the target-file watcher): a leak of tasks shows as a count that only grows.
#[derive(Debug)]
struct RuntimeCollector;

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Ok(());
        };
        let tasks = ConstGauge::new(runtime.metrics().num_alive_tasks() as i64);
        tasks.encode(encoder.encode_descriptor(
            "whatsapp_exporter_runtime_alive_tasks",
            "Tasks alive in the exporter's async runtime.",
            None,
            tasks.metric_type(),
        )?)
    }
}

/// The standard process metrics, read from /proc at each scrape. (prometheus-client adds
/// the final period to the HELP of registered metrics, not to a collector's.)
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(process) = procfs::process::Process::myself() else {
            return Ok(());
        };
        if let Ok(stat) = process.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                cpu.metric_type(),
            )?)?;
            let rss = ConstGauge::new((stat.rss * procfs::page_size()) as i64);
            rss.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                None,
                rss.metric_type(),
            )?)?;
            let vsize = ConstGauge::new(stat.vsize as i64);
            vsize.encode(encoder.encode_descriptor(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                None,
                vsize.metric_type(),
            )?)?;
            if let Ok(boot) = procfs::boot_time_secs() {
                let start = ConstGauge::new(boot as f64 + stat.starttime as f64 / ticks);
                start.encode(encoder.encode_descriptor(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    None,
                    start.metric_type(),
                )?)?;
            }
        }
        if let Ok(count) = process.fd_count() {
            let fds = ConstGauge::new(count as i64);
            fds.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                fds.metric_type(),
            )?)?;
        }
        if let Ok(limits) = process.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                let max = ConstGauge::new(max as i64);
                max.encode(encoder.encode_descriptor(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    None,
                    max.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_formats() {
        let metrics = SelfMetrics::new(Shard { index: 1, count: 3 });
        metrics.reload_successful.set(1);
        let _ = metrics
            .reloads
            .get_or_create(&ReloadLabels { result: "success" })
            .inc();
        let mut text = String::new();
        metrics.render(&mut text, Format::Text);
        assert!(text.contains(&format!(
            "# TYPE whatsapp_exporter_build_info gauge\nwhatsapp_exporter_build_info{{version=\"{VERSION}\",revision=\"{REVISION}\"}} 1\n"
        )), "{text}");
        assert!(text.contains("whatsapp_exporter_config_last_reload_successful 1\n"));
        assert!(
            text.contains("whatsapp_exporter_shard_info{index=\"1\",count=\"3\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "# HELP whatsapp_exporter_config_reloads_total Configuration reloads by result (success, failure).\n\
             # TYPE whatsapp_exporter_config_reloads_total counter\n"
        ), "{text}");
        assert!(text.contains("\nwhatsapp_exporter_config_reloads_total{result=\"success\"} 1\n"));
        assert!(text.contains("\nwhatsapp_exporter_config_reloads_total{result=\"failure\"} 0\n"));
        assert!(
            text.contains("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(!text.contains(".."), "{text}");
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
        assert!(text.contains("# TYPE process_open_fds gauge\n"));
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("\nwhatsapp_exporter_poller_tasks 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\nwhatsapp_exporter_target_panics_total 0\n"),
            "{text}"
        );
        // Outside a runtime there is no task count to give.
        assert!(
            !text.contains("whatsapp_exporter_runtime_alive_tasks"),
            "{text}"
        );
        let mut om = String::new();
        metrics.render(&mut om, Format::OpenMetrics);
        assert!(om.contains("# TYPE whatsapp_exporter_build info\n"), "{om}");
        assert!(om.contains("# TYPE process_cpu_seconds counter\n"), "{om}");
    }

    #[tokio::test]
    async fn counts_the_runtime_tasks() {
        let metrics = SelfMetrics::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(stopped);
        let mut text = String::new();
        metrics.render(&mut text, Format::Text);
        assert!(
            text.contains("# TYPE whatsapp_exporter_runtime_alive_tasks gauge\nwhatsapp_exporter_runtime_alive_tasks 1\n"),
            "{text}"
        );
        let _ = stop.send(());
        let _ = task.await;
        let mut text = String::new();
        metrics.render(&mut text, Format::Text);
        assert!(
            text.contains("\nwhatsapp_exporter_runtime_alive_tasks 0\n"),
            "{text}"
        );
    }
}
