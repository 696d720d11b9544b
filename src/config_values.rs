//! The building blocks of the configuration file that every part of it uses, the
//! providers' own keys among them: value types with their own parsing (`${ENV}`
//! expansion, ids, durations, sizes), `*_file` secrets, the [`Keys`] a provider declares
//! with `config_keys!`, and the helpers that write a configuration back for the
//! `/config` page with its secrets redacted.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_yaml::{Mapping, Value};

use crate::secret::{Secret, SecretSource};

/// Defaults of the global settings, in one place: the README and `config.example.yaml`
/// quote these. A provider's own defaults live in its module.
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
    /// How often the files named by `target_files` are checked for changes.
    pub const TARGET_FILES_REFRESH: Duration = Duration::from_secs(30);
    /// How often a provider with `discover: true` lists what it polls: listings change
    /// rarely and cost one request per page.
    pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(600);
}

/// The `discovery_interval` of a provider that discovers what it polls: the key's value,
/// else [`defaults::DISCOVERY_INTERVAL`]. Set only with `discover: true`, and not shorter
/// than the target's `interval`, as discovery runs within a poll.
pub fn discovery_interval(
    set: Option<&HumanDuration>,
    discover: bool,
    interval: Duration,
) -> Result<Duration, String> {
    let discovery_interval = set.map_or(defaults::DISCOVERY_INTERVAL, |d| d.0);
    if set.is_some() && !discover {
        return Err("discovery_interval needs discover: true".into());
    }
    if discover && discovery_interval < interval {
        return Err(format!(
            "discovery_interval ({}) must not be shorter than interval ({})",
            humantime::format_duration(discovery_interval),
            humantime::format_duration(interval)
        ));
    }
    Ok(discovery_interval)
}

// ---------------------------------------------------------------------------------------
// A provider's keys

/// The keys only one provider's targets take, as read from the file (each `None` until
/// set). Declared with `config_keys!`, which writes this trait's implementation, so a
/// key is named once.
pub trait Keys: Default + std::fmt::Debug {
    /// Every key, in the order the file format documents them.
    const NAMES: &'static [&'static str];

    /// Reads the value of `key`, one of [`Keys::NAMES`], from `value`.
    fn read<'de, D: Deserializer<'de>>(&mut self, key: &str, value: D) -> Result<(), D::Error>;
}

/// Declares a provider's keys: a struct with an `Option` field per key, and its [`Keys`]
/// implementation. Values are read by their types' `Deserialize`, straight from the YAML
/// parser, so a bad value is an error with its line and column.
macro_rules! config_keys {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $($(#[$field_meta])* pub $field: Option<$ty>,)+
        }

        impl $crate::config_values::Keys for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),+];

            fn read<'de, D: serde::Deserializer<'de>>(
                &mut self,
                key: &str,
                value: D,
            ) -> Result<(), D::Error> {
                match key {
                    // As a derived struct's `Option` field: no value leaves the key unset.
                    $(stringify!($field) => {
                        self.$field = <Option<$ty> as serde::Deserialize>::deserialize(value)?;
                    })+
                    other => {
                        return Err(<D::Error as serde::de::Error>::custom(format!(
                            "unknown field `{other}`"
                        )))
                    }
                }
                Ok(())
            }
        }
    };
}
pub(crate) use config_keys;

/// The secret of `key` / `key_file`: inline (non-empty) or a file path, not both.
pub fn secret_source(
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

/// [`secret_source`] for a secret the provider cannot do without.
pub fn required_secret(
    type_name: &str,
    key: &str,
    inline: &Option<EnvString>,
    file: &Option<EnvString>,
) -> Result<SecretSource, String> {
    secret_source(key, inline, file)?
        .ok_or_else(|| format!("{key} or {key}_file is required for type {type_name}"))
}

/// A Prometheus label name (also the form of an environment variable name here).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------
// Writing a configuration back, for the `/config` page

/// What an inline secret is shown as.
pub const REDACTED: &str = "<secret>";

pub fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::from(key), value.into());
}

/// An inline secret as [`REDACTED`]; a secret read from a file as its `*_file` path, which
/// is not a secret.
pub fn put_secret(map: &mut Mapping, key: &str, source: &SecretSource) {
    match source {
        SecretSource::Inline(_) => put(map, key, REDACTED),
        SecretSource::File(path) => put(map, &format!("{key}_file"), path.display().to_string()),
    }
}

/// A duration in the file's humantime form.
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

// ---------------------------------------------------------------------------------------
// Value types with their own parsing; their errors go through serde, so serde_yaml adds the
// line and column.

/// A string value with `${VAR}` replaced by the environment variable (`$$` for a literal
/// `$`). Expansion happens on values, after YAML parsing, so a value cannot change the
/// structure of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        env_expanded(raw).map(EnvString)
    }
}

/// `raw` with `${VAR}` expanded; most values have no `$` and are kept as they are.
fn env_expanded<E: serde::de::Error>(raw: String) -> Result<String, E> {
    if !raw.contains('$') {
        return Ok(raw);
    }
    expand_env(&raw, |name| std::env::var(name).ok()).map_err(E::custom)
}

pub(crate) fn expand_env(
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
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
pub struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

/// An [`Id`] straight from the parser's scalar. What is not an id is refused with its
/// YAML form, read whole for a list or mapping.
struct IdVisitor;

impl IdVisitor {
    fn refuse<E: serde::de::Error>(value: serde_yaml::Value) -> E {
        E::custom(format!(
            "expected an id (a string or a whole number), not {}",
            serde_yaml::to_string(&value).unwrap_or_default().trim()
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an id (a string or a whole number)")
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Id, E> {
        Ok(Id(n.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Id, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(Self::refuse(n.into())),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Id, E> {
        Err(Self::refuse(n.into()))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Id, E> {
        Err(Self::refuse(b.into()))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Id, E> {
        Err(Self::refuse(serde_yaml::Value::Null))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Id, E> {
        env_expanded(text.to_owned()).map(Id)
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Id, E> {
        env_expanded(text).map(Id)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Id, A::Error> {
        let value =
            serde_yaml::Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Err(Self::refuse(value))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Id, A::Error> {
        let value =
            serde_yaml::Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Err(Self::refuse(value))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Id, A::Error> {
        let value =
            serde_yaml::Value::deserialize(serde::de::value::EnumAccessDeserializer::new(data))?;
        Err(Self::refuse(value))
    }
}

/// A duration in humantime form: `30s`, `5m`, `1h30m`.
#[derive(Clone, Copy, Debug)]
pub struct HumanDuration(pub Duration);

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
pub struct ByteSize(pub u64);

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

pub(crate) fn parse_byte_size(text: &str) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// How an id was read through a generic YAML value before: the typed reading must
    /// give the same ids and the same errors.
    fn id_through_a_value(yaml: &str) -> Result<String, String> {
        match serde_yaml::from_str::<serde_yaml::Value>(yaml).map_err(|e| e.to_string())? {
            serde_yaml::Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
            serde_yaml::Value::String(text) => expand_env(&text, |name| std::env::var(name).ok()),
            other => Err(format!(
                "expected an id (a string or a whole number), not {}",
                serde_yaml::to_string(&other).unwrap_or_default().trim()
            )),
        }
    }

    #[test]
    fn ids_are_read_as_they_were_through_a_generic_value() {
        std::env::set_var("WAE_TEST_ID", "106540352242922");
        for yaml in [
            "102290129340398",
            "\"0012\"",
            "'12'",
            "abc",
            "${WAE_TEST_ID}",
            "x${WAE_TEST_UNSET_ID}",
            "0",
            "-5",
            "1.5",
            "true",
            "~",
            "[1, 2]",
            "{a: 1}",
            "!custom 7",
            "0x1F",
        ] {
            let typed = serde_yaml::from_str::<Id>(yaml)
                .map(|id| id.0)
                .map_err(|e| e.to_string());
            let expected = id_through_a_value(yaml);
            match (&typed, &expected) {
                (Ok(typed), Ok(expected)) => assert_eq!(typed, expected, "{yaml}"),
                // serde_yaml adds the position to an error raised while reading.
                (Err(typed), Err(expected)) => {
                    assert!(
                        typed.starts_with(expected.as_str()),
                        "{yaml}: {typed} / {expected}"
                    )
                }
                _ => panic!("{yaml}: {typed:?} / {expected:?}"),
            }
        }
        assert_eq!(
            serde_yaml::from_str::<Id>("-5").unwrap_err().to_string(),
            "expected an id (a string or a whole number), not -5"
        );
        assert_eq!(
            serde_yaml::from_str::<Id>("[1]").unwrap_err().to_string(),
            "expected an id (a string or a whole number), not - 1"
        );
        // Beyond u64, serde_yaml names what it expected: now an id, no longer "any YAML
        // value".
        assert_eq!(
            serde_yaml::from_str::<Id>("99999999999999999999").unwrap_err().to_string(),
            "invalid type: integer `99999999999999999999` as u128, expected an id (a string or a whole number)"
        );
    }

    #[test]
    fn env_strings_expand_only_what_names_a_variable() {
        std::env::set_var("WAE_TEST_ENV_STRING", "v4lue");
        let read = |yaml: &str| serde_yaml::from_str::<EnvString>(yaml).map(|s| s.0);
        assert_eq!(read("plain text").unwrap(), "plain text");
        assert_eq!(read("'a${WAE_TEST_ENV_STRING}b'").unwrap(), "av4lueb");
        assert_eq!(read("cost $$5").unwrap(), "cost $5");
        assert!(read("${WAE_TEST_UNSET_ENV_STRING}")
            .unwrap_err()
            .to_string()
            .starts_with("environment variable WAE_TEST_UNSET_ENV_STRING is not set"));
    }
}
