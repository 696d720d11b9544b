//! Parsing of a webhook body Meta POSTs for a WhatsApp Business Account
//! (`{"object":"whatsapp_business_account","entry":[{"id":..,"changes":[{"field":..,"value":{..}}]}]}`)
//! into a typed summary of what the exporter counts.
//!
//! Pure functions over the raw bytes: no I/O. The summary never carries customers' data:
//! no recipient or sender numbers, no names, no texts; incoming messages are only counted.
//! The one exception is a status's message id, kept only to count a redelivered status once
//! and hidden from `Debug` (a `wamid` embeds the recipient's number, base64-encoded).
//!
//! Reading is tolerant, item by item: an entry, change, status or error that cannot be used
//! is skipped and noted in [`Problems`] without hiding its siblings, and the body fails only
//! when it is not a JSON object or has no `entry` array.

use std::convert::Infallible;

use serde_json::Value;

use crate::json::{
    as_object, field, index, lenient_f64, lenient_i64, load, opt_id, present, required_str,
    wrong_type, Obj, Problems,
};

/// Why a webhook body could not be read at all. Webhooks have no error envelope of their own.
pub type PayloadError = crate::json::PayloadError<Infallible>;

/// What one webhook body reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// `object` (`whatsapp_business_account` for WhatsApp), when it is a string.
    pub object: Option<String>,
    /// Every usable change of every usable entry, in body order.
    pub changes: Vec<Change>,
}

/// One `entry[].changes[]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The entry's `id`: the WhatsApp Business Account the change is about.
    pub waba_id: String,
    /// The entry's `time` in unix seconds (absent from `messages` changes).
    pub time: Option<f64>,
    /// The change's `field`, as sent (`messages`, `account_update`, ...).
    pub field: String,
    pub event: Event,
}

/// What a change says, by its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `messages`: statuses of sent messages, incoming messages, errors.
    Messages(Messages),
    /// `account_update`.
    Account(AccountUpdate),
    /// `account_alerts`.
    Alert(AccountAlert),
    /// `phone_number_quality_update`.
    PhoneQuality(PhoneQuality),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatus),
    /// `message_template_quality_update`, or a `message_template_status_update` change
    /// shaped like one (Meta's own published example is).
    TemplateQuality(TemplateQuality),
    /// `template_category_update`.
    TemplateCategory(TemplateCategory),
    /// `business_capability_update`.
    Capability(Capability),
    /// A field this parser does not read: counted by its field only.
    Other,
}

impl Event {
    /// The business event a change reports (the `event` label of
    /// `whatsapp_business_events_total`): the value's `event`, or the field's equivalent
    /// (see each type). `None` for `messages`, unread fields and fields without one.
    pub fn business_event(&self) -> Option<&str> {
        match self {
            Event::Account(a) => a.event.as_deref(),
            Event::Alert(a) => a.alert_type.as_deref(),
            Event::PhoneQuality(p) => p.event.as_deref(),
            Event::TemplateStatus(t) => t.event.as_deref(),
            Event::TemplateQuality(t) => t.new_quality_score.as_deref(),
            Event::TemplateCategory(t) => {
                t.correct_category.as_deref().or(t.new_category.as_deref())
            }
            Event::Messages(_) | Event::Capability(_) | Event::Other => None,
        }
    }
}

/// A `messages` change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Messages {
    /// `metadata.phone_number_id`: the business number the change is about.
    pub phone_number_id: Option<String>,
    pub statuses: Vec<Status>,
    /// How many incoming messages (`messages[]`) the change holds; they are never read.
    pub incoming: u64,
    /// Codes of the value-level `errors[]`: failures Meta reports without tying them to a
    /// message (e.g. 130429, throughput exceeded).
    pub error_codes: Vec<i64>,
}

/// One `statuses[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Only for de-duplication.
    pub message_id: MessageId,
    pub status: StatusKind,
    /// `errors[].code`, for a failed status.
    pub error_codes: Vec<i64>,
    /// `pricing.billable` (sent with only one of a message's statuses).
    pub billable: Option<bool>,
    /// `pricing.category` (`marketing`, `utility`, `service`, `authentication`, ...).
    pub category: Option<String>,
    /// `timestamp` in unix seconds.
    pub timestamp: Option<f64>,
}

/// A message id (`wamid.…`), kept only so that a status Meta redelivers counts once. It is
/// never a label, logged or shown: a wamid embeds the recipient's phone number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageId(..)")
    }
}

/// A status's `status`. Any value other than the four counted ones (`played` for a voice
/// message, or one Meta adds later) is kept as [`StatusKind::Sent`]: the message was
/// accepted, which is what every status implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl StatusKind {
    fn of(s: &str) -> StatusKind {
        match s.trim().to_ascii_lowercase().as_str() {
            "delivered" => StatusKind::Delivered,
            "read" => StatusKind::Read,
            "failed" => StatusKind::Failed,
            _ => StatusKind::Sent,
        }
    }

    /// The `status` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
        }
    }
}

/// An `account_update` change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountUpdate {
    /// `event` (`ACCOUNT_VIOLATION`, `DISABLED_UPDATE`, `ACCOUNT_RESTRICTION`, ...).
    pub event: Option<String>,
    /// `ban_info.waba_ban_state` (`DISABLE`, `REINSTATE`, `SCHEDULE_FOR_DISABLE`).
    pub ban_state: Option<String>,
    /// `violation_info.violation_type`.
    pub violation_type: Option<String>,
}

/// An `account_alerts` change; its `alert_info.alert_type` stands for the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountAlert {
    /// `entity_type`: `BUSINESS`, `PHONE_NUMBER`, ...
    pub entity_type: Option<String>,
    /// `entity_id`: the business portfolio or business phone number id.
    pub entity_id: Option<String>,
    pub alert_type: Option<String>,
    /// `CRITICAL`, `WARNING` or `INFORMATIONAL`.
    pub severity: Option<String>,
    /// `ACTIVE` or `NONE`.
    pub status: Option<String>,
}

/// A `phone_number_quality_update` change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhoneQuality {
    /// The business's own number, as displayed (not a customer's).
    pub display_phone_number: Option<String>,
    /// `event` (`ONBOARDING`, `THROUGHPUT_UPGRADE`, `UPGRADE`, `DOWNGRADE`, `FLAGGED`, ...).
    pub event: Option<String>,
    /// `current_limit` (a `TIER_*`; Meta drops it in 2026 for the next field).
    pub current_limit: Option<String>,
    /// `old_limit`, for messaging limit changes.
    pub old_limit: Option<String>,
    /// `max_daily_conversations_per_business` (a `TIER_*`).
    pub max_daily_conversations_per_business: Option<String>,
}

/// The template a template event is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateRef {
    /// `message_template_id` (a JSON number in Meta's examples), as decimal text.
    pub id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
}

/// A `message_template_status_update` change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateStatus {
    pub template: TemplateRef,
    /// `event`: `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, `PENDING_DELETION`, ...
    pub event: Option<String>,
    /// `reason` (`NONE`, `INVALID_FORMAT`, ...).
    pub reason: Option<String>,
    /// `message_template_category`.
    pub category: Option<String>,
}

/// A `message_template_quality_update` change; its `new_quality_score` stands for the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateQuality {
    pub template: TemplateRef,
    pub previous_quality_score: Option<String>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub new_quality_score: Option<String>,
}

/// A `template_category_update` change. Its event is the category the template ends up
/// in: `correct_category` for a notice of an impending change (where `new_category` is the
/// current one), else `new_category`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateCategory {
    pub template: TemplateRef,
    pub previous_category: Option<String>,
    pub new_category: Option<String>,
    pub correct_category: Option<String>,
}

/// A `business_capability_update` change (it has no event). The limits are JSON numbers
/// or `TIER_*` strings depending on the version, so kept as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capability {
    pub max_daily_conversations_per_business: Option<String>,
    pub max_daily_conversation_per_phone: Option<String>,
    pub max_phone_numbers_per_business: Option<String>,
    pub max_phone_numbers_per_waba: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Parses a webhook body. Fails only when the body is not a JSON object or has no `entry`
/// array; anything odd inside is skipped or ignored and noted in `problems`.
pub fn parse_delivery(body: &[u8], problems: &mut Problems) -> Result<Delivery, PayloadError> {
    let root = load(body)?;
    let entries = match present(&root, "entry") {
        None => {
            return Err(PayloadError::Missing {
                path: "entry".into(),
            })
        }
        Some(Value::Array(entries)) => entries,
        Some(other) => return Err(wrong_type("entry", "array", other)),
    };
    let mut changes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = index("entry", i);
        if let Some(o) = problems.item(as_object::<Infallible>(entry, &path)) {
            read_entry(o, &path, &mut changes, problems);
        }
    }
    Ok(Delivery {
        object: problems.opt_str(&root, "", "object"),
        changes,
    })
}

fn read_entry(o: &Obj, base: &str, out: &mut Vec<Change>, problems: &mut Problems) {
    let Some(waba_id) = problems.item(required_id(o, base, "id")) else {
        return;
    };
    let time = unix_seconds(o, base, "time", problems);
    let Some(changes) = array(o, base, "changes", problems) else {
        return;
    };
    for (i, change) in changes.iter().enumerate() {
        let path = index(&field(base, "changes"), i);
        let read = as_object(change, &path).and_then(|c| read_change(c, &path, problems));
        if let Some((field, event)) = problems.item(read) {
            out.push(Change {
                waba_id: waba_id.clone(),
                time,
                field,
                event,
            });
        }
    }
}

fn read_change(
    o: &Obj,
    base: &str,
    problems: &mut Problems,
) -> Result<(String, Event), PayloadError> {
    let name = required_str(o, base, "field")?;
    let known = matches!(
        name.as_str(),
        "messages"
            | "account_update"
            | "account_alerts"
            | "phone_number_quality_update"
            | "message_template_status_update"
            | "message_template_quality_update"
            | "template_category_update"
            | "business_capability_update"
    );
    if !known {
        return Ok((name, Event::Other));
    }
    let path = field(base, "value");
    let value = present(o, "value").ok_or_else(|| PayloadError::Missing { path: path.clone() })?;
    let v = as_object(value, &path)?;
    let b = path.as_str();
    let event = match name.as_str() {
        "messages" => Event::Messages(messages(v, b, problems)),
        "account_update" => Event::Account(AccountUpdate {
            event: problems.opt_str(v, b, "event"),
            ban_state: nested_str(v, b, "ban_info", "waba_ban_state", problems),
            violation_type: nested_str(v, b, "violation_info", "violation_type", problems),
        }),
        "account_alerts" => Event::Alert(AccountAlert {
            entity_type: problems.opt_str(v, b, "entity_type"),
            entity_id: problems.field(opt_id::<Infallible>(v, b, "entity_id")),
            alert_type: nested_str(v, b, "alert_info", "alert_type", problems),
            severity: nested_str(v, b, "alert_info", "alert_severity", problems),
            status: nested_str(v, b, "alert_info", "alert_status", problems),
        }),
        "phone_number_quality_update" => Event::PhoneQuality(PhoneQuality {
            display_phone_number: problems.field(opt_id::<Infallible>(
                v,
                b,
                "display_phone_number",
            )),
            event: problems.opt_str(v, b, "event"),
            current_limit: problems.opt_str(v, b, "current_limit"),
            old_limit: problems.opt_str(v, b, "old_limit"),
            max_daily_conversations_per_business: problems.field(opt_id::<Infallible>(
                v,
                b,
                "max_daily_conversations_per_business",
            )),
        }),
        "message_template_status_update"
            if present(v, "event").is_none() && present(v, "new_quality_score").is_some() =>
        {
            template_quality(v, b, problems)
        }
        "message_template_status_update" => Event::TemplateStatus(TemplateStatus {
            template: template_ref(v, b, problems),
            event: problems.opt_str(v, b, "event"),
            reason: problems.opt_str(v, b, "reason"),
            category: problems.opt_str(v, b, "message_template_category"),
        }),
        "message_template_quality_update" => template_quality(v, b, problems),
        "template_category_update" => Event::TemplateCategory(TemplateCategory {
            template: template_ref(v, b, problems),
            previous_category: problems.opt_str(v, b, "previous_category"),
            new_category: problems.opt_str(v, b, "new_category"),
            correct_category: problems.opt_str(v, b, "correct_category"),
        }),
        _ => Event::Capability(Capability {
            max_daily_conversations_per_business: problems.field(opt_id::<Infallible>(
                v,
                b,
                "max_daily_conversations_per_business",
            )),
            max_daily_conversation_per_phone: problems.field(opt_id::<Infallible>(
                v,
                b,
                "max_daily_conversation_per_phone",
            )),
            max_phone_numbers_per_business: problems.field(opt_id::<Infallible>(
                v,
                b,
                "max_phone_numbers_per_business",
            )),
            max_phone_numbers_per_waba: problems.field(opt_id::<Infallible>(
                v,
                b,
                "max_phone_numbers_per_waba",
            )),
        }),
    };
    Ok((name, event))
}

fn messages(v: &Obj, base: &str, problems: &mut Problems) -> Messages {
    let phone_number_id = match present(v, "metadata") {
        None => None,
        Some(Value::Object(m)) => problems.field(opt_id::<Infallible>(
            m,
            &field(base, "metadata"),
            "phone_number_id",
        )),
        Some(other) => {
            problems.ignore(wrong_type::<Infallible>(
                &field(base, "metadata"),
                "object",
                other,
            ));
            None
        }
    };
    let mut statuses = Vec::new();
    if let Some(items) = array(v, base, "statuses", problems) {
        for (i, item) in items.iter().enumerate() {
            let path = index(&field(base, "statuses"), i);
            let read = as_object(item, &path).and_then(|s| status(s, &path, problems));
            statuses.extend(problems.item(read));
        }
    }
    // Incoming messages are customers' own: only how many.
    let incoming = array(v, base, "messages", problems).map_or(0, |m| m.len() as u64);
    Messages {
        phone_number_id,
        statuses,
        incoming,
        error_codes: error_codes(v, base, problems),
    }
}

fn status(o: &Obj, base: &str, problems: &mut Problems) -> Result<Status, PayloadError> {
    // Without its id a status cannot be told from a redelivery of itself.
    let message_id = MessageId(required_id(o, base, "id")?);
    let status = StatusKind::of(&required_str(o, base, "status")?);
    let (billable, category) = match present(o, "pricing") {
        None => (None, None),
        Some(Value::Object(p)) => {
            let path = field(base, "pricing");
            (
                problems.opt_bool(p, &path, "billable"),
                problems.opt_str(p, &path, "category"),
            )
        }
        Some(other) => {
            problems.ignore(wrong_type::<Infallible>(
                &field(base, "pricing"),
                "object",
                other,
            ));
            (None, None)
        }
    };
    Ok(Status {
        message_id,
        status,
        error_codes: error_codes(o, base, problems),
        billable,
        category,
        timestamp: unix_seconds(o, base, "timestamp", problems),
    })
}

fn template_quality(v: &Obj, base: &str, problems: &mut Problems) -> Event {
    Event::TemplateQuality(TemplateQuality {
        template: template_ref(v, base, problems),
        previous_quality_score: problems.opt_str(v, base, "previous_quality_score"),
        new_quality_score: problems.opt_str(v, base, "new_quality_score"),
    })
}

fn template_ref(v: &Obj, base: &str, problems: &mut Problems) -> TemplateRef {
    TemplateRef {
        id: problems.field(opt_id::<Infallible>(v, base, "message_template_id")),
        name: problems.opt_str(v, base, "message_template_name"),
        language: problems.opt_str(v, base, "message_template_language"),
    }
}

/// The `code` of each entry of an `errors` array; an entry without a usable code is
/// skipped (noted).
fn error_codes(o: &Obj, base: &str, problems: &mut Problems) -> Vec<i64> {
    let Some(errors) = array(o, base, "errors", problems) else {
        return Vec::new();
    };
    let errors_path = field(base, "errors");
    errors
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let path = index(&errors_path, i);
            let read = as_object(e, &path).and_then(|e| {
                let code = present(e, "code").ok_or_else(|| PayloadError::Missing {
                    path: field(&path, "code"),
                })?;
                lenient_i64(code).ok_or_else(|| wrong_type(&field(&path, "code"), "integer", code))
            });
            problems.item(read)
        })
        .collect()
}

/// The array at `name`; `None` when absent, or when not an array (noted).
fn array<'a>(
    o: &'a Obj,
    base: &str,
    name: &str,
    problems: &mut Problems,
) -> Option<&'a Vec<Value>> {
    match present(o, name)? {
        Value::Array(items) => Some(items),
        other => {
            problems.ignore(wrong_type::<Infallible>(&field(base, name), "array", other));
            None
        }
    }
}

/// A string inside a nested object (`outer.name`); `None` when absent, or unreadable (noted).
fn nested_str(
    o: &Obj,
    base: &str,
    outer: &str,
    name: &str,
    problems: &mut Problems,
) -> Option<String> {
    let path = field(base, outer);
    match present(o, outer)? {
        Value::Object(inner) => problems.opt_str(inner, &path, name),
        other => {
            problems.ignore(wrong_type::<Infallible>(&path, "object", other));
            None
        }
    }
}

/// Unix seconds given as a number or a numeric string (Meta sends `time` as a number and
/// a status's `timestamp` as a string); `None` when absent, or unreadable (noted).
fn unix_seconds(o: &Obj, base: &str, name: &str, problems: &mut Problems) -> Option<f64> {
    let v = present(o, name)?;
    match lenient_f64(v).filter(|t| *t >= 0.0) {
        Some(t) => Some(t),
        None => {
            problems.ignore(wrong_type::<Infallible>(
                &field(base, name),
                "unix seconds (number or numeric string)",
                v,
            ));
            None
        }
    }
}

/// A required, non-empty id (a string, or a number as its decimal text).
fn required_id(o: &Obj, base: &str, name: &str) -> Result<String, PayloadError> {
    match opt_id(o, base, name)? {
        None => Err(PayloadError::Missing {
            path: field(base, name),
        }),
        Some(id) if id.is_empty() => Err(PayloadError::Invalid {
            path: field(base, name),
            reason: "empty id".to_owned(),
        }),
        Some(id) => Ok(id),
    }
}
