//! Meta's health model as the Graph API sends it, and as 360dialog and Kapso relay it:
//! `health_status` (the overall `can_send_message` and one entry per entity, with their
//! errors and additional_info), the fields of a phone number, a message template, and the
//! `{"error":{...}}` envelope Meta answers with on failure.
//!
//! Enumerated values (`can_send_message`, `entity_type`, `quality_rating`, `status`, ...)
//! are kept exactly as sent: Meta's documents disagree on the value sets and keep adding to
//! them. Upstream strings are kept whole in the returned values; where one is quoted in an
//! error message it is cut at 200 characters, and whole bodies never go into error messages.

use serde_json::Value;

use crate::json::{
    as_object, clip, field, index, lenient_bool, lenient_i64, load, opt_id, present, required_str,
    strip_bom, wrong_type, Obj, Problems,
};

/// Meta's messaging health of a node: the overall value and one entry per entity.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthStatus {
    /// Overall value (`AVAILABLE`, `LIMITED`, `BLOCKED`, or anything new), as sent.
    pub can_send_message: String,
    pub entities: Vec<Entity>,
}

/// One node of the messaging path (phone number, WABA, business, app, template).
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Kept as sent: `PHONE_NUMBER`, `WABA`, `BUSINESS`, `APP`, `MESSAGE_TEMPLATE`, or
    /// anything new.
    pub entity_type: String,
    /// A JSON string, or a JSON number turned into its decimal text.
    pub id: String,
    pub can_send_message: Option<String>,
    pub can_receive_call_sip: Option<String>,
    /// Context for a `LIMITED` entity, one line per entry.
    pub additional_info: Vec<String>,
    /// Reasons for a `BLOCKED` entity.
    pub errors: Vec<EntityError>,
}

/// One entry of an entity's `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityError {
    pub error_code: Option<i64>,
    pub error_description: Option<String>,
    pub possible_solution: Option<String>,
}

/// A business phone number node.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneNumber {
    pub id: String,
    pub health_status: Option<HealthStatus>,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`, `NA`, ... as sent.
    pub quality_rating: Option<String>,
    /// `whatsapp_business_manager_messaging_limit` (v24.0+) when present, else the older
    /// `messaging_limit_tier`.
    pub messaging_limit_tier: Option<String>,
    pub status: Option<String>,
    pub name_status: Option<String>,
    /// `throughput.level`.
    pub throughput_level: Option<String>,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
}

/// One entry of the `message_templates` edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: Option<String>,
    /// `quality_score` given as a string, or the `score` of `{"score": ...}`.
    pub quality: Option<String>,
}

/// The `error` object of a Graph error envelope.
///
/// Strings are kept whole; [`Display`](std::fmt::Display) clips them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub message: Option<String>,
    /// The envelope's `type` (e.g. `OAuthException`).
    pub error_type: Option<String>,
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub fbtrace_id: Option<String>,
    pub is_transient: Option<bool>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Graph API error")?;
        if let Some(code) = self.code {
            write!(f, " {code}")?;
        }
        let mut qualifiers = Vec::new();
        if let Some(t) = &self.error_type {
            qualifiers.push(clip(t));
        }
        if let Some(subcode) = self.error_subcode {
            qualifiers.push(format!("subcode {subcode}"));
        }
        if self.is_transient == Some(true) {
            qualifiers.push("transient".to_owned());
        }
        if !qualifiers.is_empty() {
            write!(f, " ({})", qualifiers.join(", "))?;
        }
        match &self.message {
            Some(m) => write!(f, ": {}", clip(m))?,
            None => f.write_str(": (no message)")?,
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {}]", clip(trace))?;
        }
        Ok(())
    }
}

/// Why a body (or header) could not be parsed; the upstream error is a Graph error envelope
/// on a 2xx body.
pub type PayloadError = crate::json::PayloadError<GraphError>;

// ---------------------------------------------------------------------------------------------
// Health status

/// Parses `{"health_status":{...},"id":"..."}` (a Graph node, or 360dialog's `/health_status`).
///
/// The top-level `id` is not used (it is the node asked for).
pub fn parse_health_status_body(
    body: &[u8],
    problems: &mut Problems,
) -> Result<HealthStatus, PayloadError> {
    let root = load_graph(body)?;
    let value = present(&root, "health_status").ok_or_else(|| PayloadError::Missing {
        path: "health_status".to_owned(),
    })?;
    health_status_from_value(value, "health_status", problems)
}

/// Parses the `health_status` object itself; `path` names it in errors.
///
/// `can_send_message` is required; `entities` may be absent or null (no entities). Read
/// entity by entity: one without a type or id is skipped, a field of one that cannot be
/// read is ignored, each noted in `problems`; the rest are kept.
pub fn health_status_from_value(
    value: &Value,
    path: &str,
    problems: &mut Problems,
) -> Result<HealthStatus, PayloadError> {
    health_status_from_object(as_object(value, path)?, path, problems)
}

/// [`health_status_from_value`] on an object already in hand.
pub(crate) fn health_status_from_object(
    o: &Obj,
    path: &str,
    problems: &mut Problems,
) -> Result<HealthStatus, PayloadError> {
    let can_send_message = required_str(o, path, "can_send_message")?;
    let entities = match present(o, "entities") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let base = field(path, "entities");
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let read = entity(v, &index(&base, i), problems);
                    problems.item(read)
                })
                .collect()
        }
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(
                &field(path, "entities"),
                "array",
                v,
            ));
            Vec::new()
        }
    };
    Ok(HealthStatus {
        can_send_message,
        entities,
    })
}

/// An entity, or why it is unusable (no object, type or id).
fn entity(v: &Value, path: &str, problems: &mut Problems) -> Result<Entity, PayloadError> {
    let o = as_object(v, path)?;
    Ok(Entity {
        entity_type: required_str(o, path, "entity_type")?,
        id: required_id(o, path, "id")?,
        can_send_message: problems.opt_str(o, path, "can_send_message"),
        can_receive_call_sip: problems.opt_str(o, path, "can_receive_call_sip"),
        additional_info: string_list(o, path, "additional_info", problems),
        errors: entity_errors(o, path, problems),
    })
}

/// A list of strings; a lone string counts as a one-line list and `null` entries are skipped.
/// An entry that is not a string is left out alone (noted), the other lines kept.
fn string_list(o: &Obj, base: &str, name: &str, problems: &mut Problems) -> Vec<String> {
    let path = field(base, name);
    match present(o, name) {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Null => {}
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        problems.ignore(wrong_type::<GraphError>(&index(&path, i), "string", other))
                    }
                }
            }
            out
        }
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(&path, "array", v));
            Vec::new()
        }
    }
}

/// An entity's `errors`: an array of objects (a lone object counts as one error). An entry
/// that is not an object, or a field of one that cannot be read, is left out alone (noted).
fn entity_errors(o: &Obj, base: &str, problems: &mut Problems) -> Vec<EntityError> {
    let path = field(base, "errors");
    match present(o, "errors") {
        None => Vec::new(),
        Some(Value::Object(e)) => vec![entity_error(e, &path, problems)],
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                let p = index(&path, i);
                match v.as_object() {
                    Some(e) => out.push(entity_error(e, &p, problems)),
                    None => problems.ignore(wrong_type::<GraphError>(&p, "object", v)),
                }
            }
            out
        }
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(&path, "array", v));
            Vec::new()
        }
    }
}

fn entity_error(o: &Obj, path: &str, problems: &mut Problems) -> EntityError {
    EntityError {
        error_code: problems.field(opt_integer(o, path, "error_code")),
        error_description: problems.opt_str(o, path, "error_description"),
        possible_solution: problems.opt_str(o, path, "possible_solution"),
    }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers and templates
// ---------------------------------------------------------------------------------------------
// Error envelope

/// The `error` object of a Graph error envelope `{"error":{...}}`, for a body of any status.
///
/// `None` when the body is not JSON, not an object, or has no `error` object. Fields are read
/// leniently: codes may be numbers or numeric strings, `is_transient` a boolean or
/// `"true"`/`"false"`; fields of other types are left out. Never fails.
pub fn parse_graph_error(body: &[u8]) -> Option<GraphError> {
    match serde_json::from_slice::<Value>(strip_bom(body)) {
        Ok(Value::Object(root)) => graph_error_of(&root),
        _ => None,
    }
}

pub(crate) fn graph_error_of(root: &Obj) -> Option<GraphError> {
    let e = root.get("error")?.as_object()?;
    let text = |k: &str| match e.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Some(GraphError {
        message: text("message"),
        error_type: text("type"),
        code: e.get("code").and_then(lenient_i64),
        error_subcode: e.get("error_subcode").and_then(lenient_i64),
        fbtrace_id: text("fbtrace_id"),
        is_transient: e.get("is_transient").and_then(lenient_bool),
    })
}

// ---------------------------------------------------------------------------------------------
// Loading and field access

/// [`load`], turning a Graph error envelope into [`PayloadError::Upstream`].
pub(crate) fn load_graph(body: &[u8]) -> Result<Obj, PayloadError> {
    let root = load(body)?;
    match graph_error_of(&root) {
        Some(e) => Err(PayloadError::Upstream(e)),
        None => Ok(root),
    }
}

/// A required, non-empty id.
pub(crate) fn required_id(o: &Obj, base: &str, name: &str) -> Result<String, PayloadError> {
    let path = || field(base, name);
    match opt_id(o, base, name)? {
        None => Err(PayloadError::Missing { path: path() }),
        Some(id) if id.is_empty() => Err(PayloadError::Invalid {
            path: path(),
            reason: "empty id".to_owned(),
        }),
        Some(id) => Ok(id),
    }
}

/// An integer given as a number (integral) or a numeric string.
pub(crate) fn opt_integer(o: &Obj, base: &str, name: &str) -> Result<Option<i64>, PayloadError> {
    let Some(v) = present(o, name) else {
        return Ok(None);
    };
    let path = field(base, name);
    match v {
        Value::Number(_) => lenient_i64(v).map(Some).ok_or(PayloadError::WrongType {
            path,
            expected: "integer",
            found: "non-integer number",
        }),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(PayloadError::Invalid {
                path,
                reason: format!("not an integer: \"{}\"", clip(s).escape_debug()),
            }),
        },
        other => Err(wrong_type(&path, "integer", other)),
    }
}
