//! One task per target: polls its endpoints on the target's interval, keeps the last good
//! data of each endpoint until it goes stale, and publishes an immutable snapshot that
//! scrapes read without waiting on a poll.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;
use tokio::time::sleep_until;

use crate::config::Target;
use crate::exposition::{Family, Samples};
use crate::json::Problems;
use crate::providers::{Applied, Client, PolledIds, TargetClient};
use crate::timestamp::unix_seconds;
use crate::trace;
use crate::upstream::{PollError, Polled, Reason, RequestCount};
use crate::webhooks::update::TargetUpdate;

/// After a rate limit without Retry-After the next poll waits the interval plus this,
/// doubled at each refusal in a row, up to one more interval: an overloaded upstream sees
/// fewer polls, never more.
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Webhook updates waiting for a target's task at most: more in one burst are dropped (the
/// next poll reads what they said anyway).
const MAX_WAITING_UPDATES: usize = 1024;

/// Told the WABAs and numbers a target polls, each time they change.
pub type IdsSink = Arc<dyn Fn(&PolledIds) + Send + Sync>;

/// What a scrape and the landing page see of a target: replaced whole after every poll.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `whatsapp_target_info`, then the poll series, then each endpoint's last good data.
    pub parts: Vec<Arc<Samples>>,
    pub status: TargetStatus,
}

#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    pub last_poll: Option<SystemTime>,
    pub up: Option<bool>,
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Clone, Debug)]
pub struct EndpointStatus {
    pub name: &'static str,
    pub success: Option<bool>,
    pub last_success: Option<SystemTime>,
    pub error: Option<String>,
    /// What the last good answer had that could not be read, path and why.
    pub problems: Arc<Problems>,
}

/// The shared face of a target: its config and latest snapshot.
#[derive(Debug)]
pub struct TargetState {
    pub config: Arc<Target>,
    snapshot: ArcSwap<Snapshot>,
    /// Bumped at every publish: tells the exporter its cached /metrics body is old.
    changes: Arc<AtomicU64>,
    /// Webhook updates for the target's task, which owns the client they change.
    updates: std::sync::Mutex<VecDeque<TargetUpdate>>,
    updates_waiting: tokio::sync::Notify,
}

impl TargetState {
    pub fn new(config: Arc<Target>) -> Self {
        Self::counting(config, Arc::new(AtomicU64::new(0)))
    }

    /// A state whose every publish bumps `changes`.
    pub fn counting(config: Arc<Target>, changes: Arc<AtomicU64>) -> Self {
        let info = Arc::new(target_info(&config));
        TargetState {
            config,
            snapshot: ArcSwap::from_pointee(Snapshot {
                parts: vec![info],
                status: TargetStatus::default(),
            }),
            changes,
            updates: std::sync::Mutex::new(VecDeque::new()),
            updates_waiting: tokio::sync::Notify::new(),
        }
    }

    /// Hands a webhook's update to the target's task, which applies it between polls.
    /// False when too many are waiting already: it is dropped.
    pub fn deliver(&self, update: TargetUpdate) -> bool {
        {
            let mut waiting = self.updates.lock().unwrap_or_else(|e| e.into_inner());
            if waiting.len() >= MAX_WAITING_UPDATES {
                return false;
            }
            waiting.push_back(update);
        }
        self.updates_waiting.notify_one();
        true
    }

    fn take_updates(&self) -> VecDeque<TargetUpdate> {
        std::mem::take(&mut *self.updates.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.changes.fetch_add(1, Ordering::Release);
    }
}

fn target_info(config: &Target) -> Samples {
    let mut samples = Samples::new(&config.name);
    let mut labels: Vec<(&str, &str)> = vec![("type", config.type_name())];
    labels.extend(config.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    samples.push(Family::TargetInfo, &labels, 1.0);
    samples.shrink();
    samples
}

/// Wake-ups of the poll schedule are gathered on ticks this far apart: thousands of targets
/// then wake the process a hundred times a second, a few polls each, rather than once per
/// poll, and every wake-up costs context switches whatever it does.
const POLL_TICK: Duration = Duration::from_millis(10);

/// `at`, put off to the next [`POLL_TICK`] (counted from when the process started polling).
/// Only the wake-up moves: the schedule is kept from the exact times, so it does not drift.
fn on_tick(at: Instant) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let tick = POLL_TICK.as_nanos();
    let since = at.saturating_duration_since(epoch).as_nanos();
    let rounded = since.div_ceil(tick) * tick;
    // Fits: a u64 of nanoseconds is 584 years of uptime.
    epoch + Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

/// Where in its interval a target is polled, so polls spread over the interval.
pub fn phase(name: &str, interval: Duration) -> Duration {
    let nanos = interval.as_nanos().max(1);
    Duration::from_nanos((u128::from(crate::shard::stable_hash(name)) % nanos) as u64)
}

#[derive(Debug)]
struct EndpointRun {
    name: &'static str,
    stale_after: Duration,
    data: Option<Arc<Samples>>,
    data_at: Option<Instant>,
    success: Option<bool>,
    last_success: Option<SystemTime>,
    duration: Duration,
    errors: BTreeMap<Reason, u64>,
    last_error: Option<PollError>,
    upstream_errors: u64,
    last_upstream_error: Option<String>,
    /// Series in `data`.
    data_series: usize,
    /// Data series left out over the target's series_limit, counted over all polls.
    series_dropped: u64,
    /// Items of answers that could not be read, counted over all polls.
    items_skipped: u64,
    /// What the last good answer had that could not be read.
    problems: Arc<Problems>,
    /// Requests sent upstream to poll this endpoint, over all polls.
    requests: RequestCount,
}

/// The private side of a target's task.
pub struct Runner {
    state: Arc<TargetState>,
    client: Client,
    semaphore: Arc<Semaphore>,
    info: Arc<Samples>,
    endpoints: Vec<EndpointRun>,
    rate_limited_in_a_row: u32,
    logged_unknown: HashSet<(Family, String)>,
    last_poll: Option<SystemTime>,
    ids_sink: Option<IdsSink>,
    /// The polled ids last told to `ids_sink`.
    told_ids: Option<Arc<PolledIds>>,
}

impl Runner {
    pub fn new(state: Arc<TargetState>, client: Client, semaphore: Arc<Semaphore>) -> Self {
        let default_stale = state.config.stale_after;
        let endpoints = client
            .endpoints()
            .into_iter()
            .enumerate()
            .map(|(index, name)| EndpointRun {
                name,
                stale_after: client.stale_after(index, default_stale),
                data: None,
                data_at: None,
                success: None,
                last_success: None,
                duration: Duration::ZERO,
                errors: BTreeMap::new(),
                last_error: None,
                upstream_errors: 0,
                last_upstream_error: None,
                data_series: 0,
                series_dropped: 0,
                items_skipped: 0,
                problems: Arc::default(),
                requests: RequestCount::default(),
            })
            .collect();
        let info = Arc::new(target_info(&state.config));
        Runner {
            state,
            client,
            semaphore,
            info,
            endpoints,
            rate_limited_in_a_row: 0,
            logged_unknown: HashSet::new(),
            last_poll: None,
            ids_sink: None,
            told_ids: None,
        }
    }

    /// Tells `sink` the WABAs and numbers the target polls after each poll that changed
    /// them (the webhook receiver routes their deliveries to the target).
    pub fn with_ids_sink(mut self, sink: IdsSink) -> Self {
        self.ids_sink = Some(sink);
        self
    }

    /// Polls forever on the target's schedule; the task is aborted to stop it.
    pub async fn run(mut self) {
        // The request counters from 0, before the first request: increase() then counts
        // the first poll's requests too.
        self.publish();
        let config = Arc::clone(&self.state.config);
        let mut next = Instant::now() + phase(&config.name, config.interval);
        loop {
            if let Some(stale_at) = self.next_stale_deadline() {
                if stale_at < next {
                    if self.sleep_until(stale_at).await {
                        self.drop_stale();
                    }
                    continue;
                }
            }
            if !self.sleep_until(on_tick(next)).await {
                continue;
            }
            let retry = {
                let semaphore = Arc::clone(&self.semaphore);
                let Ok(_permit) = semaphore.acquire().await else {
                    return; // closed: the exporter is shutting down
                };
                #[cfg(test)]
                if config.name.starts_with(tests::PANIC_ON_POLL) {
                    panic!("test-only panic polling {}", config.name);
                }
                // Boxed: a poll's future holds a whole request and response, and the task
                // of each of thousands of targets would otherwise keep that room between polls.
                Box::pin(self.poll_once()).await
            };
            let now = Instant::now();
            let factor = self.client.interval_factor();
            next = match retry {
                Some(delay) => now + delay,
                None if factor > 1 => now + config.interval * factor,
                None => {
                    let mut due = next + config.interval;
                    while due <= now {
                        due += config.interval;
                    }
                    due
                }
            };
        }
    }

    /// Waits until `at`, applying webhook updates as they come; false when updates came
    /// first (the caller waits again).
    async fn sleep_until(&mut self, at: Instant) -> bool {
        let state = Arc::clone(&self.state);
        let updates_came = tokio::select! {
            () = sleep_until(at.into()) => false,
            () = state.updates_waiting.notified() => true,
        };
        if updates_came {
            self.apply_updates();
        }
        !updates_came
    }

    /// Applies the webhook updates waiting to the client's data, and publishes the
    /// endpoints they changed, rendered again. Only endpoints that hold data: what went
    /// stale stays gone until a poll succeeds.
    pub fn apply_updates(&mut self) {
        let updates = self.state.take_updates();
        if updates.is_empty() {
            return;
        }
        let config = Arc::clone(&self.state.config);
        let name = config.name.as_str();
        let mut changed = BTreeSet::new();
        for update in &updates {
            match self.client.apply_update(update) {
                Applied::Changed { endpoint } => {
                    changed.insert(endpoint);
                }
                Applied::Unchanged => {}
                // Nothing of the delivery itself is logged.
                Applied::Unknown => tracing::debug!(
                    target_name = name,
                    update = update.kind(),
                    "webhook update names nothing the target polls: ignored"
                ),
            }
        }
        let mut published = false;
        for index in changed {
            if self.endpoints.get(index).is_none_or(|e| e.data.is_none()) {
                continue;
            }
            if let Some(samples) = self.client.render(index, name) {
                self.store_data(index, samples);
                published = true;
            }
        }
        if published {
            self.publish();
        }
    }

    /// Tells the ids sink what the target polls, when that changed since it was last told.
    fn tell_polled_ids(&mut self) {
        let Some(sink) = &self.ids_sink else {
            return;
        };
        let Some(ids) = self.client.polled_ids() else {
            return;
        };
        if self
            .told_ids
            .as_ref()
            .is_some_and(|told| Arc::ptr_eq(told, &ids))
        {
            return;
        }
        sink(&ids);
        self.told_ids = Some(ids);
    }

    /// Keeps `samples` as the data of endpoint `index`, within what the target's
    /// `series_limit` leaves it: the other endpoints keep what they hold.
    fn store_data(&mut self, index: usize, mut samples: Samples) {
        let config = Arc::clone(&self.state.config);
        let others: usize = self
            .endpoints
            .iter()
            .enumerate()
            .filter(|(i, e)| *i != index && e.data.is_some())
            .map(|(_, e)| e.data_series)
            .sum();
        let room = config.series_limit.saturating_sub(others);
        let answered = samples.series();
        let dropped = samples.limit_series(room);
        let endpoint = &mut self.endpoints[index];
        if dropped > 0 {
            endpoint.series_dropped += dropped as u64;
            tracing::warn!(
                target_name = %config.name,
                endpoint = endpoint.name,
                series = answered,
                dropped,
                series_limit = config.series_limit,
                "answer over series_limit: series left out"
            );
        }
        endpoint.data_series = answered - dropped;
        samples.shrink();
        endpoint.data = Some(Arc::new(samples));
    }

    fn next_stale_deadline(&self) -> Option<Instant> {
        self.endpoints
            .iter()
            .filter(|e| e.data.is_some())
            .filter_map(|e| e.data_at.map(|at| at + e.stale_after))
            .min()
    }

    /// Drops the data of endpoints whose last success is older than their stale_after.
    pub fn drop_stale(&mut self) {
        let now = Instant::now();
        let mut dropped = false;
        for endpoint in &mut self.endpoints {
            let stale = endpoint
                .data_at
                .is_some_and(|at| now >= at + endpoint.stale_after);
            if endpoint.data.is_some() && stale {
                tracing::warn!(
                    target_name = %self.state.config.name,
                    endpoint = endpoint.name,
                    stale_after = %humantime::format_duration(endpoint.stale_after),
                    "no successful poll within stale_after: dropping the endpoint's data series"
                );
                endpoint.data = None;
                dropped = true;
            }
        }
        if dropped {
            self.publish();
        }
    }

    /// Polls every endpoint once and publishes the result. When the upstream rate-limited
    /// a poll, returns the delay until the next one: its Retry-After if longer than the
    /// interval, else the interval plus a backoff.
    pub async fn poll_once(&mut self) -> Option<Duration> {
        self.poll_once_until(None).await
    }

    /// [`Runner::poll_once`], every endpoint's poll also ending at `deadline` (a probe's
    /// scrape timeout).
    pub async fn poll_once_until(&mut self, deadline: Option<Instant>) -> Option<Duration> {
        let config = Arc::clone(&self.state.config);
        let mut retry_after: Option<Duration> = None;
        let mut rate_limited = false;
        if deadline.is_some() {
            self.client.hurry();
        }
        self.client.begin_cycle();
        for index in 0..self.endpoints.len() {
            let started = Instant::now();
            let timeout = self.client.poll_timeout(index, config.timeout);
            let timeout = deadline.map_or(timeout, |d| {
                timeout.min(d.saturating_duration_since(started))
            });
            trace::endpoint(self.endpoints[index].name);
            let requests = self.endpoints[index].requests.clone();
            let poll = requests.count(self.client.poll(index, &config.name));
            let result = match tokio::time::timeout(timeout, poll).await {
                Ok(result) => result,
                Err(_) => Err(PollError::new(
                    Reason::Timeout,
                    format!(
                        "no complete response within the timeout of {}",
                        humantime::format_duration(timeout)
                    ),
                )),
            };
            trace::outcome(|| match &result {
                Ok(Polled::NotDue) => trace::Outcome::NotDue,
                Ok(Polled::Data {
                    upstream_error,
                    problems,
                    ..
                }) => trace::Outcome::Success {
                    upstream_error: upstream_error.clone(),
                    problems: problems.clone(),
                },
                Err(err) => trace::Outcome::Failed {
                    reason: err.reason.as_str(),
                    message: err.message.clone(),
                },
            });
            let endpoint = &mut self.endpoints[index];
            match result {
                Ok(Polled::NotDue) => continue,
                Ok(Polled::Data {
                    samples,
                    upstream_error,
                    problems,
                }) => {
                    endpoint.duration = started.elapsed();
                    for (family, value) in samples.unknown_values() {
                        if self.logged_unknown.insert((*family, value.clone())) {
                            tracing::warn!(
                                target_name = %config.name,
                                endpoint = endpoint.name,
                                metric = family.name(),
                                value = %value,
                                "unknown value from upstream, exported as its own series"
                            );
                        }
                    }
                    if let Some(previous) = endpoint.last_error.take() {
                        tracing::info!(
                            target_name = %config.name,
                            endpoint = endpoint.name,
                            after = %previous,
                            "poll succeeded again"
                        );
                    }
                    if let Some(message) = &upstream_error {
                        endpoint.upstream_errors += 1;
                        if endpoint.last_upstream_error.as_ref() != Some(message) {
                            tracing::warn!(
                                target_name = %config.name,
                                endpoint = endpoint.name,
                                error = %message,
                                "the upstream reports an error"
                            );
                        }
                    }
                    endpoint.last_upstream_error = upstream_error;
                    if !problems.is_empty() {
                        endpoint.items_skipped += problems.skipped();
                        tracing::warn!(
                            target_name = %config.name,
                            endpoint = endpoint.name,
                            skipped = problems.skipped(),
                            problems = %problems,
                            "parts of the answer could not be read: the rest is exported"
                        );
                    }
                    endpoint.problems = Arc::new(problems);
                    self.store_data(index, samples);
                    let endpoint = &mut self.endpoints[index];
                    endpoint.data_at = Some(Instant::now());
                    endpoint.success = Some(true);
                    endpoint.last_success = Some(SystemTime::now());
                }
                Err(err) => {
                    endpoint.duration = started.elapsed();
                    *endpoint.errors.entry(err.reason).or_insert(0) += 1;
                    if endpoint.last_error.as_ref() != Some(&err) {
                        tracing::warn!(
                            target_name = %config.name,
                            endpoint = endpoint.name,
                            reason = err.reason.as_str(),
                            error = %err.message,
                            "poll failed"
                        );
                    }
                    endpoint.success = Some(false);
                    // Rate limited, or told the service is down for now: back off.
                    let slow_down = matches!(err.reason, Reason::RateLimited | Reason::Unavailable);
                    if slow_down {
                        rate_limited = true;
                        retry_after = retry_after.max(err.retry_after);
                    }
                    endpoint.last_error = Some(err);
                    if slow_down {
                        // The upstream asked us to slow down: the target's other endpoints
                        // wait for the next poll.
                        break;
                    }
                }
            }
        }
        self.last_poll = Some(SystemTime::now());
        // Before the poll shows: once its series are on /metrics, deliveries for what it
        // found carry the target's name.
        self.tell_polled_ids();
        self.publish();
        if !rate_limited {
            self.rate_limited_in_a_row = 0;
            return None;
        }
        self.rate_limited_in_a_row = self.rate_limited_in_a_row.saturating_add(1);
        Some(match retry_after {
            Some(delay) => delay.max(config.interval),
            None => config.interval + backoff(self.rate_limited_in_a_row, config.interval),
        })
    }

    fn publish(&self) {
        let config = &self.state.config;
        let mut poll = Samples::new(&config.name);
        let polled = self.endpoints.iter().any(|e| e.success.is_some());
        if polled {
            let up = self.endpoints.iter().all(|e| e.success == Some(true));
            poll.push(Family::Up, &[], if up { 1.0 } else { 0.0 });
        }
        for endpoint in &self.endpoints {
            let labels = [("endpoint", endpoint.name)];
            poll.push(
                Family::UpstreamRequests,
                &labels,
                endpoint.requests.get() as f64,
            );
            if let Some(success) = endpoint.success {
                poll.push(
                    Family::PollSuccess,
                    &labels,
                    if success { 1.0 } else { 0.0 },
                );
                poll.push(
                    Family::PollDuration,
                    &labels,
                    endpoint.duration.as_secs_f64(),
                );
            }
            if let Some(at) = endpoint.last_success {
                poll.push(Family::LastPollSuccess, &labels, unix_seconds(at));
            }
            // Every reason from the first poll on, at 0 until it happens: increase() then
            // sees the first error of a reason too.
            if endpoint.success.is_some() {
                for reason in Reason::ALL {
                    let count = endpoint.errors.get(&reason).copied().unwrap_or(0);
                    poll.push(
                        Family::PollErrors,
                        &[("endpoint", endpoint.name), ("reason", reason.as_str())],
                        count as f64,
                    );
                }
                poll.push(
                    Family::UpstreamErrors,
                    &labels,
                    endpoint.upstream_errors as f64,
                );
                poll.push(Family::ItemsSkipped, &labels, endpoint.items_skipped as f64);
                poll.push(
                    Family::SeriesDropped,
                    &labels,
                    endpoint.series_dropped as f64,
                );
            }
        }
        self.client.status_samples(&mut poll);
        let mut parts = Vec::with_capacity(2 + self.endpoints.len());
        parts.push(Arc::clone(&self.info));
        poll.shrink();
        parts.push(Arc::new(poll));
        parts.extend(self.endpoints.iter().filter_map(|e| e.data.clone()));
        // Before the first poll the landing page says "not polled yet", endpoints unnamed.
        if self.last_poll.is_none() {
            self.state.publish(Snapshot {
                parts,
                status: TargetStatus::default(),
            });
            return;
        }
        let status = TargetStatus {
            last_poll: self.last_poll,
            up: polled.then(|| self.endpoints.iter().all(|e| e.success == Some(true))),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointStatus {
                    name: e.name,
                    success: e.success,
                    last_success: e.last_success,
                    error: e
                        .last_error
                        .as_ref()
                        .map(ToString::to_string)
                        .or_else(|| e.last_upstream_error.clone()),
                    problems: Arc::clone(&e.problems),
                })
                .collect(),
        };
        self.state.publish(Snapshot { parts, status });
    }
}

/// Exponential backoff with jitter, capped at the interval: the extra wait after the
/// `attempt`-th refusal in a row.
fn backoff(attempt: u32, interval: Duration) -> Duration {
    crate::upstream::doubling(BACKOFF_BASE, attempt, interval).mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Runs the polling loop that `start` makes for `target` and, when it panics, counts the
/// panic and starts a fresh one after `restart_after`: one target's bug never stops the
/// others or the process, and the target does not stay silently unpolled. Ends when the
/// loop returns (the exporter is shutting down). `live` counts this supervisor while it
/// exists, so aborting its task (the target was removed) brings the count down.
///
/// The loop runs inside the supervisor's own task rather than in a task of its own: with
/// thousands of targets, a second task each would cost memory and start-up time.
pub async fn supervise<F, Fut>(
    target: String,
    mut start: F,
    restart_after: Duration,
    panics: Counter,
    live: Gauge,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let _live = LiveTask::new(live);
    loop {
        match CatchPanic(Box::pin(start())).await {
            Ok(()) => return,
            Err(()) => {
                panics.inc();
                tracing::error!(
                    target_name = %target,
                    restart_in = %humantime::format_duration(restart_after),
                    "the target's polling task panicked: restarting it"
                );
                tokio::time::sleep(restart_after).await;
            }
        }
    }
}

/// A future that ends with `Err(())` instead of unwinding when polling it panics. The
/// panicked future is dropped with it, releasing what it held (its poll slot).
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Counts one live task in a gauge, for as long as it exists.
struct LiveTask(Gauge);

impl LiveTask {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        LiveTask(gauge)
    }
}

impl Drop for LiveTask {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// In test builds only, a target whose name starts with this panics at each poll (with
    /// its poll slot held): the one way to exercise the panic path, since nothing from
    /// outside the process may make a poll panic.
    pub(crate) const PANIC_ON_POLL: &str = "test-panic-on-poll";

    #[test]
    fn wake_ups_fall_on_ticks_never_before_the_time() {
        let first = on_tick(Instant::now());
        for ms in [0u64, 1, 9, 10, 11, 25, 1234] {
            let at = first + Duration::from_micros(ms * 1000 + 300);
            let woken = on_tick(at);
            assert!(woken >= at);
            assert!(woken - at < POLL_TICK);
            assert_eq!((woken - first).as_nanos() % POLL_TICK.as_nanos(), 0);
        }
        assert_eq!(on_tick(first), first);
    }

    #[test]
    fn phases_are_stable_and_spread() {
        let interval = Duration::from_secs(30);
        assert_eq!(phase("alpha", interval), phase("alpha", interval));
        // 1,000 names land in every tenth of the interval, none far from 100.
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            let p = phase(&format!("target-{i}"), interval);
            assert!(p < interval);
            buckets[(p.as_secs_f64() / 3.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (60..=140).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let interval = Duration::from_secs(10);
        for attempt in 1..=8 {
            let delay = backoff(attempt, interval);
            let cap = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(interval);
            assert!(delay <= cap && delay >= cap / 2, "{attempt}: {delay:?}");
        }
    }

    /// A task that panics (here on purpose: nothing from outside the process can make the
    /// real polling task do so) is counted and restarted; aborting the supervisor stops
    /// the task and brings the live count back down.
    #[tokio::test]
    async fn a_panicking_task_is_counted_and_restarted() {
        let panics = Counter::default();
        let live = Gauge::default();
        let starts = Arc::new(AtomicU64::new(0));
        let running = Arc::new(AtomicU64::new(0));
        let supervisor = tokio::spawn(supervise(
            "t".to_owned(),
            {
                let starts = Arc::clone(&starts);
                let running = Arc::clone(&running);
                move || {
                    let n = starts.fetch_add(1, Ordering::SeqCst);
                    let running = Arc::clone(&running);
                    async move {
                        if n < 2 {
                            panic!("injected panic {n}");
                        }
                        running.fetch_add(1, Ordering::SeqCst);
                        // Counted down when the task is dropped (aborted).
                        let _running = Decrement(running);
                        std::future::pending::<()>().await;
                    }
                }
            },
            Duration::from_millis(10),
            panics.clone(),
            live.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while running.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the task was never restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(panics.get(), 2);
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        assert_eq!(live.get(), 1);

        supervisor.abort();
        assert!(supervisor.await.is_err_and(|e| e.is_cancelled()));
        while running.load(Ordering::SeqCst) != 0 {
            assert!(
                Instant::now() < deadline,
                "the task outlived its supervisor"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(live.get(), 0);
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    /// A task that returns ends its supervisor without a restart.
    #[tokio::test]
    async fn a_task_that_returns_is_not_restarted() {
        let panics = Counter::default();
        let live = Gauge::default();
        let starts = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&starts);
        supervise(
            "t".to_owned(),
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async {}
            },
            Duration::ZERO,
            panics.clone(),
            live.clone(),
        )
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(panics.get(), 0);
        assert_eq!(live.get(), 0);
    }

    /// Updates wait for the task up to a bound; beyond it they are refused, and the task
    /// takes all that wait at once.
    #[test]
    fn waiting_updates_are_bounded() {
        let config = crate::config::Config::parse(
            "targets:\n  - {name: a, type: onprem, base_url: \"http://127.0.0.1:9\", api_key: key-of-16-chars}\n",
            std::path::Path::new("test.yaml"),
        )
        .unwrap();
        let state = TargetState::new(Arc::clone(&config.targets[0]));
        let update = TargetUpdate::TemplateStatus {
            waba_id: "1".into(),
            template: Default::default(),
            status: "PAUSED".into(),
        };
        for _ in 0..MAX_WAITING_UPDATES {
            assert!(state.deliver(update.clone()));
        }
        assert!(!state.deliver(update.clone()));
        assert_eq!(state.take_updates().len(), MAX_WAITING_UPDATES);
        assert!(state.take_updates().is_empty());
        assert!(state.deliver(update));
    }

    struct Decrement(Arc<AtomicU64>);

    impl Drop for Decrement {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
