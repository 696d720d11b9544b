//! The Grafana dashboards of `dashboards/`, offline:
//!
//! - against Grafana's own dashboard types (`@grafana/schema`) and the dashboards' rules,
//!   through `tests/dashboards/` (`tsc`, then `node check.mjs`), with the `node_modules`
//!   that `tests/run.sh` installs (`npm ci --prefix tests/dashboards`);
//! - in Rust: every metric a panel's PromQL names is one the exporter exposes (its metric
//!   families and its own registry), so a renamed metric fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use whatsapp_exporter::exposition::{Family, Format};
use whatsapp_exporter::self_metrics::SelfMetrics;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Series a query may name that do not come from the exporter: Prometheus' own.
const PROMETHEUS_SERIES: &[&str] = &["ALERTS", "up"];

fn check_dir() -> PathBuf {
    Path::new(ROOT).join("tests").join("dashboards")
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn dashboards_pass_grafana_types_and_rules() {
    let dir = check_dir();
    let tsc = dir.join("node_modules").join(".bin").join("tsc");
    assert!(
        tsc.exists(),
        "{} is missing: tests/run.sh runs `npm ci --prefix tests/dashboards` first \
         (run it yourself when calling cargo test directly)",
        dir.join("node_modules").display()
    );
    run(
        Command::new(&tsc).arg("-p").arg(&dir),
        "tsc -p tests/dashboards",
    );
    run(
        Command::new("node").arg(dir.join("check.mjs")),
        "node tests/dashboards/check.mjs",
    );
}

/// The names of every sample the exporter can expose.
fn exported_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = Family::ALL.iter().map(|f| f.name().to_owned()).collect();
    let mut text = String::new();
    SelfMetrics::default().render(&mut text, Format::Text);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        names.insert(line[..end].to_owned());
    }
    names.extend(PROMETHEUS_SERIES.iter().map(|s| (*s).to_owned()));
    names
}

/// Every PromQL expression of a dashboard, with the title of its panel.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut panels: Vec<&Value> = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let mut out = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((title.clone(), expr.to_owned()));
            }
        }
    }
    out
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: its words outside strings, comments,
/// label matchers, ranges and label lists that are neither functions, aggregations,
/// keywords, numbers nor variables.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut skip_label_list = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_label_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_label_list = false;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (word_char(chars[i]) || chars[i] == '{' || chars[i] == '}')
                {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (word_char(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if word_char(c) => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if LABEL_LISTS.contains(&word.as_str()) {
                    skip_label_list = next == Some(&'(');
                } else if next == Some(&'(')
                    || AGGREGATIONS.contains(&word.as_str())
                    || KEYWORDS.contains(&word.as_str())
                {
                    // A function, an aggregation (its modifier may come first) or a keyword.
                } else {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_are_parsed_out_of_promql() {
    let expr = "# comment with whatsapp_nothing\n\
        max by (target, node) (1 * (whatsapp_gateway_status{target=~\"$target\", status=\"connected\"} == 1))\n\
        and on (target) predict_linear(whatsapp_free_space_bytes{node=~\"$node\"}[6h], 86400) < 9e18\n\
        or on () label_replace(vector(0), \"reason\", \"none\", \"\", \"\")\n\
        - on (target, schema) group_left () rate(process_cpu_seconds_total[$__rate_interval]) + ALERTS";
    assert_eq!(
        metric_names(expr),
        [
            "whatsapp_gateway_status",
            "whatsapp_free_space_bytes",
            "process_cpu_seconds_total",
            "ALERTS"
        ]
    );
}

#[test]
fn dashboard_queries_name_only_exported_metrics() {
    let known = exported_names();
    let mut dashboards = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("dashboards"))
        .expect("dashboards/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        dashboards += 1;
        for (title, expr) in queries(&dashboard) {
            let names = metric_names(&expr);
            if names.is_empty() {
                failures.push(format!(
                    "{} / {title}: selects no metric: {expr}",
                    path.display()
                ));
            }
            for name in names.iter().filter(|n| !known.contains(*n)) {
                failures.push(format!(
                    "{} / {title}: {name} is not a metric the exporter exposes",
                    path.display()
                ));
            }
        }
    }
    assert_eq!(
        dashboards, 3,
        "dashboards/ should hold the three dashboards"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
