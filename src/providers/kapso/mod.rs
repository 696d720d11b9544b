//! Kapso: `GET /api/v1/whatsapp_configs/{config_id}/health` with `X-API-Key`. Its checks
//! are open-ended and exported by name; `messaging_health.details` is Meta's health_status.

pub mod payload;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;

use crate::config::{KapsoTarget, Target};
use crate::exposition::{Family, Samples};
use crate::json;
use crate::target::Polled;
use crate::upstream::{self, PollError, Reason};

pub const ENDPOINT: &str = "health";
pub const CONFIG_STATUSES: &[&str] = &["healthy", "degraded", "unhealthy", "error"];

#[derive(Debug)]
pub struct KapsoClient {
    http: reqwest::Client,
    url: Result<Url, String>,
    config: KapsoTarget,
    body_limit: u64,
}

impl KapsoClient {
    pub fn new(http: reqwest::Client, target: &Target, config: &KapsoTarget) -> Self {
        let url = upstream::with_trailing_slash(&target.base_url)
            .join(&format!(
                "api/v1/whatsapp_configs/{}/health",
                config.config_id
            ))
            .map_err(|e| format!("building URL: {e}"));
        KapsoClient {
            http,
            url,
            config: config.clone(),
            body_limit: target.body_size_limit,
        }
    }

    pub async fn poll(&mut self, target: &str) -> Result<Polled, PollError> {
        let url = self
            .url
            .clone()
            .map_err(|e| PollError::new(Reason::Connect, e))?;
        let key = self
            .config
            .api_key
            .read()
            .map_err(|e| PollError::new(Reason::Unauthorized, e.to_string()))?;
        let request = self
            .http
            .get(url)
            .header("X-API-Key", upstream::secret_header(key.expose())?);
        let fetched = upstream::fetch(request, self.body_limit).await?;
        if !fetched.status.is_success() {
            let detail = payload::parse_error(&fetched.body)
                .map(|e| json::clip(&e))
                .unwrap_or_default();
            return Err(upstream::status_error(
                fetched.status,
                &fetched.headers,
                &detail,
            ));
        }
        upstream::check_json_content_type(fetched.headers.get(CONTENT_TYPE))?;
        let health = payload::parse_health(&fetched.body)
            .map_err(|e| PollError::new(Reason::Decode, e.to_string()))?;
        let mut samples = Samples::new(target);
        health_samples(&mut samples, &health);
        Ok(Polled::Data {
            samples,
            upstream_error: health.error.as_deref().map(json::clip),
        })
    }
}

pub fn health_samples(out: &mut Samples, health: &payload::KapsoHealth) {
    out.state_set(
        Family::ConfigHealthStatus,
        &[],
        "status",
        CONFIG_STATUSES,
        &health.status,
    );
    for check in &health.checks {
        if let Some(passed) = check.passed {
            out.push(
                Family::HealthCheckPassed,
                &[("check", check.name.as_str())],
                if passed { 1.0 } else { 0.0 },
            );
        }
    }
    if let Some(subscribed) = health.webhook_subscribed {
        out.push(
            Family::WebhookSubscribed,
            &[],
            if subscribed { 1.0 } else { 0.0 },
        );
    }
    if let Some(at) = health.webhook_verified_at {
        out.push(Family::WebhookVerified, &[], at);
    }
    if let Some(phone) = &health.phone {
        if let Some(id) = &phone.id {
            let number = crate::meta::payload::PhoneNumber {
                id: id.clone(),
                health_status: None,
                quality_rating: phone.quality_rating.clone(),
                messaging_limit_tier: None,
                status: None,
                name_status: None,
                throughput_level: None,
                display_phone_number: phone.display_phone_number.clone(),
                verified_name: phone.verified_name.clone(),
            };
            crate::meta::phone_samples(out, &number);
        }
    }
    if let Some(messaging) = &health.messaging {
        crate::meta::messaging_samples(out, &[messaging]);
    }
}
