//! The simulated Kapso API: a Business Solution Provider whose WhatsApp configs each
//! relay Meta's health of one number, from the state of [`super::meta`].
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
//! | fault | answer |
//! |---|---|
//! | `MissingField` | `status` left out |
//! | `NullField` | `status` `null` |
//! | `UnknownValue` | `status` `flaky`, messaging health `DEGRADED` |
//! | `ErrorEnvelope` | that status, `{"error": title}` |
//! | `TooManyRequests` | 429 `Rate limit exceeded` |
//! | `ServiceUnavailable` | 503 `Service temporarily unavailable` |
//!
//! The others work as on the On-Premises API.
//!
//! [`SimulatorHandle::kapso_base_url`]: super::SimulatorHandle::kapso_base_url
//! [`SimulatorOptions::kapso_config_ids`]: super::SimulatorOptions::kapso_config_ids
//! [`Simulator::kapso_requests`]: super::Simulator::kapso_requests
//! [`Simulator::set_kapso_status`]: super::Simulator::set_kapso_status
//! [`Simulator::set_kapso_fault`]: super::Simulator::set_kapso_fault

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::cloud_api::{degrade_health, percent_decode};
use super::meta::{self, MetaState, BLOCKED};
use super::onprem::Shape;
use super::{
    answer_with_fault, header_text, json_response, method_not_allowed, position, shape_of, Action,
    FaultReply, SimBody, Simulator,
};

/// The default Kapso project API key.
pub const KAPSO_API_KEY: &str = "sim-kapso-key-0123456789";
/// The default Kapso WhatsApp config ids, one per number of [`meta::PHONE_NUMBER_IDS`].
pub const KAPSO_CONFIG_IDS: [&str; 3] = ["kapso-config-1", "kapso-config-2", "kapso-config-3"];
/// The header carrying the Kapso key.
pub const KAPSO_KEY_HEADER: &str = "X-API-Key";
/// `webhook_verified.details.message` of a verified webhook.
pub const KAPSO_WEBHOOK_VERIFIED_MESSAGE: &str =
    "Webhook successfully verified at 2024-01-15 10:30:00 UTC";

pub(super) fn kapso_error(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(status, &json!({ "error": message }))
}

/// The Kapso health body of the config tied to the number at `index`.
pub(super) fn kapso_body(cloud: &MetaState, index: usize, now: DateTime<Utc>) -> Value {
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
        Shape::Normal | Shape::OddItem => {}
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
    /// The number a Kapso config is tied to.
    pub(super) fn kapso_config(&self, config_id: &str) -> Option<usize> {
        position(
            &self.inner.opts.kapso_config_ids,
            meta::PHONE_NUMBER_IDS.len(),
            config_id,
        )
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
