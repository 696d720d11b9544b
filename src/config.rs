//! The configuration file: strict YAML (an unknown key is an error with its line), `${ENV}`
//! expansion inside values, `*_file` variants for secrets, and every default in one place.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secret::{Secret, SecretSource};

/// Defaults, in one place: the README and `config.example.yaml` quote these.
pub mod defaults {
    use std::time::Duration;

    pub const INTERVAL: Duration = Duration::from_secs(30);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// Data series survive this many intervals of failed polls before they are dropped.
    pub const STALE_AFTER_INTERVALS: u32 = 3;
    pub const MAX_CONCURRENT_POLLS: usize = 64;
    pub const BODY_SIZE_LIMIT: u64 = 1024 * 1024;
    /// Most data series one target exports: a runaway answer (thousands of nodes or
    /// entities) is cut here instead of bloating every scrape.
    pub const SERIES_LIMIT: usize = 1000;
    pub const ONPREM_API_KEY_LEN: std::ops::RangeInclusive<usize> = 12..=128;
    pub const DIALOG360_BASE_URL: &str = "https://waba-v2.360dialog.io";
    pub const KAPSO_BASE_URL: &str = "https://app.kapso.ai";
    pub const GRAPH_BASE_URL: &str = "https://graph.facebook.com";
    /// The first Graph API version with `whatsapp_business_manager_messaging_limit`.
    pub const GRAPH_API_VERSION: &str = "v24.0";
    pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(600);
    /// Rate-limit usage (0..1) above which a Cloud API target polls more slowly.
    pub const USAGE_THRESHOLD: f64 = 0.8;
    /// How often the files named by `target_files` are checked for changes.
    pub const TARGET_FILES_REFRESH: Duration = Duration::from_secs(30);
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Syntax errors, unknown keys and bad values: serde_yaml's message carries the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub global: Global,
    /// Inline targets first, then those of the target files, file by file in name order.
    pub targets: Vec<Arc<Target>>,
    /// The `target_files` globs, resolved against the config file's directory.
    pub target_files: Vec<String>,
    /// Position of each target in `targets`, by name.
    by_name: HashMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub interval: Duration,
    pub timeout: Duration,
    pub stale_after: Option<Duration>,
    pub max_concurrent_polls: usize,
    pub body_size_limit: u64,
    pub series_limit: usize,
    pub target_files_refresh_interval: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub name: String,
    pub base_url: reqwest::Url,
    pub interval: Duration,
    pub timeout: Duration,
    pub stale_after: Duration,
    pub body_size_limit: u64,
    /// Most data series the target exports, over all its endpoints.
    pub series_limit: usize,
    /// User metadata, exported only on `whatsapp_target_info`.
    pub labels: BTreeMap<String, String>,
    pub tls: TlsConfig,
    pub kind: TargetKind,
}

impl Target {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            TargetKind::OnPrem(_) => TargetType::OnPrem.as_str(),
            TargetKind::Dialog360(_) => TargetType::Dialog360.as_str(),
            TargetKind::Kapso(_) => TargetType::Kapso.as_str(),
            TargetKind::CloudApi(_) => TargetType::CloudApi.as_str(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TargetKind {
    OnPrem(OnPremTarget),
    Dialog360(Dialog360Target),
    Kapso(KapsoTarget),
    CloudApi(CloudApiTarget),
}

/// A 360dialog channel: `GET /health_status` with its channel key.
#[derive(Clone, Debug, PartialEq)]
pub struct Dialog360Target {
    pub api_key: SecretSource,
}

/// A Kapso WhatsApp config: `GET /api/v1/whatsapp_configs/{config_id}/health`.
#[derive(Clone, Debug, PartialEq)]
pub struct KapsoTarget {
    pub api_key: SecretSource,
    pub config_id: String,
}

/// Meta's Graph API for a WABA and/or phone numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudApiTarget {
    pub access_token: SecretSource,
    pub api_version: String,
    pub phone_number_ids: Vec<String>,
    pub waba_id: Option<String>,
    pub discover: bool,
    pub discovery_interval: Duration,
    pub usage_threshold: f64,
}

impl CloudApiTarget {
    /// The major version, for fields that exist only from some version on.
    pub fn api_major_version(&self) -> u32 {
        parse_api_version(&self.api_version).map_or(0, |(major, _)| major)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum TargetType {
    #[serde(rename = "onprem")]
    OnPrem,
    #[serde(rename = "dialog360")]
    Dialog360,
    #[serde(rename = "kapso")]
    Kapso,
    #[serde(rename = "cloud_api")]
    CloudApi,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::OnPrem => "onprem",
            TargetType::Dialog360 => "dialog360",
            TargetType::Kapso => "kapso",
            TargetType::CloudApi => "cloud_api",
        }
    }

    fn default_base_url(self) -> Option<&'static str> {
        match self {
            TargetType::OnPrem => None,
            TargetType::Dialog360 => Some(defaults::DIALOG360_BASE_URL),
            TargetType::Kapso => Some(defaults::KAPSO_BASE_URL),
            TargetType::CloudApi => Some(defaults::GRAPH_BASE_URL),
        }
    }

    /// The keys of a target that only some types take.
    fn accepts(self, key: &str) -> bool {
        match self {
            TargetType::OnPrem => matches!(
                key,
                "api_key"
                    | "api_key_file"
                    | "username"
                    | "password"
                    | "password_file"
                    | "bearer_token"
                    | "bearer_token_file"
                    | "endpoints"
            ),
            TargetType::Dialog360 => matches!(key, "api_key" | "api_key_file"),
            TargetType::Kapso => matches!(key, "api_key" | "api_key_file" | "config_id"),
            TargetType::CloudApi => matches!(
                key,
                "access_token"
                    | "access_token_file"
                    | "api_version"
                    | "phone_number_ids"
                    | "waba_id"
                    | "discover"
                    | "discovery_interval"
                    | "usage_threshold"
            ),
        }
    }
}

impl Config {
    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.by_name
            .get(name)
            .and_then(|&i| self.targets.get(i))
            .map(|t| &**t)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            error: source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text, and reads the target files it names; `path`
    /// names the source in errors, and relative `target_files` globs are resolved against
    /// its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            from_yaml(text).map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                message,
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let patterns: Vec<String> = raw
            .target_files
            .iter()
            .map(|pattern| {
                let pattern = Path::new(&pattern.0);
                if pattern.is_absolute() {
                    pattern.display().to_string()
                } else {
                    base.join(pattern).display().to_string()
                }
            })
            .collect();
        let mut files = Vec::new();
        for pattern in &patterns {
            for file in target_file_paths(pattern).map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                message,
            })? {
                let text = std::fs::read_to_string(&file).map_err(|error| ConfigError::Read {
                    path: file.clone(),
                    error,
                })?;
                let targets: Vec<RawTarget> = if text.trim().is_empty() {
                    Vec::new()
                } else {
                    from_yaml(&text).map_err(|message| ConfigError::Parse {
                        path: file.clone(),
                        message,
                    })?
                };
                files.push((file, targets));
            }
        }
        raw.validate(path, patterns, files)
    }
}

/// Deeper than this, brackets are refused before YAML parsing.
const MAX_FLOW_DEPTH: usize = 1000;

/// YAML text, with flow collections (`[`, `{`) nested at most [`MAX_FLOW_DEPTH`] deep.
///
/// The YAML scanner's time grows with the square of the flow nesting depth (100,000
/// unclosed `[` took over a minute), and a reload parses on the async runtime. Brackets
/// are counted everywhere, in strings and comments too: an over-count only refuses a text
/// with a thousand unclosed brackets, which no real configuration has.
fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut depth = 0usize;
    for (line, text_line) in text.lines().enumerate() {
        for c in text_line.chars() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => continue,
            }
            if depth > MAX_FLOW_DEPTH {
                return Err(format!(
                    "brackets nested more than {MAX_FLOW_DEPTH} deep at line {}",
                    line + 1
                ));
            }
        }
    }
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// The files a `target_files` glob matches now, in name order.
pub fn target_file_paths(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let paths = glob::glob(pattern).map_err(|e| format!("target_files {pattern:?}: {e}"))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A fingerprint of what the target files say now: which files match and what they hold.
/// The exporter re-reads them when it changes.
pub fn target_files_fingerprint(patterns: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for pattern in patterns {
        pattern.hash(&mut hasher);
        for file in target_file_paths(pattern).unwrap_or_default() {
            file.hash(&mut hasher);
            match std::fs::read(&file) {
                Ok(bytes) => bytes.hash(&mut hasher),
                Err(e) => e.kind().to_string().hash(&mut hasher),
            }
        }
    }
    hasher.finish()
}

// ---------------------------------------------------------------------------------------
// The file as written. Every struct denies unknown keys, so a typo is an error with a line.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    target_files: Vec<EnvString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    stale_after: Option<HumanDuration>,
    max_concurrent_polls: Option<usize>,
    body_size_limit: Option<ByteSize>,
    series_limit: Option<usize>,
    target_files_refresh_interval: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: EnvString,
    #[serde(rename = "type")]
    kind: TargetType,
    base_url: Option<EnvString>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    stale_after: Option<HumanDuration>,
    body_size_limit: Option<ByteSize>,
    series_limit: Option<usize>,
    endpoints: Option<Vec<OnPremEndpoint>>,
    #[serde(default)]
    labels: BTreeMap<String, EnvString>,
    #[serde(default)]
    tls_config: RawTls,
    api_key: Option<EnvString>,
    api_key_file: Option<EnvString>,
    username: Option<EnvString>,
    password: Option<EnvString>,
    password_file: Option<EnvString>,
    bearer_token: Option<EnvString>,
    bearer_token_file: Option<EnvString>,
    config_id: Option<Id>,
    access_token: Option<EnvString>,
    access_token_file: Option<EnvString>,
    api_version: Option<EnvString>,
    phone_number_ids: Option<Vec<Id>>,
    waba_id: Option<Id>,
    discover: Option<bool>,
    discovery_interval: Option<HumanDuration>,
    usage_threshold: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<EnvString>,
    cert_file: Option<EnvString>,
    key_file: Option<EnvString>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// Label names the exporter sets itself on `whatsapp_target_info`.
const RESERVED_LABELS: [&str; 2] = ["target", "type"];

impl RawConfig {
    fn validate(
        self,
        path: &Path,
        target_files: Vec<String>,
        files: Vec<(PathBuf, Vec<RawTarget>)>,
    ) -> Result<Config, ConfigError> {
        let invalid = |path: &Path, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let global = self
            .global
            .validate()
            .map_err(|message| invalid(path, message))?;
        let mut seen = HashSet::new();
        let mut targets = Vec::with_capacity(self.targets.len());
        let sources = std::iter::once((path.to_owned(), "targets", self.targets))
            .chain(files.into_iter().map(|(file, list)| (file, "", list)));
        for (source, prefix, list) in sources {
            for (index, raw) in list.into_iter().enumerate() {
                let name = raw.name.0.clone();
                let context = format!("{prefix}[{index}] ({name:?})");
                if name.is_empty() {
                    return Err(invalid(
                        &source,
                        format!("{prefix}[{index}]: name must not be empty"),
                    ));
                }
                if !seen.insert(name.clone()) {
                    return Err(invalid(
                        &source,
                        format!("{context}: duplicate target name {name:?}"),
                    ));
                }
                let target = raw
                    .validate(&global)
                    .map_err(|message| invalid(&source, format!("{context}: {message}")))?;
                targets.push(Arc::new(target));
            }
        }
        let by_name = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(Config {
            global,
            targets,
            target_files,
            by_name,
        })
    }
}

impl RawGlobal {
    fn validate(self) -> Result<Global, String> {
        let interval = self.interval.map_or(defaults::INTERVAL, |d| d.0);
        let timeout = self.timeout.map_or(defaults::TIMEOUT, |d| d.0);
        let global = Global {
            interval,
            timeout,
            stale_after: self.stale_after.map(|d| d.0),
            max_concurrent_polls: self
                .max_concurrent_polls
                .unwrap_or(defaults::MAX_CONCURRENT_POLLS),
            body_size_limit: self
                .body_size_limit
                .map_or(defaults::BODY_SIZE_LIMIT, |b| b.0),
            series_limit: self.series_limit.unwrap_or(defaults::SERIES_LIMIT),
            target_files_refresh_interval: self
                .target_files_refresh_interval
                .map_or(defaults::TARGET_FILES_REFRESH, |d| d.0),
        };
        if global.target_files_refresh_interval.is_zero() {
            return Err("global.target_files_refresh_interval must be greater than 0".into());
        }
        check_timing(
            "global",
            global.interval,
            global.timeout,
            global.stale_after,
        )?;
        if global.body_size_limit == 0 {
            return Err("global.body_size_limit must be at least 1 byte".into());
        }
        if global.series_limit == 0 {
            return Err("global.series_limit must be at least 1".into());
        }
        if global.max_concurrent_polls == 0 {
            return Err("global.max_concurrent_polls must be at least 1".into());
        }
        Ok(global)
    }
}

fn check_timing(
    context: &str,
    interval: Duration,
    timeout: Duration,
    stale_after: Option<Duration>,
) -> Result<(), String> {
    if interval.is_zero() {
        return Err(format!("{context}: interval must be greater than 0"));
    }
    if timeout.is_zero() {
        return Err(format!("{context}: timeout must be greater than 0"));
    }
    if timeout > interval {
        return Err(format!(
            "{context}: timeout ({}) must not be longer than interval ({})",
            humantime::format_duration(timeout),
            humantime::format_duration(interval)
        ));
    }
    if let Some(stale_after) = stale_after {
        if stale_after < interval {
            return Err(format!(
                "{context}: stale_after ({}) must not be shorter than interval ({})",
                humantime::format_duration(stale_after),
                humantime::format_duration(interval)
            ));
        }
    }
    Ok(())
}

impl RawTarget {
    fn validate(self, global: &Global) -> Result<Target, String> {
        let interval = self.interval.map_or(global.interval, |d| d.0);
        let timeout = self.timeout.map_or(global.timeout.min(interval), |d| d.0);
        let stale_after = self
            .stale_after
            .map(|d| d.0)
            .or(global.stale_after)
            .unwrap_or(interval * defaults::STALE_AFTER_INTERVALS);
        if self.body_size_limit.is_some_and(|b| b.0 == 0) {
            return Err("body_size_limit must be at least 1 byte".into());
        }
        if self.series_limit == Some(0) {
            return Err("series_limit must be at least 1".into());
        }
        check_timing("timing", interval, timeout, Some(stale_after))
            .map_err(|e| e.trim_start_matches("timing: ").to_owned())?;
        for name in self.labels.keys() {
            if !is_label_name(name) {
                return Err(format!(
                    "labels: {name:?} is not a valid Prometheus label name"
                ));
            }
            if RESERVED_LABELS.contains(&name.as_str()) || name.starts_with("__") {
                return Err(format!("labels: {name:?} is reserved by the exporter"));
            }
        }
        self.check_keys_apply()?;
        let base_url = match (&self.base_url, self.kind.default_base_url()) {
            (Some(url), _) => parse_base_url(&url.0)?,
            (None, Some(default)) => parse_base_url(default)?,
            (None, None) => {
                return Err(format!(
                    "base_url is required for type {}",
                    self.kind.as_str()
                ))
            }
        };
        let kind = match self.kind {
            TargetType::OnPrem => TargetKind::OnPrem(self.onprem()?),
            TargetType::Dialog360 => TargetKind::Dialog360(Dialog360Target {
                api_key: self.required_secret("api_key", &self.api_key, &self.api_key_file)?,
            }),
            TargetType::Kapso => TargetKind::Kapso(self.kapso()?),
            TargetType::CloudApi => TargetKind::CloudApi(self.cloud_api(interval)?),
        };
        let tls = TlsConfig {
            ca_file: self.tls_config.ca_file.map(|p| PathBuf::from(p.0)),
            cert_file: self.tls_config.cert_file.map(|p| PathBuf::from(p.0)),
            key_file: self.tls_config.key_file.map(|p| PathBuf::from(p.0)),
            insecure_skip_verify: self.tls_config.insecure_skip_verify,
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err("tls_config: cert_file and key_file go together".into());
        }
        Ok(Target {
            name: self.name.0,
            base_url,
            interval,
            timeout,
            stale_after,
            body_size_limit: self.body_size_limit.map_or(global.body_size_limit, |b| b.0),
            series_limit: self.series_limit.unwrap_or(global.series_limit),
            labels: self.labels.into_iter().map(|(k, v)| (k, v.0)).collect(),
            tls,
            kind,
        })
    }

    /// Every type-specific key set must belong to this target's type.
    fn check_keys_apply(&self) -> Result<(), String> {
        let set = [
            ("api_key", self.api_key.is_some()),
            ("api_key_file", self.api_key_file.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("password_file", self.password_file.is_some()),
            ("bearer_token", self.bearer_token.is_some()),
            ("bearer_token_file", self.bearer_token_file.is_some()),
            ("endpoints", self.endpoints.is_some()),
            ("config_id", self.config_id.is_some()),
            ("access_token", self.access_token.is_some()),
            ("access_token_file", self.access_token_file.is_some()),
            ("api_version", self.api_version.is_some()),
            ("phone_number_ids", self.phone_number_ids.is_some()),
            ("waba_id", self.waba_id.is_some()),
            ("discover", self.discover.is_some()),
            ("discovery_interval", self.discovery_interval.is_some()),
            ("usage_threshold", self.usage_threshold.is_some()),
        ];
        match set
            .iter()
            .find(|(key, present)| *present && !self.kind.accepts(key))
        {
            Some((key, _)) => Err(format!(
                "{key} does not apply to type {}",
                self.kind.as_str()
            )),
            None => Ok(()),
        }
    }

    fn required_secret(
        &self,
        key: &str,
        inline: &Option<EnvString>,
        file: &Option<EnvString>,
    ) -> Result<SecretSource, String> {
        secret_source(key, inline, file)?.ok_or_else(|| {
            format!(
                "{key} or {key}_file is required for type {}",
                self.kind.as_str()
            )
        })
    }

    fn kapso(&self) -> Result<KapsoTarget, String> {
        let api_key = self.required_secret("api_key", &self.api_key, &self.api_key_file)?;
        let config_id = match &self.config_id {
            Some(id) if !id.0.is_empty() => id.0.clone(),
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

    fn cloud_api(&self, interval: Duration) -> Result<CloudApiTarget, String> {
        let access_token =
            self.required_secret("access_token", &self.access_token, &self.access_token_file)?;
        let api_version = self
            .api_version
            .as_ref()
            .map_or_else(|| defaults::GRAPH_API_VERSION.to_owned(), |v| v.0.clone());
        if parse_api_version(&api_version).is_none() {
            return Err(format!(
                "api_version {api_version:?} is not of the form v24.0"
            ));
        }
        let phone_number_ids: Vec<String> = self
            .phone_number_ids
            .iter()
            .flatten()
            .map(|id| id.0.clone())
            .collect();
        let waba_id = self.waba_id.as_ref().map(|id| id.0.clone());
        for id in phone_number_ids.iter().chain(&waba_id) {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{id:?} is not a Graph API id (digits only)"));
            }
        }
        let mut unique = HashSet::new();
        if let Some(dup) = phone_number_ids.iter().find(|id| !unique.insert(*id)) {
            return Err(format!("phone_number_ids lists {dup} twice"));
        }
        let discover = self.discover.unwrap_or(false);
        if discover && waba_id.is_none() {
            return Err("discover: true needs waba_id".into());
        }
        if phone_number_ids.is_empty() && waba_id.is_none() {
            return Err("set phone_number_ids, waba_id, or both".into());
        }
        let discovery_interval = self
            .discovery_interval
            .map_or(defaults::DISCOVERY_INTERVAL, |d| d.0);
        if self.discovery_interval.is_some() && !discover {
            return Err("discovery_interval needs discover: true".into());
        }
        if discover && discovery_interval < interval {
            return Err(format!(
                "discovery_interval ({}) must not be shorter than interval ({})",
                humantime::format_duration(discovery_interval),
                humantime::format_duration(interval)
            ));
        }
        let usage_threshold = self.usage_threshold.unwrap_or(defaults::USAGE_THRESHOLD);
        if !(usage_threshold > 0.0 && usage_threshold <= 1.0) {
            return Err(format!(
                "usage_threshold must be above 0 and at most 1 (a ratio), not {usage_threshold}"
            ));
        }
        Ok(CloudApiTarget {
            access_token,
            api_version,
            phone_number_ids,
            waba_id,
            discover,
            discovery_interval,
            usage_threshold,
        })
    }

    fn onprem(&self) -> Result<OnPremTarget, String> {
        let api_key = secret_source("api_key", &self.api_key, &self.api_key_file)?;
        if let Some(source) = &api_key {
            check_api_key_length(source)?;
        }
        let password = secret_source("password", &self.password, &self.password_file)?;
        let login = match (&self.username, password) {
            (Some(username), Some(password)) => Some(Login {
                username: username.0.clone(),
                password,
            }),
            (None, None) => None,
            (Some(_), None) => return Err("username needs password or password_file".into()),
            (None, Some(_)) => return Err("password needs username".into()),
        };
        let bearer_token =
            secret_source("bearer_token", &self.bearer_token, &self.bearer_token_file)?;
        if login.is_some() && bearer_token.is_some() {
            return Err("set either username/password (login) or bearer_token, not both".into());
        }
        let has_bearer = login.is_some() || bearer_token.is_some();
        if api_key.is_none() && !has_bearer {
            return Err(
                "no credentials: set api_key, username and password, or bearer_token".into(),
            );
        }
        let endpoints = match &self.endpoints {
            Some(list) => {
                let mut list = list.clone();
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
}

fn secret_source(
    key: &str,
    inline: &Option<EnvString>,
    file: &Option<EnvString>,
) -> Result<Option<SecretSource>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("set {key} or {key}_file, not both")),
        (Some(value), None) if value.0.is_empty() => Err(format!("{key} must not be empty")),
        (Some(value), None) => Ok(Some(SecretSource::Inline(Secret::new(value.0.clone())))),
        (None, Some(path)) => Ok(Some(SecretSource::File(PathBuf::from(&path.0)))),
        (None, None) => Ok(None),
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
    if defaults::ONPREM_API_KEY_LEN.contains(&len) {
        Ok(())
    } else {
        Err(format!(
            "api_key must be 12 to 128 characters long (it has {len})"
        ))
    }
}

pub fn check_onprem_api_key(key: &Secret) -> Result<(), String> {
    check_api_key_length(&SecretSource::Inline(key.clone()))
}

fn parse_base_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("base_url {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("base_url {text:?}: scheme must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base_url must not carry credentials: use the target's auth keys".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("base_url {text:?}: no query or fragment allowed"));
    }
    Ok(url)
}

/// `v24.0` -> (24, 0).
fn parse_api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.strip_prefix('v')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------
// Value types with their own parsing; their errors go through serde, so serde_yaml adds the
// line and column.

/// A string value with `${VAR}` replaced by the environment variable (`$$` for a literal
/// `$`). Expansion happens on values, after YAML parsing, so a value cannot change the
/// structure of the file.
#[derive(Clone, Debug, PartialEq)]
struct EnvString(String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        expand_env(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

fn expand_env(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated ${ in value".to_owned())?;
            let name = &tail[..end];
            if !is_label_name(name) {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A Graph API, Kapso or 360dialog id: YAML reads long digit strings as numbers, so both
/// forms are taken.
#[derive(Clone, Debug, PartialEq)]
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(deserializer)? {
            serde_yaml::Value::Number(n) if n.as_u64().is_some() => Ok(Id(n.to_string())),
            serde_yaml::Value::String(text) => expand_env(&text, |name| std::env::var(name).ok())
                .map(Id)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected an id (a string or a whole number), not {}",
                serde_yaml::to_string(&other).unwrap_or_default().trim()
            ))),
        }
    }
}

/// A duration in humantime form: `30s`, `5m`, `1h30m`.
#[derive(Clone, Copy, Debug)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        humantime::parse_duration(raw.trim())
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {raw:?}: {e}")))
    }
}

/// A size in bytes: a plain number or a number with B, KiB, MiB, GiB (or KB, MB, GB).
#[derive(Clone, Copy, Debug)]
struct ByteSize(u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => parse_byte_size(&text)
                .map(ByteSize)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid size {text:?}"))),
        }
    }
}

fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl fmt::Display for OnPremEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("test.yaml")).map_err(|e| e.to_string())
    }

    fn onprem_of(target: &Target) -> &OnPremTarget {
        match &target.kind {
            TargetKind::OnPrem(onprem) => onprem,
            other => panic!("not onprem: {other:?}"),
        }
    }

    fn cloud_of(target: &Target) -> &CloudApiTarget {
        match &target.kind {
            TargetKind::CloudApi(cloud) => cloud,
            other => panic!("not cloud_api: {other:?}"),
        }
    }

    #[test]
    fn target_files_are_read_next_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::create_dir(dir.path().join("targets")).unwrap();
        std::fs::write(
            dir.path().join("targets/b.yaml"),
            "- name: from-b\n  type: dialog360\n  api_key: k\n",
        )
        .unwrap();
        // JSON is read as YAML.
        std::fs::write(
            dir.path().join("targets/a.json"),
            r#"[{"name": "from-a", "type": "kapso", "api_key": "k", "config_id": "c1"}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("targets/empty.yaml"), "").unwrap();
        let text = format!("{MINIMAL}target_files: [\"targets/*.yaml\", \"targets/*.json\"]\n");
        let parsed = Config::parse(&text, &config).unwrap();
        let names: Vec<&str> = parsed.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "from-b", "from-a"]);
        assert_eq!(
            parsed.target("from-a").map(|t| t.type_name()),
            Some("kapso")
        );
        assert!(parsed.target("nope").is_none());
        assert_eq!(
            parsed.target_files,
            vec![
                dir.path().join("targets/*.yaml").display().to_string(),
                dir.path().join("targets/*.json").display().to_string()
            ]
        );
        let before = target_files_fingerprint(&parsed.target_files);
        assert_eq!(before, target_files_fingerprint(&parsed.target_files));
        std::fs::write(
            dir.path().join("targets/c.yaml"),
            "- name: from-c\n  type: dialog360\n  api_key: k\n",
        )
        .unwrap();
        assert_ne!(before, target_files_fingerprint(&parsed.target_files));
    }

    #[test]
    fn target_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let file = dir.path().join("t.yaml");
        let text = format!("{MINIMAL}target_files: [t.yaml]\n");
        std::fs::write(
            &file,
            "- name: x\n  type: dialog360\n  api_key: k\n  intervall: 5s\n",
        )
        .unwrap();
        let err = Config::parse(&text, &config).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: .[0]: unknown field `intervall`",
                file.display()
            )),
            "{err}"
        );
        assert!(err.contains("line 4"), "{err}");
        std::fs::write(&file, "- name: a\n  type: dialog360\n  api_key: k\n").unwrap();
        let err = Config::parse(&text, &config).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: [0] (\"a\"): duplicate target name \"a\"",
                file.display()
            )
        );
        std::fs::write(&file, "- name: b\n  type: dialog360\n").unwrap();
        let err = Config::parse(&text, &config).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: [0] (\"b\"): api_key or api_key_file is required for type dialog360",
                file.display()
            )
        );
    }

    #[test]
    fn provider_types_with_their_defaults() {
        let text = "targets:\n\
            - name: d\n  type: dialog360\n  api_key_file: /run/d360\n\
            - name: k\n  type: kapso\n  api_key: kapso-key\n  config_id: abc-123\n\
            - name: c\n  type: cloud_api\n  access_token: tok\n  phone_number_ids: [106540352242922, \"106540352242923\"]\n";
        let config = parse(text).unwrap();
        assert_eq!(
            config.targets[0].base_url.as_str(),
            "https://waba-v2.360dialog.io/"
        );
        assert_eq!(config.targets[0].type_name(), "dialog360");
        assert_eq!(config.targets[1].base_url.as_str(), "https://app.kapso.ai/");
        assert_eq!(
            config.targets[1].kind,
            TargetKind::Kapso(KapsoTarget {
                api_key: SecretSource::Inline(Secret::new("kapso-key")),
                config_id: "abc-123".into()
            })
        );
        assert_eq!(
            config.targets[2].base_url.as_str(),
            "https://graph.facebook.com/"
        );
        let cloud = cloud_of(&config.targets[2]);
        assert_eq!(
            cloud.phone_number_ids,
            vec!["106540352242922", "106540352242923"]
        );
        assert_eq!(cloud.api_version, "v24.0");
        assert_eq!(cloud.api_major_version(), 24);
        assert_eq!(cloud.discovery_interval, Duration::from_secs(600));
        assert_eq!(cloud.usage_threshold, 0.8);
        assert!(!cloud.discover);
    }

    #[test]
    fn keys_of_another_type_are_errors() {
        let err = parse(&format!("{MINIMAL}    config_id: x\n")).unwrap_err();
        assert!(
            err.ends_with("config_id does not apply to type onprem"),
            "{err}"
        );
        let err =
            parse("targets:\n  - name: d\n    type: dialog360\n    api_key: k\n    waba_id: 1\n")
                .unwrap_err();
        assert!(
            err.ends_with("waba_id does not apply to type dialog360"),
            "{err}"
        );
        let err = parse("targets:\n  - name: d\n    type: dialog360\n").unwrap_err();
        assert!(
            err.ends_with("api_key or api_key_file is required for type dialog360"),
            "{err}"
        );
        let err = parse("targets:\n  - name: k\n    type: kapso\n    api_key: k\n").unwrap_err();
        assert!(
            err.ends_with("config_id is required for type kapso"),
            "{err}"
        );
        let err = parse(
            "targets:\n  - name: k\n    type: kapso\n    api_key: k\n    config_id: \"..\"\n",
        )
        .unwrap_err();
        assert!(
            err.ends_with("config_id \"..\" may hold only letters, digits, '-' and '_'"),
            "{err}"
        );
        let err = parse(
            "targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n    waba_id: -5\n",
        )
        .unwrap_err();
        assert!(
            err.contains("expected an id (a string or a whole number), not -5"),
            "{err}"
        );
        // A long cloud_api interval without discovery needs no discovery_interval.
        assert!(parse("targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n    waba_id: 1\n    interval: 15m\n").is_ok());
    }

    #[test]
    fn cloud_api_rules() {
        let base = "targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n";
        let cases = [
            ("", "set phone_number_ids, waba_id, or both"),
            (
                "    discover: true\n    phone_number_ids: [1]\n",
                "discover: true needs waba_id",
            ),
            (
                "    waba_id: abc\n",
                "\"abc\" is not a Graph API id (digits only)",
            ),
            (
                "    waba_id: 1\n    api_version: \"24\"\n",
                "api_version \"24\" is not of the form v24.0",
            ),
            (
                "    waba_id: 1\n    usage_threshold: 80\n",
                "usage_threshold must be above 0 and at most 1 (a ratio), not 80",
            ),
            (
                "    phone_number_ids: [1, 1]\n",
                "phone_number_ids lists 1 twice",
            ),
            (
                "    waba_id: 1\n    discover: true\n    discovery_interval: 10s\n",
                "discovery_interval (10s) must not be shorter than interval (30s)",
            ),
            (
                "    waba_id: 1\n    discovery_interval: 1h\n",
                "discovery_interval needs discover: true",
            ),
            (
                "    waba_id: 1\n    api_version: v+24.0\n",
                "api_version \"v+24.0\" is not of the form v24.0",
            ),
        ];
        for (extra, expected) in cases {
            let err = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(err.ends_with(expected), "{extra}: {err}");
        }
        let ok = parse(&format!(
            "{base}    waba_id: 102290129340398\n    discover: true\n    api_version: v23.0\n"
        ))
        .unwrap();
        let cloud = cloud_of(&ok.targets[0]);
        assert_eq!(cloud.waba_id.as_deref(), Some("102290129340398"));
        assert_eq!(cloud.api_major_version(), 23);
        assert!(cloud.discover);
    }

    const MINIMAL: &str = "targets:\n  - name: a\n    type: onprem\n    base_url: https://wa.example.com\n    api_key: abcdefghijkl\n";

    #[test]
    fn defaults_apply() {
        let config = parse(MINIMAL).unwrap();
        let target = &config.targets[0];
        assert_eq!(target.interval, Duration::from_secs(30));
        assert_eq!(target.timeout, Duration::from_secs(10));
        assert_eq!(target.stale_after, Duration::from_secs(90));
        assert_eq!(target.body_size_limit, 1 << 20);
        assert_eq!(config.global.max_concurrent_polls, 64);
        let onprem = onprem_of(target);
        assert_eq!(onprem.endpoints, vec![OnPremEndpoint::Health]);
    }

    #[test]
    fn empty_file_is_a_config_without_targets() {
        assert_eq!(parse("").unwrap().targets.len(), 0);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse(&format!("{MINIMAL}    intervall: 5s\n")).unwrap_err();
        assert!(
            err.starts_with("test.yaml: targets[0]: unknown field `intervall`"),
            "{err}"
        );
        assert!(err.contains("line 6"), "{err}");
        let err = parse("global:\n  scrape_interval: 5s\n").unwrap_err();
        assert!(err.contains("unknown field `scrape_interval`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_type_names_line() {
        let err = parse("targets:\n  - name: a\n    type: telegram\n").unwrap_err();
        assert!(err.contains("unknown variant `telegram`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn bad_duration_names_line() {
        let err = parse(&format!("global:\n  interval: soon\n{MINIMAL}")).unwrap_err();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn env_expansion_in_values() {
        let lookup = |name: &str| (name == "KEY").then(|| "v4lue".to_owned());
        assert_eq!(expand_env("a${KEY}b", lookup).unwrap(), "av4lueb");
        assert_eq!(
            expand_env("cost $$5 and $x", lookup).unwrap(),
            "cost $5 and $x"
        );
        assert_eq!(
            expand_env("${MISSING}", lookup).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert_eq!(
            expand_env("${KEY", lookup).unwrap_err(),
            "unterminated ${ in value"
        );
    }

    #[test]
    fn env_expansion_through_the_parser() {
        std::env::set_var("WAE_TEST_API_KEY", "key-from-the-environment");
        let text = MINIMAL.replace("abcdefghijkl", "${WAE_TEST_API_KEY}");
        let config = parse(&text).unwrap();
        let onprem = onprem_of(&config.targets[0]);
        assert_eq!(
            onprem.api_key,
            Some(SecretSource::Inline(Secret::new(
                "key-from-the-environment"
            )))
        );
        let err = parse(&MINIMAL.replace("abcdefghijkl", "${WAE_TEST_UNSET_VAR}")).unwrap_err();
        assert!(
            err.contains("environment variable WAE_TEST_UNSET_VAR is not set"),
            "{err}"
        );
        // serde_yaml places errors raised inside a value at the start of the enclosing
        // mapping: the target's first line.
        assert!(err.contains("line 2 column 5"), "{err}");
    }

    #[test]
    fn api_key_length_is_checked_without_echoing_it() {
        let err = parse(&MINIMAL.replace("abcdefghijkl", "short-key")).unwrap_err();
        assert_eq!(
            err,
            "test.yaml: targets[0] (\"a\"): api_key must be 12 to 128 characters long (it has 9)"
        );
        let long = "k".repeat(129);
        let err = parse(&MINIMAL.replace("abcdefghijkl", &long)).unwrap_err();
        assert!(err.ends_with("(it has 129)"), "{err}");
    }

    #[test]
    fn support_with_only_an_api_key_is_an_error() {
        let err = parse(&format!("{MINIMAL}    endpoints: [health, support]\n")).unwrap_err();
        assert!(
            err.contains("endpoint support needs a Bearer token"),
            "{err}"
        );
    }

    #[test]
    fn login_enables_support_by_default() {
        let text = format!("{MINIMAL}    username: admin\n    password_file: /run/pw\n");
        let config = parse(&text).unwrap();
        let onprem = onprem_of(&config.targets[0]);
        assert_eq!(
            onprem.endpoints,
            vec![OnPremEndpoint::Health, OnPremEndpoint::Support]
        );
        assert_eq!(
            onprem.login,
            Some(Login {
                username: "admin".into(),
                password: SecretSource::File("/run/pw".into())
            })
        );
    }

    #[test]
    fn conflicting_and_missing_credentials() {
        let both = format!("{MINIMAL}    api_key_file: /k\n");
        assert!(parse(&both)
            .unwrap_err()
            .ends_with("set api_key or api_key_file, not both"));
        let none = "targets:\n  - name: a\n    type: onprem\n    base_url: http://h\n";
        assert!(parse(none)
            .unwrap_err()
            .ends_with("no credentials: set api_key, username and password, or bearer_token"));
        let user_only = format!("{MINIMAL}    username: admin\n");
        assert!(parse(&user_only)
            .unwrap_err()
            .ends_with("username needs password or password_file"));
    }

    #[test]
    fn duplicate_names_and_bad_labels() {
        let dup = format!("{MINIMAL}{}", MINIMAL.trim_start_matches("targets:\n"));
        assert_eq!(
            parse(&dup).unwrap_err(),
            "test.yaml: targets[1] (\"a\"): duplicate target name \"a\""
        );
        let bad = format!("{MINIMAL}    labels:\n      team-name: x\n");
        assert!(parse(&bad)
            .unwrap_err()
            .ends_with("labels: \"team-name\" is not a valid Prometheus label name"));
        let reserved = format!("{MINIMAL}    labels:\n      target: x\n");
        assert!(parse(&reserved)
            .unwrap_err()
            .ends_with("labels: \"target\" is reserved by the exporter"));
    }

    #[test]
    fn timing_rules() {
        let slow = format!("{MINIMAL}    interval: 5s\n    timeout: 6s\n");
        assert!(parse(&slow)
            .unwrap_err()
            .ends_with("timeout (6s) must not be longer than interval (5s)"));
        let short_stale = format!("{MINIMAL}    interval: 1m\n    stale_after: 30s\n");
        assert!(parse(&short_stale)
            .unwrap_err()
            .ends_with("stale_after (30s) must not be shorter than interval (1m)"));
        // A global stale_after too short for one target's interval names that target.
        let global_stale =
            format!("global:\n  stale_after: 1m\n{MINIMAL}    interval: 2m\n    timeout: 10s\n");
        assert_eq!(
            parse(&global_stale).unwrap_err(),
            "test.yaml: targets[0] (\"a\"): stale_after (1m) must not be shorter than interval (2m)"
        );
        let zero = format!("{MINIMAL}    body_size_limit: 0\n");
        assert!(parse(&zero)
            .unwrap_err()
            .ends_with("body_size_limit must be at least 1 byte"));
        let short_interval = format!("{MINIMAL}    interval: 5s\n");
        let target = &parse(&short_interval).unwrap().targets[0];
        assert_eq!(target.timeout, Duration::from_secs(5));
        assert_eq!(target.stale_after, Duration::from_secs(15));
    }

    #[test]
    fn base_url_rules() {
        let prefixed = MINIMAL.replace("https://wa.example.com", "https://wa.example.com/waba/");
        assert_eq!(
            parse(&prefixed).unwrap().targets[0].base_url.path(),
            "/waba/"
        );
        let creds = MINIMAL.replace("https://wa.example.com", "https://u:p@wa.example.com");
        assert!(parse(&creds)
            .unwrap_err()
            .ends_with("base_url must not carry credentials: use the target's auth keys"));
        let ftp = MINIMAL.replace("https://wa.example.com", "ftp://wa.example.com");
        assert!(parse(&ftp)
            .unwrap_err()
            .contains("scheme must be http or https"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("512"), Some(512));
        assert_eq!(parse_byte_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_byte_size("10 KB"), Some(10_000));
        assert_eq!(parse_byte_size("lots"), None);
        let text = format!("global:\n  body_size_limit: 64KiB\n{MINIMAL}");
        assert_eq!(parse(&text).unwrap().targets[0].body_size_limit, 65536);
    }

    #[test]
    fn series_limits() {
        assert_eq!(parse(MINIMAL).unwrap().targets[0].series_limit, 1000);
        let global = format!("global:\n  series_limit: 50\n{MINIMAL}");
        assert_eq!(parse(&global).unwrap().targets[0].series_limit, 50);
        let own = format!("global:\n  series_limit: 50\n{MINIMAL}    series_limit: 20000\n");
        assert_eq!(parse(&own).unwrap().targets[0].series_limit, 20000);
        assert_eq!(
            parse(&format!("global:\n  series_limit: 0\n{MINIMAL}")).unwrap_err(),
            "test.yaml: global.series_limit must be at least 1"
        );
        assert_eq!(
            parse(&format!("{MINIMAL}    series_limit: 0\n")).unwrap_err(),
            "test.yaml: targets[0] (\"a\"): series_limit must be at least 1"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // Refused before the YAML scanner, whose time grows with the square of the depth.
        let deep = format!("global: {}", "[".repeat(100_000));
        assert_eq!(
            parse(&deep).unwrap_err(),
            "test.yaml: brackets nested more than 1000 deep at line 1"
        );
        let deep = format!(
            "targets:\n  - name: x\n    labels: {}",
            "{a: ".repeat(2_000)
        );
        assert_eq!(
            parse(&deep).unwrap_err(),
            "test.yaml: brackets nested more than 1000 deep at line 3"
        );
        // Up to the limit, the YAML parser has the say.
        let deep = format!("global: {}{}", "[".repeat(1000), "]".repeat(1000));
        let error = parse(&deep).unwrap_err();
        assert!(error.contains("expected struct RawGlobal"), "{error}");
    }
}
