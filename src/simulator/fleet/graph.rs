//! The fleet's Graph API: single numbers, and the businesses of
//! [`SimulatorOptions::fleet_businesses`] with their WABAs, numbers, templates and apps, as
//! the exporter's business-wide discovery reads them (see the parent module's docs).
//!
//! [`SimulatorOptions::fleet_businesses`]: crate::simulator::SimulatorOptions::fleet_businesses

use std::fmt::Write as _;

use bytes::Bytes;
use chrono::Utc;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::super::cloud_api::{self, cursor, decode_cursor, field_specs, GraphErr, Query};
use super::super::meta;
use super::super::{body_response, Action, SimBody, Simulator};
use super::{answer, authorization, Fleet, FleetFamily, FleetKind, Splice, PHONE_NUMBER_ID_BASE};

/// Business `b` of the fleet has the id `BUSINESS_ID_BASE + b` (15 digits).
pub const BUSINESS_ID_BASE: u64 = 170_000_000_000_000;
/// WABA `w` of the fleet (counted over all businesses) has the id `WABA_ID_BASE + w`.
pub const WABA_ID_BASE: u64 = 180_000_000_000_000;
/// Template `t` of WABA `w` has the id `TEMPLATE_ID_BASE + w * TEMPLATES_PER_WABA + t`.
pub const TEMPLATE_ID_BASE: u64 = 160_000_000_000_000;
/// How many message templates each WABA has.
pub const TEMPLATES_PER_WABA: usize = 3;
/// The app every subscribed WABA names and `debug_token` answers: the simulator's own.
pub const FLEET_APP_ID: &str = meta::APP_ID;
/// An app token (`app_id|app_secret`) `debug_token` also accepts as its bearer.
pub const FLEET_APP_TOKEN: &str = "634974688087057|sim-fleet-app-secret-0123456789";
/// The system user `debug_token` says the token belongs to.
pub const FLEET_SYSTEM_USER_ID: &str = "150000000000001";
/// The most WABAs a fleet has; a larger shape is refused by `simulate`.
pub const MAX_FLEET_WABAS: usize = 1_000_000;
/// The most numbers the businesses of a fleet have.
pub const MAX_FLEET_NUMBERS: usize = 10_000_000;
/// The most ids a `?ids=` lookup takes.
pub const MAX_IDS: usize = 50;
/// The page size without `limit`, Graph's.
pub const DEFAULT_LIMIT: usize = 25;
/// The largest page.
pub const MAX_LIMIT: usize = 100;
/// Up to this many WABAs (and businesses), `debug_token` lists them as the scopes'
/// `target_ids`; past it the scopes carry none, Graph's way of saying "all".
pub const MAX_TARGET_IDS: usize = 10_000;

pub(super) const TEMPLATE_NAMES: [&str; TEMPLATES_PER_WABA] = [
    "fleet_order_update",
    "fleet_spring_sale",
    "fleet_login_code",
];
pub(super) const TEMPLATE_LANGUAGES: [&str; TEMPLATES_PER_WABA] = ["en_US", "es_ES", "en_US"];
pub(super) const TEMPLATE_CATEGORIES: [&str; TEMPLATES_PER_WABA] =
    ["UTILITY", "MARKETING", "AUTHENTICATION"];

/// The id of fleet business `b`.
pub fn business_id(b: usize) -> String {
    (BUSINESS_ID_BASE + b as u64).to_string()
}

/// The id of fleet WABA `w`.
pub fn waba_id(w: usize) -> String {
    (WABA_ID_BASE + w as u64).to_string()
}

/// The id of template `t` of fleet WABA `w`.
pub fn template_id(w: usize, t: usize) -> String {
    (TEMPLATE_ID_BASE + (w * TEMPLATES_PER_WABA + t) as u64).to_string()
}

/// Whether fleet WABA `w` has the app subscribed (`subscribed_apps` not empty).
pub fn waba_subscribed(w: usize) -> bool {
    w % 50 != 13
}

/// `status` of template `t` of fleet WABA `w`: the second one is paused now and then.
pub fn template_status(w: usize, t: usize) -> &'static str {
    if template_paused(w, t) {
        "PAUSED"
    } else {
        "APPROVED"
    }
}

fn template_paused(w: usize, t: usize) -> bool {
    t == 1 && w % 20 == 7
}

/// The businesses of the fleet's Graph API ([`SimulatorOptions::fleet_businesses`],
/// `simulate --fleet.businesses B --fleet.wabas-per-business W --fleet.numbers-per-waba K`).
///
/// WABA `w` (`0..B * W`) belongs to business `w / W`; the WABAs of a business whose place
/// `w % W` in it is `3` modulo 4 are its client WABAs, the others it owns. Number `i`
/// (`0..B * W * K`) belongs to WABA `i / K`: the fleet's numbers `0..B * W * K`, the same
/// ids as [`super::phone_number_id`].
///
/// [`SimulatorOptions::fleet_businesses`]: crate::simulator::SimulatorOptions::fleet_businesses
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetBusinesses {
    /// Businesses `B` (0: none, the default).
    pub businesses: usize,
    /// WABAs per business `W`.
    pub wabas_per_business: usize,
    /// Phone numbers per WABA `K`.
    pub numbers_per_waba: usize,
}

impl Default for FleetBusinesses {
    fn default() -> Self {
        FleetBusinesses {
            businesses: 0,
            wabas_per_business: 10,
            numbers_per_waba: 10,
        }
    }
}

/// A shape of [`FleetBusinesses`] past the maxima.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetShapeError {
    /// More WABAs than [`MAX_FLEET_WABAS`] (or businesses, when they have none).
    #[error("the fleet's businesses would have {0} WABAs, more than {MAX_FLEET_WABAS}")]
    TooManyWabas(u128),
    /// More numbers than [`MAX_FLEET_NUMBERS`].
    #[error("the fleet's businesses would have {0} phone numbers, more than {MAX_FLEET_NUMBERS}")]
    TooManyNumbers(u128),
}

impl FleetBusinesses {
    /// `B * W`.
    pub fn wabas(&self) -> usize {
        self.businesses.saturating_mul(self.wabas_per_business)
    }

    /// `B * W * K`.
    pub fn numbers(&self) -> usize {
        self.wabas().saturating_mul(self.numbers_per_waba)
    }

    /// Whether the shape is within [`MAX_FLEET_WABAS`] and [`MAX_FLEET_NUMBERS`].
    pub fn check(&self) -> Result<(), FleetShapeError> {
        let b = self.businesses as u128;
        let wabas = b * self.wabas_per_business as u128;
        let numbers = wabas * self.numbers_per_waba as u128;
        if wabas.max(b) > MAX_FLEET_WABAS as u128 {
            return Err(FleetShapeError::TooManyWabas(wabas.max(b)));
        }
        if numbers > MAX_FLEET_NUMBERS as u128 {
            return Err(FleetShapeError::TooManyNumbers(numbers));
        }
        Ok(())
    }

    /// The shape within the maxima: whole businesses dropped from the end.
    pub(super) fn clipped(self) -> Self {
        if self.check().is_ok() {
            return self;
        }
        let per_business = self.wabas_per_business.max(1);
        let numbers_per_business = per_business.saturating_mul(self.numbers_per_waba.max(1));
        FleetBusinesses {
            businesses: self
                .businesses
                .min(MAX_FLEET_WABAS / per_business)
                .min(MAX_FLEET_NUMBERS / numbers_per_business),
            ..self
        }
    }

    /// Whether WABA `w` is a client WABA of its business (see above).
    pub fn is_client(&self, w: usize) -> bool {
        w % self.wabas_per_business.max(1) % 4 == 3
    }

    /// The business of WABA `w`.
    pub fn business_of(&self, w: usize) -> usize {
        w / self.wabas_per_business.max(1)
    }

    /// The WABA of number `i`, when it belongs to one.
    pub fn waba_of(&self, i: usize) -> Option<usize> {
        (i < self.numbers()).then(|| i / self.numbers_per_waba.max(1))
    }

    /// How many WABAs each business lists as its client (or owned) ones.
    pub fn listed(&self, client: bool) -> usize {
        let clients = (self.wabas_per_business + 1) / 4;
        if client {
            clients
        } else {
            self.wabas_per_business - clients
        }
    }

    /// The WABA at `position` of business `b`'s client (or owned) listing.
    fn listed_waba(&self, b: usize, client: bool, position: usize) -> usize {
        // Of each four places in a business, the first three are owned, the last a client's.
        let place = if client {
            4 * position + 3
        } else {
            position + position / 3
        };
        b * self.wabas_per_business + place
    }

    /// The splice of number `i`: its WABA's and business's ids in its `health_status`.
    pub(super) fn number_splice(&self, i: usize) -> Splice {
        let waba = self.waba_of(i);
        Splice {
            i,
            waba,
            business: waba.map(|w| self.business_of(w)),
        }
    }
}

/// What a path under `/fleet/graph` names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    /// `/[{version}/]?ids=…`.
    Ids,
    /// `/[{version}/]debug_token`.
    DebugToken,
    /// A fleet number.
    Number(usize),
    /// A WABA node.
    Waba(usize),
    /// An edge of a WABA.
    WabaEdge(usize, WabaEdge),
    /// A business's owned or client WABAs.
    Wabas { business: usize, client: bool },
    /// Anything else: the node named, for the error.
    Unknown(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WabaEdge {
    PhoneNumbers,
    MessageTemplates,
    SubscribedApps,
}

impl WabaEdge {
    fn of(name: &str) -> Option<Self> {
        match name {
            "phone_numbers" => Some(WabaEdge::PhoneNumbers),
            "message_templates" => Some(WabaEdge::MessageTemplates),
            "subscribed_apps" => Some(WabaEdge::SubscribedApps),
            _ => None,
        }
    }

    fn kind(self) -> FleetKind {
        match self {
            WabaEdge::PhoneNumbers => FleetKind::GraphWabaPhoneNumbers,
            WabaEdge::MessageTemplates => FleetKind::GraphWabaTemplates,
            WabaEdge::SubscribedApps => FleetKind::GraphWabaSubscribedApps,
        }
    }
}

/// `vMAJOR.MINOR`.
fn is_version(text: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    text.strip_prefix('v')
        .and_then(|t| t.split_once('.'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

/// `base + index` written canonically (decimal, no leading zero), `index < count`.
fn id_index(text: &str, base: u64, count: usize) -> Option<usize> {
    let canonical = !text.is_empty()
        && text.len() <= 19
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .and_then(|id| id.checked_sub(base))
        .and_then(|i| usize::try_from(i).ok())
        .filter(|&i| i < count)
}

impl Fleet {
    /// The index of the fleet number `text` names.
    fn number_index(&self, text: &str) -> Option<usize> {
        id_index(text, PHONE_NUMBER_ID_BASE, self.graph_numbers)
    }

    /// `(version, route)` of a path below `/fleet/graph`.
    fn route<'a>(&self, rest: &'a str) -> (Option<&'a str>, Route<'a>) {
        let trimmed = rest.trim_matches('/');
        let mut segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let version = match segments.first() {
            Some(v) if is_version(v) => Some(segments.remove(0)),
            _ => None,
        };
        let shape = &self.shape;
        let route = match segments.as_slice() {
            [] => Route::Ids,
            ["debug_token"] => Route::DebugToken,
            [node] => {
                if let Some(i) = self.number_index(node) {
                    Route::Number(i)
                } else if let Some(w) = id_index(node, WABA_ID_BASE, shape.wabas()) {
                    Route::Waba(w)
                } else {
                    Route::Unknown(node)
                }
            }
            [node, edge] => {
                let waba = id_index(node, WABA_ID_BASE, shape.wabas());
                let business = id_index(node, BUSINESS_ID_BASE, shape.businesses);
                match (waba, WabaEdge::of(edge), business, *edge) {
                    (Some(w), Some(e), _, _) => Route::WabaEdge(w, e),
                    (_, _, Some(b), "owned_whatsapp_business_accounts") => Route::Wabas {
                        business: b,
                        client: false,
                    },
                    (_, _, Some(b), "client_whatsapp_business_accounts") => Route::Wabas {
                        business: b,
                        client: true,
                    },
                    _ => Route::Unknown(node),
                }
            }
            _ => Route::Unknown(trimmed),
        };
        (version, route)
    }

    /// Counts a Graph request: its kind, and the targets it names.
    fn count_graph(&self, route: &Route<'_>, query: &Query) {
        match *route {
            Route::Ids => {
                let ids = query.get("ids").unwrap_or("");
                let named = split_ids(ids)
                    .into_iter()
                    .take(MAX_IDS + 1)
                    .filter_map(|id| self.number_index(id));
                self.count_many(FleetKind::GraphIds, named);
            }
            Route::DebugToken => self.count(FleetKind::GraphDebugToken, None),
            Route::Number(i) => self.count(FleetKind::CloudApi, Some(i)),
            Route::Waba(w) => self.count(FleetKind::GraphWaba, Some(w)),
            Route::WabaEdge(w, edge) => self.count(edge.kind(), Some(w)),
            Route::Wabas { business, client } => {
                let kind = if client {
                    FleetKind::GraphClientWabas
                } else {
                    FleetKind::GraphOwnedWabas
                };
                self.count(kind, Some(business));
            }
            Route::Unknown(_) => self.count(FleetKind::CloudApi, None),
        }
    }

    /// Writes number `i` as the Graph API answers it.
    fn write_number(&self, out: &mut String, i: usize) {
        let t = (super::can_send_index(i) * 3 + super::quality_index(i)) * 2 + super::tier_index(i);
        self.graph[t].write(out, self.shape.number_splice(i));
    }

    /// Writes template `t` of WABA `w`.
    fn write_template(&self, out: &mut String, w: usize, t: usize) {
        let k = t * 2 + usize::from(template_paused(w, t));
        self.templates[k].write(
            out,
            Splice {
                i: w * TEMPLATES_PER_WABA + t,
                waba: Some(w),
                business: None,
            },
        );
    }

    /// The `subscribed_apps` list of WABA `w`.
    fn subscribed_apps(&self, w: usize) -> &'static str {
        if waba_subscribed(w) {
            SUBSCRIBED_APPS
        } else {
            r#"{"data":[]}"#
        }
    }
}

/// `subscribed_apps` of a WABA with the fleet's app subscribed.
const SUBSCRIBED_APPS: &str = concat!(
    r#"{"data":[{"whatsapp_business_api_data":{"id":"634974688087057","#,
    r#""link":"https://example.com","name":"Fleet App"}}]}"#
);

/// The ids of an `ids` value, deduplicated, in order.
fn split_ids(ids: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A Graph error to answer, in the envelope of [`GraphErr`].
#[derive(Debug)]
struct GraphError {
    status: StatusCode,
    code: i64,
    message: String,
}

impl GraphError {
    fn response(&self) -> Response<SimBody> {
        let trace: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(11)
            .collect();
        let body = json!({"error": {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": trace,
        }});
        body_response(
            self.status,
            "application/json",
            Bytes::from(body.to_string()),
        )
    }
}

fn invalid_param(message: &str) -> GraphError {
    GraphError {
        status: StatusCode::BAD_REQUEST,
        code: 100,
        message: message.to_string(),
    }
}

fn nonexisting_field(field: &str, node_type: &str) -> GraphError {
    let field: String = field.chars().take(100).collect();
    invalid_param(&format!(
        "(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"
    ))
}

/// A page size from a `limit`: [`DEFAULT_LIMIT`] without one, at most [`MAX_LIMIT`].
fn page_size(limit: Option<&str>) -> Result<usize, GraphError> {
    match limit.map(str::trim) {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => match l.parse::<usize>() {
            Ok(0) => Err(invalid_param(
                "(#100) Param limit must be a positive number",
            )),
            Ok(n) => Ok(n.min(MAX_LIMIT)),
            Err(_) => Err(invalid_param("(#100) Param limit must be a number")),
        },
    }
}

/// The positions `start..end` of a page of `len` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: usize,
    end: usize,
    len: usize,
}

/// The first page of `len` items, `size` long.
fn first_window(len: usize, size: usize) -> Window {
    Window {
        start: 0,
        end: size.min(len),
        len,
    }
}

/// The page of `len` items after the cursor `after` (or the first), `size` long.
fn window(len: usize, size: usize, after: Option<&str>) -> Result<Window, GraphError> {
    let start = match after {
        None => 0,
        Some(c) => decode_cursor(c)
            .ok_or_else(|| invalid_param("(#100) The cursor is invalid"))?
            .saturating_add(1)
            .min(len),
    };
    Ok(Window {
        start,
        end: start.saturating_add(size).min(len),
        len,
    })
}

/// Writes `{"data":[…],"paging":{…}}`: the items of `win`, with `next` (the link that
/// `next_link` makes of the last item's cursor) when more follow.
fn write_page(
    out: &mut String,
    win: Window,
    mut item: impl FnMut(&mut String, usize),
    next_link: impl FnOnce(&str) -> String,
) {
    out.push_str(r#"{"data":["#);
    for p in win.start..win.end {
        if p > win.start {
            out.push(',');
        }
        item(out, p);
    }
    out.push(']');
    if win.start < win.end {
        let (before, after) = (cursor(win.start), cursor(win.end - 1));
        let _ = write!(
            out,
            r#","paging":{{"cursors":{{"before":"{before}","after":"{after}"}}"#
        );
        if win.end < win.len {
            let link = next_link(&after);
            let _ = write!(
                out,
                r#","next":{}"#,
                serde_json::to_string(&link).unwrap_or_default()
            );
        }
        out.push('}');
    }
    out.push('}');
}

/// The raw query without `after` and `before`, and then `after=cursor`.
fn next_query(raw: &str, cursor: &str) -> String {
    let mut kept: Vec<&str> = raw
        .split('&')
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !p.is_empty() && key != "after" && key != "before"
        })
        .collect();
    let after = format!("after={cursor}");
    kept.push(&after);
    kept.join("&")
}

/// Percent-encodes a query value, keeping what Graph's own links keep readable.
fn encode_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,()".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A WABA field asked for, parsed.
#[derive(Debug)]
enum WabaField<'a> {
    Id,
    Name,
    Health,
    Edge {
        edge: WabaEdge,
        size: usize,
        sub: Option<&'a str>,
    },
}

/// The fields a WABA request asks (`id,name` without `fields`).
fn waba_fields(fields: Option<&str>) -> Result<Vec<WabaField<'_>>, GraphError> {
    let Some(fields) = fields else {
        return Ok(vec![WabaField::Id, WabaField::Name]);
    };
    let mut out = Vec::new();
    for spec in field_specs(fields) {
        let field = match spec.name {
            "id" => WabaField::Id,
            "name" => WabaField::Name,
            "health_status" => WabaField::Health,
            name => match WabaEdge::of(name) {
                Some(edge) => WabaField::Edge {
                    edge,
                    size: page_size(spec.limit)?,
                    sub: spec.sub,
                },
                None => return Err(nonexisting_field(name, "WhatsAppBusinessAccount")),
            },
        };
        out.push(field);
    }
    Ok(out)
}

/// What the request's page links are made of.
struct Link<'a> {
    host: &'a str,
    version: &'a str,
}

impl Fleet {
    /// The WABA node `w` with the fields asked.
    fn waba_body(&self, w: usize, fields: &[WabaField<'_>], link: &Link<'_>) -> Bytes {
        let mut out = String::with_capacity(256 + 700 * self.shape.numbers_per_waba.min(100));
        let id = waba_id(w);
        let _ = write!(out, r#"{{"id":"{id}""#);
        for field in fields {
            match field {
                WabaField::Id => {}
                WabaField::Name => {
                    let _ = write!(out, r#","name":"Fleet WABA {w}""#);
                }
                WabaField::Health => {
                    out.push_str(r#","health_status":"#);
                    let b = self.shape.business_of(w);
                    self.waba_health.write(
                        &mut out,
                        Splice {
                            i: w,
                            waba: Some(w),
                            business: Some(b),
                        },
                    );
                }
                WabaField::Edge { edge, size, sub } => {
                    let name = match edge {
                        WabaEdge::PhoneNumbers => "phone_numbers",
                        WabaEdge::MessageTemplates => "message_templates",
                        WabaEdge::SubscribedApps => "subscribed_apps",
                    };
                    let _ = write!(out, r#","{name}":"#);
                    let next = |c: &str| {
                        let fields = sub.map(|s| format!("fields={}&", encode_value(s)));
                        format!(
                            "http://{}/fleet/graph/{}/{id}/{name}?{}limit={size}&after={c}",
                            link.host,
                            link.version,
                            fields.unwrap_or_default(),
                        )
                    };
                    let win = first_window(self.edge_len(*edge), *size);
                    self.write_edge(&mut out, w, *edge, win, next);
                }
            }
        }
        out.push('}');
        Bytes::from(out)
    }

    /// How many items WABA `w` has on `edge`.
    fn edge_len(&self, edge: WabaEdge) -> usize {
        match edge {
            WabaEdge::PhoneNumbers => self.shape.numbers_per_waba,
            WabaEdge::MessageTemplates => TEMPLATES_PER_WABA,
            WabaEdge::SubscribedApps => 1,
        }
    }

    /// Writes a page of WABA `w`'s `edge` (`subscribed_apps` is always whole).
    fn write_edge(
        &self,
        out: &mut String,
        w: usize,
        edge: WabaEdge,
        win: Window,
        next: impl FnOnce(&str) -> String,
    ) {
        match edge {
            WabaEdge::PhoneNumbers => {
                let first = w * self.shape.numbers_per_waba;
                write_page(out, win, |out, p| self.write_number(out, first + p), next);
            }
            WabaEdge::MessageTemplates => {
                write_page(out, win, |out, t| self.write_template(out, w, t), next);
            }
            WabaEdge::SubscribedApps => out.push_str(self.subscribed_apps(w)),
        }
    }
}

impl Simulator {
    /// Answers a request under `/fleet/graph`; `rest` is the path after it, `host` the
    /// authority the client used (for page links).
    pub(super) fn fleet_graph(
        &self,
        fleet: &Fleet,
        req: &Request<Incoming>,
        rest: &str,
        host: &str,
    ) -> Action {
        let (version, route) = fleet.route(rest);
        let query = Query::parse(req.uri().query());
        fleet.count_graph(&route, &query);
        let token = &self.inner.opts.cloud_api_token;
        let allowed = match authorization(req) {
            Some((scheme, t)) if scheme == "bearer" && !t.is_empty() => {
                t == token || (route == Route::DebugToken && t == FLEET_APP_TOKEN)
            }
            _ => false,
        };
        let action = if !allowed {
            Action::Respond(GraphErr::invalid_token().response())
        } else if req.method() != Method::GET {
            let node = match &route {
                Route::Unknown(node) => node,
                _ => rest.trim_matches('/').rsplit('/').next().unwrap_or(""),
            };
            Action::Respond(GraphErr::unsupported(req.method(), node).response())
        } else {
            let link = Link {
                host,
                version: version.unwrap_or(cloud_api::DEFAULT_VERSION),
            };
            match self.fleet_graph_get(fleet, req, &route, &query, &link) {
                Ok(action) => action,
                Err(e) => Action::Respond(e.response()),
            }
        };
        action.map_response(|resp| {
            for (name, value) in &fleet.usage_headers {
                resp.headers_mut().insert(name.clone(), value.clone());
            }
        })
    }

    /// The answer of an authorised `GET`; `Err` is answered whatever the faults.
    fn fleet_graph_get(
        &self,
        fleet: &Fleet,
        req: &Request<Incoming>,
        route: &Route<'_>,
        query: &Query,
        link: &Link<'_>,
    ) -> Result<Action, GraphError> {
        let graph_fault = cloud_api::fault_reply;
        match *route {
            Route::Number(i) => Ok(answer(
                fleet.fault_now(FleetFamily::Cloud, i),
                || {
                    let mut out = String::with_capacity(1024);
                    fleet.write_number(&mut out, i);
                    Bytes::from(out)
                },
                graph_fault,
            )),
            Route::Waba(w) => {
                let fields = waba_fields(query.get("fields"))?;
                Ok(answer(
                    fleet.fault_now(FleetFamily::Waba, w),
                    || fleet.waba_body(w, &fields, link),
                    graph_fault,
                ))
            }
            Route::WabaEdge(w, edge) => {
                let size = page_size(query.get("limit"))?;
                let len = fleet.edge_len(edge);
                let win = window(len, size, query.get("after"))?;
                let path = req.uri().path();
                let raw = req.uri().query().unwrap_or("");
                Ok(answer(
                    fleet.fault_now(FleetFamily::Waba, w),
                    || {
                        let mut out = String::with_capacity(64 + 700 * (win.end - win.start));
                        let next =
                            |c: &str| format!("http://{}{path}?{}", link.host, next_query(raw, c));
                        fleet.write_edge(&mut out, w, edge, win, next);
                        Bytes::from(out)
                    },
                    graph_fault,
                ))
            }
            Route::Wabas { business, client } => {
                let size = page_size(query.get("limit"))?;
                let win = window(fleet.shape.listed(client), size, query.get("after"))?;
                let mut out = String::with_capacity(64 + 60 * (win.end - win.start));
                let path = req.uri().path();
                let raw = req.uri().query().unwrap_or("");
                write_page(
                    &mut out,
                    win,
                    |out, p| {
                        let w = fleet.shape.listed_waba(business, client, p);
                        let _ = write!(
                            out,
                            r#"{{"id":"{}","name":"Fleet WABA {w}"}}"#,
                            WABA_ID_BASE + w as u64
                        );
                    },
                    |c| format!("http://{}{path}?{}", link.host, next_query(raw, c)),
                );
                Ok(Action::Respond(body_response(
                    StatusCode::OK,
                    "application/json",
                    Bytes::from(out),
                )))
            }
            Route::Ids => {
                let ids = split_ids(query.get("ids").unwrap_or(""));
                if ids.is_empty() {
                    return Err(invalid_param("(#100) The parameter ids is required"));
                }
                if ids.len() > MAX_IDS {
                    return Err(invalid_param(&format!(
                        "(#100) Too many IDs. Maximum: {MAX_IDS}. Provided: {}.",
                        ids.len()
                    )));
                }
                let found: Vec<Option<usize>> =
                    ids.iter().map(|id| fleet.number_index(id)).collect();
                let unknown: Vec<&str> = ids
                    .iter()
                    .zip(&found)
                    .filter(|(_, i)| i.is_none())
                    .map(|(id, _)| *id)
                    .collect();
                if !unknown.is_empty() {
                    let shown: String = unknown.join(",").chars().take(500).collect();
                    return Err(GraphError {
                        status: StatusCode::NOT_FOUND,
                        code: 803,
                        message: format!(
                            "(#803) Some of the aliases you requested do not exist: {shown}"
                        ),
                    });
                }
                let numbers: Vec<usize> = found.into_iter().flatten().collect();
                // One request, one answer: it fails as its first number does.
                let fault = numbers
                    .first()
                    .and_then(|&i| fleet.fault_now(FleetFamily::Cloud, i));
                Ok(answer(
                    fault,
                    || {
                        let mut out = String::with_capacity(8 + 750 * numbers.len());
                        out.push('{');
                        for (n, &i) in numbers.iter().enumerate() {
                            if n > 0 {
                                out.push(',');
                            }
                            let _ = write!(out, r#""{}":"#, PHONE_NUMBER_ID_BASE + i as u64);
                            fleet.write_number(&mut out, i);
                        }
                        out.push('}');
                        Bytes::from(out)
                    },
                    graph_fault,
                ))
            }
            Route::DebugToken => {
                let Some(input) = query.get("input_token") else {
                    return Err(invalid_param(
                        "(#100) The parameter input_token is required",
                    ));
                };
                let body = if !input.is_empty() && input == self.inner.opts.cloud_api_token {
                    fleet.debug_token_body()
                } else {
                    concat!(
                        r#"{"data":{"is_valid":false,"error":{"code":190,"#,
                        r#""message":"Invalid OAuth access token."},"scopes":[]}}"#
                    )
                    .to_string()
                };
                Ok(Action::Respond(body_response(
                    StatusCode::OK,
                    "application/json",
                    Bytes::from(body),
                )))
            }
            Route::Unknown(node) => Ok(Action::Respond(
                GraphErr::unsupported(&Method::GET, node).response(),
            )),
        }
    }
}

impl Fleet {
    /// `debug_token`'s answer for the fleet's token, dated now.
    fn debug_token_body(&self) -> String {
        let now = Utc::now().timestamp();
        format!(
            concat!(
                r#"{{"data":{{"app_id":"{app}","type":"SYSTEM_USER","application":"Fleet App","#,
                r#""data_access_expires_at":{expires},"expires_at":0,"is_valid":true,"#,
                r#""issued_at":{issued},"scopes":["whatsapp_business_management","#,
                r#""whatsapp_business_messaging","business_management"],"#,
                r#""granular_scopes":{granular},"user_id":"{user}"}}}}"#
            ),
            app = FLEET_APP_ID,
            expires = now + 90 * 86_400,
            issued = now - 30 * 86_400,
            granular = self.granular_scopes,
            user = FLEET_SYSTEM_USER_ID,
        )
    }
}

/// `granular_scopes` of the fleet's token: its WABAs and businesses, up to
/// [`MAX_TARGET_IDS`] each.
pub(super) fn granular_scopes(shape: &FleetBusinesses) -> String {
    let ids = |count: usize, id: fn(usize) -> String| -> Option<Vec<String>> {
        (count <= MAX_TARGET_IDS).then(|| (0..count).map(id).collect())
    };
    let wabas = ids(shape.wabas(), waba_id);
    let businesses = ids(shape.businesses, business_id);
    let scope = |name: &str, targets: &Option<Vec<String>>| match targets {
        Some(t) => json!({"scope": name, "target_ids": t}),
        None => json!({"scope": name}),
    };
    json!([
        scope("whatsapp_business_management", &wabas),
        scope("whatsapp_business_messaging", &wabas),
        scope("business_management", &businesses),
    ])
    .to_string()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn fields_are_parsed_at_depth_zero() {
        let specs = field_specs(
            "id,health_status,phone_numbers.limit(100){id,health_status{can_send_message}},\
             message_templates{name}.limit(7),subscribed_apps,id,,x.summary(true)",
        );
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "id",
                "health_status",
                "phone_numbers",
                "message_templates",
                "subscribed_apps",
                "x"
            ]
        );
        assert_eq!(specs[2].limit, Some("100"));
        assert_eq!(specs[2].sub, Some("id,health_status{can_send_message}"));
        assert_eq!(specs[3].limit, Some("7"));
        assert_eq!(specs[3].sub, Some("name"));
        assert_eq!(specs[5].limit, None);
        // Unclosed brackets take the rest.
        assert_eq!(field_specs("a{b,c").len(), 1);
        assert_eq!(field_specs("a.limit(3").len(), 1);
    }

    #[test]
    fn cursors_ids_and_shapes() {
        for p in [0, 1, 99, usize::MAX] {
            assert_eq!(decode_cursor(&cursor(p)), Some(p));
        }
        for bad in ["", "zz", "abc", "00"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert_eq!(id_index(&waba_id(7), WABA_ID_BASE, 8), Some(7));
        assert_eq!(id_index(&waba_id(8), WABA_ID_BASE, 8), None);
        assert_eq!(id_index("0180000000000000", WABA_ID_BASE, 8), None);
        assert_eq!(id_index(&business_id(1), WABA_ID_BASE, 8), None);
        let shape = FleetBusinesses {
            businesses: 3,
            wabas_per_business: 10,
            numbers_per_waba: 4,
        };
        assert_eq!((shape.wabas(), shape.numbers()), (30, 120));
        assert_eq!((shape.listed(false), shape.listed(true)), (8, 2));
        let owned: Vec<usize> = (0..8).map(|p| shape.listed_waba(1, false, p)).collect();
        assert_eq!(owned, [10, 11, 12, 14, 15, 16, 18, 19]);
        let client: Vec<usize> = (0..2).map(|p| shape.listed_waba(1, true, p)).collect();
        assert_eq!(client, [13, 17]);
        assert!(owned.iter().all(|&w| !shape.is_client(w)));
        assert!(client.iter().all(|&w| shape.is_client(w)));
        assert_eq!(shape.waba_of(119), Some(29));
        assert_eq!(shape.waba_of(120), None);
        assert_eq!(shape.business_of(29), 2);
        let big = FleetBusinesses {
            businesses: 5_000,
            wabas_per_business: 1_000,
            numbers_per_waba: 10,
        };
        assert!(matches!(
            big.check(),
            Err(FleetShapeError::TooManyWabas(5_000_000))
        ));
        assert_eq!(big.clipped().businesses, 1_000);
        assert!(big.clipped().check().is_ok());
        let numbers = FleetBusinesses {
            businesses: 2,
            wabas_per_business: 1_000,
            numbers_per_waba: 10_000,
        };
        assert!(matches!(
            numbers.check(),
            Err(FleetShapeError::TooManyNumbers(_))
        ));
        assert_eq!(numbers.clipped().businesses, 1);
        assert!(FleetBusinesses::default().check().is_ok());
    }

    #[test]
    fn next_links_keep_the_query_but_the_cursors() {
        assert_eq!(
            next_query("fields=id,name&limit=2&after=xx&before=yy", "cc"),
            "fields=id,name&limit=2&after=cc"
        );
        assert_eq!(next_query("", "cc"), "after=cc");
        assert_eq!(
            encode_value("id,health_status{a b}"),
            "id,health_status%7Ba%20b%7D"
        );
        assert!(is_version("v24.0") && !is_version("v24") && !is_version("24.0"));
    }
}
