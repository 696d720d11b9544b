//! The `onprem` provider, the On-Premises API client (Webapp): `/v1/health`,
//! `/v1/support` and login, turned into the metrics of the contract.

pub mod client;
pub mod config;
pub mod payload;

use std::time::SystemTime;

pub use config::{Login, OnPremEndpoint, OnPremTarget};

use super::TargetClient;
use crate::exposition::{Family, Samples};
use crate::meta::MAX_LABEL_CHARS;
use crate::timestamp::unix_seconds;
use crate::upstream::{self, PollError, Polled, Reason};
use client::OnPremClient;
use payload::{HealthReport, Meta, Nodes, SupportReport};

impl TargetClient for OnPremClient {
    fn endpoints(&self) -> Vec<&'static str> {
        self.configured_endpoints()
            .iter()
            .map(|e| e.as_str())
            .collect()
    }

    fn status_samples(&self, out: &mut Samples) {
        if let Some(expiry) = self.token_expiry() {
            out.push(Family::AuthTokenExpiry, &[], unix_seconds(expiry));
        }
    }

    async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
        let endpoints = self.configured_endpoints();
        let endpoint = endpoints[index];
        let primary =
            endpoint == OnPremEndpoint::Health || !endpoints.contains(&OnPremEndpoint::Health);
        let shared = SharedSeries {
            api_info: primary,
            role: primary,
        };
        let response = self.get(endpoint).await?;
        let mut samples = Samples::new(target);
        let decode = |e: payload::PayloadError| PollError::new(Reason::Decode, e.to_string());
        let problems = match endpoint {
            OnPremEndpoint::Health => {
                let report = payload::parse_health(&response.body).map_err(decode)?;
                health_samples(&mut samples, &report, shared);
                report.problems
            }
            OnPremEndpoint::Support => {
                let report = payload::parse_support(&response.body).map_err(decode)?;
                support_samples(&mut samples, &report, shared, response.received_at);
                report.problems
            }
        };
        Ok(Polled::read(samples, problems))
    }
}

/// Documented values, pre-declared in each state set (seed 000 and 001).
pub const GATEWAY_STATUSES: &[&str] = &[
    "connected",
    "connecting",
    "disconnected",
    "uninitialized",
    "unregistered",
];
pub const ROLES: &[&str] = &["primary_master", "secondary_master", "coreapp"];
pub const SOCKET_STATES: &[&str] = &["UP", "DN", "SC", "UP receiving offline", "UNK"];

/// Which endpoint's response supplies the series both endpoints could: the envelope's
/// `whatsapp_api_info` and, in clusters, `whatsapp_node_role`. Health is preferred when
/// polled, so a series never appears twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedSeries {
    pub api_info: bool,
    pub role: bool,
}

fn nodes<T>(nodes: &Nodes<T>) -> Vec<(&str, &T)> {
    match nodes {
        Nodes::Single(node) => vec![("", node)],
        Nodes::Cluster(list) => list
            .iter()
            .map(|(key, node)| (key.as_str(), node))
            .collect(),
    }
}

fn api_info(out: &mut Samples, meta: &Option<Meta>) {
    if let Some(meta) = meta {
        out.push(
            Family::ApiInfo,
            &[
                ("version", meta.version.as_deref().unwrap_or("")),
                ("api_status", meta.api_status.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
}

pub fn health_samples(out: &mut Samples, report: &HealthReport, shared: SharedSeries) {
    if shared.api_info {
        api_info(out, &report.meta);
    }
    for (node, health) in nodes(&report.nodes) {
        match &health.gateway_status {
            Some(status) => out.state_set(
                Family::GatewayStatus,
                &[("node", node)],
                "status",
                GATEWAY_STATUSES,
                status,
            ),
            // A node that answered errors (or no status) is in none of the states: the
            // alerts count it as not connected, and its errors say why.
            None => {
                for status in GATEWAY_STATUSES {
                    out.push(
                        Family::GatewayStatus,
                        &[("node", node), ("status", status)],
                        0.0,
                    );
                }
            }
        }
        let mut errors: Vec<(String, String)> = health
            .errors
            .iter()
            .map(|e| {
                let code = e.code.map(|c| c.to_string()).unwrap_or_default();
                let title = upstream::truncate(e.title.as_deref().unwrap_or(""), MAX_LABEL_CHARS);
                (code, title)
            })
            .collect();
        // Two errors alike would be one series twice.
        errors.sort();
        errors.dedup();
        for (code, title) in &errors {
            out.push(
                Family::NodeErrorInfo,
                &[("node", node), ("code", code), ("title", title)],
                1.0,
            );
        }
        if let (true, Some(role)) = (shared.role, &health.role) {
            out.state_set(Family::NodeRole, &[("node", node)], "role", ROLES, role);
        }
    }
}

pub fn support_samples(
    out: &mut Samples,
    report: &SupportReport,
    shared: SharedSeries,
    received_at: SystemTime,
) {
    if shared.api_info {
        api_info(out, &report.meta);
    }
    let now = unix_seconds(received_at);
    for (node, support) in nodes(&report.nodes) {
        let labels = [("node", node)];
        if let (true, Some(role)) = (shared.role, &support.role) {
            out.state_set(Family::NodeRole, &labels, "role", ROLES, role);
        }
        if let Some(state) = &support.socket_conn {
            out.state_set(
                Family::SocketConnection,
                &labels,
                "state",
                SOCKET_STATES,
                state,
            );
        }
        for (volume, bytes) in &support.free_space {
            out.push(
                Family::FreeSpace,
                &[("node", node), ("volume", volume)],
                *bytes,
            );
        }
        for (schema, version) in &support.schema {
            out.push(
                Family::SchemaVersion,
                &[("node", node), ("schema", schema)],
                *version,
            );
        }
        if let Some(enabled) = support.multi_connect {
            out.push(
                Family::MulticonnectEnabled,
                &labels,
                if enabled { 1.0 } else { 0.0 },
            );
        }
        if let Some(shards) = support.shard_count {
            out.push(Family::NodeShards, &labels, shards as f64);
        }
        if let Some(version) = &support.version {
            out.push(
                Family::BuildInfo,
                &[
                    ("node", node),
                    ("version", version),
                    ("db_engine", support.db_engine.as_deref().unwrap_or("")),
                    ("os_name", support.os_name.as_deref().unwrap_or("")),
                    ("os_version", support.os_version.as_deref().unwrap_or("")),
                ],
                1.0,
            );
        }
        if let Some(expiry) = support.expire_timestamp {
            out.push(Family::BuildExpiry, &labels, expiry);
        }
        if let Some(device_time) = support.device_time {
            out.push(Family::ClockSkew, &labels, device_time - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payload::{HealthNode, SupportNode};
    use std::time::Duration;

    const BOTH: SharedSeries = SharedSeries {
        api_info: true,
        role: true,
    };

    #[test]
    fn single_instance_health() {
        let report = payload::parse_health(
            br#"{"health":{"gateway_status":"connected"},"meta":{"version":"v2.53.2","api_status":"stable"}}"#,
        )
        .unwrap();
        let mut out = Samples::new("wa");
        health_samples(&mut out, &report, BOTH);
        assert_eq!(
            out.lines(Family::ApiInfo),
            "whatsapp_api_info{target=\"wa\",version=\"v2.53.2\",api_status=\"stable\"} 1\n"
        );
        assert_eq!(
            out.lines(Family::GatewayStatus),
            "whatsapp_gateway_status{target=\"wa\",node=\"\",status=\"connected\"} 1\n\
             whatsapp_gateway_status{target=\"wa\",node=\"\",status=\"connecting\"} 0\n\
             whatsapp_gateway_status{target=\"wa\",node=\"\",status=\"disconnected\"} 0\n\
             whatsapp_gateway_status{target=\"wa\",node=\"\",status=\"uninitialized\"} 0\n\
             whatsapp_gateway_status{target=\"wa\",node=\"\",status=\"unregistered\"} 0\n"
        );
        assert_eq!(out.lines(Family::NodeRole), "");
    }

    #[test]
    fn cluster_roles_come_from_one_endpoint_only() {
        let report = HealthReport {
            meta: None,
            nodes: Nodes::Cluster(vec![(
                "h1:c1".into(),
                HealthNode {
                    gateway_status: Some("disconnected".into()),
                    role: Some("primary_master".into()),
                    errors: vec![],
                },
            )]),
            problems: Default::default(),
        };
        let mut out = Samples::new("wa");
        health_samples(
            &mut out,
            &report,
            SharedSeries {
                api_info: true,
                role: false,
            },
        );
        assert_eq!(out.lines(Family::NodeRole), "");
        assert_eq!(out.lines(Family::ApiInfo), "");
        let mut out = Samples::new("wa");
        health_samples(&mut out, &report, BOTH);
        assert!(out.lines(Family::NodeRole).contains(
            "whatsapp_node_role{target=\"wa\",node=\"h1:c1\",role=\"primary_master\"} 1\n"
        ));
    }

    #[test]
    fn a_node_with_errors_is_in_no_state_and_has_its_errors() {
        let report = payload::parse_health(
            br#"{"health":{"h1:c1":{"gateway_status":"connected","role":"primary_master"},"h3:c3":{"errors":[{"code":1011,"title":"Service not ready"},{"code":1011,"title":"Service not ready"}],"role":"coreapp"}}}"#,
        )
        .unwrap();
        let mut out = Samples::new("wa");
        health_samples(&mut out, &report, BOTH);
        let status = out.lines(Family::GatewayStatus);
        assert!(status.contains(
            "whatsapp_gateway_status{target=\"wa\",node=\"h1:c1\",status=\"connected\"} 1\n"
        ));
        for state in GATEWAY_STATUSES {
            assert!(
                status.contains(&format!(
                    "whatsapp_gateway_status{{target=\"wa\",node=\"h3:c3\",status=\"{state}\"}} 0\n"
                )),
                "{status}"
            );
        }
        assert_eq!(
            out.lines(Family::NodeErrorInfo),
            "whatsapp_node_error_info{target=\"wa\",node=\"h3:c3\",code=\"1011\",title=\"Service not ready\"} 1\n"
        );
        assert!(out
            .lines(Family::NodeRole)
            .contains("whatsapp_node_role{target=\"wa\",node=\"h3:c3\",role=\"coreapp\"} 1\n"));
        assert!(out.unknown_values().is_empty());
    }

    #[test]
    fn support_node_series() {
        let node = SupportNode {
            role: None,
            multi_connect: Some(true),
            shard_count: Some(2),
            version: Some("v2.53.2".into()),
            db_engine: Some("MYSQL".into()),
            os_name: Some("ubuntu-x86_64".into()),
            os_version: None,
            expire_timestamp: Some(1_538_058_367.0),
            device_time: Some(1_700_000_030.0),
            socket_conn: Some("UP receiving offline".into()),
            free_space: vec![("data".into(), 9223372036853727000.0)],
            schema: vec![("axolotl".into(), 1.0)],
        };
        let report = SupportReport {
            meta: None,
            nodes: Nodes::Single(node),
            problems: Default::default(),
        };
        let mut out = Samples::new("wa");
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        support_samples(&mut out, &report, BOTH, received);
        assert_eq!(
            out.lines(Family::FreeSpace),
            "whatsapp_free_space_bytes{target=\"wa\",node=\"\",volume=\"data\"} 9223372036853727000\n"
        );
        assert_eq!(
            out.lines(Family::BuildInfo),
            "whatsapp_build_info{target=\"wa\",node=\"\",version=\"v2.53.2\",db_engine=\"MYSQL\",os_name=\"ubuntu-x86_64\",os_version=\"\"} 1\n"
        );
        assert_eq!(
            out.lines(Family::ClockSkew),
            "whatsapp_clock_skew_seconds{target=\"wa\",node=\"\"} 30\n"
        );
        assert_eq!(
            out.lines(Family::BuildExpiry),
            "whatsapp_build_expiry_timestamp_seconds{target=\"wa\",node=\"\"} 1538058367\n"
        );
        assert_eq!(
            out.lines(Family::NodeShards),
            "whatsapp_node_shards{target=\"wa\",node=\"\"} 2\n"
        );
        assert_eq!(
            out.lines(Family::MulticonnectEnabled),
            "whatsapp_multiconnect_enabled{target=\"wa\",node=\"\"} 1\n"
        );
        assert!(out.lines(Family::SocketConnection).contains(
            "whatsapp_socket_connection{target=\"wa\",node=\"\",state=\"UP receiving offline\"} 1\n"
        ));
        assert_eq!(
            out.lines(Family::SchemaVersion),
            "whatsapp_schema_version{target=\"wa\",node=\"\",schema=\"axolotl\"} 1\n"
        );
    }
}
