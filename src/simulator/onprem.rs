//! The simulated On-Premises API clusters (Webapp `/v1/health`, `/v1/support`, login):
//! their nodes, their payloads and the scripted scenario that [`Simulator::step`] plays.
//!
//! # Initial state
//!
//! Every value below is fixed; only `device_iso8601` (the simulator's clock plus the node's
//! skew) and `expire_timestamp` ([`EXPIRE_AFTER`] after the simulator was created) depend on
//! the time the simulator started.
//!
//! ## `single` (one instance, [`Cluster::Single`])
//!
//! | field | value |
//! |---|---|
//! | `gateway_status` | `connected` |
//! | `socket_conn` | `UP` |
//! | `db_engine` | `MYSQL` ([`SINGLE_DB_ENGINE`]) |
//! | `debug_info` | `15550100001` ([`SINGLE_PHONE`]; `unregistered` while the gateway is `unregistered`) |
//! | `free_space_data` | 9223372036853727000 ([`FREE_SPACE_UNLIMITED`], as in the seed) |
//! | `free_space_logs` | 14269902848 |
//! | `free_space_media_incoming`, `free_space_media_outgoing` | 9223372036853727000 |
//! | `multi_connect` | `false` |
//!
//! ## `ha` ([`Cluster::Ha`], keys [`HA_NODES`])
//!
//! | node | role | `gateway_status` | `socket_conn` | `shards` |
//! |---|---|---|---|---|
//! | `wa-ha-1:9f1c2a7b3d4e` | `primary_master` | `disconnected` | `DN` | `[[-1,-1],[0,0]]` |
//! | `wa-ha-2:4b7e8d1c0a92` | `secondary_master` | `disconnected` | `DN` | `[]` |
//! | `wa-ha-3:c3d5e7f9a1b2` | `coreapp` | `connected` | `UP` | `[]` |
//!
//! `db_engine` `PGSQL`, `debug_info` `15550100002`, `multi_connect` `false`, free space
//! [`HA_FREE_SPACE`] on every node.
//!
//! ## `multiconnect` ([`Cluster::Multiconnect`], keys [`MULTICONNECT_NODES`])
//!
//! | node | role | `gateway_status` | `socket_conn` | `shards` |
//! |---|---|---|---|---|
//! | `wa-mc-1:1d2e3f4a5b6c` | `primary_master` | `connected` | `UP` | `[[-1,-1],[0,0]]` |
//! | `wa-mc-2:6c5b4a3f2e1d` | `secondary_master` | `disconnected` | `DN` | `[]` |
//! | `wa-mc-3:0a1b2c3d4e5f` | `coreapp` | `connected` | `UP` | `[[1,1]]` |
//! | `wa-mc-4:f5e4d3c2b1a0` | `coreapp` | `connected` | `UP` | `[[2,2]]` |
//!
//! `db_engine` `MYSQL`, `debug_info` `15550100003`, `multi_connect` `true`, free space
//! [`MULTICONNECT_FREE_SPACE`] on every node.
//!
//! ## Common to every node
//!
//! `version` [`VERSION`] (`v2.53.2`, also `meta.version`), `description`
//! `WhatsApp Business API Client v2.53.2`, `context` `healthcheck`, `os_name`
//! [`OS_NAME`] (`ubuntu-x86_64`), `os_version` [`OS_VERSION`] (`20.04`), `lc` `en`, `lg` `US`,
//! `schema` [`SCHEMA_TABLES`] = [`SCHEMA_VERSIONS`] (axolotl 3, callback 2, cluster 6,
//! config 5, contact 9, jobqueue 4, message 12), clock skew 0, `expire_timestamp` the
//! simulator's start plus [`EXPIRE_AFTER`] (42 days) as `YYYY-MM-DDTHH:MM:SS` (no zone),
//! `device_iso8601` as `YYYY-MM-DDTHH:MM:SS.sssZ`, `db_info` `["libmysqlclient 8.0.36"]` or
//! `["libpq 15.6"]`, `env` a few non-secret `WA_*` settings, `e2e` a fixed identity
//! timestamp and registration id per node.
//!
//! # Scenario
//!
//! [`SCENARIO_LEN`] steps, then it starts over. After a full cycle every cluster is back to
//! its initial state except the `message` schema version of the single instance, which is
//! bumped once per cycle (schemas only go up).
//!
//! | step | single | ha | multiconnect |
//! |---|---|---|---|
//! | 1 | `connecting` / `SC` | `wa-ha-3` `disconnected` / `DN`; `wa-ha-2` answers `errors` (1011 "Service not ready") in place of its status | `wa-mc-4` `disconnected` / `DN` |
//! | 2 | `connected` / `UP receiving offline` | failover: `wa-ha-2` answers its status again, becomes `coreapp`, `connecting` / `SC`; `wa-ha-3` becomes `secondary_master` | `wa-mc-4` `connecting` / `SC` |
//! | 3 | `UP` | `wa-ha-2` `connected` / `UP` | `wa-mc-4` `connected` / `UP` |
//! | 4 | `disconnected` / `DN` | | `wa-mc-3` clock skew +95 s |
//! | 5 | `uninitialized` / `UNK`, schema `message` +1 | | |
//! | 6 | `unregistered` / `DN` (`debug_info` `unregistered`) | | `wa-mc-1` `connecting` / `SC` |
//! | 7 | `connected` / `UP` | | `wa-mc-1` `connected` / `UP` |
//! | 8 | | failback: `wa-ha-2` `disconnected` / `DN` | |
//! | 9 | | `wa-ha-3` becomes `coreapp`, `connecting` / `SC`; `wa-ha-2` becomes `secondary_master` | |
//! | 10 | | `wa-ha-3` `connected` / `UP` | `wa-mc-3` clock skew 0 |
//! | 11 | `free_space_logs` back to its initial value (log rotation) | | |
//! | 12 | (quiet) | | |
//!
//! In steps 1 to 10 the single instance's `free_space_logs` shrinks by 1 GiB per step.
//!
//! [`Simulator::step`]: super::Simulator::step

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde_json::{json, Map, Value};

use super::Cluster;

/// Build version of every node, also sent as `meta.version`.
pub const VERSION: &str = "v2.53.2";
/// Build version of the single instance.
pub const SINGLE_VERSION: &str = VERSION;
/// `meta.version` of every response.
pub const META_VERSION: &str = VERSION;

/// Node keys (`hostname:container-id`) of the `ha` cluster, in the order of the table above.
pub const HA_NODES: [&str; 3] = [
    "wa-ha-1:9f1c2a7b3d4e",
    "wa-ha-2:4b7e8d1c0a92",
    "wa-ha-3:c3d5e7f9a1b2",
];
/// Initial roles of [`HA_NODES`].
pub const HA_ROLES: [&str; 3] = ["primary_master", "secondary_master", "coreapp"];
/// Initial `gateway_status` of [`HA_NODES`].
pub const HA_GATEWAY_STATUS: [&str; 3] = ["disconnected", "disconnected", "connected"];

/// Node keys of the `multiconnect` cluster, in the order of the table above.
pub const MULTICONNECT_NODES: [&str; 4] = [
    "wa-mc-1:1d2e3f4a5b6c",
    "wa-mc-2:6c5b4a3f2e1d",
    "wa-mc-3:0a1b2c3d4e5f",
    "wa-mc-4:f5e4d3c2b1a0",
];
/// Initial roles of [`MULTICONNECT_NODES`].
pub const MULTICONNECT_ROLES: [&str; 4] =
    ["primary_master", "secondary_master", "coreapp", "coreapp"];
/// Initial `gateway_status` of [`MULTICONNECT_NODES`].
pub const MULTICONNECT_GATEWAY_STATUS: [&str; 4] =
    ["connected", "disconnected", "connected", "connected"];

/// The `free_space_*` value the seed shows for an effectively unlimited volume.
pub const FREE_SPACE_UNLIMITED: u64 = 9_223_372_036_853_727_000;
/// Volume names, as in `free_space_<volume>`.
pub const VOLUMES: [&str; 4] = ["data", "logs", "media_incoming", "media_outgoing"];
/// Initial free space of the single instance, in the order of [`VOLUMES`].
pub const SINGLE_FREE_SPACE: [u64; 4] = [
    FREE_SPACE_UNLIMITED,
    14_269_902_848,
    FREE_SPACE_UNLIMITED,
    FREE_SPACE_UNLIMITED,
];
/// Initial free space of every `ha` node, in the order of [`VOLUMES`].
pub const HA_FREE_SPACE: [u64; 4] = [
    107_374_182_400,
    21_474_836_480,
    FREE_SPACE_UNLIMITED,
    FREE_SPACE_UNLIMITED,
];
/// Initial free space of every `multiconnect` node, in the order of [`VOLUMES`].
pub const MULTICONNECT_FREE_SPACE: [u64; 4] = [
    214_748_364_800,
    32_212_254_720,
    FREE_SPACE_UNLIMITED,
    FREE_SPACE_UNLIMITED,
];
/// How much the single instance's `free_space_logs` shrinks per scenario step (1 GiB).
pub const LOGS_SHRINK_PER_STEP: u64 = 1 << 30;

/// Tables of the `schema` object.
pub const SCHEMA_TABLES: [&str; 7] = [
    "axolotl", "callback", "cluster", "config", "contact", "jobqueue", "message",
];
/// Initial schema versions, in the order of [`SCHEMA_TABLES`].
pub const SCHEMA_VERSIONS: [u64; 7] = [3, 2, 6, 5, 9, 4, 12];

/// `db_engine` of each cluster.
pub const SINGLE_DB_ENGINE: &str = "MYSQL";
/// `db_engine` of every `ha` node.
pub const HA_DB_ENGINE: &str = "PGSQL";
/// `db_engine` of every `multiconnect` node.
pub const MULTICONNECT_DB_ENGINE: &str = "MYSQL";

/// Business phone numbers (`debug_info` while registered).
pub const SINGLE_PHONE: &str = "15550100001";
/// Business phone number of the `ha` cluster.
pub const HA_PHONE: &str = "15550100002";
/// Business phone number of the `multiconnect` cluster.
pub const MULTICONNECT_PHONE: &str = "15550100003";

/// `os_name` of every node.
pub const OS_NAME: &str = "ubuntu-x86_64";
/// `os_version` of every node.
pub const OS_VERSION: &str = "20.04";

/// `expire_timestamp` is this long after the simulator was created (6 weeks).
pub const EXPIRE_AFTER: Duration = Duration::from_secs(42 * 24 * 3600);
/// Format of `expire_timestamp` (no zone; UTC).
pub const EXPIRE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Number of steps in one cycle of the scripted scenario.
pub const SCENARIO_LEN: u64 = 12;

/// How a payload is shaped: normal, or deliberately damaged by a [`super::Fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Normal,
    /// `gateway_status` (health) or `socket_conn` (support) left out.
    MissingField,
    /// `gateway_status` (health) or `socket_conn` (support) set to `null`.
    NullField,
    /// `gateway_status` `rebooting` (health) or `socket_conn` `XYZ` (support).
    UnknownValue,
    /// One item odd, the rest normal: in a cluster, the first node's health a bare string
    /// (`"connected"`) instead of an object, and the first node's `free_space_logs` a
    /// string in support. The single instance answers normally.
    OddItem,
}

/// One Webapp/Coreapp container (or the single instance).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// `hostname:container-id`; empty for the single instance.
    pub key: String,
    /// `None` for the single instance.
    pub role: Option<String>,
    pub gateway_status: String,
    /// `(code, title)` of the error the node answers in place of its `gateway_status`, as a
    /// coreapp that is not ready does (1011 "Service not ready").
    pub health_error: Option<(i64, String)>,
    pub socket_conn: String,
    /// `None` for the single instance.
    pub shards: Option<Vec<[i64; 2]>>,
    /// In the order of [`VOLUMES`].
    pub free_space: [u64; 4],
    pub clock_skew_secs: i64,
    /// In the order of [`SCHEMA_TABLES`].
    pub schema: [u64; 7],
    pub version: String,
    pub expire_timestamp: NaiveDateTime,
    db_engine: &'static str,
    phone: &'static str,
    identity_timestamp: &'static str,
    registration_id: u32,
}

/// One simulated installation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterState {
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
}

fn socket_for(gateway_status: &str) -> &'static str {
    if gateway_status == "connected" {
        "UP"
    } else {
        "DN"
    }
}

impl ClusterState {
    /// The documented initial state of `cluster`.
    pub fn initial(cluster: Cluster, started_at: DateTime<Utc>) -> Self {
        let expire = started_at
            .checked_add_signed(
                chrono::TimeDelta::from_std(EXPIRE_AFTER).unwrap_or(chrono::TimeDelta::zero()),
            )
            .unwrap_or(started_at)
            .naive_utc();
        // Whole seconds, as the format prints them.
        let expire = expire.with_nanosecond(0).unwrap_or(expire);
        let node = |key: &str,
                    role: Option<&str>,
                    gateway: &str,
                    shards: Option<Vec<[i64; 2]>>,
                    free_space: [u64; 4],
                    db_engine: &'static str,
                    phone: &'static str,
                    identity_timestamp: &'static str,
                    registration_id: u32| Node {
            key: key.to_string(),
            role: role.map(str::to_string),
            gateway_status: gateway.to_string(),
            health_error: None,
            socket_conn: socket_for(gateway).to_string(),
            shards,
            free_space,
            clock_skew_secs: 0,
            schema: SCHEMA_VERSIONS,
            version: VERSION.to_string(),
            expire_timestamp: expire,
            db_engine,
            phone,
            identity_timestamp,
            registration_id,
        };
        let nodes = match cluster {
            Cluster::Single => vec![node(
                "",
                None,
                "connected",
                None,
                SINGLE_FREE_SPACE,
                SINGLE_DB_ENGINE,
                SINGLE_PHONE,
                "2024-03-18T09:12:44",
                1_204_417,
            )],
            Cluster::Ha => {
                let ids = [
                    "2024-02-05T11:02:19",
                    "2024-02-05T11:02:57",
                    "2024-02-05T11:03:31",
                ];
                let regs = [2_311_047, 2_311_852, 2_312_606];
                (0..3)
                    .map(|i| {
                        let shards = if i == 0 {
                            vec![[-1, -1], [0, 0]]
                        } else {
                            Vec::new()
                        };
                        node(
                            HA_NODES[i],
                            Some(HA_ROLES[i]),
                            HA_GATEWAY_STATUS[i],
                            Some(shards),
                            HA_FREE_SPACE,
                            HA_DB_ENGINE,
                            HA_PHONE,
                            ids[i],
                            regs[i],
                        )
                    })
                    .collect()
            }
            Cluster::Multiconnect => {
                let shards: [Vec<[i64; 2]>; 4] = [
                    vec![[-1, -1], [0, 0]],
                    Vec::new(),
                    vec![[1, 1]],
                    vec![[2, 2]],
                ];
                let ids = [
                    "2023-11-06T08:41:27",
                    "2023-11-06T08:42:03",
                    "2023-11-06T08:42:40",
                    "2023-11-06T08:43:12",
                ];
                let regs = [3_870_116, 3_870_524, 3_871_093, 3_871_688];
                shards
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        node(
                            MULTICONNECT_NODES[i],
                            Some(MULTICONNECT_ROLES[i]),
                            MULTICONNECT_GATEWAY_STATUS[i],
                            Some(s),
                            MULTICONNECT_FREE_SPACE,
                            MULTICONNECT_DB_ENGINE,
                            MULTICONNECT_PHONE,
                            ids[i],
                            regs[i],
                        )
                    })
                    .collect()
            }
        };
        ClusterState { cluster, nodes }
    }

    fn multi_connect(&self) -> bool {
        self.cluster == Cluster::Multiconnect
    }

    /// The nodes a selector names: on the single instance every selector names the
    /// instance; elsewhere `None` names every node and `Some(key)` the node with that key.
    pub fn select<'a>(
        &'a mut self,
        node: Option<&'a str>,
    ) -> impl Iterator<Item = &'a mut Node> + 'a {
        let single = self.cluster == Cluster::Single;
        self.nodes
            .iter_mut()
            .filter(move |n| single || node.is_none_or(|k| n.key == k))
    }

    fn node(&mut self, key: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.key == key)
    }

    /// Removes a node; the single instance cannot be removed. Returns whether one was.
    pub fn remove(&mut self, key: &str) -> bool {
        if self.cluster == Cluster::Single {
            return false;
        }
        let before = self.nodes.len();
        self.nodes.retain(|n| n.key != key);
        self.nodes.len() != before
    }

    /// Adds `count` Coreapp nodes, copies of the last node keyed
    /// `wa-extra-{n}:{n as 12 hex digits}`; the single instance has one node only.
    pub fn add_nodes(&mut self, count: usize) -> bool {
        if self.cluster == Cluster::Single {
            return false;
        }
        let Some(template) = self.nodes.last().cloned() else {
            return false;
        };
        let first = self.nodes.len();
        self.nodes.extend((first..first + count).map(|n| Node {
            key: format!("wa-extra-{n}:{n:012x}"),
            role: Some("coreapp".to_string()),
            ..template.clone()
        }));
        true
    }

    /// The `health` object (without `meta`).
    pub fn health(&self, shape: Shape) -> Value {
        let entry = |n: &Node| {
            let mut m = Map::new();
            match (shape, &n.health_error) {
                (Shape::Normal | Shape::OddItem, Some((code, title))) => {
                    m.insert(
                        "errors".into(),
                        json!([{"code": code, "title": title, "details": "Wacore is not instantiated. Please check wacore log for details."}]),
                    );
                }
                (Shape::Normal | Shape::OddItem, None) => {
                    m.insert("gateway_status".into(), json!(n.gateway_status));
                }
                (Shape::MissingField, _) => {}
                (Shape::NullField, _) => {
                    m.insert("gateway_status".into(), Value::Null);
                }
                (Shape::UnknownValue, _) => {
                    m.insert("gateway_status".into(), json!("rebooting"));
                }
            }
            if let Some(role) = &n.role {
                m.insert("role".into(), json!(role));
            }
            Value::Object(m)
        };
        if self.cluster == Cluster::Single {
            self.nodes.first().map(entry).unwrap_or_else(|| json!({}))
        } else {
            Value::Object(
                self.nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let value = match (shape, i) {
                            (Shape::OddItem, 0) => json!("connected"),
                            _ => entry(n),
                        };
                        (n.key.clone(), value)
                    })
                    .collect(),
            )
        }
    }

    /// The `support` object (without `meta`), as seen at `now`.
    pub fn support(&self, now: DateTime<Utc>, shape: Shape) -> Value {
        let multi = self.multi_connect();
        let entry = |n: &Node| {
            let device = now
                .checked_add_signed(chrono::TimeDelta::seconds(n.clock_skew_secs))
                .unwrap_or(now);
            let schema: Map<String, Value> = SCHEMA_TABLES
                .iter()
                .zip(n.schema)
                .map(|(t, v)| (t.to_string(), json!(v)))
                .collect();
            let (db_info, db_port) = if n.db_engine == "PGSQL" {
                (json!(["libpq 15.6"]), "5432")
            } else {
                (json!(["libmysqlclient 8.0.36"]), "3306")
            };
            let debug_info = if n.gateway_status == "unregistered" {
                "unregistered"
            } else {
                n.phone
            };
            let mut m = Map::new();
            m.insert("context".into(), json!("healthcheck"));
            m.insert("db_engine".into(), json!(n.db_engine));
            m.insert("db_info".into(), db_info);
            m.insert("debug_info".into(), json!(debug_info));
            m.insert(
                "description".into(),
                json!(format!("WhatsApp Business API Client {}", n.version)),
            );
            m.insert(
                "device_iso8601".into(),
                json!(device.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            );
            m.insert(
                "e2e".into(),
                json!({
                    "identity_timestamp": n.identity_timestamp,
                    "registration_id": n.registration_id,
                }),
            );
            m.insert(
                "env".into(),
                json!([
                    format!("WA_DB_ENGINE={}", n.db_engine),
                    "WA_DB_HOSTNAME=db.internal",
                    format!("WA_DB_PORT={db_port}"),
                    format!("WA_APP_MULTICONNECT={}", u8::from(multi)),
                    "WA_WEB_LOGLEVEL=info",
                ]),
            );
            m.insert(
                "expire_timestamp".into(),
                json!(n.expire_timestamp.format(EXPIRE_FORMAT).to_string()),
            );
            for (volume, bytes) in VOLUMES.iter().zip(n.free_space) {
                m.insert(format!("free_space_{volume}"), json!(bytes));
            }
            m.insert("lc".into(), json!("en"));
            m.insert("lg".into(), json!("US"));
            m.insert("multi_connect".into(), json!(multi));
            m.insert("os_name".into(), json!(OS_NAME));
            m.insert("os_version".into(), json!(OS_VERSION));
            m.insert("schema".into(), Value::Object(schema));
            match shape {
                Shape::Normal | Shape::OddItem => {
                    m.insert("socket_conn".into(), json!(n.socket_conn));
                }
                Shape::MissingField => {}
                Shape::NullField => {
                    m.insert("socket_conn".into(), Value::Null);
                }
                Shape::UnknownValue => {
                    m.insert("socket_conn".into(), json!("XYZ"));
                }
            }
            m.insert("version".into(), json!(n.version));
            if let Some(role) = &n.role {
                m.insert("role".into(), json!(role));
            }
            if let Some(shards) = &n.shards {
                m.insert("shards".into(), json!(shards));
            }
            Value::Object(m)
        };
        if self.cluster == Cluster::Single {
            self.nodes.first().map(entry).unwrap_or_else(|| json!({}))
        } else {
            Value::Object(
                self.nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let mut value = entry(n);
                        if let (Shape::OddItem, 0, Value::Object(m)) = (shape, i, &mut value) {
                            m.insert("free_space_logs".into(), json!("unknown"));
                        }
                        (n.key.clone(), value)
                    })
                    .collect(),
            )
        }
    }
}

/// Index of a volume name (`logs` or `free_space_logs`).
pub(crate) fn volume_index(volume: &str) -> Option<usize> {
    let v = volume.strip_prefix("free_space_").unwrap_or(volume);
    VOLUMES.iter().position(|x| *x == v)
}

/// Index of a schema table name.
pub(crate) fn schema_index(table: &str) -> Option<usize> {
    SCHEMA_TABLES.iter().position(|x| *x == table)
}

fn set(node: Option<&mut Node>, gateway: Option<&str>, socket: &str) {
    if let Some(n) = node {
        if let Some(g) = gateway {
            n.gateway_status = g.to_string();
        }
        n.socket_conn = socket.to_string();
    }
}

fn set_role(node: Option<&mut Node>, role: &str) {
    if let Some(n) = node {
        n.role = Some(role.to_string());
    }
}

fn one(s: &mut ClusterState) -> Option<&mut Node> {
    s.nodes.first_mut()
}

/// Plays scenario step `step` (1-based, `1..=SCENARIO_LEN`; others do nothing) on the
/// clusters, indexed as [`Cluster::index`].
pub(crate) fn apply_step(clusters: &mut [ClusterState; 3], step: u64) {
    let [single, ha, mc] = clusters;

    if (1..=10).contains(&step) {
        if let Some(n) = one(single) {
            n.free_space[1] = n.free_space[1].saturating_sub(LOGS_SHRINK_PER_STEP);
        }
    }
    match step {
        1 => {
            set(one(single), Some("connecting"), "SC");
            set(ha.node(HA_NODES[2]), Some("disconnected"), "DN");
            if let Some(n) = ha.node(HA_NODES[1]) {
                n.health_error = Some((1011, "Service not ready".to_owned()));
            }
            set(mc.node(MULTICONNECT_NODES[3]), Some("disconnected"), "DN");
        }
        2 => {
            set(one(single), Some("connected"), "UP receiving offline");
            if let Some(n) = ha.node(HA_NODES[1]) {
                n.health_error = None;
            }
            set_role(ha.node(HA_NODES[1]), "coreapp");
            set(ha.node(HA_NODES[1]), Some("connecting"), "SC");
            set_role(ha.node(HA_NODES[2]), "secondary_master");
            set(mc.node(MULTICONNECT_NODES[3]), Some("connecting"), "SC");
        }
        3 => {
            set(one(single), None, "UP");
            set(ha.node(HA_NODES[1]), Some("connected"), "UP");
            set(mc.node(MULTICONNECT_NODES[3]), Some("connected"), "UP");
        }
        4 => {
            set(one(single), Some("disconnected"), "DN");
            if let Some(n) = mc.node(MULTICONNECT_NODES[2]) {
                n.clock_skew_secs = 95;
            }
        }
        5 => {
            set(one(single), Some("uninitialized"), "UNK");
            if let Some(n) = one(single) {
                n.schema[6] = n.schema[6].saturating_add(1);
            }
        }
        6 => {
            set(one(single), Some("unregistered"), "DN");
            set(mc.node(MULTICONNECT_NODES[0]), Some("connecting"), "SC");
        }
        7 => {
            set(one(single), Some("connected"), "UP");
            set(mc.node(MULTICONNECT_NODES[0]), Some("connected"), "UP");
        }
        8 => {
            set(ha.node(HA_NODES[1]), Some("disconnected"), "DN");
        }
        9 => {
            set_role(ha.node(HA_NODES[2]), "coreapp");
            set(ha.node(HA_NODES[2]), Some("connecting"), "SC");
            set_role(ha.node(HA_NODES[1]), "secondary_master");
        }
        10 => {
            set(ha.node(HA_NODES[2]), Some("connected"), "UP");
            if let Some(n) = mc.node(MULTICONNECT_NODES[2]) {
                n.clock_skew_secs = 0;
            }
        }
        11 => {
            if let Some(n) = one(single) {
                n.free_space[1] = SINGLE_FREE_SPACE[1];
            }
        }
        _ => {}
    }
}
