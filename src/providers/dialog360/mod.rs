//! The `dialog360` provider, 360dialog: `GET /health_status` with the channel's
//! `D360-API-KEY`. The body is Meta's health_status; errors come in 360dialog's own
//! envelope.

pub mod payload;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde_yaml::Mapping;

use super::{Provider, TargetClient, TargetSettings};
use crate::config_values::{config_keys, put_secret, required_secret, EnvString};
use crate::exposition::Samples;
use crate::secret::SecretSource;
use crate::upstream::{self, PollError, Polled, Reason, Upstream};

pub const ENDPOINT: &str = "health_status";

/// A 360dialog channel: `GET /health_status` with its channel key.
#[derive(Clone, Debug, PartialEq)]
pub struct Dialog360Target {
    pub api_key: SecretSource,
}

config_keys! {
    /// The keys of a `dialog360` target.
    pub struct Dialog360Keys {
        api_key: EnvString,
        api_key_file: EnvString,
    }
}

impl Provider for Dialog360Target {
    const TYPE: &'static str = "dialog360";
    const DEFAULT_BASE_URL: Option<&'static str> = Some("https://waba-v2.360dialog.io");
    type Keys = Dialog360Keys;
    type Client = Dialog360Client;

    fn from_keys(keys: Dialog360Keys, _target: &TargetSettings) -> Result<Self, String> {
        Ok(Dialog360Target {
            api_key: required_secret(Self::TYPE, "api_key", &keys.api_key, &keys.api_key_file)?,
        })
    }

    fn secrets(&self) -> Vec<&SecretSource> {
        vec![&self.api_key]
    }

    fn redact(&self, out: &mut Mapping) {
        put_secret(out, "api_key", &self.api_key);
    }

    fn client(&self, upstream: Upstream) -> Dialog360Client {
        Dialog360Client::new(upstream, self)
    }

    #[cfg(feature = "simulator")]
    fn demo_targets(
        simulator: &crate::simulator::SimulatorHandle,
        _interval: std::time::Duration,
    ) -> String {
        let options = simulator.simulator().options();
        format!(
            "- name: dialog360-sales\n  type: dialog360\n  base_url: {d360}\n  api_key: {d360_key}\n  labels:\n    site: demo\n",
            d360 = simulator.dialog360_base_url(),
            d360_key = options.dialog360_api_keys.get(1).map_or("", String::as_str),
        )
    }
}

#[derive(Debug)]
pub struct Dialog360Client {
    http: reqwest::Client,
    url: Url,
    config: Dialog360Target,
    body_limit: u64,
}

impl TargetClient for Dialog360Client {
    fn endpoints(&self) -> Vec<&'static str> {
        vec![ENDPOINT]
    }

    async fn poll(&mut self, _index: usize, target: &str) -> Result<Polled, PollError> {
        self.health(target).await
    }
}

impl Dialog360Client {
    pub fn new(upstream: Upstream, config: &Dialog360Target) -> Self {
        let base = upstream::with_trailing_slash(&upstream.base_url);
        Dialog360Client {
            http: upstream.http,
            // Joining a fixed relative path onto a valid base URL cannot fail.
            url: base.join("health_status").unwrap_or(base),
            config: config.clone(),
            body_limit: upstream.body_limit,
        }
    }

    async fn health(&mut self, target: &str) -> Result<Polled, PollError> {
        let key = self
            .config
            .api_key
            .read()
            .map_err(|e| PollError::new(Reason::Unauthorized, e.to_string()))?;
        let request = self
            .http
            .get(self.url.clone())
            .header("D360-API-KEY", upstream::secret_header(key.expose())?);
        let fetched = upstream::fetch(request, self.body_limit).await?;
        if !fetched.status.is_success() {
            return Err(error(fetched.status, &fetched.headers, &fetched.body));
        }
        upstream::check_json_content_type(fetched.headers.get(CONTENT_TYPE))?;
        let mut problems = crate::json::Problems::default();
        let health =
            payload::parse_health_status_body(&fetched.body, &mut problems).map_err(|e| {
                // 360dialog sometimes wraps a failure in a 2xx: its envelope, or Meta's, says
                // what it is.
                match e {
                    payload::PayloadError::Upstream(meta_error) => crate::meta::envelope_error(
                        fetched.status,
                        &fetched.headers,
                        &meta_error,
                        None,
                    ),
                    e => match payload::parse_error(&fetched.body) {
                        Some(_) => error(fetched.status, &fetched.headers, &fetched.body),
                        None => PollError::new(Reason::Decode, e.to_string()),
                    },
                }
            })?;
        let mut samples = Samples::new(target);
        crate::meta::messaging_samples(&mut samples, &[&health]);
        Ok(Polled::read(samples, problems))
    }
}

/// 360dialog relays Meta's own error envelope (`{"error":{...}}`, e.g. a Graph rate limit),
/// classified by its code as the Graph client does. Its own envelope names the problem in
/// `meta.developerMessage`; its "exceeded the limit of 1 request every N seconds" (a 400)
/// is a rate limit with an N-second wait.
fn error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> PollError {
    if let Some(meta_error) = crate::meta::payload::parse_graph_error(body) {
        return crate::meta::envelope_error(status, headers, &meta_error, None);
    }
    let Some(envelope) = payload::parse_error(body) else {
        return upstream::status_error(status, headers, "");
    };
    let detail = upstream::truncate(envelope.developer_message.as_deref().unwrap_or(""), 200);
    let mut err = upstream::status_error(status, headers, &detail);
    if status.is_success() {
        err.reason = match envelope.http_code {
            Some(401 | 403) => Reason::Unauthorized,
            _ => Reason::HttpStatus,
        };
    }
    if payload::is_rate_limit(&envelope) {
        err.reason = Reason::RateLimited;
        err.retry_after = err
            .retry_after
            .or_else(|| payload::rate_limit_window(&envelope));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use reqwest::StatusCode;
    use std::time::Duration;

    #[test]
    fn envelope_errors() {
        let headers = HeaderMap::new();
        let err = error(
            StatusCode::UNAUTHORIZED,
            &headers,
            br#"{"meta":{"httpCode":401,"developerMessage":"Invalid api_key","success":false}}"#,
        );
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(err.message, "HTTP 401: Invalid api_key");
        let err = error(
            StatusCode::BAD_REQUEST,
            &headers,
            br#"{"meta":{"httpCode":400,"developerMessage":"You have exceeded the limit of 1 request every 5 seconds","success":false}}"#,
        );
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(5)));
        // Meta's envelope relayed (docs.360dialog.com, "Error messages": a Graph error 613
        // passed through): classified by its code, not by the HTTP status.
        let mut with_retry = HeaderMap::new();
        with_retry.insert(reqwest::header::RETRY_AFTER, "30".parse().unwrap());
        let err = error(
            StatusCode::BAD_REQUEST,
            &with_retry,
            br#"{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613,"fbtrace_id":"A1b2"}}"#,
        );
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(
            err.message,
            "HTTP 400: Graph error 613: (#613) Calls to this api have exceeded the rate limit."
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
        let err = error(
            StatusCode::UNAUTHORIZED,
            &headers,
            br#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#,
        );
        assert_eq!(err.reason, Reason::Unauthorized);
        assert_eq!(
            err.message,
            "HTTP 401: Graph error 190 (subcode 463): Error validating access token: Session has expired"
        );
        let err = error(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers,
            br#"{"error":{"message":"Service temporarily unavailable","code":2,"is_transient":true}}"#,
        );
        assert_eq!(err.reason, Reason::Unavailable);
        let err = error(
            StatusCode::BAD_GATEWAY,
            &headers,
            b"<html>bad gateway</html>",
        );
        assert_eq!(err.reason, Reason::HttpStatus);
        assert_eq!(err.message, "HTTP 502");
    }
}
