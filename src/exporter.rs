//! The running exporter: the targets of the current config (those of its shard), each
//! with its polling task, reloads that swap in a new config only when it is valid, target
//! files re-read when they change, `/probe`, and the `/metrics` body.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::AbortHandle;

use crate::config::{self, Config, ConfigError, Target, TlsConfig};
use crate::cores::on_every_core;
use crate::exposition::{encode_families, Body, Format};
use crate::poller::{supervise, IdsSink, Runner, TargetState};
use crate::probe::{ProbeError, Probes};
use crate::self_metrics::{ReloadLabels, SelfMetrics};
use crate::shard::Shard;
use crate::upstream::{ClientError, ClientFor, Clients};
use crate::webhooks::ingest::{Ingest, Routes};
use crate::webhooks::payload::Change;
use crate::webhooks::update::TargetUpdate;

/// How the exporter runs, from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Which targets this replica polls in the background.
    pub shard: Shard,
    /// Poll the targets in the background; without it, only `/probe` polls them.
    pub background: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shard: Shard::default(),
            background: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("target {target:?}: {error}")]
    Client { target: String, error: ClientError },
    #[error("no config file to reload: the exporter was started with a generated config")]
    NoFile,
    #[error("webhooks: {0}")]
    WebhookSecret(#[from] crate::secret::SecretError),
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
    /// The text of the config file last loaded, re-parsed when the target files change.
    source: std::sync::Mutex<Option<String>>,
    options: Options,
    config: ArcSwap<Config>,
    targets: ArcSwap<Vec<Arc<RunningTarget>>>,
    metrics: SelfMetrics,
    clients: Clients,
    probes: Probes,
    semaphore: Arc<Semaphore>,
    semaphore_size: std::sync::Mutex<usize>,
    /// Turns to set up a poller: see [`PollerSetup::run`].
    starting: Arc<Semaphore>,
    reload_lock: Mutex<()>,
    watcher: std::sync::Mutex<Option<AbortHandle>>,
    /// Bumped whenever any target publishes or the set of targets changes.
    changes: Arc<AtomicU64>,
    /// Bumped when the set of targets changes (start, reload): never served from an older
    /// encoding.
    target_set: AtomicU64,
    body_cache: Arc<std::sync::Mutex<BodyCache>>,
    /// The webhook receiver's counts, when the config at start had a `webhooks:` section.
    webhooks: Option<Arc<Ingest>>,
}

/// The targets' part of the /metrics body for one generation of the data, per format
/// ([text, OpenMetrics]), plain and compressed.
#[derive(Default)]
struct BodyCache {
    generation: u64,
    target_set: u64,
    /// When the data of the first encoding in this cache was read, and for how long it may
    /// be served although targets have published since.
    encoded_at: Option<Instant>,
    hold: Duration,
    plain: [Option<Arc<[Bytes]>>; 2],
    /// When each of `plain` was made, to let it go (see [`ENCODING_KEPT_FOR`]).
    plain_made: [Option<Instant>; 2],
    /// A task is on its way to let the encodings go.
    release_scheduled: bool,
    gzip: [Option<crate::gzip::Head>; 2],
}

/// Which target the webhook series of a WABA or number carry, as far as the config says:
/// the `cloud_api` target that names it. The WABAs and numbers a target's polls find
/// (with `business_id`) are added as it polls ([`Ingest::learn_routes`]).
fn webhook_routes(config: &Config) -> Routes {
    let cloud = || {
        config.targets.iter().filter_map(|t| match &t.kind {
            crate::providers::TargetKind::CloudApi(c) => Some((t.name.as_str(), c)),
            _ => None,
        })
    };
    Routes::new(
        cloud().filter_map(|(name, c)| c.waba_id.as_deref().map(|w| (w, name))),
        cloud().flat_map(|(name, c)| c.phone_number_ids.iter().map(move |n| (n.as_str(), name))),
    )
}

/// With thousands of targets some target publishes every few milliseconds, so "encode when
/// the data changes" alone would encode at every scrape. An encoding is kept for this many
/// times as long as it took (at most [`MAX_ENCODING_HOLD`]): encoding then costs at most
/// 1/50 of a core however often Prometheus scrapes, while a small config, encoded in
/// microseconds, is served fresh at every change.
const ENCODING_HOLD_FACTOR: u32 = 50;
const MAX_ENCODING_HOLD: Duration = Duration::from_secs(1);

/// An encoding shares the buffers of the polls it was made from, and keeps them alive: it
/// is let go this long after it was made, so that between scrapes the exporter holds only
/// its targets' current data. (The compressed form holds copies and stays.)
const ENCODING_KEPT_FOR: Duration = Duration::from_secs(1);

impl Exporter {
    /// Starts polling the targets of `config` that `options` give this replica, and
    /// watching its target files. Must be called within a tokio runtime.
    pub fn start(
        config: Config,
        config_file: Option<PathBuf>,
        options: Options,
    ) -> Result<Arc<Self>, ReloadError> {
        let source = config_file
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok());
        Exporter::start_with_source(config, config_file, source, options)
    }

    /// [`Exporter::start`], given the text `config` was parsed from (what a change of the
    /// target files parses again) rather than reading the file a second time.
    pub fn start_with_source(
        config: Config,
        config_file: Option<PathBuf>,
        source: Option<String>,
        options: Options,
    ) -> Result<Arc<Self>, ReloadError> {
        let config = Arc::new(config);
        let concurrency = config.global.max_concurrent_polls;
        let webhooks = match &config.webhooks {
            Some(section) => Some(Arc::new(Ingest::new(
                section,
                section.credentials()?,
                webhook_routes(&config),
            ))),
            None => None,
        };
        let exporter = Arc::new(Exporter {
            config_file,
            source: std::sync::Mutex::new(source),
            options,
            config: ArcSwap::new(Arc::clone(&config)),
            targets: ArcSwap::from_pointee(Vec::new()),
            metrics: SelfMetrics::new(options.shard),
            clients: Clients::default(),
            probes: Probes::new(concurrency),
            semaphore: Arc::new(Semaphore::new(concurrency)),
            semaphore_size: std::sync::Mutex::new(concurrency),
            // No turns until every task of the config has been spawned (below).
            starting: Arc::new(Semaphore::new(0)),
            reload_lock: Mutex::new(()),
            watcher: std::sync::Mutex::new(None),
            // Starts above BodyCache's generation 0, so the first scrape encodes.
            changes: Arc::new(AtomicU64::new(1)),
            target_set: AtomicU64::new(0),
            body_cache: Arc::new(std::sync::Mutex::new(BodyCache::default())),
            webhooks,
        });
        exporter.apply(config)?;
        // The pollers set up only once every task exists: spawning them all, which the first
        // answer waits for, has every core to itself until then.
        exporter.starting.add_permits(setting_up_at_once());
        exporter.record_reload(true);
        let watcher = tokio::spawn(watch_target_files(Arc::downgrade(&exporter)));
        *exporter.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher.abort_handle());
        Ok(exporter)
    }

    pub fn options(&self) -> Options {
        self.options
    }

    /// The webhook receiver's counts, when the receiver is on.
    pub fn webhooks(&self) -> Option<Arc<Ingest>> {
        self.webhooks.clone()
    }

    /// Business changes the receiver accepted for WABAs of targets: each that changes a
    /// polled series (a template's status or quality, a number's quality, tier or
    /// throughput) goes to its target, whose series show it before the next poll.
    pub fn webhook_changes(&self, changes: Vec<(String, Change)>) {
        for (target, change) in changes {
            if let Some(update) = TargetUpdate::from_change(&change) {
                self.deliver_webhook_update(&target, update);
            }
        }
    }

    /// Hands `update` to the polling task of target `target`, which applies it to the data
    /// of its last polls and publishes at once. False when this replica does not poll that
    /// target, or too many updates wait for it.
    pub fn deliver_webhook_update(&self, target: &str, update: TargetUpdate) -> bool {
        let targets = self.targets.load();
        let Some(running) = targets.iter().find(|t| t.state.config.name == target) else {
            tracing::debug!(
                target_name = target,
                update = update.kind(),
                "webhook update for a target this replica does not poll: ignored"
            );
            return false;
        };
        let delivered = running.state.deliver(update);
        if !delivered {
            tracing::debug!(
                target_name = target,
                "too many webhook updates waiting for the target: one dropped"
            );
        }
        delivered
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    pub fn targets(&self) -> Arc<Vec<Arc<RunningTarget>>> {
        self.targets.load_full()
    }

    /// Re-reads the config file and its target files; the running config is replaced only
    /// when the new one is valid.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = match &self.config_file {
            None => Err(ReloadError::NoFile),
            Some(path) => match std::fs::read_to_string(path) {
                Err(error) => Err(ReloadError::Config(ConfigError::Read {
                    path: path.clone(),
                    error,
                })),
                Ok(text) => Config::parse(&text, path)
                    .map_err(ReloadError::from)
                    .and_then(|config| self.apply(Arc::new(config)))
                    .map(|()| {
                        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                    }),
            },
        };
        self.finish_reload(&result, "configuration reloaded");
        result
    }

    /// The target files changed: the config text last loaded is parsed again with them.
    async fn refresh_target_files(&self) -> Result<(), ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let source = self
            .source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let result = match (&self.config_file, source) {
            (Some(path), Some(text)) => Config::parse(&text, path)
                .map_err(ReloadError::from)
                .and_then(|config| self.apply(Arc::new(config))),
            _ => Err(ReloadError::NoFile),
        };
        self.finish_reload(&result, "target files changed: targets reloaded");
        result
    }

    fn finish_reload(&self, result: &Result<(), ReloadError>, done: &str) {
        self.record_reload(result.is_ok());
        match result {
            Ok(()) => tracing::info!(
                targets = self.targets.load().len(),
                configured = self.config.load().targets.len(),
                "{done}"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "configuration reload failed; keeping the running configuration"
            ),
        }
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
    fn apply(&self, config: Arc<Config>) -> Result<(), ReloadError> {
        // Read first, so that an unreadable secret file rejects the whole reload.
        let webhook_credentials = config
            .webhooks
            .as_ref()
            .map(|section| section.credentials())
            .transpose()?;
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
        let polled = config
            .targets
            .iter()
            .filter(|t| self.options.background && self.options.shard.owns(&t.name));
        // Targets mostly share a few TLS settings: each distinct one is read once here, and
        // the plan names it by its place in `clients`.
        let mut clients: Vec<ClientFor> = Vec::new();
        let mut client_of: HashMap<&TlsConfig, usize> = HashMap::new();
        for target in polled {
            let client = match client_of.entry(&target.tls) {
                Entry::Occupied(read) => *read.get(),
                Entry::Vacant(unread) => {
                    clients.push(self.clients.get(&target.tls).map_err(|error| {
                        ReloadError::Client {
                            target: target.name.clone(),
                            error,
                        }
                    })?);
                    *unread.insert(clients.len() - 1)
                }
            };
            let tls_fingerprint = clients[client].tls_fingerprint;
            in_use.push((&target.tls, tls_fingerprint));
            match by_name.remove(target.name.as_str()) {
                Some(running)
                    if *running.state.config == **target
                        && running.tls_fingerprint == tls_fingerprint =>
                {
                    plan.push(Ok(running))
                }
                _ => plan.push(Err((target, client))),
            }
        }
        // What stopped or starts afresh routes nowhere until its new task has polled; done
        // before the new tasks start, so none of them is forgotten after it learnt.
        if let Some(ingest) = &self.webhooks {
            let starting = plan.iter().filter_map(|p| p.as_ref().err());
            for name in by_name
                .keys()
                .copied()
                .chain(starting.map(|(target, _)| target.name.as_str()))
            {
                ingest.forget_routes(name);
            }
        }
        self.resize_semaphore(config.global.max_concurrent_polls);
        // Spawning thousands of tasks, each with its state, is what start-up takes longest
        // for after reading the config: it is spread over the cores.
        let runtime = tokio::runtime::Handle::current();
        let next: Vec<Arc<RunningTarget>> =
            on_every_core(&plan, SPAWNS_PER_THREAD, |entry| match entry {
                Ok(running) => Arc::clone(running),
                Err((target, client)) => {
                    self.spawn(&runtime, Arc::clone(target), &clients[*client])
                }
            });
        self.metrics.targets.set(next.len() as i64);
        self.targets.store(Arc::new(next));
        self.target_set.fetch_add(1, Ordering::Release);
        self.changes.fetch_add(1, Ordering::Release);
        self.clients.retain(&in_use);
        let names: HashSet<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        self.probes.retain(&names);
        // Each replica speaks for its own shard's targets (with one replica, all of them).
        for target in config
            .targets
            .iter()
            .filter(|t| self.options.shard.owns(&t.name))
        {
            target.kind.log_warnings(&target.name);
        }
        match (&self.webhooks, &config.webhooks, webhook_credentials) {
            (Some(ingest), Some(section), Some(credentials)) => {
                ingest.reconfigure(section, credentials, webhook_routes(&config));
            }
            (None, Some(_), _) => tracing::warn!(
                "the webhooks section is new: the receiver starts at the next restart"
            ),
            (Some(_), None, _) => tracing::warn!(
                "the webhooks section is gone: the receiver keeps its last settings until the next restart"
            ),
            _ => {}
        }
        self.config.store(config);
        // Targets left in `current` only are dropped with it, which aborts their tasks.
        Ok(())
    }

    fn spawn(
        &self,
        runtime: &tokio::runtime::Handle,
        config: Arc<Target>,
        http: &ClientFor,
    ) -> Arc<RunningTarget> {
        let state = Arc::new(TargetState::counting(
            Arc::clone(&config),
            Arc::clone(&self.changes),
        ));
        let ids_sink: Option<IdsSink> = self.webhooks.as_ref().map(|ingest| {
            let (ingest, name) = (Arc::clone(ingest), config.name.clone());
            Arc::new(move |ids: &crate::providers::PolledIds| {
                ingest.learn_routes(&name, &ids.wabas, &ids.numbers);
            }) as IdsSink
        });
        let setup = Arc::new(PollerSetup {
            state: Arc::clone(&state),
            http: http.client.clone(),
            semaphore: Arc::clone(&self.semaphore),
            starting: Arc::clone(&self.starting),
            ids_sink,
        });
        let start = move || Arc::clone(&setup).run();
        let task = runtime
            .spawn(supervise(
                config.name.clone(),
                start,
                config.interval,
                self.metrics.target_panics.clone(),
                self.metrics.poller_tasks.clone(),
            ))
            .abort_handle();
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
        String::from_utf8_lossy(&self.exposition(format, false).to_vec()).into_owned()
    }

    /// The /metrics body in `format`, gzipped or not. The targets' families are encoded
    /// (and compressed) when the data changed, at most once per hold (see
    /// `ENCODING_HOLD_FACTOR`), and shared by the scrapes meanwhile; only the exporter's
    /// own few series are rendered per request (CPU and memory are read at each scrape).
    pub fn exposition(&self, format: Format, gzip: bool) -> Body {
        let mut own = String::with_capacity(4096);
        self.metrics.render(&mut own, format);
        if let Some(webhooks) = &self.webhooks {
            webhooks.render(&mut own, format);
        }
        if format == Format::OpenMetrics {
            own.push_str("# EOF\n");
        }
        let slot = usize::from(format == Format::OpenMetrics);
        // The data as it was when this scrape arrived: any encoding of data at least this
        // new will do. With many targets the data changes all the time, so a scrape that
        // waited for another's encoding takes it rather than encoding again.
        let arrived = self.changes.load(Ordering::Acquire);
        let target_set = self.target_set.load(Ordering::Acquire);
        // Held while encoding, so scrapes that come together share one encoding.
        let mut cache = self.body_cache.lock().unwrap_or_else(|e| e.into_inner());
        let held = cache.target_set == target_set
            && cache.encoded_at.is_some_and(|at| at.elapsed() < cache.hold);
        if cache.generation < arrived && !held {
            *cache = BodyCache {
                generation: self.changes.load(Ordering::Acquire),
                target_set,
                release_scheduled: cache.release_scheduled,
                ..BodyCache::default()
            };
        }
        if gzip {
            if let Some(head) = cache.gzip[slot].clone() {
                drop(cache);
                return head.with_tail(own.as_bytes());
            }
        }
        let plain = match &cache.plain[slot] {
            Some(body) => Arc::clone(body),
            None => {
                let started = Instant::now();
                let body = self.encode_targets(format);
                if cache.encoded_at.is_none() {
                    cache.encoded_at = Some(started);
                    cache.hold = (started.elapsed() * ENCODING_HOLD_FACTOR).min(MAX_ENCODING_HOLD);
                }
                cache.plain[slot] = Some(Arc::clone(&body));
                cache.plain_made[slot] = Some(Instant::now());
                if !cache.release_scheduled {
                    cache.release_scheduled = self.let_go_later();
                }
                body
            }
        };
        if !gzip {
            return Body {
                shared: plain,
                own: vec![Bytes::from(own)],
            };
        }
        let head = match &cache.gzip[slot] {
            Some(head) => head.clone(),
            None => {
                let head = crate::gzip::Head::new(&plain);
                cache.gzip[slot] = Some(head.clone());
                head
            }
        };
        drop(cache);
        head.with_tail(own.as_bytes())
    }

    /// Starts the task that drops the cache's encodings once they are
    /// [`ENCODING_KEPT_FOR`] old (scrapes still sending one keep it until they are done);
    /// it ends when none is left. One at a time; false outside a runtime (some tests),
    /// where encodings stay cached.
    fn let_go_later(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let cache = Arc::clone(&self.body_cache);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(ENCODING_KEPT_FOR).await;
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                for slot in 0..2 {
                    if cache.plain_made[slot].is_some_and(|at| at.elapsed() >= ENCODING_KEPT_FOR) {
                        cache.plain[slot] = None;
                        cache.plain_made[slot] = None;
                    }
                }
                if cache.plain.iter().all(Option::is_none) {
                    cache.release_scheduled = false;
                    return;
                }
            }
        });
        true
    }

    /// The targets' families, sharing the buffers their polls left.
    fn encode_targets(&self, format: Format) -> Arc<[Bytes]> {
        let targets = self.targets.load_full();
        let snapshots: Vec<_> = targets.iter().map(|t| t.state.snapshot()).collect();
        let parts: Vec<_> = snapshots
            .iter()
            .flat_map(|s| s.parts.iter().map(|p| p.as_ref()))
            .collect();
        Arc::from(encode_families(format, &parts))
    }

    /// Polls the configured target `name` now (whichever shard it belongs to) and returns
    /// its metrics alone: the multi-target exporter pattern. A failed poll is data
    /// (`whatsapp_up` 0), not an error; `deadline` bounds the whole poll.
    pub async fn probe(
        &self,
        name: &str,
        deadline: Option<Duration>,
        format: Format,
    ) -> Result<String, ProbeError> {
        self.probe_as(name, deadline, Some(format)).await
    }

    /// Polls the target `name` now and answers the trace of that poll
    /// (`/probe?debug=true`).
    pub async fn probe_trace(
        &self,
        name: &str,
        deadline: Option<Duration>,
    ) -> Result<String, ProbeError> {
        self.probe_as(name, deadline, None).await
    }

    /// The series in `format`, or with `None` the trace.
    async fn probe_as(
        &self,
        name: &str,
        deadline: Option<Duration>,
        format: Option<Format>,
    ) -> Result<String, ProbeError> {
        let config = self.config.load_full();
        let Some(target) = config.target(name) else {
            return Err(ProbeError::UnknownTarget(name.to_owned()));
        };
        let http = self
            .clients
            .get(&target.tls)
            .map_err(|error| ProbeError::Client {
                target: name.to_owned(),
                error,
            })?;
        Ok(match format {
            Some(format) => self.probes.probe(target, http, deadline, format).await,
            None => self.probes.trace(target, http, deadline).await,
        })
    }

    /// Stops every polling task and the target-file watcher.
    pub fn shutdown(&self) {
        if let Some(watcher) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            watcher.abort();
        }
        self.semaphore.close();
        self.targets.store(Arc::new(Vec::new()));
    }
}

/// What a target's task needs to set up its poller, kept for each start (a panic starts it
/// again).
struct PollerSetup {
    state: Arc<TargetState>,
    http: reqwest::Client,
    semaphore: Arc<Semaphore>,
    starting: Arc<Semaphore>,
    ids_sink: Option<IdsSink>,
}

impl PollerSetup {
    /// Thousands of tasks start at once (at start-up, at a reload). Each sets up its poller
    /// (client, first publish, timer) in a turn of `starting`, which lets a few do so at a
    /// time and leaves a worker free: a request that arrives meanwhile (the first scrape)
    /// is not queued behind all of them.
    async fn run(self: Arc<Self>) {
        // Closed only when the exporter shuts down, which aborts this task.
        let turn = self.starting.acquire().await.ok();
        let client = self.state.config.client(self.http.clone());
        let runner = Runner::new(Arc::clone(&self.state), client, Arc::clone(&self.semaphore));
        let runner = match &self.ids_sink {
            Some(sink) => runner.with_ids_sink(Arc::clone(sink)),
            None => runner,
        };
        // Boxed once it has its turn: a task waiting for its turn holds only what it takes
        // to start.
        holding_until_it_waits(Box::pin(runner.run()), turn).await;
    }
}

/// Tasks that each thread spawning them takes at least: with fewer, one thread spawns them
/// all sooner than another thread starts.
const SPAWNS_PER_THREAD: usize = 1000;

/// How many tasks set up their pollers at once: one fewer than the runtime's workers (at
/// least one), so that one worker is always free for requests.
fn setting_up_at_once() -> usize {
    let workers = tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers());
    workers.saturating_sub(1).max(1)
}

/// Runs `future`, holding `turn` through its first poll only.
async fn holding_until_it_waits<F: std::future::Future, T>(future: F, turn: T) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut turn = Some(turn);
    std::future::poll_fn(move |cx| {
        let polled = future.as_mut().poll(cx);
        drop(turn.take());
        polled
    })
    .await
}

/// Checks the target files every `target_files_refresh_interval` and reloads the targets
/// when what they say changed (like Prometheus' file_sd). Ends with the exporter.
async fn watch_target_files(exporter: Weak<Exporter>) {
    let mut last: Option<u64> = None;
    loop {
        let (patterns, every) = match exporter.upgrade() {
            Some(e) => {
                let config = e.config();
                (
                    config.target_files.clone(),
                    config.global.target_files_refresh_interval,
                )
            }
            None => return,
        };
        if !patterns.is_empty() {
            let fingerprint =
                tokio::task::spawn_blocking(move || config::target_files_fingerprint(&patterns))
                    .await
                    .ok();
            if last.is_some() && fingerprint != last {
                let Some(e) = exporter.upgrade() else { return };
                // Logged and counted by the reload itself.
                let _ = e.refresh_target_files().await;
            }
            last = fingerprint;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::poller::tests::PANIC_ON_POLL;

    /// Scrapes close together share one encoding; a second after it was made the cache
    /// lets it go (it pins the polls' buffers), and the next scrape encodes again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_encoding_is_shared_then_let_go() {
        let config = Config::parse(
            "targets:\n  - {name: a, type: onprem, base_url: \"http://127.0.0.1:9\", api_key: key-of-16-chars}\n",
            Path::new("test.yaml"),
        )
        .unwrap();
        let exporter = Exporter::start(config, None, Options::default()).unwrap();
        let first = exporter.exposition(Format::Text, false);
        let second = exporter.exposition(Format::Text, false);
        assert!(Arc::ptr_eq(&first.shared, &second.shared));
        let weak = Arc::downgrade(&first.shared);
        drop((first, second));
        assert!(weak.upgrade().is_some(), "kept by the cache");
        let deadline = Instant::now() + ENCODING_KEPT_FOR * 5;
        while weak.upgrade().is_some() {
            assert!(Instant::now() < deadline, "never let go");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let third = exporter.exposition(Format::Text, false);
        assert!(String::from_utf8_lossy(&third.to_vec())
            .contains("whatsapp_target_info{target=\"a\",type=\"onprem\"} 1\n"));
        exporter.shutdown();
    }

    /// A target whose task panics at every poll, holding the only poll slot: each panic is
    /// counted and the task restarted, the slot is given back, so the other target goes on
    /// polling and /metrics renders.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_target_is_counted_and_does_not_stop_the_others() {
        let text = format!(
            "global:\n  interval: 50ms\n  timeout: 50ms\n  max_concurrent_polls: 1\ntargets:\n\
             - name: {PANIC_ON_POLL}\n  type: onprem\n  base_url: http://127.0.0.1:1\n  api_key: abcdefghijklmnop\n\
             - name: steady\n  type: onprem\n  base_url: http://127.0.0.1:1\n  api_key: abcdefghijklmnop\n"
        );
        let config = Config::parse(&text, Path::new("test.yaml")).expect("a valid config");
        let exporter = Exporter::start(config, None, Options::default()).expect("starts");
        let count = |metrics: &str, prefix: &str| -> f64 {
            metrics
                .lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let metrics = loop {
            let metrics = exporter.render(Format::Text);
            if count(&metrics, "whatsapp_exporter_target_panics_total ") >= 3.0
                && count(&metrics, "whatsapp_poll_errors_total{target=\"steady\"") >= 3.0
            {
                break metrics;
            }
            assert!(
                Instant::now() < deadline,
                "no panics counted or the other target stopped:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            metrics.contains("\nwhatsapp_exporter_poller_tasks 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("\nwhatsapp_exporter_targets 2\n"),
            "{metrics}"
        );
        exporter.shutdown();
    }

    /// A config of thousands of targets: every task is spawned (over several threads),
    /// every target is on /metrics at once, and every poller is set up in its turn, its
    /// first publish showing its request counters.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_poller_of_a_large_config_is_set_up() {
        let targets = 2 * SPAWNS_PER_THREAD + 500;
        let mut text = "global:\n  interval: 1h\n  timeout: 1s\ntargets:\n".to_owned();
        for i in 0..targets {
            text.push_str(&format!(
                "  - {{name: t{i}, type: dialog360, base_url: \"http://127.0.0.1:9\", api_key: k}}\n"
            ));
        }
        let config = Config::parse(&text, Path::new("test.yaml")).expect("a valid config");
        let exporter = Exporter::start(config, None, Options::default()).expect("starts");
        let lines = |metrics: &str, prefix: &str| {
            metrics
                .lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
                .collect::<HashSet<String>>()
                .len()
        };
        let first = exporter.render(Format::Text);
        assert_eq!(lines(&first, "whatsapp_target_info{"), targets);
        assert!(
            first.contains(&format!("\nwhatsapp_exporter_targets {targets}\n")),
            "{first}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metrics = exporter.render(Format::Text);
            if lines(&metrics, "whatsapp_upstream_requests_total{") == targets {
                assert!(
                    metrics.contains(&format!("\nwhatsapp_exporter_poller_tasks {targets}\n")),
                    "{metrics}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "not every poller was set up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // All turns are back.
        assert_eq!(exporter.starting.available_permits(), setting_up_at_once());
        exporter.shutdown();
    }

    /// A task holds its turn while its poller is set up, through the first poll of its
    /// future, and gives it back when that future first waits.
    #[tokio::test]
    async fn a_turn_is_held_through_the_first_poll_only() {
        let turns = Arc::new(Semaphore::new(1));
        let turn = turns.clone().acquire_owned().await.expect("open");
        let (resume, resumed) = tokio::sync::oneshot::channel::<()>();
        let during_first_poll = Arc::new(AtomicU64::new(u64::MAX));
        let task = tokio::spawn(holding_until_it_waits(
            {
                let (turns, during_first_poll) =
                    (Arc::clone(&turns), Arc::clone(&during_first_poll));
                async move {
                    during_first_poll.store(turns.available_permits() as u64, Ordering::SeqCst);
                    resumed.await.ok();
                }
            },
            turn,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while turns.available_permits() == 0 {
            assert!(Instant::now() < deadline, "the turn was not given back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(during_first_poll.load(Ordering::SeqCst), 0);
        resume.send(()).expect("the task waits");
        task.await.expect("ends");
        assert_eq!(turns.available_permits(), 1);
    }
}
