//! Polls a Cloud API target through Meta's Graph API in as few requests as Graph allows, as
//! its WhatsApp Business Management budget (per app and WABA, shared with everything else
//! the business does) is what the exporter watches:
//!
//! - `health`, every interval: one request per WABA, its `health_status` and every number's
//!   fields by field expansion (and, when that WABA's discovery is due, its templates and
//!   webhook subscriptions in the same request); one multi-id lookup per
//!   [`IDS_PER_REQUEST`] configured numbers outside those WABAs. A business's WABAs are
//!   spread over half the interval (at most a second apart).
//! - `discovery`, every `discovery_interval` (targets with `business_id`): the business's
//!   owned and client WABAs.
//! - `token`, every `discovery_interval`: the access token's health from `debug_token`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Url;

use super::config::CloudApiTarget;
use super::payload::{
    self, HealthStatus, Page, PayloadError, PhoneNumber, SubscribedApp, Template, WabaNode,
};
use crate::exposition::Samples;
use crate::json::Problems;
use crate::providers::{Applied, PolledIds, TargetClient};
use crate::upstream::{self, Fetched, PollError, Polled, Reason, Upstream};
use crate::webhooks::update::TargetUpdate;

pub const TOKEN: &str = "token";
pub const DISCOVERY: &str = "discovery";
pub const HEALTH: &str = "health";

/// Listing stops after this many pages: a paging loop upstream cannot hold a poll forever.
const MAX_PAGES: usize = 100;
/// A slowed-down target waits at most this many intervals between polls.
const MAX_SLOWDOWN: u32 = 8;
/// Entries per page of an edge: the most Graph gives.
const PAGE_LIMIT: usize = 100;
/// Ids per multi-id lookup: the most Graph takes in `ids`.
pub const IDS_PER_REQUEST: usize = 50;
/// A business's WABAs are asked spread over this share of the interval: a thousand WABAs
/// are not one burst at Graph, and the poll ends well before the next one.
const SPREAD_SHARE: f64 = 0.5;
/// The WABAs of a business are at most this far apart: spreading them further gains
/// Graph nothing and only delays the poll's data.
const MAX_SPACING: Duration = Duration::from_secs(1);
/// Requests of one poll in flight at most.
const MAX_IN_FLIGHT: usize = 16;
const TEMPLATE_FIELDS: &str = "id,name,language,status,category,quality_score";

/// A WABA the target polls, with what its discovery last read.
#[derive(Debug)]
struct Waba {
    id: String,
    /// When its templates and subscriptions are next read (with its health request);
    /// `None`: at its next poll.
    discover_at: Option<Instant>,
    templates: Option<Vec<Template>>,
    subscribed_apps: Option<Vec<SubscribedApp>>,
    /// Its request between discoveries, built once: parsing a URL costs more than the rest
    /// of building a request, and a business has more WABAs than the base URL's memo holds.
    health_url: Option<Url>,
    /// What the last health poll read of it (`None` when its request failed): the series
    /// are rendered from it, again when a webhook changes it.
    read: Option<WabaRead>,
    /// Its numbers as its last good read listed them.
    number_ids: Vec<String>,
}

impl Waba {
    fn new(id: String) -> Self {
        Waba {
            id,
            health_url: None,
            discover_at: None,
            templates: None,
            subscribed_apps: None,
            read: None,
            number_ids: Vec::new(),
        }
    }
}

/// What one WABA's request gave a poll.
#[derive(Debug)]
struct WabaRead {
    health_status: Option<HealthStatus>,
    phones: Vec<PhoneNumber>,
}

/// A failed request, and whether the target's other requests would fare no better (told to
/// slow down, the service down, the token refused) so the poll stops.
struct Failure {
    error: PollError,
    stops_poll: bool,
}

impl From<PollError> for Failure {
    fn from(error: PollError) -> Self {
        let stops_poll = matches!(error.reason, Reason::RateLimited | Reason::Unavailable);
        Failure { error, stops_poll }
    }
}

#[derive(Debug)]
pub struct CloudApiClient {
    http: reqwest::Client,
    base: upstream::BaseUrl,
    config: CloudApiTarget,
    body_limit: u64,
    /// The phone number fields asked, by API version.
    number_fields: String,
    /// The WABAs each health poll asks: the configured one, then those the business's
    /// discovery listed.
    wabas: Vec<Waba>,
    last_discovery: Option<Instant>,
    /// When the token is next inspected, and how many inspections failed in a row.
    next_token_check: Option<Instant>,
    token_failures: u32,
    /// Latest usage per (business object, usage type, measure), from the response headers,
    /// with the poll cycle that saw it: a figure no answer repeated for a whole cycle goes.
    usage: std::collections::BTreeMap<(String, String, String), (f64, u64)>,
    cycle: u64,
    slowdown: u32,
    /// A poll that must end soon (`/probe`): nothing is spread.
    hurried: bool,
    /// Configured numbers outside the polled WABAs, as the last health poll read them.
    outside: Vec<PhoneNumber>,
    /// A health poll succeeded: there is data to render.
    health_read: bool,
    /// The WABAs and numbers the polls ask about, replaced when they change.
    polled_ids: Option<Arc<PolledIds>>,
}

impl TargetClient for CloudApiClient {
    fn endpoints(&self) -> Vec<&'static str> {
        self.endpoint_names().to_vec()
    }

    fn stale_after(&self, index: usize, default: Duration) -> Duration {
        match self.endpoint_names().get(index) {
            Some(&HEALTH) | None => default,
            Some(_) => {
                crate::providers::discovery_stale_after(default, self.config.discovery_interval)
            }
        }
    }

    fn poll_timeout(&self, index: usize, timeout: Duration) -> Duration {
        if self.endpoint_names().get(index) == Some(&HEALTH) {
            timeout + self.spread_window()
        } else {
            timeout
        }
    }

    fn hurry(&mut self) {
        self.hurried = true;
    }

    /// Doubles the wait between polls while any usage is at or above the threshold, up to
    /// `MAX_SLOWDOWN` intervals; back to one interval once all usage is below it.
    fn interval_factor(&mut self) -> u32 {
        let peak = self
            .usage
            .values()
            .map(|(ratio, _)| *ratio)
            .fold(0.0, f64::max);
        let previous = self.slowdown;
        self.slowdown = if peak >= self.config.usage_threshold {
            (self.slowdown * 2).clamp(2, MAX_SLOWDOWN)
        } else {
            1
        };
        if self.slowdown != previous {
            tracing::info!(
                usage = peak,
                threshold = self.config.usage_threshold,
                intervals = self.slowdown,
                "Graph API usage: polling every {} interval(s)",
                self.slowdown
            );
        }
        self.slowdown
    }

    /// A new poll cycle: usage figures the last cycle did not see are dropped.
    fn begin_cycle(&mut self) {
        let last = self.cycle;
        self.usage.retain(|_, (_, seen)| *seen == last);
        self.cycle += 1;
    }

    async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
        match self.endpoint_names().get(index).copied() {
            Some(TOKEN) => self.token(target).await,
            Some(DISCOVERY) => self.discover(target).await,
            _ => self.health(target).await,
        }
    }

    fn status_samples(&self, out: &mut Samples) {
        self.usage_samples(out);
        super::versions::expiry_samples(out, &self.config.api_version);
    }

    /// Edits the templates of the update's WABA, or the number whose display number it
    /// names, as the last health poll (templates: discovery) read them. A phone number is
    /// registered to one WABA only, so a number is looked for in that WABA's answer and
    /// among the configured numbers outside the polled WABAs (whose WABA the exporter does
    /// not know).
    fn apply_update(&mut self, update: &TargetUpdate) -> Applied {
        if !self.health_read {
            return Applied::Unknown;
        }
        let waba = self.wabas.iter_mut().find(|w| w.id == update.waba_id());
        let results: Vec<Option<bool>> = match update {
            TargetUpdate::TemplateStatus { .. } | TargetUpdate::TemplateQuality { .. } => waba
                .and_then(|w| w.templates.as_mut())
                .into_iter()
                .flatten()
                .map(|t| update.apply_to_template(t))
                .collect(),
            TargetUpdate::PhoneQuality { .. } => waba
                .and_then(|w| w.read.as_mut())
                .into_iter()
                .flat_map(|r| r.phones.iter_mut())
                .chain(self.outside.iter_mut())
                .map(|p| update.apply_to_phone(p))
                .collect(),
        };
        let health = self.endpoint_names().iter().position(|e| *e == HEALTH);
        match (results.contains(&Some(true)), health) {
            (true, Some(endpoint)) => Applied::Changed { endpoint },
            _ if results.iter().any(Option::is_some) => Applied::Unchanged,
            _ => Applied::Unknown,
        }
    }

    fn render(&self, index: usize, target: &str) -> Option<Samples> {
        let health = self.endpoint_names().get(index) == Some(&HEALTH);
        (health && self.health_read).then(|| self.health_samples(target))
    }

    fn polled_ids(&self) -> Option<Arc<PolledIds>> {
        self.polled_ids.clone()
    }
}

impl CloudApiClient {
    pub fn new(upstream: Upstream, config: &CloudApiTarget) -> Self {
        let limit_field = if config.api_major_version() >= 24 {
            "whatsapp_business_manager_messaging_limit"
        } else {
            "messaging_limit_tier"
        };
        CloudApiClient {
            http: upstream.http,
            base: upstream::BaseUrl::new(&upstream.base_url),
            number_fields: format!(
                "id,health_status,quality_rating,{limit_field},status,name_status,throughput,display_phone_number,verified_name"
            ),
            wabas: config.waba_id.iter().cloned().map(Waba::new).collect(),
            config: config.clone(),
            body_limit: upstream.body_limit,
            last_discovery: None,
            next_token_check: None,
            token_failures: 0,
            usage: Default::default(),
            cycle: 0,
            slowdown: 1,
            hurried: false,
            outside: Vec::new(),
            health_read: false,
            polled_ids: None,
        }
    }

    /// Keeps [`PolledIds`] up to date: the WABAs asked, their numbers as their last good
    /// answers listed them, and the configured numbers. A new `Arc` only when they changed.
    fn refresh_polled_ids(&mut self) {
        let mut numbers: Vec<String> = self
            .wabas
            .iter()
            .flat_map(|w| w.number_ids.iter())
            .chain(&self.config.phone_number_ids)
            .cloned()
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let ids = PolledIds {
            wabas: self.wabas.iter().map(|w| w.id.clone()).collect(),
            numbers,
        };
        if self.polled_ids.as_deref() != Some(&ids) {
            self.polled_ids = Some(Arc::new(ids));
        }
    }

    /// The endpoints in poll order, without a copy: every poll looks its own up here.
    /// Discovery comes before health, so the first health poll asks the WABAs it found.
    fn endpoint_names(&self) -> &'static [&'static str] {
        if self.config.business_id.is_some() {
            &[TOKEN, DISCOVERY, HEALTH]
        } else {
            &[TOKEN, HEALTH]
        }
    }

    /// How long the requests of a health poll are spread over: half the interval, or less
    /// where [`MAX_SPACING`] between WABAs ends sooner.
    fn spread_window(&self) -> Duration {
        if self.hurried || self.wabas.len() < 2 {
            return Duration::ZERO;
        }
        let spaced =
            MAX_SPACING.saturating_mul(u32::try_from(self.wabas.len()).unwrap_or(u32::MAX));
        self.config.interval.mul_f64(SPREAD_SHARE).min(spaced)
    }

    pub fn usage_samples(&self, out: &mut Samples) {
        let usage: Vec<payload::Usage> = self
            .usage
            .iter()
            .map(|((object, kind, measure), (ratio, _))| payload::Usage {
                business_object_id: object.clone(),
                usage_type: kind.clone(),
                measure: measure.clone(),
                ratio: *ratio,
            })
            .collect();
        super::usage_samples(out, &usage);
    }

    // -----------------------------------------------------------------------------------
    // token

    /// The access token's validity, expiry and scopes from `GET /debug_token`, every
    /// `discovery_interval`. A token Graph refuses outright (code 190, asked with itself)
    /// is reported invalid rather than failing the endpoint: that is the answer. A failed
    /// inspection is tried again after one interval, then two, four, ... up to
    /// `discovery_interval`: a token kind that cannot inspect itself costs no request per
    /// poll.
    async fn token(&mut self, target: &str) -> Result<Polled, PollError> {
        if self.next_token_check.is_some_and(|at| Instant::now() < at) {
            return Ok(Polled::NotDue);
        }
        let inspected = self.inspect_token().await;
        let wait = match &inspected {
            Ok(_) => {
                self.token_failures = 0;
                self.config.discovery_interval
            }
            Err(_) => {
                let wait = self
                    .config
                    .interval
                    .saturating_mul(1 << self.token_failures.min(16))
                    .min(self.config.discovery_interval);
                self.token_failures = self.token_failures.saturating_add(1);
                wait
            }
        };
        self.next_token_check = Some(Instant::now() + wait);
        let (info, problems) = inspected?;
        let mut samples = Samples::new(target);
        super::token_samples(&mut samples, &info);
        Ok(Polled::read(samples, problems))
    }

    async fn inspect_token(&mut self) -> Result<(payload::TokenInfo, Problems), PollError> {
        let input = self.config.access_token.read().map_err(unreadable_token)?;
        let asked_with = match &self.config.debug_token_access_token {
            Some(source) => source.read().map_err(unreadable_token)?,
            None => input.clone(),
        };
        // The token goes in the query: added to a URL the base URL's memo does not keep.
        let mut url = self
            .base
            .join_unremembered(&format!("{}/debug_token", self.config.api_version))?;
        url.query_pairs_mut()
            .append_pair("input_token", input.expose());
        let header = upstream::secret_header(&format!("Bearer {}", asked_with.expose()))?;
        let mut problems = Problems::default();
        let info = match self.request(url, header).await {
            Ok(body) => payload::parse_debug_token(&body, &mut problems).map_err(decode)?,
            Err(f) if self.config.debug_token_access_token.is_none() && f.refused_token => {
                payload::TokenInfo {
                    valid: false,
                    expires_at: None,
                    data_access_expires_at: None,
                    scopes: Vec::new(),
                }
            }
            Err(f) => return Err(f.failure.error),
        };
        Ok((info, problems))
    }

    // -----------------------------------------------------------------------------------
    // discovery

    /// The business's owned and client WABAs, every `discovery_interval`: the WABAs the
    /// health polls ask from then on (the configured `waba_id` too, listed or not).
    async fn discover(&mut self, target: &str) -> Result<Polled, PollError> {
        if self
            .last_discovery
            .is_some_and(|at| at.elapsed() < self.config.discovery_interval)
        {
            return Ok(Polled::NotDue);
        }
        let Some(business) = self.config.business_id.clone() else {
            return Ok(Polled::NotDue);
        };
        let version = self.config.api_version.clone();
        let mut problems = Problems::default();
        let mut listed: Vec<String> = Vec::new();
        for edge in [
            "owned_whatsapp_business_accounts",
            "client_whatsapp_business_accounts",
        ] {
            let first = format!("{version}/{business}/{edge}?fields=id&limit={PAGE_LIMIT}");
            let wabas = self
                .list(&first, payload::parse_wabas_page, &mut problems)
                .await?;
            for waba in wabas {
                // It goes into a request path: Graph's ids are digits.
                if !is_graph_id(&waba.id) {
                    problems.skip(format_args!(
                        "{edge}: WABA id {:?} is not a Graph id",
                        crate::json::clip(&waba.id)
                    ));
                } else if !listed.contains(&waba.id) {
                    listed.push(waba.id);
                }
            }
        }
        let found = listed.len();
        if let Some(configured) = &self.config.waba_id {
            if !listed.contains(configured) {
                listed.push(configured.clone());
            }
        }
        let changed = listed.len() != self.wabas.len()
            || listed.iter().zip(&self.wabas).any(|(id, w)| *id != w.id);
        if changed {
            tracing::info!(
                target_name = target,
                wabas = found,
                "discovery listed the business's WABAs"
            );
            let mut known = std::mem::take(&mut self.wabas);
            self.wabas = listed
                .into_iter()
                .map(|id| match known.iter().position(|w| w.id == id) {
                    Some(at) => known.swap_remove(at),
                    None => Waba::new(id),
                })
                .collect();
            self.refresh_polled_ids();
        }
        self.last_discovery = Some(Instant::now());
        let mut samples = Samples::new(target);
        samples.push(crate::exposition::Family::BusinessWabas, &[], found as f64);
        Ok(Polled::read(samples, problems))
    }

    // -----------------------------------------------------------------------------------
    // health

    /// Every WABA (one request each) and the configured numbers outside them (one lookup per
    /// [`IDS_PER_REQUEST`]). One endpoint, so the entities the answers share (business, app)
    /// are merged; with `business_id` each WABA's series carry its `waba_id`.
    async fn health(&mut self, target: &str) -> Result<Polled, PollError> {
        let mut problems = Problems::default();
        let started = Instant::now();
        let expand = self.config.discover;
        let mut asked = Vec::with_capacity(self.wabas.len());
        for i in 0..self.wabas.len() {
            let waba = &self.wabas[i];
            let discovering = expand && waba.discover_at.is_none_or(|at| at <= started);
            let url = match (&waba.health_url, discovering) {
                (Some(url), false) => url.clone(),
                _ => {
                    let url = self
                        .base
                        .join_unremembered(&self.waba_path(&waba.id, discovering))?;
                    if !discovering {
                        self.wabas[i].health_url = Some(url.clone());
                    }
                    url
                }
            };
            asked.push((url, discovering));
        }
        let header = self.bearer()?;
        let window = self.spread_window();
        let count = asked.len().max(1) as u32;
        let per_request = self.config.timeout;
        // Built before any is sent: the futures own what they need, so the answers can be
        // taken (usage headers kept) while the others are still on their way.
        let requests: Vec<_> = asked
            .iter()
            .enumerate()
            .map(|(i, (url, _))| {
                let request = self
                    .http
                    .get(url.clone())
                    .header(AUTHORIZATION, header.clone());
                let limit = self.body_limit;
                let at = started + window * i as u32 / count;
                async move {
                    tokio::time::sleep_until(at.into()).await;
                    let fetched =
                        tokio::time::timeout(per_request, upstream::fetch(request, limit))
                            .await
                            .unwrap_or_else(|_| Err(timed_out(per_request)));
                    (i, fetched)
                }
            })
            .collect();
        let mut answers = stream::iter(requests).buffer_unordered(MAX_IN_FLIGHT);
        let mut reads: Vec<Option<WabaNode>> = (0..asked.len()).map(|_| None).collect();
        let mut first_failure: Option<PollError> = None;
        while let Some((i, fetched)) = answers.next().await {
            let read = fetched
                .map_err(Failure::from)
                .and_then(|f| self.answer(f).map_err(|f| f.failure))
                .and_then(|body| {
                    payload::parse_waba(&body, &mut problems).map_err(|e| decode(e).into())
                });
            match read {
                Ok(node) => reads[i] = Some(node),
                Err(f) if f.stops_poll => return Err(f.error),
                Err(f) => {
                    problems.skip(format_args!("WABA {}: {}", self.wabas[i].id, f.error));
                    first_failure.get_or_insert(f.error);
                }
            }
        }
        drop(answers);

        let mut read_wabas: Vec<Option<WabaRead>> = Vec::with_capacity(reads.len());
        for (i, node) in reads.into_iter().enumerate() {
            let Some(node) = node else {
                read_wabas.push(None);
                continue;
            };
            let discovering = asked[i].1;
            read_wabas.push(Some(
                self.take_waba(i, node, discovering, &mut problems).await?,
            ));
        }

        // Configured numbers no WABA answer held.
        let held: std::collections::HashSet<&str> = read_wabas
            .iter()
            .flatten()
            .flat_map(|w| w.phones.iter().map(|p| p.id.as_str()))
            .collect();
        let missing: Vec<String> = self
            .config
            .phone_number_ids
            .iter()
            .filter(|id| !held.contains(id.as_str()))
            .cloned()
            .collect();
        let mut outside = Vec::new();
        for chunk in missing.chunks(IDS_PER_REQUEST) {
            match self.numbers_by_id(chunk, &mut problems).await {
                Ok(phones) => outside.extend(phones),
                Err(f) if f.stops_poll => return Err(f.error),
                Err(f) => {
                    first_failure.get_or_insert(f.error);
                }
            }
        }

        let nothing = read_wabas.iter().all(Option::is_none) && outside.is_empty();
        if let (true, Some(failure)) = (nothing, first_failure) {
            return Err(failure);
        }
        for (waba, read) in self.wabas.iter_mut().zip(read_wabas) {
            if let Some(read) = &read {
                waba.number_ids = read.phones.iter().map(|p| p.id.clone()).collect();
            }
            waba.read = read;
        }
        self.outside = outside;
        self.health_read = true;
        self.refresh_polled_ids();
        Ok(Polled::read(self.health_samples(target), problems))
    }

    /// `GET /{waba}?fields=...`: its health_status, its numbers (with `discover`), and when
    /// `discovering` its templates and webhook subscriptions.
    fn waba_path(&self, waba: &str, discovering: bool) -> String {
        let mut fields = String::from("health_status");
        if self.config.discover {
            fields.push_str(&format!(
                ",phone_numbers.limit({PAGE_LIMIT}){{{}}}",
                self.number_fields
            ));
        }
        if discovering {
            fields.push_str(&format!(
                ",message_templates.limit({PAGE_LIMIT}){{{TEMPLATE_FIELDS}}},subscribed_apps"
            ));
        }
        format!("{}/{waba}?fields={fields}", self.config.api_version)
    }

    /// Takes what WABA `i` answered: its numbers (the pages past the first too), and when it
    /// was discovering, its templates and subscriptions, kept until its next discovery.
    async fn take_waba(
        &mut self,
        i: usize,
        node: WabaNode,
        discovering: bool,
        problems: &mut Problems,
    ) -> Result<WabaRead, PollError> {
        let WabaNode {
            health_status,
            phone_numbers,
            templates: template_page,
            subscribed_apps: apps_page,
        } = node;
        let id = self.wabas[i].id.clone();
        let version = self.config.api_version.clone();
        let mut phones = Vec::new();
        if let Some(page) = phone_numbers {
            let first = format!(
                "{version}/{id}/phone_numbers?fields={}&limit={PAGE_LIMIT}",
                self.number_fields
            );
            let read = self
                .rest_of(
                    &first,
                    page,
                    payload::parse_phone_numbers_page,
                    problems,
                    &mut phones,
                )
                .await;
            partly(read, problems, &id, "phone_numbers")?;
        }
        if discovering {
            let mut templates = Vec::new();
            let asked_templates = template_page.is_some();
            if let Some(page) = template_page {
                let first = format!(
                    "{version}/{id}/message_templates?fields={TEMPLATE_FIELDS}&limit={PAGE_LIMIT}"
                );
                let read = self
                    .rest_of(
                        &first,
                        page,
                        payload::parse_templates_page,
                        problems,
                        &mut templates,
                    )
                    .await;
                partly(read, problems, &id, "message_templates")?;
            }
            let mut apps = Vec::new();
            let asked_apps = apps_page.is_some();
            if let Some(page) = apps_page {
                let first = format!("{version}/{id}/subscribed_apps");
                let read = self
                    .rest_of(
                        &first,
                        page,
                        payload::parse_subscribed_apps_page,
                        problems,
                        &mut apps,
                    )
                    .await;
                partly(read, problems, &id, "subscribed_apps")?;
            }
            let (templates, apps) = (
                asked_templates.then_some(templates),
                asked_apps.then_some(apps),
            );
            let interval = self.config.discovery_interval;
            let waba = &mut self.wabas[i];
            // The first round of a business's WABAs is read together; the next ones come
            // at spread times, so later discoveries are no burst either.
            let wait = if waba.discover_at.is_none() {
                interval.mul_f64(0.5 + 0.5 * spread_fraction(&waba.id))
            } else {
                interval
            };
            waba.discover_at = Some(Instant::now() + wait);
            if templates.is_some() {
                waba.templates = templates;
            }
            if apps.is_some() {
                waba.subscribed_apps = apps;
            }
        }
        Ok(WabaRead {
            health_status,
            phones,
        })
    }

    /// Numbers by a multi-id lookup; when Graph refuses the whole lookup for one bad id
    /// (deleted: code 803, or not a number), each is asked alone, so one does not hide its
    /// siblings. Failures are noted in `problems`.
    async fn numbers_by_id(
        &mut self,
        ids: &[String],
        problems: &mut Problems,
    ) -> Result<Vec<PhoneNumber>, Failure> {
        let path = format!(
            "{}/?ids={}&fields={}",
            self.config.api_version,
            ids.join(","),
            self.number_fields
        );
        let lookup = match self.get(&path).await {
            Ok(body) => {
                payload::parse_phone_numbers_by_id(&body, problems).map_err(|e| decode(e).into())
            }
            Err(f) => Err(f.failure),
        };
        match lookup {
            Ok(phones) => Ok(phones),
            Err(f) if f.stops_poll || ids.len() == 1 => {
                if !f.stops_poll {
                    problems.skip(format_args!("phone number {}: {}", ids[0], f.error));
                }
                Err(f)
            }
            Err(_) => {
                let mut phones = Vec::new();
                let mut first_failure = None;
                for id in ids {
                    let path = format!(
                        "{}/{id}?fields={}",
                        self.config.api_version, self.number_fields
                    );
                    let read = match self.get(&path).await {
                        Ok(body) => payload::parse_phone_number(&body, problems)
                            .map_err(|e| decode(e).into()),
                        Err(f) => Err(f.failure),
                    };
                    match read {
                        Ok(phone) => phones.push(phone),
                        Err(f) if f.stops_poll => return Err(f),
                        Err(f) => {
                            problems.skip(format_args!("phone number {id}: {}", f.error));
                            first_failure.get_or_insert(f);
                        }
                    }
                }
                match (phones.is_empty(), first_failure) {
                    (true, Some(f)) => Err(f),
                    _ => Ok(phones),
                }
            }
        }
    }

    /// The health endpoint's series from what the last health poll read, and the
    /// templates and subscriptions of the WABAs' last discoveries.
    fn health_samples(&self, target: &str) -> Samples {
        let mut samples = Samples::new(target);
        // A target of one WABA keeps the label sets it always had; a business's series
        // each name their WABA.
        let scoped = self.config.business_id.is_some();
        let mut statuses: Vec<&HealthStatus> = Vec::new();
        for waba in &self.wabas {
            if scoped {
                samples.scope(&[("waba_id", waba.id.as_str())]);
                statuses.clear();
            }
            if let Some(read) = &waba.read {
                for phone in &read.phones {
                    crate::meta::phone_samples(&mut samples, phone);
                }
                statuses.extend(read.phones.iter().filter_map(|p| p.health_status.as_ref()));
                statuses.extend(read.health_status.as_ref());
            }
            if scoped {
                crate::meta::messaging_samples(&mut samples, &statuses);
            }
            if let Some(templates) = &waba.templates {
                crate::meta::template_samples(&mut samples, templates);
            }
            if let Some(apps) = &waba.subscribed_apps {
                let label = (!scoped).then_some(waba.id.as_str());
                super::subscription_samples(&mut samples, label, apps);
            }
        }
        samples.scope(&[]);
        if scoped {
            statuses.clear();
        }
        for phone in &self.outside {
            crate::meta::phone_samples(&mut samples, phone);
        }
        statuses.extend(self.outside.iter().filter_map(|p| p.health_status.as_ref()));
        crate::meta::messaging_samples(&mut samples, &statuses);
        samples
    }

    // -----------------------------------------------------------------------------------
    // requests

    /// Follows `paging.next` through every page, within the base URL's origin: a `next` on
    /// another host (a relay passing Graph's links on) is not followed, the first request is
    /// repeated from `paging.cursors.after` instead, so the token never leaves the origin.
    async fn list<T>(
        &mut self,
        first: &str,
        parse: fn(&[u8], &mut Problems) -> Result<Page<T>, PayloadError>,
        problems: &mut Problems,
    ) -> Result<Vec<T>, PollError> {
        let body = self.get(first).await.map_err(|f| f.failure.error)?;
        let page = parse(&body, problems).map_err(decode)?;
        let mut all = Vec::new();
        self.rest_of(first, page, parse, problems, &mut all).await?;
        Ok(all)
    }

    /// Adds the items of `page` and of the pages after it to `all` (see
    /// [`CloudApiClient::list`]); `first` is the request of the first page, repeated with a
    /// cursor when `next` leaves the origin. On a failure, `all` holds the pages read.
    async fn rest_of<T>(
        &mut self,
        first: &str,
        mut page: Page<T>,
        parse: fn(&[u8], &mut Problems) -> Result<Page<T>, PayloadError>,
        problems: &mut Problems,
        all: &mut Vec<T>,
    ) -> Result<(), PollError> {
        for _ in 0..MAX_PAGES {
            all.append(&mut page.data);
            let Some(next) = page.next.take() else {
                return Ok(());
            };
            let url = match (next_url(self.base.base(), &next), page.after.take()) {
                (Ok(url), _) => url,
                // A relay passing Graph's links on names another host: the listing goes on
                // from the cursor on the configured one, so the token stays there.
                (Err(_), Some(after)) if Url::parse(&next).is_ok() => {
                    let mut url = self.url(first)?;
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "after")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    url.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("after", &after);
                    url
                }
                (Err(e), _) => return Err(e),
            };
            let header = self.bearer()?;
            let body = self
                .request(url, header)
                .await
                .map_err(|f| f.failure.error)?;
            page = parse(&body, problems).map_err(decode)?;
        }
        Err(PollError::new(
            Reason::Decode,
            format!("more than {MAX_PAGES} pages: listing abandoned"),
        ))
    }

    fn url(&self, path: &str) -> Result<Url, PollError> {
        self.base.join(path)
    }

    fn bearer(&self) -> Result<HeaderValue, PollError> {
        let token = self.config.access_token.read().map_err(unreadable_token)?;
        upstream::secret_header(&format!("Bearer {}", token.expose()))
    }

    async fn get(&mut self, path: &str) -> Result<Bytes, Refused> {
        let url = self.url(path).map_err(Refused::from)?;
        let header = self.bearer().map_err(Refused::from)?;
        self.request(url, header).await
    }

    async fn request(&mut self, url: Url, header: HeaderValue) -> Result<Bytes, Refused> {
        let fetched = upstream::fetch(
            self.http.get(url).header(AUTHORIZATION, header),
            self.body_limit,
        )
        .await
        .map_err(Refused::from)?;
        self.answer(fetched)
    }

    /// The body of a good answer; the usage headers of every answer are kept.
    fn answer(&mut self, fetched: Fetched) -> Result<Bytes, Refused> {
        self.record_usage(&fetched.headers);
        if !fetched.status.is_success() {
            let error = graph_error(fetched.status, &fetched.headers, &fetched.body);
            let refused_token =
                payload::parse_graph_error(&fetched.body).is_some_and(|e| e.code == Some(190));
            let mut failure = Failure::from(error);
            failure.stops_poll |= refused_token;
            return Err(Refused {
                failure,
                refused_token,
            });
        }
        check_content_type(fetched.headers.get(reqwest::header::CONTENT_TYPE))
            .map_err(Refused::from)?;
        Ok(fetched.body)
    }

    fn record_usage(&mut self, headers: &HeaderMap) {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let parsed = [
            header("x-business-use-case-usage").map(payload::parse_business_use_case_usage),
            header("x-app-usage").map(payload::parse_app_usage),
        ];
        for result in parsed.into_iter().flatten() {
            match result {
                Ok(usage) => {
                    for u in usage {
                        let key = (u.business_object_id, u.usage_type, u.measure);
                        self.usage.insert(key, (u.ratio, self.cycle));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "unreadable Graph API usage header"),
            }
        }
    }
}

/// A failed request, and whether Graph refused the token itself (code 190).
struct Refused {
    failure: Failure,
    refused_token: bool,
}

impl From<PollError> for Refused {
    fn from(error: PollError) -> Self {
        Refused {
            failure: Failure::from(error),
            refused_token: false,
        }
    }
}

impl From<Refused> for Failure {
    fn from(refused: Refused) -> Self {
        refused.failure
    }
}

/// A listing that failed past its first page: kept with the pages read (noted) unless the
/// failure stops the poll.
fn partly(
    read: Result<(), PollError>,
    problems: &mut Problems,
    waba: &str,
    edge: &str,
) -> Result<(), PollError> {
    match read {
        Err(e)
            if matches!(
                e.reason,
                Reason::RateLimited | Reason::Unavailable | Reason::Unauthorized
            ) =>
        {
            Err(e)
        }
        Err(e) => {
            problems.ignore(format_args!("WABA {waba}: {edge} past the pages read: {e}"));
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Whether `id` is a Graph id (digits), safe to put in a request path.
fn is_graph_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Where in its `discovery_interval` a WABA's discoveries fall, from its id: 0..1, stable.
fn spread_fraction(id: &str) -> f64 {
    (crate::shard::stable_hash(id) % 1024) as f64 / 1024.0
}

fn unreadable_token(e: crate::secret::SecretError) -> PollError {
    PollError::new(Reason::Unauthorized, e.to_string())
}

fn timed_out(after: Duration) -> PollError {
    PollError::new(
        Reason::Timeout,
        format!(
            "no complete response within the timeout of {}",
            humantime::format_duration(after)
        ),
    )
}

/// Graph answers JSON, and older API versions label it `text/javascript`.
fn check_content_type(value: Option<&reqwest::header::HeaderValue>) -> Result<(), PollError> {
    let javascript = value.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/javascript")
    });
    if javascript {
        return Ok(());
    }
    upstream::check_json_content_type(value)
}

/// A `paging.next` link, followed only within the origin of `base`: the credentials go
/// with it.
pub(crate) fn next_url(base: &Url, next: &str) -> Result<Url, PollError> {
    let url = Url::parse(next)
        .map_err(|e| PollError::new(Reason::Decode, format!("paging.next: {e}")))?;
    if url.origin() != base.origin() {
        return Err(PollError::new(
            Reason::Decode,
            "paging.next leads to another origin: not followed",
        ));
    }
    Ok(url)
}

fn decode(e: PayloadError) -> PollError {
    PollError::new(Reason::Decode, e.to_string())
}

/// Whether a failed request for one phone number concerns that number alone (it does not
/// exist any more, its answer is odd), so its siblings are still asked: not a rate limit,
/// an outage or a refused credential, which the others would meet too.
pub(crate) fn item_failure(e: &PollError) -> bool {
    matches!(e.reason, Reason::Decode | Reason::HttpStatus)
}

/// A Graph API error answer as a failed poll (see [`crate::meta::envelope_error`]); the
/// longer of Retry-After and the usage header's estimated time to regain access is the
/// wait of a rate limit.
pub fn graph_error(status: reqwest::StatusCode, headers: &HeaderMap, body: &[u8]) -> PollError {
    let Some(error) = payload::parse_graph_error(body) else {
        return upstream::status_error(status, headers, "");
    };
    let regain = headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(payload::regain_access_minutes)
        .filter(|m| *m > 0.0)
        .map(|m| Duration::from_secs_f64(m * 60.0));
    crate::meta::envelope_error(status, headers, &error, regain)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::json::Problems;
    use reqwest::header::HeaderValue;
    use reqwest::StatusCode;

    fn error_body(code: i64) -> Vec<u8> {
        format!(r#"{{"error":{{"message":"m{code}","type":"OAuthException","code":{code},"fbtrace_id":"x"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn only_digits_go_into_a_path() {
        assert!(is_graph_id("102290129340398"));
        for odd in ["", "12/../34", "12a", "../x", "1 2"] {
            assert!(!is_graph_id(odd), "{odd}");
        }
    }

    #[test]
    fn graph_error_codes_map_to_reasons() {
        let headers = HeaderMap::new();
        let cases = [
            (190, Reason::Unauthorized),
            (4, Reason::RateLimited),
            (80007, Reason::RateLimited),
            (80008, Reason::RateLimited),
            (2, Reason::Unavailable),
            (200, Reason::Unauthorized),
            (100, Reason::HttpStatus),
        ];
        for (code, reason) in cases {
            let err = graph_error(StatusCode::BAD_REQUEST, &headers, &error_body(code));
            assert_eq!(err.reason, reason, "{code}");
            assert_eq!(
                err.message,
                format!("HTTP 400: Graph error {code}: m{code}")
            );
        }
        let err = graph_error(StatusCode::BAD_GATEWAY, &headers, b"<html>");
        assert_eq!(err.reason, Reason::HttpStatus);
    }

    #[test]
    fn graph_error_message_is_one_cut_line() {
        let text = format!("first\\nsecond\\t{}", "x".repeat(300));
        let body = format!(r#"{{"error":{{"message":"{text}","code":100}}}}"#);
        let err = graph_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body.as_bytes());
        assert_eq!(
            err.message,
            format!(
                "HTTP 400: Graph error 100: first second {}…",
                "x".repeat(187)
            )
        );
    }

    fn client(threshold: f64) -> CloudApiClient {
        let text = format!(
            "targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n    waba_id: 1\n    usage_threshold: {threshold}\n"
        );
        let config = crate::config::Config::parse(&text, std::path::Path::new("t.yaml")).unwrap();
        let target = &config.targets[0];
        let crate::providers::TargetKind::CloudApi(cloud) = &target.kind else {
            panic!("not cloud_api");
        };
        CloudApiClient::new(target.upstream(reqwest::Client::new()), cloud)
    }

    fn polled_template(id: &str, name: &str, status: &str) -> payload::Template {
        payload::Template {
            id: id.into(),
            name: name.into(),
            language: "en_US".into(),
            status: status.into(),
            category: Some("MARKETING".into()),
            quality: Some("GREEN".into()),
        }
    }

    fn polled_phone(id: &str, display: &str) -> PhoneNumber {
        PhoneNumber {
            id: id.into(),
            health_status: None,
            quality_rating: Some("GREEN".into()),
            messaging_limit_tier: Some("TIER_1K".into()),
            status: Some("CONNECTED".into()),
            name_status: None,
            throughput_level: Some("STANDARD".into()),
            display_phone_number: Some(display.into()),
            verified_name: None,
        }
    }

    /// A client whose health poll of WABA 1 read two templates and a number, as
    /// `health()` leaves them.
    fn polled_client() -> CloudApiClient {
        let mut client = client(0.8);
        client.wabas[0].templates = Some(vec![
            polled_template("11", "promo", "APPROVED"),
            polled_template("12", "receipt", "APPROVED"),
        ]);
        client.wabas[0].read = Some(WabaRead {
            health_status: None,
            phones: vec![polled_phone("21", "+1 555-010-0001")],
        });
        client.health_read = true;
        client
    }

    fn update(body: String) -> TargetUpdate {
        let delivery =
            crate::webhooks::payload::parse_delivery(body.as_bytes(), &mut Problems::default())
                .unwrap();
        TargetUpdate::from_change(&delivery.changes[0]).unwrap()
    }

    fn template_status(waba: &str, template_id: &str, event: &str) -> TargetUpdate {
        update(format!(
            r#"{{"entry":[{{"id":"{waba}","changes":[{{"field":"message_template_status_update","value":{{"event":"{event}","message_template_id":{template_id},"message_template_name":"x","message_template_language":"en"}}}}]}}]}}"#
        ))
    }

    fn phone_quality(waba: &str, display: &str, event: &str) -> TargetUpdate {
        update(format!(
            r#"{{"entry":[{{"id":"{waba}","changes":[{{"field":"phone_number_quality_update","value":{{"display_phone_number":"{display}","event":"{event}","current_limit":"TIER_10K"}}}}]}}]}}"#
        ))
    }

    fn state_lines(
        family: &str,
        labels: &str,
        label: &str,
        known: &[&str],
        current: &str,
    ) -> String {
        known
            .iter()
            .map(|s| {
                let value = u8::from(*s == current);
                format!("{family}{{target=\"c\",{labels},{label}=\"{s}\"}} {value}\n")
            })
            .collect()
    }

    #[test]
    fn a_template_status_update_renders_the_health_samples_again() {
        use crate::exposition::Family;
        let mut client = polled_client();
        let health = client.endpoint_names().iter().position(|e| *e == HEALTH);
        assert_eq!(health, Some(1));
        let applied = client.apply_update(&template_status("1", "11", "PAUSED"));
        assert_eq!(applied, Applied::Changed { endpoint: 1 });
        let samples = client.render(1, "c").unwrap();
        let promo = "template_id=\"11\",template_name=\"promo\",language=\"en_US\"";
        let receipt = "template_id=\"12\",template_name=\"receipt\",language=\"en_US\"";
        let statuses = crate::meta::TEMPLATE_STATUSES;
        let family = "whatsapp_template_status";
        assert_eq!(
            samples.lines(Family::TemplateStatus),
            state_lines(family, promo, "status", statuses, "PAUSED")
                + &state_lines(family, receipt, "status", statuses, "APPROVED")
        );
        // The same again changes nothing; another WABA's or an unknown template, nothing.
        let again = client.apply_update(&template_status("1", "11", "PAUSED"));
        assert_eq!(again, Applied::Unchanged);
        for other in [
            template_status("2", "11", "DISABLED"),
            template_status("1", "13", "DISABLED"),
        ] {
            assert_eq!(client.apply_update(&other), Applied::Unknown);
        }
        assert_eq!(
            client.render(1, "c").unwrap().lines(Family::TemplateStatus),
            samples.lines(Family::TemplateStatus)
        );
        // The token endpoint renders nothing of its own.
        assert!(client.render(0, "c").is_none());
    }

    #[test]
    fn a_flagged_number_turns_red_at_once() {
        use crate::exposition::Family;
        let mut client = polled_client();
        let flagged = phone_quality("1", "15550100001", "FLAGGED");
        assert_eq!(
            client.apply_update(&flagged),
            Applied::Changed { endpoint: 1 }
        );
        let samples = client.render(1, "c").unwrap();
        assert_eq!(
            samples.lines(Family::PhoneQualityRating),
            state_lines(
                "whatsapp_phone_quality_rating",
                "phone_number_id=\"21\"",
                "rating",
                crate::meta::QUALITY_RATINGS,
                "RED"
            )
        );
        // Another number's digits name nothing here.
        let elsewhere = phone_quality("1", "15550100002", "FLAGGED");
        assert_eq!(client.apply_update(&elsewhere), Applied::Unknown);
    }

    #[test]
    fn nothing_is_applied_before_the_first_health_poll() {
        let mut client = polled_client();
        client.health_read = false;
        let paused = template_status("1", "11", "PAUSED");
        assert_eq!(client.apply_update(&paused), Applied::Unknown);
        assert!(client.render(1, "c").is_none());
    }

    #[test]
    fn polled_ids_change_only_when_the_wabas_or_numbers_do() {
        let mut client = polled_client();
        assert_eq!(client.polled_ids(), None);
        client.wabas[0].number_ids = vec!["21".into()];
        client.refresh_polled_ids();
        let first = client.polled_ids().unwrap();
        assert_eq!(
            *first,
            PolledIds {
                wabas: vec!["1".into()],
                numbers: vec!["21".into()],
            }
        );
        client.refresh_polled_ids();
        assert!(Arc::ptr_eq(&first, &client.polled_ids().unwrap()));
        client.wabas.push(Waba::new("2".into()));
        client.wabas[1].number_ids = vec!["20".into(), "21".into()];
        client.refresh_polled_ids();
        assert_eq!(
            *client.polled_ids().unwrap(),
            PolledIds {
                wabas: vec!["1".into(), "2".into()],
                numbers: vec!["20".into(), "21".into()],
            }
        );
    }

    fn usage_headers(percent: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_str(&format!(
                r#"{{"1":[{{"type":"whatsapp_business_management","call_count":{percent},"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}}]}}"#
            ))
            .unwrap(),
        );
        headers
    }

    #[test]
    fn slowdown_doubles_above_the_threshold_and_usage_expires() {
        let mut client = client(0.8);
        client.begin_cycle();
        client.record_usage(&usage_headers(85));
        assert_eq!(client.interval_factor(), 2);
        client.begin_cycle();
        client.record_usage(&usage_headers(90));
        assert_eq!(client.interval_factor(), 4);
        client.begin_cycle();
        client.record_usage(&usage_headers(95));
        assert_eq!(client.interval_factor(), 8);
        client.begin_cycle();
        client.record_usage(&usage_headers(99));
        assert_eq!(client.interval_factor(), 8);
        // A cycle whose answers carry no usage keeps the last figures once...
        client.begin_cycle();
        assert_eq!(client.interval_factor(), 8);
        let mut out = Samples::new("c");
        client.usage_samples(&mut out);
        assert!(!out.is_empty());
        // ...then they go, and so does the slowdown.
        client.begin_cycle();
        assert_eq!(client.interval_factor(), 1);
        let mut out = Samples::new("c");
        client.usage_samples(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn rate_limit_waits_for_regained_access() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"1":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":3}]}"#,
            ),
        );
        let err = graph_error(StatusCode::BAD_REQUEST, &headers, &error_body(80008));
        assert_eq!(err.retry_after, Some(Duration::from_secs(180)));
    }
}
