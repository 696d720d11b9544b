//! Parsing of On-Premises API (Webapp) response bodies into typed reports.
//!
//! Pure functions over the raw body bytes: no I/O. Every response shares one envelope:
//! a payload object named after the endpoint (`health`, `support`, `users`), an optional
//! `meta` (`version`, `api_status`) and, on failure, `errors: [{code, title, details}]`.
//!
//! `/v1/health` and `/v1/support` answer either for a single instance or, in High
//! Availability / Multiconnect setups, with one object per node keyed by
//! `hostname:container-id`; [`Nodes`] carries both shapes.
//!
//! Upstream strings that end up in error messages are cut at 200 characters, and whole
//! bodies never go into error messages.

use serde_json::Value;

use crate::json::{
    clip, field, index, key, kind, lenient_i64, load, present, required_str, strip_bom, wrong_type,
    Obj, Problems,
};
use crate::timestamp::parse_timestamp;

/// Fields whose presence in the `support` object means a single-instance response.
const SUPPORT_SINGLE_KEYS: &[&str] = &[
    "version",
    "socket_conn",
    "context",
    "db_engine",
    "expire_timestamp",
    "free_space_data",
    "multi_connect",
    "schema",
    "description",
    "device_iso8601",
];

/// The `meta` object of the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub version: Option<String>,
    pub api_status: Option<String>,
}

/// One entry of the envelope's `errors` array (its strings already clipped).
///
/// Displays as `upstream error 1005: Access denied (details: ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub details: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream error")?;
        if let Some(code) = self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.title.as_deref().unwrap_or("(no title)"))?;
        if let Some(details) = &self.details {
            write!(f, " (details: {details})")?;
        }
        Ok(())
    }
}

/// Single instance vs HA/multiconnect (keyed by "hostname:container-id").
#[derive(Debug, Clone, PartialEq)]
pub enum Nodes<T> {
    Single(T),
    /// Sorted by node key.
    Cluster(Vec<(String, T)>),
}

/// `/v1/health` for one instance or node.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthNode {
    /// Kept exactly as sent (`connected`, `connecting`, `disconnected`, `uninitialized`,
    /// `unregistered`, or anything else upstream invents); `None` for a node that answered
    /// `errors` instead (a cluster node that is not ready: code 1011 "Service not ready"),
    /// or none that could be read.
    pub gateway_status: Option<String>,
    pub role: Option<String>,
    /// The node's own `errors`, in place of its health.
    pub errors: Vec<ApiError>,
}

/// A parsed `/v1/health` body.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    pub meta: Option<Meta>,
    pub nodes: Nodes<HealthNode>,
    /// Nodes skipped and fields ignored, with their paths.
    pub problems: Problems,
}

/// `/v1/support` for one instance or node.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportNode {
    pub role: Option<String>,
    pub multi_connect: Option<bool>,
    /// number of shard ids owned: sum over ranges \[first, last\] of (last-first+1); None when `shards` absent
    pub shard_count: Option<u64>,
    pub version: Option<String>,
    pub db_engine: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    /// expire_timestamp as unix seconds (no zone = UTC); also accept a JSON number (unix seconds)
    pub expire_timestamp: Option<f64>,
    /// device_iso8601 as unix seconds
    pub device_time: Option<f64>,
    pub socket_conn: Option<String>,
    /// (volume, bytes) for each `free_space_<volume>` key present, volume being the suffix after
    /// `free_space_` (data, logs, media_incoming, media_outgoing, and any other suffix), sorted by volume
    pub free_space: Vec<(String, f64)>,
    /// (schema name, version) for each entry of `schema`, sorted by name
    pub schema: Vec<(String, f64)>,
}

/// A parsed `/v1/support` body.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportReport {
    pub meta: Option<Meta>,
    pub nodes: Nodes<SupportNode>,
    /// Nodes skipped and fields ignored, with their paths.
    pub problems: Problems,
}

/// The token returned by `POST /v1/users/login`.
///
/// `Debug` redacts the token so it cannot leak into logs.
#[derive(Clone, PartialEq)]
pub struct LoginToken {
    pub token: String,
    /// expires_after as unix seconds
    pub expires_after: Option<f64>,
}

impl std::fmt::Debug for LoginToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginToken")
            .field(
                "token",
                &format_args!("<redacted, {} chars>", self.token.len()),
            )
            .field("expires_after", &self.expires_after)
            .finish()
    }
}

/// Why a body could not be parsed into a report; the upstream error is the first entry of a
/// non-empty `errors` array on a 2xx body that has no payload.
pub type PayloadError = crate::json::PayloadError<ApiError>;

/// Parses a `/v1/health` body. Read node by node: a node that is not an object is
/// skipped, a node with an `errors` array in place of its `gateway_status` is kept with
/// its errors, and a field that cannot be read is ignored; each is noted in `problems`.
/// The body fails as a whole only when it has no `health` object, or no node could be read
/// or tells its status or errors.
pub fn parse_health(body: &[u8]) -> Result<HealthReport, PayloadError> {
    let root = load(body)?;
    let health = payload_object(&root, "health")?;
    let mut problems = Problems::default();
    let single =
        health.contains_key("gateway_status") || health.get("errors").is_some_and(Value::is_array);
    let nodes = if single {
        // A single instance's health is the whole answer: without a status or errors it
        // says nothing.
        if !health.contains_key("errors") {
            required_str(health, "health", "gateway_status")?;
        }
        Nodes::Single(health_node(health, "health", &mut problems))
    } else {
        let nodes = cluster(health, "health", health_node, &mut problems)?;
        // Not one node says how it is: the answer says nothing.
        let silent = |n: &HealthNode| n.gateway_status.is_none() && n.errors.is_empty();
        if let (true, Some((key, _))) = (nodes.iter().all(|(_, n)| silent(n)), nodes.first()) {
            return Err(PayloadError::Missing {
                path: field(&crate::json::key("health", key), "gateway_status"),
            });
        }
        Nodes::Cluster(nodes)
    };
    Ok(HealthReport {
        meta: meta(&root, &mut problems),
        nodes,
        problems,
    })
}

/// Parses a `/v1/support` body, node by node and field by field as [`parse_health`].
pub fn parse_support(body: &[u8]) -> Result<SupportReport, PayloadError> {
    let root = load(body)?;
    let support = payload_object(&root, "support")?;
    let mut problems = Problems::default();
    let single = SUPPORT_SINGLE_KEYS.iter().any(|k| support.contains_key(*k));
    let nodes = if single {
        Nodes::Single(support_node(support, "support", &mut problems))
    } else {
        Nodes::Cluster(cluster(support, "support", support_node, &mut problems)?)
    };
    Ok(SupportReport {
        meta: meta(&root, &mut problems),
        nodes,
        problems,
    })
}

/// Parses a `POST /v1/users/login` body (the first entry of `users`).
pub fn parse_login(body: &[u8]) -> Result<LoginToken, PayloadError> {
    let root = load(body)?;
    let users = payload_value(&root, "users")?;
    let users = users
        .as_array()
        .ok_or_else(|| wrong_type("users", "array", users))?;
    let Some(first) = users.first() else {
        return Err(upstream_or(
            &root,
            PayloadError::Missing {
                path: "users[0]".to_owned(),
            },
        ));
    };
    let path = "users[0]";
    let user = first
        .as_object()
        .ok_or_else(|| wrong_type(path, "object", first))?;
    let token = required_str(user, path, "token")?;
    if token.is_empty() {
        return Err(PayloadError::Invalid {
            path: field(path, "token"),
            reason: "empty token".to_owned(),
        });
    }
    let expires_after = match present(user, "expires_after") {
        Some(Value::String(s)) => parse_timestamp(s),
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    Ok(LoginToken {
        token,
        expires_after,
    })
}

/// The `errors` array of an On-Premises envelope, if the body is JSON and has one (used on non-2xx bodies too). Empty Vec otherwise; never fails.
///
/// Entries are read leniently: `code` may be a number or a numeric string, `title` and
/// `details` are kept when they are strings (cut at 200 characters), a bare string entry is
/// taken as a title, and other entries are skipped.
pub fn envelope_errors(body: &[u8]) -> Vec<ApiError> {
    match serde_json::from_slice::<Value>(strip_bom(body)) {
        Ok(Value::Object(root)) => errors_of(&root),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope

/// The payload value `key`; when absent or null, the envelope's first error if any.
fn payload_value<'a>(root: &'a Obj, key: &str) -> Result<&'a Value, PayloadError> {
    present(root, key).ok_or_else(|| {
        upstream_or(
            root,
            PayloadError::Missing {
                path: key.to_owned(),
            },
        )
    })
}

fn payload_object<'a>(root: &'a Obj, key: &str) -> Result<&'a Obj, PayloadError> {
    let v = payload_value(root, key)?;
    v.as_object().ok_or_else(|| wrong_type(key, "object", v))
}

/// The first envelope error as [`PayloadError::Upstream`], else `otherwise`.
fn upstream_or(root: &Obj, otherwise: PayloadError) -> PayloadError {
    match errors_of(root).into_iter().next() {
        Some(first) => PayloadError::Upstream(first),
        None => otherwise,
    }
}

fn errors_of(root: &Obj) -> Vec<ApiError> {
    match root.get("errors") {
        Some(Value::Array(items)) => items.iter().filter_map(api_error).collect(),
        _ => Vec::new(),
    }
}

fn api_error(v: &Value) -> Option<ApiError> {
    match v {
        Value::Object(o) => {
            let text = |k: &str| match o.get(k) {
                Some(Value::String(s)) => Some(clip(s)),
                _ => None,
            };
            Some(ApiError {
                code: o.get("code").and_then(lenient_i64),
                title: text("title"),
                details: text("details"),
            })
        }
        Value::String(s) => Some(ApiError {
            code: None,
            title: Some(clip(s)),
            details: None,
        }),
        _ => None,
    }
}

fn meta(root: &Obj, problems: &mut Problems) -> Option<Meta> {
    let v = present(root, "meta")?;
    let Some(o) = v.as_object() else {
        problems.ignore(wrong_type::<ApiError>("meta", "object", v));
        return None;
    };
    Some(Meta {
        version: problems.opt_str(o, "meta", "version"),
        api_status: problems.opt_str(o, "meta", "api_status"),
    })
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// Every key of `obj` as a node, sorted by key; a node whose value is not an object is
/// skipped. Fails when there is no node, or none could be read.
fn cluster<T>(
    obj: &Obj,
    base: &str,
    node: fn(&Obj, &str, &mut Problems) -> T,
    problems: &mut Problems,
) -> Result<Vec<(String, T)>, PayloadError> {
    if obj.is_empty() {
        return Err(PayloadError::Invalid {
            path: base.to_owned(),
            reason: "empty object (no nodes)".to_owned(),
        });
    }
    let mut nodes = Vec::with_capacity(obj.len());
    let mut first_unreadable = None;
    for (k, v) in obj {
        let path = key(base, k);
        match v.as_object() {
            Some(o) => nodes.push((k.clone(), node(o, &path, problems))),
            None => {
                let error: PayloadError = wrong_type(&path, "object", v);
                problems.skip(&error);
                first_unreadable.get_or_insert(error);
            }
        }
    }
    if let (true, Some(error)) = (nodes.is_empty(), first_unreadable) {
        return Err(error);
    }
    // serde_json's map is ordered unless `preserve_order` is enabled somewhere in the build.
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(nodes)
}

fn health_node(o: &Obj, base: &str, problems: &mut Problems) -> HealthNode {
    let gateway_status = problems.opt_str(o, base, "gateway_status");
    let errors = errors_of(o);
    if present(o, "gateway_status").is_none() && errors.is_empty() {
        problems.ignore(PayloadError::Missing {
            path: field(base, "gateway_status"),
        });
    }
    HealthNode {
        gateway_status,
        role: problems.opt_str(o, base, "role"),
        errors,
    }
}

fn support_node(o: &Obj, base: &str, problems: &mut Problems) -> SupportNode {
    SupportNode {
        role: problems.opt_str(o, base, "role"),
        multi_connect: problems.opt_bool(o, base, "multi_connect"),
        shard_count: problems.field(shard_count(o, base)),
        version: problems.opt_str(o, base, "version"),
        db_engine: problems.opt_str(o, base, "db_engine"),
        os_name: problems.opt_str(o, base, "os_name"),
        os_version: problems.opt_str(o, base, "os_version"),
        expire_timestamp: problems.opt_timestamp(o, base, "expire_timestamp", true),
        device_time: problems.opt_timestamp(o, base, "device_iso8601", false),
        socket_conn: problems.opt_str(o, base, "socket_conn"),
        free_space: free_space(o, base, problems),
        schema: schema(o, base, problems),
    }
}

fn shard_count(o: &Obj, base: &str) -> Result<Option<u64>, PayloadError> {
    let Some(v) = present(o, "shards") else {
        return Ok(None);
    };
    let path = field(base, "shards");
    let ranges = v.as_array().ok_or_else(|| wrong_type(&path, "array", v))?;
    let mut total: u128 = 0;
    for (i, range) in ranges.iter().enumerate() {
        let rpath = index(&path, i);
        let pair = range
            .as_array()
            .ok_or_else(|| wrong_type(&rpath, "array", range))?;
        let [first, last] = pair.as_slice() else {
            return Err(PayloadError::Invalid {
                path: rpath,
                reason: format!(
                    "expected a [first, last] pair, found {} elements",
                    pair.len()
                ),
            });
        };
        let first = integer(first, &index(&rpath, 0))?;
        let last = integer(last, &index(&rpath, 1))?;
        if last < first {
            return Err(PayloadError::Invalid {
                path: rpath,
                reason: format!("range [{first}, {last}] ends before it starts"),
            });
        }
        // Both fit in i64 or u64, so the width fits in u128 without overflow.
        let width = u128::try_from(last - first + 1).unwrap_or(u128::MAX);
        total = total.saturating_add(width);
    }
    u64::try_from(total)
        .map(Some)
        .map_err(|_| PayloadError::Invalid {
            path,
            reason: "shard count does not fit in 64 bits".to_owned(),
        })
}

fn integer(v: &Value, path: &str) -> Result<i128, PayloadError> {
    let n = v
        .as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from));
    n.ok_or_else(|| {
        let found = if v.is_number() {
            "non-integer number"
        } else {
            kind(v)
        };
        PayloadError::WrongType {
            path: path.to_owned(),
            expected: "integer",
            found,
        }
    })
}

/// Each `free_space_<volume>` that is a number; one that is not is ignored alone.
fn free_space(o: &Obj, base: &str, problems: &mut Problems) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (k, v) in o {
        let Some(volume) = k.strip_prefix("free_space_") else {
            continue;
        };
        if volume.is_empty() || v.is_null() {
            continue;
        }
        match v.as_f64() {
            Some(bytes) => out.push((volume.to_owned(), bytes)),
            None => problems.ignore(wrong_type::<ApiError>(&field(base, k), "number", v)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Each schema version that is a number; one that is not is ignored alone.
fn schema(o: &Obj, base: &str, problems: &mut Problems) -> Vec<(String, f64)> {
    let Some(v) = present(o, "schema") else {
        return Vec::new();
    };
    let path = field(base, "schema");
    let Some(entries) = v.as_object() else {
        problems.ignore(wrong_type::<ApiError>(&path, "object", v));
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, version) in entries {
        if version.is_null() {
            continue;
        }
        match version.as_f64() {
            Some(n) => out.push((name.clone(), n)),
            None => problems.ignore(wrong_type::<ApiError>(&key(&path, name), "number", version)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::expected::{invalid, missing, wrong};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/onprem/",
                $name
            ))
            .as_slice()
        };
    }

    const FIXTURES: &[&[u8]] = &[
        fixture!("health_single.json"),
        fixture!("health_ha.json"),
        fixture!("health_multiconnect.json"),
        fixture!("support_single.json"),
        fixture!("support_ha.json"),
        fixture!("support_multiconnect.json"),
        fixture!("login.json"),
        fixture!("errors_200_no_payload.json"),
        fixture!("errors_401.json"),
    ];

    fn stable_meta() -> Option<Meta> {
        Some(Meta {
            version: Some("v2.41.3".into()),
            api_status: Some("stable".into()),
        })
    }

    fn hnode(status: &str, role: &str) -> HealthNode {
        HealthNode {
            gateway_status: Some(status.into()),
            role: Some(role.into()),
            errors: vec![],
        }
    }

    fn empty_support_node() -> SupportNode {
        SupportNode {
            role: None,
            multi_connect: None,
            shard_count: None,
            version: None,
            db_engine: None,
            os_name: None,
            os_version: None,
            expire_timestamp: None,
            device_time: None,
            socket_conn: None,
            free_space: vec![],
            schema: vec![],
        }
    }

    fn cluster_of<T: Clone>(nodes: &Nodes<T>) -> Vec<(String, T)> {
        match nodes {
            Nodes::Cluster(v) => v.clone(),
            Nodes::Single(_) => panic!("expected a cluster"),
        }
    }

    fn single_of<T: Clone>(nodes: &Nodes<T>) -> T {
        match nodes {
            Nodes::Single(n) => n.clone(),
            Nodes::Cluster(_) => panic!("expected a single instance"),
        }
    }

    fn health_err(body: &str) -> PayloadError {
        parse_health(body.as_bytes()).unwrap_err()
    }

    fn support_err(body: &str) -> PayloadError {
        parse_support(body.as_bytes()).unwrap_err()
    }

    /// What a reading of `body` could not use: the error of the whole body when it failed,
    /// else its only problem (without the "ignored: " or "item skipped: " in front).
    fn only_problem<T: std::fmt::Debug>(
        read: Result<T, PayloadError>,
        problems: fn(&T) -> &Problems,
    ) -> String {
        let read = match read {
            Ok(read) => read,
            Err(e) => return e.to_string(),
        };
        let notes = problems(&read).notes();
        assert_eq!(notes.len(), 1, "{read:?}");
        let note = &notes[0];
        let (_, why) = note.split_once(": ").unwrap_or(("", note));
        why.to_owned()
    }

    fn health_problem(body: &str) -> String {
        only_problem(parse_health(body.as_bytes()), |r| &r.problems)
    }

    fn support_problem(body: &str) -> String {
        only_problem(parse_support(body.as_bytes()), |r| &r.problems)
    }

    // --- /v1/health ------------------------------------------------------------------------

    #[test]
    fn health_single_instance() {
        let r = parse_health(fixture!("health_single.json")).unwrap();
        assert_eq!(
            r,
            HealthReport {
                meta: stable_meta(),
                nodes: Nodes::Single(HealthNode {
                    gateway_status: Some("connected".into()),
                    role: None,
                    errors: vec![],
                }),
                problems: Problems::default(),
            }
        );
    }

    #[test]
    fn health_single_instance_each_documented_status() {
        for status in [
            "connected",
            "connecting",
            "disconnected",
            "uninitialized",
            "unregistered",
        ] {
            let body = format!(r#"{{"health":{{"gateway_status":"{status}"}}}}"#);
            let r = parse_health(body.as_bytes()).unwrap();
            assert_eq!(r.meta, None);
            assert_eq!(
                r.nodes,
                Nodes::Single(HealthNode {
                    gateway_status: Some(status.into()),
                    role: None,
                    errors: vec![],
                })
            );
        }
    }

    #[test]
    fn health_high_availability() {
        let r = parse_health(fixture!("health_ha.json")).unwrap();
        assert_eq!(r.meta, stable_meta());
        assert_eq!(
            cluster_of(&r.nodes),
            vec![
                (
                    "wa-coreapp-1:0a1b2c3d4e5f".into(),
                    hnode("connected", "coreapp")
                ),
                (
                    "wa-coreapp-2:5f4e3d2c1b0a".into(),
                    hnode("disconnected", "coreapp")
                ),
                (
                    "wa-master-1:4f6c1a2b3c4d".into(),
                    hnode("disconnected", "primary_master")
                ),
                (
                    "wa-master-2:9e8d7c6b5a49".into(),
                    hnode("disconnected", "secondary_master")
                ),
            ]
        );
    }

    #[test]
    fn health_multiconnect() {
        let r = parse_health(fixture!("health_multiconnect.json")).unwrap();
        assert_eq!(
            cluster_of(&r.nodes),
            vec![
                (
                    "wa-coreapp-1:0a1b2c3d4e5f".into(),
                    hnode("connected", "coreapp")
                ),
                (
                    "wa-coreapp-2:5f4e3d2c1b0a".into(),
                    hnode("connecting", "coreapp")
                ),
                (
                    "wa-master-1:4f6c1a2b3c4d".into(),
                    hnode("connected", "primary_master")
                ),
                (
                    "wa-master-2:9e8d7c6b5a49".into(),
                    hnode("disconnected", "secondary_master")
                ),
            ]
        );
    }

    #[test]
    fn health_cluster_sorted_by_key_and_role_optional() {
        let r = parse_health(
            br#"{"health":{"b:2":{"gateway_status":"connected"},"a:1":{"gateway_status":"disconnected","role":null,"extra":[1]}}}"#,
        )
        .unwrap();
        assert_eq!(
            cluster_of(&r.nodes),
            vec![
                (
                    "a:1".into(),
                    HealthNode {
                        gateway_status: Some("disconnected".into()),
                        role: None,
                        errors: vec![],
                    }
                ),
                (
                    "b:2".into(),
                    HealthNode {
                        gateway_status: Some("connected".into()),
                        role: None,
                        errors: vec![],
                    }
                ),
            ]
        );
    }

    #[test]
    fn health_unknown_values_and_extra_keys_kept_or_ignored() {
        let r = parse_health(
            br#"{"health":{"gateway_status":"rebooting","role":"arbiter","uptime":12},"meta":{"api_status":"beta","extra":true},"other":{}}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            HealthReport {
                meta: Some(Meta {
                    version: None,
                    api_status: Some("beta".into())
                }),
                nodes: Nodes::Single(hnode("rebooting", "arbiter")),
                problems: Problems::default(),
            }
        );
        let r =
            parse_health(br#"{"health":{"h:c":{"gateway_status":"","role":"witness"}}}"#).unwrap();
        assert_eq!(
            cluster_of(&r.nodes),
            vec![("h:c".into(), hnode("", "witness"))]
        );
    }

    #[test]
    fn health_missing_payload() {
        assert_eq!(
            health_err(r#"{"meta":{"version":"v2"}}"#),
            missing::<ApiError>("health")
        );
        assert_eq!(
            health_err(r#"{"health":null}"#),
            missing::<ApiError>("health")
        );
        let e = health_err("{}");
        assert_eq!(e, missing::<ApiError>("health"));
        assert_eq!(
            e.to_string(),
            "missing required field `health` (absent or null)"
        );
    }

    #[test]
    fn health_empty_object_is_an_error() {
        let e = health_err(r#"{"health":{}}"#);
        assert_eq!(e, invalid::<ApiError>("health", "empty object (no nodes)"));
        assert_eq!(
            e.to_string(),
            "invalid value at `health`: empty object (no nodes)"
        );
    }

    #[test]
    fn health_null_gateway_status() {
        let e = health_problem(r#"{"health":{"gateway_status":null}}"#);
        assert_eq!(e, missing::<ApiError>("health.gateway_status").to_string());
        assert_eq!(
            e.to_string(),
            "missing required field `health.gateway_status` (absent or null)"
        );
    }

    #[test]
    fn health_node_missing_or_null_gateway_status_names_node() {
        let e = health_problem(
            r#"{"health":{"host:c0":{"gateway_status":"connected"},"host:c1":{"role":"coreapp"}}}"#,
        );
        assert_eq!(
            e,
            missing::<ApiError>(r#"health["host:c1"].gateway_status"#).to_string()
        );
        assert_eq!(
            e.to_string(),
            r#"missing required field `health["host:c1"].gateway_status` (absent or null)"#
        );
        let e = health_problem(r#"{"health":{"host:c1":{"gateway_status":null}}}"#);
        assert_eq!(
            e,
            missing::<ApiError>(r#"health["host:c1"].gateway_status"#).to_string()
        );
    }

    #[test]
    fn health_node_value_not_an_object() {
        assert_eq!(
            health_problem(r#"{"health":{"host:c1":"connected"}}"#),
            wrong::<ApiError>(r#"health["host:c1"]"#, "object", "string").to_string()
        );
        assert_eq!(
            health_problem(r#"{"health":{"host:c1":null}}"#),
            wrong::<ApiError>(r#"health["host:c1"]"#, "object", "null").to_string()
        );
        let e = health_problem(r#"{"health":{"host:c1":[1,2]}}"#);
        assert_eq!(
            e.to_string(),
            r#"wrong type at `health["host:c1"]`: expected object, found array"#
        );
    }

    #[test]
    fn health_wrong_types() {
        assert_eq!(
            health_problem(r#"{"health":"connected"}"#),
            wrong::<ApiError>("health", "object", "string").to_string()
        );
        assert_eq!(
            health_problem(r#"{"health":[]}"#),
            wrong::<ApiError>("health", "object", "array").to_string()
        );
        let e = health_problem(r#"{"health":{"gateway_status":1}}"#);
        assert_eq!(
            e,
            wrong::<ApiError>("health.gateway_status", "string", "number").to_string()
        );
        assert_eq!(
            e.to_string(),
            "wrong type at `health.gateway_status`: expected string, found number"
        );
        assert_eq!(
            health_problem(r#"{"health":{"gateway_status":"connected","role":true}}"#),
            wrong::<ApiError>("health.role", "string", "boolean").to_string()
        );
        assert_eq!(
            health_problem(r#"{"health":{"h:c":{"gateway_status":"connected","role":{}}}}"#),
            wrong::<ApiError>(r#"health["h:c"].role"#, "string", "object").to_string()
        );
        assert_eq!(
            health_problem(r#"{"health":{"gateway_status":"connected"},"meta":"v2"}"#),
            wrong::<ApiError>("meta", "object", "string").to_string()
        );
        assert_eq!(
            health_problem(r#"{"health":{"gateway_status":"connected"},"meta":{"version":2}}"#),
            wrong::<ApiError>("meta.version", "string", "number").to_string()
        );
    }

    /// A High Availability cluster where one node answers the error envelope in place of its
    /// health (the shape of Meta's On-Premises `/v1/health` reference for a coreapp that is
    /// not ready): the node is kept with its errors, the others as usual, nothing noted.
    #[test]
    fn health_node_with_errors_is_kept_beside_its_siblings() {
        let r = parse_health(
            br#"{"health":{
                "h1:c1":{"gateway_status":"connected","role":"primary_master"},
                "h2:c2":{"gateway_status":"disconnected","role":"secondary_master"},
                "h3:c3":{"errors":[{"code":1011,"title":"Service not ready","details":"Wacore is not instantiated. Please check wacore log for details."}],"role":"coreapp"}
            }}"#,
        )
        .unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let nodes = cluster_of(&r.nodes);
        assert_eq!(
            nodes[0],
            ("h1:c1".into(), hnode("connected", "primary_master"))
        );
        assert_eq!(
            nodes[1],
            ("h2:c2".into(), hnode("disconnected", "secondary_master"))
        );
        assert_eq!(
            nodes[2],
            (
                "h3:c3".into(),
                HealthNode {
                    gateway_status: None,
                    role: Some("coreapp".into()),
                    errors: vec![ApiError {
                        code: Some(1011),
                        title: Some("Service not ready".into()),
                        details: Some(
                            "Wacore is not instantiated. Please check wacore log for details."
                                .into()
                        ),
                    }],
                }
            )
        );
    }

    #[test]
    fn health_unreadable_nodes_are_skipped_and_counted_unless_none_is_left() {
        let r = parse_health(
            br#"{"health":{"a:1":"connected","b:2":{"gateway_status":"connected"},"c:3":[1],"d:4":{"gateway_status":7}}}"#,
        )
        .unwrap();
        let nodes = cluster_of(&r.nodes);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].1.gateway_status.as_deref(), Some("connected"));
        assert_eq!(nodes[1].0, "d:4");
        assert_eq!(nodes[1].1.gateway_status, None);
        assert_eq!(r.problems.skipped(), 2);
        assert_eq!(
            r.problems.notes(),
            [
                r#"item skipped: wrong type at `health["a:1"]`: expected object, found string"#,
                r#"item skipped: wrong type at `health["c:3"]`: expected object, found array"#,
                r#"ignored: wrong type at `health["d:4"].gateway_status`: expected string, found number"#,
            ]
        );
        // No node left: the answer says nothing.
        assert_eq!(
            health_err(r#"{"health":{"a:1":"connected","c:3":[1]}}"#),
            wrong(r#"health["a:1"]"#, "object", "string")
        );
        // A single instance that answers errors in its health is one node with errors.
        let r =
            parse_health(br#"{"health":{"errors":[{"code":1011,"title":"Service not ready"}]}}"#)
                .unwrap();
        let node = single_of(&r.nodes);
        assert_eq!(node.gateway_status, None);
        assert_eq!(node.errors[0].code, Some(1011));
    }

    #[test]
    fn support_fields_that_cannot_be_read_are_ignored_alone() {
        let r = parse_support(
            br#"{"support":{"h:c":{"version":"v2.53.2","free_space_data":"lots","free_space_logs":10,"schema":{"a":1,"b":"x"},"shards":"0-1"},"h:d":{"version":"v2.53.2"}}}"#,
        )
        .unwrap();
        let nodes = cluster_of(&r.nodes);
        assert_eq!(nodes.len(), 2);
        let node = &nodes[0].1;
        assert_eq!(node.version.as_deref(), Some("v2.53.2"));
        assert_eq!(node.free_space, vec![("logs".to_owned(), 10.0)]);
        assert_eq!(node.schema, vec![("a".to_owned(), 1.0)]);
        assert_eq!(node.shard_count, None);
        assert_eq!(r.problems.skipped(), 0);
        assert_eq!(r.problems.notes().len(), 3, "{:?}", r.problems);
    }

    #[test]
    fn node_keys_in_paths_are_escaped_and_clipped() {
        let long = "k".repeat(300);
        let e = health_problem(&format!(r#"{{"health":{{"{long}":{{}}}}}}"#));
        let want = format!("health[\"{}…\"].gateway_status", "k".repeat(200));
        assert_eq!(e, missing::<ApiError>(&want).to_string());
        let e = health_problem(r#"{"health":{"a\"b\\c\nd":{}}}"#);
        assert_eq!(
            e,
            missing::<ApiError>(r#"health["a\"b\\c d"].gateway_status"#).to_string()
        );
    }

    // --- body / envelope errors ------------------------------------------------------------

    #[test]
    fn empty_body() {
        for body in [&b""[..], b"   \r\n\t", b"\xEF\xBB\xBF"] {
            assert_eq!(parse_health(body), Err(PayloadError::EmptyBody));
            assert_eq!(parse_support(body), Err(PayloadError::EmptyBody));
            assert_eq!(parse_login(body), Err(PayloadError::EmptyBody));
        }
    }

    #[test]
    fn malformed_json() {
        let e = health_err("{\"health\": {\"gateway_status\": connected}}");
        assert_eq!(
            e,
            PayloadError::Malformed {
                line: 1,
                column: 31,
                message: "expected value".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "malformed JSON at line 1, column 31: expected value"
        );
    }

    #[test]
    fn truncated_json() {
        let e = health_err("{\"health\": {\"gateway_status\": \"conn");
        assert_eq!(
            e,
            PayloadError::Truncated {
                line: 1,
                column: 35
            }
        );
        assert_eq!(
            e.to_string(),
            "truncated JSON: unexpected end of input at line 1, column 35"
        );
        let full = fixture!("support_single.json");
        let e = parse_support(&full[..full.len() / 2]).unwrap_err();
        assert!(matches!(e, PayloadError::Truncated { .. }), "{e:?}");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(br#"{"health":{"gateway_status":"connected"}}"#);
        let r = parse_health(&body).unwrap();
        assert_eq!(
            r.nodes,
            Nodes::Single(HealthNode {
                gateway_status: Some("connected".into()),
                role: None,
                errors: vec![],
            })
        );
    }

    #[test]
    fn wrong_top_level_type() {
        for (body, found) in [
            ("[]", "array"),
            (r#"[{"health":{"gateway_status":"connected"}}]"#, "array"),
            (r#""connected""#, "string"),
            ("42", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            let want = wrong::<ApiError>("$", "object", found);
            assert_eq!(health_err(body), want, "{body}");
            assert_eq!(support_err(body), want, "{body}");
            assert_eq!(parse_login(body.as_bytes()).unwrap_err(), want, "{body}");
        }
    }

    #[test]
    fn errors_envelope_with_200_and_no_payload() {
        let body = fixture!("errors_200_no_payload.json");
        let want = PayloadError::Upstream(ApiError {
            code: Some(1005),
            title: Some("Access denied".into()),
            details: Some("Invalid credentials or insufficient permissions".into()),
        });
        assert_eq!(parse_health(body), Err(want.clone()));
        assert_eq!(parse_support(body), Err(want.clone()));
        assert_eq!(parse_login(body), Err(want.clone()));
        assert_eq!(
            want.to_string(),
            "upstream error 1005: Access denied (details: Invalid credentials or insufficient permissions)"
        );
        // Null payload and empty users list count as "no payload".
        let e =
            health_err(r#"{"health":null,"errors":[{"code":1011,"title":"Service not ready"}]}"#);
        assert_eq!(e.to_string(), "upstream error 1011: Service not ready");
        let e = parse_login(br#"{"users":[],"errors":[{"title":"Password change required"}]}"#)
            .unwrap_err();
        assert_eq!(e.to_string(), "upstream error: Password change required");
        let e = health_err(r#"{"errors":[{"code":"1014"}]}"#);
        assert_eq!(e.to_string(), "upstream error 1014: (no title)");
    }

    #[test]
    fn empty_or_unusable_errors_array_is_not_upstream() {
        assert_eq!(
            health_err(r#"{"errors":[]}"#),
            missing::<ApiError>("health")
        );
        assert_eq!(
            health_err(r#"{"errors":[1,null,[]]}"#),
            missing::<ApiError>("health")
        );
        assert_eq!(
            health_err(r#"{"errors":{"code":1}}"#),
            missing::<ApiError>("health")
        );
    }

    #[test]
    fn errors_alongside_payload_parse_the_payload() {
        // Seed 004 shows a payload, meta and errors together "purely as an example".
        let r = parse_health(
            br#"{"health":{"gateway_status":"connected"},"meta":{"version":"v2.41.3","api_status":"deprecated"},"errors":[{"code":1005,"title":"Access denied","details":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.meta,
            Some(Meta {
                version: Some("v2.41.3".into()),
                api_status: Some("deprecated".into())
            })
        );
        assert_eq!(
            single_of(&r.nodes).gateway_status.as_deref(),
            Some("connected")
        );
    }

    #[test]
    fn upstream_strings_are_clipped() {
        let long = "é".repeat(250);
        let body = format!(r#"{{"errors":[{{"code":1005,"title":"{long}","details":"a\nb"}}]}}"#);
        let e = health_err(&body);
        let clipped = format!("{}…", "é".repeat(200));
        assert_eq!(
            e,
            PayloadError::Upstream(ApiError {
                code: Some(1005),
                title: Some(clipped.clone()),
                details: Some("a b".into()),
            })
        );
        assert_eq!(
            e.to_string(),
            format!("upstream error 1005: {clipped} (details: a b)")
        );
    }

    #[test]
    fn envelope_errors_reads_non_2xx_bodies() {
        assert_eq!(
            envelope_errors(fixture!("errors_401.json")),
            vec![
                ApiError {
                    code: Some(1005),
                    title: Some("Access denied".into()),
                    details: Some("Invalid credentials or insufficient permissions".into()),
                },
                ApiError {
                    code: Some(1011),
                    title: Some("Service not ready".into()),
                    details: None,
                },
            ]
        );
    }

    #[test]
    fn envelope_errors_is_lenient_and_never_fails() {
        assert_eq!(
            envelope_errors(
                br#"{"errors":[{"code":"470","title":7,"details":"d"},"plain text",42,null,{},{"code":1005.0}]}"#
            ),
            vec![
                ApiError {
                    code: Some(470),
                    title: None,
                    details: Some("d".into())
                },
                ApiError {
                    code: None,
                    title: Some("plain text".into()),
                    details: None
                },
                ApiError {
                    code: None,
                    title: None,
                    details: None
                },
                ApiError {
                    code: Some(1005),
                    title: None,
                    details: None
                },
            ]
        );
        for body in [
            &b""[..],
            b"garbage",
            b"<html>502</html>",
            b"[]",
            b"{}",
            b"{\"errors\":null}",
            b"{\"errors\":\"denied\"}",
            b"{\"errors\":[",
            fixture!("health_single.json"),
        ] {
            assert_eq!(envelope_errors(body), vec![], "{body:?}");
        }
    }

    // --- /v1/support -----------------------------------------------------------------------

    #[test]
    fn support_single_instance() {
        let r = parse_support(fixture!("support_single.json")).unwrap();
        assert_eq!(r.meta, stable_meta());
        let n = single_of(&r.nodes);
        assert_eq!(
            n,
            SupportNode {
                role: None,
                multi_connect: Some(false),
                shard_count: None,
                version: Some("v2.41.3".into()),
                db_engine: Some("MYSQL".into()),
                os_name: Some("ubuntu-x86_64".into()),
                os_version: Some("16.04".into()),
                expire_timestamp: Some(1_538_058_367.0),
                device_time: Some(1_547_113_869.470_591),
                socket_conn: Some("UP".into()),
                free_space: vec![
                    ("data".into(), 9_223_372_036_853_727_000.0),
                    ("logs".into(), 14_269_902_848.0),
                    ("media_incoming".into(), 9_223_372_036_853_727_000.0),
                    ("media_outgoing".into(), 9_223_372_036_853_727_000.0),
                ],
                schema: vec![
                    ("axolotl".into(), 1.0),
                    ("callback".into(), 2.0),
                    ("cluster".into(), 3.0),
                    ("config".into(), 4.0),
                    ("contact".into(), 5.0),
                    ("jobqueue".into(), 6.0),
                    ("message".into(), 7.0),
                ],
            }
        );
    }

    #[test]
    fn support_single_instance_socket_conn_values_kept() {
        for s in [
            "UP",
            "DN",
            "SC",
            "UP receiving offline",
            "UNK",
            "SOMETHING NEW",
        ] {
            let body = format!(r#"{{"support":{{"socket_conn":"{s}"}}}}"#);
            let n = single_of(&parse_support(body.as_bytes()).unwrap().nodes);
            assert_eq!(n.socket_conn.as_deref(), Some(s));
        }
    }

    #[test]
    fn support_single_detected_by_any_usual_field() {
        for k in SUPPORT_SINGLE_KEYS {
            // A value of the wrong type for most fields, to prove the single path was taken.
            let body = format!(r#"{{"support":{{"{k}":null,"h:c":{{}}}}}}"#);
            let r = parse_support(body.as_bytes()).unwrap();
            assert_eq!(r.nodes, Nodes::Single(empty_support_node()), "{k}");
        }
    }

    #[test]
    fn support_high_availability() {
        let r = parse_support(fixture!("support_ha.json")).unwrap();
        assert_eq!(r.meta, stable_meta());
        let base = SupportNode {
            multi_connect: Some(false),
            version: Some("v2.41.3".into()),
            db_engine: Some("PGSQL".into()),
            expire_timestamp: Some(1_638_316_800.0),
            ..empty_support_node()
        };
        assert_eq!(
            cluster_of(&r.nodes),
            vec![
                (
                    "wa-coreapp-1:0a1b2c3d4e5f".into(),
                    SupportNode {
                        role: Some("coreapp".into()),
                        shard_count: Some(0),
                        device_time: Some(1_631_028_568.0),
                        socket_conn: Some("UP".into()),
                        free_space: vec![
                            ("media_incoming".into(), 9_223_372_036_853_727_000.0),
                            ("media_outgoing".into(), 9_223_372_036_853_727_000.0),
                        ],
                        ..base.clone()
                    }
                ),
                (
                    "wa-master-1:4f6c1a2b3c4d".into(),
                    SupportNode {
                        role: Some("primary_master".into()),
                        shard_count: Some(2),
                        os_name: Some("ubuntu-x86_64".into()),
                        os_version: Some("20.04".into()),
                        device_time: Some(1_631_028_566.5),
                        socket_conn: Some("DN".into()),
                        free_space: vec![
                            ("data".into(), 52_613_349_376.0),
                            ("logs".into(), 14_269_902_848.0),
                        ],
                        ..base.clone()
                    }
                ),
                (
                    "wa-master-2:9e8d7c6b5a49".into(),
                    SupportNode {
                        role: Some("secondary_master".into()),
                        shard_count: Some(0),
                        device_time: Some(1_631_028_567.0),
                        socket_conn: Some("DN".into()),
                        ..base
                    }
                ),
            ]
        );
    }

    #[test]
    fn support_multiconnect_shards() {
        let r = parse_support(fixture!("support_multiconnect.json")).unwrap();
        let nodes = cluster_of(&r.nodes);
        let summary: Vec<_> = nodes
            .iter()
            .map(|(k, n)| {
                (
                    k.as_str(),
                    n.role.as_deref(),
                    n.multi_connect,
                    n.shard_count,
                    n.socket_conn.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "wa-coreapp-1:0a1b2c3d4e5f",
                    Some("coreapp"),
                    Some(true),
                    Some(1),
                    Some("UP receiving offline")
                ),
                (
                    "wa-master-1:4f6c1a2b3c4d",
                    Some("primary_master"),
                    Some(true),
                    Some(2),
                    Some("UP")
                ),
                (
                    "wa-master-2:9e8d7c6b5a49",
                    Some("secondary_master"),
                    Some(true),
                    Some(0),
                    Some("SC")
                ),
            ]
        );
        for (_, n) in &nodes {
            assert_eq!(n.db_engine.as_deref(), Some("MYSQL"));
            assert_eq!(n.version.as_deref(), Some("v2.41.3"));
            assert_eq!(n.expire_timestamp, None);
            assert_eq!(n.free_space, vec![]);
            assert_eq!(n.schema, vec![]);
        }
    }

    #[test]
    fn support_shard_ranges_are_summed() {
        let r = parse_support(
            br#"{"support":{"a:1":{"shards":[[-1,-1],[0,3],[10,10]]},"b:2":{"shards":[[-1,-1]]},"c:3":{"shards":null}}}"#,
        )
        .unwrap();
        let counts: Vec<_> = cluster_of(&r.nodes)
            .into_iter()
            .map(|(k, n)| (k, n.shard_count))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("a:1".into(), Some(6)),
                ("b:2".into(), Some(1)),
                ("c:3".into(), None)
            ]
        );
        // Widest ranges that still fit.
        let r = parse_support(
            br#"{"support":{"a:1":{"shards":[[0,18446744073709551614]]},"b:2":{"shards":[[-9223372036854775808,9223372036854775806]]}}}"#,
        )
        .unwrap();
        let counts: Vec<_> = cluster_of(&r.nodes)
            .into_iter()
            .map(|(_, n)| n.shard_count)
            .collect();
        assert_eq!(counts, vec![Some(u64::MAX), Some(u64::MAX)]);
    }

    #[test]
    fn support_bad_shards() {
        assert_eq!(
            support_problem(r#"{"support":{"h:c":{"shards":"0-1"}}}"#),
            wrong::<ApiError>(r#"support["h:c"].shards"#, "array", "string").to_string()
        );
        assert_eq!(
            support_problem(r#"{"support":{"h:c":{"shards":[0,1]}}}"#),
            wrong::<ApiError>(r#"support["h:c"].shards[0]"#, "array", "number").to_string()
        );
        let e = support_problem(r#"{"support":{"h:c":{"shards":[[0,0],[1,2,3]]}}}"#);
        assert_eq!(
            e,
            invalid::<ApiError>(
                r#"support["h:c"].shards[1]"#,
                "expected a [first, last] pair, found 3 elements"
            )
            .to_string()
        );
        assert_eq!(
            support_problem(r#"{"support":{"h:c":{"shards":[[1.5,2]]}}}"#),
            wrong::<ApiError>(
                r#"support["h:c"].shards[0][0]"#,
                "integer",
                "non-integer number"
            )
            .to_string()
        );
        assert_eq!(
            support_problem(r#"{"support":{"h:c":{"shards":[[1,"2"]]}}}"#),
            wrong::<ApiError>(r#"support["h:c"].shards[0][1]"#, "integer", "string").to_string()
        );
        let e = support_problem(r#"{"support":{"h:c":{"shards":[[3,1]]}}}"#);
        assert_eq!(
            e.to_string(),
            r#"invalid value at `support["h:c"].shards[0]`: range [3, 1] ends before it starts"#
        );
        for shards in [
            "[[0,18446744073709551615]]",
            "[[-9223372036854775808,9223372036854775807]]",
            "[[0,18446744073709551615],[0,18446744073709551615]]",
        ] {
            let body = format!(r#"{{"support":{{"h:c":{{"shards":{shards}}}}}}}"#);
            assert_eq!(
                support_problem(&body),
                invalid::<ApiError>(
                    r#"support["h:c"].shards"#,
                    "shard count does not fit in 64 bits"
                )
                .to_string(),
                "{shards}"
            );
        }
    }

    #[test]
    fn support_empty_node_objects() {
        // HA nodes other than the answering one may be `{}`.
        let r = parse_support(br#"{"support":{"h1:c1":{},"h2:c2":{"role":"coreapp"}}}"#).unwrap();
        assert_eq!(r.meta, None);
        assert_eq!(
            r.nodes,
            Nodes::Cluster(vec![
                ("h1:c1".into(), empty_support_node()),
                (
                    "h2:c2".into(),
                    SupportNode {
                        role: Some("coreapp".into()),
                        ..empty_support_node()
                    }
                ),
            ])
        );
    }

    #[test]
    fn support_nulls_are_absent() {
        let r = parse_support(
            br#"{"support":{"version":null,"role":null,"multi_connect":null,"shards":null,"db_engine":null,"os_name":null,"os_version":null,"expire_timestamp":null,"device_iso8601":null,"socket_conn":null,"free_space_data":null,"schema":{"axolotl":null,"message":3}}}"#,
        )
        .unwrap();
        assert_eq!(
            r.nodes,
            Nodes::Single(SupportNode {
                schema: vec![("message".into(), 3.0)],
                ..empty_support_node()
            })
        );
        let r = parse_support(br#"{"support":{"version":"v2","schema":null}}"#).unwrap();
        assert_eq!(single_of(&r.nodes).schema, vec![]);
    }

    #[test]
    fn support_expire_timestamp_as_number_and_with_zone() {
        let r = parse_support(
            br#"{"support":{"expire_timestamp":1538058367,"device_iso8601":"2021-09-14T17:29:26.25+02:00"}}"#,
        )
        .unwrap();
        let n = single_of(&r.nodes);
        assert_eq!(n.expire_timestamp, Some(1_538_058_367.0));
        assert_eq!(n.device_time, Some(1_631_633_366.25));
        let r = parse_support(br#"{"support":{"expire_timestamp":1538058367.5}}"#).unwrap();
        assert_eq!(single_of(&r.nodes).expire_timestamp, Some(1_538_058_367.5));
    }

    #[test]
    fn support_free_space_any_suffix() {
        let r = parse_support(
            br#"{"support":{"version":"v2","free_space_tmp":1,"free_space_data":0,"free_space_":5,"free_space":6,"free_space_logs":-1}}"#,
        )
        .unwrap();
        assert_eq!(
            single_of(&r.nodes).free_space,
            vec![
                ("data".into(), 0.0),
                ("logs".into(), -1.0),
                ("tmp".into(), 1.0)
            ]
        );
    }

    #[test]
    fn support_bad_timestamps() {
        let e = support_problem(r#"{"support":{"expire_timestamp":"next tuesday"}}"#);
        assert_eq!(
            e,
            invalid::<ApiError>(
                "support.expire_timestamp",
                r#"unparseable timestamp "next tuesday""#
            )
            .to_string()
        );
        assert_eq!(
            e.to_string(),
            r#"invalid value at `support.expire_timestamp`: unparseable timestamp "next tuesday""#
        );
        assert_eq!(
            support_problem(r#"{"support":{"h:c":{"device_iso8601":""}}}"#),
            invalid::<ApiError>(
                r#"support["h:c"].device_iso8601"#,
                r#"unparseable timestamp """#
            )
            .to_string()
        );
        assert_eq!(
            support_problem(r#"{"support":{"device_iso8601":1631633366}}"#),
            wrong::<ApiError>("support.device_iso8601", "timestamp string", "number").to_string()
        );
        assert_eq!(
            support_problem(r#"{"support":{"expire_timestamp":true}}"#),
            wrong::<ApiError>(
                "support.expire_timestamp",
                "timestamp string or number",
                "boolean"
            )
            .to_string()
        );
        let long = "x".repeat(500);
        let e = support_problem(&format!(r#"{{"support":{{"expire_timestamp":"{long}"}}}}"#));
        assert_eq!(
            e,
            invalid::<ApiError>(
                "support.expire_timestamp",
                &format!("unparseable timestamp \"{}…\"", "x".repeat(200))
            )
            .to_string()
        );
    }

    #[test]
    fn support_wrong_types() {
        for (body, path, expected, found) in [
            (r#"{"support":"ok"}"#, "support", "object", "string"),
            (
                r#"{"support":{"version":2}}"#,
                "support.version",
                "string",
                "number",
            ),
            (
                r#"{"support":{"multi_connect":"false"}}"#,
                "support.multi_connect",
                "boolean",
                "string",
            ),
            (
                r#"{"support":{"free_space_data":"12"}}"#,
                "support.free_space_data",
                "number",
                "string",
            ),
            (
                r#"{"support":{"version":"v2","free_space_a-b":[]}}"#,
                r#"support["free_space_a-b"]"#,
                "number",
                "array",
            ),
            (
                r#"{"support":{"schema":[1,2]}}"#,
                "support.schema",
                "object",
                "array",
            ),
            (
                r#"{"support":{"schema":{"message":"7"}}}"#,
                r#"support.schema["message"]"#,
                "number",
                "string",
            ),
            (
                r#"{"support":{"h:c":{"socket_conn":0}}}"#,
                r#"support["h:c"].socket_conn"#,
                "string",
                "number",
            ),
            (
                r#"{"support":{"h:c":{"role":["coreapp"]}}}"#,
                r#"support["h:c"].role"#,
                "string",
                "array",
            ),
            (
                r#"{"support":{"h:c":{"db_engine":{}}}}"#,
                r#"support["h:c"].db_engine"#,
                "string",
                "object",
            ),
            (
                r#"{"support":{"h:c":{"os_name":1,"os_version":"x"}}}"#,
                r#"support["h:c"].os_name"#,
                "string",
                "number",
            ),
            (
                r#"{"support":{"h:c":{"os_version":false}}}"#,
                r#"support["h:c"].os_version"#,
                "string",
                "boolean",
            ),
            (
                r#"{"support":{"h:c":"UP"}}"#,
                r#"support["h:c"]"#,
                "object",
                "string",
            ),
            (
                r#"{"support":{"h:c":null}}"#,
                r#"support["h:c"]"#,
                "object",
                "null",
            ),
        ] {
            assert_eq!(
                support_problem(body),
                wrong::<ApiError>(path, expected, found).to_string(),
                "{body}"
            );
        }
    }

    #[test]
    fn support_missing_or_empty_payload() {
        assert_eq!(
            support_err(r#"{"meta":{}}"#),
            missing::<ApiError>("support")
        );
        assert_eq!(
            support_err(r#"{"support":{}}"#),
            invalid::<ApiError>("support", "empty object (no nodes)")
        );
    }

    // --- login -----------------------------------------------------------------------------

    #[test]
    fn login_example() {
        let t = parse_login(fixture!("login.json")).unwrap();
        assert_eq!(
            t,
            LoginToken {
                token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjoiYWRtaW4ifQ.c2lnbmF0dXJl"
                    .into(),
                expires_after: Some(1_631_633_366.0),
            }
        );
    }

    #[test]
    fn login_debug_redacts_token() {
        let t = parse_login(fixture!("login.json")).unwrap();
        let dbg = format!("{t:?}");
        assert_eq!(
            dbg,
            "LoginToken { token: <redacted, 72 chars>, expires_after: Some(1631633366.0) }"
        );
    }

    #[test]
    fn login_expires_after_lenient() {
        for (expires, want) in [
            (r#""never""#, None),
            (r#""""#, None),
            ("null", None),
            ("true", None),
            ("1631633366", Some(1_631_633_366.0)),
            (r#""2021-09-14T15:29:26Z""#, Some(1_631_633_366.0)),
        ] {
            let body = format!(r#"{{"users":[{{"token":"t","expires_after":{expires}}}]}}"#);
            assert_eq!(
                parse_login(body.as_bytes()).unwrap(),
                LoginToken {
                    token: "t".into(),
                    expires_after: want
                },
                "{expires}"
            );
        }
        assert_eq!(
            parse_login(br#"{"users":[{"token":"t"}]}"#)
                .unwrap()
                .expires_after,
            None
        );
    }

    #[test]
    fn login_bad_bodies() {
        let login_err = |b: &str| parse_login(b.as_bytes()).unwrap_err();
        assert_eq!(login_err(r#"{"meta":{}}"#), missing::<ApiError>("users"));
        assert_eq!(
            login_err(r#"{"users":[]}"#),
            missing::<ApiError>("users[0]")
        );
        assert_eq!(
            login_err(r#"{"users":[{"expires_after":"2021-09-14 15:29:26+00:00"}]}"#),
            missing::<ApiError>("users[0].token")
        );
        assert_eq!(
            login_err(r#"{"users":[{"token":null}]}"#).to_string(),
            "missing required field `users[0].token` (absent or null)"
        );
        assert_eq!(
            login_err(r#"{"users":[{"token":42}]}"#),
            wrong::<ApiError>("users[0].token", "string", "number")
        );
        assert_eq!(
            login_err(r#"{"users":[{"token":""}]}"#),
            invalid::<ApiError>("users[0].token", "empty token")
        );
        assert_eq!(
            login_err(r#"{"users":{"token":"t"}}"#),
            wrong::<ApiError>("users", "array", "object")
        );
        assert_eq!(
            login_err(r#"{"users":["t"]}"#),
            wrong::<ApiError>("users[0]", "object", "string")
        );
    }

    // --- robustness ------------------------------------------------------------------------

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        for body in FIXTURES {
            for end in 0..=body.len() {
                let b = &body[..end];
                let _ = parse_health(b);
                let _ = parse_support(b);
                let _ = parse_login(b);
                let _ = envelope_errors(b);
            }
            let mut m = body.to_vec();
            for i in 0..m.len() {
                let saved = m[i];
                for replacement in [b'"', b'}', 0xff] {
                    m[i] = replacement;
                    let _ = parse_health(&m);
                    let _ = parse_support(&m);
                    let _ = parse_login(&m);
                    let _ = envelope_errors(&m);
                }
                m[i] = saved;
            }
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_health(deep.as_bytes()),
            Err(PayloadError::Malformed { .. })
        ));
        assert_eq!(envelope_errors(deep.as_bytes()), vec![]);
    }
}
