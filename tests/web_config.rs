//! `--web.config.file` on the real binary, checked with real curl: basic auth on every
//! endpoint, TLS verified against the test's CA, certificate rotation, client
//! certificates, and bad web configs at start-up and in `--config.check`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{curl, CurlAnswer, ExporterProcess, BIN};
use common::{global, has_line, onprem_target, Auth};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use whatsapp_exporter::simulator::{Cluster, SimulatorHandle, SimulatorOptions};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// A CA of the test's own, and certificates it signs.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "whatsapp-exporter test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf for `localhost` and 127.0.0.1 with this common name: (cert PEM, key PEM).
    fn sign(&self, common_name: &str, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![purpose];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A config file with one On-Premises target on the simulator, and the test's directory.
struct Setup {
    dir: tempfile::TempDir,
    simulator: SimulatorHandle,
    config: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let simulator = common::simulator(SimulatorOptions::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let options = simulator.simulator().options();
        let text = format!(
            "{}{}",
            global("300ms"),
            onprem_target(
                "single",
                &simulator.base_url(Cluster::Single),
                options,
                Auth::ApiKey
            )
        );
        std::fs::write(&config, text).unwrap();
        Setup {
            dir,
            simulator,
            config,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self, web_config: &Path) -> ExporterProcess {
        let mut args = vec![
            "--log.level=debug".into(),
            "--config.file".into(),
            self.config.clone().into_os_string(),
        ];
        args.push("--web.config.file".into());
        args.push(web_config.as_os_str().to_owned());
        ExporterProcess::start(args)
    }
}

fn hash(password: &str) -> String {
    // Cost 4: the lowest bcrypt takes, so the test stays quick; production hashes use 10+.
    bcrypt::hash(password, 4).unwrap()
}

fn url(exporter: &ExporterProcess, path: &str) -> String {
    let port = exporter.address.rsplit(':').next().unwrap();
    format!("https://localhost:{port}{path}")
}

/// curl with the CA and, when given, credentials.
fn https(
    exporter: &ExporterProcess,
    ca: &Path,
    user: Option<&str>,
    extra: &[&str],
    path: &str,
) -> CurlAnswer {
    let mut args: Vec<String> = vec!["--cacert".into(), ca.display().to_string()];
    if let Some(user) = user {
        args.push("--user".into());
        args.push(user.to_owned());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(url(exporter, path));
    curl(args)
}

/// Scrapes (bounded) until /metrics has `line`.
fn wait_for_line(exporter: &ExporterProcess, ca: &Path, line: &str) -> String {
    let credentials = format!("{USER}:{PASSWORD}");
    let started = Instant::now();
    loop {
        let answer = https(exporter, ca, Some(&credentials), &[], "/metrics");
        let body = answer.text();
        if answer.status == 200 && has_line(&body, line) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {line:?} in /metrics: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_guards_every_endpoint_over_tls() {
    let setup = Setup::new().await;
    let ca = Ca::new();
    let ca_file = setup.write("ca.pem", &ca.pem);
    let (cert, key) = ca.sign("exporter-one", ExtendedKeyUsagePurpose::ServerAuth);
    setup.write("server.crt", &cert);
    setup.write("server.key", &key);
    let web = setup.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  {USER}: '{}'\n",
            hash(PASSWORD)
        ),
    );
    let mut exporter = setup.start(&web);
    let right = format!("{USER}:{PASSWORD}");
    let wrong = format!("{USER}:not the password");
    let stranger = format!("mallory:{PASSWORD}");

    // Every endpoint, known or not, asks for credentials first.
    let endpoints: [(&str, &[&str]); 10] = [
        ("/metrics", &[]),
        ("/", &[]),
        ("/probe?target=single", &[]),
        ("/probe?target=single&debug=true", &[]),
        ("/config", &[]),
        ("/-/healthy", &[]),
        ("/-/ready", &[]),
        ("/-/reload", &["-X", "POST"]),
        ("/nope", &[]),
        ("/metrics", &["-X", "POST"]),
    ];
    for (path, extra) in endpoints {
        for user in [None, Some(wrong.as_str()), Some(stranger.as_str())] {
            let answer = https(&exporter, &ca_file, user, extra, path);
            assert_eq!(answer.status, 401, "{path} as {user:?}: {answer:?}");
            assert_eq!(answer.header("WWW-Authenticate").as_deref(), Some("Basic"));
            assert_eq!(answer.header("X-Frame-Options").as_deref(), Some("deny"));
            assert_eq!(answer.text(), "Unauthorized\n");
        }
    }

    // The right credentials open every endpoint.
    let metrics = wait_for_line(&exporter, &ca_file, "whatsapp_up{target=\"single\"} 1");
    assert!(
        has_line(
            &metrics,
            "whatsapp_target_info{target=\"single\",type=\"onprem\"} 1"
        ),
        "{metrics}"
    );
    let answer = https(&exporter, &ca_file, Some(&right), &[], "/");
    assert_eq!(answer.status, 200);
    assert!(answer
        .text()
        .contains("<a href=\"/config\">Configuration</a>"));
    assert_eq!(answer.header("X-Frame-Options").as_deref(), Some("deny"));
    let answer = https(&exporter, &ca_file, Some(&right), &[], "/config");
    assert_eq!(answer.status, 200);
    let api_key = &setup.simulator.simulator().options().api_key;
    assert!(
        answer.text().contains("- name: single\n  type: onprem\n"),
        "{}",
        answer.text()
    );
    assert!(
        answer.text().contains("  api_key: <secret>\n"),
        "{}",
        answer.text()
    );
    assert!(!answer.text().contains(api_key.as_str()));
    let answer = https(
        &exporter,
        &ca_file,
        Some(&right),
        &[],
        "/probe?target=single",
    );
    assert_eq!(answer.status, 200);
    assert!(
        has_line(&answer.text(), "whatsapp_up{target=\"single\"} 1"),
        "{}",
        answer.text()
    );
    // The trace of one poll, behind the same credentials.
    let answer = https(
        &exporter,
        &ca_file,
        Some(&right),
        &[],
        "/probe?target=single&debug=true",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(answer.header("X-Frame-Options").as_deref(), Some("deny"));
    for line in ["endpoint health", "whatsapp_up{target=\"single\"} 1"] {
        assert!(has_line(&answer.text(), line), "{line}\n{}", answer.text());
    }
    assert!(
        !answer.text().contains(api_key.as_str()),
        "{}",
        answer.text()
    );
    for (path, body) in [("/-/healthy", "Healthy\n"), ("/-/ready", "Ready\n")] {
        let answer = https(&exporter, &ca_file, Some(&right), &[], path);
        assert_eq!((answer.status, answer.text().as_str()), (200, body));
    }
    let answer = https(
        &exporter,
        &ca_file,
        Some(&right),
        &["-X", "POST"],
        "/-/reload",
    );
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "configuration reloaded\n")
    );
    assert_eq!(
        https(&exporter, &ca_file, Some(&right), &[], "/nope").status,
        404
    );

    // Without the CA, curl refuses the certificate: it really is checked.
    let answer = curl([url(&exporter, "/-/healthy")]);
    assert_eq!(answer.exit_code, Some(60), "{answer:?}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let answer = curl([format!("http://{}/-/healthy", exporter.address)]);
    assert_eq!(answer.status, 0, "{answer:?}");
    assert_ne!(answer.exit_code, Some(0), "{answer:?}");

    exporter.stop();
    let log = exporter.log().join("\n");
    assert!(log.contains("reason=\"wrong password\""), "{log}");
    assert!(log.contains("reason=\"unknown user\""), "{log}");
    assert!(log.contains("reason=\"no credentials\""), "{log}");
    assert!(log.contains("TLS handshake failed"), "{log}");
    for secret in [PASSWORD, "not the password", api_key.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    setup.simulator.shutdown().await;
}

/// The subject line of the server certificate in `curl -v` output.
fn served_subject(answer: &CurlAnswer) -> String {
    answer
        .stderr
        .lines()
        .find_map(|l| l.trim_start_matches(['*', ' ']).strip_prefix("subject: "))
        .unwrap_or_else(|| panic!("no subject in curl -v output:\n{}", answer.stderr))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_to_the_next_connection() {
    let setup = Setup::new().await;
    let ca = Ca::new();
    let ca_file = setup.write("ca.pem", &ca.pem);
    let (cert, key) = ca.sign("exporter-first", ExtendedKeyUsagePurpose::ServerAuth);
    let cert_file = setup.write("server.crt", &cert);
    let key_file = setup.write("server.key", &key);
    let web = setup.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  min_version: TLS13\n",
            cert_file.display(),
            key_file.display()
        ),
    );
    let mut exporter = setup.start(&web);
    let answer = https(&exporter, &ca_file, None, &["-v"], "/-/healthy");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(served_subject(&answer), "CN=exporter-first");
    assert!(answer.stderr.contains("TLSv1.3"), "{}", answer.stderr);

    // Rotation as a renewal tool does it: new files moved into place.
    let (cert, key) = ca.sign("exporter-second", ExtendedKeyUsagePurpose::ServerAuth);
    setup.write("new.key", &key);
    setup.write("new.crt", &cert);
    std::fs::rename(setup.path("new.key"), &key_file).unwrap();
    std::fs::rename(setup.path("new.crt"), &cert_file).unwrap();
    let answer = https(&exporter, &ca_file, None, &["-v"], "/-/healthy");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(served_subject(&answer), "CN=exporter-second");

    // A broken replacement keeps the last good pair in service.
    std::fs::write(&key_file, "not a key\n").unwrap();
    let answer = https(&exporter, &ca_file, None, &["-v"], "/-/healthy");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(served_subject(&answer), "CN=exporter-second");
    exporter.wait_for_log("cannot be used: serving the previous one");

    // And a good one is taken again.
    let (cert, key) = ca.sign("exporter-third", ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let answer = https(&exporter, &ca_file, None, &["-v"], "/-/healthy");
    assert_eq!(served_subject(&answer), "CN=exporter-third");
    exporter.stop();
    let log = exporter.log().join("\n");
    assert_eq!(log.matches("TLS certificate reloaded").count(), 2, "{log}");
    setup.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_configured() {
    let setup = Setup::new().await;
    let ca = Ca::new();
    let ca_file = setup.write("ca.pem", &ca.pem);
    let (cert, key) = ca.sign("exporter", ExtendedKeyUsagePurpose::ServerAuth);
    setup.write("server.crt", &cert);
    setup.write("server.key", &key);
    let (client_cert, client_key) = ca.sign("prometheus", ExtendedKeyUsagePurpose::ClientAuth);
    let client_cert = setup.write("client.crt", &client_cert);
    let client_key = setup.write("client.key", &client_key);
    let web = setup.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    );
    let exporter = setup.start(&web);
    let answer = https(&exporter, &ca_file, None, &[], "/-/healthy");
    assert_eq!(answer.status, 0, "{answer:?}");
    assert_ne!(answer.exit_code, Some(0));
    let cert_arg = client_cert.display().to_string();
    let key_arg = client_key.display().to_string();
    let answer = https(
        &exporter,
        &ca_file,
        None,
        &["--cert", &cert_arg, "--key", &key_arg],
        "/-/healthy",
    );
    assert_eq!((answer.status, answer.text().as_str()), (200, "Healthy\n"));
    drop(exporter);
    setup.simulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_web_configs_fail_at_start_and_in_the_check() {
    let setup = Setup::new().await;
    let ca = Ca::new();
    let (cert, key) = ca.sign("exporter", ExtendedKeyUsagePurpose::ServerAuth);
    setup.write("server.crt", &cert);
    setup.write("server.key", &key);
    let good = setup.write(
        "good.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  {USER}: '{}'\n",
            hash(PASSWORD)
        ),
    );
    let typo = setup.write(
        "typo.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_versoin: TLS13\n",
    );
    let missing = setup.write(
        "missing.yml",
        "tls_server_config:\n  cert_file: absent.crt\n  key_file: server.key\n",
    );
    let plain = setup.write(
        "plain.yml",
        "basic_auth_users:\n  prometheus: hunter2-in-clear\n",
    );
    let config = setup.config.display().to_string();

    let check = |web: &Path| {
        let out = std::process::Command::new(BIN)
            .args([
                "--config.check",
                "--config.file",
                &config,
                "--web.config.file",
            ])
            .arg(web)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = check(&good);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("SUCCESS: "), "{stdout}");
    assert!(
        stdout.ends_with(&format!(
            "SUCCESS: {} is valid: TLS on, basic auth for 1 user(s)\n",
            good.display()
        )),
        "{stdout}"
    );
    let expected = [
        (
            &typo,
            format!(
                "FAILED: {}: tls_server_config: unknown field `min_versoin`",
                typo.display()
            ),
        ),
        (
            &missing,
            format!(
                "FAILED: {}: tls_server_config: cannot read {}",
                missing.display(),
                setup.path("absent.crt").display()
            ),
        ),
        (
            &plain,
            format!(
                "FAILED: {}: basic_auth_users: the password of \"prometheus\" is not a bcrypt hash",
                plain.display()
            ),
        ),
    ];
    for (web, message) in &expected {
        let (code, stdout) = check(web);
        assert_eq!(code, Some(1), "{stdout}");
        assert!(stdout.contains(message.as_str()), "{stdout}");
        assert!(!stdout.contains("hunter2"), "{stdout}");
    }
    // Starting with them fails the same way, before listening.
    for (web, message) in &expected {
        let out = std::process::Command::new(BIN)
            .args([
                "--web.listen-address=127.0.0.1:0",
                "--config.file",
                &config,
                "--web.config.file",
            ])
            .arg(web)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = message.trim_start_matches("FAILED: ");
        assert!(stderr.contains(message), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // A missing web config file is named.
    let absent = setup.path("absent.yml");
    let (code, stdout) = check(&absent);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains(&format!(
            "\nFAILED: cannot read web config file {}: No such file",
            absent.display()
        )),
        "{stdout}"
    );
    setup.simulator.shutdown().await;
}
