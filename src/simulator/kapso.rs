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
//! # The Platform API
//!
//! Base URL `http://ADDR/kapso/platform/v1` ([`SimulatorHandle::kapso_platform_base_url`]),
//! standing for `https://api.kapso.ai/platform/v1`, with the same key, serves the same
//! numbers:
//!
//! - `GET /kapso/platform/v1/whatsapp/phone_numbers?page=&per_page=` lists the numbers of
//!   [`meta::PHONE_NUMBER_IDS`] as Kapso does (`id` = `phone_number_id`, `internal_id`,
//!   `display_phone_number`, `verified_name`, `quality_rating`, `throughput_tier`, `status`,
//!   `name_status`, ...), `{"data":[…],"meta":{"page","per_page","total_pages","total_count"}}`.
//!   `per_page` defaults to 20 and is capped at 100 and at
//!   [`SimulatorOptions::kapso_page_size`] (default [`KAPSO_PAGE_SIZE`], 2: three numbers
//!   span two pages). With [`Simulator::set_kapso_item_without_id`], one more item without
//!   `id` and `phone_number_id` (a number still being connected) comes last.
//! - `GET /kapso/platform/v1/whatsapp/phone_numbers/{phone_number_id}/health` answers the
//!   health of the n-th number's config, as the legacy route does, with `status` and
//!   `throughput_tier` in `phone_number_access.details` and `app_id` a string. The n-th
//!   Kapso fault ([`Simulator::set_kapso_fault`] with the n-th config id) applies to it too.
//!   An unknown number answers 404 `Phone number not found`.
//!
//! Order of checks: the request is counted ([`Simulator::kapso_platform_requests`]), then
//! the method (405), then the key (401 `Invalid API key`), then the fault of
//! [`Simulator::set_kapso_platform_fault`] (every Platform request: Meta's envelope relayed,
//! as Kapso passes Graph failures through, or a [`super::Fault`] in Kapso's words), then the
//! route. Other paths under `/kapso/platform/v1` answer 404 and are not counted.
//!
//! [`SimulatorHandle::kapso_base_url`]: super::SimulatorHandle::kapso_base_url
//! [`SimulatorHandle::kapso_platform_base_url`]: super::SimulatorHandle::kapso_platform_base_url
//! [`SimulatorOptions::kapso_page_size`]: super::SimulatorOptions::kapso_page_size
//! [`Simulator::set_kapso_item_without_id`]: super::Simulator::set_kapso_item_without_id
//! [`Simulator::set_kapso_platform_fault`]: super::Simulator::set_kapso_platform_fault
//! [`Simulator::kapso_platform_requests`]: super::Simulator::kapso_platform_requests
//! [`SimulatorOptions::kapso_config_ids`]: super::SimulatorOptions::kapso_config_ids
//! [`Simulator::kapso_requests`]: super::Simulator::kapso_requests
//! [`Simulator::set_kapso_status`]: super::Simulator::set_kapso_status
//! [`Simulator::set_kapso_fault`]: super::Simulator::set_kapso_fault

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::cloud_api::{degrade_health, percent_decode, GraphErr, Query};
use super::meta::{self, MetaState, BLOCKED};
use super::onprem::Shape;
use super::{
    answer_with_fault, header_text, json_response, method_not_allowed, position, shape_of,
    status_or_500, Action, CloudApiFault, Fault, FaultReply, SimBody, Simulator,
};

/// The default Kapso project API key.
pub const KAPSO_API_KEY: &str = "sim-kapso-key-0123456789";
/// The default Kapso WhatsApp config ids, one per number of [`meta::PHONE_NUMBER_IDS`].
pub const KAPSO_CONFIG_IDS: [&str; 3] = ["kapso-config-1", "kapso-config-2", "kapso-config-3"];
/// The header carrying the Kapso key.
pub const KAPSO_KEY_HEADER: &str = "X-API-Key";
/// The largest page of the Platform API's listing, unless
/// [`super::SimulatorOptions::kapso_page_size`] says otherwise: small, so that the numbers
/// span several pages.
pub const KAPSO_PAGE_SIZE: usize = 2;
/// `internal_id` of the listing item without an id.
pub const KAPSO_PENDING_INTERNAL_ID: &str = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// `webhook_verified.details.message` of a verified webhook.
pub const KAPSO_WEBHOOK_VERIFIED_MESSAGE: &str =
    "Webhook successfully verified at 2024-01-15 10:30:00 UTC";

pub(super) fn kapso_error(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(status, &json!({ "error": message }))
}

/// The Kapso health body of the config tied to the number at `index`.
pub(super) fn kapso_body(cloud: &MetaState, index: usize, now: DateTime<Utc>) -> Value {
    health_body(cloud, index, now, false)
}

/// The health body of the number at `index` on the Platform API: the legacy body with the
/// number's status and tier in `phone_number_access.details`, and `app_id` a string.
fn platform_body(cloud: &MetaState, index: usize, now: DateTime<Utc>) -> Value {
    health_body(cloud, index, now, true)
}

fn health_body(cloud: &MetaState, index: usize, now: DateTime<Utc>, platform: bool) -> Value {
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
    let app_id = if platform {
        json!(meta::APP_ID)
    } else {
        json!(meta::APP_ID.parse::<u64>().unwrap_or(0))
    };
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
    if platform {
        if let Some(d) = body
            .pointer_mut("/checks/phone_number_access/details")
            .and_then(Value::as_object_mut)
        {
            d.insert("status".into(), json!(n.status));
            d.insert("throughput_tier".into(), json!(n.tier));
        }
    }
    body
}

/// The listing item of the number at `index`, as Kapso's example has it.
fn listed_number(cloud: &MetaState, index: usize) -> Value {
    let Some(n) = cloud.numbers.get(index) else {
        return Value::Null;
    };
    let verified_at = cloud
        .kapso
        .get(index)
        .filter(|k| k.webhook_verified)
        .map(|_| meta::KAPSO_WEBHOOK_VERIFIED_AT);
    json!({
        "id": n.id,
        "internal_id": format!("4a5b6c7d-8e9f-0a1b-2c3d-4e5f6a7b8c{index:02}"),
        "phone_number_id": n.id,
        "name": n.verified_name,
        "business_account_id": meta::WABA_ID,
        "is_coexistence": false,
        "webhook_verified_at": verified_at,
        "display_name": n.verified_name,
        "display_phone_number": n.display_phone_number,
        "display_phone_number_normalized": n.display_phone_number.chars().filter(char::is_ascii_digit).collect::<String>(),
        "verified_name": n.verified_name,
        "quality_rating": n.quality_rating,
        "throughput_tier": n.tier,
        "code_verification_status": n.code_verification_status,
        "name_status": n.name_status,
        "status": n.status,
        "is_official_business_account": false,
    })
}

/// A number still being connected: no `id` and no `phone_number_id` yet.
fn pending_number() -> Value {
    json!({
        "internal_id": KAPSO_PENDING_INTERNAL_ID,
        "name": "Pending number",
        "status": "PENDING",
    })
}

/// The page of the listing that `query` asks for.
fn listing_page(items: &[Value], query: &Query, cap: usize) -> Value {
    let number = |key: &str| query.get(key).and_then(|v| v.trim().parse::<usize>().ok());
    let per_page = number("per_page")
        .unwrap_or(20)
        .clamp(1, 100)
        .min(cap.max(1));
    let page = number("page").unwrap_or(1).max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let data: Vec<Value> = items
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .cloned()
        .collect();
    json!({
        "data": data,
        "meta": {
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_count": items.len(),
        },
    })
}

/// How a fault's error answers read in Kapso's words.
fn kapso_reply(reply: FaultReply<'_>) -> Response<SimBody> {
    match reply {
        FaultReply::Error { status, title, .. } => kapso_error(status, title),
        FaultReply::TooManyRequests => {
            kapso_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        }
        FaultReply::ServiceUnavailable => kapso_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable",
        ),
    }
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
        if let Some(rest) = rest.strip_prefix("/platform/v1/") {
            return self.prepare_kapso_platform(req, rest);
        }
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
            kapso_reply,
        );
        drop(state);
        action
    }

    /// Answers a request under `/kapso/platform/v1/`; `rest` is the path after it.
    fn prepare_kapso_platform(&self, req: &Request<Incoming>, rest: &str) -> Action {
        // Some(None): the listing; Some(Some(id)): a number's health.
        let route = match rest.strip_prefix("whatsapp/phone_numbers") {
            Some("" | "/") => Some(None),
            Some(r) => r
                .strip_prefix('/')
                .and_then(|r| r.strip_suffix("/health"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .map(Some),
            None => None,
        };
        let Some(route) = route else {
            return Action::Respond(kapso_error(StatusCode::NOT_FOUND, "Not found"));
        };
        self.inner
            .kapso_platform_requests
            .fetch_add(1, Ordering::Relaxed);
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
        let state = self.lock();
        let platform_fault = match state.kapso_platform_fault.clone() {
            Some(CloudApiFault::GraphError {
                status,
                code,
                message,
            }) => {
                return Action::Respond(
                    GraphErr::injected(status_or_500(status), code, &message).response(),
                )
            }
            Some(CloudApiFault::Fault(f)) => Some(f),
            None => None,
        };
        let Some(number) = route else {
            let shape = shape_of(platform_fault.as_ref());
            let cap = self.inner.opts.kapso_page_size;
            let query = Query::parse(req.uri().query());
            return answer_with_fault(
                platform_fault.as_ref(),
                || {
                    let mut items: Vec<Value> = (0..state.cloud.numbers.len())
                        .map(|i| listed_number(&state.cloud, i))
                        .collect();
                    if state.kapso_item_without_id {
                        items.push(pending_number());
                    }
                    let mut body = listing_page(&items, &query, cap);
                    damage_listing(&mut body, shape);
                    (StatusCode::OK, body)
                },
                kapso_reply,
            );
        };
        let number = percent_decode(number);
        let Some(index) = state.cloud.numbers.iter().position(|n| n.id == number) else {
            return Action::Respond(kapso_error(StatusCode::NOT_FOUND, "Phone number not found"));
        };
        let fault: Option<Fault> =
            platform_fault.or_else(|| state.kapso_faults.get(index).cloned().flatten());
        let shape = shape_of(fault.as_ref());
        answer_with_fault(
            fault.as_ref(),
            || {
                let mut body = platform_body(&state.cloud, index, Utc::now());
                damage_kapso(&mut body, shape);
                (StatusCode::OK, body)
            },
            kapso_reply,
        )
    }
}

/// The listing's field faults: `data` left out or `null`, its first number without ids
/// (`OddItem`); unknown values leave it as is.
fn damage_listing(body: &mut Value, shape: Shape) {
    let Some(m) = body.as_object_mut() else {
        return;
    };
    match shape {
        Shape::MissingField => {
            m.remove("data");
        }
        Shape::NullField => {
            m.insert("data".into(), Value::Null);
        }
        // The first number without its ids: it alone is skipped.
        Shape::OddItem => {
            if let Some(first) = m
                .get_mut("data")
                .and_then(|d| d.get_mut(0))
                .and_then(Value::as_object_mut)
            {
                first.remove("id");
                first.remove("phone_number_id");
            }
        }
        Shape::Normal | Shape::UnknownValue => {}
    }
}
