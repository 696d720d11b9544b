//! The `webhooks:` section of the config file: where the receiver listens and who may
//! deliver to it. Absent, the receiver is off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::config_values::{duration_text, put, put_secret, ByteSize, EnvString, HumanDuration};
use crate::secret::{Secret, SecretError, SecretSource};

pub const DEFAULT_LISTEN_ADDRESS: &str = ":10111";
pub const DEFAULT_PATH: &str = "/webhooks/whatsapp";
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 1024 * 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SERIES_LIMIT: usize = 10_000;

/// The validated section.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhooksConfig {
    pub listen_address: String,
    pub path: String,
    pub verify_tokens: Vec<SecretSource>,
    pub app_secrets: Vec<SecretSource>,
    pub bearer_tokens: Vec<SecretSource>,
    pub body_size_limit: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Distinct (message id, status) pairs per de-duplication generation.
    pub dedup_window: usize,
    pub series_limit: usize,
    /// An exporter-toolkit web config file whose `tls_server_config` this listener uses.
    pub web_config_file: Option<PathBuf>,
}

/// The secrets of the section, read (files included) at start and at each reload.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub verify_tokens: Vec<Secret>,
    pub app_secrets: Vec<Secret>,
    pub bearer_tokens: Vec<Secret>,
}

impl WebhooksConfig {
    /// Reads every secret now; a missing or empty file is an error naming its path.
    pub fn credentials(&self) -> Result<Credentials, SecretError> {
        let read = |sources: &[SecretSource]| -> Result<Vec<Secret>, SecretError> {
            sources.iter().map(SecretSource::read).collect()
        };
        Ok(Credentials {
            verify_tokens: read(&self.verify_tokens)?,
            app_secrets: read(&self.app_secrets)?,
            bearer_tokens: read(&self.bearer_tokens)?,
        })
    }

    /// The section for the `/config` page: inline secrets redacted, files by path.
    pub fn redacted(&self) -> Value {
        let mut m = Mapping::new();
        put(&mut m, "listen_address", self.listen_address.as_str());
        put(&mut m, "path", self.path.as_str());
        let secrets = |m: &mut Mapping, key: &str, sources: &[SecretSource]| {
            for source in sources {
                let mut one = Mapping::new();
                put_secret(&mut one, key, source);
                for (k, v) in one {
                    let list = m.entry(k).or_insert_with(|| Value::Sequence(Vec::new()));
                    if let Value::Sequence(items) = list {
                        items.push(v);
                    }
                }
            }
        };
        secrets(&mut m, "verify_token", &self.verify_tokens);
        secrets(&mut m, "app_secret", &self.app_secrets);
        secrets(&mut m, "bearer_token", &self.bearer_tokens);
        put(&mut m, "body_size_limit", self.body_size_limit);
        put(&mut m, "header_timeout", duration_text(self.header_timeout));
        put(&mut m, "body_timeout", duration_text(self.body_timeout));
        put(&mut m, "dedup_window", self.dedup_window);
        put(&mut m, "series_limit", self.series_limit);
        if let Some(file) = &self.web_config_file {
            put(&mut m, "web_config_file", file.display().to_string());
        }
        Value::Mapping(m)
    }
}

/// One value or a list of them (`app_secret: s` or `app_secret: [s1, s2]`).
///
/// Read by hand: as an untagged enum, any error (an unset `${VAR}` above all) came out as
/// "data did not match any variant of untagged enum OneOrMany".
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(EnvString),
    Many(Vec<EnvString>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

struct OneOrManyVisitor;

impl OneOrManyVisitor {
    /// serde's own error would show the value: these keys hold secrets.
    fn not_a_string<E: serde::de::Error>(kind: &str) -> E {
        E::custom(format!(
            "invalid type: {kind}, expected a string or a list of strings (quote the value)"
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<OneOrMany, E> {
        crate::config_values::expand_env(value, |name| std::env::var(name).ok())
            .map(|expanded| OneOrMany::One(EnvString(expanded)))
            .map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element::<EnvString>()? {
            values.push(value);
        }
        Ok(OneOrMany::Many(values))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<OneOrMany, E> {
        Err(Self::not_a_string("boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<OneOrMany, E> {
        Err(Self::not_a_string("integer"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<OneOrMany, E> {
        Err(Self::not_a_string("integer"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<OneOrMany, E> {
        Err(Self::not_a_string("floating point number"))
    }
}

impl OneOrMany {
    fn into_vec(self) -> Vec<EnvString> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhooks {
    listen_address: Option<EnvString>,
    path: Option<EnvString>,
    verify_token: Option<OneOrMany>,
    verify_token_file: Option<OneOrMany>,
    app_secret: Option<OneOrMany>,
    app_secret_file: Option<OneOrMany>,
    bearer_token: Option<OneOrMany>,
    bearer_token_file: Option<OneOrMany>,
    body_size_limit: Option<ByteSize>,
    header_timeout: Option<HumanDuration>,
    body_timeout: Option<HumanDuration>,
    dedup_window: Option<usize>,
    series_limit: Option<usize>,
    web_config_file: Option<EnvString>,
}

/// `key` and `key_file` together: inline values first, then files; none empty.
fn sources(
    key: &str,
    inline: Option<OneOrMany>,
    files: Option<OneOrMany>,
) -> Result<Vec<SecretSource>, String> {
    let mut out = Vec::new();
    for value in inline.map(OneOrMany::into_vec).unwrap_or_default() {
        if value.0.is_empty() {
            return Err(format!("webhooks.{key} must not be empty"));
        }
        out.push(SecretSource::Inline(Secret::new(value.0)));
    }
    for path in files.map(OneOrMany::into_vec).unwrap_or_default() {
        if path.0.is_empty() {
            return Err(format!("webhooks.{key}_file must not be empty"));
        }
        out.push(SecretSource::File(PathBuf::from(path.0)));
    }
    Ok(out)
}

impl RawWebhooks {
    /// `base` resolves a relative `web_config_file` (the config file's directory).
    pub(crate) fn validate(self, base: &Path) -> Result<WebhooksConfig, String> {
        let path = self.path.map_or_else(|| DEFAULT_PATH.to_owned(), |p| p.0);
        if !path.starts_with('/') {
            return Err(format!("webhooks.path {path:?} must start with /"));
        }
        let config = WebhooksConfig {
            listen_address: self
                .listen_address
                .map_or_else(|| DEFAULT_LISTEN_ADDRESS.to_owned(), |a| a.0),
            path,
            verify_tokens: sources("verify_token", self.verify_token, self.verify_token_file)?,
            app_secrets: sources("app_secret", self.app_secret, self.app_secret_file)?,
            bearer_tokens: sources("bearer_token", self.bearer_token, self.bearer_token_file)?,
            body_size_limit: self
                .body_size_limit
                .map_or(DEFAULT_BODY_SIZE_LIMIT, |b| b.0),
            header_timeout: self.header_timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
            body_timeout: self.body_timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
            dedup_window: self
                .dedup_window
                .unwrap_or(super::dedup::DEFAULT_GENERATION),
            series_limit: self.series_limit.unwrap_or(DEFAULT_SERIES_LIMIT),
            web_config_file: self.web_config_file.map(|f| base.join(f.0)),
        };
        if config.app_secrets.is_empty() && config.bearer_tokens.is_empty() {
            return Err(
                "webhooks: set app_secret(_file) or bearer_token(_file): deliveries must be verified"
                    .into(),
            );
        }
        if config.body_size_limit == 0 {
            return Err("webhooks.body_size_limit must be at least 1 byte".into());
        }
        if config.header_timeout.is_zero() || config.body_timeout.is_zero() {
            return Err("webhooks: header_timeout and body_timeout must be greater than 0".into());
        }
        if config.dedup_window == 0 || config.series_limit == 0 {
            return Err("webhooks: dedup_window and series_limit must be at least 1".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<WebhooksConfig, String> {
        let raw: RawWebhooks = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        raw.validate(Path::new("/etc/we"))
    }

    #[test]
    fn defaults_fill_what_is_not_written() {
        let config = parse("app_secret: s\n").unwrap();
        assert_eq!(config.listen_address, ":10111");
        assert_eq!(config.path, "/webhooks/whatsapp");
        assert_eq!(config.body_size_limit, 1_048_576);
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.body_timeout, Duration::from_secs(10));
        assert_eq!(config.dedup_window, 100_000);
        assert_eq!(config.series_limit, 10_000);
        assert!(config.verify_tokens.is_empty() && config.bearer_tokens.is_empty());
        assert_eq!(config.web_config_file, None);
    }

    #[test]
    fn secrets_come_one_or_many_inline_and_from_files() {
        let config = parse(
            "app_secret: [a, b]\napp_secret_file: /run/c\nverify_token: v\n\
             bearer_token_file: [/run/t1, /run/t2]\nweb_config_file: web.yml\n",
        )
        .unwrap();
        assert_eq!(
            config.app_secrets,
            vec![
                SecretSource::Inline(Secret::new("a")),
                SecretSource::Inline(Secret::new("b")),
                SecretSource::File("/run/c".into()),
            ]
        );
        assert_eq!(
            config.verify_tokens,
            vec![SecretSource::Inline(Secret::new("v"))]
        );
        assert_eq!(
            config.bearer_tokens,
            vec![
                SecretSource::File("/run/t1".into()),
                SecretSource::File("/run/t2".into())
            ]
        );
        assert_eq!(config.web_config_file, Some("/etc/we/web.yml".into()));
    }

    #[test]
    fn bad_sections_are_refused_with_a_reason() {
        let cases = [
            ("path: /x\n", "deliveries must be verified"),
            ("app_secret: s\npath: x\n", "must start with /"),
            (
                "app_secret: \"\"\n",
                "webhooks.app_secret must not be empty",
            ),
            ("app_secret: s\nbody_size_limit: 0\n", "at least 1 byte"),
            ("app_secret: s\nbody_timeout: 0s\n", "greater than 0"),
            ("app_secret: s\ndedup_window: 0\n", "at least 1"),
            ("app_secret: s\nsecret: x\n", "unknown field `secret`"),
            (
                "app_secret: ${WE_TEST_UNSET_WEBHOOK_SECRET}\n",
                "environment variable WE_TEST_UNSET_WEBHOOK_SECRET is not set",
            ),
            (
                "bearer_token: [a, \"${WE_TEST_UNSET_WEBHOOK_SECRET}\"]\n",
                "environment variable WE_TEST_UNSET_WEBHOOK_SECRET is not set",
            ),
            (
                "app_secret: {value: s}\n",
                "invalid type: map, expected a string or a list of strings",
            ),
        ];
        for (yaml, expected) in cases {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml:?}: {err}");
        }
    }

    #[test]
    fn a_secret_yaml_reads_as_a_number_or_boolean_is_refused_without_its_value() {
        for (yaml, kind) in [
            ("app_secret: 738121\n", "integer"),
            ("app_secret: -738121\n", "integer"),
            ("verify_token: 7381.21\n", "floating point number"),
            ("app_secret: s\nbearer_token: true\n", "boolean"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(&format!("invalid type: {kind}, expected a string or a list of strings (quote the value)")), "{yaml:?}: {err}");
            assert!(!err.contains("7381"), "{err}");
        }
        // Quoted, the same value is a secret.
        let config = parse("app_secret: \"738121\"\n").unwrap();
        assert_eq!(
            config.app_secrets,
            vec![SecretSource::Inline(Secret::new("738121"))]
        );
    }

    #[test]
    fn redacted_section_shows_no_inline_secret() {
        let config = parse(
            "app_secret: [s3cr3t-a, s3cr3t-b]\nverify_token: v3r1fy\nbearer_token_file: /run/t\n",
        )
        .unwrap();
        let text = serde_yaml::to_string(&config.redacted()).unwrap();
        for secret in ["s3cr3t-a", "s3cr3t-b", "v3r1fy"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("app_secret:\n- <secret>\n- <secret>\n"),
            "{text}"
        );
        assert!(text.contains("bearer_token_file:\n- /run/t\n"), "{text}");
    }

    #[test]
    fn credentials_read_files_and_name_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("we-webhook-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let yaml = format!("app_secret: inline\napp_secret_file: {}\n", file.display());
        let credentials = parse(&yaml).unwrap().credentials().unwrap();
        let values: Vec<&str> = credentials.app_secrets.iter().map(Secret::expose).collect();
        assert_eq!(values, ["inline", "from-file"]);
        let missing = parse(&format!(
            "app_secret_file: {}\n",
            dir.join("nope").display()
        ))
        .unwrap()
        .credentials()
        .unwrap_err()
        .to_string();
        assert!(missing.contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
