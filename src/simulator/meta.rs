//! Meta's side of the simulated Cloud API: one WhatsApp Business Account (WABA) with its
//! business, app, phone numbers and message templates, their messaging health, the state
//! Kapso keeps per WhatsApp config, and the scripted scenario [`Simulator::step`] plays on
//! them.
//!
//! The Graph API ([`super::cloud_api`]), 360dialog ([`super::dialog360`]) and Kapso
//! ([`super::kapso`]) all answer from this one state: a number LIMITED on the Graph API is
//! LIMITED on its 360dialog channel and in its Kapso config too.
//!
//! # Initial state
//!
//! Every value below is fixed (the ids are those of Meta's `health_status` examples).
//!
//! | entity | id | name |
//! |---|---|---|
//! | WABA | `102290129340398` ([`WABA_ID`]) | `Acme Corp` ([`WABA_NAME`]) |
//! | business | `506914307656634` ([`BUSINESS_ID`]) | |
//! | app | `634974688087057` ([`APP_ID`]) | `Acme WhatsApp App` ([`APP_NAME`]) |
//! | client WABA | `102290129340401` ([`CLIENT_WABA_ID`]) | `Partner Shop` ([`CLIENT_WABA_NAME`]) |
//!
//! The business owns the WABA and serves the client WABA as its solution partner (its
//! `owned_whatsapp_business_accounts` and `client_whatsapp_business_accounts`). The app is
//! subscribed to the WABA's webhooks, to the client WABA's not (an empty
//! `subscribed_apps`). The client WABA has one number, [`CLIENT_PHONE_NUMBER_IDS`]
//! (`+1 555-019-9001`, `Partner Shop`, otherwise as the WABA's numbers), and no
//! templates; only the Graph API knows it (no 360dialog channel, no Kapso config).
//!
//! ## Phone numbers ([`PHONE_NUMBER_IDS`], in this order)
//!
//! | id | `display_phone_number` | `verified_name` | 360dialog key | Kapso config |
//! |---|---|---|---|---|
//! | `106540352242922` (primary) | `+1 555-012-3401` | `Acme Support` | `sim-360-key-0001` | `kapso-config-1` |
//! | `105154286024403` | `+1 555-012-3402` | `Acme Sales` | `sim-360-key-0002` | `kapso-config-2` |
//! | `110987654321098` | `+1 555-012-3403` | `Acme Alerts` | `sim-360-key-0003` | `kapso-config-3` |
//!
//! Every number: `quality_rating` `GREEN`, `whatsapp_business_manager_messaging_limit`
//! `TIER_10K` (the older `messaging_limit_tier` is derived by [`legacy_tier`]: `TIER_10K`),
//! `status` `CONNECTED`, `name_status` `APPROVED`, `throughput` `{"level":"STANDARD"}`,
//! `code_verification_status` `VERIFIED`, `account_mode` `LIVE`, `platform_type`
//! `CLOUD_API`.
//!
//! ## Message templates ([`TEMPLATE_IDS`], in this order)
//!
//! | id | `name` | `language` | `category` | `status` | quality | `quality_score` shape |
//! |---|---|---|---|---|---|---|
//! | `1187362539104427` | `order_confirmation` | `en_US` | `UTILITY` | `APPROVED` | `GREEN` | `{"score":…}` |
//! | `1448291035578821` | `shipping_update` | `es_ES` | `UTILITY` | `APPROVED` | `GREEN` | string |
//! | `983456120983471` | `welcome_offer` | `pt_BR` | `MARKETING` | `APPROVED` | `GREEN` | `{"score":…}` |
//! | `771203984561290` | `login_code` | `en_US` | `AUTHENTICATION` | `APPROVED` | `GREEN` | string |
//! | `2632273056924580` | `appointment_reminder` | `en_US` | `UTILITY` | `PENDING` | `UNKNOWN` | `{"score":…}` |
//!
//! Meta sends `quality_score` both ways, so templates alternate: the 1st, 3rd, 5th, …
//! template (in the order they were added) as an object, the others as a bare string.
//!
//! ## Messaging health
//!
//! Every entity (numbers, WABA, business, app) is `AVAILABLE`; `can_receive_call_sip` is
//! `AVAILABLE` on the numbers and the app. A template's health follows its `status` when the
//! status is set: `APPROVED` is `AVAILABLE`, anything else is `BLOCKED` with error 141002
//! ("Message templates can only be sent out if they are approved."), so the `PENDING`
//! template starts `BLOCKED`, as in Meta's example.
//!
//! A `health_status` body lists the node's own entity (`PHONE_NUMBER` for a number,
//! `MESSAGE_TEMPLATE` for a template, none for the WABA), then always `WABA`, `BUSINESS` and
//! `APP`. `LIMITED` entities carry `additional_info`, `BLOCKED` ones `errors`
//! (`error_code`, `error_description`, `possible_solution`); the overall `can_send_message`
//! is `BLOCKED` if any entity is, else `LIMITED` if any entity is, else `AVAILABLE`
//! (`can_receive_call_sip` does not count). Setting an entity `LIMITED` or `BLOCKED` without
//! a detail uses the defaults of [`default_detail`].
//!
//! ## Kapso configs
//!
//! Every config starts `healthy`, without `error`, its webhook subscribed and verified at
//! [`KAPSO_WEBHOOK_VERIFIED_AT`].
//!
//! ## Graph API usage
//!
//! `x-business-use-case-usage` `call_count` [`INITIAL_BUSINESS_USAGE`] (4) percent,
//! `x-app-usage` [`INITIAL_APP_USAGE`] (1) percent.
//!
//! # Scenario
//!
//! The Cloud API state runs on the same steps as the On-Premises scenario (its cycle of
//! [`SCENARIO_LEN`] steps); after a full cycle it is back to its initial state.
//!
//! | step | primary number `106540352242922` | number `105154286024403` | template `1448291035578821` | Kapso |
//! |---|---|---|---|---|
//! | 1 | `LIMITED` (display name not approved, [`DISPLAY_NAME_LIMIT`]), `name_status` `PENDING_REVIEW` | | | `kapso-config-1` `degraded` |
//! | 2 | | quality `YELLOW` | quality `YELLOW` | |
//! | 3 | `BLOCKED` (error 131031) | quality `RED` | `PAUSED`, quality `RED`, `MESSAGE_TEMPLATE` `BLOCKED` (141002) | `kapso-config-1` `unhealthy` |
//! | 4 | | tier `TIER_2K` (old field `TIER_1K`) | | `kapso-config-1` `error` ([`KAPSO_DEFAULT_ERROR`]) |
//! | 5 | `AVAILABLE`, `name_status` `APPROVED` | | | `kapso-config-1` `healthy` |
//! | 6 | | quality `GREEN` | `APPROVED`, quality `GREEN`, `AVAILABLE` | |
//! | 7 | | tier `TIER_10K` | | |
//! | 8 | | | | `kapso-config-2` webhook unsubscribed, `degraded` |
//! | 9 | | | | `kapso-config-2` webhook subscribed, `healthy` |
//! | 10–12 | (quiet) | | | |
//!
//! [`Simulator::step`]: super::Simulator::step
//! [`SCENARIO_LEN`]: super::SCENARIO_LEN

use serde_json::{json, Map, Value};

/// The app's name, as `subscribed_apps` and `debug_token` show it.
pub const APP_NAME: &str = "Acme WhatsApp App";
/// The WABA the business serves as a solution partner.
pub const CLIENT_WABA_ID: &str = "102290129340401";
pub const CLIENT_WABA_NAME: &str = "Partner Shop";
/// The client WABA's numbers.
pub const CLIENT_PHONE_NUMBER_IDS: [&str; 1] = ["114400512345601"];
pub const CLIENT_DISPLAY_PHONE_NUMBERS: [&str; 1] = ["+1 555-019-9001"];

/// The WhatsApp Business Account.
pub const WABA_ID: &str = "102290129340398";
/// `name` of the WABA.
pub const WABA_NAME: &str = "Acme Corp";
/// The business (Meta Business Manager) that owns the WABA.
pub const BUSINESS_ID: &str = "506914307656634";
/// The app whose system user token polls the Graph API.
pub const APP_ID: &str = "634974688087057";

/// Phone number ids of the WABA; the first is the primary number of the scenario.
pub const PHONE_NUMBER_IDS: [&str; 3] = ["106540352242922", "105154286024403", "110987654321098"];
/// `display_phone_number` of [`PHONE_NUMBER_IDS`].
pub const DISPLAY_PHONE_NUMBERS: [&str; 3] =
    ["+1 555-012-3401", "+1 555-012-3402", "+1 555-012-3403"];
/// `verified_name` of [`PHONE_NUMBER_IDS`].
pub const VERIFIED_NAMES: [&str; 3] = ["Acme Support", "Acme Sales", "Acme Alerts"];
/// Initial `quality_rating` of every number.
pub const INITIAL_QUALITY: &str = "GREEN";
/// Initial `whatsapp_business_manager_messaging_limit` of every number.
pub const INITIAL_TIER: &str = "TIER_10K";
/// Initial `status` of every number.
pub const INITIAL_PHONE_STATUS: &str = "CONNECTED";
/// Initial `name_status` of every number.
pub const INITIAL_NAME_STATUS: &str = "APPROVED";
/// Initial `throughput.level` of every number.
pub const INITIAL_THROUGHPUT: &str = "STANDARD";
/// `code_verification_status` of every number.
pub const CODE_VERIFICATION_STATUS: &str = "VERIFIED";
/// `account_mode` of every number.
pub const ACCOUNT_MODE: &str = "LIVE";
/// `platform_type` of every number.
pub const PLATFORM_TYPE: &str = "CLOUD_API";

/// Message template ids, in the order the templates edge lists them.
pub const TEMPLATE_IDS: [&str; 5] = [
    "1187362539104427",
    "1448291035578821",
    "983456120983471",
    "771203984561290",
    "2632273056924580",
];
/// `name` of [`TEMPLATE_IDS`].
pub const TEMPLATE_NAMES: [&str; 5] = [
    "order_confirmation",
    "shipping_update",
    "welcome_offer",
    "login_code",
    "appointment_reminder",
];
/// `language` of [`TEMPLATE_IDS`].
pub const TEMPLATE_LANGUAGES: [&str; 5] = ["en_US", "es_ES", "pt_BR", "en_US", "en_US"];
/// `category` of [`TEMPLATE_IDS`].
pub const TEMPLATE_CATEGORIES: [&str; 5] = [
    "UTILITY",
    "UTILITY",
    "MARKETING",
    "AUTHENTICATION",
    "UTILITY",
];
/// Initial `status` of [`TEMPLATE_IDS`].
pub const TEMPLATE_STATUSES: [&str; 5] =
    ["APPROVED", "APPROVED", "APPROVED", "APPROVED", "PENDING"];
/// Initial quality of [`TEMPLATE_IDS`].
pub const TEMPLATE_QUALITIES: [&str; 5] = ["GREEN", "GREEN", "GREEN", "GREEN", "UNKNOWN"];

/// Initial `call_count` percentage of `x-business-use-case-usage`.
pub const INITIAL_BUSINESS_USAGE: u32 = 4;
/// Initial percentages of `x-app-usage`.
pub const INITIAL_APP_USAGE: u32 = 1;

/// `verified_at` of a verified Kapso webhook (as in Kapso's example).
pub const KAPSO_WEBHOOK_VERIFIED_AT: &str = "2024-01-15T10:30:00.000Z";
/// The `error` of a Kapso config set to `error` without a message (and in the scenario).
pub const KAPSO_DEFAULT_ERROR: &str =
    "Failed to fetch health status from Meta: (#2) Service temporarily unavailable";

/// `additional_info` of a LIMITED number whose display name is not approved (Meta's example).
pub const DISPLAY_NAME_LIMIT: &str = "Your display name has not been approved yet. Your message limit will increase after the display name is approved.";

/// `can_send_message` / `can_receive_call_sip` values.
pub const AVAILABLE: &str = "AVAILABLE";
/// See [`AVAILABLE`].
pub const LIMITED: &str = "LIMITED";
/// See [`AVAILABLE`].
pub const BLOCKED: &str = "BLOCKED";

/// Entity types of a `health_status` body.
pub const ENTITY_TYPES: [&str; 5] = [
    "PHONE_NUMBER",
    "MESSAGE_TEMPLATE",
    "WABA",
    "BUSINESS",
    "APP",
];

/// The older `messaging_limit_tier` for a `whatsapp_business_manager_messaging_limit`:
/// `TIER_2K` becomes `TIER_1K`, `TIER_NOT_SET` has none (the field is left out), every
/// other value (documented or not) is the same.
pub fn legacy_tier(tier: &str) -> Option<&str> {
    match tier {
        "TIER_2K" => Some("TIER_1K"),
        "TIER_NOT_SET" => None,
        other => Some(other),
    }
}

/// The detail an entity gets when set `LIMITED` or `BLOCKED` without one: for `LIMITED` the
/// `additional_info` line, for `BLOCKED` `(error_code, error_description,
/// possible_solution)`.
///
/// | entity | `LIMITED` | `BLOCKED` code |
/// |---|---|---|
/// | `PHONE_NUMBER` | [`DISPLAY_NAME_LIMIT`] | 131031 (account locked) |
/// | `MESSAGE_TEMPLATE` | low quality | 141002 (not approved) |
/// | `WABA` | review pending | 141006 (payment method) |
/// | `BUSINESS` | not verified | 141010 (business verification) |
/// | `APP` | development mode | 10 (permission) |
pub fn default_detail(entity_type: &str) -> (&'static str, i64, &'static str, &'static str) {
    match entity_type {
        "PHONE_NUMBER" => (
            DISPLAY_NAME_LIMIT,
            131_031,
            "The business phone number has been locked for violating WhatsApp Business policies.",
            "Review the policy violation in WhatsApp Manager and request a review if you disagree.",
        ),
        "MESSAGE_TEMPLATE" => (
            "The message template's quality is low. Its delivery may be limited.",
            141_002,
            "Message templates can only be sent out if they are approved.",
            "Edit or appeal the message template review decision.",
        ),
        "WABA" => (
            "Your WhatsApp Business Account is under review. Your message limit will increase after the review.",
            141_006,
            "There is an error with the payment method.",
            "Add a valid payment method to the WhatsApp Business Account.",
        ),
        "BUSINESS" => (
            "Your business has not been verified. Your message limit will increase after business verification.",
            141_010,
            "The Business has not passed business verification.",
            "Visit Business Settings and start or resolve the business verification request.",
        ),
        _ => (
            "Your app is in development mode. Only test numbers can receive messages.",
            10,
            "The app does not have the whatsapp_business_messaging permission.",
            "Grant the whatsapp_business_messaging permission to the app.",
        ),
    }
}

/// One `errors` entry of a BLOCKED entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealthError {
    pub code: i64,
    pub description: String,
    pub solution: String,
}

/// The messaging health of one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Health {
    pub can_send: String,
    pub additional_info: Vec<String>,
    pub errors: Vec<HealthError>,
    /// `can_receive_call_sip`: numbers and the app only.
    pub sip: Option<String>,
}

impl Health {
    fn available(sip: bool) -> Self {
        Health {
            can_send: AVAILABLE.to_string(),
            additional_info: Vec::new(),
            errors: Vec::new(),
            sip: sip.then(|| AVAILABLE.to_string()),
        }
    }

    /// Sets `can_send_message`; `LIMITED` gets one `additional_info` line and `BLOCKED` one
    /// error (`detail`, or the defaults of [`default_detail`]); other values clear both.
    pub fn set(&mut self, entity_type: &str, can_send: &str, detail: Option<&str>) {
        let (info, code, description, solution) = default_detail(entity_type);
        self.can_send = can_send.to_string();
        self.additional_info.clear();
        self.errors.clear();
        match can_send {
            LIMITED => self
                .additional_info
                .push(detail.unwrap_or(info).to_string()),
            BLOCKED => self.errors.push(HealthError {
                code,
                description: detail.unwrap_or(description).to_string(),
                solution: solution.to_string(),
            }),
            _ => {}
        }
    }

    fn entity(&self, entity_type: &str, id: &str) -> Value {
        let mut m = Map::new();
        m.insert("entity_type".into(), json!(entity_type));
        m.insert("id".into(), json!(id));
        m.insert("can_send_message".into(), json!(self.can_send));
        if let Some(sip) = &self.sip {
            m.insert("can_receive_call_sip".into(), json!(sip));
        }
        if !self.additional_info.is_empty() {
            m.insert("additional_info".into(), json!(self.additional_info));
        }
        if !self.errors.is_empty() {
            let errors: Vec<Value> = self
                .errors
                .iter()
                .map(|e| {
                    json!({
                        "error_code": e.code,
                        "error_description": e.description,
                        "possible_solution": e.solution,
                    })
                })
                .collect();
            m.insert("errors".into(), Value::Array(errors));
        }
        Value::Object(m)
    }
}

/// One business phone number of the WABA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PhoneNumber {
    pub id: String,
    pub display_phone_number: String,
    pub verified_name: String,
    pub quality_rating: String,
    /// `whatsapp_business_manager_messaging_limit`.
    pub tier: String,
    pub status: String,
    pub name_status: String,
    pub throughput: String,
    pub code_verification_status: String,
    pub account_mode: String,
    pub platform_type: String,
    pub health: Health,
}

/// One message template of the WABA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub quality: String,
    /// `quality_score` as `{"score": …}` rather than a bare string.
    pub score_object: bool,
    pub health: Health,
}

impl Template {
    /// Sets `status` and the health that follows from it (see the module docs).
    pub fn set_status(&mut self, status: &str) {
        self.status = status.to_string();
        let can_send = if status == "APPROVED" {
            AVAILABLE
        } else {
            BLOCKED
        };
        self.health.set("MESSAGE_TEMPLATE", can_send, None);
    }

    /// `quality_score` in this template's shape.
    pub fn quality_score(&self) -> Value {
        if self.score_object {
            json!({"score": self.quality})
        } else {
            json!(self.quality)
        }
    }
}

/// What Kapso keeps about one WhatsApp config (tied to one number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KapsoState {
    pub status: String,
    pub error: Option<String>,
    pub webhook_subscribed: bool,
    pub webhook_verified: bool,
}

impl KapsoState {
    fn initial() -> Self {
        KapsoState {
            status: "healthy".to_string(),
            error: None,
            webhook_subscribed: true,
            webhook_verified: true,
        }
    }

    /// Sets `status`; `error` keeps its message, and the `error` status without one gets
    /// [`KAPSO_DEFAULT_ERROR`].
    pub fn set_status(&mut self, status: &str, error: Option<&str>) {
        self.status = status.to_string();
        self.error = match error {
            Some(e) => Some(e.to_string()),
            None if status == "error" => Some(KAPSO_DEFAULT_ERROR.to_string()),
            None => None,
        };
    }
}

/// The node a `health_status` body describes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject<'a> {
    Number(&'a PhoneNumber),
    Template(&'a Template),
    Waba,
    /// A number of the client WABA.
    ClientNumber(&'a PhoneNumber),
    ClientWaba,
}

/// Meta's state of the WABA and what hangs off it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetaState {
    pub waba: Health,
    pub client_waba: Health,
    /// The client WABA's numbers, in the order of [`CLIENT_PHONE_NUMBER_IDS`].
    pub client_numbers: Vec<PhoneNumber>,
    /// Whether the app is subscribed to the WABA's webhooks, and to the client WABA's.
    pub subscribed: bool,
    pub client_subscribed: bool,
    pub business: Health,
    pub app: Health,
    /// In the order of [`PHONE_NUMBER_IDS`]; never added to or removed from.
    pub numbers: Vec<PhoneNumber>,
    /// In the order they were added.
    pub templates: Vec<Template>,
    /// Per number, in the order of [`MetaState::numbers`].
    pub kapso: Vec<KapsoState>,
    /// `call_count` percentage of `x-business-use-case-usage`.
    pub business_usage: u32,
    /// Percentages of `x-app-usage`.
    pub app_usage: u32,
}

impl MetaState {
    /// The documented initial state.
    pub fn initial() -> Self {
        let number = |id: &str, display: &str, name: &str| PhoneNumber {
            id: id.to_string(),
            display_phone_number: display.to_string(),
            verified_name: name.to_string(),
            quality_rating: INITIAL_QUALITY.to_string(),
            tier: INITIAL_TIER.to_string(),
            status: INITIAL_PHONE_STATUS.to_string(),
            name_status: INITIAL_NAME_STATUS.to_string(),
            throughput: INITIAL_THROUGHPUT.to_string(),
            code_verification_status: CODE_VERIFICATION_STATUS.to_string(),
            account_mode: ACCOUNT_MODE.to_string(),
            platform_type: PLATFORM_TYPE.to_string(),
            health: Health::available(true),
        };
        let numbers = (0..PHONE_NUMBER_IDS.len())
            .map(|i| {
                number(
                    PHONE_NUMBER_IDS[i],
                    DISPLAY_PHONE_NUMBERS[i],
                    VERIFIED_NAMES[i],
                )
            })
            .collect();
        let client_numbers = (0..CLIENT_PHONE_NUMBER_IDS.len())
            .map(|i| {
                number(
                    CLIENT_PHONE_NUMBER_IDS[i],
                    CLIENT_DISPLAY_PHONE_NUMBERS[i],
                    CLIENT_WABA_NAME,
                )
            })
            .collect();
        let mut state = MetaState {
            client_waba: Health::available(false),
            client_numbers,
            subscribed: true,
            client_subscribed: false,
            waba: Health::available(false),
            business: Health::available(false),
            app: Health::available(true),
            numbers,
            templates: Vec::new(),
            kapso: vec![KapsoState::initial(); PHONE_NUMBER_IDS.len()],
            business_usage: INITIAL_BUSINESS_USAGE,
            app_usage: INITIAL_APP_USAGE,
        };
        for i in 0..TEMPLATE_IDS.len() {
            state.add_template(
                TEMPLATE_IDS[i],
                TEMPLATE_NAMES[i],
                TEMPLATE_LANGUAGES[i],
                TEMPLATE_CATEGORIES[i],
                TEMPLATE_STATUSES[i],
            );
            if let Some(t) = state.templates.last_mut() {
                t.quality = TEMPLATE_QUALITIES[i].to_string();
            }
        }
        state
    }

    pub fn number_mut(&mut self, id: &str) -> Option<&mut PhoneNumber> {
        self.numbers
            .iter_mut()
            .chain(self.client_numbers.iter_mut())
            .find(|n| n.id == id)
    }

    /// A number of either WABA, and whether it is the client WABA's.
    pub fn any_number(&self, id: &str) -> Option<(&PhoneNumber, bool)> {
        let own = self.numbers.iter().find(|n| n.id == id).map(|n| (n, false));
        own.or_else(|| {
            self.client_numbers
                .iter()
                .find(|n| n.id == id)
                .map(|n| (n, true))
        })
    }

    pub fn template(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id == id)
    }

    pub fn template_mut(&mut self, id: &str) -> Option<&mut Template> {
        self.templates.iter_mut().find(|t| t.id == id)
    }

    /// Adds a template at the end (quality `UNKNOWN`, as a new template has), or replaces
    /// the name, language, category and status of the template with that id.
    pub fn add_template(
        &mut self,
        id: &str,
        name: &str,
        language: &str,
        category: &str,
        status: &str,
    ) {
        if self.template(id).is_none() {
            let score_object = self.templates.len() % 2 == 0;
            self.templates.push(Template {
                id: id.to_string(),
                name: String::new(),
                language: String::new(),
                category: String::new(),
                status: String::new(),
                quality: "UNKNOWN".to_string(),
                score_object,
                health: Health::available(false),
            });
        }
        if let Some(t) = self.template_mut(id) {
            t.name = name.to_string();
            t.language = language.to_string();
            t.category = category.to_string();
            t.set_status(status);
        }
    }

    /// Removes a template; returns whether there was one.
    pub fn remove_template(&mut self, id: &str) -> bool {
        let before = self.templates.len();
        self.templates.retain(|t| t.id != id);
        self.templates.len() != before
    }

    /// The health of an entity: `PHONE_NUMBER` and `MESSAGE_TEMPLATE` by id; `WABA`,
    /// `BUSINESS` and `APP` when `id` is theirs.
    pub fn entity_mut(&mut self, entity_type: &str, id: &str) -> Option<&mut Health> {
        match entity_type {
            "PHONE_NUMBER" => self.number_mut(id).map(|n| &mut n.health),
            "MESSAGE_TEMPLATE" => self.template_mut(id).map(|t| &mut t.health),
            "WABA" if id == WABA_ID => Some(&mut self.waba),
            "WABA" if id == CLIENT_WABA_ID => Some(&mut self.client_waba),
            "BUSINESS" if id == BUSINESS_ID => Some(&mut self.business),
            "APP" if id == APP_ID => Some(&mut self.app),
            _ => None,
        }
    }

    /// The `health_status` object of a node (without the node's `id`).
    pub fn health_status(&self, subject: Subject<'_>) -> Value {
        let mut entities = Vec::with_capacity(4);
        let mut states = Vec::with_capacity(4);
        let mut waba = (WABA_ID, &self.waba);
        match subject {
            Subject::Number(n) => {
                entities.push(n.health.entity("PHONE_NUMBER", &n.id));
                states.push(n.health.can_send.as_str());
            }
            Subject::ClientNumber(n) => {
                entities.push(n.health.entity("PHONE_NUMBER", &n.id));
                states.push(n.health.can_send.as_str());
                waba = (CLIENT_WABA_ID, &self.client_waba);
            }
            Subject::Template(t) => {
                entities.push(t.health.entity("MESSAGE_TEMPLATE", &t.id));
                states.push(t.health.can_send.as_str());
            }
            Subject::Waba => {}
            Subject::ClientWaba => waba = (CLIENT_WABA_ID, &self.client_waba),
        }
        for (entity_type, id, h) in [
            ("WABA", waba.0, waba.1),
            ("BUSINESS", BUSINESS_ID, &self.business),
            ("APP", APP_ID, &self.app),
        ] {
            entities.push(h.entity(entity_type, id));
            states.push(h.can_send.as_str());
        }
        json!({
            "can_send_message": overall(&states),
            "entities": entities,
        })
    }

    /// The `health_status` object of the number at `index` (see [`MetaState::numbers`]).
    pub fn number_health(&self, index: usize) -> Value {
        match self.numbers.get(index) {
            Some(n) => self.health_status(Subject::Number(n)),
            None => self.health_status(Subject::Waba),
        }
    }
}

/// Meta's rule: any `BLOCKED` -> `BLOCKED`, else any `LIMITED` -> `LIMITED`, else
/// `AVAILABLE`.
pub fn overall(states: &[&str]) -> &'static str {
    if states.contains(&BLOCKED) {
        BLOCKED
    } else if states.contains(&LIMITED) {
        LIMITED
    } else {
        AVAILABLE
    }
}

/// Plays scenario step `step` (1-based; steps without a row do nothing) on the Cloud API
/// state.
pub(crate) fn apply_step(s: &mut MetaState, step: u64) {
    let primary = PHONE_NUMBER_IDS[0];
    let second = PHONE_NUMBER_IDS[1];
    let template = TEMPLATE_IDS[1];
    let number = |s: &mut MetaState, id: &str, f: &dyn Fn(&mut PhoneNumber)| {
        if let Some(n) = s.number_mut(id) {
            f(n);
        }
    };
    let tpl = |s: &mut MetaState, f: &dyn Fn(&mut Template)| {
        if let Some(t) = s.template_mut(template) {
            f(t);
        }
    };
    let kapso = |s: &mut MetaState, i: usize, f: &dyn Fn(&mut KapsoState)| {
        if let Some(k) = s.kapso.get_mut(i) {
            f(k);
        }
    };
    match step {
        1 => {
            number(s, primary, &|n| {
                n.health
                    .set("PHONE_NUMBER", LIMITED, Some(DISPLAY_NAME_LIMIT));
                n.name_status = "PENDING_REVIEW".to_string();
            });
            kapso(s, 0, &|k| k.set_status("degraded", None));
        }
        2 => {
            number(s, second, &|n| n.quality_rating = "YELLOW".to_string());
            tpl(s, &|t| t.quality = "YELLOW".to_string());
        }
        3 => {
            number(s, primary, &|n| n.health.set("PHONE_NUMBER", BLOCKED, None));
            number(s, second, &|n| n.quality_rating = "RED".to_string());
            tpl(s, &|t| {
                t.set_status("PAUSED");
                t.quality = "RED".to_string();
            });
            kapso(s, 0, &|k| k.set_status("unhealthy", None));
        }
        4 => {
            number(s, second, &|n| n.tier = "TIER_2K".to_string());
            kapso(s, 0, &|k| k.set_status("error", None));
        }
        5 => {
            number(s, primary, &|n| {
                n.health.set("PHONE_NUMBER", AVAILABLE, None);
                n.name_status = INITIAL_NAME_STATUS.to_string();
            });
            kapso(s, 0, &|k| k.set_status("healthy", None));
        }
        6 => {
            number(s, second, &|n| {
                n.quality_rating = INITIAL_QUALITY.to_string();
            });
            tpl(s, &|t| {
                t.set_status("APPROVED");
                t.quality = "GREEN".to_string();
            });
        }
        7 => number(s, second, &|n| n.tier = INITIAL_TIER.to_string()),
        8 => kapso(s, 1, &|k| {
            k.webhook_subscribed = false;
            k.set_status("degraded", None);
        }),
        9 => kapso(s, 1, &|k| {
            k.webhook_subscribed = true;
            k.set_status("healthy", None);
        }),
        _ => {}
    }
}
