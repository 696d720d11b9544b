//! The configuration file: strict YAML (an unknown key is an error with its line), `${ENV}`
//! expansion inside values, `*_file` variants for secrets, and every default in one place.
//!
//! The keys every target has are read here; the keys of a target's type belong to its
//! provider ([`crate::providers`]), which validates them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config_split::{split_config, split_target_file, PLACEHOLDER};
pub use crate::config_values::defaults;
use crate::config_values::{is_label_name, ByteSize, EnvString, HumanDuration};
use crate::cores::on_every_core;
pub use crate::providers::TargetKind;
use crate::providers::{Client, RawKeys, TargetSettings, Type};
pub use crate::upstream::TlsConfig;
use crate::upstream::Upstream;

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
    /// The webhook receiver's section; `None`: the receiver is off.
    pub webhooks: Option<crate::webhooks::config::WebhooksConfig>,
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
    /// The provider and what it was configured with.
    pub kind: TargetKind,
}

impl Target {
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// How the target's client reaches its upstream through `http`.
    pub fn upstream(&self, http: reqwest::Client) -> Upstream {
        Upstream {
            http,
            base_url: self.base_url.clone(),
            body_limit: self.body_size_limit,
        }
    }

    /// A new client of the target's provider, talking through `http`.
    pub fn client(&self, http: reqwest::Client) -> Client {
        self.kind.client(self.upstream(http))
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
        Config::parse(&Config::read(path)?, path)
    }

    /// The text of a config file, for [`Config::parse`].
    pub fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            error: source,
        })
    }

    /// Parses and validates config text, and reads the target files it names; `path`
    /// names the source in errors, and relative `target_files` globs are resolved against
    /// its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_in_pieces_of(text, path, TARGETS_PER_PIECE)
    }

    /// [`Config::parse`], long lists of targets read `per_piece` targets at a time.
    fn parse_in_pieces_of(
        text: &str,
        path: &Path,
        per_piece: usize,
    ) -> Result<Config, ConfigError> {
        // A configuration with an error anywhere is read again, whole and in order: the
        // error it reports is the first in the files, with the lines and target indexes of
        // the whole documents.
        match read_in_pieces(text, path, per_piece) {
            Some(config) => Ok(config),
            None => Config::parse_in_order(text, path),
        }
    }

    /// Reads the config file, then each target file, each document whole, validates what
    /// they say in order, and stops at the first error.
    fn parse_in_order(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |path: &Path, message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let raw = read_config_document(text, false).map_err(|m| parse_error(path, m))?;
        let patterns = resolve_target_files(&raw.target_files, path);
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
                let targets = check_nesting(&text)
                    .and_then(|()| read_targets(&text))
                    .map_err(|m| parse_error(&file, m))?;
                files.push((file, targets));
            }
        }
        raw.validate(path, patterns, files)
    }
}

/// Targets a piece of a long list holds (see [`crate::config_split`]): with 10,000
/// targets, enough pieces to keep every core busy to the end, and each small enough that
/// the parser's buffers are reused from piece to piece rather than grown.
const TARGETS_PER_PIECE: usize = 128;

/// Reads a configuration with its long lists of targets cut into pieces, read and
/// validated on every core. `None` when anything is wrong (the whole reading then says
/// what), and when a piece does not read alone (an alias to another piece's anchor).
fn read_in_pieces(text: &str, path: &Path, per_piece: usize) -> Option<Config> {
    check_nesting(text).ok()?;
    let split = split_config(text, per_piece);
    let mut raw = match &split {
        Some(split) => read_config_document(split.rest.as_deref()?, true).ok()?,
        None => read_config_document(text, false).ok()?,
    };
    let global = std::mem::take(&mut raw.global).validate().ok()?;
    let patterns = resolve_target_files(&raw.target_files, path);
    let mut file_texts = Vec::new();
    for pattern in &patterns {
        for file in target_file_paths(pattern).ok()? {
            let text = std::fs::read_to_string(&file).ok()?;
            check_nesting(&text).ok()?;
            file_texts.push(text);
        }
    }
    // Inline targets first, then those of the files, in order.
    let mut pieces: Vec<&str> = split.map_or_else(Vec::new, |s| s.pieces);
    for text in &file_texts {
        match split_target_file(text, per_piece) {
            Some(split) => pieces.extend(split.pieces),
            None => pieces.push(text),
        }
    }
    let mut targets = Vec::new();
    for raw_target in std::mem::take(&mut raw.targets) {
        targets.push(Arc::new(raw_target.validate(&global).ok()?));
    }
    let read = on_every_core(&pieces, 1, |piece| {
        read_targets(piece)
            .ok()?
            .into_iter()
            .map(|raw| raw.validate(&global).ok().map(Arc::new))
            .collect::<Option<Vec<_>>>()
    });
    for piece in read {
        targets.extend(piece?);
    }
    if targets.iter().any(|target| target.name.is_empty()) {
        return None;
    }
    let config = Config::assemble(global, targets, patterns, raw.webhooks, path).ok()?;
    // A name twice: fewer names than targets.
    (config.by_name.len() == config.targets.len()).then_some(config)
}

/// The `target_files` globs, relative ones resolved against the config file's directory.
fn resolve_target_files(globs: &[EnvString], path: &Path) -> Vec<String> {
    let base = path.parent().unwrap_or(Path::new("."));
    globs
        .iter()
        .map(|pattern| {
            let pattern = Path::new(&pattern.0);
            if pattern.is_absolute() {
                pattern.display().to_string()
            } else {
                base.join(pattern).display().to_string()
            }
        })
        .collect()
}

/// The config file as written; with `placeholder`, the rest of a config file whose
/// targets are read in pieces (see [`split_config`]).
fn read_config_document(text: &str, placeholder: bool) -> Result<RawConfig, String> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    if !placeholder {
        check_nesting(text)?;
    }
    read_document(
        text,
        |types| RawConfigSeed { types, placeholder },
        |raw: &RawConfig| &raw.targets,
    )
}

/// A target file, or a piece of a list of targets; its nesting already checked.
fn read_targets(text: &str) -> Result<Vec<RawTarget>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    read_document(text, |types| TargetsSeed { types }, |t: &Vec<_>| t)
}

/// Deeper than this, brackets are refused before YAML parsing.
const MAX_FLOW_DEPTH: usize = 1000;

/// Checks that flow collections (`[`, `{`) nest at most [`MAX_FLOW_DEPTH`] deep.
///
/// The YAML scanner's time grows with the square of the flow nesting depth (100,000
/// unclosed `[` took over a minute), and a reload parses on the async runtime. Brackets
/// are counted everywhere, in strings and comments too: an over-count only refuses a text
/// with a thousand unclosed brackets, which no real configuration has.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (offset, byte) in text.bytes().enumerate() {
        match byte {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if depth > MAX_FLOW_DEPTH {
            let line = memchr::memchr_iter(b'\n', &text.as_bytes()[..offset]).count() + 1;
            return Err(format!(
                "brackets nested more than {MAX_FLOW_DEPTH} deep at line {line}"
            ));
        }
    }
    Ok(())
}

fn from_yaml<'de, S: DeserializeSeed<'de>>(text: &'de str, seed: S) -> Result<S::Value, String> {
    seed.deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| e.to_string())
}

/// Reads a document (the config file or a target file) whose targets `targets` finds.
///
/// A target may name keys of its type before its `type`. Their values cannot be kept for
/// later without losing how they were written (`password: 012345` would come back as
/// `12345`), so a first reading only finds each target's type, and a second one, told the
/// types, reads those keys as they come. Documents that give `type` first are read once.
fn read_document<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: impl Fn(Option<Vec<Type>>) -> S,
    targets: impl Fn(&S::Value) -> &[RawTarget],
) -> Result<S::Value, String> {
    let first = from_yaml(text, seed(None))?;
    if !targets(&first).iter().any(|t| t.type_came_late) {
        return Ok(first);
    }
    let types: Vec<Type> = targets(&first).iter().map(|t| t.kind).collect();
    from_yaml(text, seed(Some(types)))
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

#[derive(Debug, Default)]
struct RawConfig {
    global: RawGlobal,
    targets: Vec<RawTarget>,
    target_files: Vec<EnvString>,
    webhooks: Option<crate::webhooks::config::RawWebhooks>,
}

const CONFIG_KEYS: &[&str] = &["global", "targets", "target_files", "webhooks"];

/// Reads the config file as a derived struct with `deny_unknown_fields` would, handing
/// the types of its targets to their reading when a first reading found them.
struct RawConfigSeed {
    types: Option<Vec<Type>>,
    /// The targets are read in pieces: `targets` must hold the list of
    /// [`PLACEHOLDER`] alone.
    placeholder: bool,
}

impl<'de> DeserializeSeed<'de> for RawConfigSeed {
    type Value = RawConfig;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawConfig, D::Error> {
        deserializer.deserialize_struct("RawConfig", CONFIG_KEYS, self)
    }
}

impl<'de> Visitor<'de> for RawConfigSeed {
    type Value = RawConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawConfig")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
        let mut raw = RawConfig::default();
        let mut types = self.types;
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(key) = map.next_key_seed(KnownKey { keys: CONFIG_KEYS })? {
            if seen.contains(&key) {
                return Err(de::Error::duplicate_field(key));
            }
            seen.push(key);
            match key {
                "global" => raw.global = map.next_value()?,
                "targets" if self.placeholder => {
                    let items: Vec<String> = map.next_value()?;
                    if items != [PLACEHOLDER] {
                        return Err(de::Error::custom("not the targets' placeholder"));
                    }
                }
                "targets" => {
                    raw.targets = map.next_value_seed(TargetsSeed {
                        types: types.take(),
                    })?;
                }
                "webhooks" => raw.webhooks = map.next_value()?,
                _ => raw.target_files = map.next_value()?,
            }
        }
        if self.placeholder && !seen.contains(&"targets") {
            return Err(de::Error::custom("the targets' placeholder is missing"));
        }
        Ok(raw)
    }
}

/// A key of a struct: an unknown one is an error at its line, as with a derived struct.
struct KnownKey {
    keys: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KnownKey {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KnownKey {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.keys
            .iter()
            .find(|k| **k == key)
            .copied()
            .ok_or_else(|| E::unknown_field(key, self.keys))
    }
}

/// A list of targets; `types` holds the type of each, in order, on a second reading.
struct TargetsSeed {
    types: Option<Vec<Type>>,
}

impl<'de> DeserializeSeed<'de> for TargetsSeed {
    type Value = Vec<RawTarget>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TargetsSeed {
    type Value = Vec<RawTarget>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut targets = Vec::new();
        loop {
            let kind = self
                .types
                .as_ref()
                .and_then(|types| types.get(targets.len()).copied());
            match seq.next_element_seed(RawTargetSeed { kind })? {
                Some(target) => targets.push(target),
                None => return Ok(targets),
            }
        }
    }
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

/// A target as written: the keys every target has, and its type's own keys.
#[derive(Debug)]
struct RawTarget {
    name: EnvString,
    kind: Type,
    base_url: Option<EnvString>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    stale_after: Option<HumanDuration>,
    body_size_limit: Option<ByteSize>,
    series_limit: Option<usize>,
    labels: BTreeMap<String, EnvString>,
    tls_config: RawTls,
    keys: RawKeys,
    /// Keys of another type that this target sets.
    foreign: Vec<&'static str>,
    /// Keys of its type came before its `type`: they were skipped, for a second reading.
    type_came_late: bool,
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

/// The keys every target takes, whatever its type.
const COMMON_KEYS: &[&str] = &[
    "name",
    "type",
    "base_url",
    "interval",
    "timeout",
    "stale_after",
    "body_size_limit",
    "series_limit",
    "labels",
    "tls_config",
];

// A target is read key by key rather than by a derived struct: the keys a target may have
// depend on its type, and serde's `flatten` (which could add the type's keys) loses
// `deny_unknown_fields`. Each key is checked as it is read, inside the YAML parser, so an
// unknown key is an error with its line and column that lists the keys of the target's
// type and suggests the closest.

/// Which key of a target is being read: `kind` is the target's type when its `type` came
/// before.
struct TargetKey {
    kind: Option<Type>,
}

impl<'de> DeserializeSeed<'de> for TargetKey {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TargetKey {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a target key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let known = COMMON_KEYS
            .iter()
            .chain(Type::ALL.iter().flat_map(|t| t.keys()))
            .find(|k| **k == key);
        match known {
            Some(known) => Ok(known),
            None => Err(E::custom(unknown_key(key, self.kind))),
        }
    }
}

/// The error of a key no type takes: the keys the target could have (those of its type
/// once its `type` is known) and the closest of them.
fn unknown_key(key: &str, kind: Option<Type>) -> String {
    let mut takes: Vec<&str> = COMMON_KEYS.to_vec();
    match kind {
        Some(kind) => takes.extend(kind.keys()),
        None => {
            for key in Type::ALL.iter().flat_map(|t| t.keys()) {
                if !takes.contains(key) {
                    takes.push(key);
                }
            }
        }
    }
    let listed = takes
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let whose = match kind {
        Some(kind) => format!("targets of type {} take", kind.as_str()),
        // The key came before the target's `type`.
        None => "targets of any type take".to_owned(),
    };
    let mut message = format!("unknown field `{key}`: {whose} {listed}");
    if let Some(closest) = closest(key, &takes) {
        message.push_str(&format!("; did you mean `{closest}`?"));
    }
    message
}

/// The candidate nearest to `key` by edit distance, if it is near enough to be a typo:
/// one edit, or up to a third of the key's characters for longer keys.
fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let (distance, best) = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(key, c), *c))
        .min_by_key(|(distance, _)| *distance)?;
    (distance <= (key.chars().count() / 3).max(1)).then_some(best)
}

/// Reads the value of a type's key straight from the parser, so its errors keep their line.
struct TypeKeyValue<'a> {
    keys: &'a mut RawKeys,
    key: &'static str,
}

impl<'de> DeserializeSeed<'de> for TypeKeyValue<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.keys.read(self.key, deserializer)
    }
}

/// A target's `type`, checked while it is read so that an unknown one names its line.
struct TypeName(Type);

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Checked inside the visitor: serde_yaml gives an error raised there the line of
        // the value, and one raised after it the line of the target.
        struct TypeNameVisitor;

        impl Visitor<'_> for TypeNameVisitor {
            type Value = TypeName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target type")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<TypeName, E> {
                Type::from_name(name)
                    .map(TypeName)
                    .ok_or_else(|| E::unknown_variant(name, Type::NAMES))
            }
        }

        deserializer.deserialize_str(TypeNameVisitor)
    }
}

/// Reads one target; `kind` is its type when a first reading of the document found it.
struct RawTargetSeed {
    kind: Option<Type>,
}

impl<'de> DeserializeSeed<'de> for RawTargetSeed {
    type Value = RawTarget;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawTarget, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawTargetSeed {
    type Value = RawTarget;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a target (a mapping with name, type and the type's keys)")
    }

    // Optional keys are read as `Option`s, as a derived struct's fields would be: a key
    // written with no value (`interval:`, `api_key_file: ~`) is not set.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTarget, A::Error> {
        let mut name = None;
        let mut kind: Option<(Type, RawKeys)> = self.kind.map(|t| (t, RawKeys::new(t)));
        let mut base_url = None;
        let mut interval = None;
        let mut timeout = None;
        let mut stale_after = None;
        let mut body_size_limit = None;
        let mut series_limit = None;
        let mut labels = None;
        let mut tls_config = None;
        let mut foreign = Vec::new();
        let mut type_came_late = false;
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(key) = map.next_key_seed(TargetKey {
            kind: kind.as_ref().map(|(t, _)| *t),
        })? {
            if seen.contains(&key) {
                return Err(de::Error::duplicate_field(key));
            }
            seen.push(key);
            match key {
                "name" => name = Some(map.next_value::<EnvString>()?),
                "type" => {
                    let TypeName(t) = map.next_value()?;
                    match &kind {
                        // The first reading found this type: the same text says it again.
                        Some((known, _)) if *known == t => {}
                        Some(_) => {
                            return Err(de::Error::custom(
                                "the target's type changed between readings",
                            ))
                        }
                        None => kind = Some((t, RawKeys::new(t))),
                    }
                }
                "base_url" => base_url = map.next_value()?,
                "interval" => interval = map.next_value()?,
                "timeout" => timeout = map.next_value()?,
                "stale_after" => stale_after = map.next_value()?,
                "body_size_limit" => body_size_limit = map.next_value()?,
                "series_limit" => series_limit = map.next_value()?,
                "labels" => labels = Some(map.next_value()?),
                "tls_config" => tls_config = Some(map.next_value()?),
                _ => match &mut kind {
                    Some((t, keys)) if t.keys().contains(&key) => {
                        map.next_value_seed(TypeKeyValue { keys, key })?;
                    }
                    Some(_) => {
                        map.next_value::<de::IgnoredAny>()?;
                        foreign.push(key);
                    }
                    // A key of some type before the target's `type`: the document is read
                    // again once the types are known (see `read_document`).
                    None => {
                        map.next_value::<de::IgnoredAny>()?;
                        type_came_late = true;
                    }
                },
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        let (kind, keys) = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(RawTarget {
            name,
            kind,
            base_url,
            interval,
            timeout,
            stale_after,
            body_size_limit,
            series_limit,
            labels: labels.unwrap_or_default(),
            tls_config: tls_config.unwrap_or_default(),
            keys,
            foreign,
            type_came_late,
        })
    }
}

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
        Config::assemble(global, targets, target_files, self.webhooks, path)
            .map_err(|message| invalid(path, message))
    }
}

impl Config {
    /// The config of its validated global settings and targets, indexed by name, and its
    /// webhooks section, validated against the config file's directory.
    fn assemble(
        global: Global,
        targets: Vec<Arc<Target>>,
        target_files: Vec<String>,
        webhooks: Option<crate::webhooks::config::RawWebhooks>,
        path: &Path,
    ) -> Result<Config, String> {
        let by_name = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let base = path.parent().unwrap_or(Path::new("."));
        let webhooks = webhooks.map(|raw| raw.validate(base)).transpose()?;
        Ok(Config {
            global,
            targets,
            target_files,
            webhooks,
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
        if let Some(key) = self.foreign.first() {
            return Err(format!(
                "{key} does not apply to type {}",
                self.kind.as_str()
            ));
        }
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
        let kind = self.keys.validate(&TargetSettings { interval, timeout })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_values::parse_byte_size;
    use crate::providers::cloud_api::CloudApiTarget;
    use crate::providers::kapso::KapsoTarget;
    use crate::providers::onprem::{Login, OnPremEndpoint, OnPremTarget};
    use crate::secret::{Secret, SecretSource};

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
        assert_eq!(cloud.api_version, "v25.0");
        assert_eq!(cloud.api_major_version(), 25);
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
            ("", "set business_id, waba_id or phone_number_ids (or several)"),
            (
                "    discover: true\n    phone_number_ids: [1]\n",
                "discover: true needs waba_id or business_id",
            ),
            (
                "    business_id: 1\n    discover: false\n",
                "business_id lists the business's WABAs: it needs discover: true (the default with business_id)",
            ),
            (
                "    business_id: 12x\n",
                "\"12x\" is not a Graph API id (digits only)",
            ),
            (
                "    business_id: 1\n    debug_token_access_token: a\n    debug_token_access_token_file: /b\n",
                "set debug_token_access_token or debug_token_access_token_file, not both",
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
        // A business is discovered without saying so; its app token is a secret of its own.
        let business = parse(&format!(
            "{base}    business_id: 506914307656634\n    debug_token_access_token: app|secret\n    interval: 1m\n    timeout: 20s\n"
        ))
        .unwrap();
        let cloud = cloud_of(&business.targets[0]);
        assert_eq!(cloud.business_id.as_deref(), Some("506914307656634"));
        assert!(cloud.discover);
        assert_eq!(cloud.discovery_interval, Duration::from_secs(600));
        assert_eq!(
            (cloud.interval, cloud.timeout),
            (Duration::from_secs(60), Duration::from_secs(20))
        );
        assert_eq!(crate::providers::Provider::secrets(cloud).len(), 2);
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
    fn unknown_key_lists_the_keys_of_its_type_and_suggests_the_closest() {
        let text =
            "targets:\n  - name: c\n    type: cloud_api\n    acess_token: t\n    waba_id: 1\n";
        assert_eq!(
            parse(text).unwrap_err(),
            "test.yaml: targets[0]: unknown field `acess_token`: targets of type cloud_api take \
             `name`, `type`, `base_url`, `interval`, `timeout`, `stale_after`, \
             `body_size_limit`, `series_limit`, `labels`, `tls_config`, `access_token`, \
             `access_token_file`, `debug_token_access_token`, `debug_token_access_token_file`, \
             `api_version`, `phone_number_ids`, `waba_id`, `business_id`, `discover`, \
             `discovery_interval`, `usage_threshold`; did you mean `access_token`? \
             at line 4 column 5"
        );
        // Nothing near enough: no suggestion.
        let err = parse(&format!("{MINIMAL}    bogus_key: 1\n")).unwrap_err();
        assert!(
            err.starts_with(
                "test.yaml: targets[0]: unknown field `bogus_key`: targets of type onprem take"
            ),
            "{err}"
        );
        assert!(!err.contains("did you mean"), "{err}");
        assert!(err.ends_with("`endpoints` at line 6 column 5"), "{err}");
    }

    #[test]
    fn keys_before_the_type_are_read_once_it_is_known() {
        let text =
            "targets:\n  - access_token: t\n    waba_id: 12\n    name: c\n    type: cloud_api\n";
        let config = parse(text).unwrap();
        assert_eq!(cloud_of(&config.targets[0]).waba_id.as_deref(), Some("12"));
        let text = "targets:\n  - config_id: x\n    name: a\n    type: dialog360\n    api_key: k\n";
        assert!(parse(text)
            .unwrap_err()
            .ends_with("config_id does not apply to type dialog360"));
        // Before the type, a key no type takes is compared with every type's keys.
        let text = "targets:\n  - name: a\n    waba_idd: 1\n    type: cloud_api\n";
        let err = parse(text).unwrap_err();
        assert!(
            err.starts_with(
                "test.yaml: targets[0]: unknown field `waba_idd`: targets of any type take"
            ),
            "{err}"
        );
        assert!(
            err.ends_with("did you mean `waba_id`? at line 3 column 5"),
            "{err}"
        );
        // Read again once the type is known: a value keeps how it was written, and a bad
        // one names its line.
        let text = "targets:\n  - api_key: 012345678901\n    name: a\n    type: onprem\n    base_url: http://h\n";
        let onprem = onprem_of(&parse(text).unwrap().targets[0]).clone();
        assert_eq!(
            onprem.api_key,
            Some(SecretSource::Inline(Secret::new("012345678901")))
        );
        let text = "targets:\n  - name: b\n    type: dialog360\n    api_key: k\n  - waba_id: [1]\n    name: c\n    type: cloud_api\n    access_token: t\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("expected an id"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn keys_without_a_value_are_not_set() {
        let text = format!(
            "{MINIMAL}    api_key_file: ~\n    bearer_token_file:\n    interval: ~\n    base_url: ~\n    labels: {{}}\n"
        )
        .replace("    base_url: https://wa.example.com\n", "");
        let err = parse(&text).unwrap_err();
        assert!(
            err.ends_with("base_url is required for type onprem"),
            "{err}"
        );
        let text =
            format!("{MINIMAL}    api_key_file: ~\n    bearer_token_file:\n    interval: ~\n");
        let target = parse(&text).unwrap().targets[0].clone();
        assert_eq!(target.interval, Duration::from_secs(30));
        let onprem = onprem_of(&target);
        assert!(onprem.bearer_token.is_none());
        assert_eq!(onprem.endpoints, vec![OnPremEndpoint::Health]);
        let text = "targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n    waba_id: 1\n    discover: ~\n    api_version:\n";
        let cloud = cloud_of(&parse(text).unwrap().targets[0]).clone();
        assert!(!cloud.discover);
        assert_eq!(cloud.api_version, "v25.0");
    }

    #[test]
    fn every_common_key_is_read() {
        let values = [
            ("name", "a"),
            ("type", "onprem"),
            ("base_url", "http://h"),
            ("interval", "1m"),
            ("timeout", "5s"),
            ("stale_after", "5m"),
            ("body_size_limit", "2KiB"),
            ("series_limit", "7"),
            ("labels", "{team: ops}"),
            ("tls_config", "{insecure_skip_verify: true}"),
        ];
        assert_eq!(
            values.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            COMMON_KEYS
        );
        let mut text = "targets:\n  - api_key: abcdefghijkl\n".to_owned();
        for (key, value) in values {
            text.push_str(&format!("    {key}: {value}\n"));
        }
        let target = parse(&text).unwrap().targets[0].clone();
        assert_eq!(
            (target.interval, target.timeout, target.stale_after),
            (
                Duration::from_secs(60),
                Duration::from_secs(5),
                Duration::from_secs(300)
            )
        );
        assert_eq!((target.body_size_limit, target.series_limit), (2048, 7));
        assert_eq!(target.labels.get("team").map(String::as_str), Some("ops"));
        assert!(target.tls.insecure_skip_verify);
        assert_eq!(target.base_url.as_str(), "http://h/");
    }

    #[test]
    fn targets_need_a_name_and_a_type_and_each_key_once() {
        let err = parse("targets:\n  - name: a\n    api_key: k\n").unwrap_err();
        assert!(err.contains("missing field `type`"), "{err}");
        let err = parse("targets:\n  - type: dialog360\n    api_key: k\n").unwrap_err();
        assert!(err.contains("missing field `name`"), "{err}");
        let err = parse(&format!("{MINIMAL}    name: b\n")).unwrap_err();
        assert!(err.contains("duplicate field `name`"), "{err}");
        let err = parse("targets:\n  - [a]\n").unwrap_err();
        assert!(err.contains("expected a target"), "{err}");
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

    /// Both readings of `text` (config file `dir/config.yaml`), the list cut one target a
    /// piece: what reading in pieces gives (`None`: it fell back) and what the whole
    /// reading in order gives.
    fn both_readings(
        dir: &Path,
        text: &str,
    ) -> (
        Option<Config>,
        Result<Config, String>,
        Result<Config, String>,
    ) {
        let path = dir.join("config.yaml");
        (
            read_in_pieces(text, &path, 1),
            Config::parse_in_pieces_of(text, &path, 1).map_err(|e| e.to_string()),
            Config::parse_in_order(text, &path).map_err(|e| e.to_string()),
        )
    }

    #[test]
    fn a_list_read_in_pieces_is_the_list_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "# fleet a\n- {name: fa-1, type: dialog360, api_key: k}\n- name: fa-2\n  type: kapso\n  api_key: k\n  config_id: c\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"[{"name": "fb-1", "type": "dialog360", "api_key": "k"}]"#,
        )
        .unwrap();
        let text = "global:\n  interval: 1m\n\
            targets: # inline\n\
            \x20 - {name: a, type: onprem, base_url: \"http://h\", api_key: abcdefghijkl}\n\
            \x20 # a comment between items\n\
            \x20 - access_token: t\n    waba_id: 12\n    name: c\n    type: cloud_api\n\
            \x20 - name: d\n    type: dialog360\n    api_key: |\n      multi\n      line\n    labels: {team: ops}\n\
            target_files: [a.yaml, b.json]\n";
        assert_eq!(split_config(text, 1).map(|s| s.pieces.len()), Some(3));
        let (pieces, parsed, whole) = both_readings(dir.path(), text);
        let whole = whole.unwrap();
        assert_eq!(pieces.as_ref(), Some(&whole));
        assert_eq!(parsed.as_ref(), Ok(&whole));
        let names: Vec<&str> = whole.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "d", "fa-1", "fa-2", "fb-1"]);
        assert_eq!(
            whole.target("fa-2").map(|t| t.interval),
            Some(Duration::from_secs(60))
        );
        // Items at column 0, and a config of nothing but targets.
        let text = "targets:\n- {name: a, type: dialog360, api_key: k}\n- {name: b, type: dialog360, api_key: k}\n";
        let (pieces, _, whole) = both_readings(dir.path(), text);
        assert_eq!(pieces, Some(whole.unwrap()));
    }

    #[test]
    fn pieces_that_do_not_read_alone_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        // An alias to an anchor of another piece.
        let text = "targets:\n  - {name: a, type: dialog360, api_key: &key k}\n  - {name: b, type: dialog360, api_key: *key}\n";
        let (pieces, parsed, whole) = both_readings(dir.path(), text);
        assert_eq!(pieces, None);
        let whole = whole.unwrap();
        assert_eq!(whole.targets.len(), 2);
        assert_eq!(parsed, Ok(whole));
        // A quoted scalar that goes on over a line that looks like an item.
        let text = "targets:\n  - name: \"a\n  - b\"\n    type: dialog360\n    api_key: k\n";
        let (pieces, parsed, whole) = both_readings(dir.path(), text);
        assert_eq!(pieces, None);
        assert_eq!(whole.as_ref().unwrap().targets[0].name, "a - b");
        assert_eq!(parsed, whole);
        // `targets:` inside a quoted scalar of the keys before it is no key: the whole
        // reading finds no targets, and no targets are read in pieces.
        let text = "webhooks:\n  app_secret: s\n  path: \"/a\ntargets:\n  - {name: a, type: dialog360, api_key: k}\n  - {name: b, type: dialog360, api_key: k}\ntarget_files: x\"\n";
        let (pieces, parsed, whole) = both_readings(dir.path(), text);
        assert_eq!(pieces, None);
        let whole = whole.unwrap();
        assert!(whole.targets.is_empty());
        assert_eq!(parsed, Ok(whole));
        // Inside a flow mapping, `- ` items are an error.
        let text = "{global: {},\ntargets:\n  - {name: a, type: dialog360, api_key: k}\n  - {name: b, type: dialog360, api_key: k}\n}\n";
        let (pieces, parsed, whole) = both_readings(dir.path(), text);
        assert_eq!(pieces, None);
        assert!(whole.is_err());
        assert_eq!(parsed, whole);
    }

    #[test]
    fn errors_are_those_of_the_whole_reading() {
        let dir = tempfile::tempdir().unwrap();
        let target = |name: &str| format!("  - {{name: {name}, type: dialog360, api_key: k}}\n");
        let list = |extra: &str| {
            format!(
                "targets:\n{}{}{extra}{}",
                target("a"),
                target("b"),
                target("c")
            )
        };
        let cases = [
            (
                list("  - {name: x, type: dialog360, api_key: k, intervall: 5s}\n"),
                "targets[2]: unknown field `intervall`",
                Some("line 4"),
            ),
            (
                list(&target("a")),
                "targets[2] (\"a\"): duplicate target name \"a\"",
                None,
            ),
            (
                list("  - {name: x, type: dialog360}\n"),
                "targets[2] (\"x\"): api_key or api_key_file is required for type dialog360",
                None,
            ),
            (
                list("  - {name: \"\", type: dialog360, api_key: k}\n"),
                "targets[2]: name must not be empty",
                None,
            ),
            // A parse error after a validation error: the parse error, as the whole
            // reading parses everything first.
            (
                format!("{}global: {{interval: soon}}\n", list(&target("a"))),
                "invalid duration \"soon\"",
                Some("line 6"),
            ),
            (
                format!("global: {{stale_after: 1s}}\n{}", list("")),
                "global: stale_after (1s) must not be shorter",
                None,
            ),
        ];
        for (text, expected, line) in cases {
            let (pieces, parsed, whole) = both_readings(dir.path(), &text);
            assert_eq!(pieces, None, "{text}");
            let error = whole.unwrap_err();
            assert!(error.contains(expected), "{error}");
            if let Some(line) = line {
                assert!(error.contains(line), "{error}");
            }
            assert_eq!(parsed, Err(error));
        }
        // In a target file cut in pieces: the file's own index and line.
        std::fs::write(
            dir.path().join("t.yaml"),
            "- {name: f1, type: dialog360, api_key: k}\n- {name: f2, type: dialog360, api_key: k}\n- {name: f3, type: dialog360, api_key: k, waba_idd: 1}\n",
        )
        .unwrap();
        let text = format!("{}target_files: [t.yaml]\n", list(""));
        let (pieces, parsed, whole) = both_readings(dir.path(), &text);
        assert_eq!(pieces, None);
        let error = whole.unwrap_err();
        assert!(
            error.starts_with(&format!(
                "{}: .[2]: unknown field `waba_idd`",
                dir.path().join("t.yaml").display()
            )),
            "{error}"
        );
        assert!(error.contains("line 3"), "{error}");
        assert_eq!(parsed, Err(error));
    }
}
