//! What the receiver counts, and its series on /metrics.
//!
//! Every verified body is parsed and counted before its 200 goes out, so once Meta got its
//! answer the scrape shows the delivery. Counts are keyed by the target a WABA or number
//! belongs to when it arrived (`""` for none), its ids and the value Meta sent; message ids
//! go only into the de-duplication's keyed hashes, and numbers of customers nowhere.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::auth::{self, Handshake};
use super::config::{Credentials, WebhooksConfig};
use super::dedup::Dedup;
use super::payload::{self, Event, StatusKind};
use crate::exposition::{escape_label_value, write_header, write_value, Family, Format};

/// Label values longer than this (ids, fields, events, categories, as a delivery wrote
/// them) are not counted: a sender that verifies may still send nonsense, and no real one
/// comes near it.
pub const MAX_LABEL_BYTES: usize = 128;

/// How one POST ended; each is a `result` of `whatsapp_webhook_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestResult {
    Accepted,
    BadSignature,
    Unauthenticated,
    Malformed,
    TooLarge,
    Timeout,
}

impl RequestResult {
    pub const ALL: [RequestResult; 6] = [
        RequestResult::Accepted,
        RequestResult::BadSignature,
        RequestResult::Unauthenticated,
        RequestResult::Malformed,
        RequestResult::TooLarge,
        RequestResult::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestResult::Accepted => "accepted",
            RequestResult::BadSignature => "bad_signature",
            RequestResult::Unauthenticated => "unauthenticated",
            RequestResult::Malformed => "malformed",
            RequestResult::TooLarge => "too_large",
            RequestResult::Timeout => "timeout",
        }
    }
}

/// `result` values of `whatsapp_webhook_verifications_total`.
const VERIFICATION_RESULTS: [&str; 4] = ["accepted", "bad_token", "bad_mode", "bad_challenge"];

/// The statuses every configured number shows from the start, at 0.
const KNOWN_STATUSES: [&str; 4] = ["sent", "delivered", "read", "failed"];

/// Which credential of a request the receiver checks: Meta's signature when an app secret
/// is configured and the request is signed, else a relay's bearer token when tokens are
/// configured and the request has an `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presented {
    Signature,
    Bearer,
}

impl Presented {
    fn of(
        credentials: &Credentials,
        signature: Option<&str>,
        authorization: Option<&str>,
    ) -> Option<Presented> {
        if signature.is_some() && !credentials.app_secrets.is_empty() {
            Some(Presented::Signature)
        } else if authorization.is_some() && !credentials.bearer_tokens.is_empty() {
            Some(Presented::Bearer)
        } else {
            None
        }
    }
}

/// Which target a WABA or number belongs to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routes {
    wabas: HashMap<String, String>,
    numbers: HashMap<String, String>,
}

impl Routes {
    /// Routes from (WABA id, target) and (phone number id, target) pairs; the first
    /// target named for an id keeps it.
    pub fn new<'a>(
        wabas: impl IntoIterator<Item = (&'a str, &'a str)>,
        numbers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Routes {
        let mut routes = Routes::default();
        for (id, target) in wabas {
            routes
                .wabas
                .entry(id.to_owned())
                .or_insert_with(|| target.to_owned());
        }
        for (id, target) in numbers {
            routes
                .numbers
                .entry(id.to_owned())
                .or_insert_with(|| target.to_owned());
        }
        routes
    }

    pub fn waba(&self, waba_id: &str) -> Option<&str> {
        self.wabas.get(waba_id).map(String::as_str)
    }

    /// The number's target, else that of the WABA the change came for.
    pub fn number(&self, phone_number_id: &str, waba_id: &str) -> Option<&str> {
        self.numbers
            .get(phone_number_id)
            .map(String::as_str)
            .or_else(|| self.waba(waba_id))
    }
}

/// Where the routes come from: the config, then what the targets' polls found (a
/// `business_id` target's WABAs and numbers), target by target in name order. An id the
/// config names keeps its target.
#[derive(Default)]
struct RouteSources {
    configured: Routes,
    /// Per target: the WABA ids and phone number ids it polls.
    polled: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

impl RouteSources {
    fn merged(&self) -> Routes {
        let mut routes = self.configured.clone();
        for (target, (wabas, numbers)) in &self.polled {
            for (map, ids) in [(&mut routes.wabas, wabas), (&mut routes.numbers, numbers)] {
                for id in ids {
                    map.entry(id.clone()).or_insert_with(|| target.clone());
                }
            }
        }
        routes
    }
}

/// The receiver's counts. One lock around the tallies: an accepted body takes it once, for
/// microseconds; the request counters are atomics.
pub struct Ingest {
    requests: [AtomicU64; 6],
    verifications: [AtomicU64; 4],
    settings: ArcSwap<WebhooksConfig>,
    credentials: ArcSwap<Credentials>,
    routes: ArcSwap<Routes>,
    route_sources: Mutex<RouteSources>,
    tally: Mutex<Tally>,
}

/// A family's series by their label values, in label order (so in exposition order).
type Series<const N: usize> = BTreeMap<[String; N], f64>;

#[derive(Default)]
struct Tally {
    dedup: Option<Dedup>,
    dedup_window: usize,
    budget: Budget,
    events: Series<3>,
    last_event: Series<2>,
    statuses: Series<3>,
    errors: Series<3>,
    billable: Series<3>,
    business: Series<4>,
    duplicates: u64,
    skipped: u64,
}

/// How many series the tallies hold, their limit, and the counts it refused.
#[derive(Default)]
struct Budget {
    series: usize,
    limit: usize,
    dropped: u64,
}

impl Budget {
    /// Adds `by` to a series, or sets it (`set`), making it if there is room; else the
    /// change is counted as dropped.
    fn apply<const N: usize>(&mut self, map: &mut Series<N>, key: [String; N], by: f64, set: bool) {
        if let Some(value) = map.get_mut(&key) {
            *value = if set { by } else { *value + by };
        } else if self.series < self.limit {
            map.insert(key, by);
            self.series += 1;
        } else {
            self.dropped += 1;
        }
    }

    fn add<const N: usize>(&mut self, map: &mut Series<N>, key: [String; N]) {
        self.apply(map, key, 1.0, false);
    }
}

impl Tally {
    fn configure(&mut self, config: &WebhooksConfig, routes: &Routes) {
        if self.dedup.is_none() || self.dedup_window != config.dedup_window {
            self.dedup = Some(Dedup::new(config.dedup_window));
            self.dedup_window = config.dedup_window;
        }
        self.budget.limit = config.series_limit;
        let mut numbers: Vec<_> = routes.numbers.iter().collect();
        numbers.sort();
        for (number, target) in numbers {
            for status in KNOWN_STATUSES {
                let key = [target.clone(), number.clone(), status.to_owned()];
                if !self.statuses.contains_key(&key) {
                    self.budget.apply(&mut self.statuses, key, 0.0, false);
                }
            }
        }
    }

    fn count_change(&mut self, routes: &Routes, change: &payload::Change, now: f64) -> bool {
        let waba = change.waba_id.as_str();
        let target = routes.waba(waba).unwrap_or_default();
        if !labels_fit(&[waba, &change.field]) {
            self.skipped += 1;
            return false;
        }
        let budget = &mut self.budget;
        budget.add(
            &mut self.events,
            [target.to_owned(), waba.to_owned(), change.field.clone()],
        );
        budget.apply(
            &mut self.last_event,
            [target.to_owned(), waba.to_owned()],
            now,
            true,
        );
        match &change.event {
            Event::Messages(messages) => {
                self.count_messages(routes, waba, messages);
                false
            }
            Event::Other => false,
            event => {
                let name = event.business_event().unwrap_or_default();
                if !labels_fit(&[name]) {
                    self.skipped += 1;
                    return false;
                }
                self.budget.add(
                    &mut self.business,
                    [
                        target.to_owned(),
                        waba.to_owned(),
                        change.field.clone(),
                        name.to_owned(),
                    ],
                );
                true
            }
        }
    }

    fn count_messages(&mut self, routes: &Routes, waba: &str, messages: &payload::Messages) {
        let phone = messages.phone_number_id.as_deref().unwrap_or_default();
        if !labels_fit(&[phone]) {
            self.skipped += 1;
            return;
        }
        let target = routes.number(phone, waba).unwrap_or_default();
        let key = |last: &str| [target.to_owned(), phone.to_owned(), last.to_owned()];
        for status in &messages.statuses {
            let kind = status.status.as_str();
            let first = self
                .dedup
                .as_mut()
                .is_none_or(|d| d.first_time(status.message_id.as_str(), kind));
            if !first {
                self.duplicates += 1;
                continue;
            }
            self.budget.add(&mut self.statuses, key(kind));
            if status.status == StatusKind::Failed {
                for code in &status.error_codes {
                    self.budget.add(&mut self.errors, key(&code.to_string()));
                }
            }
            if status.billable == Some(true) {
                let category = status.category.as_deref().unwrap_or("unknown");
                if labels_fit(&[category]) {
                    self.budget.add(&mut self.billable, key(category));
                } else {
                    self.skipped += 1;
                }
            }
        }
        for code in &messages.error_codes {
            self.budget.add(&mut self.errors, key(&code.to_string()));
        }
    }
}

fn labels_fit(values: &[&str]) -> bool {
    values.iter().all(|v| v.len() <= MAX_LABEL_BYTES)
}

impl Ingest {
    pub fn new(config: &WebhooksConfig, credentials: Credentials, routes: Routes) -> Ingest {
        let mut tally = Tally::default();
        tally.configure(config, &routes);
        Ingest {
            requests: Default::default(),
            verifications: Default::default(),
            settings: ArcSwap::from_pointee(config.clone()),
            credentials: ArcSwap::from_pointee(credentials),
            routes: ArcSwap::from_pointee(routes.clone()),
            route_sources: Mutex::new(RouteSources {
                configured: routes,
                polled: BTreeMap::new(),
            }),
            tally: Mutex::new(tally),
        }
    }

    /// A reload: new secrets, configured routes and limits; counts stay (a changed
    /// `dedup_window` starts an empty window), and so do the routes the targets' polls
    /// found.
    pub fn reconfigure(&self, config: &WebhooksConfig, credentials: Credentials, routes: Routes) {
        self.settings.store(Arc::new(config.clone()));
        self.credentials.store(Arc::new(credentials));
        self.lock().configure(config, &routes);
        let mut sources = self.sources();
        sources.configured = routes;
        self.routes.store(Arc::new(sources.merged()));
    }

    /// The WABAs and numbers target `target` polls now: from here on their deliveries
    /// carry its name (where the config names them for no other target). Counts made
    /// before stay where they were counted. Cheap when nothing changed; false then.
    pub fn learn_routes(&self, target: &str, wabas: &[String], numbers: &[String]) -> bool {
        let mut sources = self.sources();
        if sources
            .polled
            .get(target)
            .is_some_and(|(w, n)| w == wabas && n == numbers)
        {
            return false;
        }
        sources
            .polled
            .insert(target.to_owned(), (wabas.to_vec(), numbers.to_vec()));
        self.routes.store(Arc::new(sources.merged()));
        true
    }

    /// Target `target` stopped (removed, or restarted with a new config): what its polls
    /// found routes nowhere until it polls again.
    pub fn forget_routes(&self, target: &str) {
        let mut sources = self.sources();
        if sources.polled.remove(target).is_some() {
            self.routes.store(Arc::new(sources.merged()));
        }
    }

    /// The target a WABA's deliveries are counted for now.
    pub fn waba_target(&self, waba_id: &str) -> Option<String> {
        self.routes.load().waba(waba_id).map(str::to_owned)
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, RouteSources> {
        self.route_sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The section as last loaded: path and limits for each request.
    pub fn settings(&self) -> Arc<WebhooksConfig> {
        self.settings.load_full()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn count_request(&self, result: RequestResult) {
        self.requests[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Answers a subscription handshake, and counts it.
    pub fn handshake(&self, query: &str) -> Handshake {
        let answer = auth::handshake(query, &self.credentials.load().verify_tokens);
        let result = match &answer {
            Handshake::Accept(_) => "accepted",
            Handshake::Refused(refusal) => refusal.result(),
        };
        if let Some(i) = VERIFICATION_RESULTS.iter().position(|r| *r == result) {
            self.verifications[i].fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    /// Whether a request carries a credential this receiver can check: without one it is
    /// refused before its body is read.
    pub fn has_credential(&self, signature: Option<&str>, authorization: Option<&str>) -> bool {
        Presented::of(&self.credentials.load(), signature, authorization).is_some()
    }

    /// Checks the body's signature, or else the relay's bearer token. The error is the
    /// result to count, as [`auth`] classifies it.
    pub fn authenticate(
        &self,
        signature: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(), RequestResult> {
        let credentials = self.credentials.load();
        match Presented::of(&credentials, signature, authorization) {
            Some(Presented::Signature) => {
                auth::verify_signature(&credentials.app_secrets, signature, body)
                    .map_err(|e| e.result())
            }
            Some(Presented::Bearer) => {
                auth::verify_bearer(&credentials.bearer_tokens, authorization)
                    .map_err(|e| e.result())
            }
            None => Err(RequestResult::Unauthenticated),
        }
    }

    /// Counts a verified body received at `now` (unix seconds), `accepted` or `malformed`
    /// (a body that is not Meta's format changes nothing else). Returns the business
    /// changes of WABAs that belong to a target, with that target, for its own series.
    pub fn ingest(
        &self,
        body: &[u8],
        now: f64,
    ) -> Result<Vec<(String, payload::Change)>, payload::PayloadError> {
        let mut problems = crate::json::Problems::default();
        let delivery = match payload::parse_delivery(body, &mut problems) {
            Ok(delivery) => delivery,
            Err(e) => {
                self.count_request(RequestResult::Malformed);
                return Err(e);
            }
        };
        let routes = self.routes.load();
        let mut for_targets = Vec::new();
        {
            let mut tally = self.lock();
            tally.skipped += problems.skipped();
            for change in delivery.changes {
                if tally.count_change(&routes, &change, now) {
                    if let Some(target) = routes.waba(&change.waba_id) {
                        for_targets.push((target.to_owned(), change));
                    }
                }
            }
        }
        self.count_request(RequestResult::Accepted);
        Ok(for_targets)
    }

    /// Appends the receiver's families to a /metrics body.
    pub fn render(&self, out: &mut String, format: Format) {
        let requests: Vec<(&str, &AtomicU64)> = RequestResult::ALL
            .iter()
            .map(|r| r.as_str())
            .zip(&self.requests)
            .collect();
        let verifications: Vec<(&str, &AtomicU64)> = VERIFICATION_RESULTS
            .into_iter()
            .zip(&self.verifications)
            .collect();
        for (family, counters) in [
            (Family::WebhookRequests, requests),
            (Family::WebhookVerifications, verifications),
        ] {
            write_header(out, family, format);
            for (result, value) in counters {
                line(
                    out,
                    family,
                    &["result"],
                    &[result],
                    value.load(Ordering::Relaxed) as f64,
                );
            }
        }
        let tally = self.lock();
        const TPS: [&str; 3] = ["target", "phone_number_id", "status"];
        rows(
            out,
            format,
            Family::WebhookEvents,
            ["target", "waba_id", "field"],
            &tally.events,
        );
        rows(
            out,
            format,
            Family::WebhookLastEvent,
            ["target", "waba_id"],
            &tally.last_event,
        );
        rows(out, format, Family::MessageStatuses, TPS, &tally.statuses);
        let errors = ["target", "phone_number_id", "error_code"];
        rows(out, format, Family::MessageErrors, errors, &tally.errors);
        let billable = ["target", "phone_number_id", "category"];
        rows(
            out,
            format,
            Family::MessageBillable,
            billable,
            &tally.billable,
        );
        let business = ["target", "waba_id", "field", "event"];
        rows(
            out,
            format,
            Family::BusinessEvents,
            business,
            &tally.business,
        );
        for (family, value) in [
            (Family::WebhookDuplicateStatuses, tally.duplicates),
            (Family::WebhookItemsSkipped, tally.skipped),
            (Family::WebhookSeriesDropped, tally.budget.dropped),
        ] {
            write_header(out, family, format);
            line(out, family, &[], &[], value as f64);
        }
    }
}

/// A family's header and series; nothing while it has none.
fn rows<const N: usize>(
    out: &mut String,
    format: Format,
    family: Family,
    names: [&str; N],
    series: &Series<N>,
) {
    if series.is_empty() {
        return;
    }
    write_header(out, family, format);
    for (values, value) in series {
        let values: [&str; N] = std::array::from_fn(|i| values[i].as_str());
        line(out, family, &names, &values, *value);
    }
}

fn line(out: &mut String, family: Family, names: &[&str], values: &[&str], value: f64) {
    out.push_str(family.name());
    if !names.is_empty() {
        out.push('{');
        for (i, (name, value)) in names.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{name}=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-failed-131049.json");
    const SENT: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-sent-marketing.json");
    const ERRORS: &str = include_str!("../../tests/corpus/webhooks/messages-errors-130429.json");
    const TEMPLATE: &str =
        include_str!("../../tests/corpus/webhooks/template-status-approved.json");
    const ACCOUNT: &str =
        include_str!("../../tests/corpus/webhooks/account-update-account-violation.json");
    const NOW: f64 = 1_800_000_000.0;

    fn section(yaml: &str) -> WebhooksConfig {
        let raw: super::super::config::RawWebhooks = serde_yaml::from_str(yaml).unwrap();
        raw.validate(std::path::Path::new("/")).unwrap()
    }

    fn ingest_with(yaml: &str, routes: Routes) -> Ingest {
        let config = section(yaml);
        let credentials = config.credentials().unwrap();
        Ingest::new(&config, credentials, routes)
    }

    /// The example WABA and the number of Meta's failed-status example belong to "cloud".
    fn routes() -> Routes {
        let mut routes = Routes::default();
        routes
            .wabas
            .insert("102290129340398".into(), "cloud".into());
        routes
            .numbers
            .insert("106540352242922".into(), "cloud".into());
        routes
    }

    /// Meta's `X-Hub-Signature-256` value for `body`.
    fn sign(body: &[u8], secret: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    fn rendered(ingest: &Ingest) -> String {
        let mut out = String::new();
        ingest.render(&mut out, Format::Text);
        out
    }

    fn series(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn configured_numbers_start_at_zero_and_every_result_is_exported() {
        let ingest = ingest_with("app_secret: s\n", routes());
        let text = rendered(&ingest);
        assert_eq!(
            series(&text, "whatsapp_message_statuses_total"),
            [
                "whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"delivered\"} 0",
                "whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"failed\"} 0",
                "whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"read\"} 0",
                "whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"sent\"} 0",
            ]
        );
        for result in [
            "accepted",
            "bad_signature",
            "unauthenticated",
            "malformed",
            "too_large",
            "timeout",
        ] {
            assert!(
                text.contains(&format!(
                    "whatsapp_webhook_requests_total{{result=\"{result}\"}} 0\n"
                )),
                "{text}"
            );
        }
        for result in VERIFICATION_RESULTS {
            assert!(
                text.contains(&format!(
                    "whatsapp_webhook_verifications_total{{result=\"{result}\"}} 0\n"
                )),
                "{text}"
            );
        }
        assert!(text.contains("# TYPE whatsapp_webhook_series_dropped_total counter\nwhatsapp_webhook_series_dropped_total 0\n"));
    }

    #[test]
    fn metas_failed_status_counts_its_error_code_once_however_often_it_comes() {
        let ingest = ingest_with("app_secret: s\n", routes());
        for _ in 0..3 {
            assert!(ingest.ingest(FAILED.as_bytes(), NOW).unwrap().is_empty());
        }
        let text = rendered(&ingest);
        assert!(text.contains("whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"failed\"} 1\n"), "{text}");
        assert_eq!(
            series(&text, "whatsapp_message_errors_total{"),
            ["whatsapp_message_errors_total{target=\"cloud\",phone_number_id=\"106540352242922\",error_code=\"131049\"} 1"]
        );
        assert!(
            text.contains("whatsapp_webhook_duplicate_statuses_total 2\n"),
            "{text}"
        );
        assert!(text.contains("whatsapp_webhook_requests_total{result=\"accepted\"} 3\n"));
        // Every delivery is an event, a redelivery too.
        assert!(text.contains("whatsapp_webhook_events_total{target=\"cloud\",waba_id=\"102290129340398\",field=\"messages\"} 3\n"), "{text}");
        assert!(text.contains("whatsapp_webhook_last_event_timestamp_seconds{target=\"cloud\",waba_id=\"102290129340398\"} 1800000000\n"));
        // Nothing of the customer: the recipient's number and the message id.
        assert!(
            !text.contains("16505551234") && !text.contains("wamid"),
            "{text}"
        );
    }

    #[test]
    fn billable_statuses_count_by_category_and_value_errors_by_code() {
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        ingest.ingest(SENT.as_bytes(), NOW).unwrap();
        ingest.ingest(ERRORS.as_bytes(), NOW).unwrap();
        let text = rendered(&ingest);
        let billable = series(&text, "whatsapp_message_billable_total{");
        assert_eq!(billable.len(), 1, "{text}");
        assert!(billable[0].contains("category=\"marketing\"} 1"), "{text}");
        assert!(
            billable[0].starts_with("whatsapp_message_billable_total{target=\"\","),
            "{text}"
        );
        let errors = series(&text, "whatsapp_message_errors_total{");
        assert_eq!(errors.len(), 1, "{text}");
        assert!(errors[0].contains("error_code=\"130429\"} 1"), "{text}");
    }

    #[test]
    fn business_events_count_and_go_to_the_wabas_target() {
        let template: serde_json::Value = serde_json::from_str(TEMPLATE).unwrap();
        let waba = template["entry"][0]["id"].as_str().unwrap().to_owned();
        let mut routes = Routes::default();
        routes.wabas.insert(waba.clone(), "cloud".into());
        let ingest = ingest_with("app_secret: s\n", routes);
        let for_targets = ingest.ingest(TEMPLATE.as_bytes(), NOW).unwrap();
        assert_eq!(for_targets.len(), 1);
        assert_eq!(for_targets[0].0, "cloud");
        assert_eq!(for_targets[0].1.field, "message_template_status_update");
        // The same event for a WABA that is no target's: counted with target "", handed to
        // none.
        let elsewhere = ACCOUNT.replace(&format!("\"{waba}\""), "\"4000\"");
        assert!(ingest.ingest(elsewhere.as_bytes(), NOW).unwrap().is_empty());
        let text = rendered(&ingest);
        assert!(text.contains(&format!(
            "whatsapp_business_events_total{{target=\"cloud\",waba_id=\"{waba}\",field=\"message_template_status_update\",event=\"APPROVED\"}} 1\n"
        )), "{text}");
        let account = series(&text, "whatsapp_business_events_total{target=\"\"");
        assert_eq!(account.len(), 1, "{text}");
        assert!(
            account[0].contains("field=\"account_update\",event=\"ACCOUNT_VIOLATION\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn bodies_not_in_metas_format_are_malformed_and_change_nothing_else() {
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        for body in [
            "",
            "[]",
            "{\"entry\": 3}",
            "{\"object\":\"x\"}",
            "{\"entry\":[",
            "\u{0}",
        ] {
            assert!(ingest.ingest(body.as_bytes(), NOW).is_err(), "{body:?}");
        }
        let text = rendered(&ingest);
        assert!(
            text.contains("whatsapp_webhook_requests_total{result=\"malformed\"} 6\n"),
            "{text}"
        );
        assert!(
            text.contains("whatsapp_webhook_requests_total{result=\"accepted\"} 0\n"),
            "{text}"
        );
        assert!(
            series(&text, "whatsapp_webhook_events_total").is_empty(),
            "{text}"
        );
    }

    #[test]
    fn odd_items_are_skipped_and_counted_beside_their_siblings() {
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        let long = "9".repeat(MAX_LABEL_BYTES + 1);
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[
                {{"changes":[{{"field":"messages","value":{{}}}}]}},
                {{"id":"{long}","changes":[{{"field":"messages","value":{{}}}}]}},
                {{"id":"7","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"8"}},
                  "statuses":[{{"id":"wamid.a","status":"delivered"}},{{"status":"read"}}]}}}}]}}]}}"#
        );
        ingest.ingest(body.as_bytes(), NOW).unwrap();
        let text = rendered(&ingest);
        assert!(text.contains("whatsapp_message_statuses_total{target=\"\",phone_number_id=\"8\",status=\"delivered\"} 1\n"), "{text}");
        assert!(
            text.contains("whatsapp_webhook_items_skipped_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn the_series_limit_drops_new_series_and_counts_what_it_dropped() {
        let ingest = ingest_with("app_secret: s\nseries_limit: 4\n", Routes::default());
        for number in 0..5 {
            let body = format!(
                r#"{{"entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{number}"}},"statuses":[{{"id":"m{number}","status":"sent"}}]}}}}]}}]}}"#
            );
            ingest.ingest(body.as_bytes(), NOW).unwrap();
        }
        let text = rendered(&ingest);
        // events + last event + 2 numbers' statuses fill the four; 3 numbers are dropped.
        assert_eq!(
            series(&text, "whatsapp_message_statuses_total").len(),
            2,
            "{text}"
        );
        assert!(
            text.contains("whatsapp_webhook_series_dropped_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "whatsapp_webhook_events_total{target=\"\",waba_id=\"1\",field=\"messages\"} 5\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn signatures_and_bearer_tokens_are_checked_against_every_configured_one() {
        let ingest = ingest_with(
            "app_secret: [old, new]\nbearer_token: relay\n",
            Routes::default(),
        );
        let body = b"{}";
        let sign = |secret: &str| sign(body, secret);
        assert_eq!(ingest.authenticate(Some(&sign("new")), None, body), Ok(()));
        assert_eq!(ingest.authenticate(Some(&sign("old")), None, body), Ok(()));
        assert_eq!(
            ingest.authenticate(Some(&sign("other")), None, body),
            Err(RequestResult::BadSignature)
        );
        assert_eq!(
            ingest.authenticate(Some("sha256=zz"), None, body),
            Err(RequestResult::BadSignature)
        );
        assert_eq!(
            ingest.authenticate(None, Some("Bearer relay"), body),
            Ok(())
        );
        assert_eq!(
            ingest.authenticate(None, Some("Bearer other"), body),
            Err(RequestResult::BadSignature)
        );
        assert_eq!(
            ingest.authenticate(None, None, body),
            Err(RequestResult::Unauthenticated)
        );
        assert!(!ingest.has_credential(None, None));
        let signed_only = ingest_with("app_secret: s\n", Routes::default());
        assert!(!signed_only.has_credential(None, Some("Bearer relay")));
    }

    #[test]
    fn a_reload_changes_secrets_and_routes_and_keeps_the_counts() {
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        ingest.ingest(FAILED.as_bytes(), NOW).unwrap();
        let config = section("app_secret: t\n");
        ingest.reconfigure(&config, config.credentials().unwrap(), routes());
        let body = b"{}";
        let sign = |secret: &str| sign(body, secret);
        assert_eq!(ingest.authenticate(Some(&sign("t")), None, body), Ok(()));
        assert_eq!(
            ingest.authenticate(Some(&sign("s")), None, body),
            Err(RequestResult::BadSignature)
        );
        let text = rendered(&ingest);
        assert!(text.contains("whatsapp_message_statuses_total{target=\"\",phone_number_id=\"106540352242922\",status=\"failed\"} 1\n"), "{text}");
        assert!(text.contains("whatsapp_message_statuses_total{target=\"cloud\",phone_number_id=\"106540352242922\",status=\"failed\"} 0\n"), "{text}");
        // The window survives a reload that keeps its size: a redelivery is still known.
        ingest.ingest(FAILED.as_bytes(), NOW).unwrap();
        assert!(rendered(&ingest).contains("whatsapp_webhook_duplicate_statuses_total 1\n"));
    }

    /// A `business_id` target's polls find the example WABA and number: from then on their
    /// deliveries carry its name and go to it; what came before stays counted without.
    #[test]
    fn routes_learnt_from_polls_name_their_target_from_then_on() {
        let waba = "102290129340398";
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        assert!(ingest.ingest(TEMPLATE.as_bytes(), NOW).unwrap().is_empty());
        let (wabas, numbers) = (vec![waba.to_owned()], vec!["106540352242922".to_owned()]);
        assert!(ingest.learn_routes("biz", &wabas, &numbers));
        assert!(!ingest.learn_routes("biz", &wabas, &numbers), "nothing new");
        assert_eq!(ingest.waba_target(waba).as_deref(), Some("biz"));
        let for_targets = ingest.ingest(TEMPLATE.as_bytes(), NOW).unwrap();
        let targets: Vec<&str> = for_targets.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(targets, ["biz"]);
        ingest.ingest(FAILED.as_bytes(), NOW).unwrap();
        let text = rendered(&ingest);
        assert_eq!(
            series(&text, "whatsapp_business_events_total"),
            [
                format!("whatsapp_business_events_total{{target=\"\",waba_id=\"{waba}\",field=\"message_template_status_update\",event=\"APPROVED\"}} 1"),
                format!("whatsapp_business_events_total{{target=\"biz\",waba_id=\"{waba}\",field=\"message_template_status_update\",event=\"APPROVED\"}} 1"),
            ]
        );
        assert_eq!(
            series(&text, "whatsapp_message_statuses_total"),
            ["whatsapp_message_statuses_total{target=\"biz\",phone_number_id=\"106540352242922\",status=\"failed\"} 1"]
        );
        // The config's word comes first, and outlives the target's polls.
        let config = section("app_secret: s\n");
        ingest.reconfigure(&config, config.credentials().unwrap(), routes());
        assert_eq!(ingest.waba_target(waba).as_deref(), Some("cloud"));
        let other = vec!["4000".to_owned()];
        assert!(ingest.learn_routes("biz", &other, &[]));
        assert_eq!(ingest.waba_target("4000").as_deref(), Some("biz"));
        ingest.reconfigure(&config, config.credentials().unwrap(), Routes::default());
        assert_eq!(ingest.waba_target("4000").as_deref(), Some("biz"));
        assert_eq!(ingest.waba_target(waba), None);
        // A stopped target's finds route nowhere.
        ingest.forget_routes("biz");
        assert_eq!(ingest.waba_target("4000"), None);
        assert!(ingest.learn_routes("biz", &other, &[]), "learnt afresh");
    }

    #[test]
    fn openmetrics_types_counters_without_their_total_suffix() {
        let ingest = ingest_with("app_secret: s\n", Routes::default());
        let mut out = String::new();
        ingest.render(&mut out, Format::OpenMetrics);
        assert!(out.contains("# TYPE whatsapp_webhook_requests counter\nwhatsapp_webhook_requests_total{result=\"accepted\"} 0\n"), "{out}");
    }
}
