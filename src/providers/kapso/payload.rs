//! Parsing of Kapso's health body, the same in both of Kapso's APIs: the legacy config
//! health (`GET https://app.kapso.ai/api/v1/whatsapp_configs/{id}/health`) and the Platform
//! API's phone number health
//! (`GET https://api.kapso.ai/platform/v1/whatsapp/phone_numbers/{phone_number_id}/health`).
//!
//! The body is `{"status":"healthy|degraded|unhealthy|error","checks":{...},"timestamp":...}`,
//! plus an `error` string when the health check itself failed (then `checks` may be missing
//! or empty). `checks` is open-ended: every check is kept by name; the known ones are read
//! further (`phone_number_access`, `messaging_health` whose details are Meta's
//! `health_status`, `webhook_subscription`, `webhook_verified`).
//!
//! Read check by check: only `status` is required. A check that is not an object is
//! skipped, a field or `details` that cannot be read is ignored, each noted in
//! [`KapsoHealth::problems`]; the rest of the answer stands.

use std::convert::Infallible;

use serde_json::Value;

use crate::json::{
    as_object, field, load, opt_id, present, required_str, strip_bom, wrong_type, Obj, Problems,
};
pub use crate::meta::payload::PayloadError;
use crate::meta::payload::{health_status_from_object, health_status_from_value, HealthStatus};

/// A parsed health body.
#[derive(Debug, Clone, PartialEq)]
pub struct KapsoHealth {
    /// `healthy`, `degraded`, `unhealthy`, `error`, or anything new, as sent.
    pub status: String,
    /// Every key of `checks` that is an object, sorted by name.
    pub checks: Vec<Check>,
    /// `checks.phone_number_access.details`.
    pub phone: Option<KapsoPhone>,
    /// `checks.messaging_health.overall_status`.
    pub overall_status: Option<String>,
    /// `checks.messaging_health.details` (Meta's `health_status`).
    pub messaging: Option<HealthStatus>,
    /// `checks.webhook_subscription.details.subscribed`.
    pub webhook_subscribed: Option<bool>,
    /// `checks.webhook_subscription.details.app_id` (a number or a string).
    pub webhook_app_id: Option<String>,
    /// `checks.webhook_verified.details.verified_at`, unix seconds.
    pub webhook_verified_at: Option<f64>,
    /// The top-level `error`.
    pub error: Option<String>,
    /// The top-level `timestamp`, unix seconds.
    pub timestamp: Option<f64>,
    /// Parts of the answer that could not be read.
    pub problems: Problems,
}

/// One entry of `checks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: Option<bool>,
    /// The check's own `error` (a string, or the `message` of an error object). The legacy
    /// API puts Meta's error here as a Ruby hash dumped into a string: it stays text, the
    /// check failing is what counts.
    pub error: Option<String>,
}

/// `checks.phone_number_access.details`: a subset of Meta's phone number node.
#[derive(Debug, Clone, PartialEq)]
pub struct KapsoPhone {
    pub id: Option<String>,
    pub verified_name: Option<String>,
    pub display_phone_number: Option<String>,
    pub quality_rating: Option<String>,
    /// `CONNECTED`, ... (the Platform API only).
    pub status: Option<String>,
    /// Kapso's name for Meta's messaging limit tier, e.g. `TIER_10K` (the Platform API only).
    pub throughput_tier: Option<String>,
}

/// Parses a health body.
///
/// Errors only when the body is not an object with a string `status`. Anything else that
/// cannot be read is left out and noted in `problems`: `checks` not an object (no checks),
/// a check not an object (skipped), a `details` not an object, a known field of the wrong
/// type, an unparseable timestamp, a `messaging_health.details` that is not a readable
/// health status. `messaging_health.details` that has none of `can_send_message`,
/// `entities` and `health_status` (e.g. only an error) is no health status and no problem:
/// `messaging` is `None`.
pub fn parse_health(body: &[u8]) -> Result<KapsoHealth, PayloadError> {
    let root = load(body)?;
    let status = required_str(&root, "", "status")?;
    let mut problems = Problems::default();
    let empty = Obj::new();
    let checks_obj = match present(&root, "checks") {
        None => &empty,
        Some(Value::Object(o)) => o,
        Some(v) => {
            problems.ignore(wrong_type::<Infallible>("checks", "object", v));
            &empty
        }
    };

    let mut checks = Vec::with_capacity(checks_obj.len());
    for (name, v) in checks_obj {
        let path = field("checks", name);
        let Some(o) = problems.item(as_object::<Infallible>(v, &path)) else {
            continue;
        };
        checks.push(Check {
            name: name.clone(),
            passed: problems.opt_bool(o, &path, "passed"),
            error: error_text(o),
        });
    }
    // serde_json's map is ordered unless `preserve_order` is enabled somewhere in the build.
    checks.sort_by(|a, b| a.name.cmp(&b.name));

    let phone =
        details(checks_obj, "phone_number_access", &mut problems).map(|(d, path)| KapsoPhone {
            id: id(&mut problems, d, &path, "id"),
            verified_name: problems.opt_str(d, &path, "verified_name"),
            display_phone_number: problems.opt_str(d, &path, "display_phone_number"),
            quality_rating: problems.opt_str(d, &path, "quality_rating"),
            status: problems.opt_str(d, &path, "status"),
            throughput_tier: problems.opt_str(d, &path, "throughput_tier"),
        });

    let overall_status = match checks_obj
        .get("messaging_health")
        .and_then(Value::as_object)
    {
        Some(o) => problems.opt_str(o, "checks.messaging_health", "overall_status"),
        None => None,
    };
    let messaging = details(checks_obj, "messaging_health", &mut problems)
        .and_then(|(d, path)| messaging_health(d, &path, &mut problems));

    let (webhook_subscribed, webhook_app_id) =
        match details(checks_obj, "webhook_subscription", &mut problems) {
            None => (None, None),
            Some((d, path)) => (
                problems.opt_bool(d, &path, "subscribed"),
                id(&mut problems, d, &path, "app_id"),
            ),
        };

    let webhook_verified_at = details(checks_obj, "webhook_verified", &mut problems)
        .and_then(|(d, path)| problems.opt_timestamp(d, &path, "verified_at", true));

    let timestamp = problems.opt_timestamp(&root, "", "timestamp", true);
    Ok(KapsoHealth {
        status,
        checks,
        phone,
        overall_status,
        messaging,
        webhook_subscribed,
        webhook_app_id,
        webhook_verified_at,
        error: error_text(&root),
        timestamp,
        problems,
    })
}

/// The text of a Kapso error body `{"error":"...","message":"..."}` (e.g. a 401 or 404),
/// `error: message` when both are there, if there is one; never fails.
pub fn parse_error(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(strip_bom(body)) else {
        return None;
    };
    let error = error_text(&root)?;
    match root.get("message") {
        Some(Value::String(m)) if !m.is_empty() && *m != error => Some(format!("{error}: {m}")),
        _ => Some(error),
    }
}

/// `error` as a string, or the `message` string of an `error` object; anything else is
/// ignored (an undocumented shape must not fail the whole report).
fn error_text(o: &Obj) -> Option<String> {
    match o.get("error")? {
        Value::String(s) => Some(s.clone()),
        Value::Object(e) => e.get("message")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// An id given as a string or a number, ignored (noted) when it is neither.
fn id(problems: &mut Problems, o: &Obj, base: &str, name: &str) -> Option<String> {
    problems.field(opt_id::<Infallible>(o, base, name))
}

/// The non-null `details` object of check `name`, with its path; a `details` that is not an
/// object is ignored (noted).
fn details<'a>(checks: &'a Obj, name: &str, problems: &mut Problems) -> Option<(&'a Obj, String)> {
    // A check that is not an object was skipped (and noted) with the checks.
    let check = checks.get(name).and_then(Value::as_object)?;
    let path = field(&field("checks", name), "details");
    let v = present(check, "details")?;
    let d = problems.field(as_object::<Infallible>(v, &path).map(Some))?;
    Some((d, path))
}

/// Meta's health_status in `details`, or in its `health_status` when Meta's whole node body
/// was relayed; `None` when it is neither, or noted when it cannot be read.
fn messaging_health(d: &Obj, path: &str, problems: &mut Problems) -> Option<HealthStatus> {
    let read = if d.contains_key("can_send_message") || d.contains_key("entities") {
        health_status_from_object(d, path, problems)
    } else {
        let v = present(d, "health_status")?;
        health_status_from_value(v, &field(path, "health_status"), problems)
    };
    problems.field(read.map(Some))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::expected::wrong;
    #[allow(unused_imports)]
    use crate::json::Problems;
    use crate::meta::payload::{Entity, EntityError, GraphError};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kapso/",
                $name
            ))
            .as_slice()
        };
    }

    const FIXTURES: &[&[u8]] = &[
        fixture!("health_healthy.json"),
        fixture!("health_degraded.json"),
        fixture!("health_unhealthy.json"),
        fixture!("health_error.json"),
        fixture!("legacy_health_invalid_token_190.json"),
        fixture!("legacy_health_payment_141006.json"),
        fixture!("platform_phone_health_healthy.json"),
    ];

    /// 2024-01-20T14:25:30Z
    const TIMESTAMP: f64 = 1_705_760_730.0;

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

    fn check(name: &str, passed: Option<bool>, error: Option<&str>) -> Check {
        Check {
            name: name.into(),
            passed,
            error: error.map(Into::into),
        }
    }

    fn empty(status: &str) -> KapsoHealth {
        KapsoHealth {
            status: status.into(),
            checks: vec![],
            phone: None,
            overall_status: None,
            messaging: None,
            webhook_subscribed: None,
            webhook_app_id: None,
            webhook_verified_at: None,
            error: None,
            timestamp: None,
            problems: Problems::default(),
        }
    }

    fn health_err(body: &str) -> PayloadError {
        parse_health(body.as_bytes()).unwrap_err()
    }

    /// Wraps `checks` members into a minimal body.
    fn with_checks(checks: &str) -> String {
        format!(r#"{{"status":"healthy","checks":{{{checks}}}}}"#)
    }

    // --- seed 003, exactly as printed ------------------------------------------------------

    #[test]
    fn seed_healthy_example() {
        let h = parse_health(fixture!("health_healthy.json")).unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                status: "healthy".into(),
                checks: vec![
                    check("messaging_health", Some(true), None),
                    check("phone_number_access", Some(true), None),
                    check("webhook_subscription", Some(true), None),
                    check("webhook_verified", Some(true), None),
                ],
                phone: Some(KapsoPhone {
                    id: Some("123456789012345".into()),
                    verified_name: Some("My Business".into()),
                    display_phone_number: Some("+1 555-123-4567".into()),
                    quality_rating: Some("GREEN".into()),
                    status: None,
                    throughput_tier: None,
                }),
                overall_status: Some("AVAILABLE".into()),
                messaging: Some(HealthStatus {
                    can_send_message: "AVAILABLE".into(),
                    entities: vec![
                        ent("PHONE_NUMBER", "123456789012345", "AVAILABLE"),
                        ent("WABA", "987654321098765", "AVAILABLE"),
                        ent("BUSINESS", "456789012345678", "AVAILABLE"),
                        ent("APP", "789012345678901", "AVAILABLE"),
                    ],
                }),
                webhook_subscribed: Some(true),
                webhook_app_id: Some("789012345678901".into()),
                // 2024-01-15T10:30:00.000Z
                webhook_verified_at: Some(1_705_314_600.0),
                error: None,
                timestamp: Some(TIMESTAMP),
                problems: Problems::default(),
            }
        );
    }

    // --- other statuses --------------------------------------------------------------------

    #[test]
    fn degraded() {
        let h = parse_health(fixture!("health_degraded.json")).unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                status: "degraded".into(),
                checks: vec![
                    check("messaging_health", Some(false), None),
                    check("phone_number_access", Some(true), None),
                    check("webhook_subscription", Some(true), None),
                    check("webhook_verified", Some(false), None),
                ],
                phone: Some(KapsoPhone {
                    id: Some("123456789012345".into()),
                    verified_name: Some("My Business".into()),
                    display_phone_number: Some("+1 555-123-4567".into()),
                    quality_rating: Some("YELLOW".into()),
                    status: None,
                    throughput_tier: None,
                }),
                overall_status: Some("LIMITED".into()),
                messaging: Some(HealthStatus {
                    can_send_message: "LIMITED".into(),
                    entities: vec![
                        Entity {
                            additional_info: vec!["Your display name has not been approved yet. Your message limit will increase after the display name is approved.".into()],
                            ..ent("PHONE_NUMBER", "123456789012345", "LIMITED")
                        },
                        ent("WABA", "987654321098765", "AVAILABLE"),
                        ent("BUSINESS", "456789012345678", "AVAILABLE"),
                        ent("APP", "789012345678901", "AVAILABLE"),
                    ],
                }),
                webhook_subscribed: Some(true),
                webhook_app_id: Some("789012345678901".into()),
                webhook_verified_at: None,
                error: None,
                timestamp: Some(TIMESTAMP + 0.5),
                problems: Problems::default(),
            }
        );
    }

    #[test]
    fn unhealthy_with_failed_checks_and_an_unknown_check() {
        let h = parse_health(fixture!("health_unhealthy.json")).unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                status: "unhealthy".into(),
                checks: vec![
                    check("messaging_health", Some(false), None),
                    check(
                        "phone_number_access",
                        Some(false),
                        Some("(#100) Tried accessing nonexisting field (quality_rating)")
                    ),
                    check(
                        "token_validity",
                        Some(false),
                        Some("Access token has expired")
                    ),
                    check("webhook_subscription", Some(false), None),
                ],
                phone: None,
                overall_status: Some("BLOCKED".into()),
                messaging: Some(HealthStatus {
                    can_send_message: "BLOCKED".into(),
                    entities: vec![
                        Entity {
                            errors: vec![EntityError {
                                error_code: Some(141006),
                                error_description: Some(
                                    "There is an error with the payment method.".into()
                                ),
                                possible_solution: Some(
                                    "Update the payment method in WhatsApp Manager.".into()
                                ),
                            }],
                            ..ent("WABA", "987654321098765", "BLOCKED")
                        },
                        ent("BUSINESS", "456789012345678", "AVAILABLE"),
                        ent("APP", "789012345678901", "AVAILABLE"),
                    ],
                }),
                webhook_subscribed: Some(false),
                webhook_app_id: Some("789012345678901".into()),
                webhook_verified_at: None,
                error: None,
                timestamp: Some(TIMESTAMP),
                problems: Problems::default(),
            }
        );
    }

    #[test]
    fn error_status_with_error_and_no_checks() {
        let h = parse_health(fixture!("health_error.json")).unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                error: Some(
                    "Failed to run health checks: WhatsApp config has no access token".into()
                ),
                timestamp: Some(TIMESTAMP),
                problems: Problems::default(),
                ..empty("error")
            }
        );
        for body in [
            r#"{"status":"error","checks":{},"error":"boom"}"#,
            r#"{"status":"error","checks":null,"error":"boom"}"#,
            r#"{"status":"error","error":{"message":"boom","code":500}}"#,
        ] {
            assert_eq!(
                parse_health(body.as_bytes()).unwrap(),
                KapsoHealth {
                    error: Some("boom".into()),
                    ..empty("error")
                },
                "{body}"
            );
        }
    }

    #[test]
    fn unknown_status_and_values_kept() {
        let h = parse_health(
            br#"{"status":"maintenance","checks":{"new_check":{"passed":true,"details":{"anything":[1]},"score":3},"messaging_health":{"overall_status":"THROTTLED","details":{"can_send_message":"THROTTLED","entities":[{"entity_type":"FLOW","id":42,"can_send_message":"NEW"}]}}},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                checks: vec![
                    check("messaging_health", None, None),
                    check("new_check", Some(true), None),
                ],
                overall_status: Some("THROTTLED".into()),
                messaging: Some(HealthStatus {
                    can_send_message: "THROTTLED".into(),
                    entities: vec![ent("FLOW", "42", "NEW")],
                }),
                ..empty("maintenance")
            }
        );
    }

    #[test]
    fn null_details_and_nulls_are_absent() {
        let h = parse_health(
            with_checks(
                r#""phone_number_access":{"passed":null,"details":null,"error":null},"messaging_health":{"passed":false,"overall_status":null,"details":null},"webhook_subscription":{"details":{"app_id":null,"subscribed":null}},"webhook_verified":{"details":{"verified_at":null}}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            h,
            KapsoHealth {
                checks: vec![
                    check("messaging_health", Some(false), None),
                    check("phone_number_access", None, None),
                    check("webhook_subscription", None, None),
                    check("webhook_verified", None, None),
                ],
                ..empty("healthy")
            }
        );
        let h = parse_health(
            with_checks(r#""phone_number_access":{"details":{"id":null,"verified_name":null}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            h.phone,
            Some(KapsoPhone {
                id: None,
                verified_name: None,
                display_phone_number: None,
                quality_rating: None,
                status: None,
                throughput_tier: None,
            })
        );
    }

    #[test]
    fn messaging_details_shapes() {
        let messaging = |details: &str| {
            let h = parse_health(
                with_checks(&format!(r#""messaging_health":{{"details":{details}}}"#)).as_bytes(),
            )
            .unwrap();
            (h.messaging, h.problems.notes().to_vec())
        };
        // Not a health status (only an error, or empty): no messaging health, no problem.
        assert_eq!(
            messaging(r#"{"error":"Graph API timeout"}"#),
            (None, vec![])
        );
        assert_eq!(messaging("{}"), (None, vec![]));
        // Meta's node body relayed whole.
        assert_eq!(
            messaging(
                r#"{"health_status":{"can_send_message":"AVAILABLE","entities":[]},"id":"1"}"#
            ),
            (
                Some(HealthStatus {
                    can_send_message: "AVAILABLE".into(),
                    entities: vec![]
                }),
                vec![]
            )
        );
        // Entities without the overall value: no messaging health, noted with its path.
        assert_eq!(
            messaging(r#"{"entities":[]}"#),
            (
                None,
                vec!["ignored: missing required field `checks.messaging_health.details.can_send_message` (absent or null)".to_owned()]
            )
        );
        // An entity without an id is skipped alone.
        let mut problems = Problems::default();
        let v: Value = serde_json::from_str(
            r#"{"can_send_message":"AVAILABLE","entities":[{"entity_type":"WABA"}]}"#,
        )
        .unwrap();
        let health = messaging_health(
            v.as_object().unwrap(),
            "checks.messaging_health.details",
            &mut problems,
        )
        .unwrap();
        assert_eq!(health.can_send_message, "AVAILABLE");
        assert!(health.entities.is_empty());
        assert_eq!(
            problems.notes(),
            ["item skipped: missing required field `checks.messaging_health.details.entities[0].id` (absent or null)"]
        );
        assert_eq!(problems.skipped(), 1);
        assert_eq!(
            messaging(r#"{"health_status":{"entities":[]}}"#),
            (
                None,
                vec!["ignored: missing required field `checks.messaging_health.details.health_status.can_send_message` (absent or null)".to_owned()]
            )
        );
    }

    #[test]
    fn checks_sorted_and_errors_lenient() {
        let h = parse_health(
            with_checks(
                r#""zeta":{"passed":true},"alpha":{"passed":false,"error":{"message":"nested"}},"mid":{"error":["not","text"]},"Beta":{}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            h.checks,
            vec![
                check("Beta", None, None),
                check("alpha", Some(false), Some("nested")),
                check("mid", None, None),
                check("zeta", Some(true), None),
            ]
        );
    }

    #[test]
    fn missing_status() {
        let e = health_err(r#"{"checks":{},"error":"Unauthorized"}"#);
        assert_eq!(
            e,
            PayloadError::Missing {
                path: "status".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "missing required field `status` (absent or null)"
        );
        assert_eq!(
            health_err(r#"{"status":null}"#),
            PayloadError::Missing {
                path: "status".into()
            }
        );
        // The one field an answer cannot do without.
        assert_eq!(
            health_err(r#"{"status":1}"#),
            wrong("status", "string", "number")
        );
    }

    #[test]
    fn a_field_or_check_that_cannot_be_read_is_left_out_alone() {
        // (body, the note, whether it is a check skipped whole)
        for (body, path, expected, found, skipped) in [
            (
                r#"{"status":"healthy","checks":[]}"#.to_owned(),
                "checks",
                "object",
                "array",
                false,
            ),
            (
                with_checks(r#""phone_number_access":true"#),
                "checks.phone_number_access",
                "object",
                "boolean",
                true,
            ),
            (
                with_checks(r#""custom-check":null"#),
                r#"checks["custom-check"]"#,
                "object",
                "null",
                true,
            ),
            (
                with_checks(r#""webhook_verified":{"passed":"yes"}"#),
                "checks.webhook_verified.passed",
                "boolean",
                "string",
                false,
            ),
            (
                with_checks(r#""phone_number_access":{"details":"ok"}"#),
                "checks.phone_number_access.details",
                "object",
                "string",
                false,
            ),
            (
                with_checks(r#""phone_number_access":{"details":{"id":[1]}}"#),
                "checks.phone_number_access.details.id",
                "string or number",
                "array",
                false,
            ),
            (
                with_checks(r#""phone_number_access":{"details":{"quality_rating":1}}"#),
                "checks.phone_number_access.details.quality_rating",
                "string",
                "number",
                false,
            ),
            (
                with_checks(r#""messaging_health":{"overall_status":false}"#),
                "checks.messaging_health.overall_status",
                "string",
                "boolean",
                false,
            ),
            (
                with_checks(r#""messaging_health":{"details":["AVAILABLE"]}"#),
                "checks.messaging_health.details",
                "object",
                "array",
                false,
            ),
            (
                with_checks(r#""messaging_health":{"details":{"can_send_message":1}}"#),
                "checks.messaging_health.details.can_send_message",
                "string",
                "number",
                false,
            ),
            (
                with_checks(r#""webhook_subscription":{"details":{"subscribed":"true"}}"#),
                "checks.webhook_subscription.details.subscribed",
                "boolean",
                "string",
                false,
            ),
            (
                with_checks(r#""webhook_subscription":{"details":{"app_id":{}}}"#),
                "checks.webhook_subscription.details.app_id",
                "string or number",
                "object",
                false,
            ),
            (
                with_checks(r#""webhook_verified":{"details":{"verified_at":true}}"#),
                "checks.webhook_verified.details.verified_at",
                "timestamp string or number",
                "boolean",
                false,
            ),
            (
                r#"{"status":"healthy","timestamp":[]}"#.to_owned(),
                "timestamp",
                "timestamp string or number",
                "array",
                false,
            ),
        ] {
            let h = parse_health(body.as_bytes()).unwrap();
            let why = wrong::<GraphError>(path, expected, found);
            let note = if skipped {
                format!("item skipped: {why}")
            } else {
                format!("ignored: {why}")
            };
            assert_eq!(h.problems.notes(), [note], "{body}");
            assert_eq!(h.problems.skipped(), u64::from(skipped), "{body}");
            assert_eq!(h.status, "healthy", "{body}");
        }
    }

    #[test]
    fn one_odd_check_leaves_its_siblings() {
        // Before, one check of the wrong shape failed the whole answer.
        let h = parse_health(
            with_checks(
                r#""phone_number_access":"ok","messaging_health":{"passed":true,"overall_status":"AVAILABLE","details":{"can_send_message":"AVAILABLE","entities":[]}},"webhook_subscription":{"passed":"sure","details":{"subscribed":true,"app_id":7}},"webhook_verified":{"passed":true,"details":{"verified_at":"soon"}}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            h.checks,
            vec![
                check("messaging_health", Some(true), None),
                check("webhook_subscription", None, None),
                check("webhook_verified", Some(true), None),
            ]
        );
        assert_eq!(h.phone, None);
        assert_eq!(h.overall_status.as_deref(), Some("AVAILABLE"));
        assert!(h.messaging.is_some());
        assert_eq!(h.webhook_subscribed, Some(true));
        assert_eq!(h.webhook_app_id.as_deref(), Some("7"));
        assert_eq!(h.webhook_verified_at, None);
        assert_eq!(
            h.problems.notes(),
            [
                "item skipped: wrong type at `checks.phone_number_access`: expected object, found string",
                "ignored: wrong type at `checks.webhook_subscription.passed`: expected boolean, found string",
                r#"ignored: invalid value at `checks.webhook_verified.details.verified_at`: unparseable timestamp "soon""#,
            ]
        );
        assert_eq!(h.problems.skipped(), 1);
    }

    #[test]
    fn timestamps() {
        let h = parse_health(
            with_checks(r#""webhook_verified":{"details":{"verified_at":1705314600}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(h.webhook_verified_at, Some(1_705_314_600.0));
        let h = parse_health(br#"{"status":"healthy","timestamp":"2024-01-20 16:25:30.25+02:00"}"#)
            .unwrap();
        assert_eq!(h.timestamp, Some(TIMESTAMP + 0.25));
        let h = parse_health(br#"{"status":"healthy","timestamp":"yesterday"}"#).unwrap();
        assert_eq!(h.timestamp, None);
        assert_eq!(
            h.problems.notes(),
            [r#"ignored: invalid value at `timestamp`: unparseable timestamp "yesterday""#]
        );
        let long = "y".repeat(300);
        let h = parse_health(
            with_checks(&format!(
                r#""webhook_verified":{{"details":{{"verified_at":"{long}"}}}}"#
            ))
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(h.webhook_verified_at, None);
        let why = PayloadError::Invalid {
            path: "checks.webhook_verified.details.verified_at".into(),
            reason: format!("unparseable timestamp \"{}…\"", "y".repeat(200)),
        };
        assert_eq!(h.problems.notes(), [format!("ignored: {why}")]);
    }

    #[test]
    fn bodies() {
        for body in [&b""[..], b" \n", b"\xEF\xBB\xBF"] {
            assert_eq!(parse_health(body), Err(PayloadError::EmptyBody));
        }
        assert_eq!(health_err("[]"), wrong("$", "object", "array"));
        assert_eq!(
            health_err("<html>502</html>"),
            PayloadError::Malformed {
                line: 1,
                column: 1,
                message: "expected value".into()
            }
        );
        let full = fixture!("health_healthy.json");
        assert!(matches!(
            parse_health(&full[..full.len() / 2]),
            Err(PayloadError::Truncated { .. })
        ));
    }

    // --- Kapso's published examples (tests/fixtures/kapso/SOURCES.md) ----------------------

    #[test]
    fn published_invalid_token_fails_its_checks_not_the_answer() {
        // Meta's error is a Ruby hash dumped into each check's `error` string: upstream data
        // (the checks failed), not an answer that cannot be read.
        let h = parse_health(fixture!("legacy_health_invalid_token_190.json")).unwrap();
        assert_eq!(h.status, "unhealthy");
        let passed: Vec<(&str, Option<bool>)> = h
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.passed))
            .collect();
        assert_eq!(
            passed,
            [
                ("messaging_health", Some(false)),
                ("phone_number_access", Some(false)),
                ("webhook_subscription", Some(false)),
                ("webhook_verified", Some(true)),
            ]
        );
        assert!(h.checks[1]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("Meta Graph API error: 400 - {\"error\" => ")));
        assert_eq!(h.phone, None);
        assert_eq!(h.messaging, None);
        assert_eq!(h.webhook_subscribed, None);
        assert_eq!(h.webhook_verified_at, Some(1_704_874_530.0));
        assert_eq!(h.error, None);
        assert!(h.problems.is_empty(), "{}", h.problems);
    }

    #[test]
    fn published_payment_block() {
        let h = parse_health(fixture!("legacy_health_payment_141006.json")).unwrap();
        assert_eq!(h.status, "unhealthy");
        assert_eq!(h.overall_status.as_deref(), Some("BLOCKED"));
        let messaging = h.messaging.unwrap();
        assert_eq!(messaging.can_send_message, "BLOCKED");
        let waba = &messaging.entities[1];
        assert_eq!(
            (waba.entity_type.as_str(), waba.id.as_str()),
            ("WABA", "556677889900112")
        );
        assert_eq!(waba.errors[0].error_code, Some(141006));
        assert_eq!(messaging.entities[0].additional_info.len(), 1);
        assert_eq!(h.webhook_app_id.as_deref(), Some("112233445566778"));
        assert_eq!(h.webhook_verified_at, None);
        assert!(h.problems.is_empty(), "{}", h.problems);
    }

    #[test]
    fn published_platform_phone_health() {
        let h = parse_health(fixture!("platform_phone_health_healthy.json")).unwrap();
        assert_eq!(h.status, "healthy");
        assert_eq!(
            h.phone,
            Some(KapsoPhone {
                id: Some("123456789012345".into()),
                verified_name: Some("My Business".into()),
                display_phone_number: Some("+1 555-123-4567".into()),
                quality_rating: Some("GREEN".into()),
                status: Some("CONNECTED".into()),
                throughput_tier: Some("TIER_10K".into()),
            })
        );
        // A string here, a number in the legacy API.
        assert_eq!(h.webhook_app_id.as_deref(), Some("789012345678901"));
        assert_eq!(h.webhook_verified_at, Some(1_736_937_000.0));
        assert_eq!(h.timestamp, Some(1_737_383_130.0));
        assert_eq!(h.messaging.map(|m| m.entities.len()), Some(4));
        assert!(h.problems.is_empty(), "{}", h.problems);
    }

    #[test]
    fn parse_error_reads_error_text() {
        assert_eq!(
            parse_error(br#"{"error":"Invalid API key"}"#),
            Some("Invalid API key".into())
        );
        assert_eq!(
            parse_error(br#"{"error":{"message":"Not found","code":404}}"#),
            Some("Not found".into())
        );
        // Kapso's API introduction: a short error code, then the detail.
        assert_eq!(
            parse_error(
                br#"{"error":"Rate limit exceeded","message":"Please retry after 60 seconds"}"#
            ),
            Some("Rate limit exceeded: Please retry after 60 seconds".into())
        );
        assert_eq!(
            parse_error(fixture!("error_401.json")),
            Some("Invalid or missing API key".into())
        );
        assert_eq!(
            parse_error(fixture!("error_proxy_timeout.json")),
            Some("Kapso proxy timeout".into())
        );
        assert_eq!(
            parse_error(fixture!("health_error.json")),
            Some("Failed to run health checks: WhatsApp config has no access token".into())
        );
        for body in [
            &b""[..],
            b"nope",
            b"[]",
            b"{}",
            br#"{"error":null}"#,
            br#"{"error":3}"#,
            fixture!("health_healthy.json"),
        ] {
            assert_eq!(parse_error(body), None, "{body:?}");
        }
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        for body in FIXTURES {
            for end in 0..=body.len() {
                let _ = parse_health(&body[..end]);
                let _ = parse_error(&body[..end]);
            }
            let mut m = body.to_vec();
            for i in 0..m.len() {
                let saved = m[i];
                for replacement in [b'"', b'}', b'1', 0xff] {
                    m[i] = replacement;
                    let _ = parse_health(&m);
                    let _ = parse_error(&m);
                }
                m[i] = saved;
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for deep in [
            "[".repeat(100_000),
            format!("{{\"status\":{}", "{\"a\":".repeat(100_000)),
        ] {
            assert!(matches!(
                parse_health(deep.as_bytes()),
                Err(PayloadError::Malformed { .. })
            ));
            assert_eq!(parse_error(deep.as_bytes()), None);
        }
    }
}
