//! `/probe?target=NAME`: the multi-target exporter pattern of blackbox_exporter. The target
//! is polled when Prometheus asks, and the answer holds its metrics alone, so Prometheus
//! schedules the polls and shards them with its own `hashmod` relabelling.
//!
//! Each probed target keeps its client between probes (pooled connections, the login
//! token, its error counters), so a probe every scrape costs one poll, not a login.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::Target;
use crate::exposition::{render_families, Format};
use crate::poller::{Runner, TargetState};
use crate::self_metrics::{REVISION, VERSION};
use crate::trace;
use crate::upstream::{ClientError, ClientFor};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("unknown target {0:?}: /probe takes the name of a configured target")]
    UnknownTarget(String),
    #[error("target {target:?}: {error}")]
    Client { target: String, error: ClientError },
}

struct Probe {
    config: Arc<Target>,
    tls_fingerprint: u64,
    state: Arc<TargetState>,
    runner: Runner,
    /// When the last poll of this target began.
    last_poll: Option<Instant>,
}

impl Probe {
    async fn poll(&mut self, deadline: Option<Instant>) {
        self.last_poll = Some(Instant::now());
        self.runner.poll_once_until(deadline).await;
        self.runner.drop_stale();
    }
}

/// The target's series as they are now.
fn series(state: &TargetState, format: Format) -> String {
    let snapshot = state.snapshot();
    let parts: Vec<_> = snapshot.parts.iter().map(|p| p.as_ref()).collect();
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 1024);
    render_families(&mut out, format, &parts);
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

pub struct Probes {
    probes: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Probe>>>>,
    semaphore: Arc<Semaphore>,
}

impl Probes {
    /// At most `concurrency` probes poll at once.
    pub fn new(concurrency: usize) -> Self {
        Probes {
            probes: std::sync::Mutex::new(HashMap::new()),
            semaphore: Arc::new(Semaphore::new(concurrency)),
        }
    }

    /// Polls `target` once, within `deadline` when given (else each endpoint within the
    /// target's timeout), and renders its series.
    pub async fn probe(
        &self,
        target: &Target,
        http: ClientFor,
        deadline: Option<Duration>,
        format: Format,
    ) -> String {
        let started = Instant::now();
        let probe = self.entry(target, http);
        let mut probe = probe.lock().await;
        // Probes of one target that arrive while it is being polled share the next poll:
        // a poll that began after this request arrived is as fresh as one of its own, and
        // the upstream is not asked the same thing several times at once.
        if probe.last_poll.is_none_or(|at| at < started) {
            let Ok(_permit) = self.semaphore.acquire().await else {
                return String::new();
            };
            probe.poll(deadline.map(|d| started + d)).await;
        }
        series(&probe.state, format)
    }

    /// Polls `target` once, as [`Probes::probe`] does, and answers the trace of that poll
    /// (`/probe?debug=true`). Its own poll always: a shared one would have no trace. The
    /// poll counts like any other, so the next probe or scrape sees what it found.
    pub async fn trace(
        &self,
        target: &Target,
        http: ClientFor,
        deadline: Option<Duration>,
    ) -> String {
        let started = Instant::now();
        let probe = self.entry(target, http);
        let mut probe = probe.lock().await;
        let recording = {
            let Ok(_permit) = self.semaphore.acquire().await else {
                return String::new();
            };
            trace::record(probe.poll(deadline.map(|d| started + d)))
                .await
                .1
        };
        let snapshot = probe.state.snapshot();
        let endpoints: Vec<&'static str> =
            snapshot.status.endpoints.iter().map(|e| e.name).collect();
        // A secret file that cannot be read now was not sent either.
        let secrets: Vec<String> = target
            .kind
            .secrets()
            .into_iter()
            .filter_map(|source| source.read().ok())
            .map(|secret| secret.expose().to_owned())
            .collect();
        trace::render(
            &recording,
            &trace::Context {
                target: &target.name,
                type_name: target.type_name(),
                version: &format!("{VERSION} (revision {REVISION})"),
                endpoints: &endpoints,
                secrets: &secrets,
                series: &series(&probe.state, Format::Text),
            },
        )
    }

    /// The probe of `target`, kept while its config and TLS files stay the same.
    fn entry(&self, target: &Target, http: ClientFor) -> Arc<tokio::sync::Mutex<Probe>> {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = probes.get(&target.name) {
            if let Ok(probe) = existing.try_lock() {
                if *probe.config == *target && probe.tls_fingerprint == http.tls_fingerprint {
                    return Arc::clone(existing);
                }
            } else {
                // Probed right now, so in use with the current config.
                return Arc::clone(existing);
            }
        }
        let config = Arc::new(target.clone());
        let state = Arc::new(TargetState::new(Arc::clone(&config)));
        let runner = Runner::new(
            Arc::clone(&state),
            config.client(http.client),
            Arc::clone(&self.semaphore),
        );
        let probe = Arc::new(tokio::sync::Mutex::new(Probe {
            config,
            tls_fingerprint: http.tls_fingerprint,
            state,
            runner,
            last_poll: None,
        }));
        probes.insert(target.name.clone(), Arc::clone(&probe));
        probe
    }

    /// Forgets the probes of targets that are no longer configured.
    pub fn retain(&self, names: &HashSet<&str>) {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.retain(|name, _| names.contains(name.as_str()));
    }
}
