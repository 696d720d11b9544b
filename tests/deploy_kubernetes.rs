//! The Kubernetes deployment (`deploy/kubernetes/`) and the monitoring mixin
//! (`deploy/mixin/`).
//!
//! - `deploy/kubernetes/monitoring/` is generated here from `alerts/` and `dashboards/`
//!   (a PrometheusRule per rule file, a Grafana sidecar ConfigMap per dashboard, and their
//!   kustomization): the test fails when the committed files differ, and
//!   `WHATSAPP_EXPORTER_REGENERATE=1 cargo test --test deploy_kubernetes` rewrites them.
//! - The kustomizations reference files that exist, every file is used, and the labels,
//!   selectors, ports, probes, mounts, secrets and image of the workloads agree with each
//!   other, with the configuration, with the image (`deploy/docker/Dockerfile`) and with
//!   the alerts.
//! - Every manifest, and what kustomize renders, validates against the Kubernetes schemas
//!   (kubernetes-validate, strict) and, for ServiceMonitor and PrometheusRule, against the
//!   Prometheus Operator CRD schemas; the mixin evaluates to exactly the shipped rules and
//!   dashboards. Those checks need the Python packages of
//!   `tests/deploy/kubernetes/requirements.txt` and kustomize (`kubectl kustomize`), and
//!   fail when they are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

use serde::Deserialize as _;
use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");

const K8S_DIR: &str = "deploy/kubernetes";
const BASE_DIR: &str = "deploy/kubernetes/base";
const SHARDED_DIR: &str = "deploy/kubernetes/sharded";
const MONITORING_DIR: &str = "deploy/kubernetes/monitoring";
const SECRET_EXAMPLE: &str = "deploy/kubernetes/base/secret.example.yaml";
const RULES_DIR: &str = "alerts";
const DASHBOARDS_DIR: &str = "dashboards";
const MIXIN: &str = "deploy/mixin/mixin.libsonnet";
const DOCKERFILE: &str = "deploy/docker/Dockerfile";
const HELPER: &str = "tests/deploy/kubernetes/check.py";
const REQUIREMENTS: &str = "tests/deploy/kubernetes/requirements.txt";

/// Set (to anything but `0` or nothing) to rewrite the generated files.
const REGENERATE: &str = "WHATSAPP_EXPORTER_REGENERATE";
const REGENERATE_COMMAND: &str =
    "WHATSAPP_EXPORTER_REGENERATE=1 cargo test --test deploy_kubernetes";

/// The newest Kubernetes version whose schemas the pinned kubernetes-validate ships.
const KUBERNETES_VERSION: &str = "1.37.0";

const APP: &str = "whatsapp-exporter";
const PORT_NAME: &str = "http-metrics";
const PORT: u64 = 10109;
const CONFIG_MOUNT: &str = "/etc/whatsapp-exporter";
const IMAGE_PLACEHOLDER: &str = "whatsapp-exporter:latest";

// ------------------------------------------------------------------------------------------
// Files and YAML
// ------------------------------------------------------------------------------------------

fn full(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(full(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The single YAML document of a file.
fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// Every non-empty document of a multi-document YAML text.
fn documents(text: &str, context: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|e| panic!("parsing {context}: {e}"))
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// The files of `dir` whose names end in `suffix`, sorted, relative to the root.
fn files(dir: &str, suffix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(full(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(suffix))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {suffix} file in {dir}");
    found
}

/// Every file under `dir`, recursively, relative to the root.
fn tree(dir: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(full(dir)).unwrap_or_else(|e| panic!("reading {dir}: {e}")) {
        let entry = entry.unwrap();
        let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            found.extend(tree(&path));
        } else {
            found.insert(path);
        }
    }
    found
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// `dir/relative`, with `..` and `.` resolved textually.
fn join(dir: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').collect();
    for part in relative.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The value at a path of mapping keys and sequence indexes (`"spec.ports.0.name"`).
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    let mut current = value;
    for key in path.split('.') {
        current = match key.parse::<usize>() {
            Ok(index) if current.is_sequence() => current.get(index),
            _ => current.get(key),
        }
        .unwrap_or_else(|| panic!("no `{path}` (at `{key}`) in {}", short(value)));
    }
    current
}

fn str_at<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string in {}", short(value)))
}

fn seq_at<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("`{path}` is not a list in {}", short(value)))
}

/// The value of `key` (which may hold dots) in a ConfigMap's data.
fn data<'a>(config_map: &'a Value, key: &str) -> &'a str {
    at(config_map, "data")
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: no data key {key}", short(config_map)))
}

/// `kind/name` of a resource, for messages.
fn short(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind}/{name}")
}

/// A mapping of string keys to string values, as a BTreeMap.
fn string_map(value: &Value, context: &str) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{context} is not a mapping"))
        .iter()
        .map(|(k, v)| {
            let k = k.as_str().unwrap_or_else(|| panic!("{context}: key {k:?}"));
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{context}: {k} is not a string (quote it)"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    !small.is_empty() && small.iter().all(|(k, v)| big.get(k) == Some(v))
}

fn mapping<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Mapping::new();
    for (key, value) in entries {
        map.insert(Value::from(key), value);
    }
    Value::Mapping(map)
}

fn to_json(value: &Value) -> Json {
    serde_json::to_value(value).expect("YAML value as JSON")
}

/// The first difference between two JSON values, numbers compared as numbers (jsonnet
/// writes `1` for `1.0`).
fn json_difference(a: &Json, b: &Json, path: &str) -> Option<String> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            (x.as_f64() != y.as_f64()).then(|| format!("{path}: {x} != {y}"))
        }
        (Json::Array(x), Json::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} items != {} items", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (x, y))| json_difference(x, y, &format!("{path}[{i}]")))
        }
        (Json::Object(x), Json::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .find_map(|key| match (x.get(key), y.get(key)) {
                    (Some(x), Some(y)) => json_difference(x, y, &format!("{path}.{key}")),
                    (Some(_), None) => Some(format!("{path}.{key}: only on the left")),
                    (None, _) => Some(format!("{path}.{key}: only on the right")),
                })
        }
        (x, y) => (x != y).then(|| format!("{path}: {x} != {y}")),
    }
}

// ------------------------------------------------------------------------------------------
// The generated files of deploy/kubernetes/monitoring/
// ------------------------------------------------------------------------------------------

fn labels(extra: &[(&str, &str)]) -> Value {
    let mut map = Mapping::new();
    map.insert("app.kubernetes.io/name".into(), APP.into());
    map.insert("app.kubernetes.io/component".into(), "monitoring".into());
    for (key, value) in extra {
        map.insert((*key).into(), (*value).into());
    }
    Value::Mapping(map)
}

fn header(sources: &str) -> String {
    format!(
        "# Generated from {sources} by tests/deploy_kubernetes.rs: do not edit.\n\
         # Regenerate with: {REGENERATE_COMMAND}\n"
    )
}

/// `header` and the document as YAML, checked to read back as the same document.
fn render(sources: &str, document: &Value) -> String {
    let body = serde_yaml::to_string(document).expect("rendering YAML");
    let text = format!("{}{body}", header(sources));
    let back: Value = serde_yaml::from_str(&text).expect("reading the rendered YAML");
    assert_eq!(
        &back, document,
        "the YAML rendering of {sources} does not read back"
    );
    text
}

/// The files of `deploy/kubernetes/monitoring/`, by path relative to the root.
fn generated() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut resources = Vec::new();
    for rules_path in files(RULES_DIR, ".yml") {
        let rules = yaml(&rules_path);
        let groups = rules
            .get("groups")
            .unwrap_or_else(|| panic!("{rules_path}: no groups"))
            .clone();
        let stem = file_name(&rules_path)
            .trim_end_matches(".yml")
            .trim_end_matches(".rules");
        let document = mapping([
            ("apiVersion", "monitoring.coreos.com/v1".into()),
            ("kind", "PrometheusRule".into()),
            (
                "metadata",
                mapping([
                    ("name", stem.into()),
                    // prometheus and role: what older kube-prometheus releases select.
                    (
                        "labels",
                        labels(&[("prometheus", "k8s"), ("role", "alert-rules")]),
                    ),
                ]),
            ),
            ("spec", mapping([("groups", groups)])),
        ]);
        let name = format!("prometheusrule-{stem}.yaml");
        out.insert(
            format!("{MONITORING_DIR}/{name}"),
            render(&rules_path, &document),
        );
        resources.push(name);
    }
    for dashboard_path in files(DASHBOARDS_DIR, ".json") {
        let key = file_name(&dashboard_path);
        let stem = key.trim_end_matches(".json");
        let mut data = Mapping::new();
        data.insert(key.into(), read(&dashboard_path).into());
        let document = mapping([
            ("apiVersion", "v1".into()),
            ("kind", "ConfigMap".into()),
            (
                "metadata",
                mapping([
                    ("name", format!("grafana-dashboard-{stem}").into()),
                    // The label the Grafana sidecar (kube-prometheus-stack) looks for.
                    ("labels", labels(&[("grafana_dashboard", "1")])),
                ]),
            ),
            ("data", Value::Mapping(data)),
        ]);
        let name = format!("grafana-dashboard-{stem}.yaml");
        out.insert(
            format!("{MONITORING_DIR}/{name}"),
            render(&dashboard_path, &document),
        );
        resources.push(name);
    }
    let kustomization = mapping([
        ("apiVersion", "kustomize.config.k8s.io/v1beta1".into()),
        ("kind", "Kustomization".into()),
        (
            "resources",
            Value::Sequence(resources.into_iter().map(Value::from).collect()),
        ),
    ]);
    out.insert(
        format!("{MONITORING_DIR}/kustomization.yaml"),
        render(
            &format!("{RULES_DIR}/ and {DASHBOARDS_DIR}/"),
            &kustomization,
        ),
    );
    out
}

fn regenerating() -> bool {
    std::env::var(REGENERATE).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// With `WHATSAPP_EXPORTER_REGENERATE` set, writes the generated files (and removes the
/// others of the directory) once, before any test reads them.
fn ensure_generated() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !regenerating() {
            return;
        }
        let expected = generated();
        std::fs::create_dir_all(full(MONITORING_DIR)).unwrap();
        for stale in tree(MONITORING_DIR) {
            if !expected.contains_key(&stale) {
                std::fs::remove_file(full(&stale)).unwrap();
            }
        }
        for (path, text) in &expected {
            if std::fs::read_to_string(full(path)).ok().as_deref() != Some(text) {
                std::fs::write(full(path), text).unwrap_or_else(|e| panic!("writing {path}: {e}"));
            }
        }
    });
}

#[test]
fn monitoring_files_are_generated_from_alerts_and_dashboards() {
    ensure_generated();
    let expected = generated();
    let present = tree(MONITORING_DIR);
    let mut problems = Vec::new();
    for (path, text) in &expected {
        match std::fs::read_to_string(full(path)) {
            Err(_) => problems.push(format!("{path} is missing")),
            Ok(actual) if &actual != text => {
                let line = actual
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| actual.lines().count().min(text.lines().count()))
                    + 1;
                problems.push(format!("{path} differs from line {line} on"));
            }
            Ok(_) => {}
        }
    }
    for path in present.difference(&expected.keys().cloned().collect()) {
        problems.push(format!("{path} is not generated (stale?)"));
    }
    assert!(
        problems.is_empty(),
        "deploy/kubernetes/monitoring/ is out of date with alerts/ and dashboards/:\n  {}\n\
         Run: {REGENERATE_COMMAND}",
        problems.join("\n  ")
    );
}

#[test]
fn generated_resources_fit_kubernetes_limits() {
    ensure_generated();
    for path in files(MONITORING_DIR, ".yaml") {
        let size = read(&path).len();
        // kubectl's client-side apply keeps a copy in an annotation of at most 256 KiB;
        // a ConfigMap holds at most 1 MiB.
        assert!(
            size < 256 * 1024,
            "{path} is {size} bytes: too big for `kubectl apply` without --server-side"
        );
        for document in documents(&read(&path), &path) {
            if str_at(&document, "kind") == "Kustomization" {
                continue;
            }
            let name = str_at(&document, "metadata.name");
            assert!(
                name.len() <= 63
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{path}: {name:?} is not a valid resource name"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// Kustomizations and the consistency of the manifests
// ------------------------------------------------------------------------------------------

/// What the kustomizations of `deploy/kubernetes/` reference.
#[derive(Default)]
struct Kustomizations {
    /// Kustomization directory -> its kustomization.yaml.
    by_dir: BTreeMap<String, Value>,
    /// Files listed as resources: the manifests.
    manifests: BTreeSet<String>,
    /// ConfigMap generator name -> (key, file).
    config_generators: BTreeMap<String, Vec<(String, String)>>,
    /// Every file a kustomization uses, kustomization.yaml included.
    used: BTreeSet<String>,
}

fn kustomizations() -> Kustomizations {
    ensure_generated();
    let mut found = Kustomizations::default();
    let mut problems = Vec::new();
    for path in tree(K8S_DIR) {
        if file_name(&path) != "kustomization.yaml" {
            continue;
        }
        let dir = path.trim_end_matches("/kustomization.yaml").to_owned();
        let document = yaml(&path);
        assert_eq!(
            str_at(&document, "apiVersion"),
            "kustomize.config.k8s.io/v1beta1",
            "{path}"
        );
        assert_eq!(str_at(&document, "kind"), "Kustomization", "{path}");
        found.used.insert(path.clone());
        for resource in document
            .get("resources")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let resource = resource.as_str().expect("resources are paths");
            let target = join(&dir, resource);
            if full(&target).is_dir() {
                if !full(&format!("{target}/kustomization.yaml")).is_file() {
                    problems.push(format!("{path}: {resource} has no kustomization.yaml"));
                }
            } else if full(&target).is_file() {
                found.manifests.insert(target.clone());
                found.used.insert(target);
            } else {
                problems.push(format!("{path}: resource {resource} does not exist"));
            }
        }
        for generator in document
            .get("configMapGenerator")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = str_at(generator, "name").to_owned();
            let mut entries = Vec::new();
            for entry in seq_at(generator, "files") {
                let entry = entry
                    .as_str()
                    .expect("configMapGenerator files are strings");
                let (key, file) = entry.split_once('=').unwrap_or((file_name(entry), entry));
                let target = join(&dir, file);
                if !full(&target).is_file() {
                    problems.push(format!("{path}: generator file {file} does not exist"));
                }
                entries.push((key.to_owned(), target.clone()));
                found.used.insert(target);
            }
            found.config_generators.insert(name, entries);
        }
        for patch in document
            .get("patches")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(file) = patch.get("path").and_then(Value::as_str) {
                let target = join(&dir, file);
                if !full(&target).is_file() {
                    problems.push(format!("{path}: patch {file} does not exist"));
                }
                found.used.insert(target);
            } else {
                assert!(
                    patch.get("patch").is_some(),
                    "{path}: a patch without path or patch"
                );
            }
        }
        found.by_dir.insert(dir, document);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    found
}

#[test]
fn kustomizations_reference_existing_files_and_every_file_is_used() {
    let k = kustomizations();
    let dirs: BTreeSet<&str> = k.by_dir.keys().map(String::as_str).collect();
    assert_eq!(
        dirs,
        BTreeSet::from([BASE_DIR, MONITORING_DIR, SHARDED_DIR]),
        "the kustomizations of {K8S_DIR}"
    );
    // The sharded overlay builds on the base.
    let sharded_resources: Vec<&str> = seq_at(&k.by_dir[SHARDED_DIR], "resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        sharded_resources.contains(&"../base"),
        "{SHARDED_DIR} must build on ../base"
    );
    // The secret example is not deployed: real secrets are not kept in the repository.
    assert!(
        !k.used.contains(SECRET_EXAMPLE),
        "{SECRET_EXAMPLE} must not be listed in a kustomization"
    );
    let unused: Vec<String> = tree(K8S_DIR)
        .into_iter()
        .filter(|path| !k.used.contains(path) && path != SECRET_EXAMPLE)
        .collect();
    assert!(unused.is_empty(), "files no kustomization uses: {unused:?}");
}

/// Every resource of the manifests (and the secret example), by `kind/name` within each
/// kustomization directory.
fn resources(k: &Kustomizations, dir: &str) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    let mut paths: Vec<&String> = k.manifests.iter().collect();
    let secret = SECRET_EXAMPLE.to_owned();
    if dir == BASE_DIR {
        paths.push(&secret);
    }
    for path in paths {
        if !path.starts_with(&format!("{dir}/")) {
            continue;
        }
        for document in documents(&read(path), path) {
            let key = short(&document);
            assert!(
                found.insert(key.clone(), document).is_none(),
                "{key} twice in {dir}"
            );
        }
    }
    found
}

fn container(workload: &Value) -> &Value {
    let containers = seq_at(workload, "spec.template.spec.containers");
    assert_eq!(containers.len(), 1, "{}: one container", short(workload));
    &containers[0]
}

fn args(container: &Value) -> Vec<String> {
    container
        .get("args")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|a| a.as_str().expect("args are strings").to_owned())
        .collect()
}

/// The value of `--flag=value` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// The volume of the pod template mounted at `mount_path`.
fn volume_at<'a>(workload: &'a Value, mount_path: &str) -> &'a Value {
    let mount = seq_at(container(workload), "volumeMounts")
        .iter()
        .find(|m| str_at(m, "mountPath") == mount_path)
        .unwrap_or_else(|| panic!("{}: nothing mounted at {mount_path}", short(workload)));
    assert_eq!(
        mount.get("readOnly").and_then(Value::as_bool),
        Some(true),
        "{}: {mount_path} must be mounted read-only",
        short(workload)
    );
    let name = str_at(mount, "name");
    seq_at(workload, "spec.template.spec.volumes")
        .iter()
        .find(|v| str_at(v, "name") == name)
        .unwrap_or_else(|| panic!("{}: no volume {name}", short(workload)))
}

/// The `*_file` values of a configuration, wherever they are.
fn secret_files(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    (Some(key), Some(path)) if key.ends_with("_file") => {
                        found.insert(path.to_owned());
                    }
                    _ => secret_files(value, found),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| secret_files(v, found)),
        _ => {}
    }
}

/// The exporter's `--config.file` in the image's ENTRYPOINT, and its USER uid.
fn image_defaults() -> (String, u64) {
    let dockerfile = read(DOCKERFILE);
    let entrypoint = dockerfile
        .lines()
        .rfind(|l| l.starts_with("ENTRYPOINT"))
        .unwrap_or_else(|| panic!("{DOCKERFILE}: no ENTRYPOINT"));
    let config = entrypoint
        .split('"')
        .find_map(|word| word.strip_prefix("--config.file="))
        .unwrap_or_else(|| panic!("{DOCKERFILE}: the ENTRYPOINT passes no --config.file="))
        .to_owned();
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .unwrap_or_else(|| panic!("{DOCKERFILE}: no USER"));
    let uid = user["USER ".len()..]
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{DOCKERFILE}: USER is not numeric: {user}"));
    (config, uid)
}

/// The checks every workload (the Deployment, the StatefulSet) passes against the base's
/// Service, ServiceMonitor, configuration and secret example.
fn check_workload(k: &Kustomizations, workload: &Value) {
    let what = short(workload);
    let base = resources(k, BASE_DIR);
    let service = &base[&format!("Service/{APP}")];
    let monitor = &base[&format!("ServiceMonitor/{APP}")];
    let secret = &base["Secret/whatsapp-exporter-secrets"];

    // Labels and selectors.
    let selector = string_map(at(workload, "spec.selector.matchLabels"), &what);
    let pod_labels = string_map(at(workload, "spec.template.metadata.labels"), &what);
    assert!(
        is_subset(&selector, &pod_labels),
        "{what}: selector {selector:?} does not match its pods {pod_labels:?}"
    );
    let service_selector = string_map(at(service, "spec.selector"), "Service selector");
    assert_eq!(
        service_selector, selector,
        "{what}: the Service selects other pods"
    );
    let service_labels = string_map(at(service, "metadata.labels"), "Service labels");
    let monitor_selector = string_map(at(monitor, "spec.selector.matchLabels"), "ServiceMonitor");
    assert!(
        is_subset(&monitor_selector, &service_labels),
        "the ServiceMonitor selector {monitor_selector:?} does not match the Service labels {service_labels:?}"
    );
    assert!(
        monitor
            .get("spec")
            .and_then(|s| s.get("namespaceSelector"))
            .is_none(),
        "the ServiceMonitor looks in its own namespace, where kustomize puts the Service"
    );

    // Ports: the container's, the Service's, the ServiceMonitor's and the listen address.
    let c = container(workload);
    let ports = seq_at(c, "ports");
    assert!(
        ports.iter().any(
            |p| str_at(p, "name") == PORT_NAME && at(p, "containerPort").as_u64() == Some(PORT)
        ),
        "{what}: no container port {PORT_NAME} = {PORT}"
    );
    let args = args(c);
    let listen = flag(&args, "--web.listen-address").unwrap_or(":10109");
    assert!(
        listen.ends_with(&format!(":{PORT}")),
        "{what}: listens on {listen}"
    );
    let service_ports = seq_at(service, "spec.ports");
    assert_eq!(service_ports.len(), 1, "the Service has one port");
    assert_eq!(
        str_at(&service_ports[0], "name"),
        PORT_NAME,
        "Service port name"
    );
    assert_eq!(
        at(&service_ports[0], "port").as_u64(),
        Some(PORT),
        "Service port"
    );
    let target = at(&service_ports[0], "targetPort");
    assert!(
        target.as_str() == Some(PORT_NAME) || target.as_u64() == Some(PORT),
        "the Service's targetPort {target:?} is not the container port"
    );
    for endpoint in seq_at(monitor, "spec.endpoints") {
        assert_eq!(
            str_at(endpoint, "port"),
            PORT_NAME,
            "ServiceMonitor endpoint port"
        );
        assert_eq!(
            str_at(endpoint, "path"),
            "/metrics",
            "ServiceMonitor endpoint path"
        );
    }

    // Probes.
    for (probe, path) in [
        ("livenessProbe", "/-/healthy"),
        ("readinessProbe", "/-/ready"),
    ] {
        assert_eq!(
            str_at(c, &format!("{probe}.httpGet.path")),
            path,
            "{what}: {probe}"
        );
        assert_eq!(
            str_at(c, &format!("{probe}.httpGet.port")),
            PORT_NAME,
            "{what}: {probe}"
        );
    }

    // Security context and resources.
    let (config_file, uid) = image_defaults();
    let pod = at(workload, "spec.template.spec.securityContext");
    assert_eq!(
        at(pod, "runAsNonRoot").as_bool(),
        Some(true),
        "{what}: runAsNonRoot"
    );
    assert_eq!(
        at(pod, "runAsUser").as_u64(),
        Some(uid),
        "{what}: runAsUser is not the image's USER"
    );
    assert_eq!(
        str_at(pod, "seccompProfile.type"),
        "RuntimeDefault",
        "{what}: seccompProfile"
    );
    let sc = at(c, "securityContext");
    assert_eq!(
        at(sc, "readOnlyRootFilesystem").as_bool(),
        Some(true),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        at(sc, "allowPrivilegeEscalation").as_bool(),
        Some(false),
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        at(sc, "capabilities.drop"),
        &Value::from(vec!["ALL"]),
        "{what}: capabilities"
    );
    for key in ["requests.cpu", "requests.memory", "limits.memory"] {
        at(c, &format!("resources.{key}"));
    }
    assert_eq!(
        str_at(c, "image"),
        IMAGE_PLACEHOLDER,
        "{what}: image placeholder"
    );

    // The configuration: the ConfigMap of the base's generator, at the image's --config.file.
    let config_volume = volume_at(workload, CONFIG_MOUNT);
    let config_map = str_at(config_volume, "configMap.name");
    let entries = k
        .config_generators
        .get(config_map)
        .unwrap_or_else(|| panic!("{what}: no configMapGenerator named {config_map}"));
    assert!(
        entries.iter().any(|(key, _)| format!("{CONFIG_MOUNT}/{key}") == config_file),
        "{what}: the image reads --config.file={config_file}, which the ConfigMap {config_map} mounted at {CONFIG_MOUNT} does not hold ({entries:?})"
    );
    assert!(
        flag(&args, "--config.file").is_none(),
        "{what}: --config.file is in the image's ENTRYPOINT; giving it again is an error"
    );

    // The secrets: every *_file of the configuration is a key of the Secret's mount.
    let secret_name = str_at(secret, "metadata.name");
    let mut secret_volume = None;
    for mount in seq_at(c, "volumeMounts") {
        let volume = volume_at(workload, str_at(mount, "mountPath"));
        if volume.get("secret").is_some() {
            secret_volume = Some((str_at(mount, "mountPath").to_owned(), volume));
        }
    }
    let (secret_mount, secret_volume) =
        secret_volume.unwrap_or_else(|| panic!("{what}: no Secret mounted"));
    assert_eq!(
        str_at(secret_volume, "secret.secretName"),
        secret_name,
        "{what}: Secret name"
    );
    let (_, config_path) = &entries[0];
    let mut used = BTreeSet::new();
    secret_files(&yaml(config_path), &mut used);
    assert!(!used.is_empty(), "{config_path}: no *_file secret");
    let keys: BTreeSet<String> = string_map(at(secret, "stringData"), SECRET_EXAMPLE)
        .into_keys()
        .collect();
    let mut referenced = BTreeSet::new();
    for path in &used {
        let key = path
            .strip_prefix(&format!("{secret_mount}/"))
            .unwrap_or_else(|| {
                panic!("{config_path}: {path} is not under the Secret's mount {secret_mount}")
            });
        referenced.insert(key.to_owned());
    }
    assert_eq!(
        referenced, keys,
        "the *_file secrets of {config_path} and the keys of {SECRET_EXAMPLE} differ"
    );
}

#[test]
fn base_deployment_service_and_servicemonitor_agree() {
    let k = kustomizations();
    let base = resources(&k, BASE_DIR);
    let kinds: BTreeSet<&str> = base.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Deployment/whatsapp-exporter",
            "Secret/whatsapp-exporter-secrets",
            "Service/whatsapp-exporter",
            "ServiceMonitor/whatsapp-exporter",
        ]),
        "the resources of {BASE_DIR}"
    );
    let deployment = &base["Deployment/whatsapp-exporter"];
    check_workload(&k, deployment);
    // More replicas would each poll every target.
    assert_eq!(
        at(deployment, "spec.replicas").as_u64(),
        Some(1),
        "one replica"
    );
    assert!(
        flag(&args(container(deployment)), "--shard.count").is_none(),
        "the Deployment is not sharded"
    );

    // The placeholder image can be overridden with `images:`.
    let images = seq_at(&k.by_dir[BASE_DIR], "images");
    assert!(
        images.iter().any(|i| str_at(i, "name") == APP),
        "{BASE_DIR}/kustomization.yaml: no images entry for {APP}"
    );
}

#[test]
fn service_name_is_the_job_the_alerts_expect() {
    // Prometheus Operator names a ServiceMonitor's job after the Service.
    let k = kustomizations();
    let base = resources(&k, BASE_DIR);
    let service = str_at(&base[&format!("Service/{APP}")], "metadata.name");
    for rules_path in files(RULES_DIR, ".yml") {
        for job in read(&rules_path).split("job=\"").skip(1) {
            let job = job.split('"').next().unwrap();
            assert_eq!(job, service, "{rules_path} expects job=\"{job}\"");
        }
    }
}

#[test]
fn sharded_statefulset_is_the_deployment_with_shard_flags() {
    let k = kustomizations();
    let sharded = resources(&k, SHARDED_DIR);
    let statefulset = &sharded[&format!("StatefulSet/{APP}")];
    check_workload(&k, statefulset);

    let c = container(statefulset);
    let args = args(c);
    let replicas = at(statefulset, "spec.replicas").as_u64().expect("replicas");
    assert!(replicas > 1, "a sharded StatefulSet has several replicas");
    let count: u64 = flag(&args, "--shard.count")
        .expect("--shard.count")
        .parse()
        .expect("--shard.count is a number");
    assert_eq!(
        count, replicas,
        "--shard.count must equal replicas: every shard needs its pod"
    );
    assert_eq!(
        flag(&args, "--shard.index"),
        Some("$(POD_NAME)"),
        "--shard.index"
    );
    let env = seq_at(c, "env");
    assert!(
        env.iter().any(|e| str_at(e, "name") == "POD_NAME"
            && e.get("valueFrom").map(|v| str_at(v, "fieldRef.fieldPath"))
                == Some("metadata.name")),
        "POD_NAME comes from the downward API (metadata.name)"
    );
    assert_eq!(
        str_at(statefulset, "spec.serviceName"),
        APP,
        "the governing Service"
    );

    // The pod template is the Deployment's, plus POD_NAME and the --shard.* flags.
    let base = resources(&k, BASE_DIR);
    let deployment = &base[&format!("Deployment/{APP}")];
    let mut template = at(statefulset, "spec.template").clone();
    {
        let container = template["spec"]["containers"][0].as_mapping_mut().unwrap();
        container.remove("env");
        let args: Vec<Value> = args
            .iter()
            .filter(|a| !a.starts_with("--shard."))
            .map(|a| Value::from(a.as_str()))
            .collect();
        container.insert("args".into(), Value::Sequence(args));
    }
    assert_eq!(
        to_json(&template),
        to_json(at(deployment, "spec.template")),
        "the StatefulSet's pod template differs from the Deployment's beyond POD_NAME and --shard.*"
    );
    assert_eq!(
        at(statefulset, "metadata.labels"),
        at(deployment, "metadata.labels")
    );
    assert_eq!(
        at(statefulset, "spec.selector"),
        at(deployment, "spec.selector")
    );
}

/// Runs the exporter with `args` and `--config.check` on the base configuration.
fn config_check(args: &[String]) {
    let k = kustomizations();
    let (_, config) = &k.config_generators["whatsapp-exporter-config"][0];
    let output = Command::new(BIN)
        .args(args)
        .arg(format!("--config.file={}", full(config).display()))
        .arg("--config.check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("SUCCESS"),
        "whatsapp-exporter {args:?} --config.check on {config}: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_exporter_accepts_the_configuration_and_the_flags() {
    let k = kustomizations();
    let base = resources(&k, BASE_DIR);
    config_check(&args(container(&base[&format!("Deployment/{APP}")])));

    let sharded = resources(&k, SHARDED_DIR);
    let args: Vec<String> = args(container(&sharded[&format!("StatefulSet/{APP}")]))
        .into_iter()
        .map(|a| a.replace("$(POD_NAME)", "whatsapp-exporter-2"))
        .collect();
    // --config.check also validates the shard flags.
    config_check(&args);
}

// ------------------------------------------------------------------------------------------
// External tools: kubernetes-validate, the Prometheus Operator models, jsonnet, kustomize
// ------------------------------------------------------------------------------------------

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `python3 tests/deploy/kubernetes/check.py args` and returns its standard output.
fn helper(args: &[&str]) -> String {
    let output = match Command::new("python3")
        .arg(HELPER)
        .args(args)
        .current_dir(ROOT)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not installed; it and the packages of {REQUIREMENTS} \
             (kubernetes-validate, jsonnet, cloudcoil.models.prometheus_operator) are needed: \
             pip install -r {REQUIREMENTS}"
        ),
        Err(e) => panic!("cannot run python3: {e}"),
    };
    match output.status.code() {
        Some(0) => String::from_utf8(output.stdout).expect("UTF-8 output"),
        Some(3) => panic!("{}", String::from_utf8_lossy(&output.stderr).trim_end()),
        _ => panic!(
            "python3 {HELPER} {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            output_text(&output)
        ),
    }
}

/// Validates every document of `paths`; `expected` is how many documents each holds.
fn validate(paths: &[(String, usize)]) {
    let mut args = vec!["validate", KUBERNETES_VERSION];
    args.extend(paths.iter().map(|(p, _)| p.as_str()));
    let out = helper(&args);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut validators = BTreeSet::new();
    for line in out.lines() {
        let result: Json = serde_json::from_str(line).expect("a JSON line");
        let file = result["file"].as_str().unwrap().to_owned();
        *counts.entry(file.clone()).or_default() += 1;
        validators.insert(result["validator"].as_str().unwrap().to_owned());
        if result["result"] != "ok" {
            failures.push(format!(
                "{file}: {}/{} ({}): {}",
                result["kind"], result["name"], result["validator"], result["message"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid manifests:\n{}",
        failures.join("\n")
    );
    for (path, expected) in paths {
        assert_eq!(
            counts.get(path).copied().unwrap_or(0),
            *expected,
            "{path}: validated documents"
        );
    }
    // Both validators ran: nothing was skipped for want of a schema.
    for name in [
        "kubernetes-validate",
        "cloudcoil.models.prometheus_operator",
    ] {
        assert!(
            validators.iter().any(|v| v.starts_with(name)),
            "{name} validated nothing: {validators:?}"
        );
    }
}

#[test]
fn manifests_validate_against_kubernetes_and_prometheus_operator_schemas() {
    let k = kustomizations();
    let mut paths: Vec<(String, usize)> = k
        .manifests
        .iter()
        .chain([SECRET_EXAMPLE.to_owned()].iter())
        .map(|p| (p.clone(), documents(&read(p), p).len()))
        .collect();
    paths.sort();
    validate(&paths);

    // YAML 1.1 readers (PyYAML here; kubectl's and kustomize's go-yaml) read the generated
    // files as serde_yaml does.
    for path in files(MONITORING_DIR, ".yaml") {
        let theirs: Json = serde_json::from_str(&helper(&["yaml", &path])).unwrap();
        let ours = Json::Array(documents(&read(&path), &path).iter().map(to_json).collect());
        if let Some(difference) = json_difference(&ours, &theirs, &path) {
            panic!("PyYAML reads {path} differently: {difference}");
        }
    }
}

#[test]
fn mixin_evaluates_to_the_shipped_rules_and_dashboards() {
    let snippet = format!(
        "local m = import '{MIXIN}';\n\
         {{ prometheusAlerts: m.prometheusAlerts, grafanaDashboards: m.grafanaDashboards }}"
    );
    let out = helper(&["jsonnet", ROOT, &snippet]);
    let mixin: Json = serde_json::from_str(&out).expect("the mixin as JSON");

    let mut groups = Vec::new();
    for rules_path in files(RULES_DIR, ".yml") {
        match to_json(at(&yaml(&rules_path), "groups")) {
            Json::Array(items) => groups.extend(items),
            _ => panic!("{rules_path}: groups is not a list"),
        }
    }
    let expected = serde_json::json!({ "groups": groups });
    if let Some(difference) =
        json_difference(&mixin["prometheusAlerts"], &expected, "prometheusAlerts")
    {
        panic!("{MIXIN}: prometheusAlerts is not the groups of {RULES_DIR}/*.yml: {difference}");
    }

    let dashboards = mixin["grafanaDashboards"]
        .as_object()
        .expect("grafanaDashboards is an object");
    let names: BTreeSet<&str> = dashboards.keys().map(String::as_str).collect();
    let files = files(DASHBOARDS_DIR, ".json");
    let expected_names: BTreeSet<&str> = files.iter().map(|p| file_name(p)).collect();
    assert_eq!(
        names, expected_names,
        "{MIXIN}: grafanaDashboards must list every file of {DASHBOARDS_DIR}/"
    );
    for path in &files {
        let shipped: Json = serde_json::from_str(&read(path)).unwrap();
        if let Some(difference) = json_difference(&dashboards[file_name(path)], &shipped, path) {
            panic!("{MIXIN}: {path} differs: {difference}");
        }
    }
}

/// `kustomize build DIR`, or `kubectl kustomize DIR` (kubectl embeds kustomize).
fn kustomize(dir: &Path) -> String {
    let candidates: [(&str, &[&str]); 2] = [("kustomize", &["build"]), ("kubectl", &["kustomize"])];
    for (tool, args) in candidates {
        let output = match Command::new(tool).args(args).arg(dir).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot run {tool}: {e}"),
        };
        assert!(
            output.status.success(),
            "{tool} {} {} failed:\n{}",
            args.join(" "),
            dir.display(),
            output_text(&output)
        );
        return String::from_utf8(output.stdout).unwrap();
    }
    panic!(
        "neither kustomize nor kubectl is installed: the kustomizations cannot be rendered \
         (install kubectl, which embeds kustomize, or the kustomize binary)"
    );
}

/// `to` relative to the directory `from` (kustomize takes no absolute resource paths).
fn relative(from: &Path, to: &Path) -> String {
    let from = from.canonicalize().unwrap();
    let to = to.canonicalize().unwrap();
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = PathBuf::new();
    for _ in from.components().skip(common) {
        path.push("..");
    }
    for part in to.components().skip(common) {
        path.push(part);
    }
    path.display().to_string()
}

fn by_kind(rendered: &[Value]) -> BTreeMap<String, &Value> {
    rendered.iter().map(|d| (short(d), d)).collect()
}

#[test]
fn kustomizations_render_and_validate() {
    let k = kustomizations();
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut to_validate = Vec::new();
    let mut keep = |name: &str, text: &str| -> Vec<Value> {
        let path = scratch.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let docs = documents(text, name);
        to_validate.push((path.display().to_string(), docs.len()));
        docs
    };

    // base: the generated ConfigMap holds config.yaml and the Deployment mounts it.
    let base = keep("base", &kustomize(&full(BASE_DIR)));
    let kinds = by_kind(&base);
    let config_map = base
        .iter()
        .find(|d| str_at(d, "kind") == "ConfigMap")
        .expect("base renders a ConfigMap");
    let config_name = str_at(config_map, "metadata.name");
    assert!(
        config_name.starts_with("whatsapp-exporter-config-"),
        "hash suffix: {config_name}"
    );
    let (key, file) = &k.config_generators["whatsapp-exporter-config"][0];
    assert_eq!(data(config_map, key), read(file));
    let deployment = kinds[&format!("Deployment/{APP}")];
    assert_eq!(
        str_at(volume_at(deployment, CONFIG_MOUNT), "configMap.name"),
        config_name
    );
    assert_eq!(
        kinds
            .keys()
            .filter(|k| !k.starts_with("ConfigMap/"))
            .collect::<Vec<_>>(),
        [
            "Deployment/whatsapp-exporter",
            "Service/whatsapp-exporter",
            "ServiceMonitor/whatsapp-exporter"
        ]
    );

    // sharded: the StatefulSet instead of the Deployment, behind a headless Service.
    let sharded = keep("sharded", &kustomize(&full(SHARDED_DIR)));
    let kinds = by_kind(&sharded);
    assert_eq!(
        kinds
            .keys()
            .filter(|k| !k.starts_with("ConfigMap/"))
            .collect::<Vec<_>>(),
        [
            "Service/whatsapp-exporter",
            "ServiceMonitor/whatsapp-exporter",
            "StatefulSet/whatsapp-exporter"
        ]
    );
    assert_eq!(
        str_at(kinds[&format!("Service/{APP}")], "spec.clusterIP"),
        "None"
    );
    let statefulset = kinds[&format!("StatefulSet/{APP}")];
    assert_eq!(
        str_at(volume_at(statefulset, CONFIG_MOUNT), "configMap.name"),
        config_name
    );

    // monitoring: what kustomize reads of the generated files is the shipped files.
    let monitoring = keep("monitoring", &kustomize(&full(MONITORING_DIR)));
    let kinds = by_kind(&monitoring);
    for rules_path in files(RULES_DIR, ".yml") {
        let stem = file_name(&rules_path)
            .trim_end_matches(".yml")
            .trim_end_matches(".rules");
        let rule = kinds[&format!("PrometheusRule/{stem}")];
        assert_eq!(
            at(rule, "spec.groups"),
            at(&yaml(&rules_path), "groups"),
            "{rules_path}"
        );
    }
    for path in files(DASHBOARDS_DIR, ".json") {
        let stem = file_name(&path).trim_end_matches(".json");
        let config_map = kinds[&format!("ConfigMap/grafana-dashboard-{stem}")];
        assert_eq!(str_at(config_map, "metadata.labels.grafana_dashboard"), "1");
        assert!(
            data(config_map, file_name(&path)) == read(&path),
            "kustomize does not read {path} back exactly from {MONITORING_DIR}"
        );
    }

    // An overlay overrides the placeholder image of both workloads with `images:`.
    for dir in [BASE_DIR, SHARDED_DIR] {
        let overlay = scratch.path().join(format!("overlay-{}", file_name(dir)));
        std::fs::create_dir(&overlay).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                 namespace: monitoring\nresources:\n  - {}\nimages:\n  - name: {APP}\n    \
                 newName: registry.example.com/whatsapp-exporter\n    newTag: 1.2.3\n",
                relative(&overlay, &full(dir))
            ),
        )
        .unwrap();
        let rendered = documents(&kustomize(&overlay), "overlay");
        let workload = rendered
            .iter()
            .find(|d| matches!(str_at(d, "kind"), "Deployment" | "StatefulSet"))
            .expect("a workload");
        assert_eq!(
            str_at(container(workload), "image"),
            "registry.example.com/whatsapp-exporter:1.2.3",
            "{dir}: images: does not override the placeholder"
        );
        assert!(rendered
            .iter()
            .all(|d| str_at(d, "metadata.namespace") == "monitoring"));
    }

    validate(&to_validate);
}
