//! The keys of an `onprem` target: its credentials (API key, login, or a static Bearer
//! token) and the endpoints to poll.

use std::fmt;

use serde::Deserialize;
use serde_yaml::Mapping;

use super::client::OnPremClient;
use crate::config_values::{config_keys, put, put_secret, secret_source, EnvString};
use crate::providers::{Provider, TargetSettings};
use crate::secret::{Secret, SecretSource};
use crate::upstream::Upstream;

/// The lengths of API key the Webapp accepts.
pub const API_KEY_LEN: std::ops::RangeInclusive<usize> = 12..=128;

#[derive(Clone, Debug, PartialEq)]
pub struct OnPremTarget {
    pub api_key: Option<SecretSource>,
    pub login: Option<Login>,
    pub bearer_token: Option<SecretSource>,
    pub endpoints: Vec<OnPremEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    pub username: String,
    pub password: SecretSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPremEndpoint {
    Health,
    Support,
}

impl OnPremEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            OnPremEndpoint::Health => "health",
            OnPremEndpoint::Support => "support",
        }
    }
}

impl fmt::Display for OnPremEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

config_keys! {
    /// The keys of an `onprem` target.
    pub struct OnPremKeys {
        api_key: EnvString,
        api_key_file: EnvString,
        username: EnvString,
        password: EnvString,
        password_file: EnvString,
        bearer_token: EnvString,
        bearer_token_file: EnvString,
        endpoints: Vec<OnPremEndpoint>,
    }
}

impl Provider for OnPremTarget {
    const TYPE: &'static str = "onprem";
    /// Every Webapp has its own address.
    const DEFAULT_BASE_URL: Option<&'static str> = None;
    type Keys = OnPremKeys;
    type Client = OnPremClient;

    fn from_keys(keys: OnPremKeys, _target: &TargetSettings) -> Result<Self, String> {
        let api_key = secret_source("api_key", &keys.api_key, &keys.api_key_file)?;
        if let Some(source) = &api_key {
            check_api_key_length(source)?;
        }
        let password = secret_source("password", &keys.password, &keys.password_file)?;
        let login = match (keys.username, password) {
            (Some(username), Some(password)) => Some(Login {
                username: username.0,
                password,
            }),
            (None, None) => None,
            (Some(_), None) => return Err("username needs password or password_file".into()),
            (None, Some(_)) => return Err("password needs username".into()),
        };
        let bearer_token =
            secret_source("bearer_token", &keys.bearer_token, &keys.bearer_token_file)?;
        if login.is_some() && bearer_token.is_some() {
            return Err("set either username/password (login) or bearer_token, not both".into());
        }
        let has_bearer = login.is_some() || bearer_token.is_some();
        if api_key.is_none() && !has_bearer {
            return Err(
                "no credentials: set api_key, username and password, or bearer_token".into(),
            );
        }
        let endpoints = match keys.endpoints {
            Some(mut list) => {
                list.sort();
                list.dedup();
                if list.is_empty() {
                    return Err("endpoints must not be empty".into());
                }
                if list.contains(&OnPremEndpoint::Support) && !has_bearer {
                    return Err("endpoint support needs a Bearer token: set username and \
                         password (login) or bearer_token; an api_key is accepted by \
                         /v1/health only"
                        .into());
                }
                list
            }
            None if has_bearer => vec![OnPremEndpoint::Health, OnPremEndpoint::Support],
            None => vec![OnPremEndpoint::Health],
        };
        Ok(OnPremTarget {
            api_key,
            login,
            bearer_token,
            endpoints,
        })
    }

    fn secrets(&self) -> Vec<&SecretSource> {
        let login = self.login.as_ref().map(|l| &l.password);
        [self.api_key.as_ref(), login, self.bearer_token.as_ref()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn redact(&self, out: &mut Mapping) {
        if let Some(api_key) = &self.api_key {
            put_secret(out, "api_key", api_key);
        }
        if let Some(login) = &self.login {
            put(out, "username", login.username.as_str());
            put_secret(out, "password", &login.password);
        }
        if let Some(token) = &self.bearer_token {
            put_secret(out, "bearer_token", token);
        }
        let endpoints: Vec<&str> = self.endpoints.iter().map(|e| e.as_str()).collect();
        put(out, "endpoints", endpoints);
    }

    fn client(&self, upstream: Upstream) -> OnPremClient {
        OnPremClient::new(upstream, self)
    }

    #[cfg(feature = "simulator")]
    fn demo_targets(
        simulator: &crate::simulator::SimulatorHandle,
        _interval: std::time::Duration,
    ) -> String {
        use crate::simulator::Cluster;
        let options = simulator.simulator().options();
        format!(
            "- name: onprem-single\n  type: onprem\n  base_url: {single}\n  api_key: {key}\n  username: {user}\n  password: {password}\n  labels:\n    site: demo\n    cluster: single\n\
             - name: onprem-ha\n  type: onprem\n  base_url: {ha}\n  username: {user}\n  password: {password}\n  labels:\n    site: demo\n    cluster: ha\n\
             - name: onprem-multiconnect\n  type: onprem\n  base_url: {mc}\n  api_key: {key}\n  username: {user}\n  password: {password}\n  labels:\n    site: demo\n    cluster: multiconnect\n",
            single = simulator.base_url(Cluster::Single),
            ha = simulator.base_url(Cluster::Ha),
            mc = simulator.base_url(Cluster::Multiconnect),
            key = options.api_key,
            user = options.username,
            password = options.password,
        )
    }
}

/// The Webapp rejects keys outside 12..128 characters; say so at load rather than as a
/// 401 at every poll. A key file that cannot be read yet is checked at each use instead.
fn check_api_key_length(source: &SecretSource) -> Result<(), String> {
    let key = match source {
        SecretSource::Inline(secret) => secret.clone(),
        SecretSource::File(path) => match source.read() {
            Ok(secret) => secret,
            Err(_) if !path.exists() => return Ok(()),
            Err(e) => return Err(format!("api_key_file: {e}")),
        },
    };
    let len = key.expose().chars().count();
    if API_KEY_LEN.contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "api_key must be 12 to 128 characters long (it has {len})"
        ))
    }
}

/// The same check on a key read from its file at poll time.
pub fn check_api_key(key: &Secret) -> Result<(), String> {
    check_api_key_length(&SecretSource::Inline(key.clone()))
}
