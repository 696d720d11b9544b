//! What the poller needs of a target, whatever its upstream API: its endpoints, one poll of
//! an endpoint turned into samples, and the series its client keeps between polls.

use std::time::Duration;

use crate::config::{OnPremEndpoint, Target, TargetKind};
use crate::exposition::{Family, Samples};
use crate::providers::cloud_api::client::GraphClient;
use crate::providers::dialog360::Dialog360Client;
use crate::providers::kapso::KapsoClient;
use crate::providers::onprem::{self, client::OnPremClient, payload, SharedSeries};
use crate::upstream::{PollError, Reason};

/// The result of polling one endpoint.
#[derive(Debug)]
pub enum Polled {
    /// Fresh data. `upstream_error` is an error the upstream reported inside a good answer
    /// (Kapso's `error` field): logged and counted, the data still stands.
    Data {
        samples: Samples,
        upstream_error: Option<String>,
    },
    /// Not due in this cycle (discovery runs on its own, slower interval).
    NotDue,
}

impl Polled {
    pub fn data(samples: Samples) -> Self {
        Polled::Data {
            samples,
            upstream_error: None,
        }
    }
}

/// The upstream API of a target.
#[derive(Debug)]
pub enum Client {
    OnPrem(OnPremClient),
    Dialog360(Dialog360Client),
    Kapso(KapsoClient),
    CloudApi(GraphClient),
}

impl Client {
    pub fn new(http: reqwest::Client, config: &Target) -> Self {
        match &config.kind {
            TargetKind::OnPrem(onprem) => Client::OnPrem(OnPremClient::new(http, config, onprem)),
            TargetKind::Dialog360(d) => Client::Dialog360(Dialog360Client::new(http, config, d)),
            TargetKind::Kapso(k) => Client::Kapso(KapsoClient::new(http, config, k)),
            TargetKind::CloudApi(c) => Client::CloudApi(GraphClient::new(http, config, c)),
        }
    }

    /// The endpoint names (the `endpoint` label), polled in this order each cycle.
    pub fn endpoints(&self) -> Vec<&'static str> {
        match self {
            Client::OnPrem(c) => c.endpoints().iter().map(|e| e.as_str()).collect(),
            Client::Dialog360(_) => vec![crate::providers::dialog360::ENDPOINT],
            Client::Kapso(_) => vec![crate::providers::kapso::ENDPOINT],
            Client::CloudApi(c) => c.endpoints(),
        }
    }

    /// How long the data of endpoint `index` survives failed polls.
    pub fn stale_after(&self, index: usize, default: Duration) -> Duration {
        match self {
            Client::CloudApi(c) => c.stale_after(index, default),
            _ => default,
        }
    }

    /// Series the client keeps across polls (token expiry, rate-limit usage).
    pub fn status_samples(&self, out: &mut Samples) {
        match self {
            Client::OnPrem(c) => {
                if let Some(expiry) = c.token_expiry() {
                    out.push(Family::AuthTokenExpiry, &[], onprem::unix_seconds(expiry));
                }
            }
            Client::CloudApi(c) => c.usage_samples(out),
            Client::Dialog360(_) | Client::Kapso(_) => {}
        }
    }

    /// Called before each poll cycle.
    pub fn begin_cycle(&mut self) {
        if let Client::CloudApi(c) = self {
            c.begin_cycle();
        }
    }

    /// How many intervals to wait before the next poll: more than one while the upstream's
    /// rate-limit budget is nearly spent.
    pub fn interval_factor(&mut self) -> u32 {
        match self {
            Client::CloudApi(c) => c.interval_factor(),
            _ => 1,
        }
    }

    pub async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
        match self {
            Client::OnPrem(client) => poll_onprem(client, index, target).await,
            Client::Dialog360(client) => client.poll(target).await.map(Polled::data),
            Client::Kapso(client) => client.poll(target).await,
            Client::CloudApi(client) => client.poll(index, target).await,
        }
    }
}

async fn poll_onprem(
    client: &mut OnPremClient,
    index: usize,
    target: &str,
) -> Result<Polled, PollError> {
    let endpoints = client.endpoints().to_vec();
    let endpoint = endpoints[index];
    let has_health = endpoints.contains(&OnPremEndpoint::Health);
    let primary = endpoint == OnPremEndpoint::Health || !has_health;
    let shared = SharedSeries {
        api_info: primary,
        role: primary,
    };
    let response = client.get(endpoint).await?;
    let mut samples = Samples::new(target);
    let decode = |e: payload::PayloadError| PollError::new(Reason::Decode, e.to_string());
    match endpoint {
        OnPremEndpoint::Health => {
            let report = payload::parse_health(&response.body).map_err(decode)?;
            onprem::health_samples(&mut samples, &report, shared);
        }
        OnPremEndpoint::Support => {
            let report = payload::parse_support(&response.body).map_err(decode)?;
            onprem::support_samples(&mut samples, &report, shared, response.received_at);
        }
    }
    Ok(Polled::data(samples))
}
