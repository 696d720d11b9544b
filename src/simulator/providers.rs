//! The simulated 360dialog and Kapso APIs: Business Solution Providers relaying Meta's
//! health of one number each, from the state of [`super::meta`].
//!
//! # 360dialog
//!
//! Base URL `http://ADDR/360dialog` ([`SimulatorHandle::dialog360_base_url`]), standing for
//! `https://waba-v2.360dialog.io`.
//!
//! `GET /360dialog/health_status` with `D360-API-KEY: <channel key>`. Each key of
//! [`SimulatorOptions::dialog360_api_keys`] (default [`DIALOG360_API_KEYS`]) is one channel:
//! the n-th key serves the n-th number of [`meta::PHONE_NUMBER_IDS`] (keys past the third
//! are ignored). The answer is Meta's body for that number:
//! `{"health_status":{"can_send_message":…,"entities":[PHONE_NUMBER, WABA, BUSINESS, APP]},
//! "id":"<number id>"}`.
//!
//! Errors use 360dialog's envelope `{"meta":{"httpCode":…,"developerMessage":"…",
//! "success":false}}`. Order of checks: the request is counted
//! ([`Simulator::dialog360_requests`]), then the method (405), then the key (401
//! `Invalid api_key`), then, when [`SimulatorOptions::dialog360_min_interval`] is set, the
//! channel's rate limit (400 `You have exceeded the limit of 1 request every N seconds`; the
//! interval runs from the channel's last request that passed), then the channel's fault
//! ([`Simulator::set_dialog360_fault`]). Other paths answer 404 and are not counted.
//!
//! # Kapso
//!
//! Base URL `http://ADDR/kapso` ([`SimulatorHandle::kapso_base_url`]), standing for
//! `https://app.kapso.ai`.
//!
//! `GET /kapso/api/v1/whatsapp_configs/{config_id}/health` with `X-API-Key:
//! <kapso_api_key>` (default [`KAPSO_API_KEY`]). The n-th id of
//! [`SimulatorOptions::kapso_config_ids`] (default [`KAPSO_CONFIG_IDS`]) is tied to the n-th
//! number. The answer:
//!
//! ```json
//! {"status": "healthy|degraded|unhealthy|error",
//!  "checks": {
//!    "phone_number_access": {"passed": true, "details": {"verified_name", "display_phone_number", "quality_rating", "id"}},
//!    "messaging_health": {"passed": …, "overall_status": "AVAILABLE|LIMITED|BLOCKED", "details": <Meta's health_status>},
//!    "webhook_subscription": {"passed": …, "details": {"app_id": 634974688087057, "subscribed": …, "subscribed_fields": null}},
//!    "webhook_verified": {"passed": …, "details": {"verified_at": "…", "message": "…"}}},
//!  "timestamp": "YYYY-MM-DDTHH:MM:SSZ"}
//! ```
//!
//! `status` is the config's as set ([`Simulator::set_kapso_status`] and the scenario);
//! the checks follow the state: `messaging_health` passes unless the number's overall
//! `can_send_message` is `BLOCKED`, `webhook_subscription` while subscribed,
//! `webhook_verified` while verified (else `verified_at` `null`); `phone_number_access`
//! always passes. An `error` message, when set, is added as `error`. In the `error` state
//! the body is `{"status":"error","error":"…","checks":{},"timestamp":…}`.
//!
//! Errors are `{"error":"…"}`. Order of checks: the request is counted
//! ([`Simulator::kapso_requests`]), then the method (405), then the key (401
//! `Invalid API key`), then the config (404 `WhatsApp config not found`), then the config's
//! fault ([`Simulator::set_kapso_fault`]). Other paths answer 404 and are not counted.
//!
//! # Faults
//!
//! | fault | 360dialog | Kapso |
//! |---|---|---|
//! | `MissingField` | `health_status` left out | `status` left out |
//! | `NullField` | `health_status` `null` | `status` `null` |
//! | `UnknownValue` | `can_send_message` (overall and entities) `DEGRADED` | `status` `flaky`, messaging health `DEGRADED` |
//! | `ErrorEnvelope` | its envelope: `httpCode` the status, `developerMessage` the title | that status, `{"error": title}` |
//! | `TooManyRequests` | 429 `Too many requests` | 429 `Rate limit exceeded` |
//! | `ServiceUnavailable` | 503 `Service unavailable` | 503 `Service temporarily unavailable` |
//!
//! The others work as on the On-Premises API.
//!
//! [`SimulatorHandle::dialog360_base_url`]: super::SimulatorHandle::dialog360_base_url
//! [`SimulatorHandle::kapso_base_url`]: super::SimulatorHandle::kapso_base_url
//! [`SimulatorOptions::dialog360_api_keys`]: super::SimulatorOptions::dialog360_api_keys
//! [`SimulatorOptions::dialog360_min_interval`]: super::SimulatorOptions::dialog360_min_interval
//! [`SimulatorOptions::kapso_config_ids`]: super::SimulatorOptions::kapso_config_ids
//! [`Simulator::dialog360_requests`]: super::Simulator::dialog360_requests
//! [`Simulator::set_dialog360_fault`]: super::Simulator::set_dialog360_fault
//! [`Simulator::kapso_requests`]: super::Simulator::kapso_requests
//! [`Simulator::set_kapso_status`]: super::Simulator::set_kapso_status
//! [`Simulator::set_kapso_fault`]: super::Simulator::set_kapso_fault

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::cloud_api::{damage, degrade_health, percent_decode};
use super::meta::{self, CloudState, BLOCKED};
use super::onprem::Shape;
use super::{answer_with_fault, json_response, shape_of, Action, FaultReply, SimBody, Simulator};

/// The default 360dialog channel keys, one per number of [`meta::PHONE_NUMBER_IDS`].
pub const DIALOG360_API_KEYS: [&str; 3] =
    ["sim-360-key-0001", "sim-360-key-0002", "sim-360-key-0003"];
/// The header carrying a 360dialog key.
pub const DIALOG360_KEY_HEADER: &str = "D360-API-KEY";
/// The default Kapso project API key.
pub const KAPSO_API_KEY: &str = "sim-kapso-key-0123456789";
/// The default Kapso WhatsApp config ids, one per number of [`meta::PHONE_NUMBER_IDS`].
pub const KAPSO_CONFIG_IDS: [&str; 3] = ["kapso-config-1", "kapso-config-2", "kapso-config-3"];
/// The header carrying the Kapso key.
pub const KAPSO_KEY_HEADER: &str = "X-API-Key";
/// `webhook_verified.details.message` of a verified webhook.
pub const KAPSO_WEBHOOK_VERIFIED_MESSAGE: &str =
    "Webhook successfully verified at 2024-01-15 10:30:00 UTC";

pub(super) fn dialog360_error(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(
        status,
        &json!({"meta": {"httpCode": status.as_u16(), "developerMessage": message, "success": false}}),
    )
}

pub(super) fn kapso_error(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(status, &json!({ "error": message }))
}

pub(super) fn method_not_allowed(mut resp: Response<SimBody>) -> Action {
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    Action::Respond(resp)
}

/// A header's value, when it is text.
pub(super) fn header_text<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name)?.to_str().ok().map(str::trim)
}

/// The index of `wanted` among the first `n` non-empty entries of `list`.
fn position(list: &[String], n: usize, wanted: &str) -> Option<usize> {
    list.iter()
        .take(n)
        .position(|k| !k.is_empty() && k == wanted)
}

/// "1", "0.5", "2.25": the interval as the rate-limit message prints it.
fn seconds(d: std::time::Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `{"health_status":…,"id":…}` of the number at `index`.
pub(super) fn dialog360_body(cloud: &CloudState, index: usize) -> Value {
    let id = cloud
        .numbers
        .get(index)
        .map(|n| n.id.as_str())
        .unwrap_or("");
    json!({"health_status": cloud.number_health(index), "id": id})
}

/// The Kapso health body of the config tied to the number at `index`.
pub(super) fn kapso_body(cloud: &CloudState, index: usize, now: DateTime<Utc>) -> Value {
    let timestamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (Some(k), Some(n)) = (cloud.kapso.get(index), cloud.numbers.get(index)) else {
        return json!({"status": "error", "error": "Unknown config", "checks": {}, "timestamp": timestamp});
    };
    if k.status == "error" {
        return json!({
            "status": "error",
            "error": k.error.as_deref().unwrap_or(meta::KAPSO_DEFAULT_ERROR),
            "checks": {},
            "timestamp": timestamp,
        });
    }
    let health = cloud.number_health(index);
    let overall = health["can_send_message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let app_id: u64 = meta::APP_ID.parse().unwrap_or(0);
    let verified = if k.webhook_verified {
        json!({"passed": true, "details": {
            "verified_at": meta::KAPSO_WEBHOOK_VERIFIED_AT,
            "message": KAPSO_WEBHOOK_VERIFIED_MESSAGE,
        }})
    } else {
        json!({"passed": false, "details": {
            "verified_at": null,
            "message": "Webhook has not been verified",
        }})
    };
    let mut body = json!({
        "status": k.status,
        "checks": {
            "phone_number_access": {"passed": true, "details": {
                "verified_name": n.verified_name,
                "display_phone_number": n.display_phone_number,
                "quality_rating": n.quality_rating,
                "id": n.id,
            }},
            "messaging_health": {
                "passed": overall != BLOCKED,
                "overall_status": overall,
                "details": health,
            },
            "webhook_subscription": {"passed": k.webhook_subscribed, "details": {
                "app_id": app_id,
                "subscribed": k.webhook_subscribed,
                "subscribed_fields": null,
            }},
            "webhook_verified": verified,
        },
        "timestamp": timestamp,
    });
    if let (Some(e), Some(m)) = (&k.error, body.as_object_mut()) {
        m.insert("error".into(), json!(e));
    }
    body
}

fn damage_kapso(body: &mut Value, shape: Shape) {
    let Some(m) = body.as_object_mut() else {
        return;
    };
    match shape {
        Shape::Normal => {}
        Shape::MissingField => {
            m.remove("status");
        }
        Shape::NullField => {
            m.insert("status".into(), Value::Null);
        }
        Shape::UnknownValue => {
            m.insert("status".into(), json!("flaky"));
            if let Some(mh) = m
                .get_mut("checks")
                .and_then(|c| c.get_mut("messaging_health"))
                .and_then(Value::as_object_mut)
            {
                mh.insert("overall_status".into(), json!("DEGRADED"));
                if let Some(details) = mh.get_mut("details") {
                    degrade_health(details);
                }
            }
        }
    }
}

impl Simulator {
    /// The channel a 360dialog key opens.
    pub(super) fn dialog360_channel(&self, key: &str) -> Option<usize> {
        position(
            &self.inner.opts.dialog360_api_keys,
            meta::PHONE_NUMBER_IDS.len(),
            key,
        )
    }

    /// The number a Kapso config is tied to.
    pub(super) fn kapso_config(&self, config_id: &str) -> Option<usize> {
        position(
            &self.inner.opts.kapso_config_ids,
            meta::PHONE_NUMBER_IDS.len(),
            config_id,
        )
    }

    /// Answers a request under `/360dialog`; `rest` is the path after it.
    pub(super) fn prepare_dialog360(&self, req: &Request<Incoming>, rest: &str) -> Action {
        if rest.trim_end_matches('/') != "/health_status" {
            return Action::Respond(dialog360_error(StatusCode::NOT_FOUND, "Not found"));
        }
        self.inner
            .dialog360_requests
            .fetch_add(1, Ordering::Relaxed);
        if req.method() != Method::GET {
            return method_not_allowed(dialog360_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ));
        }
        let Some(channel) =
            header_text(req, DIALOG360_KEY_HEADER).and_then(|k| self.dialog360_channel(k))
        else {
            return Action::Respond(dialog360_error(StatusCode::UNAUTHORIZED, "Invalid api_key"));
        };
        let mut state = self.lock();
        if let Some(min) = self.inner.opts.dialog360_min_interval {
            let now = Instant::now();
            let last = state.dialog360_last.get(channel).copied().flatten();
            if last.is_some_and(|t| now.saturating_duration_since(t) < min) {
                return Action::Respond(dialog360_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "You have exceeded the limit of 1 request every {} seconds",
                        seconds(min)
                    ),
                ));
            }
            if let Some(slot) = state.dialog360_last.get_mut(channel) {
                *slot = Some(now);
            }
        }
        let fault = state.dialog360_faults.get(channel).cloned().flatten();
        let shape = shape_of(fault.as_ref());
        let cloud = &state.cloud;
        let action = answer_with_fault(
            fault.as_ref(),
            || {
                let mut body = dialog360_body(cloud, channel);
                damage(&mut body, shape);
                (StatusCode::OK, body)
            },
            |reply| match reply {
                FaultReply::Error { status, title, .. } => dialog360_error(status, title),
                FaultReply::TooManyRequests => {
                    dialog360_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
                }
                FaultReply::ServiceUnavailable => {
                    dialog360_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                }
            },
        );
        drop(state);
        action
    }

    /// Answers a request under `/kapso`; `rest` is the path after it.
    pub(super) fn prepare_kapso(&self, req: &Request<Incoming>, rest: &str) -> Action {
        let config_id = rest
            .strip_prefix("/api/v1/whatsapp_configs/")
            .and_then(|r| r.strip_suffix("/health"))
            .filter(|id| !id.is_empty() && !id.contains('/'));
        let Some(config_id) = config_id else {
            return Action::Respond(kapso_error(StatusCode::NOT_FOUND, "Not found"));
        };
        self.inner.kapso_requests.fetch_add(1, Ordering::Relaxed);
        if req.method() != Method::GET {
            return method_not_allowed(kapso_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ));
        }
        let key = &self.inner.opts.kapso_api_key;
        if !header_text(req, KAPSO_KEY_HEADER).is_some_and(|k| !k.is_empty() && k == key) {
            return Action::Respond(kapso_error(StatusCode::UNAUTHORIZED, "Invalid API key"));
        }
        let Some(index) = self.kapso_config(&percent_decode(config_id)) else {
            return Action::Respond(kapso_error(
                StatusCode::NOT_FOUND,
                "WhatsApp config not found",
            ));
        };
        let state = self.lock();
        let fault = state.kapso_faults.get(index).cloned().flatten();
        let shape = shape_of(fault.as_ref());
        let action = answer_with_fault(
            fault.as_ref(),
            || {
                let mut body = kapso_body(&state.cloud, index, Utc::now());
                damage_kapso(&mut body, shape);
                (StatusCode::OK, body)
            },
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
        );
        drop(state);
        action
    }
}
