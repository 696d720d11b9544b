//! The `kapso_platform` provider: Kapso's current Platform API
//! (`https://api.kapso.ai/platform/v1`, the project's key as `X-API-Key`). One target covers
//! the project's phone numbers: each one's health is
//! `GET /whatsapp/phone_numbers/{phone_number_id}/health`, the same body as the legacy config
//! health, read by [`super::kapso::payload`]; with `discover: true` the numbers come from
//! `GET /whatsapp/phone_numbers`, paged by page number.
//!
//! Kapso's own series (status, checks, webhook) carry the number as `phone_number_id`: the
//! families are the `kapso` type's, so the shipped alerts and dashboards cover both types,
//! and within a target every series of a family has the same labels.

pub mod payload;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_yaml::Mapping;

use super::cloud_api::client::{item_failure, next_url};
use super::kapso::{self, payload::KapsoHealth};
use super::{Provider, TargetClient, TargetSettings};
use crate::config_values::{
    config_keys, duration_text, put, put_secret, required_secret, EnvString, HumanDuration, Id,
};
use crate::exposition::Samples;
use crate::json::{self, Problems};
use crate::secret::SecretSource;
use crate::upstream::{self, PollError, Polled, Reason, Upstream};
use payload::Next;

pub const DISCOVERY: &str = "discovery";
pub const HEALTH: &str = "health";
/// The listing stops after this many pages: a paging loop upstream cannot hold a poll.
const MAX_PAGES: u64 = 100;
/// The largest page Kapso's listings give.
const PER_PAGE: &str = "100";

/// A Kapso project on the Platform API: its phone numbers, listed or discovered.
#[derive(Clone, Debug, PartialEq)]
pub struct KapsoPlatformTarget {
    pub api_key: SecretSource,
    pub phone_number_ids: Vec<String>,
    pub discover: bool,
    pub discovery_interval: Duration,
}

config_keys! {
    /// The keys of a `kapso_platform` target.
    pub struct KapsoPlatformKeys {
        api_key: EnvString,
        api_key_file: EnvString,
        phone_number_ids: Vec<Id>,
        discover: bool,
        discovery_interval: HumanDuration,
    }
}

impl Provider for KapsoPlatformTarget {
    const TYPE: &'static str = "kapso_platform";
    const DEFAULT_BASE_URL: Option<&'static str> = Some("https://api.kapso.ai/platform/v1");
    type Keys = KapsoPlatformKeys;
    type Client = KapsoPlatformClient;

    fn from_keys(keys: KapsoPlatformKeys, target: &TargetSettings) -> Result<Self, String> {
        let api_key = required_secret(Self::TYPE, "api_key", &keys.api_key, &keys.api_key_file)?;
        let phone_number_ids: Vec<String> = keys
            .phone_number_ids
            .into_iter()
            .flatten()
            .map(|id| id.0)
            .collect();
        if let Some(bad) = phone_number_ids.iter().find(|id| !kapso::path_safe(id)) {
            return Err(format!(
                "phone_number_ids: {bad:?} may hold only letters, digits, '-' and '_'"
            ));
        }
        let mut unique = HashSet::new();
        if let Some(dup) = phone_number_ids.iter().find(|id| !unique.insert(*id)) {
            return Err(format!("phone_number_ids lists {dup} twice"));
        }
        let discover = keys.discover.unwrap_or(false);
        if phone_number_ids.is_empty() && !discover {
            return Err(
                "set phone_number_ids, discover: true, or both (a kapso_platform target needs numbers to poll)"
                    .into(),
            );
        }
        let discovery_interval = crate::config_values::discovery_interval(
            keys.discovery_interval.as_ref(),
            discover,
            target.interval,
        )?;
        Ok(KapsoPlatformTarget {
            api_key,
            phone_number_ids,
            discover,
            discovery_interval,
        })
    }

    fn secrets(&self) -> Vec<&SecretSource> {
        vec![&self.api_key]
    }

    fn redact(&self, out: &mut Mapping) {
        put_secret(out, "api_key", &self.api_key);
        if !self.phone_number_ids.is_empty() {
            put(out, "phone_number_ids", self.phone_number_ids.clone());
        }
        put(out, "discover", self.discover);
        if self.discover {
            put(
                out,
                "discovery_interval",
                duration_text(self.discovery_interval),
            );
        }
    }

    fn client(&self, upstream: Upstream) -> KapsoPlatformClient {
        KapsoPlatformClient::new(upstream, self)
    }

    #[cfg(feature = "simulator")]
    fn demo_targets(simulator: &crate::simulator::SimulatorHandle, interval: Duration) -> String {
        let options = simulator.simulator().options();
        format!(
            "- name: kapso-project\n  type: kapso_platform\n  base_url: {base}\n  api_key: {key}\n  discover: true\n  discovery_interval: {discovery}\n  labels:\n    site: demo\n",
            base = simulator.kapso_platform_base_url(),
            key = options.kapso_api_key,
            discovery = humantime::format_duration(interval * 6),
        )
    }
}

#[derive(Debug)]
pub struct KapsoPlatformClient {
    http: reqwest::Client,
    base: upstream::BaseUrl,
    config: KapsoPlatformTarget,
    body_limit: u64,
    discovered: Vec<String>,
    last_discovery: Option<Instant>,
}

impl TargetClient for KapsoPlatformClient {
    fn endpoints(&self) -> Vec<&'static str> {
        self.endpoint_names().to_vec()
    }

    fn stale_after(&self, index: usize, default: Duration) -> Duration {
        if self.endpoint_names().get(index) == Some(&DISCOVERY) {
            super::discovery_stale_after(default, self.config.discovery_interval)
        } else {
            default
        }
    }

    async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
        match self.endpoint_names().get(index).copied() {
            Some(DISCOVERY) => self.discover(target).await,
            _ => self.health(target).await,
        }
    }
}

impl KapsoPlatformClient {
    pub fn new(upstream: Upstream, config: &KapsoPlatformTarget) -> Self {
        KapsoPlatformClient {
            http: upstream.http,
            base: upstream::BaseUrl::new(&upstream.base_url),
            config: config.clone(),
            body_limit: upstream.body_limit,
            discovered: Vec::new(),
            last_discovery: None,
        }
    }

    /// The endpoints in poll order, without a copy: every poll looks its own up here.
    fn endpoint_names(&self) -> &'static [&'static str] {
        if self.config.discover {
            &[DISCOVERY, HEALTH]
        } else {
            &[HEALTH]
        }
    }

    async fn get(&self, url: Url) -> Result<upstream::Fetched, PollError> {
        kapso::get(&self.http, url, &self.config.api_key, self.body_limit).await
    }

    /// The listing page after `page`, where the answer says there is one.
    fn listing_url(&self, page: u64, next: Next) -> Result<Option<Url>, PollError> {
        let mut url = self.base.join("whatsapp/phone_numbers")?;
        match next {
            Next::End => return Ok(None),
            Next::Pages(total) if page >= total => return Ok(None),
            Next::Pages(_) => {
                url.query_pairs_mut()
                    .append_pair("page", &(page + 1).to_string())
                    .append_pair("per_page", PER_PAGE);
            }
            Next::Url(next) => return next_url(self.base.base(), &next).map(Some),
            Next::After(cursor) => {
                url.query_pairs_mut()
                    .append_pair("per_page", PER_PAGE)
                    .append_pair("after", &cursor);
            }
        }
        Ok(Some(url))
    }

    /// Lists the project's numbers, every page, on the discovery interval.
    async fn discover(&mut self, target: &str) -> Result<Polled, PollError> {
        if self
            .last_discovery
            .is_some_and(|at| at.elapsed() < self.config.discovery_interval)
        {
            return Ok(Polled::NotDue);
        }
        let mut problems = Problems::default();
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut url = self.listing_url(0, Next::Pages(1))?;
        let mut page = 1;
        while let Some(at) = url {
            if page > MAX_PAGES {
                return Err(PollError::new(
                    Reason::Decode,
                    format!("more than {MAX_PAGES} pages: listing abandoned"),
                ));
            }
            let fetched = self.get(at).await?;
            let read = payload::parse_phone_numbers_page(&fetched.body, &mut problems)
                .map_err(|e| kapso::unreadable(&fetched, &e))?;
            for id in read.ids {
                if seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
            url = self.listing_url(page, read.next)?;
            page += 1;
        }
        if ids != self.discovered {
            tracing::info!(
                target_name = target,
                phone_numbers = ids.len(),
                "discovery found the Kapso project's phone numbers"
            );
        }
        self.discovered = ids;
        self.last_discovery = Some(Instant::now());
        Ok(Polled::read(Samples::new(target), problems))
    }

    /// The health of every configured, then every discovered number. A number whose own
    /// answer fails (gone, odd) is left out and noted while its siblings are polled; a rate
    /// limit, an outage or a refused key fails the endpoint, as the others would meet it too.
    async fn health(&mut self, target: &str) -> Result<Polled, PollError> {
        let ids = super::polled_ids(&self.config.phone_number_ids, &self.discovered);
        let mut problems = Problems::default();
        let mut answers: Vec<(&str, KapsoHealth)> = Vec::with_capacity(ids.len());
        let mut first_failure = None;
        for id in &ids {
            let read = match self
                .base
                .join(&format!("whatsapp/phone_numbers/{id}/health"))
            {
                Ok(url) => match self.get(url).await {
                    Ok(fetched) => kapso::read_health(&fetched),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match read {
                Ok(mut health) => {
                    problems.extend(std::mem::take(&mut health.problems));
                    answers.push((id, health));
                }
                Err(e) if !item_failure(&e) => return Err(e),
                Err(e) => {
                    problems.skip(format_args!("phone number {id}: {e}"));
                    first_failure.get_or_insert(e);
                }
            }
        }
        if let (true, Some(failure)) = (answers.is_empty(), first_failure) {
            // Nothing of the endpoint could be read.
            return Err(failure);
        }
        let mut samples = Samples::new(target);
        for (id, health) in &answers {
            kapso::check_samples(&mut samples, health, Some(id));
        }
        let statuses: Vec<_> = answers
            .iter()
            .filter_map(|(_, h)| h.messaging.as_ref())
            .collect();
        crate::meta::messaging_samples(&mut samples, &statuses);
        let errors: Vec<String> = answers
            .iter()
            .filter_map(|(id, h)| {
                Some(format!(
                    "phone number {id}: {}",
                    json::clip(h.error.as_deref()?)
                ))
            })
            .collect();
        Ok(Polled::Data {
            samples,
            upstream_error: (!errors.is_empty()).then(|| errors.join("; ")),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(keys: &str) -> Result<KapsoPlatformTarget, String> {
        let text = format!(
            "global:\n  interval: 30s\ntargets:\n  - name: k\n    type: kapso_platform\n    api_key: sim-kapso-key-0123456789\n{keys}"
        );
        let config =
            Config::parse(&text, std::path::Path::new("t.yaml")).map_err(|e| e.to_string())?;
        match &config.targets[0].kind {
            crate::providers::TargetKind::KapsoPlatform(k) => Ok(k.clone()),
            other => panic!("not kapso_platform: {other:?}"),
        }
    }

    #[test]
    fn keys() {
        let k = load("    phone_number_ids: [106540352242922, \"abc-1\"]\n").unwrap();
        assert_eq!(k.phone_number_ids, ["106540352242922", "abc-1"]);
        assert!(!k.discover);
        let k = load("    discover: true\n").unwrap();
        assert!(k.discover);
        assert_eq!(k.discovery_interval, Duration::from_secs(600));
        let k = load("    discover: true\n    discovery_interval: 1h\n").unwrap();
        assert_eq!(k.discovery_interval, Duration::from_secs(3600));
        for (keys, error) in [
            ("", "set phone_number_ids, discover: true, or both"),
            (
                "    discover: false\n",
                "set phone_number_ids, discover: true, or both",
            ),
            (
                "    phone_number_ids: []\n",
                "set phone_number_ids, discover: true, or both",
            ),
            (
                "    phone_number_ids: [\"1/2\"]\n",
                "phone_number_ids: \"1/2\" may hold only letters, digits, '-' and '_'",
            ),
            (
                "    phone_number_ids: [1, \"1\"]\n",
                "phone_number_ids lists 1 twice",
            ),
            (
                "    phone_number_ids: [1]\n    discovery_interval: 1h\n",
                "discovery_interval needs discover: true",
            ),
            (
                "    discover: true\n    discovery_interval: 10s\n",
                "discovery_interval (10s) must not be shorter than interval (30s)",
            ),
        ] {
            let e = load(keys).unwrap_err();
            assert!(e.contains(error), "{keys:?}: {e}");
        }
        let text = "targets:\n  - name: k\n    type: kapso_platform\n    discover: true\n";
        let e = Config::parse(text, std::path::Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api_key or api_key_file is required for type kapso_platform"),
            "{e}"
        );
    }

    #[test]
    fn redacted() {
        let k = load("    phone_number_ids: [\"7\"]\n").unwrap();
        let mut out = Mapping::new();
        k.redact(&mut out);
        let text = serde_yaml::to_string(&out).unwrap();
        assert_eq!(
            text,
            "api_key: <secret>\nphone_number_ids:\n- '7'\ndiscover: false\n"
        );
        assert!(!text.contains("sim-kapso-key"));
    }
}
