//! Talks to one On-Premises Webapp: chooses the credential per endpoint, logs in with
//! Basic auth when it needs a Bearer token, renews the token before it expires, and logs
//! in once more when a token is refused. Refused logins, and fresh tokens refused at once,
//! hold the next login back longer each time, so a Webapp that keeps answering 401 sees
//! no login storm.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};

use super::config::{self, OnPremEndpoint, OnPremTarget};
use super::payload::{self, ApiError, LoginToken};
use crate::secret::{Secret, SecretSource};
use crate::upstream::{self, Fetched, PollError, Reason, Upstream};

/// How long before its expiry a login token is renewed: a fifth of its lifetime, at most
/// an hour (tokens last 7 days; simulators and tests use seconds).
const MAX_RENEW_MARGIN: Duration = Duration::from_secs(3600);
/// After the first refusal (a login answered 401/403, or its fresh token refused) the next
/// login waits this long, doubled at each further refusal in a row.
const LOGIN_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest a login waits: a fixed password file is picked up within this.
const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Token {
    value: Secret,
    expires_at: Option<SystemTime>,
    renew_at: Option<SystemTime>,
}

/// A successful response: its body, and when it arrived (for clock skew).
#[derive(Debug)]
pub struct Response {
    pub body: bytes::Bytes,
    pub received_at: SystemTime,
}

#[derive(Debug)]
pub struct OnPremClient {
    http: reqwest::Client,
    base: upstream::BaseUrl,
    auth: OnPremTarget,
    body_limit: u64,
    token: Option<Token>,
    /// Logins refused (or whose token was refused at once) in a row.
    login_refusals: u32,
    /// No login before this, after a refusal.
    next_login_at: Option<Instant>,
}

enum Credential {
    ApiKey(Secret),
    StaticBearer(Secret),
    Login(Secret),
}

impl OnPremClient {
    pub fn new(upstream: Upstream, auth: &OnPremTarget) -> Self {
        OnPremClient {
            http: upstream.http,
            base: upstream::BaseUrl::new(&upstream.base_url),
            auth: auth.clone(),
            body_limit: upstream.body_limit,
            token: None,
            login_refusals: 0,
            next_login_at: None,
        }
    }

    pub fn configured_endpoints(&self) -> &[OnPremEndpoint] {
        &self.auth.endpoints
    }

    /// When the current login token expires, if there is one.
    pub fn token_expiry(&self) -> Option<SystemTime> {
        self.token.as_ref().and_then(|t| t.expires_at)
    }

    /// GETs one endpoint with the right credential; on a 401 with a login token, logs in
    /// once more (unless logins are backing off) and retries once.
    pub async fn get(&mut self, endpoint: OnPremEndpoint) -> Result<Response, PollError> {
        let path = match endpoint {
            OnPremEndpoint::Health => "v1/health",
            OnPremEndpoint::Support => "v1/support",
        };
        let credential = self.credential(endpoint).await?;
        let mut fetched = self.send(path, &credential).await?;
        let mut with_login = matches!(credential, Credential::Login(_));
        if fetched.status.as_u16() == 401 && with_login {
            tracing::debug!("login token refused, logging in again");
            self.token = None;
            let credential = self.credential(endpoint).await?;
            fetched = self.send(path, &credential).await?;
            with_login = matches!(credential, Credential::Login(_));
            if fetched.status.as_u16() == 401 && with_login {
                // A token fresh from the login refused at once: logging in again would
                // only repeat it.
                self.token = None;
                self.login_refused();
            }
        }
        if with_login && fetched.status.is_success() {
            self.login_refusals = 0;
            self.next_login_at = None;
        }
        self.accept(fetched)
    }

    /// Holds the next login back, twice as long as the last time.
    fn login_refused(&mut self) {
        self.login_refusals = self.login_refusals.saturating_add(1);
        let delay = upstream::doubling(LOGIN_BACKOFF_BASE, self.login_refusals, LOGIN_BACKOFF_MAX);
        self.next_login_at = Some(Instant::now() + delay);
        tracing::debug!(
            refusals = self.login_refusals,
            next_login_in = %humantime::format_duration(delay),
            "login refused, backing off"
        );
    }

    fn accept(&self, fetched: Fetched) -> Result<Response, PollError> {
        if !fetched.status.is_success() {
            return Err(upstream::status_error(
                fetched.status,
                &fetched.headers,
                &describe_errors(&payload::envelope_errors(&fetched.body)),
            ));
        }
        upstream::check_json_content_type(fetched.headers.get(CONTENT_TYPE))?;
        Ok(Response {
            body: fetched.body,
            received_at: SystemTime::now(),
        })
    }

    async fn send(&self, path: &str, credential: &Credential) -> Result<Fetched, PollError> {
        let url = self.url(path)?;
        let header = match credential {
            Credential::ApiKey(key) => format!("Apikey {}", key.expose()),
            Credential::StaticBearer(token) | Credential::Login(token) => {
                format!("Bearer {}", token.expose())
            }
        };
        let value = upstream::secret_header(&header)?;
        upstream::fetch(
            self.http.get(url).header(AUTHORIZATION, value),
            self.body_limit,
        )
        .await
    }

    fn url(&self, path: &str) -> Result<Url, PollError> {
        self.base.join(path)
    }

    async fn credential(&mut self, endpoint: OnPremEndpoint) -> Result<Credential, PollError> {
        if endpoint == OnPremEndpoint::Health {
            if let Some(source) = &self.auth.api_key {
                let key = read_secret(source)?;
                config::check_api_key(&key).map_err(|e| PollError::new(Reason::Unauthorized, e))?;
                return Ok(Credential::ApiKey(key));
            }
        }
        if let Some(source) = &self.auth.bearer_token {
            return Ok(Credential::StaticBearer(read_secret(source)?));
        }
        if self.auth.login.is_some() {
            return Ok(Credential::Login(self.login_token().await?));
        }
        Err(PollError::new(
            Reason::Unauthorized,
            format!("no credential for /v1/{endpoint}"),
        ))
    }

    async fn login_token(&mut self) -> Result<Secret, PollError> {
        let now = SystemTime::now();
        if let Some(token) = &self.token {
            if token.renew_at.is_none_or(|at| now < at) {
                return Ok(token.value.clone());
            }
            tracing::debug!("login token expires soon, renewing");
        }
        if let Some(at) = self.next_login_at {
            if Instant::now() < at {
                // A token due for renewal but not expired serves until the backoff ends.
                if let Some(token) = &self.token {
                    if token.expires_at.is_none_or(|e| now < e) {
                        return Ok(token.value.clone());
                    }
                }
                return Err(PollError::new(
                    Reason::Unauthorized,
                    format!(
                        "login held back after {} refused in a row",
                        self.login_refusals
                    ),
                ));
            }
        }
        let fresh = self.login().await?;
        let expires_at = fresh
            .expires_after
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s));
        let renew_at = expires_at.map(|at| {
            let lifetime = at.duration_since(now).unwrap_or(Duration::ZERO);
            at - (lifetime / 5).min(MAX_RENEW_MARGIN)
        });
        let value = Secret::new(fresh.token);
        self.token = Some(Token {
            value: value.clone(),
            expires_at,
            renew_at,
        });
        Ok(value)
    }

    async fn login(&mut self) -> Result<LoginToken, PollError> {
        let Some(login) = &self.auth.login else {
            return Err(PollError::new(Reason::Unauthorized, "no login configured"));
        };
        let password = read_secret(&login.password)?;
        let request = self
            .http
            .request(Method::POST, self.url("v1/users/login")?)
            .basic_auth(&login.username, Some(password.expose()));
        let fetched = upstream::fetch(request, self.body_limit).await?;
        if !fetched.status.is_success() {
            let mut err = upstream::status_error(
                fetched.status,
                &fetched.headers,
                &describe_errors(&payload::envelope_errors(&fetched.body)),
            );
            err.message = format!("login: {}", err.message);
            if err.reason == Reason::Unauthorized {
                self.login_refused();
            }
            return Err(err);
        }
        payload::parse_login(&fetched.body)
            .map_err(|e| PollError::new(Reason::Decode, format!("login: {e}")))
    }
}

fn read_secret(source: &SecretSource) -> Result<Secret, PollError> {
    source
        .read()
        .map_err(|e| PollError::new(Reason::Unauthorized, e.to_string()))
}

/// "1005 Access denied (details)" for each error of an envelope, joined (the parser has
/// already clipped their texts).
pub fn describe_errors(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut text = String::new();
            if let Some(code) = e.code {
                text.push_str(&code.to_string());
            }
            if let Some(title) = &e.title {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(title);
            }
            if let Some(details) = &e.details {
                text.push_str(&format!(" ({details})"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions() {
        let errors = vec![
            ApiError {
                code: Some(1005),
                title: Some("Access denied".into()),
                details: Some("Invalid credentials".into()),
            },
            ApiError {
                code: None,
                title: Some("Other".into()),
                details: None,
            },
        ];
        assert_eq!(
            describe_errors(&errors),
            "1005 Access denied (Invalid credentials); Other"
        );
    }
}
