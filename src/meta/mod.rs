//! Meta's health model, shared by every provider that speaks it: the Cloud API reads it
//! from Graph, 360dialog returns it unchanged, Kapso relays it inside its checks, and
//! Meta's webhooks carry the same values. [`payload`] reads it; this module turns it into
//! the series of the metrics contract.

pub mod payload;

use std::collections::BTreeMap;

use crate::exposition::{Family, Samples};
use crate::upstream::{self, PollError, Reason};
use payload::{Entity, HealthStatus, PhoneNumber, Template};

/// Documented values, pre-declared in each state set (whatsapp-apis.md lists where Meta's
/// own documents disagree; anything else passes through as its own series).
pub const CAN_SEND: &[&str] = &["AVAILABLE", "LIMITED", "BLOCKED"];
pub const QUALITY_RATINGS: &[&str] = &["GREEN", "YELLOW", "RED", "UNKNOWN", "NA"];
pub const TEMPLATE_QUALITY: &[&str] = &["GREEN", "YELLOW", "RED", "UNKNOWN"];
pub const MESSAGING_TIERS: &[&str] = &[
    "TIER_50",
    "TIER_250",
    "TIER_1K",
    "TIER_2K",
    "TIER_10K",
    "TIER_100K",
    "TIER_UNLIMITED",
    "TIER_NOT_SET",
];
pub const PHONE_STATUSES: &[&str] = &[
    "CONNECTED",
    "DISCONNECTED",
    "PENDING",
    "UNVERIFIED",
    "FLAGGED",
    "RESTRICTED",
    "BANNED",
    "RATE_LIMITED",
    "MIGRATED",
    "DELETED",
];
pub const NAME_STATUSES: &[&str] = &[
    "APPROVED",
    "AVAILABLE_WITHOUT_REVIEW",
    "DECLINED",
    "EXPIRED",
    "PENDING_REVIEW",
    "NONE",
];
pub const THROUGHPUT_LEVELS: &[&str] = &["STANDARD", "HIGH", "NOT_APPLICABLE"];
pub const TEMPLATE_STATUSES: &[&str] = &[
    "APPROVED",
    "IN_APPEAL",
    "PENDING",
    "REJECTED",
    "PENDING_DELETION",
    "DELETED",
    "DISABLED",
    "PAUSED",
    "LIMIT_EXCEEDED",
];

/// Upstream text that becomes a label value (error descriptions, additional_info) is cut
/// here, so one long string cannot bloat every scrape.
pub const MAX_LABEL_CHARS: usize = 256;

fn label(text: &str) -> String {
    upstream::truncate(text, MAX_LABEL_CHARS)
}

/// Business-initiated conversations per 24 hours of a messaging limit tier.
pub fn tier_limit(tier: &str) -> Option<f64> {
    Some(match tier {
        "TIER_50" => 50.0,
        "TIER_250" => 250.0,
        "TIER_1K" => 1_000.0,
        "TIER_2K" => 2_000.0,
        "TIER_10K" => 10_000.0,
        "TIER_100K" => 100_000.0,
        "TIER_UNLIMITED" => f64::INFINITY,
        _ => return None,
    })
}

/// The reason of a Meta error code, wherever the envelope comes from (Graph itself, or a
/// provider that relays it: 360dialog, Kapso): 190 (token expired or invalid), 10 and
/// 200-299 (permissions) unauthorized; 4, 17, 32, 613, 80007, 80008 and 130429 rate limits;
/// 2 (temporarily unavailable) unavailable; anything else an HTTP status error.
pub fn error_reason(code: Option<i64>) -> Reason {
    match code {
        Some(190 | 10 | 200..=299) => Reason::Unauthorized,
        Some(4 | 17 | 32 | 613 | 80007 | 80008 | 130429) => Reason::RateLimited,
        Some(2) => Reason::Unavailable,
        _ => Reason::HttpStatus,
    }
}

/// Meta's error envelope `{"error":{...}}` answered with `status`, as a failed poll
/// classified by its code, the message kept (cut) for the log line. A rate limit waits for
/// the longer of Retry-After and `regain` (Graph's estimated time to regain access).
pub fn envelope_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    error: &payload::GraphError,
    regain: Option<std::time::Duration>,
) -> PollError {
    let reason = error_reason(error.code);
    let mut message = format!("HTTP {}: Graph error", status.as_u16());
    if let Some(code) = error.code {
        message.push_str(&format!(" {code}"));
    }
    if let Some(subcode) = error.error_subcode {
        message.push_str(&format!(" (subcode {subcode})"));
    }
    if let Some(text) = &error.message {
        message.push_str(": ");
        message.push_str(&crate::json::clip(text));
    }
    let retry_after = if matches!(reason, Reason::RateLimited | Reason::Unavailable) {
        let header = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| upstream::parse_retry_after(v, std::time::SystemTime::now()));
        regain.max(header)
    } else {
        None
    };
    PollError {
        reason,
        message,
        retry_after,
    }
}

/// How bad a can_send_message value is, for merging: BLOCKED over LIMITED over AVAILABLE;
/// a value nobody documented ranks between AVAILABLE and LIMITED.
fn severity(status: &str) -> u8 {
    match status {
        "BLOCKED" => 3,
        "LIMITED" => 2,
        "AVAILABLE" => 0,
        _ => 1,
    }
}

fn worse(a: Option<&str>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if severity(b) > severity(a) { b } else { a }.to_owned()),
        (a, b) => a.or(b).map(str::to_owned),
    }
}

/// Entities of several health_status answers (a WABA's and each of its numbers') name the
/// same WABA, business and app: each entity is exported once, with its worst status.
fn merge_entities<'a>(statuses: &[&'a HealthStatus]) -> Vec<Entity> {
    let mut merged: BTreeMap<(&'a str, &'a str), Entity> = BTreeMap::new();
    for status in statuses {
        for entity in &status.entities {
            let key = (entity.entity_type.as_str(), entity.id.as_str());
            match merged.get_mut(&key) {
                None => {
                    merged.insert(key, entity.clone());
                }
                Some(seen) => {
                    let before = seen.can_send_message.clone();
                    seen.can_send_message = worse(
                        seen.can_send_message.as_deref(),
                        entity.can_send_message.as_deref(),
                    );
                    seen.can_receive_call_sip = worse(
                        seen.can_receive_call_sip.as_deref(),
                        entity.can_receive_call_sip.as_deref(),
                    );
                    if seen.can_send_message != before {
                        seen.additional_info.clone_from(&entity.additional_info);
                        seen.errors.clone_from(&entity.errors);
                    }
                }
            }
        }
    }
    merged.into_values().collect()
}

/// The messaging health of one or more health_status answers: the overall status (the
/// worst of them), each entity's can_send_message and can_receive_call_sip, the errors of
/// BLOCKED entities and the additional_info of LIMITED ones.
pub fn messaging_samples(out: &mut Samples, statuses: &[&HealthStatus]) {
    let overall = statuses
        .iter()
        .map(|s| s.can_send_message.as_str())
        .max_by_key(|s| severity(s));
    if let Some(overall) = overall {
        out.state_set(
            Family::MessagingHealthStatus,
            &[],
            "status",
            CAN_SEND,
            overall,
        );
    }
    for entity in merge_entities(statuses) {
        let labels = [
            ("entity_type", entity.entity_type.as_str()),
            ("entity_id", entity.id.as_str()),
        ];
        if let Some(status) = &entity.can_send_message {
            out.state_set(Family::CanSendMessage, &labels, "status", CAN_SEND, status);
        }
        if let Some(status) = &entity.can_receive_call_sip {
            out.state_set(
                Family::CanReceiveCallSip,
                &labels,
                "status",
                CAN_SEND,
                status,
            );
        }
        for error in &entity.errors {
            let code = error.error_code.map(|c| c.to_string()).unwrap_or_default();
            let description = label(error.error_description.as_deref().unwrap_or(""));
            let solution = label(error.possible_solution.as_deref().unwrap_or(""));
            out.push(
                Family::EntityErrorInfo,
                &[
                    labels[0],
                    labels[1],
                    ("error_code", &code),
                    ("error_description", &description),
                    ("possible_solution", &solution),
                ],
                1.0,
            );
        }
        let mut lines: Vec<String> = entity.additional_info.iter().map(|l| label(l)).collect();
        // Two lines cut to the same label value would be one series twice.
        lines.sort();
        lines.dedup();
        for info in &lines {
            out.push(
                Family::EntityLimitationInfo,
                &[labels[0], labels[1], ("info", info)],
                1.0,
            );
        }
    }
}

/// A phone number's fields: quality, messaging limit, status, name status, throughput and
/// its info series.
pub fn phone_samples(out: &mut Samples, phone: &PhoneNumber) {
    let id = [("phone_number_id", phone.id.as_str())];
    if let Some(rating) = &phone.quality_rating {
        out.state_set(
            Family::PhoneQualityRating,
            &id,
            "rating",
            QUALITY_RATINGS,
            rating,
        );
    }
    if phone.display_phone_number.is_some() || phone.verified_name.is_some() {
        out.push(
            Family::PhoneNumberInfo,
            &[
                id[0],
                (
                    "display_phone_number",
                    phone.display_phone_number.as_deref().unwrap_or(""),
                ),
                (
                    "verified_name",
                    &label(phone.verified_name.as_deref().unwrap_or("")),
                ),
            ],
            1.0,
        );
    }
    if let Some(tier) = &phone.messaging_limit_tier {
        out.state_set(
            Family::PhoneMessagingLimitTier,
            &id,
            "tier",
            MESSAGING_TIERS,
            tier,
        );
        if let Some(limit) = tier_limit(tier) {
            out.push(Family::PhoneMessagingLimit, &id, limit);
        }
    }
    if let Some(status) = &phone.status {
        out.state_set(
            Family::PhoneNumberStatus,
            &id,
            "status",
            PHONE_STATUSES,
            status,
        );
    }
    if let Some(status) = &phone.name_status {
        out.state_set(
            Family::PhoneNameStatus,
            &id,
            "status",
            NAME_STATUSES,
            status,
        );
    }
    if let Some(level) = &phone.throughput_level {
        out.state_set(
            Family::PhoneThroughputLevel,
            &id,
            "level",
            THROUGHPUT_LEVELS,
            level,
        );
    }
}

/// Status and quality of each message template.
pub fn template_samples(out: &mut Samples, templates: &[Template]) {
    for template in templates {
        let labels = [
            ("template_id", template.id.as_str()),
            ("template_name", template.name.as_str()),
            ("language", template.language.as_str()),
        ];
        out.state_set(
            Family::TemplateStatus,
            &labels,
            "status",
            TEMPLATE_STATUSES,
            &template.status,
        );
        if let Some(quality) = &template.quality {
            out.state_set(
                Family::TemplateQuality,
                &labels,
                "rating",
                TEMPLATE_QUALITY,
                quality,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payload::EntityError;

    fn entity(kind: &str, id: &str, status: &str) -> Entity {
        Entity {
            entity_type: kind.into(),
            id: id.into(),
            can_send_message: Some(status.into()),
            can_receive_call_sip: None,
            additional_info: Vec::new(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn entities_of_several_answers_are_merged_worst_first() {
        let mut blocked = entity("WABA", "1", "BLOCKED");
        blocked.errors.push(EntityError {
            error_code: Some(141006),
            error_description: Some("Payment method error".into()),
            possible_solution: Some("Fix \"billing\"".into()),
        });
        let a = HealthStatus {
            can_send_message: "AVAILABLE".into(),
            entities: vec![
                entity("PHONE_NUMBER", "10", "AVAILABLE"),
                entity("WABA", "1", "AVAILABLE"),
            ],
        };
        let b = HealthStatus {
            can_send_message: "BLOCKED".into(),
            entities: vec![entity("PHONE_NUMBER", "11", "AVAILABLE"), blocked],
        };
        let mut out = Samples::new("t");
        messaging_samples(&mut out, &[&a, &b]);
        assert_eq!(
            out.lines(Family::MessagingHealthStatus),
            "whatsapp_messaging_health_status{target=\"t\",status=\"AVAILABLE\"} 0\n\
             whatsapp_messaging_health_status{target=\"t\",status=\"LIMITED\"} 0\n\
             whatsapp_messaging_health_status{target=\"t\",status=\"BLOCKED\"} 1\n"
        );
        let can_send = out.lines(Family::CanSendMessage);
        assert_eq!(can_send.lines().count(), 9, "{can_send}");
        assert!(can_send.contains(
            "whatsapp_can_send_message{target=\"t\",entity_type=\"WABA\",entity_id=\"1\",status=\"BLOCKED\"} 1\n"
        ));
        assert_eq!(
            out.lines(Family::EntityErrorInfo),
            "whatsapp_entity_error_info{target=\"t\",entity_type=\"WABA\",entity_id=\"1\",error_code=\"141006\",error_description=\"Payment method error\",possible_solution=\"Fix \\\"billing\\\"\"} 1\n"
        );
    }

    #[test]
    fn limitation_lines_are_capped_and_deduplicated() {
        let mut limited = entity("PHONE_NUMBER", "10", "LIMITED");
        let long = "x".repeat(300);
        limited.additional_info = vec![long.clone(), format!("{long}y"), "short".into()];
        let status = HealthStatus {
            can_send_message: "LIMITED".into(),
            entities: vec![limited],
        };
        let mut out = Samples::new("t");
        messaging_samples(&mut out, &[&status]);
        let lines = out.lines(Family::EntityLimitationInfo);
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(lines.contains(&format!("info=\"{}…\"", "x".repeat(256))));
        assert!(lines.contains("info=\"short\""));
    }

    #[test]
    fn tiers_as_limits() {
        assert_eq!(tier_limit("TIER_2K"), Some(2000.0));
        assert_eq!(tier_limit("TIER_UNLIMITED"), Some(f64::INFINITY));
        assert_eq!(tier_limit("TIER_NOT_SET"), None);
        let phone = PhoneNumber {
            id: "10".into(),
            health_status: None,
            quality_rating: Some("YELLOW".into()),
            messaging_limit_tier: Some("TIER_UNLIMITED".into()),
            status: Some("FLAGGED".into()),
            name_status: None,
            throughput_level: Some("HIGH".into()),
            display_phone_number: Some("+1 555-0100".into()),
            verified_name: Some("Shop".into()),
        };
        let mut out = Samples::new("t");
        phone_samples(&mut out, &phone);
        assert_eq!(
            out.lines(Family::PhoneMessagingLimit),
            "whatsapp_phone_messaging_limit{target=\"t\",phone_number_id=\"10\"} +Inf\n"
        );
        assert!(out
            .lines(Family::PhoneNumberStatus)
            .contains("status=\"FLAGGED\"} 1\n"));
        assert_eq!(
            out.lines(Family::PhoneNumberInfo),
            "whatsapp_phone_number_info{target=\"t\",phone_number_id=\"10\",display_phone_number=\"+1 555-0100\",verified_name=\"Shop\"} 1\n"
        );
        assert_eq!(out.lines(Family::PhoneNameStatus), "");
    }
}
