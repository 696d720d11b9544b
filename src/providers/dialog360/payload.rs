//! Parsing of 360dialog response bodies.
//!
//! `GET https://waba-v2.360dialog.io/health_status` answers with Meta's body unchanged, so
//! its parser is the Graph one, re-exported here. 360dialog's own failures (bad key, its
//! one-request-every-N-seconds limit) come in its own envelope:
//! `{"meta":{"httpCode":401,"developerMessage":"Invalid api_key","success":false}}`.

use std::time::Duration;

use serde_json::Value;

use crate::json::{lenient_bool, lenient_i64, strip_bom};
pub use crate::meta::payload::{
    parse_health_status_body, Entity, EntityError, HealthStatus, PayloadError,
};

/// The `meta` object of a 360dialog error envelope.
///
/// The message is kept whole; clip it before quoting it in an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog360Error {
    pub http_code: Option<i64>,
    pub developer_message: Option<String>,
    pub success: Option<bool>,
}

/// Reads `{"meta":{"httpCode":...,"developerMessage":"...","success":false}}`.
///
/// `None` when the body is not JSON, has no `meta` object, or the `meta` object has none of
/// the three fields. Read leniently: `httpCode` may be a number or numeric string,
/// `success` a boolean or `"true"`/`"false"`, and the snake_case spellings `http_code` and
/// `developer_message` are accepted too; fields of other types are left out. Never fails.
pub fn parse_error(body: &[u8]) -> Option<Dialog360Error> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(strip_bom(body)) else {
        return None;
    };
    let meta = root.get("meta")?.as_object()?;
    let either = |a: &str, b: &str| meta.get(a).filter(|v| !v.is_null()).or_else(|| meta.get(b));
    let error = Dialog360Error {
        http_code: either("httpCode", "http_code").and_then(lenient_i64),
        developer_message: either("developerMessage", "developer_message")
            .and_then(Value::as_str)
            .map(str::to_owned),
        success: meta.get("success").and_then(lenient_bool),
    };
    let empty =
        error.http_code.is_none() && error.developer_message.is_none() && error.success.is_none();
    (!empty).then_some(error)
}

/// True for 360dialog's "You have exceeded the limit of 1 request every N seconds"
/// (any message containing "exceeded the limit", in any case).
pub fn is_rate_limit(error: &Dialog360Error) -> bool {
    error
        .developer_message
        .as_deref()
        .is_some_and(|m| m.to_lowercase().contains("exceeded the limit"))
}

/// The window N of "... every N seconds" in the message (also `N second`, `Ns`, `N sec`,
/// `N minutes`; N may have a fraction). `None` when there is no positive N with a known unit
/// (such as the documentation's placeholder "every * seconds").
pub fn rate_limit_window(error: &Dialog360Error) -> Option<Duration> {
    let message = error.developer_message.as_deref()?.to_lowercase();
    let start = message.find("every ")? + "every ".len();
    let mut words = message[start..].split_whitespace();
    let first = words.next()?;
    // The unit may be glued to the number ("5s") or be the next word ("5 seconds").
    let split = first
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(first.len());
    let (number, glued) = first.split_at(split);
    let unit = if glued.is_empty() {
        words.next()?
    } else {
        glued
    };
    let unit = unit.trim_end_matches(|c: char| !c.is_alphabetic());
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => n,
        "m" | "min" | "mins" | "minute" | "minutes" => n * 60.0,
        _ => return None,
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::json::Problems;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/dialog360/",
                $name
            ))
            .as_slice()
        };
    }

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

    fn others_available() -> Vec<Entity> {
        vec![
            ent("WABA", "102290129340398", "AVAILABLE"),
            ent("BUSINESS", "506914307656634", "AVAILABLE"),
            ent("APP", "634974688087057", "AVAILABLE"),
        ]
    }

    fn error_with(message: &str) -> Dialog360Error {
        Dialog360Error {
            http_code: Some(400),
            developer_message: Some(message.into()),
            success: Some(false),
        }
    }

    // --- seed 002, exactly as printed ------------------------------------------------------

    #[test]
    fn seed_response_payload_with_placeholders() {
        let h = parse_health_status_body(
            fixture!("health_status_placeholders.json"),
            &mut Problems::default(),
        )
        .unwrap();
        assert_eq!(h.can_send_message, "<OVERALL_MESSAGING_STATUS>");
        assert_eq!(
            h.entities,
            vec![
                Entity {
                    can_receive_call_sip: Some("<BUSINESS_PHONE_NUMBER_SIP_STATUS>".into()),
                    ..ent(
                        "PHONE_NUMBER",
                        "<BUSINESS_PHONE_NUMBER_ID>",
                        "<BUSINESS_PHONE_NUMBER_MESSAGING_STATUS>"
                    )
                },
                ent("WABA", "<WABA_ID>", "<WABA_MESSAGING_STATUS>"),
                ent("BUSINESS", "<BUSINESS_ID>", "<BUSINESS_MESSAGING_STATUS>"),
                Entity {
                    can_receive_call_sip: Some("<BUSINESS_PHONE_NUMBER_SIP_STATUS>".into()),
                    ..ent("APP", "<APP_ID>", "<APP_MESSAGING_STATUS>")
                },
            ]
        );
    }

    #[test]
    fn seed_example_available() {
        let h = parse_health_status_body(
            fixture!("health_status_available.json"),
            &mut Problems::default(),
        )
        .unwrap();
        let mut entities = vec![ent("PHONE_NUMBER", "106540352242922", "AVAILABLE")];
        entities.extend(others_available());
        assert_eq!(
            h,
            HealthStatus {
                can_send_message: "AVAILABLE".into(),
                entities
            }
        );
    }

    #[test]
    fn seed_example_limited() {
        let h = parse_health_status_body(
            fixture!("health_status_limited.json"),
            &mut Problems::default(),
        )
        .unwrap();
        let mut entities = vec![Entity {
            additional_info: vec![LIMITED_INFO.into()],
            ..ent("PHONE_NUMBER", "106540352242922", "LIMITED")
        }];
        entities.extend(others_available());
        assert_eq!(
            h,
            HealthStatus {
                can_send_message: "LIMITED".into(),
                entities
            }
        );
    }

    #[test]
    fn seed_example_blocked() {
        let h = parse_health_status_body(
            fixture!("health_status_blocked.json"),
            &mut Problems::default(),
        )
        .unwrap();
        let mut entities = vec![Entity {
            errors: vec![EntityError {
                error_code: Some(141002),
                error_description: Some(
                    "Message templates can only be sent out if they are approved.".into(),
                ),
                possible_solution: Some(
                    "Edit or appeal the message template review decision.".into(),
                ),
            }],
            ..ent("MESSAGE_TEMPLATE", "2632273056924580", "BLOCKED")
        }];
        entities.extend(others_available());
        assert_eq!(
            h,
            HealthStatus {
                can_send_message: "BLOCKED".into(),
                entities
            }
        );
    }

    #[test]
    fn error_envelope_on_a_2xx_health_body_is_missing_health_status() {
        let e = parse_health_status_body(fixture!("error_401.json"), &mut Problems::default())
            .unwrap_err();
        assert_eq!(
            e,
            PayloadError::Missing {
                path: "health_status".into()
            }
        );
    }

    // --- error envelope --------------------------------------------------------------------

    #[test]
    fn error_401_invalid_api_key() {
        let e = parse_error(fixture!("error_401.json")).unwrap();
        assert_eq!(
            e,
            Dialog360Error {
                http_code: Some(401),
                developer_message: Some("Invalid api_key".into()),
                success: Some(false),
            }
        );
        assert!(!is_rate_limit(&e));
        assert_eq!(rate_limit_window(&e), None);
    }

    #[test]
    fn error_rate_limit() {
        let e = parse_error(fixture!("error_rate_limit.json")).unwrap();
        assert_eq!(
            e,
            error_with("You have exceeded the limit of 1 request every 5 seconds")
        );
        assert!(is_rate_limit(&e));
        assert_eq!(rate_limit_window(&e), Some(Duration::from_secs(5)));
    }

    #[test]
    fn rate_limit_detection_is_case_insensitive() {
        for m in [
            "YOU HAVE EXCEEDED THE LIMIT of 1 request every 2 seconds",
            "Exceeded the limit",
            "you have exceeded the limit of requests",
        ] {
            assert!(is_rate_limit(&error_with(m)), "{m}");
        }
        for m in ["Invalid api_key", "limit exceeded", ""] {
            assert!(!is_rate_limit(&error_with(m)), "{m}");
        }
        let none = Dialog360Error {
            http_code: Some(429),
            developer_message: None,
            success: None,
        };
        assert!(!is_rate_limit(&none));
        assert_eq!(rate_limit_window(&none), None);
    }

    #[test]
    fn rate_limit_window_forms() {
        for (m, want) in [
            (
                "You have exceeded the limit of 1 request every 5 seconds",
                Some(5_000),
            ),
            (
                "You have exceeded the limit of 1 request every 1 second.",
                Some(1_000),
            ),
            (
                "You have exceeded the limit of 1 request every 30s",
                Some(30_000),
            ),
            ("exceeded the limit: 1 request every 2.5 sec", Some(2_500)),
            (
                "exceeded the limit of 1 request EVERY 2 Minutes",
                Some(120_000),
            ),
            // The documentation's placeholder, no number, zero, an unknown unit.
            (
                "You have exceeded the limit of 1 request every * seconds",
                None,
            ),
            (
                "You have exceeded the limit of 1 request every second",
                None,
            ),
            (
                "You have exceeded the limit of 1 request every 0 seconds",
                None,
            ),
            (
                "You have exceeded the limit of 1 request every 3 fortnights",
                None,
            ),
            ("You have exceeded the limit of 1 request every 5", None),
            ("every 1e400 seconds", None),
            ("every inf seconds", None),
            ("You have exceeded the limit", None),
        ] {
            assert_eq!(
                rate_limit_window(&error_with(m)),
                want.map(Duration::from_millis),
                "{m}"
            );
        }
    }

    #[test]
    fn parse_error_is_lenient() {
        assert_eq!(
            parse_error(br#"{"meta":{"http_code":"400","developer_message":"Bad request","success":"false"}}"#),
            Some(Dialog360Error {
                http_code: Some(400),
                developer_message: Some("Bad request".into()),
                success: Some(false),
            })
        );
        assert_eq!(
            parse_error(br#"{"meta":{"httpCode":401.0,"developerMessage":7,"success":null}}"#),
            Some(Dialog360Error {
                http_code: Some(401),
                developer_message: None,
                success: None,
            })
        );
        assert_eq!(
            parse_error(br#"{"meta":{"success":false}}"#),
            Some(Dialog360Error {
                http_code: None,
                developer_message: None,
                success: Some(false),
            })
        );
    }

    #[test]
    fn parse_error_none_when_not_an_envelope() {
        for body in [
            &b""[..],
            b"garbage",
            b"<html>401</html>",
            b"[]",
            b"{}",
            br#"{"meta":null}"#,
            br#"{"meta":"x"}"#,
            br#"{"meta":{}}"#,
            br#"{"meta":{"version":"v2"}}"#,
            br#"{"meta":{"httpCode":401"#,
            fixture!("health_status_available.json"),
        ] {
            assert_eq!(parse_error(body), None, "{body:?}");
        }
    }

    #[test]
    fn never_panics_on_prefixes() {
        for body in [
            fixture!("error_401.json"),
            fixture!("error_rate_limit.json"),
            fixture!("health_status_blocked.json"),
        ] {
            for end in 0..=body.len() {
                let _ = parse_health_status_body(&body[..end], &mut Problems::default());
                if let Some(e) = parse_error(&body[..end]) {
                    let _ = is_rate_limit(&e);
                    let _ = rate_limit_window(&e);
                }
            }
        }
        for m in [
            "every",
            "every ",
            "every .",
            "every 5",
            "every 5 ",
            "every é",
            "every 5é",
        ] {
            let _ = rate_limit_window(&error_with(m));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{\"meta\":{}", "[".repeat(100_000));
        assert!(matches!(
            parse_health_status_body(deep.as_bytes(), &mut Problems::default()),
            Err(PayloadError::Malformed { .. })
        ));
        assert_eq!(parse_error(deep.as_bytes()), None);
    }
}
