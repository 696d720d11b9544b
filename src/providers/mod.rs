//! The upstream APIs a target can poll, one module each, registered once in the
//! `registry!` call at the bottom of this file.
//!
//! A provider's module owns everything of its kind: the keys its targets take in the
//! configuration file, their validation and how `/config` shows them ([`Provider`]), its
//! client and how one poll of each endpoint turns into samples ([`TargetClient`]), its
//! payload parser, and the demo's targets on the built-in simulator. The registration line
//! names its module, its configuration type and the variant it gets in the enums below;
//! the module declaration, the target type names, the key lists of the unknown-key errors
//! and the dispatch of every call follow from it. The README's "Adding a provider" walks
//! through one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserializer;
use serde_yaml::Mapping;

use crate::config_values::Keys;
use crate::exposition::Samples;
use crate::secret::SecretSource;
use crate::upstream::{PollError, Polled, Upstream};
use crate::webhooks::update::TargetUpdate;

/// The settings of a target that every provider has, as far as a provider's validation
/// needs them.
#[derive(Clone, Copy, Debug)]
pub struct TargetSettings {
    pub interval: Duration,
    /// How long one poll of an endpoint may take.
    pub timeout: Duration,
}

/// One upstream API: its configuration, validated from its [`Keys`], and what builds its
/// client.
pub trait Provider: Clone + std::fmt::Debug + PartialEq {
    /// The target's `type` in the configuration file.
    const TYPE: &'static str;
    /// The `base_url` of a target that names none; `None` makes `base_url` required.
    const DEFAULT_BASE_URL: Option<&'static str>;
    /// The keys only this provider's targets take.
    type Keys: Keys;
    type Client: TargetClient + std::fmt::Debug;

    /// The provider's configuration from its keys as read, or what is wrong with them.
    fn from_keys(keys: Self::Keys, target: &TargetSettings) -> Result<Self, String>;

    /// Writes the provider's keys for the `/config` page, defaults resolved, with
    /// [`crate::config_values::put_secret`] for every secret.
    fn redact(&self, out: &mut Mapping);

    /// Every secret of the target's configuration: `/probe?debug=true` takes their values
    /// out of what it shows.
    fn secrets(&self) -> Vec<&SecretSource>;

    /// Logs what is valid in the configuration of target `target` but worth a warning (a
    /// Graph API version that ends soon), at start and at each reload.
    fn log_warnings(&self, target: &str) {
        let _ = target;
    }

    fn client(&self, upstream: Upstream) -> Self::Client;

    /// The demo's targets of this provider on the built-in simulator, as YAML list items
    /// (`interval` is the demo's poll interval); none for a provider the simulator does not
    /// serve.
    #[cfg(feature = "simulator")]
    fn demo_targets(simulator: &crate::simulator::SimulatorHandle, interval: Duration) -> String {
        let _ = (simulator, interval);
        String::new()
    }
}

/// The WABAs and phone numbers a target polls, by id: deliveries of Meta's webhooks for
/// them belong to the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolledIds {
    pub wabas: Vec<String>,
    pub numbers: Vec<String>,
}

/// What a webhook's update did to a client's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The data of endpoint `endpoint` changed: its samples are to be rendered again.
    Changed { endpoint: usize },
    /// It names what the target polls, which already is so.
    Unchanged,
    /// It names nothing the target polls (or the provider takes no updates).
    Unknown,
}

/// What the poller asks of a target's client.
pub trait TargetClient {
    /// The endpoint names (the `endpoint` label), polled in this order each cycle.
    fn endpoints(&self) -> Vec<&'static str>;

    /// How long the data of endpoint `index` survives failed polls.
    fn stale_after(&self, _index: usize, default: Duration) -> Duration {
        default
    }

    /// How long the poll of endpoint `index` may take: the target's `timeout`, or longer for
    /// an endpoint that spreads its requests over the interval.
    fn poll_timeout(&self, _index: usize, timeout: Duration) -> Duration {
        timeout
    }

    /// The polls from now on must end soon (a `/probe` within its scrape timeout): nothing
    /// is spread.
    fn hurry(&mut self) {}

    /// Series the client keeps across polls (token expiry, rate-limit usage).
    fn status_samples(&self, _out: &mut Samples) {}

    /// Called before each poll cycle.
    fn begin_cycle(&mut self) {}

    /// How many intervals to wait before the next poll: more than one while the upstream's
    /// rate-limit budget is nearly spent.
    fn interval_factor(&mut self) -> u32 {
        1
    }

    /// Polls endpoint `index` of target `target` (the `target` label of the samples).
    fn poll(
        &mut self,
        index: usize,
        target: &str,
    ) -> impl Future<Output = Result<Polled, PollError>> + Send;

    /// Applies what a webhook says to the data the last polls read, until the next poll
    /// reads it again.
    fn apply_update(&mut self, _update: &TargetUpdate) -> Applied {
        Applied::Unknown
    }

    /// The samples of endpoint `index` from the data as it is now, updates applied,
    /// without asking the upstream; `None` when it holds none.
    fn render(&self, _index: usize, _target: &str) -> Option<Samples> {
        None
    }

    /// The WABAs and numbers the last polls asked about, the same `Arc` while they stay
    /// the same; `None` for a provider that has none to tell.
    fn polled_ids(&self) -> Option<Arc<PolledIds>> {
        None
    }
}

/// How long the data of a `discovery` endpoint survives failed polls: it is refreshed only
/// every `discovery_interval`, so it stays for as many of those as other data stays
/// intervals.
pub(crate) fn discovery_stale_after(default: Duration, discovery_interval: Duration) -> Duration {
    default.max(discovery_interval * crate::config_values::defaults::STALE_AFTER_INTERVALS)
}

/// The numbers a poll asks for: the configured ones, then those discovery found besides.
pub(crate) fn polled_ids(configured: &[String], discovered: &[String]) -> Vec<String> {
    let mut ids = configured.to_vec();
    ids.extend(
        discovered
            .iter()
            .filter(|id| !configured.contains(id))
            .cloned(),
    );
    ids
}

macro_rules! registry {
    ($($module:ident::$config:ident => $variant:ident,)+) => {
        $(pub mod $module;)+

        /// A target's type: its `type` key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Type {
            $($variant),+
        }

        impl Type {
            pub const ALL: &'static [Type] = &[$(Type::$variant),+];
            pub const NAMES: &'static [&'static str] =
                &[$(<$module::$config as Provider>::TYPE),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Type::$variant => <$module::$config as Provider>::TYPE),+
                }
            }

            pub fn from_name(name: &str) -> Option<Type> {
                Type::ALL.iter().copied().find(|t| t.as_str() == name)
            }

            pub fn default_base_url(self) -> Option<&'static str> {
                match self {
                    $(Type::$variant => <$module::$config as Provider>::DEFAULT_BASE_URL),+
                }
            }

            /// The keys only this type's targets take.
            pub fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Type::$variant => {
                        <<$module::$config as Provider>::Keys as Keys>::NAMES
                    })+
                }
            }
        }

        /// The keys of one target's type, as read, before validation.
        #[derive(Debug)]
        pub enum RawKeys {
            $($variant(<$module::$config as Provider>::Keys)),+
        }

        impl RawKeys {
            pub fn new(kind: Type) -> Self {
                match kind {
                    $(Type::$variant => RawKeys::$variant(Default::default())),+
                }
            }

            /// Reads the value of `key`, one of its type's [`Type::keys`].
            pub fn read<'de, D: Deserializer<'de>>(
                &mut self,
                key: &str,
                value: D,
            ) -> Result<(), D::Error> {
                match self {
                    $(RawKeys::$variant(keys) => keys.read(key, value)),+
                }
            }

            pub fn validate(self, target: &TargetSettings) -> Result<TargetKind, String> {
                match self {
                    $(RawKeys::$variant(keys) => {
                        <$module::$config as Provider>::from_keys(keys, target)
                            .map(TargetKind::$variant)
                    })+
                }
            }
        }

        /// A target's provider and its validated configuration.
        #[derive(Clone, Debug, PartialEq)]
        pub enum TargetKind {
            $($variant($module::$config)),+
        }

        impl TargetKind {
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(TargetKind::$variant(_) => <$module::$config as Provider>::TYPE),+
                }
            }

            pub fn redact(&self, out: &mut Mapping) {
                match self {
                    $(TargetKind::$variant(config) => config.redact(out)),+
                }
            }

            pub fn secrets(&self) -> Vec<&SecretSource> {
                match self {
                    $(TargetKind::$variant(config) => config.secrets()),+
                }
            }

            pub fn log_warnings(&self, target: &str) {
                match self {
                    $(TargetKind::$variant(config) => config.log_warnings(target)),+
                }
            }

            pub fn client(&self, upstream: Upstream) -> Client {
                match self {
                    $(TargetKind::$variant(config) => Client::$variant(config.client(upstream))),+
                }
            }
        }

        /// A target's client.
        #[derive(Debug)]
        pub enum Client {
            $($variant(<$module::$config as Provider>::Client)),+
        }

        impl TargetClient for Client {
            fn endpoints(&self) -> Vec<&'static str> {
                match self {
                    $(Client::$variant(client) => client.endpoints()),+
                }
            }

            fn stale_after(&self, index: usize, default: Duration) -> Duration {
                match self {
                    $(Client::$variant(client) => client.stale_after(index, default)),+
                }
            }

            fn poll_timeout(&self, index: usize, timeout: Duration) -> Duration {
                match self {
                    $(Client::$variant(client) => client.poll_timeout(index, timeout)),+
                }
            }

            fn hurry(&mut self) {
                match self {
                    $(Client::$variant(client) => client.hurry()),+
                }
            }

            fn status_samples(&self, out: &mut Samples) {
                match self {
                    $(Client::$variant(client) => client.status_samples(out)),+
                }
            }

            fn begin_cycle(&mut self) {
                match self {
                    $(Client::$variant(client) => client.begin_cycle()),+
                }
            }

            fn interval_factor(&mut self) -> u32 {
                match self {
                    $(Client::$variant(client) => client.interval_factor()),+
                }
            }

            async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
                match self {
                    $(Client::$variant(client) => client.poll(index, target).await),+
                }
            }

            fn apply_update(&mut self, update: &TargetUpdate) -> Applied {
                match self {
                    $(Client::$variant(client) => client.apply_update(update)),+
                }
            }

            fn render(&self, index: usize, target: &str) -> Option<Samples> {
                match self {
                    $(Client::$variant(client) => client.render(index, target)),+
                }
            }

            fn polled_ids(&self) -> Option<Arc<PolledIds>> {
                match self {
                    $(Client::$variant(client) => client.polled_ids()),+
                }
            }
        }

        /// The demo's targets of every provider on the built-in simulator.
        #[cfg(feature = "simulator")]
        pub fn demo_targets(
            simulator: &crate::simulator::SimulatorHandle,
            interval: Duration,
        ) -> String {
            let mut out = String::new();
            $(out.push_str(&<$module::$config as Provider>::demo_targets(simulator, interval));)+
            out
        }
    };
}

registry! {
    onprem::OnPremTarget => OnPrem,
    cloud_api::CloudApiTarget => CloudApi,
    dialog360::Dialog360Target => Dialog360,
    kapso::KapsoTarget => Kapso,
    kapso_platform::KapsoPlatformTarget => KapsoPlatform,
}
