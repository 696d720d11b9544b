//! The landing page (`/`): per target, what an on-call looks at first (the verdict, the
//! gateway status of each node, `can_send_message`, the worst quality and status of its
//! numbers, Kapso's config health) beside the result of each endpoint's last poll.
//!
//! The summary is read back from the exposition lines the target already publishes, not
//! from the providers' payloads: every provider, present or future, gets it for nothing,
//! and the page can never say something `/metrics` does not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::exporter::Exporter;
use crate::exposition::{Family, Samples};
use crate::poller::TargetStatus;
use crate::self_metrics::{REVISION, VERSION};

/// One series read back from an exposition line: `name{label="value",...} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series<'a> {
    pub name: &'a str,
    /// Label values unescaped.
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Series<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an exposition line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("no metric name")]
    NoName,
    #[error("label {0:?} has no quoted value")]
    UnquotedLabel(String),
    #[error("a label value is not closed")]
    UnclosedValue,
    #[error("the label set is not closed")]
    UnclosedLabels,
    #[error("no sample value")]
    NoValue,
    #[error("sample value {0:?} is not a number")]
    BadValue(String),
}

/// Reads one line as `exposition.rs` writes it, undoing `escape_label_value` (`\\`, `\"`,
/// `\n`); any other escape is kept as it stands, as Prometheus' parser does.
pub fn parse_series(line: &str) -> Result<Series<'_>, SeriesError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let name_end = line.find(['{', ' ']).ok_or(SeriesError::NoValue)?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err(SeriesError::NoName);
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            if rest.is_empty() {
                return Err(SeriesError::UnclosedLabels);
            }
            let (label, after_name) = rest.split_once('=').ok_or(SeriesError::UnclosedLabels)?;
            let quoted = after_name
                .strip_prefix('"')
                .ok_or_else(|| SeriesError::UnquotedLabel(label.to_owned()))?;
            let (value, after_value) = unescape_label_value(quoted)?;
            labels.push((label.trim(), value));
            rest = after_value;
        }
    }
    let value = rest.split_whitespace().next().ok_or(SeriesError::NoValue)?;
    let value = value
        .parse::<f64>()
        .map_err(|_| SeriesError::BadValue(value.to_owned()))?;
    Ok(Series {
        name,
        labels,
        value,
    })
}

/// The value up to its closing quote, unescaped, and what follows that quote.
fn unescape_label_value(text: &str) -> Result<(String, &str), SeriesError> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err(SeriesError::UnclosedValue),
            },
            c => value.push(c),
        }
    }
    Err(SeriesError::UnclosedValue)
}

/// How bad a state is for the target, in the order an on-call cares: a verdict is the
/// worst of its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    /// Not known yet: an endpoint not polled since the start or the last reload.
    Pending,
    Warn,
    Fail,
}

impl Verdict {
    /// Also the CSS class of the cells it colours.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Pending => "pending",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// The values of one state set, each with its rank (higher is worse) and what it means
/// for the target; a value the scale does not list has `other`'s rank and warns, since
/// nobody has said it is fine.
struct Scale {
    known: &'static [(&'static str, u8, Verdict)],
    other: u8,
}

impl Scale {
    fn grade(&self, value: &str) -> (u8, Verdict) {
        self.known
            .iter()
            .find(|(known, _, _)| *known == value)
            .map_or((self.other, Verdict::Warn), |&(_, rank, verdict)| {
                (rank, verdict)
            })
    }

    fn rank(&self, value: &str) -> u8 {
        self.grade(value).0
    }

    fn verdict(&self, value: &str) -> Verdict {
        self.grade(value).1
    }
}

/// `whatsapp_gateway_status`. A node that answered an error instead ranks above these.
const GATEWAY: Scale = Scale {
    known: &[
        ("connected", 0, Verdict::Ok),
        ("connecting", 2, Verdict::Warn),
        ("uninitialized", 3, Verdict::Warn),
        ("disconnected", 4, Verdict::Fail),
        ("unregistered", 5, Verdict::Fail),
    ],
    other: 1,
};

/// `whatsapp_messaging_health_status`, ranked as `meta` picks the overall status.
const CAN_SEND: Scale = Scale {
    known: &[
        ("AVAILABLE", 0, Verdict::Ok),
        ("LIMITED", 2, Verdict::Warn),
        ("BLOCKED", 3, Verdict::Fail),
    ],
    other: 1,
};

/// `whatsapp_phone_quality_rating`. UNKNOWN and NA are what Meta says of a number it has
/// not rated yet (too few messages): nothing to act on, so they do not spoil the verdict,
/// but a worst of UNKNOWN still shows that not every number is GREEN.
const QUALITY: Scale = Scale {
    known: &[
        ("GREEN", 0, Verdict::Ok),
        ("UNKNOWN", 1, Verdict::Ok),
        ("NA", 1, Verdict::Ok),
        ("YELLOW", 2, Verdict::Warn),
        ("RED", 3, Verdict::Fail),
    ],
    other: 1,
};

/// `whatsapp_phone_number_status`, worst last: a number that cannot send at all (banned,
/// restricted, disconnected) or is about to be restricted (flagged) fails; states a number
/// passes through or that someone chose (pending, unverified, migrated, deleted, rate
/// limited) warn.
const NUMBER_STATUS: Scale = Scale {
    known: &[
        ("CONNECTED", 0, Verdict::Ok),
        ("PENDING", 2, Verdict::Warn),
        ("UNVERIFIED", 3, Verdict::Warn),
        ("MIGRATED", 4, Verdict::Warn),
        ("DELETED", 5, Verdict::Warn),
        ("RATE_LIMITED", 6, Verdict::Warn),
        ("DISCONNECTED", 7, Verdict::Fail),
        ("FLAGGED", 8, Verdict::Fail),
        ("RESTRICTED", 9, Verdict::Fail),
        ("BANNED", 10, Verdict::Fail),
    ],
    other: 1,
};

/// Kapso's `whatsapp_config_health_status`.
const CONFIG_HEALTH: Scale = Scale {
    known: &[
        ("healthy", 0, Verdict::Ok),
        ("degraded", 2, Verdict::Warn),
        ("error", 3, Verdict::Fail),
        ("unhealthy", 4, Verdict::Fail),
    ],
    other: 1,
};

/// What a node last said of its connection.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeState {
    /// The `whatsapp_gateway_status` state at 1.
    Status(String),
    /// The node answered an error instead of its health (`whatsapp_node_error_info`).
    Error { code: String, title: String },
    /// Neither: no state at 1 and no error.
    Unknown,
}

impl NodeState {
    pub fn text(&self) -> String {
        match self {
            NodeState::Status(status) => status.clone(),
            NodeState::Error { code, title } => format!("error {code}: {title}"),
            NodeState::Unknown => "unknown".to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Empty for a single instance.
    pub name: String,
    pub state: NodeState,
    /// Owns shards in multiconnect mode: the users of its shards depend on it alone.
    pub owns_shards: bool,
}

/// The worst value of a state set over a target's phone numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    pub value: String,
    /// Numbers at that value.
    pub count: usize,
    /// Numbers with a value.
    pub of: usize,
}

impl Worst {
    pub fn text(&self) -> String {
        let noun = if self.of == 1 { "number" } else { "numbers" };
        format!("{} ({} of {} {noun})", self.value, self.count, self.of)
    }
}

/// What a target's samples say, in the terms of the landing page. `None` and empty where
/// the target does not publish the family (yet).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Sorted by name.
    pub nodes: Vec<Node>,
    pub can_send_message: Option<String>,
    pub quality: Option<Worst>,
    pub number_status: Option<Worst>,
    pub config_health: Option<String>,
    /// `whatsapp_access_token_valid` and `..._expiry_timestamp_seconds` (`cloud_api`).
    pub token_valid: Option<bool>,
    pub token_expires_at: Option<f64>,
    /// WABAs whose `subscribed_apps` lists no app.
    pub wabas_without_webhooks: usize,
}

impl Summary {
    /// Reads the summary from a target's snapshot parts (or any samples).
    pub fn read<'a>(parts: impl IntoIterator<Item = &'a Samples>) -> Summary {
        let mut gateway = States::default();
        let mut errors: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut shards: BTreeMap<String, f64> = BTreeMap::new();
        let mut multiconnect: BTreeMap<String, f64> = BTreeMap::new();
        let mut can_send = States::default();
        let mut quality = States::default();
        let mut number_status = States::default();
        let mut config_health = States::default();
        let mut token_valid = None;
        let mut token_expires_at = None;
        let mut wabas_without_webhooks = 0;
        for part in parts {
            for series in series_of(part, Family::AccessTokenValid) {
                token_valid = Some(series.value == 1.0);
            }
            for series in series_of(part, Family::AccessTokenExpiry) {
                token_expires_at = Some(series.value);
            }
            wabas_without_webhooks += series_of(part, Family::WebhookSubscribedApps)
                .filter(|s| s.value == 0.0)
                .count();
            gateway.read(part, Family::GatewayStatus, "node", "status", &GATEWAY);
            for series in series_of(part, Family::NodeErrorInfo) {
                if series.value == 1.0 {
                    let node = series.label("node").unwrap_or_default().to_owned();
                    let code = series.label("code").unwrap_or_default().to_owned();
                    let title = series.label("title").unwrap_or_default().to_owned();
                    errors.insert(node, (code, title));
                }
            }
            read_values(part, Family::NodeShards, &mut shards);
            read_values(part, Family::MulticonnectEnabled, &mut multiconnect);
            can_send.read(part, Family::MessagingHealthStatus, "", "status", &CAN_SEND);
            quality.read(
                part,
                Family::PhoneQualityRating,
                "phone_number_id",
                "rating",
                &QUALITY,
            );
            number_status.read(
                part,
                Family::PhoneNumberStatus,
                "phone_number_id",
                "status",
                &NUMBER_STATUS,
            );
            config_health.read(
                part,
                Family::ConfigHealthStatus,
                "",
                "status",
                &CONFIG_HEALTH,
            );
        }
        Summary {
            nodes: nodes(gateway, errors, &shards, &multiconnect),
            can_send_message: can_send.worst(&CAN_SEND).map(|w| w.value),
            quality: quality.worst(&QUALITY),
            number_status: number_status.worst(&NUMBER_STATUS),
            config_health: config_health.worst(&CONFIG_HEALTH).map(|w| w.value),
            token_valid,
            token_expires_at,
            wabas_without_webhooks,
        }
    }
}

fn series_of(part: &Samples, family: Family) -> impl Iterator<Item = Series<'_>> {
    part.lines(family).lines().filter_map(|line| {
        parse_series(line)
            .inspect_err(|e| tracing::debug!(error = %e, line, "landing page: line not read"))
            .ok()
    })
}

/// Per node, a gauge's value.
fn read_values(part: &Samples, family: Family, out: &mut BTreeMap<String, f64>) {
    for series in series_of(part, family) {
        let node = series.label("node").unwrap_or_default().to_owned();
        out.insert(node, series.value);
    }
}

/// A state set's current state per key (a node, a phone number, or the target itself
/// under the key ""): `None` while no state of the key is at 1.
#[derive(Default)]
struct States(BTreeMap<String, Option<String>>);

impl States {
    fn read(&mut self, part: &Samples, family: Family, key: &str, state: &str, scale: &Scale) {
        for series in series_of(part, family) {
            let id = series.label(key).unwrap_or_default().to_owned();
            let current = self.0.entry(id).or_default();
            let Some(value) = series.label(state) else {
                continue;
            };
            // Two states at 1 cannot come from one state set, but two endpoints could each
            // publish one: the worse is the one to show.
            if series.value == 1.0
                && current
                    .as_deref()
                    .is_none_or(|c| scale.rank(value) > scale.rank(c))
            {
                *current = Some(value.to_owned());
            }
        }
    }

    /// The worst current state over the keys and how many keys have it.
    fn worst(self, scale: &Scale) -> Option<Worst> {
        let values: Vec<String> = self.0.into_values().flatten().collect();
        let worst = values.iter().max_by_key(|v| scale.rank(v))?.clone();
        let rank = scale.rank(&worst);
        Some(Worst {
            count: values.iter().filter(|v| scale.rank(v) == rank).count(),
            of: values.len(),
            value: worst,
        })
    }
}

fn nodes(
    gateway: States,
    mut errors: BTreeMap<String, (String, String)>,
    shards: &BTreeMap<String, f64>,
    multiconnect: &BTreeMap<String, f64>,
) -> Vec<Node> {
    let mut names: Vec<String> = gateway.0.keys().cloned().collect();
    names.extend(
        errors
            .keys()
            .filter(|n| !gateway.0.contains_key(*n))
            .cloned(),
    );
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let state = match (gateway.0.get(&name), errors.remove(&name)) {
                (Some(Some(status)), _) => NodeState::Status(status.clone()),
                (_, Some((code, title))) => NodeState::Error { code, title },
                _ => NodeState::Unknown,
            };
            let owns_shards = shards.get(&name).is_some_and(|s| *s > 0.0)
                && multiconnect.get(&name).is_some_and(|m| *m == 1.0);
            Node {
                name,
                state,
                owns_shards,
            }
        })
        .collect()
}

/// A target's verdict and what led to it (empty when all is well).
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Each node's verdict, in the order of `nodes`.
///
/// In a High Availability or multiconnect cluster one connected node carries the traffic
/// and the others are disconnected by design (as `WhatsAppGatewayDown` in the alert rules
/// reads it): a disconnected node there is fine while another node is connected, unless
/// it owns multiconnect shards, whose users it alone serves.
pub fn node_verdicts(nodes: &[Node]) -> Vec<Verdict> {
    let cluster = nodes.len() > 1 || nodes.iter().any(|n| !n.name.is_empty());
    let any_connected = nodes
        .iter()
        .any(|n| matches!(&n.state, NodeState::Status(s) if s == "connected"));
    nodes
        .iter()
        .map(|node| match &node.state {
            NodeState::Error { .. } => Verdict::Fail,
            NodeState::Unknown => Verdict::Warn,
            NodeState::Status(status)
                if status == "disconnected" && cluster && any_connected && !node.owns_shards =>
            {
                Verdict::Ok
            }
            NodeState::Status(status) => GATEWAY.verdict(status),
        })
        .collect()
}

impl Assessment {
    /// The verdict of a target from its endpoints' last polls and its summary: "ok" only
    /// when every endpoint's last poll succeeded and nothing in the summary is worse than
    /// fine.
    pub fn of(status: &TargetStatus, summary: &Summary) -> Assessment {
        let mut found: Vec<(Verdict, String)> = Vec::new();
        if status.endpoints.is_empty() {
            found.push((Verdict::Pending, "not polled yet".to_owned()));
        }
        for endpoint in &status.endpoints {
            match endpoint.success {
                Some(true) => {}
                Some(false) => {
                    found.push((Verdict::Fail, format!("{} poll failed", endpoint.name)))
                }
                None => found.push((
                    Verdict::Pending,
                    format!("{} not polled yet", endpoint.name),
                )),
            }
        }
        for (node, verdict) in summary.nodes.iter().zip(node_verdicts(&summary.nodes)) {
            let what = if node.name.is_empty() {
                format!("gateway {}", node.state.text())
            } else {
                format!("node {} {}", node.name, node.state.text())
            };
            found.push((verdict, what));
        }
        if let Some(value) = &summary.can_send_message {
            found.push((CAN_SEND.verdict(value), format!("can_send_message {value}")));
        }
        if let Some(worst) = &summary.quality {
            found.push((
                QUALITY.verdict(&worst.value),
                format!("quality {}", worst.text()),
            ));
        }
        if let Some(worst) = &summary.number_status {
            found.push((
                NUMBER_STATUS.verdict(&worst.value),
                format!("number status {}", worst.text()),
            ));
        }
        if let Some(value) = &summary.config_health {
            found.push((
                CONFIG_HEALTH.verdict(value),
                format!("Kapso config {value}"),
            ));
        }
        if summary.token_valid == Some(false) {
            found.push((Verdict::Fail, "access token invalid".to_owned()));
        } else if let Some(at) = summary.token_expires_at {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let days = (at - now) / 86_400.0;
            // The threshold of WhatsAppAccessTokenExpiring.
            if days < 0.0 {
                found.push((Verdict::Fail, "access token expired".to_owned()));
            } else if days < 7.0 {
                found.push((
                    Verdict::Warn,
                    format!("access token expires in {:.1} days", days),
                ));
            }
        }
        match summary.wabas_without_webhooks {
            0 => {}
            1 => found.push((
                Verdict::Fail,
                "a WABA without webhook subscription".to_owned(),
            )),
            n => found.push((
                Verdict::Fail,
                format!("{n} WABAs without webhook subscription"),
            )),
        }
        let verdict = found.iter().map(|(v, _)| *v).max().unwrap_or(Verdict::Ok);
        found.retain(|(v, _)| *v != Verdict::Ok);
        // The worst first: the first line is the one to read.
        found.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
        Assessment {
            verdict,
            reasons: found.into_iter().map(|(_, reason)| reason).collect(),
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn ago(time: Option<SystemTime>) -> String {
    match time.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(elapsed) => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
        ),
        None => "never".to_owned(),
    }
}

const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>WhatsApp Exporter</title>\
     <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
     td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
     tbody{border-top:2px solid #888}\
     .ok{color:#2a7d2a}.warn{color:#9a5b00}.fail{color:#b00020}.pending{color:#666}\
     td.verdict{font-weight:bold}td.verdict.ok{background:#e8f5e9}\
     td.verdict.warn{background:#fff4e0}td.verdict.fail{background:#fde8ec}\
     .reason{font-weight:normal;font-size:90%}</style></head><body>\n\
     <h1>WhatsApp Exporter</h1>\n";

const TABLE_HEAD: &str = "<table>\n<thead><tr><th>Target</th><th>Type</th><th>Verdict</th>\
     <th>Nodes</th><th>can_send_message</th><th>Worst quality</th><th>Worst number status</th>\
     <th>Kapso config</th><th>Endpoint</th><th>Last poll</th><th>Result</th>\
     <th>Last success</th><th>Error</th></tr></thead>\n";

/// The whole page.
pub fn page(exporter: &Exporter, telemetry_path: &str) -> String {
    let mut page = String::with_capacity(8192);
    page.push_str(HEAD);
    page.push_str("<p>Version ");
    escape_html(&mut page, VERSION);
    page.push_str(" (revision ");
    escape_html(&mut page, REVISION);
    let options = exporter.options();
    let _ = write!(
        page,
        ")</p>\n<p>Shard {} of {}; {} of {} configured targets polled in the background{}.</p>",
        options.shard.index,
        options.shard.count,
        exporter.targets().len(),
        exporter.config().targets.len(),
        if options.background {
            ""
        } else {
            " (background polling is off: /probe polls them)"
        }
    );
    page.push_str("\n<ul><li><a href=\"");
    escape_html(&mut page, telemetry_path);
    page.push_str(
        "\">Metrics</a></li><li><a href=\"/config\">Configuration</a></li>\
         <li><a href=\"/-/healthy\">Health</a></li>\
         <li><a href=\"/-/ready\">Readiness</a></li></ul>\n<h2>Targets</h2>\n",
    );
    let targets = exporter.targets();
    if targets.is_empty() {
        page.push_str("<p>No targets configured.</p>\n");
    } else {
        page.push_str(TABLE_HEAD);
        for target in targets.iter() {
            let snapshot = target.state.snapshot();
            let summary = Summary::read(snapshot.parts.iter().map(|p| p.as_ref()));
            let config = &target.state.config;
            target_rows(
                &mut page,
                &config.name,
                config.type_name(),
                &snapshot.status,
                &summary,
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

/// Reasons shown under a verdict: the worst come first, and a cluster of thousands of
/// nodes must not make the page that long (its nodes column lists them all).
const MAX_REASONS: usize = 5;

/// One target: a `tbody` whose first row carries the summary (spanning every endpoint's
/// row) and the first endpoint; `data-` attributes name what each cell shows, for tests
/// and scripts that read the page.
pub fn target_rows(
    out: &mut String,
    name: &str,
    type_name: &str,
    status: &TargetStatus,
    summary: &Summary,
) {
    let assessment = Assessment::of(status, summary);
    let rows = status.endpoints.len().max(1);
    out.push_str("<tbody data-target=\"");
    escape_html(out, name);
    out.push_str("\">\n<tr data-target=\"");
    escape_html(out, name);
    let _ = write!(out, "\"><td rowspan=\"{rows}\">");
    escape_html(out, name);
    let _ = write!(
        out,
        "</td><td rowspan=\"{rows}\">{type_name}</td>\
         <td rowspan=\"{rows}\" class=\"verdict {v}\" data-verdict=\"{v}\">{v}",
        v = assessment.verdict.as_str()
    );
    for reason in assessment.reasons.iter().take(MAX_REASONS) {
        out.push_str("<div class=\"reason\">");
        escape_html(out, reason);
        out.push_str("</div>");
    }
    if let Some(more) = assessment
        .reasons
        .len()
        .checked_sub(MAX_REASONS)
        .filter(|n| *n > 0)
    {
        let _ = write!(out, "<div class=\"reason\">and {more} more</div>");
    }
    out.push_str("</td>");
    nodes_cell(out, &summary.nodes, rows);
    value_cell(
        out,
        "can-send",
        summary.can_send_message.as_deref(),
        &CAN_SEND,
        rows,
    );
    worst_cell(out, "quality", summary.quality.as_ref(), &QUALITY, rows);
    worst_cell(
        out,
        "number-status",
        summary.number_status.as_ref(),
        &NUMBER_STATUS,
        rows,
    );
    value_cell(
        out,
        "config-health",
        summary.config_health.as_deref(),
        &CONFIG_HEALTH,
        rows,
    );
    if status.endpoints.is_empty() {
        out.push_str(
            "<td></td><td>never</td><td class=\"pending\">pending</td><td></td><td></td></tr>\n",
        );
    }
    for (i, endpoint) in status.endpoints.iter().enumerate() {
        if i > 0 {
            out.push_str("<tr>");
        }
        let _ = write!(
            out,
            "<td data-endpoint=\"{name}\">{name}</td><td>{poll}</td>",
            name = endpoint.name,
            poll = ago(status.last_poll)
        );
        out.push_str(match endpoint.success {
            Some(true) => "<td class=\"ok\">up</td>",
            Some(false) => "<td class=\"fail\">down</td>",
            None => "<td class=\"pending\">pending</td>",
        });
        let _ = write!(out, "<td>{}</td><td>", ago(endpoint.last_success));
        if let Some(error) = &endpoint.error {
            escape_html(out, error);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n");
}

fn nodes_cell(out: &mut String, nodes: &[Node], rows: usize) {
    let _ = write!(out, "<td rowspan=\"{rows}\" class=\"nodes\">");
    for (node, verdict) in nodes.iter().zip(node_verdicts(nodes)) {
        let state = node.state.text();
        let _ = write!(out, "<div class=\"{}\" data-node=\"", verdict.as_str());
        escape_html(out, &node.name);
        out.push_str("\" data-state=\"");
        escape_html(out, &state);
        out.push_str("\">");
        if !node.name.is_empty() {
            escape_html(out, &node.name);
            out.push_str(": ");
        }
        escape_html(out, &state);
        out.push_str("</div>");
    }
    out.push_str("</td>");
}

/// A cell of one state (`data-KEY` holds it); empty when the target has none.
fn value_cell(out: &mut String, key: &str, value: Option<&str>, scale: &Scale, rows: usize) {
    let Some(value) = value else {
        let _ = write!(out, "<td rowspan=\"{rows}\" class=\"{key}\"></td>");
        return;
    };
    let _ = write!(
        out,
        "<td rowspan=\"{rows}\" class=\"{key} {}\" data-{key}=\"",
        scale.verdict(value).as_str()
    );
    escape_html(out, value);
    out.push_str("\">");
    escape_html(out, value);
    out.push_str("</td>");
}

/// A cell of the worst state over the numbers, with how many have it.
fn worst_cell(out: &mut String, key: &str, worst: Option<&Worst>, scale: &Scale, rows: usize) {
    let Some(worst) = worst else {
        let _ = write!(out, "<td rowspan=\"{rows}\" class=\"{key}\"></td>");
        return;
    };
    let _ = write!(
        out,
        "<td rowspan=\"{rows}\" class=\"{key} {}\" data-{key}=\"",
        scale.verdict(&worst.value).as_str()
    );
    escape_html(out, &worst.value);
    let _ = write!(
        out,
        "\" data-count=\"{}\" data-of=\"{}\">",
        worst.count, worst.of
    );
    escape_html(out, &worst.text());
    out.push_str("</td>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::EndpointStatus;

    fn endpoint(name: &'static str, success: Option<bool>) -> EndpointStatus {
        EndpointStatus {
            name,
            success,
            last_success: None,
            error: (success == Some(false)).then(|| "connection refused".to_owned()),
            problems: Default::default(),
        }
    }

    fn polled(endpoints: &[(&'static str, Option<bool>)]) -> TargetStatus {
        TargetStatus {
            last_poll: Some(SystemTime::now()),
            up: None,
            endpoints: endpoints.iter().map(|&(n, s)| endpoint(n, s)).collect(),
        }
    }

    fn state_set(
        samples: &mut Samples,
        family: Family,
        labels: &[(&str, &str)],
        state: &str,
        known: &[&str],
        current: &str,
    ) {
        samples.state_set(family, labels, state, known, current);
    }

    const GATEWAYS: &[&str] = &[
        "connected",
        "connecting",
        "disconnected",
        "uninitialized",
        "unregistered",
    ];
    const CAN: &[&str] = &["AVAILABLE", "LIMITED", "BLOCKED"];
    const RATINGS: &[&str] = &["GREEN", "YELLOW", "RED", "UNKNOWN", "NA"];
    const STATUSES: &[&str] = &["CONNECTED", "FLAGGED", "RESTRICTED", "BANNED"];

    fn node(samples: &mut Samples, name: &str, status: &str) {
        state_set(
            samples,
            Family::GatewayStatus,
            &[("node", name)],
            "status",
            GATEWAYS,
            status,
        );
    }

    fn numbers(
        samples: &mut Samples,
        family: Family,
        state: &str,
        known: &[&str],
        values: &[&str],
    ) {
        for (i, value) in values.iter().enumerate() {
            let id = format!("10{i}");
            state_set(
                samples,
                family,
                &[("phone_number_id", &id)],
                state,
                known,
                value,
            );
        }
    }

    #[test]
    fn lines_read_back_as_written_escapes_included() {
        let hostile = "a\\b\"c\nd \\n} ,x=\"y\" ünï";
        let mut samples = Samples::new("t\"{1}");
        samples.push(
            Family::NodeErrorInfo,
            &[("node", hostile), ("code", "1005"), ("title", "")],
            1.0,
        );
        let line = samples.lines(Family::NodeErrorInfo);
        let series = parse_series(line).unwrap();
        assert_eq!(series.name, "whatsapp_node_error_info");
        assert_eq!(series.label("target"), Some("t\"{1}"));
        assert_eq!(series.label("node"), Some(hostile));
        assert_eq!(series.label("code"), Some("1005"));
        assert_eq!(series.label("title"), Some(""));
        assert_eq!(series.label("absent"), None);
        assert_eq!(series.value, 1.0);
    }

    #[test]
    fn lines_without_labels_odd_escapes_and_special_values() {
        let series = parse_series("whatsapp_up 0\n").unwrap();
        assert_eq!(
            (series.name, series.labels.len(), series.value),
            ("whatsapp_up", 0, 0.0)
        );
        let series = parse_series("x{a=\"\\t\",} +Inf").unwrap();
        assert_eq!(series.label("a"), Some("\\t"));
        assert_eq!(series.value, f64::INFINITY);
        assert!(parse_series("x{} NaN").unwrap().value.is_nan());
    }

    #[test]
    fn broken_lines_are_errors() {
        let cases = [
            ("", SeriesError::NoValue),
            ("{a=\"b\"} 1", SeriesError::NoName),
            ("x{a=b} 1", SeriesError::UnquotedLabel("a".to_owned())),
            ("x{a=\"b} 1", SeriesError::UnclosedValue),
            ("x{a=\"b\\", SeriesError::UnclosedValue),
            ("x{a=\"b\"", SeriesError::UnclosedLabels),
            ("x{a=\"b\"}", SeriesError::NoValue),
            ("x{a=\"b\"} one", SeriesError::BadValue("one".to_owned())),
        ];
        for (line, error) in cases {
            assert_eq!(parse_series(line), Err(error), "{line:?}");
        }
    }

    #[test]
    fn a_cloud_token_and_webhooks_weigh_in_the_verdict() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let status = polled(&[("token", Some(true)), ("health", Some(true))]);
        let verdict = |valid: f64, expires: f64, subscribed: &[f64]| {
            let mut samples = Samples::new("c");
            samples.push(Family::AccessTokenValid, &[], valid);
            samples.push(Family::AccessTokenExpiry, &[], expires);
            for (i, apps) in subscribed.iter().enumerate() {
                samples.push(
                    Family::WebhookSubscribedApps,
                    &[("waba_id", &i.to_string())],
                    *apps,
                );
            }
            Assessment::of(&status, &Summary::read([&samples]))
        };
        assert_eq!(verdict(1.0, f64::INFINITY, &[1.0]).verdict, Verdict::Ok);
        let soon = verdict(1.0, now + 4.0 * 86_400.0 + 3_600.0, &[1.0]);
        assert_eq!(soon.verdict, Verdict::Warn);
        assert_eq!(soon.reasons, ["access token expires in 4.0 days"]);
        let invalid = verdict(0.0, f64::INFINITY, &[1.0, 0.0, 0.0]);
        assert_eq!(invalid.verdict, Verdict::Fail);
        assert_eq!(
            invalid.reasons,
            [
                "access token invalid",
                "2 WABAs without webhook subscription"
            ]
        );
        assert_eq!(
            verdict(1.0, now - 60.0, &[]).reasons,
            ["access token expired"]
        );
    }

    #[test]
    fn a_target_without_data_has_an_empty_summary_and_is_pending() {
        let mut info = Samples::new("a");
        info.push(Family::TargetInfo, &[("type", "onprem")], 1.0);
        let summary = Summary::read([&info]);
        assert_eq!(summary, Summary::default());
        let nothing = Assessment::of(&TargetStatus::default(), &summary);
        assert_eq!(nothing.verdict, Verdict::Pending);
        assert_eq!(nothing.reasons, ["not polled yet"]);
        let first = Assessment::of(
            &polled(&[("health", None), ("support", Some(true))]),
            &summary,
        );
        assert_eq!(first.verdict, Verdict::Pending);
        assert_eq!(first.reasons, ["health not polled yet"]);
    }

    #[test]
    fn a_single_instance_reads_its_gateway_status() {
        let mut samples = Samples::new("a");
        node(&mut samples, "", "connected");
        samples.shrink();
        let summary = Summary::read([&samples]);
        assert_eq!(
            summary.nodes,
            [Node {
                name: String::new(),
                state: NodeState::Status("connected".to_owned()),
                owns_shards: false
            }]
        );
        let status = polled(&[("health", Some(true)), ("support", Some(true))]);
        assert_eq!(
            Assessment::of(&status, &summary),
            Assessment {
                verdict: Verdict::Ok,
                reasons: vec![]
            }
        );
        let mut samples = Samples::new("a");
        node(&mut samples, "", "disconnected");
        let down = Assessment::of(&status, &Summary::read([&samples]));
        assert_eq!(down.verdict, Verdict::Fail);
        assert_eq!(down.reasons, ["gateway disconnected"]);
        for (status_value, verdict) in [
            ("connecting", Verdict::Warn),
            ("uninitialized", Verdict::Warn),
            ("unregistered", Verdict::Fail),
            ("rebooting", Verdict::Warn),
        ] {
            let mut samples = Samples::new("a");
            node(&mut samples, "", status_value);
            assert_eq!(
                Assessment::of(&status, &Summary::read([&samples])).verdict,
                verdict,
                "{status_value}"
            );
        }
    }

    #[test]
    fn nodes_that_answered_an_error_or_nothing() {
        let mut samples = Samples::new("a");
        // The error's node has every known state at 0.
        for state in GATEWAYS {
            samples.push(
                Family::GatewayStatus,
                &[("node", "n2"), ("status", state)],
                0.0,
            );
        }
        samples.push(
            Family::NodeErrorInfo,
            &[
                ("node", "n2"),
                ("code", "1011"),
                ("title", "Service \"not\" ready\n"),
            ],
            1.0,
        );
        node(&mut samples, "n1", "connected");
        // An error without any gateway series, and a node with no state at 1 and no error.
        samples.push(
            Family::NodeErrorInfo,
            &[("node", "n3"), ("code", "500"), ("title", "x")],
            1.0,
        );
        samples.push(
            Family::GatewayStatus,
            &[("node", "n4"), ("status", "connected")],
            0.0,
        );
        let summary = Summary::read([&samples]);
        let states: Vec<(&str, String)> = summary
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.state.text()))
            .collect();
        assert_eq!(
            states,
            [
                ("n1", "connected".to_owned()),
                ("n2", "error 1011: Service \"not\" ready\n".to_owned()),
                ("n3", "error 500: x".to_owned()),
                ("n4", "unknown".to_owned()),
            ]
        );
        assert_eq!(
            node_verdicts(&summary.nodes),
            [Verdict::Ok, Verdict::Fail, Verdict::Fail, Verdict::Warn]
        );
        let assessment = Assessment::of(&polled(&[("health", Some(true))]), &summary);
        assert_eq!(assessment.verdict, Verdict::Fail);
        assert_eq!(
            assessment.reasons,
            [
                "node n2 error 1011: Service \"not\" ready\n",
                "node n3 error 500: x",
                "node n4 unknown"
            ]
        );
    }

    #[test]
    fn clusters_judge_disconnected_nodes_as_the_alerts_do() {
        let status = polled(&[("health", Some(true)), ("support", Some(true))]);
        // High Availability: one connected coreapp, the masters disconnected by design.
        let mut ha = Samples::new("ha");
        node(&mut ha, "m1", "disconnected");
        node(&mut ha, "m2", "disconnected");
        node(&mut ha, "c1", "connected");
        let summary = Summary::read([&ha]);
        assert_eq!(Assessment::of(&status, &summary).verdict, Verdict::Ok);
        // No node connected at all.
        let mut down = Samples::new("ha");
        node(&mut down, "m1", "disconnected");
        node(&mut down, "c1", "disconnected");
        let assessment = Assessment::of(&status, &Summary::read([&down]));
        assert_eq!(assessment.verdict, Verdict::Fail);
        assert_eq!(
            assessment.reasons,
            ["node c1 disconnected", "node m1 disconnected"]
        );
        // Multiconnect: a disconnected node that owns shards cuts its users off; one
        // without shards (the secondary master) does not.
        let mut mc = Samples::new("mc");
        node(&mut mc, "p", "connected");
        node(&mut mc, "s", "disconnected");
        node(&mut mc, "c", "disconnected");
        for (name, shards) in [("p", 2.0), ("s", 0.0), ("c", 1.0)] {
            mc.push(Family::MulticonnectEnabled, &[("node", name)], 1.0);
            mc.push(Family::NodeShards, &[("node", name)], shards);
        }
        let summary = Summary::read([&mc]);
        assert_eq!(
            node_verdicts(&summary.nodes),
            [Verdict::Fail, Verdict::Ok, Verdict::Ok]
        );
        assert_eq!(
            Assessment::of(&status, &summary).reasons,
            ["node c disconnected"]
        );
    }

    #[test]
    fn can_send_message_and_kapso_config_health() {
        let status = polled(&[("health_status", Some(true))]);
        for (value, verdict) in [
            ("AVAILABLE", Verdict::Ok),
            ("LIMITED", Verdict::Warn),
            ("BLOCKED", Verdict::Fail),
            ("SOMETHING_NEW", Verdict::Warn),
        ] {
            let mut samples = Samples::new("a");
            state_set(
                &mut samples,
                Family::MessagingHealthStatus,
                &[],
                "status",
                CAN,
                value,
            );
            samples.shrink();
            let summary = Summary::read([&samples]);
            assert_eq!(summary.can_send_message.as_deref(), Some(value));
            let assessment = Assessment::of(&status, &summary);
            assert_eq!(assessment.verdict, verdict, "{value}");
            if verdict != Verdict::Ok {
                assert_eq!(assessment.reasons, [format!("can_send_message {value}")]);
            }
        }
        for (value, verdict) in [
            ("healthy", Verdict::Ok),
            ("degraded", Verdict::Warn),
            ("unhealthy", Verdict::Fail),
            ("error", Verdict::Fail),
            ("weird", Verdict::Warn),
        ] {
            let mut samples = Samples::new("k");
            state_set(
                &mut samples,
                Family::ConfigHealthStatus,
                &[],
                "status",
                &["healthy", "degraded", "unhealthy", "error"],
                value,
            );
            let summary = Summary::read([&samples]);
            assert_eq!(summary.config_health.as_deref(), Some(value));
            assert_eq!(
                Assessment::of(&status, &summary).verdict,
                verdict,
                "{value}"
            );
        }
    }

    #[test]
    fn the_worst_of_the_numbers_with_its_count() {
        let mut samples = Samples::new("a");
        numbers(
            &mut samples,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["GREEN", "RED", "YELLOW"],
        );
        numbers(
            &mut samples,
            Family::PhoneNumberStatus,
            "status",
            STATUSES,
            &["FLAGGED", "CONNECTED", "FLAGGED"],
        );
        let summary = Summary::read([&samples]);
        let quality = summary.quality.clone().unwrap();
        assert_eq!(quality.text(), "RED (1 of 3 numbers)");
        assert_eq!(
            summary.number_status.clone().unwrap().text(),
            "FLAGGED (2 of 3 numbers)"
        );
        let assessment = Assessment::of(&polled(&[("phone_numbers", Some(true))]), &summary);
        assert_eq!(assessment.verdict, Verdict::Fail);
        assert_eq!(
            assessment.reasons,
            [
                "quality RED (1 of 3 numbers)",
                "number status FLAGGED (2 of 3 numbers)"
            ]
        );
        // The ranks between: YELLOW over UNKNOWN over GREEN; RATE_LIMITED warns.
        let mut samples = Samples::new("a");
        numbers(
            &mut samples,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["UNKNOWN", "YELLOW", "GREEN", "YELLOW"],
        );
        numbers(
            &mut samples,
            Family::PhoneNumberStatus,
            "status",
            STATUSES,
            &["CONNECTED", "RATE_LIMITED"],
        );
        let summary = Summary::read([&samples]);
        assert_eq!(
            summary.quality.clone().unwrap().text(),
            "YELLOW (2 of 4 numbers)"
        );
        assert_eq!(
            summary.number_status.clone().unwrap().text(),
            "RATE_LIMITED (1 of 2 numbers)"
        );
        assert_eq!(
            Assessment::of(&polled(&[("phone_numbers", Some(true))]), &summary).verdict,
            Verdict::Warn
        );
    }

    #[test]
    fn numbers_meta_has_not_rated_yet_do_not_spoil_the_verdict() {
        let mut samples = Samples::new("a");
        numbers(
            &mut samples,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["GREEN", "NA"],
        );
        numbers(
            &mut samples,
            Family::PhoneNumberStatus,
            "status",
            STATUSES,
            &["CONNECTED"],
        );
        let summary = Summary::read([&samples]);
        assert_eq!(
            summary.quality.clone().unwrap().text(),
            "NA (1 of 2 numbers)"
        );
        assert_eq!(
            summary.number_status.clone().unwrap().text(),
            "CONNECTED (1 of 1 number)"
        );
        assert_eq!(
            Assessment::of(&polled(&[("phone_numbers", Some(true))]), &summary).verdict,
            Verdict::Ok
        );
        // A value nobody documented warns.
        let mut samples = Samples::new("a");
        numbers(
            &mut samples,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["PURPLE"],
        );
        let summary = Summary::read([&samples]);
        assert_eq!(
            Assessment::of(&polled(&[("phone_numbers", Some(true))]), &summary).verdict,
            Verdict::Warn
        );
    }

    #[test]
    fn parts_of_several_endpoints_add_up() {
        // A number in two parts counts once, at the worse of its two states.
        let mut a = Samples::new("a");
        numbers(
            &mut a,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["GREEN"],
        );
        let mut b = Samples::new("a");
        numbers(
            &mut b,
            Family::PhoneQualityRating,
            "rating",
            RATINGS,
            &["YELLOW", "GREEN"],
        );
        let summary = Summary::read([&a, &b]);
        assert_eq!(summary.quality.unwrap().text(), "YELLOW (1 of 2 numbers)");
    }

    #[test]
    fn a_failed_poll_fails_whatever_the_data_says() {
        let mut samples = Samples::new("a");
        state_set(
            &mut samples,
            Family::MessagingHealthStatus,
            &[],
            "status",
            CAN,
            "AVAILABLE",
        );
        let status = polled(&[("health_status", Some(false))]);
        let assessment = Assessment::of(&status, &Summary::read([&samples]));
        assert_eq!(assessment.verdict, Verdict::Fail);
        assert_eq!(assessment.reasons, ["health_status poll failed"]);
    }

    fn rows(name: &str, status: &TargetStatus, samples: &Samples) -> String {
        let mut out = String::new();
        target_rows(
            &mut out,
            name,
            "dialog360",
            status,
            &Summary::read([samples]),
        );
        out
    }

    #[test]
    fn a_blocked_target_never_reads_ok() {
        let mut samples = Samples::new("d360");
        state_set(
            &mut samples,
            Family::MessagingHealthStatus,
            &[],
            "status",
            CAN,
            "BLOCKED",
        );
        let html = rows("d360", &polled(&[("health_status", Some(true))]), &samples);
        assert!(
            html.starts_with("<tbody data-target=\"d360\">\n<tr data-target=\"d360\">"),
            "{html}"
        );
        assert!(
            html.contains("class=\"verdict fail\" data-verdict=\"fail\">fail<div class=\"reason\">can_send_message BLOCKED</div></td>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<td rowspan=\"1\" class=\"can-send fail\" data-can-send=\"BLOCKED\">BLOCKED</td>"
            ),
            "{html}"
        );
        // The poll itself did succeed, and says so in its own cell.
        assert!(
            html.contains("<td data-endpoint=\"health_status\">health_status</td>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"ok\">up</td>"), "{html}");
        assert!(!html.contains("data-verdict=\"ok\""), "{html}");
    }

    #[test]
    fn rows_escape_every_value_and_span_the_endpoints() {
        let hostile = "<script>alert(\"x\")</script>&'";
        let mut samples = Samples::new(hostile);
        node(&mut samples, hostile, "connected");
        numbers(
            &mut samples,
            Family::PhoneNumberStatus,
            "status",
            STATUSES,
            &[hostile],
        );
        let mut status = polled(&[("health", Some(true)), ("support", Some(false))]);
        status.endpoints[1].error = Some(hostile.to_owned());
        let html = rows(hostile, &status, &samples);
        assert!(!html.contains("<script"), "{html}");
        let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;";
        assert!(
            html.starts_with(&format!("<tbody data-target=\"{escaped}\">")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<div class=\"ok\" data-node=\"{escaped}\" data-state=\"connected\">{escaped}: connected</div>")),
            "{html}"
        );
        assert!(
            html.contains(&format!("data-number-status=\"{escaped}\" data-count=\"1\" data-of=\"1\">{escaped} (1 of 1 number)</td>")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<td>never</td><td>{escaped}</td></tr>")),
            "{html}"
        );
        // Two endpoints: the summary spans both rows, the second row starts bare.
        assert_eq!(html.matches("rowspan=\"2\"").count(), 8, "{html}");
        assert!(
            html.contains("</tr>\n<tr><td data-endpoint=\"support\">"),
            "{html}"
        );
        assert!(html.ends_with("</tr>\n</tbody>\n"), "{html}");
    }

    #[test]
    fn a_target_not_polled_yet_has_one_pending_row() {
        let html = rows("new", &TargetStatus::default(), &Samples::new("new"));
        assert!(
            html.contains(
                "data-verdict=\"pending\">pending<div class=\"reason\">not polled yet</div>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<td rowspan=\"1\" class=\"nodes\"></td><td rowspan=\"1\" class=\"can-send\"></td>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"pending\">pending</td>"),
            "{html}"
        );
        assert_eq!(html.matches("<tr").count(), 1, "{html}");
    }

    #[test]
    fn a_verdict_shows_its_worst_reasons_first_and_counts_the_rest() {
        let mut samples = Samples::new("big");
        for i in 0..8 {
            node(
                &mut samples,
                &format!("n{i}"),
                if i == 7 { "unregistered" } else { "connecting" },
            );
        }
        let html = rows("big", &polled(&[("health", Some(false))]), &samples);
        assert!(
            html.contains(
                "data-verdict=\"fail\">fail<div class=\"reason\">health poll failed</div>\
                 <div class=\"reason\">node n7 unregistered</div>\
                 <div class=\"reason\">node n0 connecting</div>"
            ),
            "{html}"
        );
        assert_eq!(html.matches("class=\"reason\"").count(), 6, "{html}");
        assert!(
            html.contains("<div class=\"reason\">and 4 more</div></td>"),
            "{html}"
        );
        assert_eq!(html.matches("data-node=").count(), 8, "{html}");
    }

    #[test]
    fn html_is_escaped() {
        let mut out = String::new();
        escape_html(&mut out, "<script>\"x\" & 'y'</script>");
        assert_eq!(
            out,
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
