//! The simulated 360dialog API: a Business Solution Provider relaying Meta's health of
//! one number per channel, from the state of [`super::meta`].
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
//! # Faults
//!
//! | fault | answer |
//! |---|---|
//! | `MissingField` | `health_status` left out |
//! | `NullField` | `health_status` `null` |
//! | `UnknownValue` | `can_send_message` (overall and entities) `DEGRADED` |
//! | `ErrorEnvelope` | its envelope: `httpCode` the status, `developerMessage` the title |
//! | `TooManyRequests` | 429 `Too many requests` |
//! | `ServiceUnavailable` | 503 `Service unavailable` |
//!
//! The others work as on the On-Premises API.
//!
//! [`SimulatorHandle::dialog360_base_url`]: super::SimulatorHandle::dialog360_base_url
//! [`SimulatorOptions::dialog360_api_keys`]: super::SimulatorOptions::dialog360_api_keys
//! [`SimulatorOptions::dialog360_min_interval`]: super::SimulatorOptions::dialog360_min_interval
//! [`Simulator::dialog360_requests`]: super::Simulator::dialog360_requests
//! [`Simulator::set_dialog360_fault`]: super::Simulator::set_dialog360_fault

use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::cloud_api::damage;
use super::meta::{self, MetaState};
use super::{
    answer_with_fault, header_text, json_response, method_not_allowed, position, shape_of, Action,
    FaultReply, SimBody, Simulator,
};

/// The default 360dialog channel keys, one per number of [`meta::PHONE_NUMBER_IDS`].
pub const DIALOG360_API_KEYS: [&str; 3] =
    ["sim-360-key-0001", "sim-360-key-0002", "sim-360-key-0003"];
/// The header carrying a 360dialog key.
pub const DIALOG360_KEY_HEADER: &str = "D360-API-KEY";

pub(super) fn dialog360_error(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(
        status,
        &json!({"meta": {"httpCode": status.as_u16(), "developerMessage": message, "success": false}}),
    )
}

/// "1", "0.5", "2.25": the interval as the rate-limit message prints it.
fn seconds(d: std::time::Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// `{"health_status":…,"id":…}` of the number at `index`.
pub(super) fn dialog360_body(cloud: &MetaState, index: usize) -> Value {
    let id = cloud
        .numbers
        .get(index)
        .map(|n| n.id.as_str())
        .unwrap_or("");
    json!({"health_status": cloud.number_health(index), "id": id})
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
}
