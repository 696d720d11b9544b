//! Fleet mode: many distinct simulated targets, served cheaply, for load and scale tests
//! (`whatsapp-exporter simulate --targets N`, [`SimulatorOptions::fleet`]; and
//! `--fleet.businesses B`, [`SimulatorOptions::fleet_businesses`], below).
//!
//! With a fleet of `N`, the simulator also serves, under `/fleet`:
//!
//! | API | `base_url` | credentials | targets |
//! |---|---|---|---|
//! | On-Premises, one instance each | `http://ADDR/fleet/onprem/{i}` | API key, login and token as below | `i` in `0..N` |
//! | 360dialog | `http://ADDR/fleet/360dialog` | `D360-API-KEY: fleet-360-key-{i}` ([`dialog360_key`]) | channel `i` serves number `i` |
//! | Kapso | `http://ADDR/fleet/kapso` | `X-API-Key: <kapso_api_key>`, config id `fleet-{i}` ([`kapso_config_id`]) | config `i` is tied to number `i` |
//! | Graph API | `http://ADDR/fleet/graph` | `Authorization: Bearer <cloud_api_token>` | phone number [`phone_number_id`]`(i)` |
//!
//! So `N` On-Premises instances and `N` Cloud API numbers, each number reachable through the
//! three Cloud API providers. Routes:
//!
//! | route | method | credentials |
//! |---|---|---|
//! | `/fleet/onprem/{i}/v1/health` | `GET` | `Apikey <api_key>` or `Bearer <token>` |
//! | `/fleet/onprem/{i}/v1/support` | `GET` | `Bearer <token>` |
//! | `/fleet/onprem/{i}/v1/users/login` | `POST` | `Basic` with the simulator's username and password |
//! | `/fleet/360dialog/health_status` | `GET` | `D360-API-KEY: fleet-360-key-{i}` |
//! | `/fleet/kapso/api/v1/whatsapp_configs/fleet-{i}/health` | `GET` | `X-API-Key: <kapso_api_key>` |
//! | `/fleet/graph/[{version}/]{phone_number_id}` | `GET` | `Authorization: Bearer <cloud_api_token>` |
//! | `/fleet/graph/…` of the businesses (see [Businesses](#businesses)) | `GET` | `Authorization: Bearer <cloud_api_token>` |
//! | `/fleet/config?onprem=O&cloud=C&businesses=B&interval=D&discovery_interval=D&debug_token=1` | `GET` | none: an exporter config for the fleet ([`fleet_config_for`]) |
//! | `/fleet/stats[?from=S][&per_target=1]` | `GET` | none: the request counters below, as JSON |
//!
//! The credentials are the simulator's own ([`SimulatorOptions`]); a login answers the
//! fixed token [`FLEET_TOKEN`] (valid on every instance for
//! [`SimulatorOptions::token_ttl`] from the login), which is also accepted without a login,
//! as a `bearer_token`. Indexes are written in decimal without leading zeros; an index
//! outside `0..N` is an unknown target (404; 401 for a 360dialog key).
//!
//! `/fleet/config` writes [`fleet_config_for`]'s targets: `onprem` On-Premises instances
//! (default: a tenth of `N`), `cloud` numbers (default: the rest of `N`), and with
//! `businesses=B` one `cloud_api` target per business `0..B`, `business-{b}`, with its
//! `business_id`, the Graph token, `api_version: v24.0`, `discovery_interval` (default
//! `10m`) and a `series_limit` for its numbers ([`business_series_limit`]), plus
//! `debug_token_access_token: <FLEET_APP_TOKEN>` with `debug_token=1`. With `businesses`,
//! `onprem` and `cloud` default to 0.
//!
//! # Businesses
//!
//! With [`SimulatorOptions::fleet_businesses`] ([`FleetBusinesses`]: `simulate
//! --fleet.businesses B --fleet.wabas-per-business W --fleet.numbers-per-waba K`; served
//! even with `N` = 0), the fleet's Graph API also has `B` businesses of `W` WABAs of `K`
//! numbers, for business-wide discovery (at most [`MAX_FLEET_WABAS`] WABAs and
//! [`MAX_FLEET_NUMBERS`] numbers):
//!
//! | what | id | belongs to |
//! |---|---|---|
//! | business `b` in `0..B` | [`business_id`]`(b)` = [`BUSINESS_ID_BASE`]` + b` | |
//! | WABA `w` in `0..B * W`, named `Fleet WABA {w}` | [`waba_id`]`(w)` = [`WABA_ID_BASE`]` + w` | business `w / W`: a client WABA when `w % W % 4 == 3`, owned otherwise |
//! | number `i` in `0..B * W * K` | [`phone_number_id`]`(i)`, the fleet's number `i` | WABA `i / K` |
//! | template `t` in `0..3` of WABA `w` | [`template_id`]`(w, t)` = [`TEMPLATE_ID_BASE`]` + 3 * w + t` | WABA `w` |
//! | the app | [`FLEET_APP_ID`] (the simulator's app) | subscribed to every WABA but those with `w % 50 == 13` |
//!
//! So the Graph API knows the numbers `0..max(N, B * W * K)`; a number of a business names
//! its WABA and business in its `health_status` entities (the others name the simulator's
//! own, as before). Routes, `{v}` a version like `v24.0`, optional:
//!
//! | route | answer |
//! |---|---|
//! | `/fleet/graph/[{v}/]{business_id}/owned_whatsapp_business_accounts[?limit=L][&after=C]` | `{"data":[{"id","name"},…],"paging":{"cursors":{"before","after"},"next"}}`: the business's owned WABAs in order |
//! | `/fleet/graph/[{v}/]{business_id}/client_whatsapp_business_accounts[?…]` | the same, of its client WABAs |
//! | `/fleet/graph/[{v}/]{waba_id}[?fields=…]` | the WABA node: the fields asked at depth 0 among `id`, `name`, `health_status`, `phone_numbers`, `message_templates`, `subscribed_apps` (without `fields`: `id,name`; another: error 100); the edges expanded as their first page, `.limit(L)` honoured, their inner `{…}` fields not |
//! | `/fleet/graph/[{v}/]{waba_id}/phone_numbers[?limit=L][&after=C]` | a page of the WABA's numbers, each as the number alone answers |
//! | `/fleet/graph/[{v}/]{waba_id}/message_templates[?…]` | a page of its three templates: `id`, `name`, `language`, `status`, `category`, `quality_score` |
//! | `/fleet/graph/[{v}/]{waba_id}/subscribed_apps` | `{"data":[{"whatsapp_business_api_data":{"id","link","name"}}]}`, or `{"data":[]}` (unsubscribed) |
//! | `/fleet/graph[/{v}][/]?ids=a,b,…` | `{"a":{number},…}` for up to [`MAX_IDS`] numbers; more: 400, error 100; an unknown id: 404, error 803 `(#803) Some of the aliases you requested do not exist: …` |
//! | `/fleet/graph/[{v}/]debug_token?input_token=T` | the fleet token: `{"data":{"app_id","type":"SYSTEM_USER","application":"Fleet App","data_access_expires_at":now+90d,"expires_at":0,"is_valid":true,"issued_at":now-30d,"scopes":[…],"granular_scopes":[…],"user_id"}}` (`target_ids`: the WABAs and businesses, up to [`MAX_TARGET_IDS`]); another token: 200 with `{"data":{"is_valid":false,"error":{"code":190,…},"scopes":[]}}`. The bearer may also be [`FLEET_APP_TOKEN`] |
//!
//! A page holds `min(limit, 100)` items ([`DEFAULT_LIMIT`], 25, without `limit`; 0 or not a
//! number: error 100); `next` (only when more follow) is the request's own URL, on the
//! `Host` it used, with `after` set to the page's last cursor; an expanded edge's `next`
//! points at the edge route with `fields=<the inner fields>&limit=L`. Every WABA's
//! `health_status` is `AVAILABLE` (its `WABA`, `BUSINESS` and `APP` entities); template 1 of
//! WABA `w` is `PAUSED` (quality `RED`) when `w % 20 == 7`, every other one `APPROVED`
//! (`GREEN`). Wrong tokens answer 401 (error 190), unknown nodes and edges 400 (error 100).
//!
//! # Cheap answers
//!
//! Nothing here takes the simulator's lock or builds JSON for a good answer: every body is
//! rendered once per state when the simulator is created, and a request only splices the
//! target's id (and the clock, for `/v1/support` and Kapso) into it; a WABA's answer, a
//! listing or an `?ids=` lookup concatenates such bodies. There is no rate limit
//! and no scenario: the fleet's states are fixed. Faults are off unless asked for.
//!
//! # Faults
//!
//! With [`SimulatorOptions::fleet_faults`] (`simulate --fleet.fault-ratio R`), a fraction `R`
//! of the targets fails in any second, a different set each second, chosen by a stable hash
//! of the target and the second ([`FleetFaults::pick`]): every request of a failing target
//! in that second answers one of [`FleetFault`], evenly mixed (`--fleet.fault-kinds` narrows
//! the mix):
//!
//! | kind | answer |
//! |---|---|
//! | `server_error` | 500 with a small HTML page, as a load balancer would answer |
//! | `unavailable` | 503 in the API's error envelope, `Retry-After: 1` |
//! | `malformed_json` | 200 whose body is not JSON (its first `:` removed) |
//! | `slow` | the normal answer after [`FLEET_SLOW_DELAY`] (15 s, past any `/fleet/config` timeout) |
//! | `reset` | 200, half the body, then a TCP reset |
//!
//! On-Premises instance `i` (all its endpoints) and Cloud API number `i` (on every provider)
//! are separate targets that fail independently. WABA `w` is a third kind of target: its
//! node and edges fail together; an `?ids=` lookup fails as its first number does; the
//! business listings and `debug_token` never fail. Unknown targets, wrong methods, bad
//! parameters and wrong credentials answer as without faults.
//!
//! # States
//!
//! A deterministic mix, by index `i`:
//!
//! | what | state | when |
//! |---|---|---|
//! | number: `can_send_message` (its `PHONE_NUMBER` entity) | `BLOCKED` (error 131031) | `i % 50 == 7` |
//! | | `LIMITED` | `i % 10 == 3` |
//! | | `AVAILABLE` | otherwise |
//! | number: `quality_rating` | `RED` | `i % 20 == 11` |
//! | | `YELLOW` | otherwise when `i % 5 == 1` |
//! | | `GREEN` | otherwise |
//! | number: messaging limit | `TIER_2K` | `i % 8 == 5` |
//! | | `TIER_10K` | otherwise |
//! | Kapso config: `status` | `error` (with [`meta::KAPSO_DEFAULT_ERROR`]) | `i % 100 == 42` |
//! | | `unhealthy` | the number is `BLOCKED` |
//! | | `degraded` | the number is `LIMITED`, or the webhook is unsubscribed |
//! | | `healthy` | otherwise |
//! | Kapso config: webhook | unsubscribed | `i % 40 == 17` |
//! | On-Premises instance: `gateway_status` / `socket_conn` | `disconnected` / `DN` | `i % 25 == 3` |
//! | | `connecting` / `SC` | `i % 40 == 9` |
//! | | `unregistered` / `DN` | `i % 97 == 50` |
//! | | `connected` / `UP` | otherwise |
//!
//! Number `i` has the id [`phone_number_id`]`(i)`, the display number
//! [`display_phone_number`]`(i)` and the verified name `Fleet {i}`; everything else is as the
//! simulator's own numbers and single instance ([`super::meta`], [`super::onprem`]). The
//! Graph API answers every field of [`cloud_api::PHONE_NUMBER_FIELDS`], whatever `fields`
//! asks, with the usage headers of [`meta::INITIAL_BUSINESS_USAGE`] and
//! [`meta::INITIAL_APP_USAGE`].
//!
//! # Counters
//!
//! Every fleet request is counted: by kind ([`FleetKind`], [`Simulator::fleet_requests`]),
//! by target when it names a known one ([`Simulator::fleet_target_requests`]), and per
//! second since the simulator was created ([`Simulator::fleet_requests_per_second`], the
//! last [`PER_SECOND_KEPT`] seconds). The Graph API's kinds, all named `graph…`:
//!
//! | kind | requests | target |
//! |---|---|---|
//! | `graph` | a number node, and any path none of the others is | the number |
//! | `graph_owned_wabas`, `graph_client_wabas` | a business's listing | the business |
//! | `graph_waba` | a WABA node | the WABA |
//! | `graph_waba_phone_numbers`, `graph_waba_message_templates`, `graph_waba_subscribed_apps` | a WABA's edge | the WABA |
//! | `graph_ids` | a `?ids=` lookup (with or without ids) | each number it names |
//! | `graph_debug_token` | `debug_token` | none |
//!
//! `GET /fleet/stats` answers them:
//! `{"targets":N,"businesses":{"businesses":B,"wabas_per_business":W,"numbers_per_waba":K,
//! "wabas":…,"numbers":…},"graph_requests":…,"uptime_seconds":…,"second":…,
//! "requests":{kind:count,…},"per_second":{"from":S,"counts":[…]},"faults":{"ratio":R,
//! "kinds":[…],"answered":{fault kind:count,…}},"per_target":{kind:[count of target 0,…],…}}`
//! (`graph_requests`: every `graph…` kind summed);
//! `per_second` covers the seconds from `from` (default: the last 600) to the current one,
//! excluded; `per_target` comes with `per_target=1` only. `/fleet/stats` and
//! `/fleet/config` are not counted.
//!
//! [`SimulatorOptions`]: super::SimulatorOptions
//! [`SimulatorOptions::fleet`]: super::SimulatorOptions::fleet
//! [`SimulatorOptions::fleet_faults`]: super::SimulatorOptions::fleet_faults
//! [`SimulatorOptions::fleet_businesses`]: super::SimulatorOptions::fleet_businesses
//! [`SimulatorOptions::token_ttl`]: super::SimulatorOptions::token_ttl
//! [`Simulator::fleet_requests`]: super::Simulator::fleet_requests
//! [`Simulator::fleet_target_requests`]: super::Simulator::fleet_target_requests
//! [`Simulator::fleet_requests_per_second`]: super::Simulator::fleet_requests_per_second

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::cloud_api;
use super::dialog360::{self, dialog360_error};
use super::kapso::{self, kapso_error};
use super::meta::{self, KapsoState, MetaState, AVAILABLE, BLOCKED, LIMITED};
use super::onprem::{ClusterState, Shape, META_VERSION};
use super::{
    answer_with_fault, authority, base64_encode, body_response, envelope, Action, Cluster, Fault,
    FaultReply, SimBody, Simulator, SimulatorHandle, SimulatorOptions,
};
use super::{header_text, method_not_allowed};

mod graph;

pub use graph::{
    business_id, template_id, template_status, waba_id, waba_subscribed, FleetBusinesses,
    FleetShapeError, BUSINESS_ID_BASE, DEFAULT_LIMIT, FLEET_APP_ID, FLEET_APP_TOKEN,
    FLEET_SYSTEM_USER_ID, MAX_FLEET_NUMBERS, MAX_FLEET_WABAS, MAX_IDS, MAX_LIMIT, MAX_TARGET_IDS,
    TEMPLATES_PER_WABA, TEMPLATE_ID_BASE, WABA_ID_BASE,
};
use graph::{TEMPLATE_CATEGORIES, TEMPLATE_LANGUAGES, TEMPLATE_NAMES};

/// The path prefix of the fleet.
pub const FLEET_PREFIX: &str = "fleet";
/// The token a fleet login answers, accepted on every fleet instance.
pub const FLEET_TOKEN: &str = "sim-fleet-token-0123456789";
/// 360dialog channel `i` of the fleet has the key `fleet-360-key-{i}`.
pub const DIALOG360_KEY_PREFIX: &str = "fleet-360-key-";
/// Kapso config `i` of the fleet has the id `fleet-{i}`.
pub const KAPSO_CONFIG_PREFIX: &str = "fleet-";
/// Phone number `i` of the fleet has the id `PHONE_NUMBER_ID_BASE + i` (15 digits).
pub const PHONE_NUMBER_ID_BASE: u64 = 190_000_000_000_000;
/// How many seconds of per-second counts are kept.
pub const PER_SECOND_KEPT: u64 = 4096;
/// How many seconds `/fleet/stats` covers without `from`.
const PER_SECOND_DEFAULT: u64 = 600;

/// The id of fleet phone number `i`.
pub fn phone_number_id(i: usize) -> String {
    (PHONE_NUMBER_ID_BASE + i as u64).to_string()
}

/// The `display_phone_number` of fleet phone number `i`.
pub fn display_phone_number(i: usize) -> String {
    format!("+1 555-{i:07}")
}

/// The 360dialog key of fleet channel `i`.
pub fn dialog360_key(i: usize) -> String {
    format!("{DIALOG360_KEY_PREFIX}{i}")
}

/// The id of fleet Kapso config `i`.
pub fn kapso_config_id(i: usize) -> String {
    format!("{KAPSO_CONFIG_PREFIX}{i}")
}

/// `can_send_message` of fleet number `i` (see the module docs).
pub fn number_can_send(i: usize) -> &'static str {
    CAN_SEND[can_send_index(i)]
}

/// `quality_rating` of fleet number `i`.
pub fn number_quality(i: usize) -> &'static str {
    QUALITIES[quality_index(i)]
}

/// `whatsapp_business_manager_messaging_limit` of fleet number `i`.
pub fn number_tier(i: usize) -> &'static str {
    TIERS[tier_index(i)]
}

/// `status` of fleet Kapso config `i`.
pub fn kapso_status(i: usize) -> &'static str {
    KAPSO_STATUSES[kapso_status_index(i)]
}

/// Whether the webhook of fleet Kapso config `i` is subscribed.
pub fn kapso_webhook_subscribed(i: usize) -> bool {
    i % 40 != 17
}

/// `gateway_status` of fleet On-Premises instance `i`.
pub fn onprem_gateway_status(i: usize) -> &'static str {
    GATEWAYS[gateway_index(i)].0
}

const CAN_SEND: [&str; 3] = [AVAILABLE, LIMITED, BLOCKED];
const QUALITIES: [&str; 3] = ["GREEN", "YELLOW", "RED"];
const TIERS: [&str; 2] = ["TIER_10K", "TIER_2K"];
const KAPSO_STATUSES: [&str; 4] = ["healthy", "degraded", "unhealthy", "error"];
const GATEWAYS: [(&str, &str); 4] = [
    ("connected", "UP"),
    ("disconnected", "DN"),
    ("connecting", "SC"),
    ("unregistered", "DN"),
];

fn can_send_index(i: usize) -> usize {
    if i % 50 == 7 {
        2
    } else if i % 10 == 3 {
        1
    } else {
        0
    }
}

fn quality_index(i: usize) -> usize {
    if i % 20 == 11 {
        2
    } else if i % 5 == 1 {
        1
    } else {
        0
    }
}

fn tier_index(i: usize) -> usize {
    usize::from(i % 8 == 5)
}

fn kapso_status_index(i: usize) -> usize {
    if i % 100 == 42 {
        3
    } else {
        match can_send_index(i) {
            2 => 2,
            1 => 1,
            _ if !kapso_webhook_subscribed(i) => 1,
            _ => 0,
        }
    }
}

fn gateway_index(i: usize) -> usize {
    if i % 25 == 3 {
        1
    } else if i % 40 == 9 {
        2
    } else if i % 97 == 50 {
        3
    } else {
        0
    }
}

/// How long a [`FleetFault::Slow`] answer waits: past the longest timeout `/fleet/config`
/// writes (10 s), so the exporter gives up on it first.
pub const FLEET_SLOW_DELAY: Duration = Duration::from_secs(15);

/// A way a fleet target fails while [`FleetFaults`] picks it; each is one of the
/// simulator's [`Fault`]s, in the API's own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FleetFault {
    /// 500 with a small HTML page, as a load balancer in front would answer
    /// ([`Fault::Status`]).
    ServerError,
    /// 503 in the API's error envelope with `Retry-After: 1` ([`Fault::ServiceUnavailable`]).
    Unavailable,
    /// 200 with a body that is not JSON ([`Fault::MalformedJson`]).
    MalformedJson,
    /// The normal answer after [`FLEET_SLOW_DELAY`] ([`Fault::Slow`]).
    Slow,
    /// 200, half the body, then a TCP reset ([`Fault::Reset`]).
    Reset,
}

impl FleetFault {
    /// Every kind.
    pub const ALL: [FleetFault; 5] = [
        FleetFault::ServerError,
        FleetFault::Unavailable,
        FleetFault::MalformedJson,
        FleetFault::Slow,
        FleetFault::Reset,
    ];

    /// The name `--fleet.fault-kinds` and `/fleet/stats` use.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetFault::ServerError => "server_error",
            FleetFault::Unavailable => "unavailable",
            FleetFault::MalformedJson => "malformed_json",
            FleetFault::Slow => "slow",
            FleetFault::Reset => "reset",
        }
    }

    /// The simulator's fault this kind answers with.
    pub fn fault(self) -> Fault {
        match self {
            FleetFault::ServerError => Fault::Status(500),
            FleetFault::Unavailable => Fault::ServiceUnavailable {
                retry_after: Some("1".to_string()),
            },
            FleetFault::MalformedJson => Fault::MalformedJson,
            FleetFault::Slow => Fault::Slow(FLEET_SLOW_DELAY),
            FleetFault::Reset => Fault::Reset,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FleetFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FleetFault {
    type Err = UnknownFleetFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FleetFault::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFleetFault(s.to_string()))
    }
}

/// A name that is not a [`FleetFault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fleet fault {0:?} (expected server_error, unavailable, malformed_json, slow or reset)"
)]
pub struct UnknownFleetFault(pub String);

/// Which half of the fleet a target is in: On-Premises instance `i` and Cloud API number `i`
/// are different targets and fail independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetFamily {
    /// `/fleet/onprem/{i}`: every endpoint of the instance.
    OnPrem,
    /// Number `i`, on every provider (360dialog channel, Kapso config, Graph API number).
    Cloud,
    /// WABA `i` of the businesses: its node and edges on the Graph API.
    Waba,
}

/// Which fleet targets fail, and how ([`SimulatorOptions::fleet_faults`]).
///
/// In every second (counted from the simulator's start) each target draws from a stable
/// hash of its family, index and the second: below `ratio`, every request of that target in
/// that second answers a fault, chosen evenly among `kinds` by the same hash. So about
/// `ratio` of the targets fail at any time, a different set each second, and a run is the
/// same from one start to the next. The fault replaces a good answer only: unknown targets,
/// wrong methods and wrong credentials are answered as without faults.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetFaults {
    /// Fraction of the targets failing in any second, 0 (none, the default) to 1 (all).
    pub ratio: f64,
    /// The kinds a failing target answers, evenly; none: no fault at all.
    pub kinds: Vec<FleetFault>,
}

impl Default for FleetFaults {
    fn default() -> Self {
        FleetFaults {
            ratio: 0.0,
            kinds: FleetFault::ALL.to_vec(),
        }
    }
}

impl FleetFaults {
    /// The fault target `i` of `family` answers with during `second`, if any.
    pub fn pick(&self, family: FleetFamily, i: usize, second: u64) -> Option<FleetFault> {
        if self.kinds.is_empty() || self.ratio.is_nan() || self.ratio <= 0.0 {
            return None;
        }
        let target = match family {
            FleetFamily::OnPrem => (i as u64).wrapping_mul(2),
            FleetFamily::Cloud => (i as u64).wrapping_mul(2) | 1,
            // Apart from the others' 2 * i (+ 1), for any index the fleet can have.
            FleetFamily::Waba => (i as u64 | 1 << 62).wrapping_mul(2),
        };
        let h = mix(mix(target) ^ second);
        // The top 53 bits as a fraction in [0, 1); the low 32 bits choose the kind.
        let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.ratio {
            return None;
        }
        let kind = (h & 0xffff_ffff) as usize % self.kinds.len();
        Some(self.kinds[kind])
    }
}

/// SplitMix64's finaliser: every bit of the input moves about half of the output's.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One kind of fleet request, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FleetKind {
    /// `GET /fleet/onprem/{i}/v1/health`.
    OnPremHealth,
    /// `GET /fleet/onprem/{i}/v1/support`.
    OnPremSupport,
    /// `POST /fleet/onprem/{i}/v1/users/login`.
    OnPremLogin,
    /// `GET /fleet/360dialog/health_status`.
    Dialog360,
    /// `GET /fleet/kapso/api/v1/whatsapp_configs/fleet-{i}/health`.
    Kapso,
    /// `GET /fleet/graph/…/{phone_number_id}`, and any Graph path the others are not.
    CloudApi,
    /// `GET /fleet/graph/…/{business_id}/owned_whatsapp_business_accounts`.
    GraphOwnedWabas,
    /// `GET /fleet/graph/…/{business_id}/client_whatsapp_business_accounts`.
    GraphClientWabas,
    /// `GET /fleet/graph/…/{waba_id}`.
    GraphWaba,
    /// `GET /fleet/graph/…/{waba_id}/phone_numbers`.
    GraphWabaPhoneNumbers,
    /// `GET /fleet/graph/…/{waba_id}/message_templates`.
    GraphWabaTemplates,
    /// `GET /fleet/graph/…/{waba_id}/subscribed_apps`.
    GraphWabaSubscribedApps,
    /// `GET /fleet/graph/[{version}/]?ids=…`.
    GraphIds,
    /// `GET /fleet/graph/…/debug_token`.
    GraphDebugToken,
}

/// How many kinds there are.
const KINDS: usize = FleetKind::ALL.len();

impl FleetKind {
    /// Every kind.
    pub const ALL: [FleetKind; 14] = [
        FleetKind::OnPremHealth,
        FleetKind::OnPremSupport,
        FleetKind::OnPremLogin,
        FleetKind::Dialog360,
        FleetKind::Kapso,
        FleetKind::CloudApi,
        FleetKind::GraphOwnedWabas,
        FleetKind::GraphClientWabas,
        FleetKind::GraphWaba,
        FleetKind::GraphWabaPhoneNumbers,
        FleetKind::GraphWabaTemplates,
        FleetKind::GraphWabaSubscribedApps,
        FleetKind::GraphIds,
        FleetKind::GraphDebugToken,
    ];

    /// The name `/fleet/stats` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetKind::OnPremHealth => "onprem_health",
            FleetKind::OnPremSupport => "onprem_support",
            FleetKind::OnPremLogin => "onprem_login",
            FleetKind::Dialog360 => "dialog360",
            FleetKind::Kapso => "kapso",
            // The name scripts already read.
            FleetKind::CloudApi => "graph",
            FleetKind::GraphOwnedWabas => "graph_owned_wabas",
            FleetKind::GraphClientWabas => "graph_client_wabas",
            FleetKind::GraphWaba => "graph_waba",
            FleetKind::GraphWabaPhoneNumbers => "graph_waba_phone_numbers",
            FleetKind::GraphWabaTemplates => "graph_waba_message_templates",
            FleetKind::GraphWabaSubscribedApps => "graph_waba_subscribed_apps",
            FleetKind::GraphIds => "graph_ids",
            FleetKind::GraphDebugToken => "graph_debug_token",
        }
    }

    /// Whether the kind is a Graph API request (its name starts with `graph`).
    pub fn is_graph(self) -> bool {
        self.index() >= FleetKind::CloudApi.index()
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A part of a prerendered body.
#[derive(Debug)]
enum Seg {
    Lit(Box<str>),
    /// The phone number id.
    Id,
    /// The display phone number.
    Display,
    /// The index, in decimal.
    Index,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ` (On-Premises `device_iso8601`).
    Now,
    /// `YYYY-MM-DDTHH:MM:SSZ` (Kapso `timestamp`).
    KapsoNow,
    /// The WABA's id ([`meta::WABA_ID`] for a number of no business).
    WabaId,
    /// The business's id ([`meta::BUSINESS_ID`] for a number of no business).
    BusinessId,
    /// The template's id, the index counting templates.
    TemplateId,
}

/// The holes of a template, as they are written in the JSON it is made from.
const PLACEHOLDERS: [&str; 8] = [
    "@@FLEET_ID@@",
    "@@FLEET_DISPLAY@@",
    "@@FLEET_INDEX@@",
    "@@FLEET_NOW@@",
    "@@FLEET_KAPSO_NOW@@",
    "@@FLEET_WABA@@",
    "@@FLEET_BUSINESS@@",
    "@@FLEET_TEMPLATE@@",
];
const ID: &str = PLACEHOLDERS[0];
const DISPLAY: &str = PLACEHOLDERS[1];
const INDEX: &str = PLACEHOLDERS[2];
const NOW: &str = PLACEHOLDERS[3];
const KAPSO_NOW: &str = PLACEHOLDERS[4];
const WABA: &str = PLACEHOLDERS[5];
const BUSINESS: &str = PLACEHOLDERS[6];
const TEMPLATE: &str = PLACEHOLDERS[7];

/// The segment of the placeholder at `index` in [`PLACEHOLDERS`].
fn hole(index: usize) -> Seg {
    match index {
        0 => Seg::Id,
        1 => Seg::Display,
        2 => Seg::Index,
        3 => Seg::Now,
        4 => Seg::KapsoNow,
        5 => Seg::WabaId,
        6 => Seg::BusinessId,
        _ => Seg::TemplateId,
    }
}

/// What fills the holes of a template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Splice {
    /// The number (or template) index.
    i: usize,
    /// The WABA, when there is one.
    waba: Option<usize>,
    /// The business, when there is one.
    business: Option<usize>,
}

impl Splice {
    /// Number (or instance, channel, config) `i`, of no business.
    fn of(i: usize) -> Self {
        Splice {
            i,
            ..Splice::default()
        }
    }
}

/// A body rendered once, with holes for what differs per target and per request.
#[derive(Debug)]
struct BodyTemplate {
    /// The whole body when it has no holes: answered without a copy.
    whole: Option<Bytes>,
    segs: Vec<Seg>,
    literal_len: usize,
}

impl BodyTemplate {
    fn new(value: &Value) -> Self {
        let text = value.to_string();
        let mut segs = Vec::new();
        let mut rest = text.as_str();
        loop {
            let next = PLACEHOLDERS
                .iter()
                .enumerate()
                .filter_map(|(index, p)| rest.find(p).map(|at| (at, index)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, index)) => {
                    if at > 0 {
                        segs.push(Seg::Lit(rest[..at].into()));
                    }
                    segs.push(hole(index));
                    rest = &rest[at + PLACEHOLDERS[index].len()..];
                }
                None => {
                    if !rest.is_empty() {
                        segs.push(Seg::Lit(rest.into()));
                    }
                    break;
                }
            }
        }
        let whole = match segs.as_slice() {
            [] => Some(Bytes::new()),
            [Seg::Lit(l)] => Some(Bytes::copy_from_slice(l.as_bytes())),
            _ => None,
        };
        let literal_len = segs
            .iter()
            .map(|s| match s {
                Seg::Lit(l) => l.len(),
                _ => 0,
            })
            .sum();
        BodyTemplate {
            whole,
            segs,
            literal_len,
        }
    }

    fn render(&self, i: usize) -> Bytes {
        if let Some(whole) = &self.whole {
            return whole.clone();
        }
        let mut out = String::with_capacity(self.literal_len + 64);
        self.write(&mut out, Splice::of(i));
        Bytes::from(out)
    }

    /// Appends the body, its holes filled from `splice`, to `out`.
    fn write(&self, out: &mut String, splice: Splice) {
        let i = splice.i;
        let mut now: Option<DateTime<Utc>> = None;
        for seg in &self.segs {
            match seg {
                Seg::Lit(l) => out.push_str(l),
                Seg::Id => {
                    let _ = write!(out, "{}", PHONE_NUMBER_ID_BASE + i as u64);
                }
                Seg::Display => {
                    let _ = write!(out, "+1 555-{i:07}");
                }
                Seg::Index => {
                    let _ = write!(out, "{i}");
                }
                Seg::Now => {
                    let t = *now.get_or_insert_with(Utc::now);
                    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
                }
                Seg::KapsoNow => {
                    let t = *now.get_or_insert_with(Utc::now);
                    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
                }
                Seg::WabaId => match splice.waba {
                    Some(w) => {
                        let _ = write!(out, "{}", graph::WABA_ID_BASE + w as u64);
                    }
                    None => out.push_str(meta::WABA_ID),
                },
                Seg::BusinessId => match splice.business {
                    Some(b) => {
                        let _ = write!(out, "{}", graph::BUSINESS_ID_BASE + b as u64);
                    }
                    None => out.push_str(meta::BUSINESS_ID),
                },
                Seg::TemplateId => {
                    let _ = write!(out, "{}", graph::TEMPLATE_ID_BASE + i as u64);
                }
            }
        }
    }
}

/// The fleet: prerendered bodies and counters.
pub(crate) struct Fleet {
    size: usize,
    /// The businesses of the Graph API, within the maxima.
    shape: FleetBusinesses,
    /// Numbers the Graph API knows: `max(size, shape.numbers())`.
    graph_numbers: usize,
    started: std::time::Instant,
    /// By [`FleetKind::index`].
    totals: [AtomicU64; KINDS],
    /// By [`FleetKind::index`], then target ([`Fleet::targets_of`]).
    per_target: [Box<[AtomicU32]>; KINDS],
    /// Ring of `(second << 32) | count`, by second modulo [`PER_SECOND_KEPT`].
    per_second: Box<[AtomicU64]>,
    /// By gateway state.
    onprem_health: Vec<BodyTemplate>,
    onprem_support: Vec<BodyTemplate>,
    /// By can_send.
    dialog360: Vec<BodyTemplate>,
    /// By `(can_send * 3 + quality) * 2 + tier`; the holes of its WABA and business in its
    /// `health_status`.
    graph: Vec<BodyTemplate>,
    /// A WABA's `health_status`.
    waba_health: BodyTemplate,
    /// By `template * 2 + paused`.
    templates: Vec<BodyTemplate>,
    /// `debug_token`'s `granular_scopes`.
    granular_scopes: String,
    /// By `((can_send * 3 + quality) * 4 + kapso status) * 2 + webhook subscribed`.
    kapso: Vec<BodyTemplate>,
    usage_headers: Vec<(HeaderName, HeaderValue)>,
    faults: FleetFaults,
    /// Faults answered, by [`FleetFault::index`].
    faults_answered: [AtomicU64; 5],
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A number in the state of the given indexes, with placeholder id and names.
fn template_number(can_send: usize, quality: usize, tier: usize) -> meta::PhoneNumber {
    let mut n = MetaState::initial().numbers.remove(0);
    n.id = ID.to_string();
    n.display_phone_number = DISPLAY.to_string();
    n.verified_name = format!("Fleet {INDEX}");
    n.quality_rating = QUALITIES[quality].to_string();
    n.tier = TIERS[tier].to_string();
    n.health.set("PHONE_NUMBER", CAN_SEND[can_send], None);
    n
}

/// The Cloud API state of one number of the fleet, in the given states.
fn cloud_of(number: meta::PhoneNumber, kapso: KapsoState) -> MetaState {
    let mut cloud = MetaState::initial();
    cloud.numbers = vec![number];
    cloud.kapso = vec![kapso];
    cloud
}

/// Puts the holes of the WABA and business into the entities of a `health_status`.
fn owner_holes(health: &mut Value) {
    let Some(entities) = health.get_mut("entities").and_then(Value::as_array_mut) else {
        return;
    };
    for e in entities.iter_mut().filter_map(Value::as_object_mut) {
        let hole = match e.get("entity_type").and_then(Value::as_str) {
            Some("WABA") => WABA,
            Some("BUSINESS") => BUSINESS,
            _ => continue,
        };
        e.insert("id".into(), json!(hole));
    }
}

impl Fleet {
    pub(crate) fn new(
        size: usize,
        businesses: FleetBusinesses,
        started_at: DateTime<Utc>,
        faults: FleetFaults,
    ) -> Self {
        let shape = businesses.clipped();
        let graph_numbers = size.max(shape.numbers());
        let meta = json!({"version": META_VERSION, "api_status": "stable"});
        let mut onprem_health = Vec::new();
        let mut onprem_support = Vec::new();
        for (gateway, socket) in GATEWAYS {
            let mut state = ClusterState::initial(Cluster::Single, started_at);
            for node in &mut state.nodes {
                node.gateway_status = gateway.to_string();
                node.socket_conn = socket.to_string();
            }
            onprem_health.push(BodyTemplate::new(&json!({
                "health": state.health(Shape::Normal),
                "meta": meta,
            })));
            let mut support = state.support(started_at, Shape::Normal);
            if let Some(m) = support.as_object_mut() {
                m.insert("device_iso8601".into(), json!(NOW));
            }
            onprem_support.push(BodyTemplate::new(&json!({
                "support": support,
                "meta": meta,
            })));
        }
        let kapso_state = |status: usize, subscribed: bool| {
            let mut k = KapsoState {
                status: String::new(),
                error: None,
                webhook_subscribed: subscribed,
                webhook_verified: true,
            };
            k.set_status(KAPSO_STATUSES[status], None);
            k
        };
        let mut dialog360 = Vec::new();
        for can_send in 0..CAN_SEND.len() {
            let cloud = cloud_of(template_number(can_send, 0, 0), kapso_state(0, true));
            dialog360.push(BodyTemplate::new(&dialog360::dialog360_body(&cloud, 0)));
        }
        let mut graph = Vec::new();
        let mut kapso = Vec::new();
        for can_send in 0..CAN_SEND.len() {
            for quality in 0..QUALITIES.len() {
                for tier in 0..TIERS.len() {
                    let cloud = cloud_of(
                        template_number(can_send, quality, tier),
                        kapso_state(0, true),
                    );
                    let n = &cloud.numbers[0];
                    let mut m = serde_json::Map::new();
                    for field in cloud_api::PHONE_NUMBER_FIELDS {
                        if field == "id" {
                            continue;
                        }
                        if let Some(v) = cloud_api::number_field(&cloud, n, field) {
                            m.insert(field.to_string(), v);
                        }
                    }
                    m.insert("id".into(), json!(ID));
                    if let Some(health) = m.get_mut("health_status") {
                        owner_holes(health);
                    }
                    graph.push(BodyTemplate::new(&Value::Object(m)));
                }
                for status in 0..KAPSO_STATUSES.len() {
                    for subscribed in [false, true] {
                        let cloud = cloud_of(
                            template_number(can_send, quality, 0),
                            kapso_state(status, subscribed),
                        );
                        let mut body = kapso::kapso_body(&cloud, 0, started_at);
                        if let Some(m) = body.as_object_mut() {
                            m.insert("timestamp".into(), json!(KAPSO_NOW));
                        }
                        kapso.push(BodyTemplate::new(&body));
                    }
                }
            }
        }
        let mut probe = Response::new(SimBody::full(Bytes::new()));
        cloud_api::add_usage_headers(
            &mut probe,
            meta::INITIAL_BUSINESS_USAGE,
            meta::INITIAL_APP_USAGE,
        );
        let usage_headers = probe
            .headers()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut waba_health = MetaState::initial().health_status(meta::Subject::Waba);
        owner_holes(&mut waba_health);
        let mut templates = Vec::new();
        for t in 0..graph::TEMPLATES_PER_WABA {
            for paused in [false, true] {
                templates.push(BodyTemplate::new(&json!({
                    "id": TEMPLATE,
                    "name": TEMPLATE_NAMES[t],
                    "language": TEMPLATE_LANGUAGES[t],
                    "status": if paused { "PAUSED" } else { "APPROVED" },
                    "category": TEMPLATE_CATEGORIES[t],
                    "quality_score": {"score": if paused { "RED" } else { "GREEN" }},
                })));
            }
        }
        let targets = [size, graph_numbers, shape.businesses, shape.wabas(), 0];
        Fleet {
            size,
            shape,
            graph_numbers,
            started: std::time::Instant::now(),
            totals: Default::default(),
            per_target: std::array::from_fn(|k| {
                let n = targets[Fleet::targets_of(FleetKind::ALL[k])];
                (0..n).map(|_| AtomicU32::new(0)).collect()
            }),
            per_second: (0..PER_SECOND_KEPT).map(|_| AtomicU64::new(0)).collect(),
            onprem_health,
            onprem_support,
            dialog360,
            graph,
            waba_health: BodyTemplate::new(&waba_health),
            templates,
            granular_scopes: graph::granular_scopes(&shape),
            kapso,
            usage_headers,
            faults,
            faults_answered: Default::default(),
        }
    }

    /// The fault target `i` of `family` answers with now, if any; counted.
    fn fault_now(&self, family: FleetFamily, i: usize) -> Option<FleetFault> {
        let fault = self.faults.pick(family, i, self.second())?;
        self.faults_answered[fault.index()].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    pub(crate) fn faults_answered(&self, kind: FleetFault) -> u64 {
        self.faults_answered[kind.index()].load(Ordering::Relaxed)
    }

    fn second(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// What the targets of a kind are counted by, as an index into `[fleet size, Graph
    /// numbers, businesses, WABAs, none]`.
    fn targets_of(kind: FleetKind) -> usize {
        match kind {
            FleetKind::OnPremHealth
            | FleetKind::OnPremSupport
            | FleetKind::OnPremLogin
            | FleetKind::Dialog360
            | FleetKind::Kapso => 0,
            FleetKind::CloudApi | FleetKind::GraphIds => 1,
            FleetKind::GraphOwnedWabas | FleetKind::GraphClientWabas => 2,
            FleetKind::GraphWaba
            | FleetKind::GraphWabaPhoneNumbers
            | FleetKind::GraphWabaTemplates
            | FleetKind::GraphWabaSubscribedApps => 3,
            FleetKind::GraphDebugToken => 4,
        }
    }

    fn count(&self, kind: FleetKind, target: Option<usize>) {
        self.count_many(kind, target);
    }

    /// Counts one request of `kind` that names `targets`.
    fn count_many(&self, kind: FleetKind, targets: impl IntoIterator<Item = usize>) {
        self.totals[kind.index()].fetch_add(1, Ordering::Relaxed);
        for i in targets {
            if let Some(c) = self.per_target[kind.index()].get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        let second = self.second();
        let slot = &self.per_second[(second % PER_SECOND_KEPT) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if current >> 32 == second {
                current.wrapping_add(1)
            } else {
                (second << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
    }

    /// Requests counted in `second`; 0 when that second is no longer kept (or to come).
    fn in_second(&self, second: u64) -> u32 {
        let v = self.per_second[(second % PER_SECOND_KEPT) as usize].load(Ordering::Relaxed);
        if v >> 32 == second {
            (v & 0xffff_ffff) as u32
        } else {
            0
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn requests(&self, kind: FleetKind) -> u64 {
        self.totals[kind.index()].load(Ordering::Relaxed)
    }

    pub(crate) fn target_requests(&self, kind: FleetKind, i: usize) -> u64 {
        self.per_target[kind.index()]
            .get(i)
            .map_or(0, |c| u64::from(c.load(Ordering::Relaxed)))
    }

    /// `(first second, counts)` from `from` (clamped to what is kept) to the current second,
    /// excluded.
    pub(crate) fn per_second(&self, from: Option<u64>) -> (u64, Vec<u32>) {
        let now = self.second();
        let oldest = now.saturating_sub(PER_SECOND_KEPT - 1);
        let from = from
            .unwrap_or_else(|| now.saturating_sub(PER_SECOND_DEFAULT))
            .clamp(oldest, now);
        (from, (from..now).map(|s| self.in_second(s)).collect())
    }

    /// The index in `text` when it is a fleet index: decimal, no leading zero, below the size.
    fn index(&self, text: &str) -> Option<usize> {
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'))
            && text.len() <= 19;
        canonical
            .then(|| text.parse::<usize>().ok())
            .flatten()
            .filter(|&i| i < self.size)
    }

    fn stats(&self, query: Option<&str>) -> Value {
        let query = cloud_api::Query::parse(query);
        let from = query.get("from").and_then(|f| f.parse::<u64>().ok());
        let (from, counts) = self.per_second(from);
        let requests: serde_json::Map<String, Value> = FleetKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), json!(self.requests(*k))))
            .collect();
        let graph_requests: u64 = FleetKind::ALL
            .iter()
            .filter(|k| k.is_graph())
            .map(|k| self.requests(*k))
            .sum();
        let shape = &self.shape;
        let mut body = json!({
            "targets": self.size,
            "businesses": {
                "businesses": shape.businesses,
                "wabas_per_business": shape.wabas_per_business,
                "numbers_per_waba": shape.numbers_per_waba,
                "wabas": shape.wabas(),
                "numbers": shape.numbers(),
            },
            "graph_requests": graph_requests,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "second": self.second(),
            "requests": requests,
            "per_second": {"from": from, "counts": counts},
            "faults": {
                "ratio": self.faults.ratio,
                "kinds": self.faults.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "answered": FleetFault::ALL
                    .iter()
                    .map(|k| (k.as_str().to_string(), json!(self.faults_answered(*k))))
                    .collect::<serde_json::Map<String, Value>>(),
            },
        });
        if query.get("per_target") == Some("1") {
            let per_target: serde_json::Map<String, Value> = FleetKind::ALL
                .iter()
                .map(|k| {
                    let counts: Vec<u32> = self.per_target[k.index()]
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .collect();
                    (k.as_str().to_string(), json!(counts))
                })
                .collect();
            if let Some(m) = body.as_object_mut() {
                m.insert("per_target".into(), Value::Object(per_target));
            }
        }
        body
    }
}

fn json_bytes(body: Bytes) -> Response<SimBody> {
    body_response(StatusCode::OK, "application/json", body)
}

/// The good answer `body`, or what `fault` makes of it; `reply` words the error answers in
/// the API's envelope.
fn answer(
    fault: Option<FleetFault>,
    body: impl FnOnce() -> Bytes,
    reply: impl FnOnce(FaultReply<'_>) -> Response<SimBody>,
) -> Action {
    let Some(fault) = fault else {
        return Action::Respond(json_bytes(body()));
    };
    answer_with_fault(
        Some(&fault.fault()),
        // A fault's rarer answer may parse the prerendered body again.
        || {
            let value = serde_json::from_slice(&body()).unwrap_or(Value::Null);
            (StatusCode::OK, value)
        },
        reply,
    )
}

/// The error answers of faults on an On-Premises instance, in its envelope.
fn onprem_fault_reply(reply: FaultReply<'_>) -> Response<SimBody> {
    match reply {
        FaultReply::Error {
            status,
            code,
            title,
        } => envelope(status, code, title, "Injected by the simulator", meta()),
        FaultReply::TooManyRequests => envelope(
            StatusCode::TOO_MANY_REQUESTS,
            1015,
            "Too many requests",
            "Request rate limit exceeded",
            meta(),
        ),
        FaultReply::ServiceUnavailable => envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            1016,
            "System overloaded",
            "The Coreapp is under heavy load",
            meta(),
        ),
    }
}

fn meta() -> Value {
    json!({"version": META_VERSION, "api_status": "stable"})
}

fn onprem_error(status: StatusCode, code: i64, title: &str, details: &str) -> Action {
    Action::Respond(envelope(status, code, title, details, meta()))
}

/// `(scheme in lower case, credentials)` of the `Authorization` header.
fn authorization(req: &Request<Incoming>) -> Option<(String, &str)> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, credentials) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .map(|(s, c)| (s, c.trim()))
        .unwrap_or((value, ""));
    Some((scheme.to_ascii_lowercase(), credentials))
}

impl Simulator {
    fn fleet(&self) -> Option<&Fleet> {
        self.inner.fleet.as_ref()
    }

    /// The number of targets of each kind the fleet serves (0: no fleet).
    pub fn fleet_size(&self) -> usize {
        self.fleet().map_or(0, Fleet::size)
    }

    /// Fleet requests of a kind, rejected ones included.
    pub fn fleet_requests(&self, kind: FleetKind) -> u64 {
        self.fleet().map_or(0, |f| f.requests(kind))
    }

    /// Fleet faults of a kind answered so far ([`SimulatorOptions::fleet_faults`]).
    pub fn fleet_faults_answered(&self, kind: FleetFault) -> u64 {
        self.fleet().map_or(0, |f| f.faults_answered(kind))
    }

    /// Fleet requests of a kind that named target `i`, rejected ones included.
    pub fn fleet_target_requests(&self, kind: FleetKind, i: usize) -> u64 {
        self.fleet().map_or(0, |f| f.target_requests(kind, i))
    }

    /// Fleet requests per second since the simulator was created: the first second and the
    /// counts from it to the current second, excluded (see the module docs).
    pub fn fleet_requests_per_second(&self, from: Option<u64>) -> (u64, Vec<u32>) {
        self.fleet().map_or((0, Vec::new()), |f| f.per_second(from))
    }

    /// Answers a request under `/fleet`; `rest` is the path after it.
    pub(super) fn prepare_fleet(
        &self,
        req: &Request<Incoming>,
        rest: &str,
        local: Option<SocketAddr>,
    ) -> Action {
        let Some(fleet) = self.fleet() else {
            return onprem_error(
                StatusCode::NOT_FOUND,
                1006,
                "Resource not found",
                "No fleet: start the simulator with --targets N or --fleet.businesses B",
            );
        };
        if rest == "/stats" {
            let body = fleet.stats(req.uri().query());
            return Action::Respond(json_bytes(Bytes::from(body.to_string())));
        }
        if rest == "/config" {
            let base = format!("http://{}", authority(req, local));
            return self.fleet_config_answer(req, &base);
        }
        if let Some(r) = rest.strip_prefix("/onprem/") {
            return self.fleet_onprem(fleet, req, r);
        }
        if let Some(r) = rest.strip_prefix("/360dialog") {
            return self.fleet_dialog360(fleet, req, r);
        }
        if let Some(r) = rest.strip_prefix("/kapso") {
            return self.fleet_kapso(fleet, req, r);
        }
        if let Some(r) = rest.strip_prefix("/graph") {
            if r.is_empty() || r.starts_with('/') {
                return self.fleet_graph(fleet, req, r, &authority(req, local));
            }
        }
        let shown: String = rest.chars().take(200).collect();
        onprem_error(
            StatusCode::NOT_FOUND,
            1006,
            "Resource not found",
            &format!("Unknown path /fleet{shown}"),
        )
    }

    fn fleet_config_answer(&self, req: &Request<Incoming>, base: &str) -> Action {
        let query = cloud_api::Query::parse(req.uri().query());
        let size = self.fleet_size();
        let most_businesses = self.fleet().map_or(0, |f| f.shape.businesses);
        let number = |key: &str, default: usize| -> Result<usize, String> {
            match query.get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| format!("{key} must be a number, not {v:?}")),
            }
        };
        let duration = |key: &str, default: Duration| -> Result<Duration, String> {
            match query.get(key) {
                None => Ok(default),
                Some(v) => humantime::parse_duration(v)
                    .map_err(|e| format!("{key} {v:?}: {e}"))
                    .and_then(|d| {
                        if d.is_zero() {
                            Err(format!("{key} must be above 0"))
                        } else {
                            Ok(d)
                        }
                    }),
            }
        };
        let parse = || -> Result<FleetConfigAsk, String> {
            let businesses = number("businesses", 0)?;
            // Asking for businesses alone gives them alone.
            let default_onprem = if query.get("businesses").is_some() {
                0
            } else {
                size / 10
            };
            let default_cloud = if query.get("businesses").is_some() {
                0
            } else {
                size - default_onprem
            };
            let ask = FleetConfigAsk {
                onprem: number("onprem", default_onprem)?,
                cloud: number("cloud", default_cloud)?,
                businesses,
                interval: duration("interval", Duration::from_secs(30))?,
                discovery_interval: duration("discovery_interval", Duration::from_secs(600))?,
                debug_token: matches!(query.get("debug_token"), Some("1" | "true")),
            };
            if ask.onprem > size || ask.cloud > size {
                return Err(format!(
                    "the fleet has {size} On-Premises instances and {size} numbers: \
                     onprem and cloud must not exceed it"
                ));
            }
            if businesses > most_businesses {
                return Err(format!(
                    "the fleet has {most_businesses} businesses: businesses must not exceed it"
                ));
            }
            Ok(ask)
        };
        match parse() {
            Ok(ask) => {
                let text = fleet_config_at(base, self.options(), &ask);
                Action::Respond(body_response(
                    StatusCode::OK,
                    "application/yaml",
                    Bytes::from(text),
                ))
            }
            Err(e) => Action::Respond(body_response(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                Bytes::from(format!("{e}\n")),
            )),
        }
    }

    fn fleet_onprem(&self, fleet: &Fleet, req: &Request<Incoming>, rest: &str) -> Action {
        let (index, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let tail = format!("/{tail}");
        let Some(endpoint) = super::Endpoint::ALL.into_iter().find(|e| e.path() == tail) else {
            return onprem_error(
                StatusCode::NOT_FOUND,
                1006,
                "Resource not found",
                "Unknown path",
            );
        };
        let kind = match endpoint {
            super::Endpoint::Health => FleetKind::OnPremHealth,
            super::Endpoint::Support => FleetKind::OnPremSupport,
            super::Endpoint::Login => FleetKind::OnPremLogin,
        };
        let i = fleet.index(index);
        fleet.count(kind, i);
        let Some(i) = i else {
            return onprem_error(
                StatusCode::NOT_FOUND,
                1006,
                "Resource not found",
                "No such fleet instance",
            );
        };
        if req.method() != endpoint.method() {
            let mut resp = envelope(
                StatusCode::METHOD_NOT_ALLOWED,
                1000,
                "Method not allowed",
                &format!("{} accepts {} only", endpoint.path(), endpoint.method()),
                meta(),
            );
            resp.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static(if endpoint == super::Endpoint::Login {
                    "POST"
                } else {
                    "GET"
                }),
            );
            return Action::Respond(resp);
        }
        let auth = authorization(req);
        let auth = auth.as_ref().map(|(s, c)| (s.as_str(), *c));
        let opts = &self.inner.opts;
        let allowed = match (endpoint, auth) {
            (super::Endpoint::Login, Some(("basic", c))) => {
                c == base64_encode(format!("{}:{}", opts.username, opts.password).as_bytes())
            }
            (super::Endpoint::Health, Some(("apikey", c))) => !c.is_empty() && c == opts.api_key,
            (super::Endpoint::Health | super::Endpoint::Support, Some(("bearer", c))) => {
                c == FLEET_TOKEN
            }
            _ => false,
        };
        if !allowed {
            return onprem_error(
                StatusCode::UNAUTHORIZED,
                1005,
                "Access denied",
                "Invalid credentials",
            );
        }
        let g = gateway_index(i);
        let body = || match endpoint {
            super::Endpoint::Health => fleet.onprem_health[g].render(i),
            super::Endpoint::Support => fleet.onprem_support[g].render(i),
            super::Endpoint::Login => {
                let expires = chrono::TimeDelta::from_std(opts.token_ttl)
                    .ok()
                    .and_then(|d| Utc::now().checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                let body = json!({
                    "users": [{
                        "token": FLEET_TOKEN,
                        "expires_after": expires.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
                    }],
                    "meta": meta(),
                });
                Bytes::from(body.to_string())
            }
        };
        answer(
            fleet.fault_now(FleetFamily::OnPrem, i),
            body,
            onprem_fault_reply,
        )
    }

    fn fleet_dialog360(&self, fleet: &Fleet, req: &Request<Incoming>, rest: &str) -> Action {
        if rest.trim_end_matches('/') != "/health_status" {
            return Action::Respond(dialog360_error(StatusCode::NOT_FOUND, "Not found"));
        }
        let i = header_text(req, dialog360::DIALOG360_KEY_HEADER)
            .and_then(|k| k.strip_prefix(DIALOG360_KEY_PREFIX))
            .and_then(|i| fleet.index(i));
        fleet.count(FleetKind::Dialog360, i);
        if req.method() != Method::GET {
            return method_not_allowed(dialog360_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ));
        }
        let Some(i) = i else {
            return Action::Respond(dialog360_error(StatusCode::UNAUTHORIZED, "Invalid api_key"));
        };
        answer(
            fleet.fault_now(FleetFamily::Cloud, i),
            || fleet.dialog360[can_send_index(i)].render(i),
            |reply| match reply {
                FaultReply::Error { status, title, .. } => dialog360_error(status, title),
                FaultReply::TooManyRequests => {
                    dialog360_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
                }
                FaultReply::ServiceUnavailable => {
                    dialog360_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                }
            },
        )
    }

    fn fleet_kapso(&self, fleet: &Fleet, req: &Request<Incoming>, rest: &str) -> Action {
        let config_id = rest
            .strip_prefix("/api/v1/whatsapp_configs/")
            .and_then(|r| r.strip_suffix("/health"))
            .filter(|id| !id.is_empty() && !id.contains('/'));
        let Some(config_id) = config_id else {
            return Action::Respond(kapso_error(StatusCode::NOT_FOUND, "Not found"));
        };
        let i = config_id
            .strip_prefix(KAPSO_CONFIG_PREFIX)
            .and_then(|i| fleet.index(i));
        fleet.count(FleetKind::Kapso, i);
        if req.method() != Method::GET {
            return method_not_allowed(kapso_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ));
        }
        let key = &self.inner.opts.kapso_api_key;
        if !header_text(req, kapso::KAPSO_KEY_HEADER).is_some_and(|k| !k.is_empty() && k == key) {
            return Action::Respond(kapso_error(StatusCode::UNAUTHORIZED, "Invalid API key"));
        }
        let Some(i) = i else {
            return Action::Respond(kapso_error(
                StatusCode::NOT_FOUND,
                "WhatsApp config not found",
            ));
        };
        let n = can_send_index(i) * 3 + quality_index(i);
        let k = (n * 4 + kapso_status_index(i)) * 2 + usize::from(kapso_webhook_subscribed(i));
        answer(
            fleet.fault_now(FleetFamily::Cloud, i),
            || fleet.kapso[k].render(i),
            |reply| match reply {
                FaultReply::Error { status, title, .. } => kapso_error(status, title),
                FaultReply::TooManyRequests => {
                    kapso_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
                }
                FaultReply::ServiceUnavailable => kapso_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service temporarily unavailable",
                ),
            },
        )
    }
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's), with `$` doubled so that the
/// exporter's `${VAR}` expansion leaves it alone.
fn quoted(text: &str) -> String {
    serde_json::to_string(&text.replace('$', "$$")).unwrap_or_default()
}

/// An exporter configuration for a fleet simulator served at `handle`: `onprem` On-Premises
/// targets (instances `0..onprem`, with the API key for `/v1/health` and a login for
/// `/v1/support`) and `cloud` Cloud API numbers, one target each, split over `dialog360`
/// (numbers `0..d`), `kapso` (the next `k`) and `cloud_api` targets (the rest), a third each
/// (the first kinds get the remainder), every target polled every `interval` (timeout: the
/// shorter of 10 s and the interval).
///
/// Targets are named `onprem-{i}`, `dialog360-{i}`, `kapso-{i}` and `cloud-{i}` by their
/// instance or number index. The simulator must serve a fleet of at least
/// `max(onprem, cloud)` ([`SimulatorOptions::fleet`]); `GET /fleet/config` answers the same.
pub fn fleet_config(
    handle: &SimulatorHandle,
    onprem: usize,
    cloud: usize,
    interval: Duration,
) -> String {
    fleet_config_for(
        handle,
        &FleetConfigAsk {
            onprem,
            cloud,
            interval,
            ..FleetConfigAsk::default()
        },
    )
}

/// What an exporter configuration of the fleet holds ([`fleet_config_for`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfigAsk {
    /// On-Premises targets, instances `0..onprem`.
    pub onprem: usize,
    /// Cloud API numbers `0..cloud`, one target each (see [`fleet_config`]).
    pub cloud: usize,
    /// `cloud_api` targets of businesses `0..businesses`, one each, by `business_id`.
    pub businesses: usize,
    /// Every target's interval (timeout: the shorter of 10 s and the interval).
    pub interval: Duration,
    /// The business targets' `discovery_interval`.
    pub discovery_interval: Duration,
    /// Whether the business targets ask `debug_token` with the app token
    /// ([`FLEET_APP_TOKEN`], `debug_token_access_token`).
    pub debug_token: bool,
}

impl Default for FleetConfigAsk {
    fn default() -> Self {
        FleetConfigAsk {
            onprem: 0,
            cloud: 0,
            businesses: 0,
            interval: Duration::from_secs(30),
            discovery_interval: Duration::from_secs(600),
            debug_token: false,
        }
    }
}

/// An exporter configuration for a fleet simulator served at `handle`: [`fleet_config`]'s
/// targets, and one `cloud_api` target per business, named `business-{b}`, with its
/// `business_id`, the Graph token, `api_version`, `discovery_interval` and
/// [`business_series_limit`]. The simulator
/// must have at least `businesses` ([`SimulatorOptions::fleet_businesses`]).
///
/// [`SimulatorOptions::fleet_businesses`]: super::SimulatorOptions::fleet_businesses
pub fn fleet_config_for(handle: &SimulatorHandle, ask: &FleetConfigAsk) -> String {
    fleet_config_at(
        &format!("http://{}", handle.addr),
        handle.simulator().options(),
        ask,
    )
}

/// Series a business target of the fleet may export: [`SERIES_PER_NUMBER`] per number of a
/// business and 1,000 more, room for its WABAs and token (the exporter's default, 1,000,
/// would leave out all but a few numbers).
pub fn business_series_limit(shape: FleetBusinesses) -> usize {
    shape
        .wabas_per_business
        .saturating_mul(shape.numbers_per_waba)
        .saturating_mul(SERIES_PER_NUMBER)
        .saturating_add(1000)
}

/// Room for the series of one number in [`business_series_limit`]: the exporter writes
/// about 46 (its state sets).
pub const SERIES_PER_NUMBER: usize = 100;

/// How many of `cloud` numbers go to dialog360, kapso and cloud_api targets.
pub fn cloud_split(cloud: usize) -> [usize; 3] {
    let third = cloud / 3;
    let rest = cloud % 3;
    [
        third + usize::from(rest > 0),
        third + usize::from(rest > 1),
        third,
    ]
}

fn fleet_config_at(base: &str, opts: &SimulatorOptions, ask: &FleetConfigAsk) -> String {
    let FleetConfigAsk {
        onprem,
        cloud,
        businesses,
        interval,
        ..
    } = *ask;
    let timeout = interval.min(Duration::from_secs(10));
    let mut out = String::with_capacity(64 + (onprem + cloud + businesses) * 200);
    let what = if businesses > 0 {
        format!(
            "{onprem} On-Premises targets, {cloud} Cloud API numbers and {businesses} businesses"
        )
    } else {
        format!("{onprem} On-Premises targets and {cloud} Cloud API numbers")
    };
    let _ = write!(
        out,
        "# {what} of the simulator's fleet.\n\
         global:\n  interval: {}\n  timeout: {}\ntargets:\n",
        humantime::format_duration(interval),
        humantime::format_duration(timeout),
    );
    let (api_key, user, password) = (
        quoted(&opts.api_key),
        quoted(&opts.username),
        quoted(&opts.password),
    );
    for i in 0..onprem {
        let _ = writeln!(
            out,
            "  - {{name: onprem-{i}, type: onprem, base_url: {}, api_key: {api_key}, username: {user}, password: {password}}}",
            quoted(&format!("{base}/{FLEET_PREFIX}/onprem/{i}")),
        );
    }
    let [d, k, _] = cloud_split(cloud);
    let d360 = quoted(&format!("{base}/{FLEET_PREFIX}/360dialog"));
    for i in 0..d {
        let _ = writeln!(
            out,
            "  - {{name: dialog360-{i}, type: dialog360, base_url: {d360}, api_key: {}}}",
            quoted(&dialog360_key(i)),
        );
    }
    let kapso = quoted(&format!("{base}/{FLEET_PREFIX}/kapso"));
    let kapso_key = quoted(&opts.kapso_api_key);
    for i in d..d + k {
        let _ = writeln!(
            out,
            "  - {{name: kapso-{i}, type: kapso, base_url: {kapso}, api_key: {kapso_key}, config_id: {}}}",
            quoted(&kapso_config_id(i)),
        );
    }
    let graph = quoted(&format!("{base}/{FLEET_PREFIX}/graph"));
    let token = quoted(&opts.cloud_api_token);
    for i in d + k..cloud {
        let _ = writeln!(
            out,
            "  - {{name: cloud-{i}, type: cloud_api, base_url: {graph}, access_token: {token}, phone_number_ids: [\"{}\"]}}",
            phone_number_id(i),
        );
    }
    let discovery = humantime::format_duration(ask.discovery_interval);
    let series_limit = business_series_limit(opts.fleet_businesses.clipped());
    let app_token = if ask.debug_token {
        format!(", debug_token_access_token: {}", quoted(FLEET_APP_TOKEN))
    } else {
        String::new()
    };
    for b in 0..businesses {
        let _ = writeln!(
            out,
            "  - {{name: business-{b}, type: cloud_api, base_url: {graph}, access_token: {token}, business_id: \"{}\", api_version: {}, discovery_interval: {discovery}, series_limit: {series_limit}{app_token}}}",
            business_id(b),
            cloud_api::DEFAULT_VERSION,
        );
    }
    out
}

impl SimulatorHandle {
    /// The base URL of fleet On-Premises instance `i`, e.g. `http://127.0.0.1:40123/fleet/onprem/7`.
    pub fn fleet_onprem_base_url(&self, i: usize) -> String {
        format!("http://{}/{FLEET_PREFIX}/onprem/{i}", self.addr)
    }

    /// The base URL of the fleet's 360dialog.
    pub fn fleet_dialog360_base_url(&self) -> String {
        format!("http://{}/{FLEET_PREFIX}/360dialog", self.addr)
    }

    /// The base URL of the fleet's Kapso.
    pub fn fleet_kapso_base_url(&self) -> String {
        format!("http://{}/{FLEET_PREFIX}/kapso", self.addr)
    }

    /// The base URL of the fleet's Graph API.
    pub fn fleet_cloud_api_base_url(&self) -> String {
        format!("http://{}/{FLEET_PREFIX}/graph", self.addr)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn templates_split_on_placeholders() {
        let t =
            BodyTemplate::new(&json!({"id": ID, "name": format!("Fleet {INDEX}"), "d": DISPLAY}));
        assert!(t.whole.is_none());
        let body = t.render(42);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], json!(phone_number_id(42)));
        assert_eq!(v["name"], json!("Fleet 42"));
        assert_eq!(v["d"], json!(display_phone_number(42)));
        let plain = BodyTemplate::new(&json!({"a": 1}));
        assert_eq!(plain.render(3), Bytes::from_static(b"{\"a\":1}"));
    }

    #[test]
    fn states_mix_as_documented() {
        let n = 10_000;
        let count = |f: &dyn Fn(usize) -> bool| (0..n).filter(|&i| f(i)).count();
        assert_eq!(count(&|i| number_can_send(i) == BLOCKED), 200);
        assert_eq!(count(&|i| number_can_send(i) == LIMITED), 1000);
        assert_eq!(count(&|i| number_quality(i) == "RED"), 500);
        assert_eq!(count(&|i| number_quality(i) == "YELLOW"), 1500);
        assert_eq!(count(&|i| number_tier(i) == "TIER_2K"), 1250);
        assert_eq!(count(&|i| kapso_status(i) == "error"), 100);
        assert!(count(&|i| kapso_status(i) == "unhealthy") > 0);
        assert!(count(&|i| !kapso_webhook_subscribed(i)) > 0);
        for g in ["connected", "disconnected", "connecting", "unregistered"] {
            assert!(count(&|i| onprem_gateway_status(i) == g) > 0, "{g}");
        }
        assert_eq!(cloud_split(9000), [3000, 3000, 3000]);
        assert_eq!(cloud_split(10), [4, 3, 3]);
        assert_eq!(cloud_split(2), [1, 1, 0]);
    }

    fn faults(ratio: f64) -> FleetFaults {
        FleetFaults {
            ratio,
            ..FleetFaults::default()
        }
    }

    #[test]
    fn about_the_ratio_of_targets_fails_each_second() {
        let f = faults(0.05);
        for family in [FleetFamily::OnPrem, FleetFamily::Cloud] {
            for second in [0, 1, 2, 59, 1799, 86_400] {
                let failing = (0..10_000)
                    .filter(|&i| f.pick(family, i, second).is_some())
                    .count();
                assert!(
                    (400..=600).contains(&failing),
                    "{family:?} second {second}: {failing} of 10000"
                );
            }
        }
        let f = faults(0.5);
        let failing = (0..10_000)
            .filter(|&i| f.pick(FleetFamily::Cloud, i, 7).is_some())
            .count();
        assert!((4_700..=5_300).contains(&failing), "{failing}");
    }

    #[test]
    fn failing_targets_are_stable_within_a_second_and_rotate_across_seconds() {
        let f = faults(0.05);
        let set = |family, second| -> Vec<usize> {
            (0..10_000)
                .filter(|&i| f.pick(family, i, second).is_some())
                .collect()
        };
        assert_eq!(set(FleetFamily::OnPrem, 3), set(FleetFamily::OnPrem, 3));
        let a = set(FleetFamily::OnPrem, 3);
        let b = set(FleetFamily::OnPrem, 4);
        let both = a.iter().filter(|i| b.contains(i)).count();
        // Independent draws: about 5 % of a failing set fails again the next second.
        assert!(
            both * 5 < a.len(),
            "{both} of {} fail in both seconds",
            a.len()
        );
        // On-Premises instance i and number i are different targets.
        let cloud = set(FleetFamily::Cloud, 3);
        let shared = a.iter().filter(|i| cloud.contains(i)).count();
        assert!(shared * 5 < a.len(), "{shared} of {} shared", a.len());
        // Over a minute, most targets have failed at least once.
        let ever = (0..10_000)
            .filter(|&i| (0..60).any(|s| f.pick(FleetFamily::Cloud, i, s).is_some()))
            .count();
        assert!(ever > 9_000, "{ever}");
    }

    #[test]
    fn every_kind_is_picked_about_evenly() {
        let f = faults(0.05);
        let mut by_kind = [0usize; 5];
        for second in 0..20 {
            for i in 0..10_000 {
                if let Some(k) = f.pick(FleetFamily::Cloud, i, second) {
                    by_kind[k.index()] += 1;
                }
            }
        }
        let total: usize = by_kind.iter().sum();
        for kind in FleetFault::ALL {
            let n = by_kind[kind.index()];
            // A fifth each, give or take a few percent of the total.
            assert!(
                n * 100 >= total * 17 && n * 100 <= total * 23,
                "{kind}: {n} of {total}"
            );
        }
    }

    #[test]
    fn no_ratio_or_no_kind_means_no_fault_and_the_kinds_can_be_narrowed() {
        let none = faults(0.0);
        let no_kind = FleetFaults {
            ratio: 1.0,
            kinds: Vec::new(),
        };
        let nan = faults(f64::NAN);
        let all = faults(1.0);
        let only_slow = FleetFaults {
            ratio: 1.0,
            kinds: vec![FleetFault::Slow],
        };
        for i in 0..1_000 {
            for second in [0, 1, 500] {
                assert_eq!(none.pick(FleetFamily::OnPrem, i, second), None);
                assert_eq!(no_kind.pick(FleetFamily::OnPrem, i, second), None);
                assert_eq!(nan.pick(FleetFamily::OnPrem, i, second), None);
                assert!(all.pick(FleetFamily::Cloud, i, second).is_some());
                assert_eq!(
                    only_slow.pick(FleetFamily::Cloud, i, second),
                    Some(FleetFault::Slow)
                );
            }
        }
        assert_eq!(FleetFaults::default().ratio, 0.0);
        assert_eq!(FleetFaults::default().kinds, FleetFault::ALL.to_vec());
    }

    #[test]
    fn fault_kinds_have_names_and_answers() {
        for kind in FleetFault::ALL {
            assert_eq!(kind.as_str().parse::<FleetFault>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!("timeout".parse::<FleetFault>().is_err());
        assert_eq!(FleetFault::ServerError.fault(), Fault::Status(500));
        assert_eq!(
            FleetFault::Unavailable.fault(),
            Fault::ServiceUnavailable {
                retry_after: Some("1".into())
            }
        );
        assert_eq!(FleetFault::MalformedJson.fault(), Fault::MalformedJson);
        assert_eq!(FleetFault::Slow.fault(), Fault::Slow(FLEET_SLOW_DELAY));
        assert_eq!(FleetFault::Reset.fault(), Fault::Reset);
        // Slow answers come after any timeout /fleet/config writes.
        assert!(FLEET_SLOW_DELAY > Duration::from_secs(10));
    }

    #[test]
    fn config_text_quotes_values() {
        let opts = SimulatorOptions {
            api_key: "a\"b${X}-0123456789".into(),
            ..SimulatorOptions::default()
        };
        let ask = FleetConfigAsk {
            onprem: 1,
            cloud: 3,
            interval: Duration::from_secs(5),
            ..FleetConfigAsk::default()
        };
        let text = fleet_config_at("http://h:1", &opts, &ask);
        assert!(text.contains("interval: 5s\n  timeout: 5s\n"), "{text}");
        assert!(
            text.contains(r#"api_key: "a\"b$${X}-0123456789""#),
            "{text}"
        );
        assert!(text.contains("name: dialog360-0,"), "{text}");
        assert!(text.contains("name: kapso-1,"), "{text}");
        assert!(text.contains("name: cloud-2,"), "{text}");
        assert_eq!(text.matches("\n  - {").count(), 4, "{text}");
    }
}
