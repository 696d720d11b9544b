//! The shipped alerting rules, their promtool unit tests, the runbook and the example
//! Prometheus and Alertmanager configurations: promtool and amtool must accept them, and
//! every alert must be documented, labelled and tested.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

mod markdown;
use markdown::{anchor, headings};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RULES_DIR: &str = "alerts";
const RULES_FILE: &str = "alerts/whatsapp-exporter.rules.yml";
const RUNBOOK: &str = "alerts/RUNBOOK.md";
const TESTS_DIR: &str = "tests/alerts";
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const ALERTMANAGER_CONFIG: &str = "deploy/alertmanager/alertmanager.yml";

const SEVERITIES: &[&str] = &["critical", "warning", "info"];
const COMPONENTS: &[&str] = &["gateway", "messaging", "client", "exporter"];

/// Runs `tool args` in the repository root and fails the test, with the tool's output, unless
/// it exits with success.
fn run(tool: &str, args: &[&str]) {
    let output = match Command::new(tool).args(args).current_dir(ROOT).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` is not installed: tests/run.sh installs Debian's prometheus (promtool) \
             and prometheus-alertmanager (amtool) packages"
        ),
        Err(e) => panic!("cannot run `{tool}`: {e}"),
    };
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// The files of `dir` (relative to the repository root) whose names end in `suffix`, sorted,
/// as paths relative to the root.
fn files(dir: &str, suffix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(Path::new(ROOT).join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(suffix))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {suffix} file in {dir}");
    found
}

fn read(path: &str) -> String {
    let full: PathBuf = Path::new(ROOT).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn seq<'a>(value: &'a Value, key: &str, context: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{context}: `{key}` is not a list"))
}

fn string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The alerting rules of every rule file, by name.
fn alerts() -> BTreeMap<String, Value> {
    let mut alerts = BTreeMap::new();
    for path in files(RULES_DIR, ".yml") {
        let doc = yaml(&path);
        for group in seq(&doc, "groups", &path) {
            for rule in seq(group, "rules", &path) {
                if let Some(name) = string(rule, "alert") {
                    let previous = alerts.insert(name.to_owned(), rule.clone());
                    assert!(previous.is_none(), "{path}: alert {name} defined twice");
                }
            }
        }
    }
    assert!(!alerts.is_empty(), "no alerting rule found");
    alerts
}

#[test]
fn promtool_accepts_the_rule_files() {
    let rule_files = files(RULES_DIR, ".yml");
    let mut args = vec!["check", "rules"];
    args.extend(rule_files.iter().map(String::as_str));
    run("promtool", &args);
}

#[test]
fn promtool_rule_tests_pass() {
    let tests = files(TESTS_DIR, ".test.yml");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    run("promtool", &args);
}

#[test]
fn promtool_accepts_the_example_prometheus_config() {
    run("promtool", &["check", "config", PROMETHEUS_CONFIG]);
}

#[test]
fn amtool_accepts_the_example_alertmanager_config() {
    run("amtool", &["check-config", ALERTMANAGER_CONFIG]);
}

#[test]
fn every_alert_is_labelled_and_annotated() {
    for (name, rule) in alerts() {
        assert!(
            name.starts_with("WhatsApp")
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name.len() > "WhatsApp".len()
                && name["WhatsApp".len()..].starts_with(|c: char| c.is_ascii_uppercase()),
            "{name}: alert names are CamelCase and start with WhatsApp"
        );
        let labels = rule.get("labels").unwrap_or(&Value::Null);
        let severity = string(labels, "severity").unwrap_or_default();
        assert!(
            SEVERITIES.contains(&severity),
            "{name}: severity {severity:?} is not one of {SEVERITIES:?}"
        );
        let component = string(labels, "component").unwrap_or_default();
        assert!(
            COMPONENTS.contains(&component),
            "{name}: component {component:?} is not one of {COMPONENTS:?}"
        );
        let annotations = rule.get("annotations").unwrap_or(&Value::Null);
        let summary = string(annotations, "summary").unwrap_or_default();
        assert!(!summary.is_empty(), "{name}: no summary");
        assert!(
            !summary.contains("{{"),
            "{name}: the summary must be static"
        );
        let description = string(annotations, "description").unwrap_or_default();
        assert!(
            description.contains("{{"),
            "{name}: the description must be a template naming what is affected"
        );
        // The shipped form is the relative path; a site may prefix its own base URL.
        let runbook_url = string(annotations, "runbook_url").unwrap_or_default();
        let expected = format!("{RUNBOOK}#{}", name.to_lowercase());
        assert!(
            runbook_url.ends_with(&expected),
            "{name}: runbook_url {runbook_url:?} does not end with {expected:?}"
        );
        assert!(
            rule.get("expr").and_then(Value::as_str).is_some(),
            "{name}: no expr"
        );
    }
}

#[test]
fn every_alert_has_a_runbook_section() {
    let runbook = read(RUNBOOK);
    let headings = headings(&runbook);
    let mut anchors = BTreeSet::new();
    for (_, text) in &headings {
        assert!(
            anchors.insert(anchor(text)),
            "{RUNBOOK}: two headings have the anchor #{}",
            anchor(text)
        );
    }
    let alerts = alerts();
    for (name, rule) in &alerts {
        let url = string(&rule["annotations"], "runbook_url").unwrap_or_default();
        let fragment = url.rsplit_once('#').map(|(_, f)| f).unwrap_or_default();
        assert!(
            anchors.contains(fragment),
            "{name}: {RUNBOOK} has no heading with the anchor #{fragment}"
        );
        assert!(
            headings.iter().any(|(_, text)| text == name),
            "{name}: {RUNBOOK} has no heading `{name}`"
        );
    }
    // And no section documents an alert that does not exist (a renamed one, say).
    for (_, text) in &headings {
        if text.starts_with("WhatsApp") {
            assert!(
                alerts.contains_key(text),
                "{RUNBOOK}: section {text} names no alert"
            );
        }
    }
}

#[test]
fn every_threshold_is_documented_in_the_runbook() {
    let runbook = read(RUNBOOK);
    let rules = yaml(RULES_FILE);
    let mut thresholds = 0;
    for group in seq(&rules, "groups", RULES_FILE) {
        for rule in seq(group, "rules", RULES_FILE) {
            if let Some(record) = string(rule, "record") {
                thresholds += 1;
                assert!(
                    runbook.contains(record),
                    "{RUNBOOK} does not mention the threshold {record}"
                );
            }
        }
    }
    assert!(
        thresholds > 0,
        "no threshold recording rule in {RULES_FILE}"
    );
}

#[test]
fn every_alert_is_tested_firing() {
    let mut tested = BTreeSet::new();
    for path in files(TESTS_DIR, ".test.yml") {
        let doc = yaml(&path);
        for test in seq(&doc, "tests", &path) {
            let Some(cases) = test.get("alert_rule_test").and_then(Value::as_sequence) else {
                continue;
            };
            for case in cases {
                let name = string(case, "alertname").unwrap_or_default();
                let firing = case
                    .get("exp_alerts")
                    .and_then(Value::as_sequence)
                    .is_some_and(|alerts| !alerts.is_empty());
                if firing {
                    tested.insert(name.to_owned());
                }
            }
        }
    }
    let untested: Vec<String> = alerts()
        .into_keys()
        .filter(|name| !tested.contains(name))
        .collect();
    assert!(
        untested.is_empty(),
        "no promtool test in {TESTS_DIR} expects these alerts to fire: {untested:?}"
    );
}

#[test]
fn alertmanager_inhibitions_name_existing_alerts() {
    let alerts = alerts();
    let config = yaml(ALERTMANAGER_CONFIG);
    let mut named = 0;
    for rule in seq(&config, "inhibit_rules", ALERTMANAGER_CONFIG) {
        for side in ["source_matchers", "target_matchers"] {
            for matcher in seq(rule, side, ALERTMANAGER_CONFIG) {
                let matcher = matcher.as_str().unwrap_or_default();
                let Some(value) = matcher.strip_prefix("alertname") else {
                    continue;
                };
                // `="A"`, `=~"A|B"`, `!~"A|B"`: the names of a plain alternation; a regex
                // such as `WhatsApp.+` names no alert.
                let value = value.trim_start_matches(['=', '!', '~']).trim_matches('"');
                if value.contains(['.', '*', '+', '(', '[']) {
                    continue;
                }
                for name in value.split('|') {
                    named += 1;
                    assert!(
                        alerts.contains_key(name),
                        "{ALERTMANAGER_CONFIG}: {side} name {name}, which no rule defines"
                    );
                }
            }
        }
    }
    assert!(named > 0, "{ALERTMANAGER_CONFIG} names no alert");
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor("WhatsAppGatewayDown"), "whatsappgatewaydown");
    assert_eq!(
        anchor("Thresholds and how to change them"),
        "thresholds-and-how-to-change-them"
    );
    assert_eq!(anchor("`for` durations"), "for-durations");
}
