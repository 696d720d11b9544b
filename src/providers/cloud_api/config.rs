//! The keys of a `cloud_api` target: its access token, the Graph API version, and the
//! business, WABA and phone numbers to poll.

use std::collections::HashSet;
use std::time::Duration;

use serde_yaml::Mapping;

use super::client::CloudApiClient;
use crate::config_values::{
    config_keys, duration_text, put, put_secret, required_secret, EnvString, HumanDuration, Id,
};
use crate::providers::{Provider, TargetSettings};
use crate::secret::SecretSource;
use crate::upstream::Upstream;

/// The newest Graph API version whose end Meta has published (2028-07-29, see
/// [`super::versions::VERSIONS`]), months old, and past v24.0, the first with
/// `whatsapp_business_manager_messaging_limit`.
pub const DEFAULT_API_VERSION: &str = "v25.0";
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = crate::config_values::defaults::DISCOVERY_INTERVAL;
/// Rate-limit usage (0..1) above which a Cloud API target polls more slowly.
pub const DEFAULT_USAGE_THRESHOLD: f64 = 0.8;

/// Meta's Graph API for a WABA and/or phone numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudApiTarget {
    pub access_token: SecretSource,
    /// The token `GET /debug_token` is asked with (an app token `app_id|app_secret`), for
    /// token kinds that cannot inspect themselves; `None`: the access token itself.
    pub debug_token_access_token: Option<SecretSource>,
    pub api_version: String,
    pub phone_number_ids: Vec<String>,
    pub waba_id: Option<String>,
    /// Every WABA the business owns or serves as a solution partner is polled.
    pub business_id: Option<String>,
    pub discover: bool,
    pub discovery_interval: Duration,
    pub usage_threshold: f64,
    /// The target's interval and timeout: the WABAs of a business are spread over the one,
    /// each request bounded by the other.
    pub interval: Duration,
    pub timeout: Duration,
}

impl CloudApiTarget {
    /// The major version, for fields that exist only from some version on.
    pub fn api_major_version(&self) -> u32 {
        parse_api_version(&self.api_version).map_or(0, |(major, _)| major)
    }
}

config_keys! {
    /// The keys of a `cloud_api` target.
    pub struct CloudApiKeys {
        access_token: EnvString,
        access_token_file: EnvString,
        debug_token_access_token: EnvString,
        debug_token_access_token_file: EnvString,
        api_version: EnvString,
        phone_number_ids: Vec<Id>,
        waba_id: Id,
        business_id: Id,
        discover: bool,
        discovery_interval: HumanDuration,
        usage_threshold: f64,
    }
}

impl Provider for CloudApiTarget {
    const TYPE: &'static str = "cloud_api";
    const DEFAULT_BASE_URL: Option<&'static str> = Some("https://graph.facebook.com");
    type Keys = CloudApiKeys;
    type Client = CloudApiClient;

    fn from_keys(keys: CloudApiKeys, target: &TargetSettings) -> Result<Self, String> {
        let access_token = required_secret(
            Self::TYPE,
            "access_token",
            &keys.access_token,
            &keys.access_token_file,
        )?;
        let api_version = keys
            .api_version
            .map_or_else(|| DEFAULT_API_VERSION.to_owned(), |v| v.0);
        if parse_api_version(&api_version).is_none() {
            return Err(format!(
                "api_version {api_version:?} is not of the form v24.0"
            ));
        }
        let phone_number_ids: Vec<String> = keys
            .phone_number_ids
            .into_iter()
            .flatten()
            .map(|id| id.0)
            .collect();
        let waba_id = keys.waba_id.map(|id| id.0);
        let business_id = keys.business_id.map(|id| id.0);
        for id in phone_number_ids.iter().chain(&waba_id).chain(&business_id) {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{id:?} is not a Graph API id (digits only)"));
            }
        }
        let mut unique = HashSet::new();
        if let Some(dup) = phone_number_ids.iter().find(|id| !unique.insert(*id)) {
            return Err(format!("phone_number_ids lists {dup} twice"));
        }
        // A business is listed every discovery_interval: discovery is what it is for.
        let discover = keys.discover.unwrap_or(business_id.is_some());
        if business_id.is_some() && !discover {
            return Err("business_id lists the business's WABAs: it needs discover: true (the default with business_id)".into());
        }
        if discover && waba_id.is_none() && business_id.is_none() {
            return Err("discover: true needs waba_id or business_id".into());
        }
        if phone_number_ids.is_empty() && waba_id.is_none() && business_id.is_none() {
            return Err("set business_id, waba_id or phone_number_ids (or several)".into());
        }
        let discovery_interval = crate::config_values::discovery_interval(
            keys.discovery_interval.as_ref(),
            discover,
            target.interval,
        )?;
        let debug_token_access_token = crate::config_values::secret_source(
            "debug_token_access_token",
            &keys.debug_token_access_token,
            &keys.debug_token_access_token_file,
        )?;
        let usage_threshold = keys.usage_threshold.unwrap_or(DEFAULT_USAGE_THRESHOLD);
        if !(usage_threshold > 0.0 && usage_threshold <= 1.0) {
            return Err(format!(
                "usage_threshold must be above 0 and at most 1 (a ratio), not {usage_threshold}"
            ));
        }
        Ok(CloudApiTarget {
            access_token,
            debug_token_access_token,
            api_version,
            phone_number_ids,
            waba_id,
            business_id,
            discover,
            discovery_interval,
            usage_threshold,
            interval: target.interval,
            timeout: target.timeout,
        })
    }

    fn secrets(&self) -> Vec<&SecretSource> {
        let mut secrets = vec![&self.access_token];
        secrets.extend(&self.debug_token_access_token);
        secrets
    }

    fn log_warnings(&self, target: &str) {
        super::versions::log_lifetime(target, &self.api_version);
    }

    fn redact(&self, out: &mut Mapping) {
        put_secret(out, "access_token", &self.access_token);
        if let Some(token) = &self.debug_token_access_token {
            put_secret(out, "debug_token_access_token", token);
        }
        put(out, "api_version", self.api_version.as_str());
        if let Some(business_id) = &self.business_id {
            put(out, "business_id", business_id.as_str());
        }
        if let Some(waba_id) = &self.waba_id {
            put(out, "waba_id", waba_id.as_str());
        }
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
        put(out, "usage_threshold", self.usage_threshold);
    }

    fn client(&self, upstream: Upstream) -> CloudApiClient {
        CloudApiClient::new(upstream, self)
    }

    #[cfg(feature = "simulator")]
    fn demo_targets(simulator: &crate::simulator::SimulatorHandle, interval: Duration) -> String {
        use crate::simulator::meta;
        let options = simulator.simulator().options();
        format!(
            "- name: cloud-acme\n  type: cloud_api\n  base_url: {graph}\n  access_token: {cloud_api_token}\n  business_id: \"{business}\"\n  discovery_interval: {discovery}\n  labels:\n    site: demo\n",
            graph = simulator.cloud_api_base_url(),
            cloud_api_token = options.cloud_api_token,
            business = meta::BUSINESS_ID,
            discovery = humantime::format_duration(interval * 6),
        )
    }
}

/// `v24.0` -> (24, 0).
pub(super) fn parse_api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.strip_prefix('v')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}
