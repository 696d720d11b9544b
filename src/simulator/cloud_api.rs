//! The simulated Meta Graph API (the Cloud API's management side) under `/graph`: a target's
//! base URL is `http://ADDR/graph` ([`SimulatorHandle::cloud_api_base_url`]), standing for
//! `https://graph.facebook.com`. It answers from the state of [`super::meta`].
//!
//! # Routes
//!
//! | route (`GET`) | kind ([`CloudApiEndpoint`]) |
//! |---|---|
//! | `/graph/{version}/{phone_number_id}?fields=…` | `PhoneNumber` |
//! | `/graph/{version}/{waba_id}?fields=…` | `Waba` |
//! | `/graph/{version}/{template_id}?fields=…` | `Template` |
//! | `/graph/{version}/{waba_id}/phone_numbers?fields=…&limit=N&after=C` | `PhoneNumbers` |
//! | `/graph/{version}/{waba_id}/message_templates?fields=…&limit=N&after=C` | `MessageTemplates` |
//! | `/graph/{version}/{waba_id}/subscribed_apps` | `SubscribedApps` |
//! | `/graph/{version}/{business_id}/owned_whatsapp_business_accounts?…` and `client_whatsapp_business_accounts` | `BusinessWabas` |
//! | `/graph/{version}/?ids=a,b,…&fields=…` | `Ids` |
//! | `/graph/{version}/debug_token?input_token=…` | `DebugToken` |
//!
//! `{waba_id}` is the WABA or the client WABA ([`meta::CLIENT_WABA_ID`]): the business owns
//! the one and lists the other among its clients. A WABA asked for `phone_numbers`,
//! `message_templates` or `subscribed_apps` as fields (field expansion,
//! `phone_numbers.limit(100){id,health_status}`) answers the first page of each edge under
//! its name, the inner fields and limit applied, `paging.next` on the edge's own route.
//! `subscribed_apps` entries are Meta's documented
//! `{"whatsapp_business_api_data":{"id","link","name"}}`; the client WABA has none and no
//! templates. A multi-id lookup answers `{"<id>":{…},…}` for phone numbers; more than
//! [`MAX_IDS`] ids is code 100, an id it does not know fails the whole lookup (404, code
//! 803), as Graph. `debug_token` answers `{"data":{"app_id","type","application",
//! "data_access_expires_at","expires_at","is_valid","issued_at","scopes","granular_scopes",
//! "user_id"}}` for the simulator's token (`expires_at` the simulator's start plus
//! [`SimulatorOptions::cloud_api_token_lifetime`], 0 without one), and for any other
//! `{"data":{"error":{"code":190,…},"is_valid":false,"scopes":[]}}` with 200.
//!
//! `{version}` is `vMAJOR.MINOR` (`v24.0`); a path without one is read at
//! [`DEFAULT_VERSION`], as Meta reads unversioned calls at the app's default version.
//! Every request needs `Authorization: Bearer <cloud_api_token>`
//! ([`SimulatorOptions::cloud_api_token`], default [`CLOUD_API_TOKEN`]; the scheme is matched
//! case-insensitively).
//!
//! # Fields
//!
//! A node answers the fields named by `fields` (comma-separated; `name{…}` and
//! `name.limit(…)` read as `name`) plus `id`; without `fields` it answers its default fields.
//! Fields without a value (the old tier of `TIER_NOT_SET`) are left out, as Meta does.
//!
//! | node type (in errors) | fields | default |
//! |---|---|---|
//! | `WhatsAppBusinessPhoneNumber` | [`PHONE_NUMBER_FIELDS`] | [`DEFAULT_PHONE_NUMBER_FIELDS`] |
//! | `WhatsAppBusinessAccount` | [`WABA_FIELDS`] | [`DEFAULT_WABA_FIELDS`] |
//! | `WhatsAppBusinessHSM` (template) | [`TEMPLATE_FIELDS`] | [`DEFAULT_TEMPLATE_FIELDS`] |
//!
//! `whatsapp_business_manager_messaging_limit` exists from v24.0 on
//! ([`MESSAGING_LIMIT_SINCE`]); `messaging_limit_tier` in every version (derived by
//! [`meta::legacy_tier`]). `throughput` is `{"level":"STANDARD"}`; a template's
//! `quality_score` is a string or `{"score":…}` (see [`super::meta`]).
//!
//! # Paging
//!
//! The edges answer `{"data":[…],"paging":{"cursors":{"before":…,"after":…},"next":…,
//! "previous":…}}`. A page holds `min(limit, cloud_api_page_size)` items
//! ([`SimulatorOptions::cloud_api_page_size`], default [`GRAPH_PAGE_SIZE`]; `limit` above 100
//! counts as 100), so listing the three numbers or five templates always spans several
//! pages. `next` (absent on the last page) and `previous` (absent on the first) are absolute
//! URLs on the address the client used (its `Host`), with the request's other parameters
//! kept and `after` / `before` set. Cursors are opaque positions; a page past the end is
//! `{"data":[]}`.
//!
//! # Usage headers and throttling
//!
//! Every answer under `/graph` (errors and faults too) carries
//!
//! - `x-business-use-case-usage: {"<waba_id>":[{"type":"whatsapp_business_management",
//!   "call_count":C,"total_cputime":C/2,"total_time":C/2,"estimated_time_to_regain_access":R}]}`
//!   with `R` = [`REGAIN_ACCESS_MINUTES`] when `C` >= 100, else 0;
//! - `x-app-usage: {"call_count":A,"total_time":A,"total_cputime":A}`;
//!
//! `C` and `A` are set by [`Simulator::set_cloud_api_usage`] (initially
//! [`meta::INITIAL_BUSINESS_USAGE`] and [`meta::INITIAL_APP_USAGE`]). While `C` >= 100
//! every authenticated request answers 400 code 80008 (subcode 2446079, `is_transient`
//! true); while `A` >= 100, 400 code 4 (`is_transient` true).
//!
//! # Order of checks
//!
//! The request is counted under its kind when it names a known node of the right type
//! ([`Simulator::cloud_api_requests`]); then the token is checked (401, code 190), then the
//! usage (80008, then 4), then the path shape (400, code 2500 `Unknown path components`),
//! then the method (400, code 100 `Unsupported post request…`), then the node (400, code
//! 100: `Unsupported get request…` (subcode 33) for an unknown id,
//! `Tried accessing nonexisting field (…)` for an edge the node lacks). Only then does an
//! injected fault ([`Simulator::set_cloud_api_fault`]) replace or damage the answer; requests
//! that name no known node are never counted nor faulted. The normal answer may still be an
//! error: an unknown or too new field (code 100), a bad `limit` or cursor (code 100).
//!
//! Errors are `{"error":{"message","type","code","error_subcode"?,"is_transient"?,
//! "fbtrace_id"}}` (`type` `OAuthException`, or `GraphMethodException` for unknown
//! nodes); 190 also sends `WWW-Authenticate`.
//!
//! # Faults
//!
//! [`CloudApiFault::GraphError`] answers the Graph error envelope with its status, code and
//! message (`is_transient` true for codes 1, 2, 4, 17, 32, 341, 613, 80007, 80008).
//! [`CloudApiFault::Fault`] applies a shared [`Fault`] to the node or to every item of a page:
//!
//! | fault | Graph answer |
//! |---|---|
//! | `MissingField` | every field but `id` left out |
//! | `NullField` | every field but `id` `null` |
//! | `OddItem` | the first entity of each `health_status` without its `id` (skipped alone) |
//! | `UnknownValue` | `can_send_message` (overall and entities) `DEGRADED`, quality `PURPLE`, tiers `TIER_42`, `status` / `name_status` `HIBERNATING`, `account_mode` `DEMO`, `throughput.level` `TURBO`, `code_verification_status` `HALF_VERIFIED` |
//! | `ErrorEnvelope` | the Graph error envelope with that status, code and message |
//! | `TooManyRequests` | 429, code 4 `(#4) Application request limit reached` |
//! | `ServiceUnavailable` | 503, code 2 (temporary downtime) |
//!
//! The others (`MalformedJson`, `Truncated`, `WrongContentType`, `EmptyBody`, `Status`,
//! `Hang`, `Slow`, `OversizedBody`, `Reset`, `Drip`, `InvalidUtf8`, `DeepNesting`,
//! `HugeJson`, `Redirect`) work as on the On-Premises API.
//!
//! [`SimulatorHandle::cloud_api_base_url`]: super::SimulatorHandle::cloud_api_base_url
//! [`SimulatorOptions::cloud_api_token`]: super::SimulatorOptions::cloud_api_token
//! [`SimulatorOptions::cloud_api_page_size`]: super::SimulatorOptions::cloud_api_page_size
//! [`SimulatorOptions::cloud_api_token_lifetime`]: super::SimulatorOptions::cloud_api_token_lifetime
//! [`Simulator::set_cloud_api_usage`]: super::Simulator::set_cloud_api_usage
//! [`Simulator::cloud_api_requests`]: super::Simulator::cloud_api_requests
//! [`Simulator::set_cloud_api_fault`]: super::Simulator::set_cloud_api_fault
//! [`CloudApiEndpoint`]: super::CloudApiEndpoint
//! [`CloudApiFault::GraphError`]: super::CloudApiFault::GraphError
//! [`CloudApiFault::Fault`]: super::CloudApiFault::Fault
//! [`Fault`]: super::Fault

use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::meta::{self, MetaState, PhoneNumber, Subject, Template};
use super::onprem::Shape;
use super::{
    answer_with_fault, json_response, shape_of, status_or_500, Action, CloudApiEndpoint,
    CloudApiFault, FaultReply, SimBody, Simulator, State,
};

/// How long after the simulator starts its Graph token expires, by default: a few days,
/// so the demo's token-expiry alert has something to say.
pub const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(4 * 24 * 3600);
/// The most ids a multi-id lookup takes, as Graph.
pub const MAX_IDS: usize = 50;
/// The scopes `debug_token` reports for the simulator's token.
pub const TOKEN_SCOPES: [&str; 3] = [
    "business_management",
    "whatsapp_business_management",
    "whatsapp_business_messaging",
];

/// The default accepted Graph API token.
pub const CLOUD_API_TOKEN: &str = "sim-graph-token-0123456789";
/// The default largest page of an edge.
pub const GRAPH_PAGE_SIZE: usize = 2;
/// The largest `limit` honoured (larger ones count as this).
pub const MAX_LIMIT: usize = 100;
/// The version of a path without one.
pub const DEFAULT_VERSION: &str = "v24.0";
/// The first version with `whatsapp_business_manager_messaging_limit`.
pub const MESSAGING_LIMIT_SINCE: (u32, u32) = (24, 0);
/// `estimated_time_to_regain_access` (minutes) while the business use case is at 100%.
pub const REGAIN_ACCESS_MINUTES: u32 = 5;

/// Fields of a phone number node.
pub const PHONE_NUMBER_FIELDS: [&str; 13] = [
    "id",
    "health_status",
    "quality_rating",
    "whatsapp_business_manager_messaging_limit",
    "messaging_limit_tier",
    "status",
    "name_status",
    "throughput",
    "display_phone_number",
    "verified_name",
    "code_verification_status",
    "account_mode",
    "platform_type",
];
/// Fields a phone number answers without `fields` (and `id`).
pub const DEFAULT_PHONE_NUMBER_FIELDS: [&str; 6] = [
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
];
/// Fields of the WABA node.
pub const WABA_FIELDS: [&str; 6] = [
    "id",
    "name",
    "health_status",
    "phone_numbers",
    "message_templates",
    "subscribed_apps",
];
/// Fields the WABA answers without `fields` (and `id`).
pub const DEFAULT_WABA_FIELDS: [&str; 1] = ["name"];
/// Fields of a message template node.
pub const TEMPLATE_FIELDS: [&str; 7] = [
    "id",
    "name",
    "language",
    "status",
    "category",
    "quality_score",
    "health_status",
];
/// Fields a template answers without `fields` (and `id`).
pub const DEFAULT_TEMPLATE_FIELDS: [&str; 4] = ["name", "language", "status", "category"];

/// The type of a Graph node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeType {
    PhoneNumber,
    Waba,
    Template,
    Business,
    DebugToken,
}

impl NodeType {
    fn name(self) -> &'static str {
        match self {
            NodeType::PhoneNumber => "WhatsAppBusinessPhoneNumber",
            NodeType::Waba => "WhatsAppBusinessAccount",
            NodeType::Template => "WhatsAppBusinessHSM",
            NodeType::Business => "Business",
            NodeType::DebugToken => "DebugToken",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            NodeType::PhoneNumber => &PHONE_NUMBER_FIELDS,
            NodeType::Waba => &WABA_FIELDS,
            NodeType::Template => &TEMPLATE_FIELDS,
            NodeType::Business | NodeType::DebugToken => &["id"],
        }
    }

    fn default_fields(self) -> Vec<String> {
        let fields: &[&str] = match self {
            NodeType::PhoneNumber => &DEFAULT_PHONE_NUMBER_FIELDS,
            NodeType::Waba => &DEFAULT_WABA_FIELDS,
            NodeType::Template => &DEFAULT_TEMPLATE_FIELDS,
            NodeType::Business | NodeType::DebugToken => &["id"],
        };
        fields.iter().map(|f| f.to_string()).collect()
    }

    fn of(cloud: &MetaState, id: &str) -> Option<NodeType> {
        if cloud.any_number(id).is_some() {
            Some(NodeType::PhoneNumber)
        } else if id == meta::WABA_ID || id == meta::CLIENT_WABA_ID {
            Some(NodeType::Waba)
        } else if cloud.template(id).is_some() {
            Some(NodeType::Template)
        } else if id == meta::BUSINESS_ID {
            Some(NodeType::Business)
        } else if id == "debug_token" {
            Some(NodeType::DebugToken)
        } else {
            None
        }
    }
}

/// `vMAJOR.MINOR`, e.g. `v24.0`.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.strip_prefix('v')?.split_once('.')?;
    let digits = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version of a path that names no node (`/`, `/v24.0`, `/v24.0/`), for a multi-id
/// lookup.
fn ids_version(rest: &str) -> Option<(u32, u32)> {
    match rest.trim_matches('/') {
        "" => parse_version(DEFAULT_VERSION),
        one => parse_version(one),
    }
}

/// A Graph path below `/graph`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct GraphPath<'a> {
    pub(super) version: (u32, u32),
    pub(super) node: &'a str,
    pub(super) edge: Option<&'a str>,
}

/// `/{version}/{node}[/{edge}]`; `Err` carries the path for `Unknown path components`.
pub(super) fn parse_path(rest: &str) -> Result<GraphPath<'_>, String> {
    let trimmed = rest.trim_matches('/');
    let mut segments: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    let mut version = parse_version(DEFAULT_VERSION).unwrap_or(MESSAGING_LIMIT_SINCE);
    if let Some(v) = segments.first().and_then(|s| parse_version(s)) {
        version = v;
        segments.remove(0);
    }
    let shown = || format!("/{}", trimmed.chars().take(200).collect::<String>());
    match segments.as_slice() {
        [node] if !node.is_empty() => Ok(GraphPath {
            version,
            node,
            edge: None,
        }),
        [node, edge] if !node.is_empty() && !edge.is_empty() => Ok(GraphPath {
            version,
            node,
            edge: Some(edge),
        }),
        _ => Err(shown()),
    }
}

fn kind_of(cloud: &MetaState, p: &GraphPath<'_>) -> Option<CloudApiEndpoint> {
    match (p.edge, NodeType::of(cloud, p.node)) {
        (None, Some(NodeType::PhoneNumber)) => Some(CloudApiEndpoint::PhoneNumber),
        (None, Some(NodeType::Waba)) => Some(CloudApiEndpoint::Waba),
        (None, Some(NodeType::Template)) => Some(CloudApiEndpoint::Template),
        (Some("phone_numbers"), Some(NodeType::Waba)) => Some(CloudApiEndpoint::PhoneNumbers),
        (Some("message_templates"), Some(NodeType::Waba)) => {
            Some(CloudApiEndpoint::MessageTemplates)
        }
        (Some("subscribed_apps"), Some(NodeType::Waba)) => Some(CloudApiEndpoint::SubscribedApps),
        (
            Some("owned_whatsapp_business_accounts" | "client_whatsapp_business_accounts"),
            Some(NodeType::Business),
        ) => Some(CloudApiEndpoint::BusinessWabas),
        (None, Some(NodeType::DebugToken)) => Some(CloudApiEndpoint::DebugToken),
        _ => None,
    }
}

/// The query string: raw pairs and their decoded key and value.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String, String)>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|raw| {
                let (k, v) = raw.split_once('=').unwrap_or((raw, ""));
                (raw.to_string(), percent_decode(k), percent_decode(v))
            })
            .collect();
        Query { pairs }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// The raw pairs whose key is not in `keys`, joined again.
    fn raw_without(&self, keys: &[&str]) -> String {
        self.pairs
            .iter()
            .filter(|(_, k, _)| !keys.contains(&k.as_str()))
            .map(|(raw, _, _)| raw.as_str())
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); bad escapes stay as they
/// are and bad UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One name of a `fields` value at depth 0, with its `.limit(…)` and `{…}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FieldSpec<'a> {
    pub name: &'a str,
    pub limit: Option<&'a str>,
    pub sub: Option<&'a str>,
}

/// The top-level names of a `fields` value: `name{…}`, `name.limit(n)` (in either order)
/// and other `.modifier(…)` are `name`; duplicates and empty names dropped.
pub(crate) fn field_specs(value: &str) -> Vec<FieldSpec<'_>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '{' | '(' => depth += 1,
            '}' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    let mut out: Vec<FieldSpec<'_>> = Vec::new();
    for part in parts.into_iter().map(str::trim) {
        let end = part.find(['{', '.', '(']).unwrap_or(part.len());
        let name = part[..end].trim();
        let mut rest = &part[end..];
        let (mut limit, mut sub) = (None, None);
        loop {
            if rest.starts_with('{') {
                let close = closing(rest, '{', '}');
                sub = Some(&rest[1..close.saturating_sub(1).max(1)]);
                rest = &rest[close..];
            } else if let Some(r) = rest.strip_prefix('.') {
                let open = r.find('(').unwrap_or(r.len());
                let close = open + closing(&r[open..], '(', ')');
                if &r[..open] == "limit" && close > open + 1 {
                    limit = Some(r[open + 1..close - 1].trim());
                }
                rest = &r[close..];
            } else {
                break;
            }
        }
        if !name.is_empty() && !out.iter().any(|f| f.name == name) {
            out.push(FieldSpec { name, limit, sub });
        }
    }
    out
}

/// The end (exclusive) of the bracketed text `text` starts with; all of it when unclosed.
fn closing(text: &str, open: char, close: char) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
    }
    text.len()
}

/// The names in a `fields` value (see [`field_specs`]).
fn parse_fields(value: &str) -> Vec<String> {
    field_specs(value)
        .into_iter()
        .map(|f| f.name.to_string())
        .collect()
}

/// A Graph API error answer.
#[derive(Clone, Debug)]
pub(crate) struct GraphErr {
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    kind: &'static str,
    message: String,
    transient: Option<bool>,
}

impl GraphErr {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        GraphErr {
            status,
            code,
            subcode: None,
            kind: "OAuthException",
            message: message.into(),
            transient: None,
        }
    }

    /// An injected error: `is_transient` follows the code.
    pub(super) fn injected(status: StatusCode, code: i64, message: &str) -> Self {
        GraphErr {
            transient: Some(transient_code(code)),
            ..GraphErr::new(status, code, message)
        }
    }

    fn body(&self) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), json!(self.message));
        e.insert("type".into(), json!(self.kind));
        e.insert("code".into(), json!(self.code));
        if let Some(sub) = self.subcode {
            e.insert("error_subcode".into(), json!(sub));
        }
        if let Some(t) = self.transient {
            e.insert("is_transient".into(), json!(t));
        }
        e.insert("fbtrace_id".into(), json!(fbtrace_id()));
        json!({ "error": e })
    }

    pub(super) fn response(&self) -> Response<SimBody> {
        let mut resp = json_response(self.status, &self.body());
        if self.code == 190 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"Invalid OAuth access token.\"",
                ),
            );
        }
        resp
    }

    pub(super) fn invalid_token() -> Self {
        GraphErr::new(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token.")
    }

    fn too_many_calls() -> Self {
        GraphErr {
            subcode: Some(2_446_079),
            transient: Some(true),
            ..GraphErr::new(
                StatusCode::BAD_REQUEST,
                80008,
                "(#80008) There have been too many calls to this WhatsApp Business account.",
            )
        }
    }

    fn app_limit(status: StatusCode) -> Self {
        GraphErr {
            transient: Some(true),
            ..GraphErr::new(status, 4, "(#4) Application request limit reached")
        }
    }

    pub(super) fn unsupported(method: &Method, id: &str) -> Self {
        let id: String = id.chars().take(100).collect();
        GraphErr {
            subcode: Some(33),
            kind: "GraphMethodException",
            ..GraphErr::new(
                StatusCode::BAD_REQUEST,
                100,
                format!(
                    "Unsupported {} request. Object with ID '{id}' does not exist, cannot be \
                     loaded due to missing permissions, or does not support this operation. \
                     Please read the Graph API documentation at \
                     https://developers.facebook.com/docs/graph-api",
                    method.as_str().to_ascii_lowercase()
                ),
            )
        }
    }

    fn nonexisting_field(field: &str, node: NodeType) -> Self {
        let field: String = field.chars().take(100).collect();
        GraphErr::new(
            StatusCode::BAD_REQUEST,
            100,
            format!(
                "(#100) Tried accessing nonexisting field ({field}) on node type ({})",
                node.name()
            ),
        )
    }

    fn invalid_param(message: &str) -> Self {
        GraphErr::new(StatusCode::BAD_REQUEST, 100, message)
    }
}

/// Codes Meta marks `is_transient`.
fn transient_code(code: i64) -> bool {
    matches!(code, 1 | 2 | 4 | 17 | 32 | 341 | 613 | 80007 | 80008)
}

fn fbtrace_id() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(11)
        .collect()
}

/// The credentials of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, credentials) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// Adds `x-business-use-case-usage` and `x-app-usage`.
pub(super) fn add_usage_headers(resp: &mut Response<SimBody>, business: u32, app: u32) {
    let regain = if business >= 100 {
        REGAIN_ACCESS_MINUTES
    } else {
        0
    };
    let mut buc = Map::new();
    buc.insert(
        meta::WABA_ID.to_string(),
        json!([{
            "type": "whatsapp_business_management",
            "call_count": business,
            "total_cputime": business / 2,
            "total_time": business / 2,
            "estimated_time_to_regain_access": regain,
        }]),
    );
    let app = json!({"call_count": app, "total_time": app, "total_cputime": app});
    for (name, value) in [
        ("x-business-use-case-usage", Value::Object(buc)),
        ("x-app-usage", app),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
}

/// Damages one answered object as a field fault asks (see the module docs).
pub(crate) fn damage(value: &mut Value, shape: Shape) {
    let Some(m) = value.as_object_mut() else {
        return;
    };
    match shape {
        Shape::Normal => {}
        // The first entity of the health_status without its id: it alone is skipped.
        Shape::OddItem => {
            if let Some(first) = m
                .get_mut("health_status")
                .and_then(|h| h.get_mut("entities"))
                .and_then(|e| e.get_mut(0))
                .and_then(Value::as_object_mut)
            {
                first.remove("id");
            }
        }
        Shape::MissingField => m.retain(|k, _| k == "id"),
        Shape::NullField => {
            for (k, v) in m.iter_mut() {
                if k != "id" {
                    *v = Value::Null;
                }
            }
        }
        Shape::UnknownValue => {
            for (k, v) in m.iter_mut() {
                match k.as_str() {
                    "health_status" => degrade_health(v),
                    "quality_rating" => *v = json!("PURPLE"),
                    "quality_score" => match v.as_object_mut() {
                        Some(o) => {
                            o.insert("score".into(), json!("PURPLE"));
                        }
                        None => *v = json!("PURPLE"),
                    },
                    "whatsapp_business_manager_messaging_limit" | "messaging_limit_tier" => {
                        *v = json!("TIER_42")
                    }
                    "status" | "name_status" => *v = json!("HIBERNATING"),
                    "account_mode" => *v = json!("DEMO"),
                    "throughput" => *v = json!({"level": "TURBO"}),
                    "code_verification_status" => *v = json!("HALF_VERIFIED"),
                    _ => {}
                }
            }
        }
    }
}

/// Sets `can_send_message` of a `health_status` object and of its entities to `DEGRADED`.
pub(crate) fn degrade_health(health: &mut Value) {
    if let Some(h) = health.as_object_mut() {
        h.insert("can_send_message".into(), json!("DEGRADED"));
        if let Some(entities) = h.get_mut("entities").and_then(Value::as_array_mut) {
            for e in entities.iter_mut().filter_map(Value::as_object_mut) {
                e.insert("can_send_message".into(), json!("DEGRADED"));
            }
        }
    }
}

pub(super) fn number_field(cloud: &MetaState, n: &PhoneNumber, field: &str) -> Option<Value> {
    number_field_of(cloud, n, false, field)
}

/// A field of a number of the WABA, or with `client` of the client WABA.
fn number_field_of(cloud: &MetaState, n: &PhoneNumber, client: bool, field: &str) -> Option<Value> {
    Some(match field {
        "id" => json!(n.id),
        "health_status" if client => cloud.health_status(Subject::ClientNumber(n)),
        "health_status" => cloud.health_status(Subject::Number(n)),
        "quality_rating" => json!(n.quality_rating),
        "whatsapp_business_manager_messaging_limit" => json!(n.tier),
        "messaging_limit_tier" => json!(meta::legacy_tier(&n.tier)?),
        "status" => json!(n.status),
        "name_status" => json!(n.name_status),
        "throughput" => json!({"level": n.throughput}),
        "display_phone_number" => json!(n.display_phone_number),
        "verified_name" => json!(n.verified_name),
        "code_verification_status" => json!(n.code_verification_status),
        "account_mode" => json!(n.account_mode),
        "platform_type" => json!(n.platform_type),
        _ => return None,
    })
}

/// A field of the WABA (or, with `client`, of the client WABA); the edges are added by the
/// caller.
fn waba_field(cloud: &MetaState, client: bool, field: &str) -> Option<Value> {
    Some(match (field, client) {
        ("id", false) => json!(meta::WABA_ID),
        ("id", true) => json!(meta::CLIENT_WABA_ID),
        ("name", false) => json!(meta::WABA_NAME),
        ("name", true) => json!(meta::CLIENT_WABA_NAME),
        ("health_status", false) => cloud.health_status(Subject::Waba),
        ("health_status", true) => cloud.health_status(Subject::ClientWaba),
        _ => return None,
    })
}

fn template_field(cloud: &MetaState, t: &Template, field: &str) -> Option<Value> {
    Some(match field {
        "id" => json!(t.id),
        "name" => json!(t.name),
        "language" => json!(t.language),
        "status" => json!(t.status),
        "category" => json!(t.category),
        "quality_score" => t.quality_score(),
        "health_status" => cloud.health_status(Subject::Template(t)),
        _ => return None,
    })
}

/// The fields asked of a node type, checked against what it has in `version`.
fn requested_fields(
    query: &Query,
    node: NodeType,
    version: (u32, u32),
) -> Result<Vec<String>, GraphErr> {
    let fields = match query.get("fields") {
        Some(f) => parse_fields(f),
        None => node.default_fields(),
    };
    for f in &fields {
        let too_new =
            f == "whatsapp_business_manager_messaging_limit" && version < MESSAGING_LIMIT_SINCE;
        if too_new || !node.fields().contains(&f.as_str()) {
            return Err(GraphErr::nonexisting_field(f, node));
        }
    }
    Ok(fields)
}

/// `{field: value, …, "id": id}` for the fields that have a value.
fn object(id: &str, fields: &[String], get: impl Fn(&str) -> Option<Value>) -> Value {
    let mut m = Map::new();
    for f in fields.iter().filter(|f| f.as_str() != "id") {
        if let Some(v) = get(f) {
            m.insert(f.clone(), v);
        }
    }
    m.insert("id".into(), json!(id));
    Value::Object(m)
}

const CURSOR_PREFIX: &str = "sim-cursor:";

/// An opaque cursor for a position.
pub(crate) fn cursor(position: usize) -> String {
    format!("{CURSOR_PREFIX}{position}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn decode_cursor(text: &str) -> Option<usize> {
    if text.len() % 2 != 0 || text.len() > 64 || !text.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
}

/// Where the request's page links point.
pub(crate) struct Link<'a> {
    /// `host:port` the client used.
    pub authority: &'a str,
    /// The request path, as received.
    pub path: &'a str,
}

/// One page of `items` as the request's `limit`, `after` and `before` ask.
fn page(
    items: Vec<Value>,
    query: &Query,
    link: &Link<'_>,
    page_size: usize,
) -> Result<Value, GraphErr> {
    let page_size = page_size.max(1);
    let size = match query.get("limit") {
        None => page_size,
        Some(l) => match l.trim().parse::<usize>() {
            Ok(0) => {
                return Err(GraphErr::invalid_param(
                    "(#100) Param limit must be a positive number",
                ))
            }
            Ok(n) => n.min(MAX_LIMIT).min(page_size),
            Err(_) => {
                return Err(GraphErr::invalid_param(
                    "(#100) Param limit must be a number",
                ))
            }
        },
    };
    let len = items.len();
    let bad_cursor = || GraphErr::invalid_param("(#100) The cursor is invalid");
    let (start, end) = if let Some(after) = query.get("after") {
        let start = decode_cursor(after)
            .ok_or_else(bad_cursor)?
            .saturating_add(1)
            .min(len);
        (start, start.saturating_add(size).min(len))
    } else if let Some(before) = query.get("before") {
        let end = decode_cursor(before).ok_or_else(bad_cursor)?.min(len);
        (end.saturating_sub(size), end)
    } else {
        (0, size.min(len))
    };
    if start >= end {
        return Ok(json!({"data": []}));
    }
    let data: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    let (first, last) = (cursor(start), cursor(end - 1));
    let kept = query.raw_without(&["after", "before"]);
    let url = |param: &str, c: &str| {
        let sep = if kept.is_empty() { "" } else { "&" };
        format!(
            "http://{}{}?{kept}{sep}{param}={c}",
            link.authority, link.path
        )
    };
    let mut paging = Map::new();
    paging.insert("cursors".into(), json!({"before": first, "after": last}));
    if end < len {
        paging.insert("next".into(), json!(url("after", &last)));
    }
    if start > 0 {
        paging.insert("previous".into(), json!(url("before", &first)));
    }
    Ok(json!({"data": data, "paging": paging}))
}

/// Generic faults in Graph words.
pub(super) fn fault_reply(reply: FaultReply<'_>) -> Response<SimBody> {
    match reply {
        FaultReply::Error {
            status,
            code,
            title,
        } => GraphErr::injected(status, code, title).response(),
        FaultReply::TooManyRequests => {
            GraphErr::app_limit(StatusCode::TOO_MANY_REQUESTS).response()
        }
        FaultReply::ServiceUnavailable => GraphErr::injected(
            StatusCode::SERVICE_UNAVAILABLE,
            2,
            "An unexpected error has occurred. Please retry your request later.",
        )
        .response(),
    }
}

impl Simulator {
    /// Answers a request under `/graph`; `rest` is the path after `/graph`.
    pub(super) fn prepare_graph(
        &self,
        req: &Request<Incoming>,
        rest: &str,
        authority: &str,
    ) -> Action {
        let query = Query::parse(req.uri().query());
        let link = Link {
            authority,
            path: req.uri().path(),
        };
        let mut state = self.lock();
        let action = self.graph_action(&mut state, req, rest, &query, &link);
        let (business, app) = (state.cloud.business_usage, state.cloud.app_usage);
        drop(state);
        action.map_response(|resp| add_usage_headers(resp, business, app))
    }

    fn graph_action(
        &self,
        state: &mut State,
        req: &Request<Incoming>,
        rest: &str,
        query: &Query,
        link: &Link<'_>,
    ) -> Action {
        // A multi-id lookup names no node: `/{version}/?ids=…`.
        let lookup = query
            .get("ids")
            .is_some()
            .then(|| ids_version(rest))
            .flatten();
        let path = match lookup {
            Some(version) => Ok(GraphPath {
                version,
                node: "",
                edge: None,
            }),
            None => parse_path(rest),
        };
        let kind = match lookup {
            Some(_) => Some(CloudApiEndpoint::Ids),
            None => path.as_ref().ok().and_then(|p| kind_of(&state.cloud, p)),
        };
        if let Some(k) = kind {
            self.inner.cloud_api_requests[k.index()].fetch_add(1, Ordering::Relaxed);
        }
        let token = &self.inner.opts.cloud_api_token;
        if !bearer(req).is_some_and(|t| !t.is_empty() && t == token) {
            return Action::Respond(GraphErr::invalid_token().response());
        }
        if state.cloud.business_usage >= 100 {
            return Action::Respond(GraphErr::too_many_calls().response());
        }
        if state.cloud.app_usage >= 100 {
            return Action::Respond(GraphErr::app_limit(StatusCode::BAD_REQUEST).response());
        }
        let p = match path {
            Ok(p) => p,
            Err(shown) => {
                return Action::Respond(
                    GraphErr::new(
                        StatusCode::BAD_REQUEST,
                        2500,
                        format!("Unknown path components: {shown}"),
                    )
                    .response(),
                )
            }
        };
        if req.method() != Method::GET {
            return Action::Respond(GraphErr::unsupported(req.method(), p.node).response());
        }
        let Some(kind) = kind else {
            let err = match (NodeType::of(&state.cloud, p.node), p.edge) {
                (Some(node), Some(edge)) => GraphErr::nonexisting_field(edge, node),
                _ => GraphErr::unsupported(req.method(), p.node),
            };
            return Action::Respond(err.response());
        };
        let fault = match state.cloud_api_faults[kind.index()].clone() {
            Some(CloudApiFault::GraphError {
                status,
                code,
                message,
            }) => {
                return Action::Respond(
                    GraphErr::injected(status_or_500(status), code, &message).response(),
                )
            }
            Some(CloudApiFault::Fault(f)) => Some(f),
            None => None,
        };
        let shape = shape_of(fault.as_ref());
        let cloud = &state.cloud;
        let page_size = self.inner.opts.cloud_api_page_size;
        let token = TokenFacts {
            token,
            started_at: self.inner.started_at,
            lifetime: self.inner.opts.cloud_api_token_lifetime,
        };
        answer_with_fault(
            fault.as_ref(),
            || match graph_payload(cloud, &p, kind, query, link, page_size, shape, &token) {
                Ok(v) => (StatusCode::OK, v),
                Err(e) => (e.status, e.body()),
            },
            fault_reply,
        )
    }
}

/// What `debug_token` answers from: the token the simulator accepts and when it expires.
pub(super) struct TokenFacts<'a> {
    pub token: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub lifetime: Option<std::time::Duration>,
}

/// The normal answer of a request of a known kind.
#[allow(clippy::too_many_arguments)]
fn graph_payload(
    cloud: &MetaState,
    p: &GraphPath<'_>,
    kind: CloudApiEndpoint,
    query: &Query,
    link: &Link<'_>,
    page_size: usize,
    shape: Shape,
    token: &TokenFacts<'_>,
) -> Result<Value, GraphErr> {
    let damaged = |mut v: Value| {
        damage(&mut v, shape);
        v
    };
    match kind {
        CloudApiEndpoint::PhoneNumber => {
            let fields = requested_fields(query, NodeType::PhoneNumber, p.version)?;
            let (n, client) = cloud
                .any_number(p.node)
                .ok_or_else(|| GraphErr::unsupported(&Method::GET, p.node))?;
            Ok(damaged(object(&n.id, &fields, |f| {
                number_field_of(cloud, n, client, f)
            })))
        }
        CloudApiEndpoint::Waba => {
            let fields = requested_fields(query, NodeType::Waba, p.version)?;
            let specs = query.get("fields").map(field_specs).unwrap_or_default();
            let spec = |name: &str| specs.iter().find(|s| s.name == name);
            let client = p.node == meta::CLIENT_WABA_ID;
            let mut answer = object(p.node, &fields, |f| waba_field(cloud, client, f));
            damage(&mut answer, shape);
            // Edges asked by field expansion: the first page of each, its `next` on the
            // edge's own route.
            for edge in ["phone_numbers", "message_templates", "subscribed_apps"] {
                if !fields.iter().any(|f| f == edge) {
                    continue;
                }
                let asked = spec(edge);
                let mut pairs = Vec::new();
                if let Some(sub) = asked.and_then(|s| s.sub) {
                    pairs.push(format!("fields={sub}"));
                }
                if let Some(limit) = asked.and_then(|s| s.limit) {
                    pairs.push(format!("limit={limit}"));
                }
                let edge_query = Query::parse(Some(&pairs.join("&")));
                let edge_path = format!("{}/{edge}", link.path.trim_end_matches('/'));
                let edge_link = Link {
                    authority: link.authority,
                    path: &edge_path,
                };
                let edge_kind = match edge {
                    "phone_numbers" => CloudApiEndpoint::PhoneNumbers,
                    "message_templates" => CloudApiEndpoint::MessageTemplates,
                    _ => CloudApiEndpoint::SubscribedApps,
                };
                let edge_p = GraphPath {
                    version: p.version,
                    node: p.node,
                    edge: Some(edge),
                };
                let value = graph_payload(
                    cloud,
                    &edge_p,
                    edge_kind,
                    &edge_query,
                    &edge_link,
                    page_size,
                    shape,
                    token,
                )?;
                if let Some(m) = answer.as_object_mut() {
                    m.insert(edge.to_string(), value);
                }
            }
            Ok(answer)
        }
        CloudApiEndpoint::Template => {
            let fields = requested_fields(query, NodeType::Template, p.version)?;
            let t = cloud
                .template(p.node)
                .ok_or_else(|| GraphErr::unsupported(&Method::GET, p.node))?;
            Ok(damaged(object(&t.id, &fields, |f| {
                template_field(cloud, t, f)
            })))
        }
        CloudApiEndpoint::PhoneNumbers => {
            let fields = requested_fields(query, NodeType::PhoneNumber, p.version)?;
            let client = p.node == meta::CLIENT_WABA_ID;
            let numbers = if client {
                &cloud.client_numbers
            } else {
                &cloud.numbers
            };
            let items = numbers
                .iter()
                .map(|n| {
                    damaged(object(&n.id, &fields, |f| {
                        number_field_of(cloud, n, client, f)
                    }))
                })
                .collect();
            page(items, query, link, page_size)
        }
        CloudApiEndpoint::MessageTemplates => {
            let fields = requested_fields(query, NodeType::Template, p.version)?;
            // The client WABA has no templates.
            let items = if p.node == meta::CLIENT_WABA_ID {
                Vec::new()
            } else {
                cloud
                    .templates
                    .iter()
                    .map(|t| damaged(object(&t.id, &fields, |f| template_field(cloud, t, f))))
                    .collect()
            };
            page(items, query, link, page_size)
        }
        CloudApiEndpoint::SubscribedApps => {
            let subscribed = if p.node == meta::CLIENT_WABA_ID {
                cloud.client_subscribed
            } else {
                cloud.subscribed
            };
            // Meta's documented shape of an entry.
            let items = if subscribed {
                vec![json!({"whatsapp_business_api_data": {
                    "id": meta::APP_ID,
                    "link": format!("https://www.facebook.com/games/?app_id={}", meta::APP_ID),
                    "name": meta::APP_NAME,
                }})]
            } else {
                Vec::new()
            };
            page(items, query, link, page_size)
        }
        CloudApiEndpoint::BusinessWabas => {
            let (id, name) = if p.edge == Some("client_whatsapp_business_accounts") {
                (meta::CLIENT_WABA_ID, meta::CLIENT_WABA_NAME)
            } else {
                (meta::WABA_ID, meta::WABA_NAME)
            };
            let items = vec![damaged(json!({"id": id, "name": name}))];
            page(items, query, link, page_size)
        }
        CloudApiEndpoint::Ids => ids_payload(cloud, query, p.version, shape),
        CloudApiEndpoint::DebugToken => debug_token_payload(query, token),
    }
}

/// `GET /?ids=a,b&fields=…`: `{"a":{…},"b":{…}}` of phone numbers; as Graph, one unknown id
/// fails the whole lookup (code 803) and more than [`MAX_IDS`] are refused.
fn ids_payload(
    cloud: &MetaState,
    query: &Query,
    version: (u32, u32),
    shape: Shape,
) -> Result<Value, GraphErr> {
    let ids: Vec<&str> = query
        .get("ids")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(GraphErr::invalid_param(
            "(#100) The parameter ids is required",
        ));
    }
    if ids.len() > MAX_IDS {
        return Err(GraphErr::invalid_param(&format!(
            "(#100) Too many IDs. Maximum: {MAX_IDS}"
        )));
    }
    let fields = requested_fields(query, NodeType::PhoneNumber, version)?;
    let mut answer = Map::new();
    for id in ids {
        let Some((n, client)) = cloud.any_number(id) else {
            return Err(GraphErr::new(
                StatusCode::NOT_FOUND,
                803,
                format!("(#803) Some of the aliases you requested do not exist: {id}"),
            ));
        };
        let mut v = object(&n.id, &fields, |f| number_field_of(cloud, n, client, f));
        damage(&mut v, shape);
        answer.insert(n.id.clone(), v);
    }
    Ok(Value::Object(answer))
}

/// `GET /debug_token?input_token=…`, in Meta's documented shape. Another token than the
/// simulator's is answered as Graph does, with 200 and `is_valid` false.
fn debug_token_payload(query: &Query, facts: &TokenFacts<'_>) -> Result<Value, GraphErr> {
    let Some(input) = query.get("input_token") else {
        return Err(GraphErr::invalid_param(
            "(#100) The parameter input_token is required",
        ));
    };
    if input != facts.token {
        return Ok(json!({"data": {
            "error": {"code": 190, "message": "Invalid OAuth access token."},
            "is_valid": false,
            "scopes": [],
        }}));
    }
    let started = facts.started_at.timestamp();
    let expires_at = facts.lifetime.map_or(0, |d| {
        started + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
    });
    Ok(json!({"data": {
        "app_id": meta::APP_ID,
        "type": "SYSTEM_USER",
        "application": meta::APP_NAME,
        "data_access_expires_at": started + 90 * 24 * 3600,
        "expires_at": expires_at,
        "is_valid": true,
        "issued_at": started - 30 * 24 * 3600,
        "scopes": TOKEN_SCOPES,
        "granular_scopes": [
            {"scope": "whatsapp_business_management", "target_ids": [meta::WABA_ID, meta::CLIENT_WABA_ID]},
            {"scope": "whatsapp_business_messaging", "target_ids": [meta::WABA_ID]},
        ],
        "user_id": "122100000000000001",
    }}))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn versions_paths_fields_and_cursors() {
        assert_eq!(parse_version("v24.0"), Some((24, 0)));
        assert_eq!(parse_version("v23.10"), Some((23, 10)));
        for bad in ["24.0", "v24", "v.1", "v24.x", "vv24.0", "v99999.0"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(
            parse_path("/v23.0/123/phone_numbers"),
            Ok(GraphPath {
                version: (23, 0),
                node: "123",
                edge: Some("phone_numbers"),
            })
        );
        assert_eq!(
            parse_path("/123/"),
            Ok(GraphPath {
                version: MESSAGING_LIMIT_SINCE,
                node: "123",
                edge: None,
            })
        );
        assert!(parse_path("").is_err());
        assert!(parse_path("/v24.0").is_err());
        assert!(parse_path("/v24.0/a/b/c").is_err());
        assert!(parse_path("/v24.0//b").is_err());
        assert_eq!(
            parse_fields("id, health_status{can_send_message,entities},quality_rating,,id"),
            vec!["id", "health_status", "quality_rating"]
        );
        assert_eq!(parse_fields("a.limit(3),b"), vec!["a", "b"]);
        assert_eq!(percent_decode("id%2Cname+x%zz%"), "id,name x%zz%");
        assert_eq!(percent_decode("%E2%9C%93%ff"), "\u{2713}\u{fffd}");
        for i in [0, 1, 99, usize::MAX] {
            assert_eq!(decode_cursor(&cursor(i)), Some(i));
        }
        for bad in ["", "zz", "abc", "00", "\u{e9}\u{e9}"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert!(parse_version(DEFAULT_VERSION).is_some());
    }
}
