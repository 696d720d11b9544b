//! The running configuration as YAML, for the `/config` page: every default resolved, and
//! every inline secret written as `<secret>`. A secret read from a file shows its
//! `*_file` path, which is not a secret.

use serde_yaml::{Mapping, Value};

use crate::config::{Config, Target, TlsConfig};
pub use crate::config_values::REDACTED;
use crate::config_values::{duration_text as duration, put};

/// The config in the file format, secrets redacted.
pub fn redacted_yaml(config: &Config) -> String {
    let mut root = Mapping::new();
    let global = &config.global;
    let mut g = Mapping::new();
    put(&mut g, "interval", duration(global.interval));
    put(&mut g, "timeout", duration(global.timeout));
    if let Some(stale_after) = global.stale_after {
        put(&mut g, "stale_after", duration(stale_after));
    }
    put(&mut g, "max_concurrent_polls", global.max_concurrent_polls);
    put(&mut g, "body_size_limit", global.body_size_limit);
    put(
        &mut g,
        "target_files_refresh_interval",
        duration(global.target_files_refresh_interval),
    );
    put(&mut root, "global", g);
    if !config.target_files.is_empty() {
        put(&mut root, "target_files", config.target_files.clone());
    }
    let targets: Vec<Value> = config.targets.iter().map(|t| target(t)).collect();
    put(&mut root, "targets", targets);
    if let Some(webhooks) = &config.webhooks {
        put(&mut root, "webhooks", webhooks.redacted());
    }
    // Serializing a tree of plain values cannot fail; say so rather than print nothing.
    serde_yaml::to_string(&Value::Mapping(root))
        .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
}

fn target(target: &Target) -> Value {
    let mut t = Mapping::new();
    put(&mut t, "name", target.name.as_str());
    put(&mut t, "type", target.type_name());
    put(&mut t, "base_url", target.base_url.as_str());
    put(&mut t, "interval", duration(target.interval));
    put(&mut t, "timeout", duration(target.timeout));
    put(&mut t, "stale_after", duration(target.stale_after));
    put(&mut t, "body_size_limit", target.body_size_limit);
    target.kind.redact(&mut t);
    if !target.labels.is_empty() {
        let labels: Mapping = target
            .labels
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect();
        put(&mut t, "labels", labels);
    }
    if target.tls != TlsConfig::default() {
        put(&mut t, "tls_config", tls(&target.tls));
    }
    Value::Mapping(t)
}

fn tls(tls: &TlsConfig) -> Mapping {
    let mut m = Mapping::new();
    for (key, path) in [
        ("ca_file", &tls.ca_file),
        ("cert_file", &tls.cert_file),
        ("key_file", &tls.key_file),
    ] {
        if let Some(path) = path {
            put(&mut m, key, path.display().to_string());
        }
    }
    if tls.insecure_skip_verify {
        put(&mut m, "insecure_skip_verify", true);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SECRETS: [&str; 6] = [
        "onprem-api-key-VALUE-0001",
        "onprem-password-VALUE-0002",
        "onprem-bearer-VALUE-0003",
        "cloud-token-VALUE-0004",
        "d360-key-VALUE-0005",
        "kapso-key-VALUE-0006",
    ];

    fn config() -> Config {
        let text = format!(
            "global:\n  interval: 1m30s\n  stale_after: 10m\n\
             targets:\n\
             - name: op\n  type: onprem\n  base_url: https://wa.example.com/prefix\n  \
               api_key: {}\n  username: monitor\n  password: {}\n  labels:\n    team: ops\n  \
               tls_config:\n    ca_file: /etc/ca.pem\n    insecure_skip_verify: true\n\
             - name: op-bearer\n  type: onprem\n  base_url: http://h\n  bearer_token: {}\n\
             - name: op-files\n  type: onprem\n  base_url: http://h\n  api_key_file: /run/k\n  \
               username: u\n  password_file: /run/pw\n\
             - name: cloud\n  type: cloud_api\n  access_token: {}\n  waba_id: 12\n  \
               phone_number_ids: [34]\n  discover: true\n\
             - name: d360\n  type: dialog360\n  api_key: {}\n\
             - name: kapso\n  type: kapso\n  api_key: {}\n  config_id: cfg-1\n\
             - name: kapso-file\n  type: kapso\n  api_key_file: /run/kapso\n  config_id: cfg-2\n",
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4], SECRETS[5]
        );
        Config::parse(&text, Path::new("test.yaml")).unwrap()
    }

    #[test]
    fn secrets_are_redacted_and_the_rest_is_shown() {
        let yaml = redacted_yaml(&config());
        for secret in SECRETS {
            assert!(!yaml.contains(secret), "{secret} in\n{yaml}");
        }
        assert_eq!(yaml.matches("<secret>").count(), 6, "{yaml}");
        for expected in [
            "  interval: 1m 30s\n",
            "  stale_after: 10m\n",
            "- name: op\n  type: onprem\n  base_url: https://wa.example.com/prefix\n  interval: 1m 30s\n  timeout: 10s\n  stale_after: 10m\n  body_size_limit: 1048576\n  api_key: <secret>\n  username: monitor\n  password: <secret>\n  endpoints:\n  - health\n  - support\n  labels:\n    team: ops\n  tls_config:\n    ca_file: /etc/ca.pem\n    insecure_skip_verify: true\n",
            "  bearer_token: <secret>\n",
            "  api_key_file: /run/k\n  username: u\n  password_file: /run/pw\n",
            "  access_token: <secret>\n  api_version: v25.0\n  waba_id: '12'\n  phone_number_ids:\n  - '34'\n  discover: true\n  discovery_interval: 10m\n  usage_threshold: 0.8\n",
            "  api_key_file: /run/kapso\n  config_id: cfg-2\n",
        ] {
            assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
        }
    }

    #[test]
    fn the_page_is_a_config_file_again_once_secrets_are_filled_in() {
        let original = config();
        let yaml = redacted_yaml(&original);
        let mut secrets = SECRETS.iter();
        let mut filled = String::new();
        for (i, part) in yaml.split(REDACTED).enumerate() {
            if i > 0 {
                filled.push_str(secrets.next().unwrap());
            }
            filled.push_str(part);
        }
        let again = Config::parse(&filled, Path::new("test.yaml")).unwrap();
        assert_eq!(again, original);
    }
}
