//! A built-in simulator of the WhatsApp Business APIs the exporter polls.
//!
//! `whatsapp-exporter simulate` serves it alone, `whatsapp-exporter demo` runs it beside the
//! exporter in one process, and integration tests start it in-process on `127.0.0.1:0`.
//!
//! This module holds the HTTP server, the routing and the machinery every simulated API
//! shares (authentication, rate limiting, fault injection, request counters);
//! [`onprem`] holds the On-Premises API clusters, their payloads and the scripted scenario;
//! [`meta`] holds Meta's Cloud API state (one WABA, its numbers and templates, their
//! health) that [`cloud_api`] (Meta's Graph API), [`dialog360`] and [`kapso`] serve.
//!
//! # Routes
//!
//! Every API is served by the same server under a path prefix, so that a target's
//! `base_url` is one of:
//!
//! | API | base URL | handle |
//! |---|---|---|
//! | On-Premises, one instance | `http://ADDR/single` | [`SimulatorHandle::base_url`] |
//! | On-Premises, high availability | `http://ADDR/ha` | [`SimulatorHandle::base_url`] |
//! | On-Premises, multiconnect | `http://ADDR/multiconnect` | [`SimulatorHandle::base_url`] |
//! | Meta Graph API | `http://ADDR/graph` | [`SimulatorHandle::cloud_api_base_url`] |
//! | 360dialog | `http://ADDR/360dialog` | [`SimulatorHandle::dialog360_base_url`] |
//! | Kapso | `http://ADDR/kapso` | [`SimulatorHandle::kapso_base_url`] |
//! | Kapso Platform API | `http://ADDR/kapso/platform/v1` | [`SimulatorHandle::kapso_platform_base_url`] |
//!
//! The On-Premises routes:
//!
//! | route | method | accepted `Authorization` |
//! |---|---|---|
//! | `/{cluster}/v1/health` | `GET` | `Apikey <api_key>` or `Bearer <token>` |
//! | `/{cluster}/v1/support` | `GET` | `Bearer <token>` |
//! | `/{cluster}/v1/users/login` | `POST` | `Basic base64(username:password)` |
//!
//! The Cloud API routes, their credentials, errors, paging and usage headers are documented
//! in [`cloud_api`], [`dialog360`] and [`kapso`]:
//!
//! | route | method | credentials |
//! |---|---|---|
//! | `/graph/{version}/{node_id}?fields=…` | `GET` | `Authorization: Bearer <cloud_api_token>` |
//! | `/graph/{version}/{waba_id}/phone_numbers` | `GET` | `Authorization: Bearer <cloud_api_token>` |
//! | `/graph/{version}/{waba_id}/message_templates` | `GET` | `Authorization: Bearer <cloud_api_token>` |
//! | `/360dialog/health_status` | `GET` | `D360-API-KEY: <channel key>` |
//! | `/kapso/api/v1/whatsapp_configs/{config_id}/health` | `GET` | `X-API-Key: <kapso_api_key>` |
//! | `/kapso/platform/v1/whatsapp/phone_numbers` | `GET` | `X-API-Key: <kapso_api_key>` |
//! | `/kapso/platform/v1/whatsapp/phone_numbers/{phone_number_id}/health` | `GET` | `X-API-Key: <kapso_api_key>` |
//!
//! Authentication schemes are matched case-insensitively. A login answers
//! `{"users":[{"token":"…","expires_after":"YYYY-MM-DD HH:MM:SS+00:00"}],"meta":{…}}`; the
//! token is valid on that cluster for [`SimulatorOptions::token_ttl`] or until
//! [`Simulator::revoke_tokens`]. Every On-Premises answer carries
//! `"meta":{"version":"v2.53.2","api_status":"stable"}` ([`Simulator::set_api_status`]).
//!
//! # Order of checks
//!
//! For every On-Premises request on a known route: the request is counted
//! ([`Simulator::requests`]), then the method is checked (405), then the cluster's rate
//! limit (429, `Retry-After: 1`), then the credentials (401), and only then an injected
//! [`Fault`] replaces or damages the answer. Unknown paths answer 404. Every failure uses
//! the On-Premises envelope `{"errors":[{"code":…,"title":"…","details":"…"}],"meta":{…}}`:
//!
//! | status | code | title |
//! |---|---|---|
//! | 401 | 1005 | `Access denied` |
//! | 404 | 1006 | `Resource not found` |
//! | 405 | 1000 | `Method not allowed` |
//! | 429 | 1015 | `Too many requests` |
//! | 503 | 1016 | `System overloaded` |
//!
//! The Cloud API routes check in their own order, answer in their own error envelopes and
//! are not subject to [`SimulatorOptions::rate_limit`] (see [`cloud_api`] and
//! [`dialog360`], [`kapso`]). The same [`Fault`]s apply to them, in each API's words.
//!
//! # State
//!
//! The initial state is fixed and documented in [`onprem`] (node keys, roles, statuses,
//! free space, schema versions, …) and in [`meta`] (ids, numbers, templates, health,
//! Kapso configs, usage). The default credentials are [`SimulatorOptions::default`]'s:
//!
//! | API | credential | default |
//! |---|---|---|
//! | On-Premises | API key / login | `sim-api-key-0123456789` / `admin`:`sim-password-1` |
//! | Graph API | bearer token | `sim-graph-token-0123456789` ([`cloud_api::CLOUD_API_TOKEN`]) |
//! | 360dialog | channel keys | `sim-360-key-0001` … `0003` ([`dialog360::DIALOG360_API_KEYS`]) |
//! | Kapso | API key | `sim-kapso-key-0123456789` ([`kapso::KAPSO_API_KEY`]) |
//! | Kapso | config ids | `kapso-config-1` … `3` ([`kapso::KAPSO_CONFIG_IDS`]) |
//!
//! [`Simulator::step`] plays the scripted scenario one step further (On-Premises and Cloud
//! API together, [`SCENARIO_LEN`] steps per cycle), and [`SimulatorOptions::auto_step`]
//! makes the server do so on a timer. The On-Premises setters (`set_*` taking a
//! [`Cluster`]) take a node selector: on the single instance every selector names the
//! instance; on `ha`/`multiconnect` `None` names every node and `Some(key)` one node.
//! Selectors naming no node are ignored. The Cloud API setters name numbers, templates,
//! 360dialog keys and Kapso configs by id; ids naming nothing are ignored too, and every
//! value is taken as is, documented or not.

pub mod cloud_api;
pub mod dialog360;
pub mod fleet;
pub mod kapso;
pub mod meta;
pub mod onprem;
pub mod webhook_sender;

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod meta_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use fleet::{fleet_config, FleetFault, FleetFaults, FleetKind};
pub use onprem::{
    FREE_SPACE_UNLIMITED, HA_NODES, META_VERSION, MULTICONNECT_NODES, SCENARIO_LEN, SINGLE_VERSION,
    VERSION,
};

/// Most connections served at once; further ones wait to be accepted.
const MAX_CONNECTIONS: usize = 512;
/// How long a connection may take to send its request head. hyper counts idle keep-alive
/// time too, so this is longer than reqwest's 90 s pool idle timeout: the client closes an
/// idle connection before the server does, and never sends on one being closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// How long in-flight answers get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Largest body [`Fault::OversizedBody`] builds (256 MiB).
const MAX_OVERSIZED_BODY: usize = 256 << 20;
/// How long a [`Fault::Truncated`] answer waits after its first half before the connection
/// is cut, so that the first half is flushed to the client.
const TRUNCATE_DELAY: Duration = Duration::from_millis(20);
/// Largest body [`Fault::HugeJson`] sends (1 GiB).
const MAX_HUGE_JSON: usize = 1 << 30;
/// Most brackets of each kind [`Fault::DeepNesting`] sends.
const MAX_NESTING: usize = 64 << 20;
/// Size of each chunk of a [`Fault::HugeJson`] body.
const HUGE_JSON_CHUNK: usize = 64 << 10;

/// How the simulator is set up. Fixed for the simulator's lifetime.
#[derive(Clone)]
pub struct SimulatorOptions {
    /// Accepted as `Authorization: Apikey <api_key>` on `/v1/health` (12..128 characters).
    pub api_key: String,
    /// The login user.
    pub username: String,
    /// The login password.
    pub password: String,
    /// How long a token from `/v1/users/login` stays valid.
    pub token_ttl: Duration,
    /// When set, the server calls [`Simulator::step`] at this period.
    pub auto_step: Option<Duration>,
    /// Per-cluster request rate limit; `None` disables it. On-Premises routes only.
    pub rate_limit: Option<RateLimit>,
    /// Accepted as `Authorization: Bearer <cloud_api_token>` on the Graph API.
    pub cloud_api_token: String,
    /// How long after the simulator starts its Graph token expires, as `debug_token` tells
    /// (`None`: never, Graph's `expires_at` 0). A few days by default
    /// ([`cloud_api::TOKEN_LIFETIME`]), so the demo shows a token about to expire.
    pub cloud_api_token_lifetime: Option<Duration>,
    /// Largest page of the Graph API edges (`phone_numbers`, `message_templates`); a page
    /// holds `min(limit, cloud_api_page_size)` items. 0 counts as 1.
    pub cloud_api_page_size: usize,
    /// 360dialog channel keys (`D360-API-KEY`): the n-th key serves the n-th number of
    /// [`meta::PHONE_NUMBER_IDS`]; keys past the third are ignored.
    pub dialog360_api_keys: Vec<String>,
    /// When set, a 360dialog channel answers 400 to a request that comes sooner than this
    /// after its last accepted one.
    pub dialog360_min_interval: Option<Duration>,
    /// Accepted as `X-API-Key` on the Kapso API.
    pub kapso_api_key: String,
    /// Kapso WhatsApp config ids: the n-th id is tied to the n-th number of
    /// [`meta::PHONE_NUMBER_IDS`]; ids past the third are ignored.
    pub kapso_config_ids: Vec<String>,
    /// Largest page of the Kapso Platform API's phone number listing; a page holds
    /// `min(per_page, kapso_page_size)` items. 0 counts as 1.
    pub kapso_page_size: usize,
    /// When above 0, also serve a fleet of this many On-Premises instances and Cloud API
    /// numbers under `/fleet` (see [`fleet`]).
    pub fleet: usize,
    /// Which fleet targets fail, and how (see [`fleet::FleetFaults`]); none by default.
    pub fleet_faults: fleet::FleetFaults,
    /// Businesses, WABAs and numbers of the fleet's Graph API (see
    /// [`fleet::FleetBusinesses`]); with businesses, the fleet is served even without
    /// [`SimulatorOptions::fleet`]. None by default.
    pub fleet_businesses: fleet::FleetBusinesses,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            api_key: "sim-api-key-0123456789".to_string(),
            username: "admin".to_string(),
            password: "sim-password-1".to_string(),
            token_ttl: Duration::from_secs(7 * 24 * 3600),
            auto_step: None,
            rate_limit: Some(RateLimit::default()),
            cloud_api_token: cloud_api::CLOUD_API_TOKEN.to_string(),
            cloud_api_token_lifetime: Some(cloud_api::TOKEN_LIFETIME),
            cloud_api_page_size: cloud_api::GRAPH_PAGE_SIZE,
            dialog360_api_keys: dialog360::DIALOG360_API_KEYS.map(str::to_string).to_vec(),
            dialog360_min_interval: None,
            kapso_api_key: kapso::KAPSO_API_KEY.to_string(),
            kapso_config_ids: kapso::KAPSO_CONFIG_IDS.map(str::to_string).to_vec(),
            kapso_page_size: kapso::KAPSO_PAGE_SIZE,
            fleet: 0,
            fleet_faults: fleet::FleetFaults::default(),
            fleet_businesses: fleet::FleetBusinesses::default(),
        }
    }
}

impl fmt::Debug for SimulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorOptions")
            .field("api_key", &"<secret>")
            .field("username", &self.username)
            .field("password", &"<secret>")
            .field("token_ttl", &self.token_ttl)
            .field("auto_step", &self.auto_step)
            .field("rate_limit", &self.rate_limit)
            .field("cloud_api_token", &"<secret>")
            .field("cloud_api_token_lifetime", &self.cloud_api_token_lifetime)
            .field("cloud_api_page_size", &self.cloud_api_page_size)
            .field(
                "dialog360_api_keys",
                &format_args!("<{} secrets>", self.dialog360_api_keys.len()),
            )
            .field("dialog360_min_interval", &self.dialog360_min_interval)
            .field("kapso_api_key", &"<secret>")
            .field("kapso_config_ids", &self.kapso_config_ids)
            .field("kapso_page_size", &self.kapso_page_size)
            .field("fleet", &self.fleet)
            .field("fleet_faults", &self.fleet_faults)
            .field("fleet_businesses", &self.fleet_businesses)
            .finish()
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Largest burst (the bucket's size).
    pub burst: u32,
}

impl Default for RateLimit {
    /// The On-Premises limit of every endpoint but messages: 20/s, bursts to 60.
    fn default() -> Self {
        RateLimit {
            per_second: 20,
            burst: 60,
        }
    }
}

/// One simulated On-Premises installation, served under `/{as_str()}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cluster {
    /// One instance.
    Single,
    /// High availability: two masters and one Coreapp.
    Ha,
    /// Multiconnect: two masters and two Coreapps owning one shard each.
    Multiconnect,
}

impl Cluster {
    /// Every cluster.
    pub const ALL: [Cluster; 3] = [Cluster::Single, Cluster::Ha, Cluster::Multiconnect];

    /// The path prefix: `single`, `ha` or `multiconnect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cluster::Single => "single",
            Cluster::Ha => "ha",
            Cluster::Multiconnect => "multiconnect",
        }
    }

    fn index(self) -> usize {
        match self {
            Cluster::Single => 0,
            Cluster::Ha => 1,
            Cluster::Multiconnect => 2,
        }
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cluster {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cluster::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

/// A name that is not a [`Cluster`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown simulator cluster {0:?} (expected single, ha or multiconnect)")]
pub struct UnknownName(pub String);

/// One simulated endpoint of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v1/health`.
    Health,
    /// `GET /v1/support`.
    Support,
    /// `POST /v1/users/login`.
    Login,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 3] = [Endpoint::Health, Endpoint::Support, Endpoint::Login];

    /// The path below the cluster prefix, e.g. `/v1/health`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Health => "/v1/health",
            Endpoint::Support => "/v1/support",
            Endpoint::Login => "/v1/users/login",
        }
    }

    /// The one method the endpoint answers.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Login => Method::POST,
            Endpoint::Health | Endpoint::Support => Method::GET,
        }
    }

    fn index(self) -> usize {
        match self {
            Endpoint::Health => 0,
            Endpoint::Support => 1,
            Endpoint::Login => 2,
        }
    }
}

/// Faults injected per cluster+endpoint, for the exporter's bad-input tests.
///
/// A fault applies, after the method, rate-limit and credential checks, to every request
/// of its cluster and endpoint until it is cleared with `set_fault(.., None)`.
/// For the login endpoint the "field" faults damage `users[0].token`
/// (missing, `null`, and `expires_after` `never` for [`Fault::UnknownValue`]).
///
/// The same faults apply to the Cloud API routes ([`Simulator::set_cloud_api_fault`],
/// [`Simulator::set_dialog360_fault`], [`Simulator::set_kapso_fault`]); the field faults,
/// the error envelope, 429 and 503 then take each API's shape (tables in [`cloud_api`],
/// [`dialog360`] and [`kapso`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 200 with a body that is not JSON (the first `:` of the payload removed).
    MalformedJson,
    /// 200 announcing the whole body's `Content-Length`, sending its first half, then
    /// closing the connection.
    Truncated,
    /// The normal JSON payload, as `text/html`.
    WrongContentType,
    /// Health without `gateway_status`; support without `socket_conn`; login without the token.
    MissingField,
    /// `gateway_status: null` (health), `socket_conn: null` (support), `token: null` (login).
    NullField,
    /// 200 `application/json` with an empty body.
    EmptyBody,
    /// The errors envelope with this status, code and title (the API's own envelope on the
    /// Cloud API routes). A status outside 200..=999 becomes 500.
    ErrorEnvelope {
        /// HTTP status.
        status: u16,
        /// `errors[0].code`.
        code: i64,
        /// `errors[0].title`.
        title: String,
    },
    /// This status with a small HTML page, as a load balancer in front would answer.
    /// A status outside 200..=999 becomes 500.
    Status(u16),
    /// 429 with the errors envelope and, when given, this `Retry-After` header.
    TooManyRequests {
        /// `Retry-After` value, sent as is when it is a valid header value.
        retry_after: Option<String>,
    },
    /// 503 with the errors envelope and, when given, this `Retry-After` header.
    ServiceUnavailable {
        /// `Retry-After` value, sent as is when it is a valid header value.
        retry_after: Option<String>,
    },
    /// Never answers; the request ends when the client drops the connection or the server
    /// shuts down (then the connection is closed without an answer).
    Hang,
    /// The normal answer, after this delay.
    Slow(Duration),
    /// The normal payload padded (a `padding` string field) to exactly this many bytes, at
    /// most 256 MiB; a size below the normal payload's leaves it as is.
    OversizedBody(usize),
    /// Values outside the documented sets: health `gateway_status` `rebooting`, support
    /// `socket_conn` `XYZ`, login `expires_after` `never`.
    UnknownValue,
    /// One item of an answer odd, the rest normal: On-Premises health's first cluster node
    /// a bare string instead of an object, support's first node's `free_space_logs` a
    /// string (the single instance answers normally); on the Graph API, the first entity
    /// of a `health_status` without its `id`. Logins and Kapso answer normally.
    OddItem,
    /// 200 with the normal payload sent chunked (no `Content-Length`): its first half, then
    /// the connection is reset (TCP RST).
    Reset,
    /// The normal answer, its headers at once and its body one byte every this long.
    Drip(Duration),
    /// The normal payload with two bytes that are not UTF-8 (`0xFF 0xFE`) at the start of
    /// its first string.
    InvalidUtf8,
    /// 200 with this many `[` then as many `]` (at most 64 Mi of each): valid JSON nested
    /// deeper than any parser should follow.
    DeepNesting(usize),
    /// 200 with a JSON array `[0,0,…,0]` of about this many bytes (at most 1 GiB), sent
    /// chunked without `Content-Length` and generated as it is sent.
    HugeJson(usize),
    /// `302 Found` to this `Location` (sent as is when it is a valid header value).
    Redirect(String),
}

/// One kind of simulated Graph API request, for faults and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloudApiEndpoint {
    /// `GET /{version}/{phone_number_id}`.
    PhoneNumber,
    /// `GET /{version}/{waba_id}`.
    Waba,
    /// `GET /{version}/{template_id}`.
    Template,
    /// `GET /{version}/{waba_id}/phone_numbers`.
    PhoneNumbers,
    /// `GET /{version}/{waba_id}/message_templates`.
    MessageTemplates,
    /// `GET /{version}/{waba_id}/subscribed_apps`.
    SubscribedApps,
    /// `GET /{version}/{business_id}/owned_whatsapp_business_accounts` and
    /// `client_whatsapp_business_accounts`.
    BusinessWabas,
    /// `GET /{version}/?ids=a,b,…` (a multi-id lookup of phone numbers).
    Ids,
    /// `GET /{version}/debug_token?input_token=…`.
    DebugToken,
}

/// How many kinds of Graph API request the simulator tells apart.
const CLOUD_API_KINDS: usize = CloudApiEndpoint::ALL.len();

impl CloudApiEndpoint {
    /// Every kind.
    pub const ALL: [CloudApiEndpoint; 9] = [
        CloudApiEndpoint::PhoneNumber,
        CloudApiEndpoint::Waba,
        CloudApiEndpoint::Template,
        CloudApiEndpoint::PhoneNumbers,
        CloudApiEndpoint::MessageTemplates,
        CloudApiEndpoint::SubscribedApps,
        CloudApiEndpoint::BusinessWabas,
        CloudApiEndpoint::Ids,
        CloudApiEndpoint::DebugToken,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A fault injected on one kind of Graph API request ([`Simulator::set_cloud_api_fault`]).
///
/// It applies, after the token, usage and method checks, to every request of its kind that
/// names a known node, until cleared with `set_cloud_api_fault(.., None)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloudApiFault {
    /// A fault every simulated API shares, in Graph API words (see [`cloud_api`]).
    Fault(Fault),
    /// `{"error":{"message","type":"OAuthException","code","is_transient","fbtrace_id"}}`
    /// with this HTTP status (outside 200..=999: 500), e.g. 401/190 token expired, 400/4
    /// app rate limit, 503/2 temporary downtime.
    GraphError {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: i64,
        /// `error.message`.
        message: String,
    },
}

impl From<Fault> for CloudApiFault {
    fn from(fault: Fault) -> Self {
        CloudApiFault::Fault(fault)
    }
}

/// The simulator: cheap to clone, every clone drives the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("options", &self.inner.opts)
            .field("started_at", &self.inner.started_at)
            .finish_non_exhaustive()
    }
}

struct Inner {
    opts: SimulatorOptions,
    started_at: DateTime<Utc>,
    state: Mutex<State>,
    /// `[cluster][endpoint]`.
    requests: [[AtomicU64; 3]; 3],
    logins: [AtomicU64; 3],
    /// By [`CloudApiEndpoint::index`].
    cloud_api_requests: [AtomicU64; CLOUD_API_KINDS],
    dialog360_requests: AtomicU64,
    kapso_requests: AtomicU64,
    kapso_platform_requests: AtomicU64,
    /// With [`SimulatorOptions::fleet`] above 0.
    fleet: Option<fleet::Fleet>,
}

struct State {
    clusters: [onprem::ClusterState; 3],
    api_status: String,
    steps: u64,
    /// `[cluster][endpoint]`.
    faults: [[Option<Fault>; 3]; 3],
    /// Per cluster: token -> expiry (`None`: a lifetime too long to represent).
    tokens: [HashMap<String, Option<Instant>>; 3],
    buckets: [Bucket; 3],
    cloud: meta::MetaState,
    /// By [`CloudApiEndpoint::index`].
    cloud_api_faults: [Option<CloudApiFault>; CLOUD_API_KINDS],
    /// Per number (360dialog channel), in the order of [`meta::PHONE_NUMBER_IDS`].
    dialog360_faults: Vec<Option<Fault>>,
    /// Per number, when its 360dialog channel last passed the rate limit.
    dialog360_last: Vec<Option<Instant>>,
    /// Per number (Kapso config, and the number's health on the Platform API).
    kapso_faults: Vec<Option<Fault>>,
    /// Every request of the Kapso Platform API.
    kapso_platform_fault: Option<CloudApiFault>,
    /// Whether the Platform API's listing ends with an item without an id.
    kapso_item_without_id: bool,
}

fn initial_clusters(started_at: DateTime<Utc>) -> [onprem::ClusterState; 3] {
    Cluster::ALL.map(|c| onprem::ClusterState::initial(c, started_at))
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Set on first use, so the bucket starts full whatever the limit.
    primed: bool,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            tokens: 0.0,
            last: Instant::now(),
            primed: false,
        }
    }

    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let burst = f64::from(limit.burst);
        if !self.primed {
            self.primed = true;
            self.tokens = burst;
        } else {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * f64::from(limit.per_second)).min(burst);
        }
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Simulator {
    /// A simulator in the documented initial state.
    pub fn new(opts: SimulatorOptions) -> Self {
        let len = opts.api_key.chars().count();
        if !(12..=128).contains(&len) {
            tracing::warn!(
                len,
                "simulator api_key should have 12 to 128 characters, as the Webapp requires"
            );
        }
        let started_at = Utc::now();
        let state = State {
            clusters: initial_clusters(started_at),
            api_status: "stable".to_string(),
            steps: 0,
            faults: Default::default(),
            tokens: Default::default(),
            buckets: [Bucket::new(); 3],
            cloud: meta::MetaState::initial(),
            cloud_api_faults: Default::default(),
            dialog360_faults: vec![None; meta::PHONE_NUMBER_IDS.len()],
            dialog360_last: vec![None; meta::PHONE_NUMBER_IDS.len()],
            kapso_faults: vec![None; meta::PHONE_NUMBER_IDS.len()],
            kapso_platform_fault: None,
            kapso_item_without_id: false,
        };
        let fleet = (opts.fleet > 0 || opts.fleet_businesses.businesses > 0).then(|| {
            fleet::Fleet::new(
                opts.fleet,
                opts.fleet_businesses,
                started_at,
                opts.fleet_faults.clone(),
            )
        });
        Simulator {
            inner: Arc::new(Inner {
                opts,
                started_at,
                state: Mutex::new(state),
                requests: Default::default(),
                logins: Default::default(),
                cloud_api_requests: Default::default(),
                dialog360_requests: AtomicU64::new(0),
                kapso_requests: AtomicU64::new(0),
                kapso_platform_requests: AtomicU64::new(0),
                fleet,
            }),
        }
    }

    /// The options the simulator was built with.
    pub fn options(&self) -> &SimulatorOptions {
        &self.inner.opts
    }

    /// When the simulator was created (`expire_timestamp` counts from it).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// The `Authorization` header value that logs in: `Basic base64(username:password)`.
    pub fn basic_authorization(&self) -> String {
        let o = &self.inner.opts;
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", o.username, o.password).as_bytes())
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_nodes(&self, cluster: Cluster, node: Option<&str>, f: impl Fn(&mut onprem::Node)) {
        let mut state = self.lock();
        let mut matched = false;
        for n in state.clusters[cluster.index()].select(node) {
            matched = true;
            f(n);
        }
        if !matched {
            tracing::debug!(%cluster, ?node, "simulator: no such node");
        }
    }

    /// Serves on `listener` until `shutdown` resolves, then lets in-flight answers finish
    /// (for at most 2 s) and returns once every connection is closed.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let (notify_shutdown, shutdown_rx) = watch::channel(false);
        let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel::<()>(1);

        if let Some(period) = self.inner.opts.auto_step {
            if period.is_zero() {
                tracing::warn!("simulator auto_step of zero ignored");
            } else {
                let sim = self.clone();
                let mut rx = shutdown_rx.clone();
                let done = shutdown_complete_tx.clone();
                tokio::spawn(async move {
                    let _done = done;
                    // `sleep` saturates a huge period instead of overflowing.
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(period) => sim.step(),
                            _ = wait_shutdown(&mut rx) => break,
                        }
                    }
                });
            }
        }

        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::select! {
            _ = self.accept_loop(&listener, &limit, &shutdown_rx, &shutdown_complete_tx) => {}
            _ = shutdown => {
                tracing::debug!("simulator shutting down");
            }
        }

        // Tell every task, then wait for all of them to drop their `shutdown_complete` sender.
        let _ = notify_shutdown.send(true);
        drop(shutdown_rx);
        drop(shutdown_complete_tx);
        let _ = shutdown_complete_rx.recv().await;
        Ok(())
    }

    async fn accept_loop(
        &self,
        listener: &TcpListener,
        limit: &Arc<Semaphore>,
        shutdown_rx: &watch::Receiver<bool>,
        shutdown_complete: &mpsc::Sender<()>,
    ) {
        loop {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let (stream, local) = match listener.accept().await {
                Ok((stream, _)) => {
                    let local = stream.local_addr().ok();
                    (stream, local)
                }
                Err(e) => {
                    // EMFILE and the like pass; back off a little.
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let inner = self.inner.clone();
            let mut rx = shutdown_rx.clone();
            let done = shutdown_complete.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _done = done;
                let service_rx = rx.clone();
                let stream = ResettableStream {
                    inner: stream,
                    reset: Arc::new(AtomicBool::new(false)),
                };
                let reset = Arc::clone(&stream.reset);
                let service = service_fn(move |req| {
                    let sim = Simulator {
                        inner: inner.clone(),
                    };
                    let rx = service_rx.clone();
                    let reset = Arc::clone(&reset);
                    async move { sim.handle(req, rx, local, reset).await }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    res = conn.as_mut() => {
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "simulator connection ended");
                        }
                    }
                    _ = wait_shutdown(&mut rx) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
                    }
                }
            });
        }
    }

    /// Binds `addr` (`127.0.0.1:0` when empty), spawns [`Simulator::run`] on the current
    /// tokio runtime and returns a handle. Dropping the handle also stops the server.
    pub async fn spawn(self, addr: &str) -> io::Result<SimulatorHandle> {
        let addr = if addr.is_empty() { "127.0.0.1:0" } else { addr };
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let simulator = self.clone();
        let task = tokio::spawn(self.run(listener, async move {
            let _ = rx.await;
        }));
        tracing::info!(addr = %local, "simulator listening");
        Ok(SimulatorHandle {
            addr: local,
            simulator,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Plays the next step of the scripted scenario (see [`onprem`] and [`meta`]).
    pub fn step(&self) {
        let mut state = self.lock();
        state.steps = state.steps.wrapping_add(1);
        let step = state.steps.wrapping_sub(1) % SCENARIO_LEN + 1;
        onprem::apply_step(&mut state.clusters, step);
        meta::apply_step(&mut state.cloud, step);
        tracing::debug!(step, "simulator scenario step");
    }

    /// How many times [`Simulator::step`] ran.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Back to the documented initial state (nodes, statuses, api_status, Cloud API state
    /// and usage, step count). Faults, tokens, the 360dialog rate-limit clocks and counters
    /// are left alone.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.clusters = initial_clusters(self.inner.started_at);
        state.cloud = meta::MetaState::initial();
        state.api_status = "stable".to_string();
        state.steps = 0;
    }

    /// The node keys a cluster currently has (empty string for the single instance).
    pub fn node_keys(&self, cluster: Cluster) -> Vec<String> {
        self.lock().clusters[cluster.index()]
            .nodes
            .iter()
            .map(|n| n.key.clone())
            .collect()
    }

    /// Sets `gateway_status` (any string, documented or not).
    pub fn set_gateway_status(&self, cluster: Cluster, node: Option<&str>, status: &str) {
        self.with_nodes(cluster, node, |n| n.gateway_status = status.to_string());
    }

    /// Makes nodes answer `{"errors":[{code, title, details}]}` in place of their
    /// `gateway_status` in `/v1/health` (as a coreapp that is not ready does: 1011
    /// "Service not ready"), or with `None` answer their status again.
    pub fn set_node_error(&self, cluster: Cluster, node: Option<&str>, error: Option<(i64, &str)>) {
        let error = error.map(|(code, title)| (code, title.to_owned()));
        self.with_nodes(cluster, node, |n| n.health_error = error.clone());
    }

    /// Sets a node's `role`; ignored on the single instance, which has none.
    pub fn set_role(&self, cluster: Cluster, node: &str, role: &str) {
        if cluster == Cluster::Single {
            return;
        }
        self.with_nodes(cluster, Some(node), |n| n.role = Some(role.to_string()));
    }

    /// Sets `socket_conn` (any string, documented or not).
    pub fn set_socket_conn(&self, cluster: Cluster, node: Option<&str>, state: &str) {
        self.with_nodes(cluster, node, |n| n.socket_conn = state.to_string());
    }

    /// Sets `free_space_<volume>`; `volume` is `data`, `logs`, `media_incoming` or
    /// `media_outgoing` (the `free_space_` prefix may be included). Unknown volumes are
    /// ignored.
    pub fn set_free_space(&self, cluster: Cluster, node: Option<&str>, volume: &str, bytes: u64) {
        let Some(i) = onprem::volume_index(volume) else {
            tracing::warn!(volume, "simulator: unknown volume");
            return;
        };
        self.with_nodes(cluster, node, |n| n.free_space[i] = bytes);
    }

    /// Skews the node's clock (`device_iso8601`) by this many seconds (negative: behind).
    pub fn set_clock_skew(&self, cluster: Cluster, node: Option<&str>, skew_seconds: i64) {
        self.with_nodes(cluster, node, |n| n.clock_skew_secs = skew_seconds);
    }

    /// Sets a schema table's version (`axolotl`, `callback`, `cluster`, `config`, `contact`,
    /// `jobqueue`, `message`); unknown tables are ignored.
    pub fn set_schema_version(
        &self,
        cluster: Cluster,
        node: Option<&str>,
        table: &str,
        version: u64,
    ) {
        let Some(i) = onprem::schema_index(table) else {
            tracing::warn!(table, "simulator: unknown schema table");
            return;
        };
        self.with_nodes(cluster, node, |n| n.schema[i] = version);
    }

    /// Sets the build `version` (and so `description`) of nodes.
    pub fn set_version(&self, cluster: Cluster, node: Option<&str>, version: &str) {
        self.with_nodes(cluster, node, |n| n.version = version.to_string());
    }

    /// Sets `expire_timestamp` of nodes (sent whole seconds, without zone).
    pub fn set_expire_timestamp(&self, cluster: Cluster, node: Option<&str>, at: DateTime<Utc>) {
        let at = at.naive_utc();
        self.with_nodes(cluster, node, |n| n.expire_timestamp = at);
    }

    /// Sets `meta.api_status` of every answer (`deprecated`, `experimental`, `stable`, or
    /// anything else).
    pub fn set_api_status(&self, status: &str) {
        self.lock().api_status = status.to_string();
    }

    /// Removes a node from health and support; ignored on the single instance.
    pub fn remove_node(&self, cluster: Cluster, node: &str) {
        if !self.lock().clusters[cluster.index()].remove(node) {
            tracing::debug!(%cluster, node, "simulator: no node removed");
        }
    }

    /// Adds `count` Coreapp nodes to a cluster (ignored on the single instance), for
    /// answers with thousands of nodes: keys `wa-extra-{n}:{n as 12 hex digits}`, the rest
    /// copied from the cluster's last node. [`Simulator::reset`] removes them.
    pub fn add_nodes(&self, cluster: Cluster, count: usize) {
        if !self.lock().clusters[cluster.index()].add_nodes(count) {
            tracing::debug!(%cluster, "simulator: no nodes added");
        }
    }

    /// Injects (or with `None` clears) a fault on one endpoint of one cluster.
    pub fn set_fault(&self, cluster: Cluster, endpoint: Endpoint, fault: Option<Fault>) {
        self.lock().faults[cluster.index()][endpoint.index()] = fault;
    }

    /// Revokes every token of a cluster (as a logout or a removed user would).
    pub fn revoke_tokens(&self, cluster: Cluster) {
        self.lock().tokens[cluster.index()].clear();
    }

    /// Requests received on a cluster's endpoint, rejected ones (405, 429, 401) included.
    pub fn requests(&self, cluster: Cluster, endpoint: Endpoint) -> u64 {
        self.inner.requests[cluster.index()][endpoint.index()].load(Ordering::Relaxed)
    }

    /// Tokens issued by a cluster's login (successful logins).
    pub fn logins(&self, cluster: Cluster) -> u64 {
        self.inner.logins[cluster.index()].load(Ordering::Relaxed)
    }

    fn with_number(&self, number_id: &str, f: impl FnOnce(&mut meta::PhoneNumber)) {
        match self.lock().cloud.number_mut(number_id) {
            Some(n) => f(n),
            None => tracing::debug!(number_id, "simulator: no such phone number"),
        }
    }

    fn with_template(&self, template_id: &str, f: impl FnOnce(&mut meta::Template)) {
        match self.lock().cloud.template_mut(template_id) {
            Some(t) => f(t),
            None => tracing::debug!(template_id, "simulator: no such template"),
        }
    }

    fn with_kapso(&self, config_id: &str, f: impl FnOnce(&mut meta::KapsoState)) {
        let Some(i) = self.kapso_config(config_id) else {
            tracing::debug!(config_id, "simulator: no such Kapso config");
            return;
        };
        if let Some(k) = self.lock().cloud.kapso.get_mut(i) {
            f(k);
        }
    }

    /// Sets a number's messaging health (`PHONE_NUMBER` entity): `can_send` is `AVAILABLE`,
    /// `LIMITED` or `BLOCKED` (or anything else); `detail` is the `additional_info` line of
    /// `LIMITED` or the `error_description` of `BLOCKED` (defaults: [`meta::default_detail`]).
    pub fn set_phone_health(&self, number_id: &str, can_send: &str, detail: Option<&str>) {
        self.set_entity_health("PHONE_NUMBER", number_id, can_send, detail);
    }

    /// Sets the `can_send_message` of an entity with its default detail: `entity_type` is
    /// `PHONE_NUMBER` or `MESSAGE_TEMPLATE` (with the number's or template's id), or `WABA`,
    /// `BUSINESS`, `APP` (with [`meta::WABA_ID`], [`meta::BUSINESS_ID`], [`meta::APP_ID`]).
    pub fn set_entity_status(&self, entity_type: &str, id: &str, status: &str) {
        self.set_entity_health(entity_type, id, status, None);
    }

    /// [`Simulator::set_entity_status`] with a detail, as [`Simulator::set_phone_health`].
    pub fn set_entity_health(
        &self,
        entity_type: &str,
        id: &str,
        can_send: &str,
        detail: Option<&str>,
    ) {
        match self.lock().cloud.entity_mut(entity_type, id) {
            Some(h) => h.set(entity_type, can_send, detail),
            None => tracing::debug!(entity_type, id, "simulator: no such entity"),
        }
    }

    /// Sets `can_receive_call_sip` of a number or of the app ([`meta::APP_ID`]).
    pub fn set_call_sip_status(&self, id: &str, status: &str) {
        let mut state = self.lock();
        let cloud = &mut state.cloud;
        let health = if id == meta::APP_ID {
            Some(&mut cloud.app)
        } else {
            cloud.number_mut(id).map(|n| &mut n.health)
        };
        match health {
            Some(h) => h.sip = Some(status.to_string()),
            None => tracing::debug!(id, "simulator: no such number or app"),
        }
    }

    /// Sets a number's `quality_rating` (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`, `NA`, …).
    pub fn set_quality(&self, number_id: &str, rating: &str) {
        self.with_number(number_id, |n| n.quality_rating = rating.to_string());
    }

    /// Sets a number's `whatsapp_business_manager_messaging_limit` (`TIER_50` … `TIER_2K`,
    /// `TIER_10K`, `TIER_100K`, `TIER_UNLIMITED`, `TIER_NOT_SET`); `messaging_limit_tier`
    /// follows ([`meta::legacy_tier`]).
    pub fn set_tier(&self, number_id: &str, tier: &str) {
        self.with_number(number_id, |n| n.tier = tier.to_string());
    }

    /// Sets a number's `status` (`CONNECTED`, `FLAGGED`, `RESTRICTED`, `BANNED`, …).
    pub fn set_phone_status(&self, number_id: &str, status: &str) {
        self.with_number(number_id, |n| n.status = status.to_string());
    }

    /// Sets a number's `name_status` (`APPROVED`, `PENDING_REVIEW`, `DECLINED`, …).
    pub fn set_name_status(&self, number_id: &str, status: &str) {
        self.with_number(number_id, |n| n.name_status = status.to_string());
    }

    /// Sets a number's `throughput.level` (`STANDARD`, `HIGH`, …).
    pub fn set_throughput(&self, number_id: &str, level: &str) {
        self.with_number(number_id, |n| n.throughput = level.to_string());
    }

    /// Sets a template's `status` (`APPROVED`, `PAUSED`, `DISABLED`, …); its
    /// `MESSAGE_TEMPLATE` health follows: `AVAILABLE` when approved, else `BLOCKED` (141002).
    pub fn set_template_status(&self, template_id: &str, status: &str) {
        self.with_template(template_id, |t| t.set_status(status));
    }

    /// Sets a template's quality (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`), in its
    /// `quality_score` shape.
    pub fn set_template_quality(&self, template_id: &str, quality: &str) {
        self.with_template(template_id, |t| t.quality = quality.to_string());
    }

    /// Subscribes the app to the webhooks of the WABA or the client WABA
    /// ([`meta::CLIENT_WABA_ID`]) as Graph's `subscribed_apps` tells, or unsubscribes it;
    /// other ids change nothing.
    pub fn set_app_subscribed(&self, waba_id: &str, subscribed: bool) {
        let mut state = self.lock();
        match waba_id {
            meta::WABA_ID => state.cloud.subscribed = subscribed,
            meta::CLIENT_WABA_ID => state.cloud.client_subscribed = subscribed,
            _ => tracing::debug!(waba_id, "simulator: no such WABA"),
        }
    }

    /// Removes a template from the templates edge and the template node.
    pub fn remove_template(&self, template_id: &str) {
        if !self.lock().cloud.remove_template(template_id) {
            tracing::debug!(template_id, "simulator: no template removed");
        }
    }

    /// Adds a template at the end of the templates edge (quality `UNKNOWN`, health as its
    /// status), or updates the template with that id.
    pub fn add_template(
        &self,
        template_id: &str,
        name: &str,
        language: &str,
        category: &str,
        status: &str,
    ) {
        self.lock()
            .cloud
            .add_template(template_id, name, language, category, status);
    }

    /// The template ids, in the order of the templates edge.
    pub fn template_ids(&self) -> Vec<String> {
        self.lock()
            .cloud
            .templates
            .iter()
            .map(|t| t.id.clone())
            .collect()
    }

    /// Sets a Kapso config's `status` (`healthy`, `degraded`, `unhealthy`, `error`, or
    /// anything else) and its `error` message (the `error` status without one gets
    /// [`meta::KAPSO_DEFAULT_ERROR`]).
    pub fn set_kapso_status(&self, config_id: &str, status: &str, error: Option<&str>) {
        self.with_kapso(config_id, |k| k.set_status(status, error));
    }

    /// Subscribes or unsubscribes a Kapso config's webhook (`webhook_subscription`).
    pub fn set_webhook_subscribed(&self, config_id: &str, subscribed: bool) {
        self.with_kapso(config_id, |k| k.webhook_subscribed = subscribed);
    }

    /// Marks a Kapso config's webhook verified or not (`webhook_verified`).
    pub fn set_webhook_verified(&self, config_id: &str, verified: bool) {
        self.with_kapso(config_id, |k| k.webhook_verified = verified);
    }

    /// Sets the Graph API usage percentages: `call_count_percent` of
    /// `x-business-use-case-usage` (100 or more: error 80008) and `app_percent` of
    /// `x-app-usage` (100 or more: error 4).
    pub fn set_cloud_api_usage(&self, call_count_percent: u32, app_percent: u32) {
        let mut state = self.lock();
        state.cloud.business_usage = call_count_percent;
        state.cloud.app_usage = app_percent;
    }

    /// Injects (or with `None` clears) a fault on one kind of Graph API request.
    pub fn set_cloud_api_fault(&self, kind: CloudApiEndpoint, fault: Option<CloudApiFault>) {
        self.lock().cloud_api_faults[kind.index()] = fault;
    }

    /// Injects (or with `None` clears) a fault on 360dialog: `api_key` `None` names every
    /// channel, `Some(key)` the channel of that key (unknown keys are ignored).
    pub fn set_dialog360_fault(&self, api_key: Option<&str>, fault: Option<Fault>) {
        let channel = api_key.map(|k| self.dialog360_channel(k));
        let mut state = self.lock();
        for (i, slot) in state.dialog360_faults.iter_mut().enumerate() {
            if channel.is_none_or(|c| c == Some(i)) {
                *slot = fault.clone();
            }
        }
    }

    /// Injects (or with `None` clears) a fault on Kapso: `config_id` `None` names every
    /// config, `Some(id)` that config (unknown ids are ignored).
    pub fn set_kapso_fault(&self, config_id: Option<&str>, fault: Option<Fault>) {
        let config = config_id.map(|c| self.kapso_config(c));
        let mut state = self.lock();
        for (i, slot) in state.kapso_faults.iter_mut().enumerate() {
            if config.is_none_or(|c| c == Some(i)) {
                *slot = fault.clone();
            }
        }
    }

    /// Injects (or with `None` clears) a fault on every request of the Kapso Platform API:
    /// [`CloudApiFault::GraphError`] answers Meta's envelope, relayed as Kapso does; a
    /// [`Fault`] answers in Kapso's words (its field faults damage the listing's `data` and
    /// the health's `status`).
    pub fn set_kapso_platform_fault(&self, fault: Option<CloudApiFault>) {
        self.lock().kapso_platform_fault = fault;
    }

    /// Adds (or removes) an item without `id` and `phone_number_id` at the end of the Kapso
    /// Platform API's listing, as a number still being connected would be.
    pub fn set_kapso_item_without_id(&self, on: bool) {
        self.lock().kapso_item_without_id = on;
    }

    /// Requests on the Kapso Platform API's routes, rejected ones (405, 401, faults, 404 of
    /// an unknown number) included.
    pub fn kapso_platform_requests(&self) -> u64 {
        self.inner.kapso_platform_requests.load(Ordering::Relaxed)
    }

    /// Graph API requests of a kind (those naming a known node), rejected ones (190,
    /// 80008, 4, method) included.
    pub fn cloud_api_requests(&self, kind: CloudApiEndpoint) -> u64 {
        self.inner.cloud_api_requests[kind.index()].load(Ordering::Relaxed)
    }

    /// Requests on `/360dialog/health_status`, rejected ones (405, 401, 400) included.
    pub fn dialog360_requests(&self) -> u64 {
        self.inner.dialog360_requests.load(Ordering::Relaxed)
    }

    /// Requests on `/kapso/api/v1/whatsapp_configs/{id}/health`, rejected ones (405, 401,
    /// 404) included.
    pub fn kapso_requests(&self) -> u64 {
        self.inner.kapso_requests.load(Ordering::Relaxed)
    }

    async fn handle(
        self,
        req: Request<Incoming>,
        mut shutdown: watch::Receiver<bool>,
        local: Option<SocketAddr>,
        reset: Arc<AtomicBool>,
    ) -> Result<Response<SimBody>, io::Error> {
        // `prepare` is synchronous: the state lock is never held across an await.
        match self.prepare(&req, local) {
            Action::Respond(resp) => Ok(resp),
            Action::Reset(resp) => {
                // The body fails part way; hyper then drops the connection, which resets.
                reset.store(true, Ordering::Relaxed);
                Ok(resp)
            }
            Action::Slow(delay, resp) => tokio::select! {
                _ = tokio::time::sleep(delay) => Ok(resp),
                _ = wait_shutdown(&mut shutdown) => Err(io::Error::other("simulator shutting down")),
            },
            Action::Hang => {
                wait_shutdown(&mut shutdown).await;
                Err(io::Error::other("hang fault ended by shutdown"))
            }
        }
    }

    fn prepare(&self, req: &Request<Incoming>, local: Option<SocketAddr>) -> Action {
        let path = req.uri().path();
        if let Some(rest) = under(path, fleet::FLEET_PREFIX) {
            return self.prepare_fleet(req, rest, local);
        }
        if let Some(rest) = under(path, "graph") {
            return self.prepare_graph(req, rest, &authority(req, local));
        }
        if let Some(rest) = under(path, "360dialog") {
            return self.prepare_dialog360(req, rest);
        }
        if let Some(rest) = under(path, "kapso") {
            return self.prepare_kapso(req, rest);
        }
        let Some((cluster, endpoint)) = route(path) else {
            let shown: String = path.chars().take(200).collect();
            let meta = self.meta();
            return Action::Respond(envelope(
                StatusCode::NOT_FOUND,
                1006,
                "Resource not found",
                &format!("Unknown path {shown}"),
                meta,
            ));
        };
        let (c, e) = (cluster.index(), endpoint.index());
        self.inner.requests[c][e].fetch_add(1, Ordering::Relaxed);

        let mut state = self.lock();
        let meta = meta_of(&state);

        if req.method() != endpoint.method() {
            let mut resp = envelope(
                StatusCode::METHOD_NOT_ALLOWED,
                1000,
                "Method not allowed",
                &format!("{} accepts {} only", endpoint.path(), endpoint.method()),
                meta,
            );
            resp.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static(match endpoint {
                    Endpoint::Login => "POST",
                    Endpoint::Health | Endpoint::Support => "GET",
                }),
            );
            return Action::Respond(resp);
        }

        let now = Instant::now();
        if let Some(limit) = self.inner.opts.rate_limit {
            if !state.buckets[c].take(limit, now) {
                let mut resp = envelope(
                    StatusCode::TOO_MANY_REQUESTS,
                    1015,
                    "Too many requests",
                    &format!(
                        "Request rate limit of {} per second (bursts to {}) exceeded",
                        limit.per_second, limit.burst
                    ),
                    meta,
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Action::Respond(resp);
            }
        }

        if let Err(details) = self.authorize(&mut state, cluster, endpoint, req, now) {
            return Action::Respond(envelope(
                StatusCode::UNAUTHORIZED,
                1005,
                "Access denied",
                details,
                meta,
            ));
        }

        let fault = state.faults[c][e].clone();
        let shape = shape_of(fault.as_ref());
        let action = answer_with_fault(
            fault.as_ref(),
            || {
                let payload = self.payload(&mut state, cluster, endpoint, shape, meta.clone());
                (StatusCode::OK, payload)
            },
            |reply| match reply {
                FaultReply::Error {
                    status,
                    code,
                    title,
                } => envelope(
                    status,
                    code,
                    title,
                    "Injected by the simulator",
                    meta.clone(),
                ),
                FaultReply::TooManyRequests => envelope(
                    StatusCode::TOO_MANY_REQUESTS,
                    1015,
                    "Too many requests",
                    "Request rate limit exceeded",
                    meta.clone(),
                ),
                FaultReply::ServiceUnavailable => envelope(
                    StatusCode::SERVICE_UNAVAILABLE,
                    1016,
                    "System overloaded",
                    "The Coreapp is under heavy load",
                    meta.clone(),
                ),
            },
        );
        drop(state);
        action
    }

    /// Checks the request's credentials for `endpoint`; `Err` carries the 401 details.
    fn authorize(
        &self,
        state: &mut State,
        cluster: Cluster,
        endpoint: Endpoint,
        req: &Request<Incoming>,
        now: Instant,
    ) -> Result<(), &'static str> {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Err("Missing Authorization header");
        };
        let Ok(value) = value.to_str() else {
            return Err("Invalid Authorization header");
        };
        let value = value.trim();
        let (scheme, credentials) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .map(|(s, c)| (s, c.trim()))
            .unwrap_or((value, ""));
        let scheme = scheme.to_ascii_lowercase();
        match (endpoint, scheme.as_str()) {
            (Endpoint::Login, "basic") => {
                let o = &self.inner.opts;
                let expected = base64_encode(format!("{}:{}", o.username, o.password).as_bytes());
                if credentials == expected {
                    Ok(())
                } else {
                    Err("Invalid username or password")
                }
            }
            (Endpoint::Login, _) => Err("Log in with Basic authentication"),
            (Endpoint::Health, "apikey") => {
                if !credentials.is_empty() && credentials == self.inner.opts.api_key {
                    Ok(())
                } else {
                    Err("Invalid API key")
                }
            }
            (Endpoint::Support, "apikey") => {
                Err("API keys are accepted on the health, metrics and stats nodes only")
            }
            (Endpoint::Health | Endpoint::Support, "bearer") => {
                let tokens = &mut state.tokens[cluster.index()];
                match tokens.get(credentials) {
                    Some(expiry) if expiry.is_none_or(|e| e > now) => Ok(()),
                    Some(_) => {
                        tokens.remove(credentials);
                        Err("Token expired")
                    }
                    None => Err("Invalid token"),
                }
            }
            _ => Err("Unsupported authorization scheme"),
        }
    }

    /// The normal answer of an endpoint (a login issues a token).
    fn payload(
        &self,
        state: &mut State,
        cluster: Cluster,
        endpoint: Endpoint,
        shape: onprem::Shape,
        meta: Value,
    ) -> Value {
        let c = cluster.index();
        match endpoint {
            Endpoint::Health => json!({
                "health": state.clusters[c].health(shape),
                "meta": meta,
            }),
            Endpoint::Support => json!({
                "support": state.clusters[c].support(Utc::now(), shape),
                "meta": meta,
            }),
            Endpoint::Login => {
                let now = Instant::now();
                let ttl = self.inner.opts.token_ttl;
                let tokens = &mut state.tokens[c];
                tokens.retain(|_, expiry| expiry.is_none_or(|e| e > now));
                let token = new_token();
                tokens.insert(token.clone(), now.checked_add(ttl));
                self.inner.logins[c].fetch_add(1, Ordering::Relaxed);
                let expires = chrono::TimeDelta::from_std(ttl)
                    .ok()
                    .and_then(|d| Utc::now().checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                let expires_after = expires.format("%Y-%m-%d %H:%M:%S+00:00").to_string();
                let user = match shape {
                    onprem::Shape::Normal | onprem::Shape::OddItem => {
                        json!({"token": token, "expires_after": expires_after})
                    }
                    onprem::Shape::MissingField => json!({"expires_after": expires_after}),
                    onprem::Shape::NullField => {
                        json!({"token": null, "expires_after": expires_after})
                    }
                    onprem::Shape::UnknownValue => {
                        json!({"token": token, "expires_after": "never"})
                    }
                };
                json!({"users": [user], "meta": meta})
            }
        }
    }

    fn meta(&self) -> Value {
        meta_of(&self.lock())
    }
}

fn meta_of(state: &State) -> Value {
    json!({"version": META_VERSION, "api_status": state.api_status})
}

/// `/{cluster}/v1/...` -> (cluster, endpoint).
fn route(path: &str) -> Option<(Cluster, Endpoint)> {
    let rest = path.strip_prefix('/')?;
    let slash = rest.find('/')?;
    let cluster = rest[..slash].parse::<Cluster>().ok()?;
    let tail = &rest[slash..];
    let endpoint = Endpoint::ALL.into_iter().find(|e| e.path() == tail)?;
    Some((cluster, endpoint))
}

/// The rest of `path` when it is `/{prefix}` or below it (`""` or `/…`).
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix('/')?.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The `host:port` the client used (absolute URI or `Host`), else the connection's local
/// address: where the Graph API's paging links point.
fn authority(req: &Request<Incoming>, local: Option<SocketAddr>) -> String {
    req.uri()
        .authority()
        .cloned()
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<hyper::http::uri::Authority>().ok())
        })
        .map(|a| a.to_string())
        .filter(|a| !a.is_empty() && !a.contains('@'))
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string())
}

enum Action {
    Respond(Response<SimBody>),
    Slow(Duration, Response<SimBody>),
    /// This answer, whose body fails part way, then a TCP reset instead of a close.
    Reset(Response<SimBody>),
    Hang,
}

impl Action {
    /// Changes the response, if there is one.
    fn map_response(mut self, f: impl FnOnce(&mut Response<SimBody>)) -> Action {
        match &mut self {
            Action::Respond(resp) | Action::Slow(_, resp) | Action::Reset(resp) => f(resp),
            Action::Hang => {}
        }
        self
    }
}

/// The answers some faults build, for each API to word in its own envelope.
pub(crate) enum FaultReply<'a> {
    /// [`Fault::ErrorEnvelope`], its status already checked.
    Error {
        status: StatusCode,
        code: i64,
        title: &'a str,
    },
    /// [`Fault::TooManyRequests`]: a 429.
    TooManyRequests,
    /// [`Fault::ServiceUnavailable`]: a 503.
    ServiceUnavailable,
}

/// The payload shape a fault asks for.
fn shape_of(fault: Option<&Fault>) -> onprem::Shape {
    match fault {
        Some(Fault::MissingField) => onprem::Shape::MissingField,
        Some(Fault::NullField) => onprem::Shape::NullField,
        Some(Fault::UnknownValue) => onprem::Shape::UnknownValue,
        Some(Fault::OddItem) => onprem::Shape::OddItem,
        _ => onprem::Shape::Normal,
    }
}

/// The answer of a request that passed its API's checks: the normal `payload` (status and
/// body, already shaped by [`shape_of`]), or what `fault` makes of it. `reply` words the
/// error answers of some faults. `payload` is only called when the answer needs it.
fn answer_with_fault(
    fault: Option<&Fault>,
    payload: impl FnOnce() -> (StatusCode, Value),
    reply: impl FnOnce(FaultReply<'_>) -> Response<SimBody>,
) -> Action {
    match fault {
        None
        | Some(Fault::MissingField)
        | Some(Fault::NullField)
        | Some(Fault::UnknownValue)
        | Some(Fault::OddItem) => {
            let (status, body) = payload();
            Action::Respond(json_response(status, &body))
        }
        Some(Fault::MalformedJson) => {
            let (status, body) = payload();
            let text = to_bytes(&body);
            let broken = match text.iter().position(|&b| b == b':') {
                Some(i) => [&text[..i], &text[i + 1..]].concat(),
                None => b"{".to_vec(),
            };
            Action::Respond(body_response(status, "application/json", broken.into()))
        }
        Some(Fault::Truncated) => {
            let (status, body) = payload();
            let full = to_bytes(&body);
            let len = full.len();
            let head = Bytes::from(full).slice(..len / 2);
            let mut resp = Response::new(SimBody::truncated(head));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Action::Respond(resp)
        }
        Some(Fault::WrongContentType) => {
            let (status, body) = payload();
            Action::Respond(body_response(
                status,
                "text/html; charset=utf-8",
                to_bytes(&body).into(),
            ))
        }
        Some(Fault::EmptyBody) => Action::Respond(body_response(
            StatusCode::OK,
            "application/json",
            Bytes::new(),
        )),
        Some(Fault::ErrorEnvelope {
            status,
            code,
            title,
        }) => Action::Respond(reply(FaultReply::Error {
            status: status_or_500(*status),
            code: *code,
            title,
        })),
        Some(Fault::Status(status)) => {
            let status = status_or_500(*status);
            let line = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error")
            );
            let html = format!(
                "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n\
                 <center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n\
                 </body>\r\n</html>\r\n"
            );
            Action::Respond(body_response(status, "text/html", html.into()))
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            let mut resp = reply(FaultReply::TooManyRequests);
            set_retry_after(&mut resp, retry_after.as_deref());
            Action::Respond(resp)
        }
        Some(Fault::ServiceUnavailable { retry_after }) => {
            let mut resp = reply(FaultReply::ServiceUnavailable);
            set_retry_after(&mut resp, retry_after.as_deref());
            Action::Respond(resp)
        }
        Some(Fault::Hang) => Action::Hang,
        Some(Fault::Slow(delay)) => {
            let (status, body) = payload();
            Action::Slow(*delay, json_response(status, &body))
        }
        Some(Fault::OversizedBody(size)) => {
            let (status, body) = payload();
            let body = padded(body, (*size).min(MAX_OVERSIZED_BODY));
            Action::Respond(body_response(status, "application/json", body.into()))
        }
        Some(Fault::Reset) => {
            let (status, body) = payload();
            let full = Bytes::from(to_bytes(&body));
            let head = full.slice(..full.len() / 2);
            let mut resp = Response::new(SimBody::truncated(head));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Action::Reset(resp)
        }
        Some(Fault::Drip(every)) => {
            let (status, body) = payload();
            let mut resp = Response::new(SimBody::Drip {
                rest: to_bytes(&body).into(),
                every: *every,
                wait: None,
            });
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Action::Respond(resp)
        }
        Some(Fault::InvalidUtf8) => {
            let (status, body) = payload();
            let mut text = to_bytes(&body);
            let at = text.iter().position(|&b| b == b'"').map_or(0, |i| i + 1);
            text.splice(at..at, [0xFF, 0xFE]);
            Action::Respond(body_response(status, "application/json", text.into()))
        }
        Some(Fault::DeepNesting(depth)) => {
            let depth = (*depth).min(MAX_NESTING);
            let mut text = vec![b'['; depth];
            text.resize(2 * depth, b']');
            Action::Respond(body_response(
                StatusCode::OK,
                "application/json",
                text.into(),
            ))
        }
        Some(Fault::HugeJson(size)) => {
            let mut resp = Response::new(SimBody::Generated {
                opened: false,
                left: (*size).min(MAX_HUGE_JSON),
            });
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Action::Respond(resp)
        }
        Some(Fault::Redirect(location)) => {
            let mut resp = body_response(StatusCode::FOUND, "application/json", "{}".into());
            match HeaderValue::from_str(location) {
                Ok(v) => {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
            }
            Action::Respond(resp)
        }
    }
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: shutting down as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn set_retry_after(resp: &mut Response<SimBody>, retry_after: Option<&str>) {
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn body_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A 405 answer naming `GET` as the one method allowed.
fn method_not_allowed(mut resp: Response<SimBody>) -> Action {
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    Action::Respond(resp)
}

/// A header's value, when it is text.
fn header_text<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name)?.to_str().ok().map(str::trim)
}

/// The index of `wanted` among the first `n` non-empty entries of `list`.
fn position(list: &[String], n: usize, wanted: &str) -> Option<usize> {
    list.iter()
        .take(n)
        .position(|k| !k.is_empty() && k == wanted)
}

fn json_response(status: StatusCode, value: &Value) -> Response<SimBody> {
    body_response(status, "application/json", to_bytes(value).into())
}

fn envelope(
    status: StatusCode,
    code: i64,
    title: &str,
    details: &str,
    meta: Value,
) -> Response<SimBody> {
    json_response(
        status,
        &json!({
            "errors": [{"code": code, "title": title, "details": details}],
            "meta": meta,
        }),
    )
}

/// `value` serialized and padded with a `padding` string field to exactly `size` bytes
/// (when it is an object smaller than that).
fn padded(mut value: Value, size: usize) -> Vec<u8> {
    let Some(obj) = value.as_object_mut() else {
        return to_bytes(&value);
    };
    obj.insert("padding".to_string(), Value::String(String::new()));
    let base = to_bytes(&value).len();
    if let Some(obj) = value.as_object_mut() {
        if size > base {
            obj.insert(
                "padding".to_string(),
                Value::String("x".repeat(size - base)),
            );
        } else {
            obj.remove("padding");
        }
    }
    to_bytes(&value)
}

fn new_token() -> String {
    // A JWT-like shape: three base64url-ish segments.
    let seg = |n: usize| -> String {
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(n)
            .collect()
    };
    format!("eyJ{}.{}.{}", seg(33), seg(86), seg(43))
}

/// Standard base64 with padding.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A connection that, once [`Fault::Reset`] answered on it, closes with a TCP reset (RST)
/// instead of an orderly close.
struct ResettableStream {
    inner: tokio::net::TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            // Zero linger: closing sends RST at once and never blocks.
            if let Err(e) = self.inner.set_zero_linger() {
                tracing::debug!(error = %e, "simulator: cannot set zero linger");
            }
        }
    }
}

impl tokio::io::AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A handle on a spawned simulator.
#[derive(Debug)]
pub struct SimulatorHandle {
    /// The address the simulator listens on.
    pub addr: SocketAddr,
    simulator: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimulatorHandle {
    /// The base URL of a cluster, e.g. `http://127.0.0.1:40123/ha`.
    pub fn base_url(&self, cluster: Cluster) -> String {
        format!("http://{}/{}", self.addr, cluster.as_str())
    }

    /// The base URL of the Graph API, e.g. `http://127.0.0.1:40123/graph` (the version
    /// follows: `…/graph/v24.0/{node}`).
    pub fn cloud_api_base_url(&self) -> String {
        format!("http://{}/graph", self.addr)
    }

    /// The base URL of 360dialog, e.g. `http://127.0.0.1:40123/360dialog`.
    pub fn dialog360_base_url(&self) -> String {
        format!("http://{}/360dialog", self.addr)
    }

    /// The base URL of Kapso, e.g. `http://127.0.0.1:40123/kapso`.
    pub fn kapso_base_url(&self) -> String {
        format!("http://{}/kapso", self.addr)
    }

    /// The base URL of Kapso's Platform API, e.g.
    /// `http://127.0.0.1:40123/kapso/platform/v1`.
    pub fn kapso_platform_base_url(&self) -> String {
        format!("http://{}/kapso/platform/v1", self.addr)
    }

    /// The simulator, to drive its state.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Stops the server and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "simulator stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "simulator task failed"),
            }
        }
    }
}

/// The simulator's response body: whole, cut after its first half, dripped byte by byte,
/// or a huge JSON array generated as it is sent.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    Truncated {
        head: Option<Bytes>,
        delay: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Drip {
        rest: Bytes,
        every: Duration,
        wait: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    /// `[`, then `0,` pairs and the closing `0]` for `left` bytes.
    Generated {
        opened: bool,
        left: usize,
    },
}

impl SimBody {
    fn full(bytes: Bytes) -> Self {
        SimBody::Full(Some(bytes))
    }

    fn truncated(head: Bytes) -> Self {
        SimBody::Truncated {
            head: Some(head),
            delay: Some(Box::pin(tokio::time::sleep(TRUNCATE_DELAY))),
        }
    }
}

/// One chunk of `0,` pairs, built once.
fn huge_json_chunk() -> Bytes {
    static CHUNK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    CHUNK
        .get_or_init(|| Bytes::from(b"0,".repeat(HUGE_JSON_CHUNK / 2)))
        .clone()
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            SimBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Truncated { head, delay } => {
                if let Some(h) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(h))));
                }
                match delay {
                    Some(sleep) => {
                        // Pending here lets hyper flush the first half before the cut.
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        *delay = None;
                        Poll::Ready(Some(Err(io::Error::other("simulated truncated response"))))
                    }
                    None => Poll::Ready(None),
                }
            }
            SimBody::Drip { rest, every, wait } => {
                if rest.is_empty() {
                    return Poll::Ready(None);
                }
                if let Some(sleep) = wait {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                let byte = rest.split_to(1);
                *wait = Some(Box::pin(tokio::time::sleep(*every)));
                Poll::Ready(Some(Ok(Frame::data(byte))))
            }
            SimBody::Generated { opened, left } => {
                if !*opened {
                    *opened = true;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"[")))));
                }
                if *left == 0 {
                    return Poll::Ready(None);
                }
                // `0,` pairs while they fit before the closing `0]`.
                let pairs = (left.saturating_sub(2) & !1).min(HUGE_JSON_CHUNK);
                if pairs > 0 {
                    *left -= pairs;
                    return Poll::Ready(Some(Ok(Frame::data(huge_json_chunk().slice(..pairs)))));
                }
                *left = 0;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"0]")))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(None) => true,
            SimBody::Drip { rest, .. } => rest.is_empty(),
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Drip { rest, .. } => SizeHint::with_exact(rest.len() as u64),
            SimBody::Truncated { .. } | SimBody::Generated { .. } => SizeHint::default(),
        }
    }
}
