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

/// A status's `status`. The four Meta documents for every message have their own
/// variants; any other (`played` for a voice message, or one Meta adds later) is kept as
/// sent, lowercased, so that it counts under its own name and never inflates `sent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Lowercase letters, digits and `_`, at most [`MAX_STATUS_LEN`] bytes; a value that is
    /// not (text that no status of Meta's looks like) reads `other`.
    Other(String),
}

/// Longest status value kept as sent: Meta's are single words.
pub const MAX_STATUS_LEN: usize = 32;

impl StatusKind {
    fn of(s: &str) -> StatusKind {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "sent" => StatusKind::Sent,
            "delivered" => StatusKind::Delivered,
            "read" => StatusKind::Read,
            "failed" => StatusKind::Failed,
            _ if !s.is_empty()
                && s.len() <= MAX_STATUS_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                StatusKind::Other(s)
            }
            _ => StatusKind::Other("other".to_owned()),
        }
    }

    /// The `status` label value.
    pub fn as_str(&self) -> &str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
            StatusKind::Other(s) => s,
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

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_SENT: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-sent-marketing.json");
    const STATUS_SENT_V24: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-sent-v24-no-pricing.json");
    const STATUS_FAILED: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-failed-131049.json");
    const TEXT_INCOMING: &str =
        include_str!("../../tests/corpus/webhooks/messages-text-incoming.json");
    const ERRORS_130429: &str =
        include_str!("../../tests/corpus/webhooks/messages-errors-130429.json");
    const ACCOUNT_VIOLATION: &str =
        include_str!("../../tests/corpus/webhooks/account-update-account-violation.json");
    const ACCOUNT_DISABLED: &str =
        include_str!("../../tests/corpus/webhooks/account-update-disabled-update.json");
    const ALERT_DEFERRED: &str =
        include_str!("../../tests/corpus/webhooks/account-alerts-capabilities-deferred.json");
    const PHONE_QUALITY: &str = include_str!(
        "../../tests/corpus/webhooks/phone-number-quality-update-throughput-upgrade.json"
    );
    const TEMPLATE_APPROVED: &str =
        include_str!("../../tests/corpus/webhooks/template-status-approved.json");
    const TEMPLATE_REJECTED: &str =
        include_str!("../../tests/corpus/webhooks/template-status-rejected-invalid-format.json");
    const TEMPLATE_QUALITY: &str =
        include_str!("../../tests/corpus/webhooks/template-quality-update-green-yellow.json");
    const CATEGORY_IMPENDING: &str =
        include_str!("../../tests/corpus/webhooks/template-category-update-impending.json");
    const CATEGORY_COMPLETED: &str =
        include_str!("../../tests/corpus/webhooks/template-category-update-completed.json");
    const CAPABILITY: &str =
        include_str!("../../tests/corpus/webhooks/business-capability-update.json");

    const FIXTURES: &[&str] = &[
        STATUS_SENT,
        STATUS_SENT_V24,
        STATUS_FAILED,
        TEXT_INCOMING,
        ERRORS_130429,
        ACCOUNT_VIOLATION,
        ACCOUNT_DISABLED,
        ALERT_DEFERRED,
        PHONE_QUALITY,
        TEMPLATE_APPROVED,
        TEMPLATE_REJECTED,
        TEMPLATE_QUALITY,
        CATEGORY_IMPENDING,
        CATEGORY_COMPLETED,
        CAPABILITY,
    ];

    const WABA: &str = "102290129340398";
    const PHONE: &str = "106540352242922";

    fn parse(body: &str) -> (Delivery, Problems) {
        let mut problems = Problems::default();
        let delivery = parse_delivery(body.as_bytes(), &mut problems).unwrap();
        (delivery, problems)
    }

    /// The one change of a published example, which parses without a problem.
    fn only_change(body: &str) -> Change {
        let (delivery, problems) = parse(body);
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(
            delivery.object.as_deref(),
            Some("whatsapp_business_account")
        );
        assert_eq!(delivery.changes.len(), 1, "{delivery:?}");
        delivery.changes.into_iter().next().unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    fn status(id: &str, kind: StatusKind, timestamp: f64) -> Status {
        Status {
            message_id: MessageId(id.to_owned()),
            status: kind,
            error_codes: vec![],
            billable: None,
            category: None,
            timestamp: Some(timestamp),
        }
    }

    fn messages_change(messages: Messages) -> Change {
        Change {
            waba_id: WABA.into(),
            time: None,
            field: "messages".into(),
            event: Event::Messages(messages),
        }
    }

    fn business(waba_id: &str, time: f64, field: &str, event: Event) -> Change {
        Change {
            waba_id: waba_id.into(),
            time: Some(time),
            field: field.into(),
            event,
        }
    }

    const WAMID_SENT: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";

    #[test]
    fn a_sent_status_carries_its_pricing() {
        let expected = Messages {
            phone_number_id: s(PHONE),
            statuses: vec![Status {
                billable: Some(true),
                category: s("marketing"),
                ..status(WAMID_SENT, StatusKind::Sent, 1_750_030_073.0)
            }],
            ..Messages::default()
        };
        assert_eq!(only_change(STATUS_SENT), messages_change(expected));
    }

    #[test]
    fn a_v24_status_may_come_without_pricing() {
        let expected = Messages {
            phone_number_id: s(PHONE),
            statuses: vec![status(WAMID_SENT, StatusKind::Sent, 1_750_030_073.0)],
            ..Messages::default()
        };
        assert_eq!(only_change(STATUS_SENT_V24), messages_change(expected));
    }

    #[test]
    fn a_failed_status_carries_its_error_codes() {
        let expected = Messages {
            phone_number_id: s(PHONE),
            statuses: vec![Status {
                error_codes: vec![131_049],
                ..status(
                    "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
                    StatusKind::Failed,
                    1_751_142_888.0,
                )
            }],
            ..Messages::default()
        };
        assert_eq!(only_change(STATUS_FAILED), messages_change(expected));
    }

    #[test]
    fn incoming_messages_are_only_counted() {
        let expected = Messages {
            phone_number_id: s(PHONE),
            incoming: 1,
            ..Messages::default()
        };
        assert_eq!(only_change(TEXT_INCOMING), messages_change(expected));
    }

    #[test]
    fn errors_without_a_message_are_kept_by_code() {
        let expected = Messages {
            phone_number_id: s(PHONE),
            error_codes: vec![130_429],
            ..Messages::default()
        };
        assert_eq!(only_change(ERRORS_130429), messages_change(expected));
    }

    #[test]
    fn account_updates_carry_their_event() {
        let violation = Event::Account(AccountUpdate {
            event: s("ACCOUNT_VIOLATION"),
            ban_state: None,
            violation_type: s("ADULT"),
        });
        assert_eq!(
            only_change(ACCOUNT_VIOLATION),
            business(WABA, 1_743_451_903.0, "account_update", violation)
        );
        let disabled = Event::Account(AccountUpdate {
            event: s("DISABLED_UPDATE"),
            ban_state: s("REINSTATE"),
            violation_type: None,
        });
        let change = only_change(ACCOUNT_DISABLED);
        assert_eq!(change.event.business_event(), Some("DISABLED_UPDATE"));
        assert_eq!(
            change,
            business(WABA, 1_743_451_903.0, "account_update", disabled)
        );
    }

    #[test]
    fn an_account_alert_stands_for_its_type() {
        let alert = Event::Alert(AccountAlert {
            entity_type: s("BUSINESS"),
            entity_id: s("506914307656634"),
            alert_type: s("INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED"),
            severity: s("WARNING"),
            status: s("ACTIVE"),
        });
        let change = only_change(ALERT_DEFERRED);
        assert_eq!(
            change.event.business_event(),
            Some("INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED")
        );
        assert_eq!(
            change,
            business(WABA, 1_745_612_159.0, "account_alerts", alert)
        );
    }

    #[test]
    fn a_phone_quality_update_names_the_business_number_and_limit() {
        let quality = Event::PhoneQuality(PhoneQuality {
            display_phone_number: s("15550783881"),
            event: s("THROUGHPUT_UPGRADE"),
            current_limit: s("TIER_UNLIMITED"),
            old_limit: None,
            max_daily_conversations_per_business: None,
        });
        let change = only_change(PHONE_QUALITY);
        assert_eq!(change.event.business_event(), Some("THROUGHPUT_UPGRADE"));
        assert_eq!(
            change,
            business(
                WABA,
                1_748_454_394.0,
                "phone_number_quality_update",
                quality
            )
        );
    }

    #[test]
    fn template_status_events_name_the_template() {
        let approved = Event::TemplateStatus(TemplateStatus {
            template: TemplateRef {
                id: s("1689556908129832"),
                name: s("order_confirmation"),
                language: s("en-US"),
            },
            event: s("APPROVED"),
            reason: s("NONE"),
            category: s("UTILITY"),
        });
        assert_eq!(
            only_change(TEMPLATE_APPROVED),
            business(
                WABA,
                1_751_247_548.0,
                "message_template_status_update",
                approved
            )
        );
        let rejected = Event::TemplateStatus(TemplateStatus {
            template: TemplateRef {
                id: s("1689556908129835"),
                name: s("abandoned_cart"),
                language: s("en"),
            },
            event: s("REJECTED"),
            reason: s("INVALID_FORMAT"),
            category: s("MARKETING"),
        });
        let change = only_change(TEMPLATE_REJECTED);
        assert_eq!(change.event.business_event(), Some("REJECTED"));
        assert_eq!(
            change,
            business(
                WABA,
                1_751_247_548.0,
                "message_template_status_update",
                rejected
            )
        );
    }

    #[test]
    fn a_template_quality_update_is_known_by_its_shape_whatever_its_field() {
        let quality = |field: &str| {
            business(
                WABA,
                1_674_864_290.0,
                field,
                Event::TemplateQuality(TemplateQuality {
                    template: TemplateRef {
                        id: s("806312974732579"),
                        name: s("welcome_template"),
                        language: s("en-US"),
                    },
                    previous_quality_score: s("GREEN"),
                    new_quality_score: s("YELLOW"),
                }),
            )
        };
        // Meta's published example says `message_template_status_update`.
        let change = only_change(TEMPLATE_QUALITY);
        assert_eq!(change.event.business_event(), Some("YELLOW"));
        assert_eq!(change, quality("message_template_status_update"));
        let renamed = TEMPLATE_QUALITY.replace(
            "\"message_template_status_update\"",
            "\"message_template_quality_update\"",
        );
        assert_eq!(
            only_change(&renamed),
            quality("message_template_quality_update")
        );
    }

    #[test]
    fn a_category_update_stands_for_the_category_the_template_ends_up_in() {
        let template = TemplateRef {
            id: s("278077987957091"),
            name: s("welcome_template"),
            language: s("en-US"),
        };
        let impending = Event::TemplateCategory(TemplateCategory {
            template: template.clone(),
            previous_category: None,
            new_category: s("UTILITY"),
            correct_category: s("MARKETING"),
        });
        let change = only_change(CATEGORY_IMPENDING);
        assert_eq!(change.event.business_event(), Some("MARKETING"));
        assert_eq!(
            change,
            business(WABA, 1_746_082_800.0, "template_category_update", impending)
        );
        let completed = Event::TemplateCategory(TemplateCategory {
            template,
            previous_category: s("UTILITY"),
            new_category: s("MARKETING"),
            correct_category: None,
        });
        let change = only_change(CATEGORY_COMPLETED);
        assert_eq!(change.event.business_event(), Some("MARKETING"));
        assert_eq!(
            change,
            business(WABA, 1_746_169_200.0, "template_category_update", completed)
        );
    }

    #[test]
    fn a_capability_update_has_limits_and_no_event() {
        let capability = Event::Capability(Capability {
            max_daily_conversations_per_business: s("2000"),
            max_daily_conversation_per_phone: None,
            max_phone_numbers_per_business: None,
            max_phone_numbers_per_waba: s("25"),
        });
        let change = only_change(CAPABILITY);
        assert_eq!(change.event.business_event(), None);
        assert_eq!(
            change,
            business(
                "524126980791429",
                1_739_321_024.0,
                "business_capability_update",
                capability
            )
        );
    }

    #[test]
    fn no_customer_data_is_kept() {
        let customers = [
            // the customer's number, also inside every wamid (base64)
            "16505551234",
            "16503879439",
            "MTY1MDM4Nzk0Mz",
            "wamid",
            "Fictitious Customer",
            "Does it come in another color",
            "recipient_id",
            "wa_id",
            "Limits cannot be increased",
            "parameters placed next to each other",
        ];
        for body in FIXTURES {
            let (delivery, problems) = parse(body);
            let shown = format!("{delivery:?} {problems:?}");
            for data in customers {
                assert!(!shown.contains(data), "{data} in {shown}");
            }
        }
        // Yet the ids are there, for de-duplication.
        let change = only_change(STATUS_SENT);
        let Event::Messages(m) = change.event else {
            panic!("{change:?}")
        };
        assert_eq!(m.statuses[0].message_id.as_str(), WAMID_SENT);
    }

    // -----------------------------------------------------------------------------------------
    // Odd bodies

    fn body_of(changes: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":{changes}}}]}}"#
        )
    }

    fn statuses_body(statuses: &str) -> String {
        body_of(&format!(
            r#"[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{PHONE}"}},"statuses":{statuses}}}}}]"#
        ))
    }

    fn statuses_of(body: &str) -> (Vec<Status>, Problems) {
        let (delivery, problems) = parse(body);
        let [Change {
            event: Event::Messages(m),
            ..
        }] = delivery.changes.as_slice()
        else {
            panic!("{delivery:?}")
        };
        (m.statuses.clone(), problems)
    }

    #[test]
    fn a_status_without_id_is_skipped_and_its_siblings_kept() {
        let (statuses, problems) = statuses_of(&statuses_body(
            r#"[{"status":"delivered","timestamp":"1"},{"id":"w2","status":"delivered","timestamp":"2"}]"#,
        ));
        assert_eq!(statuses, [status("w2", StatusKind::Delivered, 2.0)]);
        assert_eq!(problems.skipped(), 1);
        assert_eq!(
            problems.notes(),
            ["item skipped: missing required field `entry[0].changes[0].value.statuses[0].id` (absent or null)"]
        );
    }

    #[test]
    fn status_values_other_than_the_four_are_kept_as_sent() {
        let (statuses, problems) = statuses_of(&statuses_body(
            r#"[{"id":"a","status":"played","timestamp":1},{"id":"b","status":"READ","timestamp":2},
                {"id":"c","status":"something_new","timestamp":"3"},{"id":"d","status":7},
                {"id":"e","status":"<b>x y</b>","timestamp":4},{"id":"f","status":" Sent ","timestamp":5}]"#,
        ));
        let kinds: Vec<_> = statuses.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(kinds, ["played", "read", "something_new", "other", "sent"]);
        assert_eq!(
            problems.notes(),
            ["item skipped: wrong type at `entry[0].changes[0].value.statuses[3].status`: expected string, found number"]
        );
    }

    #[test]
    fn a_failed_status_with_errors_not_an_array_is_kept_without_codes() {
        let (statuses, problems) = statuses_of(&statuses_body(
            r#"[{"id":"f","status":"failed","timestamp":"5","errors":{"code":131026}}]"#,
        ));
        assert_eq!(statuses, [status("f", StatusKind::Failed, 5.0)]);
        assert_eq!(problems.skipped(), 0);
        assert_eq!(
            problems.notes(),
            ["ignored: wrong type at `entry[0].changes[0].value.statuses[0].errors`: expected array, found object"]
        );
    }

    #[test]
    fn error_codes_are_read_one_by_one() {
        let (statuses, problems) = statuses_of(&statuses_body(
            r#"[{"id":"f","status":"failed","errors":[{"code":"131047"},{"title":"no code"},"x",{"code":131026.0},{"code":true}]}]"#,
        ));
        assert_eq!(statuses[0].error_codes, [131_047, 131_026]);
        assert_eq!(statuses[0].timestamp, None);
        assert_eq!(problems.skipped(), 3);
        assert_eq!(
            problems.notes(),
            [
                "item skipped: missing required field `entry[0].changes[0].value.statuses[0].errors[1].code` (absent or null)",
                "item skipped: wrong type at `entry[0].changes[0].value.statuses[0].errors[2]`: expected object, found string",
                "item skipped: wrong type at `entry[0].changes[0].value.statuses[0].errors[4].code`: expected integer, found boolean",
            ]
        );
    }

    #[test]
    fn odd_pricing_and_timestamps_are_ignored_and_the_status_kept() {
        let (statuses, problems) = statuses_of(&statuses_body(
            r#"[{"id":"p","status":"delivered","timestamp":"soon","pricing":{"billable":"yes","category":"utility"}},
                {"id":"q","status":"delivered","timestamp":-4,"pricing":[]}]"#,
        ));
        assert_eq!(
            statuses,
            [
                Status {
                    category: s("utility"),
                    timestamp: None,
                    ..status("p", StatusKind::Delivered, 0.0)
                },
                Status {
                    timestamp: None,
                    ..status("q", StatusKind::Delivered, 0.0)
                },
            ]
        );
        assert_eq!(problems.skipped(), 0);
        assert_eq!(
            problems.notes(),
            [
                "ignored: wrong type at `entry[0].changes[0].value.statuses[0].pricing.billable`: expected boolean, found string",
                "ignored: wrong type at `entry[0].changes[0].value.statuses[0].timestamp`: expected unix seconds (number or numeric string), found string",
                "ignored: wrong type at `entry[0].changes[0].value.statuses[1].pricing`: expected object, found array",
                "ignored: wrong type at `entry[0].changes[0].value.statuses[1].timestamp`: expected unix seconds (number or numeric string), found number",
            ]
        );
    }

    #[test]
    fn a_change_that_is_not_an_object_is_skipped_and_its_siblings_kept() {
        let (delivery, problems) = parse(&body_of(
            r#"[5,{"field":"account_update","value":{"event":"ACCOUNT_DELETED"}},{"value":{}},{"field":"account_update","value":"x"}]"#,
        ));
        assert_eq!(
            delivery.changes,
            [Change {
                waba_id: WABA.into(),
                time: None,
                field: "account_update".into(),
                event: Event::Account(AccountUpdate {
                    event: s("ACCOUNT_DELETED"),
                    ..AccountUpdate::default()
                }),
            }]
        );
        assert_eq!(problems.skipped(), 3);
        assert_eq!(
            problems.notes(),
            [
                "item skipped: wrong type at `entry[0].changes[0]`: expected object, found number",
                "item skipped: missing required field `entry[0].changes[2].field` (absent or null)",
                "item skipped: wrong type at `entry[0].changes[3].value`: expected object, found string",
            ]
        );
    }

    #[test]
    fn an_unknown_field_is_kept_by_name_unread() {
        let (delivery, problems) = parse(&body_of(
            r#"[{"field":"user_preferences","value":{"users":[{"wa_id":"16505551234"}]}},{"field":"smb_message_echoes","value":7}]"#,
        ));
        let fields: Vec<_> = delivery
            .changes
            .iter()
            .map(|c| (c.field.as_str(), &c.event))
            .collect();
        assert_eq!(
            fields,
            [
                ("user_preferences", &Event::Other),
                ("smb_message_echoes", &Event::Other)
            ]
        );
        assert!(problems.is_empty(), "{problems}");
    }

    #[test]
    fn an_odd_entry_is_skipped_and_its_siblings_kept() {
        let body = format!(
            r#"{{"entry":[null,{{"changes":[]}},{{"id":42,"time":"17","changes":{{}}}},{{"id":"{WABA}","time":9,"changes":[{{"field":"account_update","value":{{"event":"X"}}}}]}}]}}"#
        );
        let (delivery, problems) = parse(&body);
        assert_eq!(delivery.object, None);
        assert_eq!(
            delivery.changes,
            [Change {
                waba_id: WABA.into(),
                time: Some(9.0),
                field: "account_update".into(),
                event: Event::Account(AccountUpdate {
                    event: s("X"),
                    ..AccountUpdate::default()
                }),
            }]
        );
        assert_eq!(problems.skipped(), 2);
        assert_eq!(
            problems.notes(),
            [
                "item skipped: wrong type at `entry[0]`: expected object, found null",
                "item skipped: missing required field `entry[1].id` (absent or null)",
                "ignored: wrong type at `entry[2].changes`: expected array, found object",
            ]
        );
    }

    #[test]
    fn odd_parts_of_messages_changes_are_ignored() {
        let (delivery, problems) = parse(&body_of(
            r#"[{"field":"messages","value":{"metadata":"x","messages":{"from":"16505551234"},"statuses":"y","errors":[{"code":1}]}}]"#,
        ));
        assert_eq!(
            delivery.changes,
            [messages_change(Messages {
                error_codes: vec![1],
                ..Messages::default()
            })]
        );
        assert_eq!(
            problems.notes(),
            [
                "ignored: wrong type at `entry[0].changes[0].value.metadata`: expected object, found string",
                "ignored: wrong type at `entry[0].changes[0].value.statuses`: expected array, found string",
                "ignored: wrong type at `entry[0].changes[0].value.messages`: expected array, found object",
            ]
        );
    }

    #[test]
    fn problem_notes_name_paths_and_types_never_values() {
        let (_, problems) = parse(&statuses_body(
            r#"[{"id":{"wa_id":"16505551234"},"status":"sent"},
                {"id":"w","status":"sent","timestamp":"16505551234x","pricing":{"category":["16505551234"]},
                 "errors":[{"code":"16505551234x"}]}]"#,
        ));
        assert_eq!(problems.notes().len(), 4, "{problems}");
        assert!(!problems.to_string().contains("16505551234"), "{problems}");
    }

    fn parse_err(body: &[u8]) -> PayloadError {
        parse_delivery(body, &mut Problems::default()).unwrap_err()
    }

    #[test]
    fn a_body_fails_only_when_not_an_object_with_an_entry_array() {
        assert_eq!(parse_err(b" \n"), PayloadError::EmptyBody);
        assert_eq!(
            parse_err(b"[]"),
            PayloadError::WrongType {
                path: "$".into(),
                expected: "object",
                found: "array"
            }
        );
        assert_eq!(
            parse_err(br#"{"object":"whatsapp_business_account"}"#),
            PayloadError::Missing {
                path: "entry".into()
            }
        );
        assert_eq!(
            parse_err(br#"{"entry":{"id":"1"}}"#),
            PayloadError::WrongType {
                path: "entry".into(),
                expected: "array",
                found: "object"
            }
        );
        assert!(matches!(
            parse_err(br#"{"entry":[{"id":"1""#),
            PayloadError::Truncated { .. }
        ));
        let (delivery, problems) = parse(r#"{"entry":[]}"#);
        assert_eq!(delivery, Delivery::default());
        assert!(problems.is_empty());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(r#"{{"entry":[{}"#, "[".repeat(100_000));
        assert!(
            matches!(parse_err(deep.as_bytes()), PayloadError::Malformed { .. }),
            "serde_json's recursion limit"
        );
    }
}
