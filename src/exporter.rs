//! The running exporter: the targets of the current config, each with its polling task,
//! reloads that swap in a new config only when it is valid, and the `/metrics` body.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::AbortHandle;

use crate::config::{Config, ConfigError, Target};
use crate::exposition::{render_families, Format};
use crate::poller::{Runner, TargetState};
use crate::self_metrics::{ReloadLabels, SelfMetrics};
use crate::target::Client;
use crate::upstream::{ClientError, ClientFor, Clients};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("target {target:?}: {error}")]
    Client { target: String, error: ClientError },
    #[error("no config file to reload: the exporter was started with a generated config")]
    NoFile,
}

/// A target and the task that polls it.
#[derive(Debug)]
pub struct RunningTarget {
    pub state: Arc<TargetState>,
    tls_fingerprint: u64,
    task: AbortHandle,
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Exporter {
    config_file: Option<PathBuf>,
    config: ArcSwap<Config>,
    targets: ArcSwap<Vec<Arc<RunningTarget>>>,
    metrics: SelfMetrics,
    clients: Clients,
    semaphore: Arc<Semaphore>,
    semaphore_size: std::sync::Mutex<usize>,
    reload_lock: Mutex<()>,
}

impl Exporter {
    /// Starts polling the targets of `config`. Must be called within a tokio runtime.
    pub fn start(config: Config, config_file: Option<PathBuf>) -> Result<Arc<Self>, ReloadError> {
        let exporter = Arc::new(Exporter {
            config_file,
            config: ArcSwap::from_pointee(config.clone()),
            targets: ArcSwap::from_pointee(Vec::new()),
            metrics: SelfMetrics::new(),
            clients: Clients::default(),
            semaphore: Arc::new(Semaphore::new(config.global.max_concurrent_polls)),
            semaphore_size: std::sync::Mutex::new(config.global.max_concurrent_polls),
            reload_lock: Mutex::new(()),
        });
        exporter.apply(config)?;
        exporter.record_reload(true);
        Ok(exporter)
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    pub fn targets(&self) -> Arc<Vec<Arc<RunningTarget>>> {
        self.targets.load_full()
    }

    /// Re-reads the config file; the running config is replaced only when the new one is
    /// valid.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = match &self.config_file {
            None => Err(ReloadError::NoFile),
            Some(path) => Config::load(path)
                .map_err(ReloadError::from)
                .and_then(|config| self.apply(config)),
        };
        self.record_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(
                targets = self.targets.load().len(),
                "configuration reloaded"
            ),
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration")
            }
        }
        result
    }

    fn record_reload(&self, success: bool) {
        let labels = ReloadLabels {
            result: if success { "success" } else { "failure" },
        };
        self.metrics.reloads.get_or_create(&labels).inc();
        self.metrics.reload_successful.set(i64::from(success));
        if success {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.metrics.reload_success_timestamp.set(now);
        }
    }

    /// Swaps in `config`: unchanged targets keep polling (and their counters), changed and
    /// new ones start, removed ones stop and vanish from /metrics.
    fn apply(&self, config: Config) -> Result<(), ReloadError> {
        let current = self.targets.load_full();
        let mut by_name: HashMap<&str, &Arc<RunningTarget>> = current
            .iter()
            .map(|t| (t.state.config.name.as_str(), t))
            .collect();
        // Get every client first (reading the TLS files), so an unusable TLS file rejects
        // the whole reload. A target keeps running only if neither its config nor its TLS
        // files changed.
        let mut plan = Vec::with_capacity(config.targets.len());
        let mut in_use = Vec::with_capacity(config.targets.len());
        for target in &config.targets {
            let http = self
                .clients
                .get(&target.tls)
                .map_err(|error| ReloadError::Client {
                    target: target.name.clone(),
                    error,
                })?;
            in_use.push((&target.tls, http.tls_fingerprint));
            match by_name.remove(target.name.as_str()) {
                Some(running)
                    if *running.state.config == *target
                        && running.tls_fingerprint == http.tls_fingerprint =>
                {
                    plan.push(Ok(Arc::clone(running)))
                }
                _ => plan.push(Err((target.clone(), http))),
            }
        }
        self.resize_semaphore(config.global.max_concurrent_polls);
        let next: Vec<Arc<RunningTarget>> = plan
            .into_iter()
            .map(|entry| match entry {
                Ok(running) => running,
                Err((target, http)) => self.spawn(target, http),
            })
            .collect();
        self.metrics.targets.set(next.len() as i64);
        self.targets.store(Arc::new(next));
        self.clients.retain(&in_use);
        self.config.store(Arc::new(config));
        // Targets left in `current` only are dropped with it, which aborts their tasks.
        Ok(())
    }

    fn spawn(&self, target: Target, http: ClientFor) -> Arc<RunningTarget> {
        let config = Arc::new(target);
        let state = Arc::new(TargetState::new(Arc::clone(&config)));
        let runner = Runner::new(
            Arc::clone(&state),
            Client::new(http.client, &config),
            Arc::clone(&self.semaphore),
        );
        let task = tokio::spawn(runner.run()).abort_handle();
        Arc::new(RunningTarget {
            state,
            tls_fingerprint: http.tls_fingerprint,
            task,
        })
    }

    fn resize_semaphore(&self, size: usize) {
        let mut current = self
            .semaphore_size
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if size > *current {
            self.semaphore.add_permits(size - *current);
        } else if size < *current {
            // Permits in use are forgotten as they return.
            let forgotten = self.semaphore.forget_permits(*current - size);
            if forgotten < *current - size {
                let semaphore = Arc::clone(&self.semaphore);
                let mut left = *current - size - forgotten;
                tokio::spawn(async move {
                    while left > 0 {
                        match semaphore.acquire().await {
                            Ok(permit) => {
                                permit.forget();
                                left -= 1;
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        }
        *current = size;
    }

    /// The whole /metrics body: target families, then the exporter's own.
    pub fn render(&self, format: Format) -> String {
        let targets = self.targets.load_full();
        let snapshots: Vec<_> = targets.iter().map(|t| t.state.snapshot()).collect();
        let parts: Vec<_> = snapshots
            .iter()
            .flat_map(|s| s.parts.iter().map(|p| p.as_ref()))
            .collect();
        let size: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = String::with_capacity(size + 4096);
        render_families(&mut out, format, &parts);
        self.metrics.render(&mut out, format);
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    /// Stops every polling task.
    pub fn shutdown(&self) {
        self.semaphore.close();
        self.targets.store(Arc::new(Vec::new()));
    }
}
