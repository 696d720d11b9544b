//! Parsing of Meta Graph API (Cloud API / WhatsApp Business Management API) response bodies
//! and rate-limit usage headers into typed reports.
//!
//! Pure functions over the raw bytes: no I/O. The shapes covered here are Graph's own: a
//! phone number node (`GET /<PHONE_NUMBER_ID>?fields=...`), the pages of the
//! `phone_numbers` and `message_templates` edges of a WABA, and the
//! `x-business-use-case-usage` and `x-app-usage` response headers. Meta's health model (the
//! `health_status` of a node, which 360dialog and Kapso relay too) and its error envelope
//! are read by [`crate::meta::payload`], re-exported here.

use serde_json::Value;

use crate::json::{
    as_object, clip, field, index, key, lenient_f64, present, required_str, top_level_object,
    wrong_type, Obj, Problems, ROOT,
};
pub use crate::meta::payload::{
    health_status_from_value, parse_graph_error, parse_health_status_body, Entity, EntityError,
    GraphError, HealthStatus, PayloadError, PhoneNumber, Template,
};
use crate::meta::payload::{load_graph, opt_integer, required_id};

/// The usage measures Graph reports, in percent of the budget (sorted by name).
const MEASURES: &[&str] = &["call_count", "total_cputime", "total_time"];

/// Minutes until a rate-limited business object can call again.
const REGAIN_ACCESS: &str = "estimated_time_to_regain_access";

/// One page of a Graph edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// `paging.next`: the URL of the next page; `None` on the last page.
    pub next: Option<String>,
    /// `paging.cursors.after`: where the next page starts, for a `next` that names another
    /// host than the one asked (a relay of Graph's answers).
    pub after: Option<String>,
}

/// One usage figure from a rate-limit header.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The header's key (WABA, app or business id); empty for `x-app-usage`.
    pub business_object_id: String,
    /// The entry's `type` (e.g. `whatsapp_business_management`); `app` for `x-app-usage`.
    pub usage_type: String,
    /// `call_count`, `total_cputime` or `total_time`.
    pub measure: String,
    /// Percent of the budget used, divided by 100 (may exceed 1).
    pub ratio: f64,
}

// ---------------------------------------------------------------------------------------------
// Phone numbers and templates

/// Parses a phone number node (`GET /<PHONE_NUMBER_ID>?fields=health_status,quality_rating,...`).
///
/// Only the `id` is required; a field that cannot be read is ignored (noted in `problems`).
pub fn parse_phone_number(
    body: &[u8],
    problems: &mut Problems,
) -> Result<PhoneNumber, PayloadError> {
    let root = load_graph(body)?;
    phone_number(&root, "", problems)
}

/// Parses a page of `/<WABA_ID>/phone_numbers`, entry by entry: one without an `id` is
/// skipped (noted in `problems`), the others kept.
pub fn parse_phone_numbers_page(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Page<PhoneNumber>, PayloadError> {
    page(body, phone_number, problems)
}

/// Parses a page of `/<WABA_ID>/message_templates`, entry by entry: one without its id or
/// status is skipped (noted in `problems`), the others kept.
pub fn parse_templates_page(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Page<Template>, PayloadError> {
    page(body, template, problems)
}

fn phone_number(o: &Obj, base: &str, problems: &mut Problems) -> Result<PhoneNumber, PayloadError> {
    let id = required_id(o, base, "id")?;
    let health_status = match present(o, "health_status") {
        None => None,
        Some(v) => {
            let read = health_status_from_value(v, &field(base, "health_status"), problems);
            problems.field(read.map(Some))
        }
    };
    let new_limit = problems.opt_str(o, base, "whatsapp_business_manager_messaging_limit");
    let old_limit = problems.opt_str(o, base, "messaging_limit_tier");
    let throughput_level = match present(o, "throughput") {
        None => None,
        Some(Value::Object(t)) => problems.opt_str(t, &field(base, "throughput"), "level"),
        // Lenient: a bare level.
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(
                &field(base, "throughput"),
                "object",
                v,
            ));
            None
        }
    };
    Ok(PhoneNumber {
        id,
        health_status,
        quality_rating: problems.opt_str(o, base, "quality_rating"),
        messaging_limit_tier: new_limit.or(old_limit),
        status: problems.opt_str(o, base, "status"),
        name_status: problems.opt_str(o, base, "name_status"),
        throughput_level,
        display_phone_number: problems.opt_str(o, base, "display_phone_number"),
        verified_name: problems.opt_str(o, base, "verified_name"),
    })
}

fn template(o: &Obj, base: &str, problems: &mut Problems) -> Result<Template, PayloadError> {
    let id = required_id(o, base, "id")?;
    let status = required_str(o, base, "status")?;
    // Usable without a name or language (a page asked for fewer fields): their labels
    // stay empty, noted.
    let mut label = |name: &str| {
        let value = problems.opt_str(o, base, name);
        if value.is_none() && present(o, name).is_none() {
            problems.ignore(PayloadError::Missing {
                path: field(base, name),
            });
        }
        value.unwrap_or_default()
    };
    let name = label("name");
    let language = label("language");
    let category = problems.opt_str(o, base, "category");
    let quality = match present(o, "quality_score") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(q)) => problems.opt_str(q, &field(base, "quality_score"), "score"),
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(
                &field(base, "quality_score"),
                "string or object",
                v,
            ));
            None
        }
    };
    Ok(Template {
        id,
        name,
        language,
        status,
        category,
        quality,
    })
}

/// A page of an edge: `data` must be an array; each entry that `item` cannot read is
/// skipped and noted. A `paging` that cannot be read ends the listing here (noted).
fn page<T>(
    body: &[u8],
    item: fn(&Obj, &str, &mut Problems) -> Result<T, PayloadError>,
    problems: &mut Problems,
) -> Result<Page<T>, PayloadError> {
    let root = load_graph(body)?;
    page_of(&root, "", item, problems)
}

/// [`page`] of an edge object in hand: a whole answer (`base` empty) or an edge expanded
/// in a node's answer (`base` its field, e.g. `phone_numbers`).
fn page_of<T>(
    root: &Obj,
    base: &str,
    item: fn(&Obj, &str, &mut Problems) -> Result<T, PayloadError>,
    problems: &mut Problems,
) -> Result<Page<T>, PayloadError> {
    let data_path = field(base, "data");
    let data = present(root, "data").ok_or_else(|| PayloadError::Missing {
        path: data_path.clone(),
    })?;
    let items = data
        .as_array()
        .ok_or_else(|| wrong_type(&data_path, "array", data))?;
    let data = items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let path = index(&data_path, i);
            let read = as_object(v, &path).and_then(|o| item(o, &path, problems));
            problems.item(read)
        })
        .collect();
    let paging_path = field(base, "paging");
    let (next, after) = match present(root, "paging") {
        None => (None, None),
        Some(Value::Object(p)) => {
            let next = problems
                .opt_str(p, &paging_path, "next")
                .filter(|s| !s.is_empty());
            let after = match present(p, "cursors") {
                Some(Value::Object(c)) => problems
                    .opt_str(c, &field(&paging_path, "cursors"), "after")
                    .filter(|s| !s.is_empty()),
                _ => None,
            };
            (next, after)
        }
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>(&paging_path, "object", v));
            (None, None)
        }
    };
    Ok(Page { data, next, after })
}

// ---------------------------------------------------------------------------------------------
// A WABA with its edges, many numbers at once, a business's WABAs

/// A WABA node read with field expansion: its own `health_status` and, where asked, the
/// first page of its `phone_numbers`, `message_templates` and `subscribed_apps` edges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WabaNode {
    pub health_status: Option<HealthStatus>,
    pub phone_numbers: Option<Page<PhoneNumber>>,
    pub templates: Option<Page<Template>>,
    pub subscribed_apps: Option<Page<SubscribedApp>>,
}

/// An app subscribed to a WABA's webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribedApp {
    pub id: String,
    pub name: String,
}

/// A WABA of a business's `owned_whatsapp_business_accounts` or
/// `client_whatsapp_business_accounts`.
#[derive(Debug, Clone, PartialEq)]
pub struct WabaRef {
    pub id: String,
}

/// Parses `GET /<WABA_ID>?fields=health_status,phone_numbers.limit(100){...},...`.
///
/// Part by part: a `health_status` or an edge that cannot be read is left out (noted) and
/// the rest used; the answer fails only when neither its health_status nor its numbers
/// could be read.
pub fn parse_waba(body: &[u8], problems: &mut Problems) -> Result<WabaNode, PayloadError> {
    let root = load_graph(body)?;
    let health_status = match present(&root, "health_status") {
        None => None,
        Some(v) => {
            let read = health_status_from_value(v, "health_status", problems);
            problems.field(read.map(Some))
        }
    };
    let phone_numbers = edge(&root, "phone_numbers", phone_number, problems);
    if health_status.is_none() && phone_numbers.is_none() {
        return Err(PayloadError::Missing {
            path: "health_status".to_owned(),
        });
    }
    Ok(WabaNode {
        health_status,
        phone_numbers,
        templates: edge(&root, "message_templates", template, problems),
        subscribed_apps: edge(&root, "subscribed_apps", subscribed_app, problems),
    })
}

/// An edge expanded in a node's answer; `None` when absent, or unreadable (noted).
fn edge<T>(
    root: &Obj,
    name: &str,
    item: fn(&Obj, &str, &mut Problems) -> Result<T, PayloadError>,
    problems: &mut Problems,
) -> Option<Page<T>> {
    let value = present(root, name)?;
    let read = as_object(value, name).and_then(|o| page_of(o, name, item, problems));
    problems.field(read.map(Some))
}

/// Parses a multi-id lookup, `GET /?ids=a,b&fields=...`: `{"a":{...},"b":{...}}`, number by
/// number; one that is not an object, carries an error or has no id is skipped (noted).
pub fn parse_phone_numbers_by_id(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Vec<PhoneNumber>, PayloadError> {
    let root = load_graph(body)?;
    Ok(root
        .iter()
        .filter_map(|(id, v)| {
            let path = key("", id);
            let read =
                as_object(v, &path).and_then(|o| match crate::meta::payload::graph_error_of(o) {
                    Some(e) => Err(PayloadError::Invalid {
                        path: path.clone(),
                        reason: e.to_string(),
                    }),
                    None => phone_number(o, &path, problems),
                });
            problems.item(read)
        })
        .collect())
}

/// Parses a page of `/<WABA_ID>/subscribed_apps`.
pub fn parse_subscribed_apps_page(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Page<SubscribedApp>, PayloadError> {
    page(body, subscribed_app, problems)
}

/// `{"whatsapp_business_api_data":{"id","link","name"}}` as Meta documents an entry; an
/// entry with `id` and `name` at its top is read too.
fn subscribed_app(
    o: &Obj,
    base: &str,
    problems: &mut Problems,
) -> Result<SubscribedApp, PayloadError> {
    let (o, base) = match present(o, "whatsapp_business_api_data") {
        Some(v) => {
            let path = field(base, "whatsapp_business_api_data");
            (as_object(v, &path)?, path)
        }
        None => (o, base.to_owned()),
    };
    Ok(SubscribedApp {
        id: required_id(o, &base, "id")?,
        name: problems.opt_str(o, &base, "name").unwrap_or_default(),
    })
}

/// Parses a page of `/<BUSINESS_ID>/owned_whatsapp_business_accounts` or
/// `client_whatsapp_business_accounts`.
pub fn parse_wabas_page(
    body: &[u8],
    problems: &mut Problems,
) -> Result<Page<WabaRef>, PayloadError> {
    page(body, waba_ref, problems)
}

fn waba_ref(o: &Obj, base: &str, _problems: &mut Problems) -> Result<WabaRef, PayloadError> {
    Ok(WabaRef {
        id: required_id(o, base, "id")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Access token

/// What `GET /debug_token?input_token=...` tells of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub valid: bool,
    /// Unix seconds; `+Inf` for a token that never expires (Graph's `0`).
    pub expires_at: Option<f64>,
    /// Unix seconds until which the token may read user data; `+Inf` for `0`.
    pub data_access_expires_at: Option<f64>,
    pub scopes: Vec<String>,
}

/// Parses `{"data":{"is_valid":true,"expires_at":0,"scopes":[...],...}}`. `is_valid` is
/// required; the other fields are read one by one (an odd one ignored, noted). An invalid
/// token's `data.error` is not an error of the answer: it is what the answer says.
pub fn parse_debug_token(body: &[u8], problems: &mut Problems) -> Result<TokenInfo, PayloadError> {
    let root = load_graph(body)?;
    let data = present(&root, "data").ok_or_else(|| PayloadError::Missing {
        path: "data".to_owned(),
    })?;
    let data = as_object(data, "data")?;
    let valid =
        crate::json::opt_bool(data, "data", "is_valid")?.ok_or_else(|| PayloadError::Missing {
            path: "data.is_valid".to_owned(),
        })?;
    let mut timestamp = |name: &str| {
        let read = opt_integer(data, "data", name).map(|t| t.map(|t| t as f64));
        // Graph's 0: never.
        problems
            .field(read)
            .map(|t| if t == 0.0 { f64::INFINITY } else { t })
    };
    let expires_at = timestamp("expires_at");
    let data_access_expires_at = timestamp("data_access_expires_at");
    let scopes = match present(data, "scopes") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                other => {
                    problems.ignore(wrong_type::<GraphError>(
                        &index("data.scopes", i),
                        "string",
                        other,
                    ));
                    None
                }
            })
            .collect(),
        Some(v) => {
            problems.ignore(wrong_type::<GraphError>("data.scopes", "array", v));
            Vec::new()
        }
    };
    Ok(TokenInfo {
        valid,
        expires_at,
        data_access_expires_at,
        scopes,
    })
}

// ---------------------------------------------------------------------------------------------
// Usage headers

/// Parses `x-business-use-case-usage`:
/// `{"<business_object_id>":[{"type":"...","call_count":28,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":0}]}`.
///
/// One [`Usage`] per (object, type, measure) present, sorted by (object, type, measure).
/// Figures may be numbers or numeric strings; above 100 they are kept, negative ones are
/// errors. A lone object instead of an array counts as one entry; a `null` entry list is
/// skipped.
pub fn parse_business_use_case_usage(header: &str) -> Result<Vec<Usage>, PayloadError> {
    let root = load_header(header)?;
    let mut out = Vec::new();
    for (id, v) in &root {
        let base = key(ROOT, id);
        let entries: Vec<(String, &Value)> = match v {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, e)| (index(&base, i), e))
                .collect(),
            Value::Object(_) => vec![(base.clone(), v)],
            other => return Err(wrong_type(&base, "array", other)),
        };
        for (path, entry) in entries {
            let o = as_object(entry, &path)?;
            let usage_type = required_str(o, &path, "type")?;
            for (measure, ratio) in measures(o, &path)? {
                out.push(Usage {
                    business_object_id: id.clone(),
                    usage_type: usage_type.clone(),
                    measure,
                    ratio,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.business_object_id, &a.usage_type, &a.measure).cmp(&(
            &b.business_object_id,
            &b.usage_type,
            &b.measure,
        ))
    });
    Ok(out)
}

/// Parses `x-app-usage`: `{"call_count":28,"total_time":25,"total_cputime":25}`, with
/// `business_object_id` empty and `usage_type` `app`, sorted by measure.
pub fn parse_app_usage(header: &str) -> Result<Vec<Usage>, PayloadError> {
    let root = load_header(header)?;
    Ok(measures(&root, "")?
        .into_iter()
        .map(|(measure, ratio)| Usage {
            business_object_id: String::new(),
            usage_type: "app".to_owned(),
            measure,
            ratio,
        })
        .collect())
}

/// The largest `estimated_time_to_regain_access` (minutes) over all entries of an
/// `x-business-use-case-usage` header: `Some(0.0)` when no object is rate limited, `None`
/// when the header is unusable or no entry carries the field. Unusable figures are skipped.
pub fn regain_access_minutes(header: &str) -> Option<f64> {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(header.trim()) else {
        return None;
    };
    let mut best: Option<f64> = None;
    let mut consider = |o: &Obj| {
        let minutes = o
            .get(REGAIN_ACCESS)
            .and_then(lenient_f64)
            .filter(|m| *m >= 0.0);
        if let Some(m) = minutes {
            best = Some(best.map_or(m, |b| b.max(m)));
        }
    };
    consider(&root);
    for v in root.values() {
        match v {
            Value::Object(o) => consider(o),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_object)
                .for_each(&mut consider),
            _ => {}
        }
    }
    best
}

/// (measure, percent / 100) for each of [`MEASURES`] present in `o`.
fn measures(o: &Obj, base: &str) -> Result<Vec<(String, f64)>, PayloadError> {
    let mut out = Vec::new();
    for measure in MEASURES {
        if let Some(v) = present(o, measure) {
            let percent = percentage(v, &field(base, measure))?;
            out.push(((*measure).to_owned(), percent / 100.0));
        }
    }
    Ok(out)
}

fn percentage(v: &Value, path: &str) -> Result<f64, PayloadError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let n = s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
            if n.is_none() {
                return Err(PayloadError::Invalid {
                    path: path.to_owned(),
                    reason: format!("not a number: \"{}\"", clip(s).escape_debug()),
                });
            }
            n
        }
        other => return Err(wrong_type(path, "number", other)),
    };
    match n {
        Some(n) if n < 0.0 => Err(PayloadError::Invalid {
            path: path.to_owned(),
            reason: format!("negative percentage {n}"),
        }),
        Some(n) => Ok(n),
        None => Err(PayloadError::Invalid {
            path: path.to_owned(),
            reason: "number out of range".to_owned(),
        }),
    }
}

fn load_header(header: &str) -> Result<Obj, PayloadError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(PayloadError::Invalid {
            path: ROOT.to_owned(),
            reason: "empty header value".to_owned(),
        });
    }
    top_level_object(serde_json::from_str(header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::expected::{invalid, missing, wrong};
    #[allow(unused_imports)]
    use crate::json::Problems;

    macro_rules! fixture {
        ($dir:literal, $name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/",
                $dir,
                "/",
                $name
            ))
            .as_slice()
        };
    }

    const FIXTURES: &[&[u8]] = &[
        fixture!("dialog360", "health_status_placeholders.json"),
        fixture!("dialog360", "health_status_available.json"),
        fixture!("dialog360", "health_status_limited.json"),
        fixture!("dialog360", "health_status_blocked.json"),
        fixture!("graph", "phone_number_v24.json"),
        fixture!("graph", "phone_number_legacy.json"),
        fixture!("graph", "phone_numbers_page.json"),
        fixture!("graph", "templates_page_1.json"),
        fixture!("graph", "templates_page_2.json"),
        fixture!("graph", "error_190.json"),
        fixture!("graph", "error_4.json"),
        fixture!("graph", "error_80007.json"),
        fixture!("graph", "error_2.json"),
    ];

    const LIMITED_INFO: &str = "Your display name has not been approved yet. Your message limit will increase after the display name is approved.";

    fn ent(entity_type: &str, id: &str, can_send: &str) -> Entity {
        Entity {
            entity_type: entity_type.into(),
            id: id.into(),
            can_send_message: Some(can_send.into()),
            can_receive_call_sip: None,
            additional_info: vec![],
            errors: vec![],
        }
    }

    fn bare(entity_type: &str, id: &str) -> Entity {
        Entity {
            can_send_message: None,
            ..ent(entity_type, id, "")
        }
    }

    fn health_err(body: &str) -> PayloadError {
        parse_health_status_body(body.as_bytes(), &mut Problems::default()).unwrap_err()
    }

    fn phone_err(body: &str) -> PayloadError {
        parse_phone_number(body.as_bytes(), &mut Problems::default()).unwrap_err()
    }

    fn templates_err(body: &str) -> PayloadError {
        parse_templates_page(body.as_bytes(), &mut Problems::default()).unwrap_err()
    }

    /// What a reading could not use: the error of the whole body when it failed, else its
    /// only problem (without the "ignored: " or "item skipped: " in front).
    fn only_problem<T: std::fmt::Debug>(
        read: impl FnOnce(&mut Problems) -> Result<T, PayloadError>,
    ) -> String {
        let mut problems = Problems::default();
        let read = match read(&mut problems) {
            Ok(read) => read,
            Err(e) => return e.to_string(),
        };
        let notes = problems.notes();
        assert_eq!(notes.len(), 1, "{read:?} {notes:?}");
        let (_, why) = notes[0].split_once(": ").unwrap_or(("", &notes[0]));
        why.to_owned()
    }

    fn health_problem(body: &str) -> String {
        only_problem(|p| parse_health_status_body(body.as_bytes(), p))
    }

    fn phone_problem(body: &str) -> String {
        only_problem(|p| parse_phone_number(body.as_bytes(), p))
    }

    fn templates_problem(body: &str) -> String {
        only_problem(|p| parse_templates_page(body.as_bytes(), p))
    }

    fn phone(id: &str) -> PhoneNumber {
        PhoneNumber {
            id: id.into(),
            health_status: None,
            quality_rating: None,
            messaging_limit_tier: None,
            status: None,
            name_status: None,
            throughput_level: None,
            display_phone_number: None,
            verified_name: None,
        }
    }

    fn usage(id: &str, usage_type: &str, measure: &str, ratio: f64) -> Usage {
        Usage {
            business_object_id: id.into(),
            usage_type: usage_type.into(),
            measure: measure.into(),
            ratio,
        }
    }

    // The seed's own health_status examples are parsed in dialog360::payload's tests (the
    // same parser, 360dialog's fixtures).

    // --- health_status: leniency and errors ------------------------------------------------

    #[test]
    fn health_status_unknown_entity_types_and_values_kept() {
        let h = parse_health_status_body(
            br#"{"health_status":{"can_send_message":"DEGRADED","entities":[{"entity_type":"FLOW","id":"1","can_send_message":"THROTTLED","can_receive_call_sip":"NOT_CONFIGURED","new_field":{"x":1}},{"entity_type":"","id":"2","can_send_message":""}],"extra":true},"id":"1","other":[1]}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            h,
            HealthStatus {
                can_send_message: "DEGRADED".into(),
                entities: vec![
                    Entity {
                        can_receive_call_sip: Some("NOT_CONFIGURED".into()),
                        ..ent("FLOW", "1", "THROTTLED")
                    },
                    ent("", "2", ""),
                ],
            }
        );
    }

    #[test]
    fn health_status_numeric_ids_become_text() {
        let h = parse_health_status_body(
            br#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA","id":102290129340398},{"entity_type":"APP","id":1.5}]},"id":7}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            h.entities,
            vec![bare("WABA", "102290129340398"), bare("APP", "1.5")]
        );
    }

    #[test]
    fn health_status_entities_absent_null_or_empty() {
        for body in [
            r#"{"health_status":{"can_send_message":"AVAILABLE"}}"#,
            r#"{"health_status":{"can_send_message":"AVAILABLE","entities":null}}"#,
            r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[]}}"#,
        ] {
            assert_eq!(
                parse_health_status_body(body.as_bytes(), &mut Problems::default()).unwrap(),
                HealthStatus {
                    can_send_message: "AVAILABLE".into(),
                    entities: vec![]
                },
                "{body}"
            );
        }
    }

    #[test]
    fn health_status_nulls_are_absent() {
        let h = parse_health_status_body(
            br#"{"health_status":{"can_send_message":"BLOCKED","entities":[{"entity_type":"WABA","id":"9","can_send_message":null,"can_receive_call_sip":null,"additional_info":null,"errors":null},{"entity_type":"APP","id":"8","additional_info":[null,"a"],"errors":[{"error_code":null,"error_description":null,"possible_solution":null}]}]}}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            h.entities,
            vec![
                bare("WABA", "9"),
                Entity {
                    additional_info: vec!["a".into()],
                    errors: vec![EntityError {
                        error_code: None,
                        error_description: None,
                        possible_solution: None
                    }],
                    ..bare("APP", "8")
                }
            ]
        );
    }

    #[test]
    fn health_status_lenient_shapes() {
        // A lone additional_info string, a lone error object, codes as strings or 1.0 floats.
        let h = parse_health_status_body(
            br#"{"health_status":{"can_send_message":"BLOCKED","entities":[{"entity_type":"WABA","id":"9","additional_info":"one line","errors":{"error_code":"141006","error_description":"Payment"}},{"entity_type":"APP","id":"8","errors":[{"error_code":138024.0},{"error_code":" 138025 "}]}]}}"#,
         &mut Problems::default())
        .unwrap();
        let err = |code: i64, description: Option<&str>| EntityError {
            error_code: Some(code),
            error_description: description.map(Into::into),
            possible_solution: None,
        };
        assert_eq!(
            h.entities,
            vec![
                Entity {
                    additional_info: vec!["one line".into()],
                    errors: vec![err(141006, Some("Payment"))],
                    ..bare("WABA", "9")
                },
                Entity {
                    errors: vec![err(138024, None), err(138025, None)],
                    ..bare("APP", "8")
                }
            ]
        );
    }

    #[test]
    fn health_status_missing_required_fields() {
        let e = health_err(r#"{"id":"1"}"#);
        assert_eq!(e, missing("health_status"));
        assert_eq!(
            e.to_string(),
            "missing required field `health_status` (absent or null)"
        );
        assert_eq!(
            health_err(r#"{"health_status":null}"#),
            missing("health_status")
        );
        let e = health_err(r#"{"health_status":{"entities":[]}}"#);
        assert_eq!(e, missing("health_status.can_send_message"));
        assert_eq!(
            e.to_string(),
            "missing required field `health_status.can_send_message` (absent or null)"
        );
        assert_eq!(
            health_err(r#"{"health_status":{"can_send_message":null}}"#),
            missing("health_status.can_send_message")
        );
    }

    /// One odd error or additional_info entry of an entity is left out alone: the entity's
    /// other errors and lines stay.
    #[test]
    fn an_odd_error_or_info_line_leaves_its_siblings() {
        let mut problems = Problems::default();
        let h = parse_health_status_body(
            br#"{"health_status":{"can_send_message":"BLOCKED","entities":[{"entity_type":"WABA","id":"1","can_send_message":"BLOCKED","errors":[7,{"error_code":"x","error_description":"Payment issue"},{"error_code":141006}],"additional_info":["a",{},"b"]}]}}"#,
            &mut problems,
        )
        .unwrap();
        let entity = &h.entities[0];
        assert_eq!(entity.additional_info, ["a", "b"]);
        assert_eq!(
            entity.errors,
            [
                EntityError {
                    error_code: None,
                    error_description: Some("Payment issue".into()),
                    possible_solution: None,
                },
                EntityError {
                    error_code: Some(141006),
                    error_description: None,
                    possible_solution: None,
                },
            ]
        );
        assert_eq!(problems.skipped(), 0);
        assert_eq!(
            problems.notes(),
            [
                "ignored: wrong type at `health_status.entities[0].additional_info[1]`: expected string, found object",
                "ignored: wrong type at `health_status.entities[0].errors[0]`: expected object, found number",
                "ignored: invalid value at `health_status.entities[0].errors[1].error_code`: not an integer: \"x\"",
            ]
        );
    }

    #[test]
    fn health_status_entity_without_type_or_id_names_its_index() {
        let e = health_problem(
            r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA","id":"1"},{"entity_type":"APP","id":"2"},{"id":"3","can_send_message":"AVAILABLE"}]}}"#,
        );
        assert_eq!(
            e,
            missing::<GraphError>("health_status.entities[2].entity_type").to_string()
        );
        assert_eq!(
            e.to_string(),
            "missing required field `health_status.entities[2].entity_type` (absent or null)"
        );
        let e = health_problem(
            r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA","id":"1"},{"entity_type":"APP"}]}}"#,
        );
        assert_eq!(
            e,
            missing::<GraphError>("health_status.entities[1].id").to_string()
        );
        assert_eq!(
            e.to_string(),
            "missing required field `health_status.entities[1].id` (absent or null)"
        );
        assert_eq!(
            health_problem(
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"APP","id":null}]}}"#
            ),
            missing::<GraphError>("health_status.entities[0].id").to_string()
        );
        let e = health_problem(
            r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"APP","id":""}]}}"#,
        );
        assert_eq!(
            e,
            invalid::<GraphError>("health_status.entities[0].id", "empty id").to_string()
        );
        assert_eq!(
            e.to_string(),
            "invalid value at `health_status.entities[0].id`: empty id"
        );
    }

    #[test]
    fn health_status_wrong_types() {
        let entity = |fields: &str| {
            format!(
                r#"{{"health_status":{{"can_send_message":"BLOCKED","entities":[{{"entity_type":"WABA","id":"1",{fields}}}]}}}}"#
            )
        };
        let e0 = "health_status.entities[0]";
        for (body, path, expected, found) in [
            (
                r#"{"health_status":"AVAILABLE"}"#.to_owned(),
                "health_status".to_owned(),
                "object",
                "string",
            ),
            (
                r#"{"health_status":{"can_send_message":true}}"#.to_owned(),
                "health_status.can_send_message".to_owned(),
                "string",
                "boolean",
            ),
            (
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":{}}}"#.to_owned(),
                "health_status.entities".to_owned(),
                "array",
                "object",
            ),
            (
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":["WABA"]}}"#
                    .to_owned(),
                e0.to_owned(),
                "object",
                "string",
            ),
            (
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[null]}}"#
                    .to_owned(),
                e0.to_owned(),
                "object",
                "null",
            ),
            (
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":1,"id":"1"}]}}"#
                    .to_owned(),
                format!("{e0}.entity_type"),
                "string",
                "number",
            ),
            (
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA","id":true}]}}"#
                    .to_owned(),
                format!("{e0}.id"),
                "string or number",
                "boolean",
            ),
            (
                entity(r#""can_send_message":["BLOCKED"]"#),
                format!("{e0}.can_send_message"),
                "string",
                "array",
            ),
            (
                entity(r#""can_receive_call_sip":0"#),
                format!("{e0}.can_receive_call_sip"),
                "string",
                "number",
            ),
            (
                entity(r#""additional_info":{"a":"b"}"#),
                format!("{e0}.additional_info"),
                "array",
                "object",
            ),
            (
                entity(r#""additional_info":["a",2]"#),
                format!("{e0}.additional_info[1]"),
                "string",
                "number",
            ),
            (
                entity(r#""errors":"payment""#),
                format!("{e0}.errors"),
                "array",
                "string",
            ),
            (
                entity(r#""errors":[{"error_code":1},"payment"]"#),
                format!("{e0}.errors[1]"),
                "object",
                "string",
            ),
            (
                entity(r#""errors":[{"error_code":true}]"#),
                format!("{e0}.errors[0].error_code"),
                "integer",
                "boolean",
            ),
            (
                entity(r#""errors":[{"error_code":1.5}]"#),
                format!("{e0}.errors[0].error_code"),
                "integer",
                "non-integer number",
            ),
            (
                entity(r#""errors":[{"error_description":{}}]"#),
                format!("{e0}.errors[0].error_description"),
                "string",
                "object",
            ),
            (
                entity(r#""errors":{"possible_solution":7}"#),
                format!("{e0}.errors.possible_solution"),
                "string",
                "number",
            ),
        ] {
            assert_eq!(health_problem(&body), wrong::<GraphError>(&path, expected, found).to_string(), "{body}");
        }
        let e = health_problem(&entity(r#""errors":[{"error_code":"14x"}]"#));
        assert_eq!(
            e.to_string(),
            r#"invalid value at `health_status.entities[0].errors[0].error_code`: not an integer: "14x""#
        );
    }

    #[test]
    fn health_status_from_value_uses_the_given_path() {
        let v: Value = serde_json::from_str(
            r#"{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA","id":"5","can_send_message":"AVAILABLE"}]}"#,
        )
        .unwrap();
        assert_eq!(
            health_status_from_value(
                &v,
                "checks.messaging_health.details",
                &mut Problems::default()
            )
            .unwrap(),
            HealthStatus {
                can_send_message: "AVAILABLE".into(),
                entities: vec![ent("WABA", "5", "AVAILABLE")]
            }
        );
        let v: Value = serde_json::from_str(r#"{"entities":[{"id":"5"}]}"#).unwrap();
        let e = health_status_from_value(
            &v,
            "checks.messaging_health.details",
            &mut Problems::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing required field `checks.messaging_health.details.can_send_message` (absent or null)"
        );
        let v: Value =
            serde_json::from_str(r#"{"can_send_message":"AVAILABLE","entities":[{"id":"5"}]}"#)
                .unwrap();
        let mut problems = Problems::default();
        let health = health_status_from_value(&v, "x", &mut problems).unwrap();
        assert!(health.entities.is_empty());
        assert_eq!(
            problems.notes(),
            ["item skipped: missing required field `x.entities[0].entity_type` (absent or null)"]
        );
        assert_eq!(
            health_status_from_value(&Value::Null, "x", &mut Problems::default()).unwrap_err(),
            wrong("x", "object", "null")
        );
    }

    // --- phone numbers ---------------------------------------------------------------------

    #[test]
    fn phone_number_v24_shape() {
        let p = parse_phone_number(
            fixture!("graph", "phone_number_v24.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            p,
            PhoneNumber {
                id: "106540352242922".into(),
                health_status: Some(HealthStatus {
                    can_send_message: "LIMITED".into(),
                    entities: vec![
                        Entity {
                            can_receive_call_sip: Some("AVAILABLE".into()),
                            additional_info: vec![LIMITED_INFO.into()],
                            ..ent("PHONE_NUMBER", "106540352242922", "LIMITED")
                        },
                        ent("WABA", "102290129340398", "AVAILABLE"),
                        ent("BUSINESS", "506914307656634", "AVAILABLE"),
                        Entity {
                            can_receive_call_sip: Some("BLOCKED".into()),
                            errors: vec![EntityError {
                                error_code: Some(138024),
                                error_description: Some(
                                    "SIP calling is not configured for this app.".into()
                                ),
                                possible_solution: Some(
                                    "Configure a SIP server for the business phone number.".into()
                                ),
                            }],
                            ..ent("APP", "634974688087057", "AVAILABLE")
                        },
                    ],
                }),
                quality_rating: Some("GREEN".into()),
                // whatsapp_business_manager_messaging_limit wins over messaging_limit_tier.
                messaging_limit_tier: Some("TIER_2K".into()),
                status: Some("CONNECTED".into()),
                name_status: Some("APPROVED".into()),
                throughput_level: Some("STANDARD".into()),
                display_phone_number: Some("+1 555-078-3881".into()),
                verified_name: Some("Lucky Shrub".into()),
            }
        );
    }

    #[test]
    fn phone_number_legacy_shape() {
        let p = parse_phone_number(
            fixture!("graph", "phone_number_legacy.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            p,
            PhoneNumber {
                quality_rating: Some("YELLOW".into()),
                messaging_limit_tier: Some("TIER_1K".into()),
                status: Some("FLAGGED".into()),
                name_status: Some("APPROVED".into()),
                throughput_level: Some("STANDARD".into()),
                display_phone_number: Some("15550783881".into()),
                verified_name: Some("Lucky Shrub".into()),
                ..phone("106540352242922")
            }
        );
    }

    #[test]
    fn phone_number_messaging_limit_fallback_and_unknown_values() {
        let p = parse_phone_number(
            br#"{"id":"1","whatsapp_business_manager_messaging_limit":null,"messaging_limit_tier":"TIER_50","quality_rating":"NA","status":"SOMETHING_NEW","name_status":"NONE","throughput":"HIGH"}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            p,
            PhoneNumber {
                messaging_limit_tier: Some("TIER_50".into()),
                quality_rating: Some("NA".into()),
                status: Some("SOMETHING_NEW".into()),
                name_status: Some("NONE".into()),
                throughput_level: Some("HIGH".into()),
                ..phone("1")
            }
        );
        let p = parse_phone_number(
            br#"{"id":1,"whatsapp_business_manager_messaging_limit":"TIER_NOT_SET","throughput":{}}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            p,
            PhoneNumber {
                messaging_limit_tier: Some("TIER_NOT_SET".into()),
                ..phone("1")
            }
        );
    }

    #[test]
    fn phone_number_nulls_are_absent() {
        let p = parse_phone_number(
            br#"{"id":"1","health_status":null,"quality_rating":null,"messaging_limit_tier":null,"status":null,"name_status":null,"throughput":null,"display_phone_number":null,"verified_name":null}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(p, phone("1"));
        let p = parse_phone_number(
            br#"{"id":"1","throughput":{"level":null}}"#,
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(p, phone("1"));
    }

    #[test]
    fn phone_number_errors() {
        assert_eq!(
            phone_problem(r#"{"quality_rating":"GREEN"}"#),
            missing::<GraphError>("id").to_string()
        );
        assert_eq!(
            phone_problem(r#"{"id":null}"#),
            missing::<GraphError>("id").to_string()
        );
        assert_eq!(
            phone_problem(r#"{"id":""}"#),
            invalid::<GraphError>("id", "empty id").to_string()
        );
        for (body, path, expected, found) in [
            (r#"{"id":["1"]}"#, "id", "string or number", "array"),
            (
                r#"{"id":"1","quality_rating":3}"#,
                "quality_rating",
                "string",
                "number",
            ),
            (
                r#"{"id":"1","whatsapp_business_manager_messaging_limit":{"tier":"TIER_2K"}}"#,
                "whatsapp_business_manager_messaging_limit",
                "string",
                "object",
            ),
            (
                r#"{"id":"1","messaging_limit_tier":1000}"#,
                "messaging_limit_tier",
                "string",
                "number",
            ),
            (
                r#"{"id":"1","status":false}"#,
                "status",
                "string",
                "boolean",
            ),
            (
                r#"{"id":"1","name_status":[]}"#,
                "name_status",
                "string",
                "array",
            ),
            (
                r#"{"id":"1","throughput":5}"#,
                "throughput",
                "object",
                "number",
            ),
            (
                r#"{"id":"1","throughput":{"level":5}}"#,
                "throughput.level",
                "string",
                "number",
            ),
            (
                r#"{"id":"1","display_phone_number":15550783881}"#,
                "display_phone_number",
                "string",
                "number",
            ),
            (
                r#"{"id":"1","verified_name":{}}"#,
                "verified_name",
                "string",
                "object",
            ),
            (
                r#"{"id":"1","health_status":"AVAILABLE"}"#,
                "health_status",
                "object",
                "string",
            ),
        ] {
            assert_eq!(
                phone_problem(body),
                wrong::<GraphError>(path, expected, found).to_string(),
                "{body}"
            );
        }
        let e = phone_problem(r#"{"id":"1","health_status":{"entities":[]}}"#);
        assert_eq!(
            e,
            missing::<GraphError>("health_status.can_send_message").to_string()
        );
    }

    #[test]
    fn phone_numbers_page() {
        let page = parse_phone_numbers_page(
            fixture!("graph", "phone_numbers_page.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![
                    PhoneNumber {
                        quality_rating: Some("GREEN".into()),
                        throughput_level: Some("STANDARD".into()),
                        display_phone_number: Some("+1 555-078-3881".into()),
                        verified_name: Some("Lucky Shrub".into()),
                        ..phone("106540352242922")
                    },
                    PhoneNumber {
                        quality_rating: Some("NA".into()),
                        throughput_level: Some("NOT_APPLICABLE".into()),
                        display_phone_number: Some("+1 555-078-3882".into()),
                        verified_name: Some("Lucky Shrub Support".into()),
                        ..phone("106540352242923")
                    },
                ],
                next: None,
                after: Some("QVFIUkRqSnhCekF2TDZAXMjRtT0VZAZA3NtVmRhRW5V".into()),
            }
        );
        let page = parse_phone_numbers_page(
            br#"{"data":[{"id":"7"}],"paging":{"next":"https://graph.facebook.com/v24.0/1/phone_numbers?after=QQ"}}"#,
         &mut Problems::default())
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![phone("7")],
                next: Some("https://graph.facebook.com/v24.0/1/phone_numbers?after=QQ".into()),
                after: None,
            }
        );
        // An entry without an id is skipped and noted; its siblings are kept.
        let mut problems = Problems::default();
        let page = parse_phone_numbers_page(
            br#"{"data":[{"id":"7"},{"verified_name":"x"},"8",{"id":"9"}]}"#,
            &mut problems,
        )
        .unwrap();
        assert_eq!(page.data, vec![phone("7"), phone("9")]);
        assert_eq!(problems.skipped(), 2);
        assert_eq!(
            problems.notes(),
            [
                "item skipped: missing required field `data[1].id` (absent or null)",
                "item skipped: wrong type at `data[2]`: expected object, found string",
            ]
        );
        // An entity without an id is skipped; the number and its health are kept.
        let mut problems = Problems::default();
        let page = parse_phone_numbers_page(
            br#"{"data":[{"id":"7","health_status":{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA"},{"entity_type":"APP","id":"5","can_send_message":"AVAILABLE"}]}}]}"#,
            &mut problems,
        )
        .unwrap();
        let health = page.data[0].health_status.as_ref().unwrap();
        assert_eq!(health.entities, vec![ent("APP", "5", "AVAILABLE")]);
        assert_eq!(
            problems.notes(),
            ["item skipped: missing required field `data[0].health_status.entities[0].id` (absent or null)"]
        );
        assert_eq!(problems.skipped(), 1);
    }

    // --- templates -------------------------------------------------------------------------

    #[test]
    fn templates_page_with_next() {
        let page = parse_templates_page(
            fixture!("graph", "templates_page_1.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![
                    Template {
                        id: "2632273056924580".into(),
                        name: "order_update".into(),
                        language: "en_US".into(),
                        status: "APPROVED".into(),
                        category: Some("UTILITY".into()),
                        quality: Some("GREEN".into()),
                    },
                    Template {
                        id: "1104480873777230".into(),
                        name: "spring_sale".into(),
                        language: "pt_BR".into(),
                        status: "PAUSED".into(),
                        category: Some("MARKETING".into()),
                        quality: Some("RED".into()),
                    },
                ],
                next: Some("https://graph.facebook.com/v24.0/102290129340398/message_templates?fields=id,name,language,status,category,quality_score&limit=2&after=MQZDZD".into()),
                after: Some("MQZDZD".into()),
            }
        );
    }

    #[test]
    fn templates_last_page_without_next() {
        let page = parse_templates_page(
            fixture!("graph", "templates_page_2.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![
                    Template {
                        id: "961747102054410".into(),
                        name: "login_code".into(),
                        language: "es".into(),
                        status: "PENDING".into(),
                        category: Some("AUTHENTICATION".into()),
                        quality: None,
                    },
                    Template {
                        id: "398743512966102".into(),
                        name: "winter_promo".into(),
                        language: "en".into(),
                        status: "ARCHIVED".into(),
                        category: None,
                        quality: Some("UNKNOWN".into()),
                    },
                ],
                next: None,
                after: Some("MwZDZD".into()),
            }
        );
        for body in [
            r#"{"data":[]}"#,
            r#"{"data":[],"paging":null}"#,
            r#"{"data":[],"paging":{"next":null}}"#,
            r#"{"data":[],"paging":{"next":""}}"#,
        ] {
            assert_eq!(
                parse_templates_page(body.as_bytes(), &mut Problems::default()).unwrap(),
                Page {
                    data: vec![],
                    next: None,
                    after: None,
                },
                "{body}"
            );
        }
    }

    #[test]
    fn template_quality_score_as_string_or_object() {
        let quality = |q: &str| {
            let body = format!(
                r#"{{"data":[{{"id":"1","name":"n","language":"en","status":"APPROVED","quality_score":{q}}}]}}"#
            );
            parse_templates_page(body.as_bytes(), &mut Problems::default())
                .unwrap()
                .data[0]
                .quality
                .clone()
        };
        assert_eq!(quality(r#""YELLOW""#), Some("YELLOW".into()));
        assert_eq!(
            quality(r#"{"score":"RED","date":1705312800}"#),
            Some("RED".into())
        );
        assert_eq!(
            quality(r#"{"score":"BRAND_NEW"}"#),
            Some("BRAND_NEW".into())
        );
        assert_eq!(quality(r#"{"score":null}"#), None);
        assert_eq!(quality("{}"), None);
        assert_eq!(quality("null"), None);
    }

    #[test]
    fn template_missing_fields_name_the_index() {
        let t = |fields: &str| {
            format!(
                r#"{{"data":[{{"id":"1","name":"a","language":"en","status":"APPROVED"}},{{{fields}}}]}}"#
            )
        };
        assert_eq!(
            templates_problem(&t(r#""name":"b","language":"en","status":"APPROVED""#)),
            missing::<GraphError>("data[1].id").to_string()
        );
        let e = templates_problem(&t(r#""id":"2","language":"en","status":"APPROVED""#));
        assert_eq!(e, missing::<GraphError>("data[1].name").to_string());
        assert_eq!(
            e.to_string(),
            "missing required field `data[1].name` (absent or null)"
        );
        assert_eq!(
            templates_problem(&t(r#""id":"2","name":"b","status":"APPROVED""#)),
            missing::<GraphError>("data[1].language").to_string()
        );
        assert_eq!(
            templates_problem(&t(r#""id":"2","name":"b","language":"en","status":null"#)),
            missing::<GraphError>("data[1].status").to_string()
        );
        // Without id or status a template is skipped; without name or language it is
        // kept with those labels empty.
        let mut problems = Problems::default();
        let page =
            parse_templates_page(t(r#""id":"2","status":"PAUSED""#).as_bytes(), &mut problems)
                .unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(
            (
                page.data[1].id.as_str(),
                page.data[1].name.as_str(),
                page.data[1].language.as_str(),
                page.data[1].status.as_str()
            ),
            ("2", "", "", "PAUSED")
        );
        assert_eq!(problems.skipped(), 0);
        assert_eq!(problems.notes().len(), 2, "{problems:?}");
        let mut problems = Problems::default();
        let page = parse_templates_page(
            t(r#""name":"b","language":"en","status":"APPROVED""#).as_bytes(),
            &mut problems,
        )
        .unwrap();
        assert_eq!(page.data.len(), 1);
        assert_eq!(problems.skipped(), 1);
    }

    #[test]
    fn template_and_page_wrong_types() {
        let t = r#""id":"1","name":"a","language":"en","status":"APPROVED""#;
        for (body, path, expected, found) in [
            (r#"{"data":{}}"#.to_owned(), "data", "array", "object"),
            (r#"{"data":[[]]}"#.to_owned(), "data[0]", "object", "array"),
            (
                format!(r#"{{"data":[{{{t},"category":1}}]}}"#),
                "data[0].category",
                "string",
                "number",
            ),
            (
                format!(r#"{{"data":[{{{t},"quality_score":1}}]}}"#),
                "data[0].quality_score",
                "string or object",
                "number",
            ),
            (
                format!(r#"{{"data":[{{{t},"quality_score":{{"score":2}}}}]}}"#),
                "data[0].quality_score.score",
                "string",
                "number",
            ),
            (
                r#"{"data":[{"id":"1","name":"a","language":["en"],"status":"APPROVED"}]}"#
                    .to_owned(),
                "data[0].language",
                "string",
                "array",
            ),
            (
                r#"{"data":[],"paging":"next"}"#.to_owned(),
                "paging",
                "object",
                "string",
            ),
            (
                r#"{"data":[],"paging":{"next":true}}"#.to_owned(),
                "paging.next",
                "string",
                "boolean",
            ),
        ] {
            assert_eq!(
                templates_problem(&body),
                wrong::<GraphError>(path, expected, found).to_string(),
                "{body}"
            );
        }
        assert_eq!(
            templates_problem(r#"{"paging":{}}"#),
            missing::<GraphError>("data").to_string()
        );
        assert_eq!(
            templates_problem(r#"{"data":null}"#),
            missing::<GraphError>("data").to_string()
        );
    }

    // --- error envelopes -------------------------------------------------------------------

    #[test]
    fn graph_error_envelopes() {
        let cases = [
            (
                fixture!("graph", "error_190.json"),
                GraphError {
                    message: Some("Error validating access token: Session has expired on Friday, 19-Jan-24 10:00:00 PST. The current time is Saturday, 20-Jan-24 06:25:30 PST.".into()),
                    error_type: Some("OAuthException".into()),
                    code: Some(190),
                    error_subcode: Some(463),
                    fbtrace_id: Some("AhPqYwRj3zN8kLmX2vT9bQc".into()),
                    is_transient: None,
                },
                "Graph API error 190 (OAuthException, subcode 463): Error validating access token: Session has expired on Friday, 19-Jan-24 10:00:00 PST. The current time is Saturday, 20-Jan-24 06:25:30 PST. [fbtrace_id AhPqYwRj3zN8kLmX2vT9bQc]",
            ),
            (
                fixture!("graph", "error_4.json"),
                GraphError {
                    message: Some("(#4) Application request limit reached".into()),
                    error_type: Some("OAuthException".into()),
                    code: Some(4),
                    error_subcode: None,
                    fbtrace_id: Some("A7cXk2QmL9pZr4tYw1sNv0e".into()),
                    is_transient: Some(true),
                },
                "Graph API error 4 (OAuthException, transient): (#4) Application request limit reached [fbtrace_id A7cXk2QmL9pZr4tYw1sNv0e]",
            ),
            (
                fixture!("graph", "error_80007.json"),
                GraphError {
                    message: Some("(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".into()),
                    error_type: Some("OAuthException".into()),
                    code: Some(80007),
                    error_subcode: None,
                    fbtrace_id: Some("B3dLm8QpR2xVt6yZw0aKj1f".into()),
                    is_transient: None,
                },
                "Graph API error 80007 (OAuthException): (#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limitin… [fbtrace_id B3dLm8QpR2xVt6yZw0aKj1f]",
                // (the 202-character message is clipped at 200 in the error text)
            ),
            (
                fixture!("graph", "error_2.json"),
                GraphError {
                    message: Some("An unexpected error has occurred. Please retry your request later.".into()),
                    error_type: Some("OAuthException".into()),
                    code: Some(2),
                    error_subcode: None,
                    fbtrace_id: Some("C9eNp4RsT6zWx2bYv8cLm3g".into()),
                    is_transient: Some(true),
                },
                "Graph API error 2 (OAuthException, transient): An unexpected error has occurred. Please retry your request later. [fbtrace_id C9eNp4RsT6zWx2bYv8cLm3g]",
            ),
        ];
        for (body, want, display) in cases {
            assert_eq!(parse_graph_error(body), Some(want.clone()));
            assert_eq!(want.to_string(), display);
            // The same body with a 2xx status is an error for every parser.
            let e = PayloadError::Upstream(want);
            assert_eq!(
                parse_health_status_body(body, &mut Problems::default()),
                Err(e.clone())
            );
            assert_eq!(
                parse_phone_number(body, &mut Problems::default()),
                Err(e.clone())
            );
            assert_eq!(
                parse_phone_numbers_page(body, &mut Problems::default()),
                Err(e.clone())
            );
            assert_eq!(
                parse_templates_page(body, &mut Problems::default()),
                Err(e.clone())
            );
            assert_eq!(e.to_string(), display);
        }
    }

    #[test]
    fn graph_error_display_clips_and_handles_missing_parts() {
        let long = "m".repeat(300);
        let e = GraphError {
            message: Some(long.clone()),
            error_type: None,
            code: None,
            error_subcode: Some(33),
            fbtrace_id: None,
            is_transient: Some(false),
        };
        assert_eq!(
            e.to_string(),
            format!("Graph API error (subcode 33): {}…", "m".repeat(200))
        );
        assert_eq!(e.message.as_deref(), Some(long.as_str()));
        let e = parse_graph_error(br#"{"error":{}}"#).unwrap();
        assert_eq!(e.to_string(), "Graph API error: (no message)");
        let e = parse_graph_error(br#"{"error":{"message":"a\nb","code":100}}"#).unwrap();
        assert_eq!(e.message.as_deref(), Some("a\nb"));
        assert_eq!(e.to_string(), "Graph API error 100: a b");
    }

    #[test]
    fn graph_error_is_lenient_and_never_fails() {
        assert_eq!(
            parse_graph_error(
                br#"{"error":{"message":7,"type":null,"code":"190","error_subcode":460.0,"fbtrace_id":["x"],"is_transient":"TRUE","error_user_msg":"u"}}"#
            ),
            Some(GraphError {
                message: None,
                error_type: None,
                code: Some(190),
                error_subcode: Some(460),
                fbtrace_id: None,
                is_transient: Some(true),
            })
        );
        assert_eq!(
            parse_graph_error(br#"{"error":{"code":"x","error_subcode":1.5,"is_transient":1}}"#),
            Some(GraphError {
                message: None,
                error_type: None,
                code: None,
                error_subcode: None,
                fbtrace_id: None,
                is_transient: None,
            })
        );
        for body in [
            &b""[..],
            b"garbage",
            b"<html>502 Bad Gateway</html>",
            b"[]",
            b"{}",
            br#"{"error":null}"#,
            br#"{"error":"denied"}"#,
            br#"{"error":[{"code":1}]}"#,
            br#"{"error":{"code":1"#,
            fixture!("dialog360", "health_status_available.json"),
        ] {
            assert_eq!(parse_graph_error(body), None, "{body:?}");
        }
        // A string `error` is not a Graph envelope: the payload parsers report what is missing.
        assert_eq!(
            health_err(r#"{"error":"denied"}"#),
            missing("health_status")
        );
    }

    // --- usage headers ---------------------------------------------------------------------

    #[test]
    fn business_use_case_usage_example() {
        let h = r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":28,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":0}]}"#;
        let id = "102290129340398";
        let t = "whatsapp_business_management";
        assert_eq!(
            parse_business_use_case_usage(h).unwrap(),
            vec![
                usage(id, t, "call_count", 0.28),
                usage(id, t, "total_cputime", 0.25),
                usage(id, t, "total_time", 0.25),
            ]
        );
        assert_eq!(regain_access_minutes(h), Some(0.0));
    }

    #[test]
    fn business_use_case_usage_sorted_and_lenient() {
        let h = r#" {"2":[{"type":"whatsapp_business_messaging","call_count":"101","total_time":"7.5","estimated_time_to_regain_access":"12"},{"type":"whatsapp_business_management","total_cputime":null,"total_time":100}],"1":{"type":"whatsapp_business_management","call_count":0,"estimated_time_to_regain_access":3},"3":null,"4":[]} "#;
        assert_eq!(
            parse_business_use_case_usage(h).unwrap(),
            vec![
                usage("1", "whatsapp_business_management", "call_count", 0.0),
                usage("2", "whatsapp_business_management", "total_time", 1.0),
                usage("2", "whatsapp_business_messaging", "call_count", 1.01),
                usage("2", "whatsapp_business_messaging", "total_time", 0.075),
            ]
        );
        assert_eq!(regain_access_minutes(h), Some(12.0));
        assert_eq!(parse_business_use_case_usage("{}").unwrap(), vec![]);
    }

    #[test]
    fn business_use_case_usage_errors() {
        let buc = |h: &str| parse_business_use_case_usage(h).unwrap_err();
        assert_eq!(buc(""), invalid("$", "empty header value"));
        assert_eq!(buc("  "), invalid("$", "empty header value"));
        let e = buc(r#"{"1":[{"type":"x","call_count":28"#);
        assert!(
            matches!(e, PayloadError::Truncated { line: 1, .. }),
            "{e:?}"
        );
        let e = buc("call_count=28");
        assert_eq!(
            e.to_string(),
            "malformed JSON at line 1, column 1: expected value"
        );
        assert_eq!(buc("[]"), wrong("$", "object", "array"));
        assert_eq!(buc(r#"{"1":"x"}"#), wrong(r#"$["1"]"#, "array", "string"));
        assert_eq!(
            buc(r#"{"1":[7]}"#),
            wrong(r#"$["1"][0]"#, "object", "number")
        );
        let e = buc(r#"{"1":[{"call_count":1}]}"#);
        assert_eq!(e, missing(r#"$["1"][0].type"#));
        assert_eq!(
            e.to_string(),
            r#"missing required field `$["1"][0].type` (absent or null)"#
        );
        assert_eq!(
            buc(r#"{"1":[{"type":"t","total_time":true}]}"#),
            wrong(r#"$["1"][0].total_time"#, "number", "boolean")
        );
        let e = buc(r#"{"1":[{"type":"t","call_count":-5}]}"#);
        assert_eq!(
            e,
            invalid(r#"$["1"][0].call_count"#, "negative percentage -5")
        );
        assert_eq!(
            e.to_string(),
            r#"invalid value at `$["1"][0].call_count`: negative percentage -5"#
        );
        let e = buc(r#"{"1":[{"type":"t","call_count":"lots"}]}"#);
        assert_eq!(
            e.to_string(),
            r#"invalid value at `$["1"][0].call_count`: not a number: "lots""#
        );
        assert_eq!(
            buc(r#"{"1":[{"type":"t","call_count":"NaN"}]}"#),
            invalid(r#"$["1"][0].call_count"#, "not a number: \"NaN\"")
        );
        let long = "9".repeat(250);
        let e = buc(&format!(
            r#"{{"{long}":[{{"type":"t","call_count":"x{long}"}}]}}"#
        ));
        let clipped = format!("{}…", "9".repeat(200));
        assert_eq!(
            e,
            invalid(
                &format!("$[\"{clipped}\"][0].call_count"),
                &format!("not a number: \"x{}…\"", "9".repeat(199))
            )
        );
    }

    #[test]
    fn app_usage() {
        assert_eq!(
            parse_app_usage(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#).unwrap(),
            vec![
                usage("", "app", "call_count", 0.28),
                usage("", "app", "total_cputime", 0.25),
                usage("", "app", "total_time", 0.25),
            ]
        );
        assert_eq!(
            parse_app_usage(r#"{"call_count":"150","total_time":null,"other":"x"}"#).unwrap(),
            vec![usage("", "app", "call_count", 1.5)]
        );
        assert_eq!(parse_app_usage("{}").unwrap(), vec![]);
        assert_eq!(
            parse_app_usage(r#"{"call_count":-1}"#).unwrap_err(),
            invalid("call_count", "negative percentage -1")
        );
        assert_eq!(
            parse_app_usage(r#"{"total_cputime":[25]}"#).unwrap_err(),
            wrong("total_cputime", "number", "array")
        );
        assert_eq!(
            parse_app_usage("").unwrap_err(),
            invalid("$", "empty header value")
        );
        assert!(matches!(
            parse_app_usage("{\"call_count\":").unwrap_err(),
            PayloadError::Truncated { .. }
        ));
    }

    #[test]
    fn regain_access_minutes_takes_the_largest() {
        assert_eq!(
            regain_access_minutes(
                r#"{"1":[{"type":"a","estimated_time_to_regain_access":5},{"type":"b","estimated_time_to_regain_access":"30"}],"2":[{"type":"c","estimated_time_to_regain_access":0}]}"#
            ),
            Some(30.0)
        );
        assert_eq!(
            regain_access_minutes(
                r#"{"1":[{"type":"a","estimated_time_to_regain_access":-3},{"type":"b","estimated_time_to_regain_access":"soon"},{"type":"c","estimated_time_to_regain_access":2.5}]}"#
            ),
            Some(2.5)
        );
        for h in [
            "",
            "garbage",
            "[]",
            "{}",
            r#"{"1":[{"type":"a","call_count":3}]}"#,
            r#"{"1":[{"type":"a","estimated_time_to_regain_access":null}]}"#,
            r#"{"call_count":28,"total_time":25,"total_cputime":25}"#,
        ] {
            assert_eq!(regain_access_minutes(h), None, "{h}");
        }
    }

    // --- bodies ----------------------------------------------------------------------------

    #[test]
    fn empty_body() {
        for body in [&b""[..], b"  \r\n\t", b"\xEF\xBB\xBF"] {
            assert_eq!(
                parse_health_status_body(body, &mut Problems::default()),
                Err(PayloadError::EmptyBody)
            );
            assert_eq!(
                parse_phone_number(body, &mut Problems::default()),
                Err(PayloadError::EmptyBody)
            );
            assert_eq!(
                parse_templates_page(body, &mut Problems::default()),
                Err(PayloadError::EmptyBody)
            );
            assert_eq!(
                parse_phone_numbers_page(body, &mut Problems::default()),
                Err(PayloadError::EmptyBody)
            );
        }
    }

    #[test]
    fn malformed_and_truncated_json() {
        let e = health_err("{\"health_status\": {\"can_send_message\": AVAILABLE}}");
        assert_eq!(
            e,
            PayloadError::Malformed {
                line: 1,
                column: 40,
                message: "expected value".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "malformed JSON at line 1, column 40: expected value"
        );
        let e = health_err("{\"health_status\": {\"can_send_message\": \"AVAIL");
        assert_eq!(
            e,
            PayloadError::Truncated {
                line: 1,
                column: 45
            }
        );
        assert_eq!(
            e.to_string(),
            "truncated JSON: unexpected end of input at line 1, column 45"
        );
        let full = fixture!("graph", "phone_number_v24.json");
        let e = parse_phone_number(&full[..full.len() / 2], &mut Problems::default()).unwrap_err();
        assert!(matches!(e, PayloadError::Truncated { .. }), "{e:?}");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(br#"{"id":"5"}"#);
        assert_eq!(
            parse_phone_number(&body, &mut Problems::default()).unwrap(),
            phone("5")
        );
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(fixture!("graph", "error_190.json"));
        assert_eq!(parse_graph_error(&body).map(|e| e.code), Some(Some(190)));
    }

    #[test]
    fn wrong_top_level_type() {
        for (body, found) in [
            ("[]", "array"),
            (r#""AVAILABLE""#, "string"),
            ("42", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            let want = wrong("$", "object", found);
            assert_eq!(health_err(body), want, "{body}");
            assert_eq!(phone_err(body), want, "{body}");
            assert_eq!(templates_err(body), want, "{body}");
        }
    }

    #[test]
    fn upstream_strings_kept_whole_but_clipped_in_errors() {
        let long = "é".repeat(250);
        let body = format!(
            r#"{{"health_status":{{"can_send_message":"LIMITED","entities":[{{"entity_type":"WABA","id":"1","additional_info":["{long}"],"errors":[{{"error_description":"{long}"}}]}}]}}}}"#
        );
        let h = parse_health_status_body(body.as_bytes(), &mut Problems::default()).unwrap();
        assert_eq!(h.entities[0].additional_info, vec![long.clone()]);
        assert_eq!(
            h.entities[0].errors[0].error_description.as_deref(),
            Some(long.as_str())
        );
        let e = health_problem(&format!(
            r#"{{"health_status":{{"can_send_message":"AVAILABLE","entities":[{{"entity_type":"WABA","id":"1","errors":[{{"error_code":"{long}"}}]}}]}}}}"#
        ));
        assert_eq!(
            e.to_string(),
            format!(
                "invalid value at `health_status.entities[0].errors[0].error_code`: not an integer: \"{}…\"",
                "é".repeat(200)
            )
        );
    }

    /// Calls `run` on every prefix of `body` and on `body` with each byte replaced in turn
    /// by a quote, a brace, a digit and an invalid UTF-8 byte.
    fn prefixes_and_mutations(body: &[u8], run: impl Fn(&[u8])) {
        for end in 0..=body.len() {
            run(&body[..end]);
        }
        let mut m = body.to_vec();
        for i in 0..m.len() {
            let saved = m[i];
            for replacement in [b'"', b'}', b'1', 0xff] {
                m[i] = replacement;
                run(&m);
            }
            m[i] = saved;
        }
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        let run = |b: &[u8]| {
            let _ = parse_health_status_body(b, &mut Problems::default());
            let _ = parse_phone_number(b, &mut Problems::default());
            let _ = parse_templates_page(b, &mut Problems::default());
            let _ = parse_phone_numbers_page(b, &mut Problems::default());
            let _ = parse_graph_error(b);
            if let Ok(s) = std::str::from_utf8(b) {
                let _ = parse_business_use_case_usage(s);
                let _ = parse_app_usage(s);
                let _ = regain_access_minutes(s);
            }
        };
        for body in FIXTURES {
            prefixes_and_mutations(body, run);
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_health_status_body(deep.as_bytes(), &mut Problems::default()),
            Err(PayloadError::Malformed { .. })
        ));
        assert!(matches!(
            parse_business_use_case_usage(&deep),
            Err(PayloadError::Malformed { .. })
        ));
        assert_eq!(parse_graph_error(deep.as_bytes()), None);
        assert_eq!(regain_access_minutes(&deep), None);
    }

    // --- A WABA with its edges, many numbers, a business's WABAs, the token ------------------
    // Published payloads from tests/corpus/cloud_api: each one's .source.md names where it
    // was published and what it means.

    macro_rules! corpus {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/cloud_api/",
                $name
            ))
            .as_slice()
        };
    }

    fn json(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    fn text(body: &[u8]) -> &str {
        std::str::from_utf8(body).unwrap()
    }

    /// A WABA read as Graph's field expansion nests it, put together from published parts:
    /// the WABA's `health_status` (taken out of a published node answer) and each edge's own
    /// page under the edge's name.
    fn waba_answer(health: &[u8], edges: &[(&str, &[u8])]) -> Vec<u8> {
        let mut node = serde_json::Map::new();
        node.insert("id".into(), "102290129340398".into());
        node.insert(
            "health_status".into(),
            json(health)["health_status"].clone(),
        );
        for (name, page) in edges {
            node.insert((*name).into(), json(page));
        }
        serde_json::to_vec(&node).unwrap()
    }

    fn app(id: &str, name: &str) -> SubscribedApp {
        SubscribedApp {
            id: id.into(),
            name: name.into(),
        }
    }

    fn waba(id: &str) -> WabaRef {
        WabaRef { id: id.into() }
    }

    fn token(
        valid: bool,
        expires_at: Option<f64>,
        data_access: Option<f64>,
        scopes: &[&str],
    ) -> TokenInfo {
        TokenInfo {
            valid,
            expires_at,
            data_access_expires_at: data_access,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn waba_live_answer_with_its_phone_numbers_expanded() {
        let mut problems = Problems::default();
        let node = parse_waba(
            corpus!("waba-phone-numbers-expanded-live.json"),
            &mut problems,
        )
        .unwrap();
        assert_eq!(
            node,
            WabaNode {
                health_status: None,
                phone_numbers: Some(Page {
                    data: vec![PhoneNumber {
                        quality_rating: Some("GREEN".into()),
                        throughput_level: Some("STANDARD".into()),
                        display_phone_number: Some("+52 1 612 555 0100".into()),
                        verified_name: Some("Lavarenta".into()),
                        ..phone("378162705390851")
                    }],
                    next: None,
                    after: Some(
                        "QVFIU0JYYk0wQ3Nnb09nUkNlRnpPRktrY29hejEyMFhjOGQ3b3ltSHZAOZAnVocnJCZAXUxdUs1OXRpLWg1T084VDg5dDYZD"
                            .into()
                    ),
                }),
                templates: None,
                subscribed_apps: None,
            }
        );
        // Fields the exporter does not use (name, platform_type, code_verification_status)
        // are no problem.
        assert!(problems.is_empty(), "{:?}", problems.notes());
    }

    #[test]
    fn waba_answer_of_published_parts() {
        let health = corpus!("health-status-phone-available.json");
        let body = waba_answer(
            health,
            &[
                (
                    "phone_numbers",
                    corpus!("phone-numbers-page-quality-na.json"),
                ),
                (
                    "message_templates",
                    corpus!("message-templates-page-full-components.json"),
                ),
                (
                    "subscribed_apps",
                    corpus!("subscribed-apps-override-callback.json"),
                ),
            ],
        );
        let mut problems = Problems::default();
        let node = parse_waba(&body, &mut problems).unwrap();
        assert!(problems.is_empty(), "{:?}", problems.notes());
        // The WABA's health reads as the node's own answer does.
        let alone = parse_health_status_body(health, &mut Problems::default()).unwrap();
        assert_eq!(node.health_status, Some(alone));
        let numbers = node.phone_numbers.unwrap();
        let ratings: Vec<(&str, Option<&str>)> = numbers
            .data
            .iter()
            .map(|p| (p.id.as_str(), p.quality_rating.as_deref()))
            .collect();
        assert_eq!(
            ratings,
            [
                ("1906385232743451", Some("GREEN")),
                ("1913623884432103", Some("NA"))
            ]
        );
        // No paging object at all: one page.
        assert_eq!((numbers.next, numbers.after), (None, None));
        let templates = node.templates.unwrap();
        let statuses: Vec<(&str, &str, &str)> = templates
            .data
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str(), t.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("1192339204654487", "hello_world", "APPROVED"),
                ("920070352646140", "2023_april_promo", "APPROVED"),
            ]
        );
        assert_eq!(templates.next, None);
        assert_eq!(templates.after.as_deref(), Some("MjQZD"));
        // An alternate callback beside the app does not change what the app is.
        let apps = node.subscribed_apps.unwrap();
        assert_eq!(apps.data, [app("670843887433847", "Lucky Shrub")]);
    }

    #[test]
    fn waba_answer_with_odd_edges_keeps_its_health() {
        let health =
            json(corpus!("health-status-phone-limited-display-name.json"))["health_status"].clone();
        // `phone_numbers` as a bare array, the shape Meta's OpenAPI description (v23.0) shows
        // in its assigned_whatsapp_business_accounts example: not an edge page.
        let numbers = serde_json::json!([{
            "id": "1234567890",
            "display_phone_number": "+1 (555) 123-4567",
            "verified_name": "Primary Business",
            "status": "CONNECTED"
        }]);
        let body = serde_json::json!({"health_status": health, "phone_numbers": numbers});
        let mut problems = Problems::default();
        let node = parse_waba(&serde_json::to_vec(&body).unwrap(), &mut problems).unwrap();
        let limited = parse_health_status_body(
            corpus!("health-status-phone-limited-display-name.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            node,
            WabaNode {
                health_status: Some(limited.clone()),
                ..WabaNode::default()
            }
        );
        assert_eq!(
            problems.notes(),
            [format!(
                "ignored: {}",
                wrong::<GraphError>("phone_numbers", "object", "array")
            )]
        );
        assert_eq!(problems.skipped(), 0);

        // An edge page whose `data` is not a list, and one entry of another edge without an
        // id: each is left out alone.
        let body = serde_json::json!({
            "health_status": json(corpus!("health-status-phone-limited-display-name.json"))["health_status"],
            "subscribed_apps": {"data": {"whatsapp_business_api_data": {"id": "1"}}},
            "message_templates": {"data": [{"name": "x", "status": "APPROVED"}, {"id": "7", "name": "y", "language": "en", "status": "PAUSED"}]}
        });
        let mut problems = Problems::default();
        let node = parse_waba(&serde_json::to_vec(&body).unwrap(), &mut problems).unwrap();
        assert_eq!(node.health_status, Some(limited));
        assert_eq!(node.subscribed_apps, None);
        let templates = node.templates.unwrap();
        assert_eq!(templates.data.len(), 1);
        assert_eq!(templates.data[0].status, "PAUSED");
        assert_eq!(
            problems.notes(),
            [
                format!(
                    "item skipped: {}",
                    missing::<GraphError>("message_templates.data[0].id")
                ),
                format!(
                    "ignored: {}",
                    wrong::<GraphError>("subscribed_apps.data", "array", "object")
                ),
            ]
        );

        // Neither health nor numbers: nothing to go on.
        let body = serde_json::json!({"id": "1", "phone_numbers": numbers});
        let mut problems = Problems::default();
        assert_eq!(
            parse_waba(&serde_json::to_vec(&body).unwrap(), &mut problems).unwrap_err(),
            missing::<GraphError>("health_status")
        );
        // A WABA Graph refuses answers its error envelope.
        let refused = parse_waba(
            corpus!("error-200-permission-1349174.json"),
            &mut Problems::default(),
        );
        assert!(
            matches!(&refused, Err(PayloadError::Upstream(e)) if e.code == Some(200)),
            "{refused:?}"
        );
    }

    #[test]
    fn phone_numbers_by_id_from_published_nodes() {
        let one_k = corpus!("phone-number-connected-tier-1k.json");
        let tier_250 = corpus!("phone-number-messaging-limit-tier-250.json");
        // Graph's multi-id answer: each id's own answer under the id.
        let body = format!(
            r#"{{"1234567890123456":{},"106540352242922":{}}}"#,
            text(one_k),
            text(tier_250)
        );
        let mut problems = Problems::default();
        let mut phones = parse_phone_numbers_by_id(body.as_bytes(), &mut problems).unwrap();
        assert!(problems.is_empty(), "{:?}", problems.notes());
        phones.sort_by(|a, b| a.id.cmp(&b.id));
        let alone = |body| parse_phone_number(body, &mut Problems::default()).unwrap();
        assert_eq!(phones, [alone(tier_250), alone(one_k)]);
        assert_eq!(phones[0].messaging_limit_tier.as_deref(), Some("TIER_250"));
        assert_eq!(phones[1].messaging_limit_tier.as_deref(), Some("TIER_1K"));
        assert_eq!(phones[1].status.as_deref(), Some("CONNECTED"));
    }

    #[test]
    fn phone_numbers_by_id_skips_an_odd_entry_alone() {
        let one_k = corpus!("phone-number-connected-tier-1k.json");
        let not_found = corpus!("error-100-33-object-not-found.json");
        // One id answered with Graph's error, one with a string, one with a list.
        let body = format!(
            r#"{{"1234567890123456":{},"1913623884432103":{},"2":"{{}}","3":[]}}"#,
            text(one_k),
            text(not_found)
        );
        let mut problems = Problems::default();
        let phones = parse_phone_numbers_by_id(body.as_bytes(), &mut problems).unwrap();
        assert_eq!(phones.len(), 1);
        assert_eq!(phones[0].id, "1234567890123456");
        assert_eq!(problems.skipped(), 3);
        let error = parse_graph_error(not_found).unwrap().to_string();
        let mut notes = problems.notes().to_vec();
        notes.sort();
        assert_eq!(
            notes,
            [
                format!(
                    "item skipped: {}",
                    invalid::<GraphError>(r#"$["1913623884432103"]"#, &error)
                ),
                format!(
                    "item skipped: {}",
                    wrong::<GraphError>(r#"$["2"]"#, "object", "string")
                ),
                format!(
                    "item skipped: {}",
                    wrong::<GraphError>(r#"$["3"]"#, "object", "array")
                ),
            ]
        );
        // Graph refusing the whole lookup answers its error envelope.
        let refused = parse_phone_numbers_by_id(not_found, &mut Problems::default());
        assert!(
            matches!(&refused, Err(PayloadError::Upstream(e)) if e.code == Some(100)),
            "{refused:?}"
        );
        // No id at all is an empty lookup.
        assert_eq!(
            parse_phone_numbers_by_id(b"{}", &mut Problems::default()).unwrap(),
            []
        );
    }

    #[test]
    fn subscribed_apps_pages() {
        let page = parse_subscribed_apps_page(
            corpus!("subscribed-apps-two-apps.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![
                    app("1234567890123456", "Business Messaging App"),
                    app("2345678901234567", "Customer Support Bot"),
                ],
                next: None,
                after: None,
            }
        );
        let page = parse_subscribed_apps_page(
            corpus!("subscribed-apps-none.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(page.data, []);
        let mut problems = Problems::default();
        let page = parse_subscribed_apps_page(
            corpus!("subscribed-apps-override-callback.json"),
            &mut problems,
        )
        .unwrap();
        assert_eq!(page.data, [app("670843887433847", "Lucky Shrub")]);
        assert!(problems.is_empty(), "{:?}", problems.notes());

        // An entry with `id` and `name` at its top is read too; one without an id, or whose
        // wrapper is not an object, is skipped alone; a missing name is empty.
        let mut problems = Problems::default();
        let page = parse_subscribed_apps_page(
            br#"{"data":[{"id":"1","name":"Top"},{"whatsapp_business_api_data":{"name":"No id"}},{"whatsapp_business_api_data":"2"},{"whatsapp_business_api_data":{"id":3}}]}"#,
            &mut problems,
        )
        .unwrap();
        assert_eq!(page.data, [app("1", "Top"), app("3", "")]);
        assert_eq!(
            problems.notes(),
            [
                format!(
                    "item skipped: {}",
                    missing::<GraphError>("data[1].whatsapp_business_api_data.id")
                ),
                format!(
                    "item skipped: {}",
                    wrong::<GraphError>("data[2].whatsapp_business_api_data", "object", "string")
                ),
            ]
        );
    }

    #[test]
    fn waba_listing_pages() {
        let page = parse_wabas_page(
            corpus!("owned-wabas-page-cursors.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![waba("104996122399160"), waba("102290129340398")],
                next: None,
                after: Some("QVFIUjBrRUs5QVJuUDhDSmZARMlc2dXRYNXBmMjMtRUt3SmFlbk9PRk43azdiN1VQaW1HcnRkejFzZATNoNDdTdGVWMDhjamVvY25HWnI4WjIzX0hYSk40NHhB".into()),
            }
        );
        let page = parse_wabas_page(
            corpus!("client-wabas-page-next.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![waba("1234567890123456"), waba("2345678901234567")],
                next: Some("https://graph.facebook.com/v23.0/1234567890/client_whatsapp_business_accounts?after=QVFIUjNpUWpVWmRBd0Rn".into()),
                after: Some("QVFIUjNpUWpVWmRBd0Rn".into()),
            }
        );
        let mut problems = Problems::default();
        let page =
            parse_wabas_page(corpus!("client-wabas-eligible-single.json"), &mut problems).unwrap();
        assert_eq!(
            page,
            Page {
                data: vec![waba("46302397361990")],
                next: None,
                after: None,
            }
        );
        assert!(problems.is_empty(), "{:?}", problems.notes());

        // Ids as numbers, as an older revision of Meta's "Manage accounts" page shows a
        // client listing; an entry without an id is skipped alone.
        let mut problems = Problems::default();
        let page = parse_wabas_page(
            br#"{"data":[{"id":1906385232743451,"name":"My WhatsApp Business Account"},{"name":"No id"}]}"#,
            &mut problems,
        )
        .unwrap();
        assert_eq!(page.data, [waba("1906385232743451")]);
        assert_eq!(
            problems.notes(),
            [format!(
                "item skipped: {}",
                missing::<GraphError>("data[1].id")
            )]
        );
        assert_eq!(
            parse_wabas_page(br#"{"paging":{}}"#, &mut Problems::default()).unwrap_err(),
            missing::<GraphError>("data")
        );
    }

    #[test]
    fn debug_token_published_answers() {
        let read = |body: &[u8]| {
            let mut problems = Problems::default();
            let info = parse_debug_token(body, &mut problems).unwrap();
            assert!(problems.is_empty(), "{:?}", problems.notes());
            info
        };
        // A system user token never expires: Graph's 0, +Inf here.
        assert_eq!(
            read(corpus!("debug-token-system-user-never-expires.json")),
            token(
                true,
                Some(f64::INFINITY),
                Some(f64::INFINITY),
                &[
                    "whatsapp_business_management",
                    "whatsapp_business_messaging"
                ]
            )
        );
        assert_eq!(
            read(corpus!("debug-token-user-expiring.json")),
            token(
                true,
                Some(1673934788.0),
                Some(1676526788.0),
                &["public_profile"]
            )
        );
        // A token Graph cannot read: its `data.error` is the answer, not an error of it.
        assert_eq!(
            read(corpus!("debug-token-invalid-190-not-decrypted.json")),
            token(false, None, None, &[])
        );
        // Expired or invalidated, the token keeps its expiry and scopes.
        assert_eq!(
            read(corpus!("debug-token-expired-463.json")),
            token(
                false,
                Some(1668613551.0),
                Some(1671205551.0),
                &["email", "public_profile"]
            )
        );
        assert_eq!(
            read(corpus!("debug-token-invalidated-460-never-expires.json")),
            token(
                false,
                Some(f64::INFINITY),
                Some(1671412462.0),
                &[
                    "email",
                    "instagram_basic",
                    "instagram_manage_comments",
                    "instagram_manage_insights",
                    "instagram_content_publish",
                    "public_profile"
                ]
            )
        );
        // Refusals of the asking token are Graph error envelopes.
        for (body, code) in [
            (corpus!("error-190-debug-only-token.json"), 190),
            (corpus!("error-100-debug-token-needs-app-token.json"), 100),
        ] {
            let refused = parse_debug_token(body, &mut Problems::default());
            assert!(
                matches!(&refused, Err(PayloadError::Upstream(e)) if e.code == Some(code)),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn debug_token_odd_fields_are_left_out_alone() {
        let mut problems = Problems::default();
        let info = parse_debug_token(
            br#"{"data":{"is_valid":true,"expires_at":"1673934788","data_access_expires_at":"soon","scopes":["whatsapp_business_management",7,"whatsapp_business_messaging"]}}"#,
            &mut problems,
        )
        .unwrap();
        assert_eq!(
            info,
            token(
                true,
                Some(1673934788.0),
                None,
                &[
                    "whatsapp_business_management",
                    "whatsapp_business_messaging"
                ]
            )
        );
        assert_eq!(
            problems.notes(),
            [
                format!(
                    "ignored: {}",
                    invalid::<GraphError>(
                        "data.data_access_expires_at",
                        r#"not an integer: "soon""#
                    )
                ),
                format!(
                    "ignored: {}",
                    wrong::<GraphError>("data.scopes[1]", "string", "number")
                ),
            ]
        );
        assert_eq!(problems.skipped(), 0);

        let mut problems = Problems::default();
        let info = parse_debug_token(
            br#"{"data":{"is_valid":false,"scopes":"email"}}"#,
            &mut problems,
        )
        .unwrap();
        assert_eq!(info, token(false, None, None, &[]));
        assert_eq!(
            problems.notes(),
            [format!(
                "ignored: {}",
                wrong::<GraphError>("data.scopes", "array", "string")
            )]
        );

        let err =
            |body: &str| parse_debug_token(body.as_bytes(), &mut Problems::default()).unwrap_err();
        assert_eq!(
            err(r#"{"data":{"scopes":[]}}"#),
            missing::<GraphError>("data.is_valid")
        );
        assert_eq!(
            err(r#"{"data":{"is_valid":null}}"#),
            missing::<GraphError>("data.is_valid")
        );
        assert_eq!(
            err(r#"{"data":[]}"#),
            wrong::<GraphError>("data", "object", "array")
        );
        assert_eq!(err(r#"{"is_valid":true}"#), missing::<GraphError>("data"));
        assert_eq!(
            err(r#"{"data":{"is_valid":"yes"}}"#),
            wrong::<GraphError>("data.is_valid", "boolean", "string")
        );
    }

    #[test]
    fn waba_listing_and_token_parsers_never_panic_on_prefixes_and_mutations() {
        let run = |b: &[u8]| {
            let _ = parse_waba(b, &mut Problems::default());
            let _ = parse_phone_numbers_by_id(b, &mut Problems::default());
            let _ = parse_subscribed_apps_page(b, &mut Problems::default());
            let _ = parse_wabas_page(b, &mut Problems::default());
            let _ = parse_debug_token(b, &mut Problems::default());
        };
        let bodies: &[&[u8]] = &[
            corpus!("waba-phone-numbers-expanded-live.json"),
            corpus!("client-wabas-page-next.json"),
            corpus!("subscribed-apps-override-callback.json"),
            corpus!("debug-token-expired-463.json"),
            br#"{"1":{"id":"1","throughput":{"level":"STANDARD"}},"2":{"error":{"code":100}}}"#,
        ];
        for body in bodies {
            prefixes_and_mutations(body, run);
        }
    }
}
