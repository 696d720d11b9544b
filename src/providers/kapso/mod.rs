//! The `kapso` provider, Kapso: `GET /api/v1/whatsapp_configs/{config_id}/health` with
//! `X-API-Key`. Its checks are open-ended and exported by name;
//! `messaging_health.details` is Meta's health_status.

pub mod payload;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde_yaml::Mapping;

use super::{Provider, TargetClient, TargetSettings};
use crate::config_values::{config_keys, put, put_secret, required_secret, EnvString, Id};
use crate::exposition::{Family, Samples};
use crate::json;
use crate::secret::SecretSource;
use crate::upstream::{self, PollError, Polled, Reason, Upstream};

pub const ENDPOINT: &str = "health";
pub const CONFIG_STATUSES: &[&str] = &["healthy", "degraded", "unhealthy", "error"];

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
        if !config_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
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
        let mut health = payload::parse_health(&fetched.body)
            .map_err(|e| PollError::new(Reason::Decode, e.to_string()))?;
        let mut samples = Samples::new(target);
        health_samples(&mut samples, &health);
        Ok(Polled::Data {
            samples,
            upstream_error: health.error.as_deref().map(json::clip),
            problems: std::mem::take(&mut health.problems),
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
