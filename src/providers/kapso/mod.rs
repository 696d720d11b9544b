//! The `kapso` provider, Kapso's legacy API: `GET /api/v1/whatsapp_configs/{config_id}/health`
//! with `X-API-Key`. Its checks are open-ended and exported by name;
//! `messaging_health.details` is Meta's health_status.
//!
//! What both Kapso APIs share lives here too, for [`super::kapso_platform`]: the health
//! body's reader ([`payload`]), the request with the key, the error classification and the
//! series of one health answer.

pub mod payload;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Url;
use serde_yaml::Mapping;

use super::{Provider, TargetClient, TargetSettings};
use crate::config_values::{config_keys, put, put_secret, required_secret, EnvString, Id};
use crate::exposition::{Family, Samples};
use crate::json;
use crate::secret::SecretSource;
use crate::upstream::{self, Fetched, PollError, Polled, Reason, Upstream};

pub const ENDPOINT: &str = "health";
pub const CONFIG_STATUSES: &[&str] = &["healthy", "degraded", "unhealthy", "error"];
/// The header of the project's API key, in both Kapso APIs.
pub const KEY_HEADER: &str = "X-API-Key";

/// A Kapso WhatsApp config: `GET /api/v1/whatsapp_configs/{config_id}/health`.
#[derive(Clone, Debug, PartialEq)]
pub struct KapsoTarget {
    pub api_key: SecretSource,
    pub config_id: String,
}

config_keys! {
    /// The keys of a `kapso` target.
    pub struct KapsoKeys {
        api_key: EnvString,
        api_key_file: EnvString,
        config_id: Id,
    }
}

impl Provider for KapsoTarget {
    const TYPE: &'static str = "kapso";
    const DEFAULT_BASE_URL: Option<&'static str> = Some("https://app.kapso.ai");
    type Keys = KapsoKeys;
    type Client = KapsoClient;

    fn from_keys(keys: KapsoKeys, _target: &TargetSettings) -> Result<Self, String> {
        let api_key = required_secret(Self::TYPE, "api_key", &keys.api_key, &keys.api_key_file)?;
        let config_id = match keys.config_id {
            Some(id) if !id.0.is_empty() => id.0,
            _ => return Err("config_id is required for type kapso".into()),
        };
        if !path_safe(&config_id) {
            return Err(format!(
                "config_id {config_id:?} may hold only letters, digits, '-' and '_'"
            ));
        }
        Ok(KapsoTarget { api_key, config_id })
    }

    fn secrets(&self) -> Vec<&SecretSource> {
        vec![&self.api_key]
    }

    fn redact(&self, out: &mut Mapping) {
        put_secret(out, "api_key", &self.api_key);
        put(out, "config_id", self.config_id.as_str());
    }

    fn client(&self, upstream: Upstream) -> KapsoClient {
        KapsoClient::new(upstream, self)
    }

    #[cfg(feature = "simulator")]
    fn demo_targets(
        simulator: &crate::simulator::SimulatorHandle,
        _interval: std::time::Duration,
    ) -> String {
        let options = simulator.simulator().options();
        format!(
            "- name: kapso-support\n  type: kapso\n  base_url: {kapso}\n  api_key: {kapso_key}\n  config_id: {kapso_config}\n  labels:\n    site: demo\n",
            kapso = simulator.kapso_base_url(),
            kapso_key = options.kapso_api_key,
            kapso_config = options.kapso_config_ids.first().map_or("", String::as_str),
        )
    }
}

#[derive(Debug)]
pub struct KapsoClient {
    http: reqwest::Client,
    url: Result<Url, String>,
    config: KapsoTarget,
    body_limit: u64,
}

impl TargetClient for KapsoClient {
    fn endpoints(&self) -> Vec<&'static str> {
        vec![ENDPOINT]
    }

    async fn poll(&mut self, _index: usize, target: &str) -> Result<Polled, PollError> {
        self.health(target).await
    }
}

impl KapsoClient {
    pub fn new(upstream: Upstream, config: &KapsoTarget) -> Self {
        let url = upstream::with_trailing_slash(&upstream.base_url)
            .join(&format!(
                "api/v1/whatsapp_configs/{}/health",
                config.config_id
            ))
            .map_err(|e| format!("building URL: {e}"));
        KapsoClient {
            http: upstream.http,
            url,
            config: config.clone(),
            body_limit: upstream.body_limit,
        }
    }

    async fn health(&mut self, target: &str) -> Result<Polled, PollError> {
        let url = self
            .url
            .clone()
            .map_err(|e| PollError::new(Reason::Connect, e))?;
        let fetched = get(&self.http, url, &self.config.api_key, self.body_limit).await?;
        let mut health = read_health(&fetched)?;
        let mut samples = Samples::new(target);
        health_samples(&mut samples, &health);
        Ok(Polled::Data {
            samples,
            upstream_error: health.error.as_deref().map(json::clip),
            problems: std::mem::take(&mut health.problems),
        })
    }
}

/// Whether an id can go into a URL path as it is: letters, digits, `-` and `_`.
pub(crate) fn path_safe(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET url` with the project's key: the answer when it is a 2xx JSON one, else the failed
/// poll (see [`error`]). Both Kapso APIs take the same key the same way.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: Url,
    api_key: &SecretSource,
    body_limit: u64,
) -> Result<Fetched, PollError> {
    let key = api_key
        .read()
        .map_err(|e| PollError::new(Reason::Unauthorized, e.to_string()))?;
    let request = http
        .get(url)
        .header(KEY_HEADER, upstream::secret_header(key.expose())?);
    let fetched = upstream::fetch(request, body_limit).await?;
    if !fetched.status.is_success() {
        return Err(error(fetched.status, &fetched.headers, &fetched.body));
    }
    upstream::check_json_content_type(fetched.headers.get(CONTENT_TYPE))?;
    Ok(fetched)
}

/// A 2xx answer as a health body.
pub(crate) fn read_health(fetched: &Fetched) -> Result<payload::KapsoHealth, PollError> {
    payload::parse_health(&fetched.body).map_err(|e| unreadable(fetched, &e))
}

/// A Kapso error answer as a failed poll. Kapso passes Meta's own envelope
/// (`{"error":{...}}`) through when a Graph call behind it failed: that is classified by
/// Meta's code, first, whatever the HTTP status. Else Kapso's `{"error":"..."}` (or no
/// envelope at all) goes by the HTTP status, Retry-After kept for a 429.
pub fn error(status: reqwest::StatusCode, headers: &HeaderMap, body: &[u8]) -> PollError {
    if let Some(meta_error) = crate::meta::payload::parse_graph_error(body) {
        return crate::meta::envelope_error(status, headers, &meta_error, None);
    }
    let detail = payload::parse_error(body)
        .map(|e| json::clip(&e))
        .unwrap_or_default();
    upstream::status_error(status, headers, &detail)
}

/// A 2xx answer that is not what was asked for: Meta's envelope in its place is Meta's
/// error, classified by its code (Kapso relays Graph failures so, even with a 2xx); anything
/// else cannot be read, Kapso's own error text kept in the message.
pub(crate) fn unreadable(fetched: &Fetched, e: &payload::PayloadError) -> PollError {
    if let Some(meta_error) = crate::meta::payload::parse_graph_error(&fetched.body) {
        return crate::meta::envelope_error(fetched.status, &fetched.headers, &meta_error, None);
    }
    let mut message = e.to_string();
    if let Some(text) = payload::parse_error(&fetched.body) {
        message.push_str(&format!(" (Kapso's error instead: {})", json::clip(&text)));
    }
    PollError::new(Reason::Decode, message)
}

/// The series of a legacy config health: Kapso's own, its phone number's and its messaging
/// health.
pub fn health_samples(out: &mut Samples, health: &payload::KapsoHealth) {
    check_samples(out, health, None);
    if let Some(messaging) = &health.messaging {
        crate::meta::messaging_samples(out, &[messaging]);
    }
}

/// Kapso's own series of one health answer (status, checks, webhook) and the phone series
/// of its `phone_number_access` details. `number` is the phone number polled, when the
/// target covers several (`kapso_platform`): it labels Kapso's series as `phone_number_id`
/// and is the id of the phone series. The messaging health is left to the caller, which
/// merges the answers of every number into one set of entities.
pub fn check_samples(out: &mut Samples, health: &payload::KapsoHealth, number: Option<&str>) {
    let id: Vec<(&str, &str)> = number.map(|n| ("phone_number_id", n)).into_iter().collect();
    out.state_set(
        Family::ConfigHealthStatus,
        &id,
        "status",
        CONFIG_STATUSES,
        &health.status,
    );
    for check in &health.checks {
        if let Some(passed) = check.passed {
            let mut labels = id.clone();
            labels.push(("check", check.name.as_str()));
            out.push(
                Family::HealthCheckPassed,
                &labels,
                if passed { 1.0 } else { 0.0 },
            );
        }
    }
    if let Some(subscribed) = health.webhook_subscribed {
        out.push(
            Family::WebhookSubscribed,
            &id,
            if subscribed { 1.0 } else { 0.0 },
        );
    }
    if let Some(at) = health.webhook_verified_at {
        out.push(Family::WebhookVerified, &id, at);
    }
    let Some(phone) = &health.phone else {
        return;
    };
    // The number polled names the series, so they match Kapso's own of that number.
    if let Some(id) = number.or(phone.id.as_deref()) {
        let number = crate::meta::payload::PhoneNumber {
            id: id.to_owned(),
            health_status: None,
            quality_rating: phone.quality_rating.clone(),
            messaging_limit_tier: phone.throughput_tier.clone(),
            status: phone.status.clone(),
            name_status: None,
            throughput_level: None,
            display_phone_number: phone.display_phone_number.clone(),
            verified_name: phone.verified_name.clone(),
        };
        crate::meta::phone_samples(out, &number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use reqwest::StatusCode;
    use std::time::Duration;

    fn fetched(status: StatusCode, body: &[u8]) -> Fetched {
        Fetched {
            status,
            headers: HeaderMap::new(),
            body: bytes::Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn kapso_errors_go_by_status_and_meta_errors_by_code() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("60"));
        // Kapso's own envelope (docs.kapso.ai, "Error Responses").
        let err = error(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            br#"{"error":"Invalid or missing API key"}"#,
        );
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(err.message, "HTTP 401: Invalid or missing API key");
        let err = error(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            br#"{"error":"Rate limit exceeded","message":"Please retry after 60 seconds"}"#,
        );
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(
            err.message,
            "HTTP 429: Rate limit exceeded: Please retry after 60 seconds"
        );
        let err = error(
            StatusCode::GATEWAY_TIMEOUT,
            &HeaderMap::new(),
            br#"{"error":"Kapso proxy timeout"}"#,
        );
        assert_eq!(err.reason, Reason::HttpStatus);
        assert_eq!(err.message, "HTTP 504: Kapso proxy timeout");
        // Meta's envelope passed through: its code decides, not the status.
        let err = error(
            StatusCode::BAD_REQUEST,
            &headers,
            br#"{"error":{"message":"(#80007) Rate limit hit","type":"OAuthException","code":80007,"fbtrace_id":"A"}}"#,
        );
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(
            err.message,
            "HTTP 400: Graph error 80007: (#80007) Rate limit hit"
        );
        let err = error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            br#"{"error":{"message":"Invalid OAuth access token","code":190}}"#,
        );
        assert_eq!(err.reason, Reason::Unauthorized);
        // No envelope at all.
        let err = error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"<html>");
        assert_eq!(
            (err.reason, err.message.as_str()),
            (Reason::HttpStatus, "HTTP 502")
        );
    }

    #[test]
    fn a_2xx_answer_that_is_no_health() {
        let err = read_health(&fetched(
            StatusCode::OK,
            br#"{"error":{"message":"Application request limit reached","code":4}}"#,
        ))
        .unwrap_err();
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(
            err.message,
            "HTTP 200: Graph error 4: Application request limit reached"
        );
        let err =
            read_health(&fetched(StatusCode::OK, br#"{"error":"Config not ready"}"#)).unwrap_err();
        assert_eq!(err.reason, Reason::Decode);
        assert_eq!(
            err.message,
            "missing required field `status` (absent or null) (Kapso's error instead: Config not ready)"
        );
        // A health with its own error object stands: that error is Kapso's report.
        let health = read_health(&fetched(
            StatusCode::OK,
            br#"{"status":"error","error":{"message":"boom","code":500}}"#,
        ))
        .unwrap();
        assert_eq!(health.error.as_deref(), Some("boom"));
    }

    fn lines(health: &payload::KapsoHealth, number: Option<&str>) -> Vec<String> {
        let mut out = Samples::new("t");
        check_samples(&mut out, health, number);
        let mut lines = Vec::new();
        for family in [
            Family::ConfigHealthStatus,
            Family::HealthCheckPassed,
            Family::WebhookSubscribed,
            Family::WebhookVerified,
            Family::PhoneQualityRating,
            Family::PhoneNumberInfo,
            Family::PhoneMessagingLimitTier,
            Family::PhoneNumberStatus,
        ] {
            lines.extend(out.lines(family).lines().map(str::to_owned));
        }
        lines
    }

    #[test]
    fn series_of_one_answer_with_and_without_the_number() {
        let health = payload::parse_health(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kapso/platform_phone_health_healthy.json"
        )))
        .unwrap();
        let with = lines(&health, Some("123456789012345"));
        for line in [
            r#"whatsapp_config_health_status{target="t",phone_number_id="123456789012345",status="healthy"} 1"#,
            r#"whatsapp_health_check_passed{target="t",phone_number_id="123456789012345",check="webhook_verified"} 1"#,
            r#"whatsapp_webhook_subscribed{target="t",phone_number_id="123456789012345"} 1"#,
            r#"whatsapp_webhook_verified_timestamp_seconds{target="t",phone_number_id="123456789012345"} 1736937000"#,
            r#"whatsapp_phone_quality_rating{target="t",phone_number_id="123456789012345",rating="GREEN"} 1"#,
            r#"whatsapp_phone_messaging_limit_tier{target="t",phone_number_id="123456789012345",tier="TIER_10K"} 1"#,
            r#"whatsapp_phone_number_status{target="t",phone_number_id="123456789012345",status="CONNECTED"} 1"#,
        ] {
            assert!(with.iter().any(|l| l == line), "missing {line}\n{with:#?}");
        }
        // The legacy type: Kapso's series without the number, the phone's by its details.
        let without = lines(&health, None);
        for line in [
            r#"whatsapp_config_health_status{target="t",status="healthy"} 1"#,
            r#"whatsapp_health_check_passed{target="t",check="phone_number_access"} 1"#,
            r#"whatsapp_webhook_subscribed{target="t"} 1"#,
            r#"whatsapp_phone_quality_rating{target="t",phone_number_id="123456789012345",rating="GREEN"} 1"#,
        ] {
            assert!(
                without.iter().any(|l| l == line),
                "missing {line}\n{without:#?}"
            );
        }
        assert!(!without
            .iter()
            .any(|l| l.starts_with("whatsapp_config_health_status{target=\"t\",phone_number_id")));
    }

    #[test]
    fn a_check_carrying_metas_error_as_text_is_a_failed_check() {
        let health = payload::parse_health(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kapso/legacy_health_invalid_token_190.json"
        )))
        .unwrap();
        let lines = lines(&health, None);
        for line in [
            r#"whatsapp_config_health_status{target="t",status="unhealthy"} 1"#,
            r#"whatsapp_health_check_passed{target="t",check="messaging_health"} 0"#,
            r#"whatsapp_health_check_passed{target="t",check="phone_number_access"} 0"#,
            r#"whatsapp_health_check_passed{target="t",check="webhook_subscription"} 0"#,
            r#"whatsapp_health_check_passed{target="t",check="webhook_verified"} 1"#,
        ] {
            assert!(
                lines.iter().any(|l| l == line),
                "missing {line}\n{lines:#?}"
            );
        }
    }
}
