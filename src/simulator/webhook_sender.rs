//! A stand-in for Meta's webhook deliveries: signs and POSTs a steady stream of Cloud API
//! webhook bodies to a receiver, so that the demo shows the webhook series moving.
//!
//! Every body has the shape of Meta's published examples (the files of
//! `tests/corpus/webhooks/`) and names the simulated WABAs, numbers and templates the demo's
//! `cloud_api` target polls ([`SimulatedWaba::demo`]), so the webhook series and the polled
//! ones line up. Customers' numbers are fictional (`1555010xxxx`).
//!
//! What is sent:
//! - message statuses, 1 to 5 per body and all of one business number (Meta batches like
//!   that): each message is `sent` (with `conversation` and `pricing`, as Meta's first
//!   status example), then `delivered`, then most of them `read`; a share
//!   ([`SenderOptions::failed_share`]) fails at once with one of [`FAILURES`];
//! - every [`SenderOptions::event_every`], one business event, in the rotation of
//!   [`Generator::event_body`]: a template paused and later reinstated, a template's
//!   quality falling and recovering, a number flagged and unflagged, a number upgraded,
//!   an account alert and an account update.
//!
//! Everything drawn comes from one seeded generator: the same seed gives the same bodies
//! (only the timestamps follow the clock).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::hmac;
use serde_json::{json, Value};

use super::meta;
use crate::secret::Secret;

/// Most messages of one number waiting for their next status; beyond it the oldest are
/// advanced rather than new ones started, so memory stays bounded at any rate.
const MAX_IN_FLIGHT: usize = 64;
/// Longest wait for a receiver's answer: a hung receiver must not stall the stream.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// `href` of a status error, as in Meta's failed-status example.
const ERROR_HREF: &str = "/documentation/business-messaging/whatsapp/support/error-codes";
/// Mean statuses per body (1 to 5, uniform), to turn a rate of statuses into a period.
const MEAN_BATCH: f64 = 3.0;

/// A failed status's error: code, title (also sent as `message`) and `error_data.details`.
///
/// Titles and details are those of Meta's error code reference
/// (developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes,
/// read in the kapso-meta-docs/documentation mirror @ 5a6d915, documentation/whatsapp/
/// error-codes.mdx, "Updated: Nov 19, 2025"), except 131049, whose title and details are
/// those of Meta's failed-status webhook example (tests/corpus/webhooks/
/// messages-status-failed-131049.json): the reference titles it "Meta chose not to
/// deliver." but the webhook carries the sentence below.
pub const FAILURES: [(i64, &str, &str); 5] = [
    (
        131_026,
        "Message Undeliverable",
        "Unable to deliver message. Reasons can include: The recipient phone number is not a WhatsApp phone number.",
    ),
    (
        131_047,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    (
        131_049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    (
        130_472,
        "User's number is part of an experiment",
        "Message was not sent as part of an experiment.",
    ),
    (
        131_056,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.",
    ),
];

/// Pricing categories of sent messages and their weights (of 100).
const CATEGORIES: [(&str, u32); 4] = [
    ("marketing", 40),
    ("utility", 35),
    ("authentication", 10),
    ("service", 15),
];

/// One WABA the sender speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedWaba {
    pub waba_id: String,
    /// The business portfolio that owns it (an account alert's `entity_id`).
    pub business_id: String,
    pub numbers: Vec<SimulatedNumber>,
    pub templates: Vec<SimulatedTemplate>,
}

/// A business phone number of a [`SimulatedWaba`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedNumber {
    pub phone_number_id: String,
    /// As webhooks show it: digits only (`15550123401`).
    pub display_phone_number: String,
}

/// A message template of a [`SimulatedWaba`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedTemplate {
    /// Decimal; sent as a JSON number, as Meta does.
    pub id: String,
    pub name: String,
    /// As the Graph API lists it (`en_US`), so a webhook names the same template as a poll.
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
}

impl SimulatedWaba {
    /// The simulator's WABAs ([`meta`]): Acme Corp with its three numbers and five
    /// templates, and the client WABA with its one number and no templates.
    pub fn demo() -> Vec<SimulatedWaba> {
        let numbers = |ids: &[&str], displays: &[&str]| {
            ids.iter()
                .zip(displays)
                .map(|(id, display)| SimulatedNumber {
                    phone_number_id: id.to_string(),
                    display_phone_number: digits(display),
                })
                .collect()
        };
        let templates = (0..meta::TEMPLATE_IDS.len())
            .map(|i| SimulatedTemplate {
                id: meta::TEMPLATE_IDS[i].to_string(),
                name: meta::TEMPLATE_NAMES[i].to_string(),
                language: meta::TEMPLATE_LANGUAGES[i].to_string(),
                category: meta::TEMPLATE_CATEGORIES[i].to_string(),
            })
            .collect();
        vec![
            SimulatedWaba {
                waba_id: meta::WABA_ID.to_string(),
                business_id: meta::BUSINESS_ID.to_string(),
                numbers: numbers(&meta::PHONE_NUMBER_IDS, &meta::DISPLAY_PHONE_NUMBERS),
                templates,
            },
            SimulatedWaba {
                waba_id: meta::CLIENT_WABA_ID.to_string(),
                business_id: meta::BUSINESS_ID.to_string(),
                numbers: numbers(
                    &meta::CLIENT_PHONE_NUMBER_IDS,
                    &meta::CLIENT_DISPLAY_PHONE_NUMBERS,
                ),
                templates: Vec::new(),
            },
        ]
    }
}

/// `+1 555-012-3401` -> `15550123401`.
fn digits(display: &str) -> String {
    display.chars().filter(char::is_ascii_digit).collect()
}

/// How the sender runs.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// The receiver's webhook URL (`http://127.0.0.1:10111/webhooks/whatsapp`).
    pub url: reqwest::Url,
    /// Signs every body (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    pub wabas: Vec<SimulatedWaba>,
    /// Mean statuses sent per second; bodies hold 1 to 5, so one body goes out every
    /// `3 / statuses_per_second` seconds.
    pub statuses_per_second: f64,
    /// Share of messages that fail (0..=1).
    pub failed_share: f64,
    /// Period of the business events (rounded to a whole number of status bodies, at
    /// least one); `None` sends statuses only (a test of a quiet fleet: no event pages).
    pub event_every: Option<Duration>,
    pub seed: u64,
    /// Stop after this many bodies (statuses and events); `None` runs until aborted.
    pub limit: Option<u64>,
    /// The simulator whose Graph API the exporter polls: a template event is applied to it
    /// before it is sent, as Meta's own state changes before its webhook goes out, so the
    /// target's next discovery agrees with the event instead of undoing it.
    pub simulator: Option<super::Simulator>,
}

impl SenderOptions {
    /// The demo's: the simulator's WABAs, 4 statuses a second, 3% failed, a business
    /// event every 45 s, endless.
    pub fn demo(url: reqwest::Url, app_secret: Secret) -> Self {
        SenderOptions {
            url,
            app_secret,
            wabas: SimulatedWaba::demo(),
            statuses_per_second: 4.0,
            failed_share: 0.03,
            event_every: Some(Duration::from_secs(45)),
            seed: 0x5EED_0016,
            limit: None,
            simulator: None,
        }
    }

    /// Time between two status bodies.
    pub fn period(&self) -> Duration {
        let rate = if self.statuses_per_second.is_finite() && self.statuses_per_second > 0.0 {
            self.statuses_per_second
        } else {
            1.0
        };
        Duration::from_secs_f64((MEAN_BATCH / rate).clamp(0.001, 3600.0))
    }

    /// How many status bodies go out per business event.
    fn ticks_per_event(&self) -> Option<u64> {
        let ratio = self.event_every?.as_secs_f64() / self.period().as_secs_f64();
        Some((ratio.round() as u64).max(1))
    }
}

/// What the sender did, readable while it runs.
#[derive(Debug, Default)]
pub struct SenderStats {
    sent: AtomicU64,
    failed: AtomicU64,
}

impl SenderStats {
    /// Bodies the receiver answered 200.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bodies not delivered: connection failed, or an answer other than 200.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// The `X-Hub-Signature-256` value of a body: `sha256=` and the lowercase hex HMAC-SHA256
/// of the raw bytes under the app secret.
pub fn signature(body: &[u8], app_secret: &Secret) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret.expose().as_bytes());
    let tag = hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Posts bodies from a [`Generator`] at [`SenderOptions::period`] until aborted (or
/// [`SenderOptions::limit`] bodies). A failed POST is counted in `stats` and logged at
/// debug, without the body.
pub async fn run(options: SenderOptions, http: reqwest::Client, stats: Arc<SenderStats>) {
    let mut generator = Generator::new(&options);
    if !generator.can_send() {
        tracing::warn!("webhook sender: no phone number to send statuses for");
        return;
    }
    let ticks_per_event = options.ticks_per_event();
    let mut interval = tokio::time::interval(options.period());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut posted = 0u64;
    let mut tick = 0u64;
    loop {
        interval.tick().await;
        let mut bodies = vec![generator.status_body(unix_now())];
        // The first tick carries an event too, so a fresh demo shows one at once.
        if ticks_per_event.is_some_and(|n| tick % n == 0) {
            if let (Some(simulator), Some(event)) = (&options.simulator, generator.upcoming()) {
                event.apply_to(simulator);
            }
            bodies.extend(generator.event_body(unix_now()));
        }
        tick += 1;
        for body in bodies {
            if options.limit.is_some_and(|limit| posted >= limit) {
                return;
            }
            post(&http, &options, body, &stats).await;
            posted += 1;
        }
    }
}

async fn post(http: &reqwest::Client, options: &SenderOptions, body: Vec<u8>, stats: &SenderStats) {
    let sig = signature(&body, &options.app_secret);
    let result = http
        .post(options.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Hub-Signature-256", sig)
        .timeout(POST_TIMEOUT)
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                status = resp.status().as_u16(),
                "webhook sender: receiver refused a body"
            );
        }
        Err(e) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            // Without the URL: it may carry a token in its query.
            tracing::debug!(error = %e.without_url(), "webhook sender: cannot post a body");
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A message between its statuses.
#[derive(Debug, Clone)]
struct InFlight {
    wamid: String,
    recipient: String,
    /// The status it gets next.
    next: Next,
    /// Whether it is read after delivered.
    read: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    Delivered,
    Read,
}

/// A number statuses are sent for, with its messages waiting for their next status.
#[derive(Debug)]
struct Line {
    waba_id: String,
    number: SimulatedNumber,
    in_flight: VecDeque<InFlight>,
}

/// One business event of the rotation.
#[derive(Debug, Clone)]
enum Scripted {
    TemplateStatus {
        waba_id: String,
        template: SimulatedTemplate,
        event: &'static str,
        title: &'static str,
        description: &'static str,
    },
    TemplateQuality {
        waba_id: String,
        template: SimulatedTemplate,
        previous: &'static str,
        new: &'static str,
    },
    PhoneQuality {
        waba_id: String,
        display_phone_number: String,
        event: &'static str,
        old_limit: Option<&'static str>,
        current_limit: &'static str,
    },
    AccountAlert {
        waba_id: String,
        business_id: String,
    },
    AccountUpdate {
        waba_id: String,
    },
}

impl Scripted {
    /// What the event says of the simulated Graph state, set there. Phone quality events
    /// are left to the simulator's own scenario, which moves the same numbers' quality and
    /// tier.
    fn apply_to(&self, simulator: &super::Simulator) {
        match self {
            Scripted::TemplateStatus {
                template, event, ..
            } => {
                // Meta's REINSTATED ends a pause: Graph lists the template APPROVED again.
                let status = if *event == "REINSTATED" {
                    "APPROVED"
                } else {
                    event
                };
                simulator.set_template_status(&template.id, status);
            }
            Scripted::TemplateQuality { template, new, .. } => {
                simulator.set_template_quality(&template.id, new);
            }
            Scripted::PhoneQuality { .. }
            | Scripted::AccountAlert { .. }
            | Scripted::AccountUpdate { .. } => {}
        }
    }
}

/// Builds the bodies: deterministic for a seed, given the same `now`s.
#[derive(Debug)]
pub struct Generator {
    rng: fastrand::Rng,
    lines: Vec<Line>,
    failed_share: f64,
    script: Vec<Scripted>,
    next_event: usize,
}

impl Generator {
    pub fn new(options: &SenderOptions) -> Self {
        let lines = options
            .wabas
            .iter()
            .flat_map(|w| {
                w.numbers.iter().map(|n| Line {
                    waba_id: w.waba_id.clone(),
                    number: n.clone(),
                    in_flight: VecDeque::new(),
                })
            })
            .collect();
        Generator {
            rng: fastrand::Rng::with_seed(options.seed),
            lines,
            failed_share: if options.failed_share.is_finite() {
                options.failed_share.clamp(0.0, 1.0)
            } else {
                0.0
            },
            script: script(&options.wabas),
            next_event: 0,
        }
    }

    /// Whether there is any number to send statuses for.
    pub fn can_send(&self) -> bool {
        !self.lines.is_empty()
    }

    /// One `messages` body: 1 to 5 statuses of one number, the messages it advances taken
    /// oldest first. Without any number, an empty `entry` list.
    pub fn status_body(&mut self, now: u64) -> Vec<u8> {
        if self.lines.is_empty() {
            return to_vec(&json!({"object": "whatsapp_business_account", "entry": []}));
        }
        let line = self.rng.usize(..self.lines.len());
        let count = self.rng.usize(1..=5);
        let mut statuses = Vec::with_capacity(count);
        let mut later = Vec::new();
        for _ in 0..count {
            let waiting = self.lines[line].in_flight.len();
            let advance = waiting >= MAX_IN_FLIGHT || (waiting > 0 && self.rng.bool());
            if advance {
                if let Some(mut msg) = self.lines[line].in_flight.pop_front() {
                    statuses.push(status(&msg, msg.next, now));
                    if msg.next == Next::Delivered && msg.read {
                        msg.next = Next::Read;
                        later.push(msg);
                    }
                    continue;
                }
            }
            let (status, waiting) = self.new_message(now);
            statuses.push(status);
            later.extend(waiting);
        }
        // Only after the body is built, so a message gets one status per body.
        self.lines[line].in_flight.extend(later);
        let line = &self.lines[line];
        to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": line.waba_id,
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": line.number.display_phone_number,
                            "phone_number_id": line.number.phone_number_id,
                        },
                        "statuses": statuses,
                    },
                    "field": "messages",
                }],
            }],
        }))
    }

    /// A new message's first status: `failed` (the message ends there) or `sent` (and the
    /// message waits for `delivered`).
    fn new_message(&mut self, now: u64) -> (Value, Option<InFlight>) {
        let recipient = format!("1555010{:04}", self.rng.u32(..10_000));
        let wamid = self.wamid(&recipient);
        if self.rng.f64() < self.failed_share {
            let (code, title, details) = FAILURES[self.rng.usize(..FAILURES.len())];
            let failed = json!({
                "id": wamid,
                "status": "failed",
                "timestamp": now.to_string(),
                "recipient_id": recipient,
                "errors": [{
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": ERROR_HREF,
                }],
            });
            return (failed, None);
        }
        let category = self.category();
        // Service messages are free under per-message pricing (Meta's `free_customer_service`).
        let (billable, pricing_type) = if category == "service" {
            (false, "free_customer_service")
        } else {
            (true, "regular")
        };
        let conversation_id: String = (0..32)
            .map(|_| char::from(b"0123456789abcdef"[self.rng.usize(..16)]))
            .collect();
        let sent = json!({
            "id": wamid,
            "status": "sent",
            "timestamp": now.to_string(),
            "recipient_id": recipient,
            "conversation": {
                "id": conversation_id,
                "expiration_timestamp": (now + 86_400).to_string(),
                "origin": {"type": category},
            },
            "pricing": {
                "billable": billable,
                "pricing_model": "PMP",
                "type": pricing_type,
                "category": category,
            },
        });
        let waiting = InFlight {
            wamid,
            recipient,
            next: Next::Delivered,
            read: self.rng.f64() < 0.7,
        };
        (sent, Some(waiting))
    }

    fn category(&mut self) -> &'static str {
        let mut draw = self.rng.u32(..100);
        for (category, weight) in CATEGORIES {
            if draw < weight {
                return category;
            }
            draw -= weight;
        }
        CATEGORIES[0].0
    }

    /// A wamid as Meta's look: base64 of a small binary record holding the recipient's
    /// number and a 20-character hex message key (Meta's examples decode to that shape).
    fn wamid(&mut self, recipient: &str) -> String {
        let mut raw = vec![0x1c, 0x18, recipient.len() as u8];
        raw.extend_from_slice(recipient.as_bytes());
        raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, 0x14]);
        raw.extend((0..20).map(|_| b"0123456789ABCDEF"[self.rng.usize(..16)]));
        raw.push(0x00);
        format!(
            "wamid.{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The business event [`Generator::event_body`] sends next.
    fn upcoming(&self) -> Option<&Scripted> {
        self.script.get(self.next_event % self.script.len().max(1))
    }

    /// The next business event of the rotation (`None` when the WABAs have nothing to
    /// script): template paused, number flagged, template quality down, account alert,
    /// template reinstated, number unflagged, template quality up, number upgraded,
    /// account update; then again.
    pub fn event_body(&mut self, now: u64) -> Option<Vec<u8>> {
        if self.script.is_empty() {
            return None;
        }
        let event = self.script[self.next_event % self.script.len()].clone();
        self.next_event = (self.next_event + 1) % self.script.len();
        let (waba_id, field, value) = match event {
            Scripted::TemplateStatus {
                waba_id,
                template,
                event,
                title,
                description,
            } => (
                waba_id,
                "message_template_status_update",
                json!({
                    "event": event,
                    "message_template_id": template_id(&template.id),
                    "message_template_name": template.name,
                    "message_template_language": template.language,
                    "reason": "NONE",
                    "message_template_category": template.category,
                    "other_info": {"title": title, "description": description},
                }),
            ),
            Scripted::TemplateQuality {
                waba_id,
                template,
                previous,
                new,
            } => (
                waba_id,
                "message_template_quality_update",
                json!({
                    "previous_quality_score": previous,
                    "new_quality_score": new,
                    "message_template_id": template_id(&template.id),
                    "message_template_name": template.name,
                    "message_template_language": template.language,
                }),
            ),
            Scripted::PhoneQuality {
                waba_id,
                display_phone_number,
                event,
                old_limit,
                current_limit,
            } => {
                let mut value = json!({
                    "display_phone_number": display_phone_number,
                    "event": event,
                    "current_limit": current_limit,
                });
                if let (Some(old), Some(obj)) = (old_limit, value.as_object_mut()) {
                    obj.insert("old_limit".into(), json!(old));
                }
                (waba_id, "phone_number_quality_update", value)
            }
            Scripted::AccountAlert {
                waba_id,
                business_id,
            } => (
                waba_id,
                "account_alerts",
                json!({
                    "entity_type": "BUSINESS",
                    "entity_id": business_id,
                    "alert_info": {
                        "alert_severity": "WARNING",
                        "alert_status": "ACTIVE",
                        "alert_type": "INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
                        "alert_description": "Limits cannot be increased for your business. Use WhatsApp Business platform actively for several days and follow our messaging policies.",
                    },
                }),
            ),
            Scripted::AccountUpdate { waba_id } => (
                waba_id,
                "account_update",
                json!({
                    "auth_international_rate_eligibility": {
                        "exception_countries": [{"country_code": "ID", "start_time": now + 30 * 86_400}],
                        "start_time": now + 86_400,
                    },
                    "event": "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
                }),
            ),
        };
        Some(to_vec(&json!({
            "entry": [{
                "id": waba_id,
                "time": now,
                "changes": [{"value": value, "field": field}],
            }],
            "object": "whatsapp_business_account",
        })))
    }
}

/// A template id as the JSON number Meta sends, or the text when it is not one.
fn template_id(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn status(msg: &InFlight, next: Next, now: u64) -> Value {
    json!({
        "id": msg.wamid,
        "status": match next {
            Next::Delivered => "delivered",
            Next::Read => "read",
        },
        "timestamp": now.to_string(),
        "recipient_id": msg.recipient,
    })
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The rotation of business events for these WABAs: the first MARKETING template (else
/// the first) is paused and reinstated, another template's quality falls and recovers,
/// the first WABA's second number (else first) is flagged and unflagged, the last WABA's
/// first number is upgraded; the first WABA gets the account alert and update.
fn script(wabas: &[SimulatedWaba]) -> Vec<Scripted> {
    let Some(first) = wabas.first() else {
        return Vec::new();
    };
    let templates: Vec<(&str, &SimulatedTemplate)> = wabas
        .iter()
        .flat_map(|w| w.templates.iter().map(move |t| (w.waba_id.as_str(), t)))
        .collect();
    let paused = templates
        .iter()
        .position(|(_, t)| t.category == "MARKETING")
        .or(if templates.is_empty() { None } else { Some(0) });
    let quality = paused.and_then(|p| {
        (0..templates.len())
            .find(|&i| i != p && templates[i].1.category == "UTILITY")
            .or((0..templates.len()).find(|&i| i != p))
    });
    let flagged = first.numbers.get(1).or(first.numbers.first());
    let upgraded = wabas
        .iter()
        .rev()
        .find_map(|w| w.numbers.first().map(|n| (w, n)));

    let template_status = |i: usize, event, title, description| Scripted::TemplateStatus {
        waba_id: templates[i].0.to_string(),
        template: templates[i].1.clone(),
        event,
        title,
        description,
    };
    let template_quality = |i: usize, previous, new| Scripted::TemplateQuality {
        waba_id: templates[i].0.to_string(),
        template: templates[i].1.clone(),
        previous,
        new,
    };
    let phone = |n: &SimulatedNumber, event| Scripted::PhoneQuality {
        waba_id: first.waba_id.clone(),
        display_phone_number: n.display_phone_number.clone(),
        event,
        old_limit: None,
        current_limit: "TIER_10K",
    };

    let mut out = Vec::new();
    if let Some(p) = paused {
        out.push(template_status(
            p,
            "PAUSED",
            "FIRST_PAUSE",
            "Your WhatsApp message template has been paused because of low quality.",
        ));
    }
    if let Some(n) = flagged {
        out.push(phone(n, "FLAGGED"));
    }
    if let Some(q) = quality {
        out.push(template_quality(q, "GREEN", "YELLOW"));
    }
    out.push(Scripted::AccountAlert {
        waba_id: first.waba_id.clone(),
        business_id: first.business_id.clone(),
    });
    if let Some(p) = paused {
        out.push(template_status(
            p,
            "REINSTATED",
            "UNPAUSE",
            "Your WhatsApp message template has been unpaused.",
        ));
    }
    if let Some(n) = flagged {
        out.push(phone(n, "UNFLAGGED"));
    }
    if let Some(q) = quality {
        out.push(template_quality(q, "YELLOW", "GREEN"));
    }
    if let Some((w, n)) = upgraded {
        out.push(Scripted::PhoneQuality {
            waba_id: w.waba_id.clone(),
            display_phone_number: n.display_phone_number.clone(),
            event: "UPGRADE",
            old_limit: Some("TIER_10K"),
            current_limit: "TIER_100K",
        });
    }
    out.push(Scripted::AccountUpdate {
        waba_id: first.waba_id.clone(),
    });
    out
}

#[cfg(test)]
#[path = "webhook_sender_tests.rs"]
mod tests;
