//! `--web.config.file`: TLS and HTTP basic auth for every endpoint, in the file format of
//! the Prometheus exporter-toolkit, so the web config of another exporter works here too.
//!
//! The file is read at start-up. The certificate and key files it names are checked at
//! every TLS handshake and read again when they change, so a renewed certificate is served
//! without a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Syntax errors and unknown keys: serde_yaml's message carries the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A certificate and key pair that cannot be used. Says which file and why, never what the
/// key file holds.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM certificate: {error}")]
    BadCertificate {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no usable PEM private key ({error})")]
    BadKey {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{cert} and {key} do not make a usable pair: {error}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        error: rustls::Error,
    },
}

/// What the web config asks of the server: TLS, basic auth and extra response headers.
/// The default (no file) serves plain HTTP to anyone.
#[derive(Clone, Default)]
pub struct WebSecurity {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth)
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebSecurity {
    /// Reads a web config file and prepares all it asks for: the certificate and key are
    /// read and checked now, so a file that cannot work fails at start-up.
    pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
        let config = WebConfig::load(path)?;
        config.security(path)
    }
}

/// The web config file, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct WebConfig {
    pub tls: Option<TlsServerConfig>,
    /// Users and their bcrypt hashes; empty: no authentication.
    pub basic_auth_users: BTreeMap<String, Secret>,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TlsServerConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites by their IANA (and Go) names, in preference order; empty: rustls'
    /// defaults.
    pub cipher_suites: Vec<String>,
    pub prefer_server_cipher_suites: bool,
    pub curve_preferences: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

// ---------------------------------------------------------------------------------------
// The file as written: the exporter-toolkit's keys, each struct denying unknown keys.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<serde_yaml::Value>,
    key: Option<serde_yaml::Value>,
    client_ca: Option<serde_yaml::Value>,
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: String,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    curve_preferences: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// The server speaks HTTP/1.1 only; the key is taken so that toolkit files load.
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The response headers the toolkit lets a web config set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| WebConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        WebConfig::parse(&text, path)
    }

    /// Parses and validates web config text; relative file names are resolved against the
    /// directory of `path`, as the toolkit does.
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| WebConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        raw.validate(base)
            .map_err(|message| WebConfigError::Invalid {
                path: path.to_owned(),
                message,
            })
    }

    /// Builds what the server needs: reads the certificate, key and client CA files.
    pub fn security(&self, path: &Path) -> Result<WebSecurity, WebConfigError> {
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let tls = match &self.tls {
            Some(tls) => Some(tls.server_config().map_err(invalid)?),
            None => None,
        };
        let auth = if self.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(BasicAuth::new(self.basic_auth_users.clone())))
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| invalid(format!("http_server_config.headers: {name}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| invalid(format!("http_server_config.headers: {name}: {e}")))?;
            headers.push((name, value));
        }
        Ok(WebSecurity { tls, auth, headers })
    }
}

impl RawWebConfig {
    fn validate(self, base: &Path) -> Result<WebConfig, String> {
        if self.rate_limit.is_some() {
            return Err("rate_limit is not supported by whatsapp-exporter".into());
        }
        let tls = match self.tls_server_config {
            Some(raw) => raw.validate(base)?,
            None => None,
        };
        let mut basic_auth_users = BTreeMap::new();
        for (user, hash) in self.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                return Err(format!(
                    "basic_auth_users: {user:?} is not a usable user name (empty or with ':')"
                ));
            }
            // The hash is a secret too: the error names the user only.
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "basic_auth_users: the password of {user:?} is not a bcrypt hash \
                     (make one with `htpasswd -nBC 10 {user}`)"
                ));
            }
            basic_auth_users.insert(user, Secret::new(hash));
        }
        let mut headers = Vec::new();
        for (name, value) in self.http_server_config.unwrap_or_default().headers {
            let Some(canonical) = ALLOWED_HEADERS
                .iter()
                .find(|allowed| allowed.eq_ignore_ascii_case(&name))
            else {
                return Err(format!(
                    "http_server_config.headers: {name:?} cannot be set (allowed: {})",
                    ALLOWED_HEADERS.join(", ")
                ));
            };
            if value.is_empty() {
                continue;
            }
            let allowed_values: &[&str] = match *canonical {
                "X-Frame-Options" => &["deny", "sameorigin"],
                "X-Content-Type-Options" => &["nosniff"],
                _ => &[],
            };
            if !allowed_values.is_empty()
                && !allowed_values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&value))
            {
                return Err(format!(
                    "http_server_config.headers: {canonical} must be one of {}, not {value:?}",
                    allowed_values.join(", ")
                ));
            }
            headers.push(((*canonical).to_owned(), value));
        }
        Ok(WebConfig {
            tls,
            basic_auth_users,
            headers,
        })
    }
}

impl RawTls {
    fn validate(self, base: &Path) -> Result<Option<TlsServerConfig>, String> {
        for (key, set, instead) in [
            ("cert", self.cert.is_some(), "cert_file"),
            ("key", self.key.is_some(), "key_file"),
            ("client_ca", self.client_ca.is_some(), "client_ca_file"),
        ] {
            if set {
                return Err(format!(
                    "tls_server_config.{key} (inline PEM) is not supported: use {instead}"
                ));
            }
        }
        if self.client_allowed_sans.is_some() {
            return Err("tls_server_config.client_allowed_sans is not supported".into());
        }
        let resolve = |file: &str| {
            let path = Path::new(file);
            if path.is_absolute() {
                path.to_owned()
            } else {
                base.join(path)
            }
        };
        let (cert_file, key_file) = match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            // The toolkit serves plain HTTP for a tls_server_config without files.
            (true, true) => return Ok(None),
            (true, false) => return Err("tls_server_config: missing cert_file".into()),
            (false, true) => return Err("tls_server_config: missing key_file".into()),
            (false, false) => (resolve(&self.cert_file), resolve(&self.key_file)),
        };
        let client_auth = match self.client_auth_type.as_deref().unwrap_or("NoClientCert") {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other @ ("RequestClientCert" | "RequireAnyClientCert") => {
                return Err(format!(
                    "tls_server_config.client_auth_type {other} (a client certificate that is \
                     not verified) is not supported: use RequireAndVerifyClientCert"
                ))
            }
            other => {
                return Err(format!(
                    "tls_server_config.client_auth_type {other:?} is unknown: use \
                     NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ))
            }
        };
        let client_ca_file = Some(self.client_ca_file)
            .filter(|f| !f.is_empty())
            .map(|f| resolve(&f));
        if client_auth != ClientAuth::NoClientCert && client_ca_file.is_none() {
            return Err(format!(
                "tls_server_config: client_auth_type {client_auth:?} needs client_ca_file"
            ));
        }
        let min_version =
            parse_version("min_version", self.min_version.as_deref())?.unwrap_or(TlsVersion::Tls12);
        let max_version =
            parse_version("max_version", self.max_version.as_deref())?.unwrap_or(TlsVersion::Tls13);
        if min_version > max_version {
            return Err("tls_server_config: min_version is above max_version".into());
        }
        let provider = rustls::crypto::ring::default_provider();
        for name in &self.cipher_suites {
            if tls12_suite(&provider, name).is_none() {
                return Err(format!(
                    "tls_server_config.cipher_suites: {name:?} is not supported (supported: {})",
                    tls12_suite_names(&provider).join(", ")
                ));
            }
        }
        for name in &self.curve_preferences {
            if kx_group(&provider, name).is_none() {
                return Err(format!(
                    "tls_server_config.curve_preferences: {name:?} is not supported \
                     (supported: X25519, CurveP256, CurveP384)"
                ));
            }
        }
        Ok(Some(TlsServerConfig {
            cert_file,
            key_file,
            client_auth,
            client_ca_file,
            min_version,
            max_version,
            cipher_suites: self.cipher_suites,
            prefer_server_cipher_suites: self.prefer_server_cipher_suites.unwrap_or(true),
            curve_preferences: self.curve_preferences,
        }))
    }
}

fn parse_version(key: &str, value: Option<&str>) -> Result<Option<TlsVersion>, String> {
    match value {
        None | Some("") => Ok(None),
        Some("TLS12") => Ok(Some(TlsVersion::Tls12)),
        Some("TLS13") => Ok(Some(TlsVersion::Tls13)),
        Some(old @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{key} {old} is not supported: whatsapp-exporter serves \
             TLS 1.2 and TLS 1.3 only"
        )),
        Some(other) => Err(format!(
            "tls_server_config.{key} {other:?} is unknown: use TLS12 or TLS13"
        )),
    }
}

/// The provider's TLS 1.2 suite of that IANA name (Go uses the same names).
fn tls12_suite(provider: &CryptoProvider, name: &str) -> Option<rustls::SupportedCipherSuite> {
    provider
        .cipher_suites
        .iter()
        .find(|s| s.version().version == ProtocolVersion::TLSv1_2 && suite_name(s) == name)
        .copied()
}

fn tls12_suite_names(provider: &CryptoProvider) -> Vec<String> {
    provider
        .cipher_suites
        .iter()
        .filter(|s| s.version().version == ProtocolVersion::TLSv1_2)
        .map(suite_name)
        .collect()
}

fn suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite())
}

/// Go's curve names, as the toolkit takes them.
fn kx_group(
    provider: &CryptoProvider,
    name: &str,
) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
    let group = match name {
        "X25519" => rustls::NamedGroup::X25519,
        "CurveP256" => rustls::NamedGroup::secp256r1,
        "CurveP384" => rustls::NamedGroup::secp384r1,
        _ => return None,
    };
    provider
        .kx_groups
        .iter()
        .find(|g| g.name() == group)
        .copied()
}

impl TlsServerConfig {
    /// A rustls server config whose certificate follows the files.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.cipher_suites.is_empty() {
            let tls13 = provider
                .cipher_suites
                .iter()
                .filter(|s| s.version().version == ProtocolVersion::TLSv1_3)
                .copied();
            let chosen: Vec<_> = self
                .cipher_suites
                .iter()
                .filter_map(|name| tls12_suite(&provider, name))
                .collect();
            provider.cipher_suites = tls13.chain(chosen).collect();
        }
        if !self.curve_preferences.is_empty() {
            let groups = self
                .curve_preferences
                .iter()
                .filter_map(|name| kx_group(&provider, name))
                .collect();
            provider.kx_groups = groups;
        }
        let provider = Arc::new(provider);
        let versions: Vec<&'static SupportedProtocolVersion> = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| (self.min_version..=self.max_version).contains(v))
        .map(|(_, version)| version)
        .collect();
        let resolver = CertificateFiles::new(
            self.cert_file.clone(),
            self.key_file.clone(),
            Arc::clone(&provider),
        )
        .map_err(|e| format!("tls_server_config: {e}"))?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls_server_config: {e}"))?;
        let builder = match (&self.client_ca_file, self.client_auth) {
            (_, ClientAuth::NoClientCert) | (None, _) => builder.with_no_client_auth(),
            (Some(ca_file), client_auth) => {
                let roots = read_client_cas(ca_file)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                );
                let verifier = if client_auth == ClientAuth::VerifyClientCertIfGiven {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.ignore_client_order = self.prefer_server_cipher_suites;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_client_cas(path: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("tls_server_config: cannot read {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            format!(
                "tls_server_config: {}: not a PEM certificate: {e}",
                path.display()
            )
        })?;
        roots
            .add(cert)
            .map_err(|e| format!("tls_server_config: {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "tls_server_config: {}: no PEM certificate found",
            path.display()
        ));
    }
    Ok(roots)
}

// ---------------------------------------------------------------------------------------
// Certificate rotation.

/// What a file holds now (a digest), or why it cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileStamp {
    Content(Vec<u8>),
    Unreadable(std::io::ErrorKind),
}

impl FileStamp {
    fn of(path: &Path) -> FileStamp {
        match std::fs::read(path) {
            Ok(bytes) => FileStamp::Content(
                ring::digest::digest(&ring::digest::SHA256, &bytes)
                    .as_ref()
                    .to_vec(),
            ),
            Err(e) => FileStamp::Unreadable(e.kind()),
        }
    }
}

/// Serves the certificate and key of two files, read again at the first handshake after
/// either changed. Both files are read and digested at each handshake: a few kilobytes,
/// and unlike a modification time it cannot miss two writes within the clock's tick. A
/// pair that does not load (a certificate written before its key, say) keeps the
/// previous one in service; it is retried when the files change again.
struct CertificateFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

impl std::fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFiles")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    /// The stamps last looked at, loaded or not.
    seen: (FileStamp, FileStamp),
    key: Arc<CertifiedKey>,
}

impl CertificateFiles {
    fn new(
        cert_file: PathBuf,
        key_file: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, CertificateError> {
        let seen = (FileStamp::of(&cert_file), FileStamp::of(&key_file));
        let key = Arc::new(load_pair(&cert_file, &key_file, &provider)?);
        Ok(CertificateFiles {
            cert_file,
            key_file,
            provider,
            state: Mutex::new(Loaded { seen, key }),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let stamps = (
            FileStamp::of(&self.cert_file),
            FileStamp::of(&self.key_file),
        );
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if stamps != state.seen {
            state.seen = stamps;
            match load_pair(&self.cert_file, &self.key_file, &self.provider) {
                Ok(key) => {
                    tracing::info!(
                        cert_file = %self.cert_file.display(),
                        "TLS certificate reloaded"
                    );
                    state.key = Arc::new(key);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "TLS certificate or key changed but cannot be used: serving the previous one"
                ),
            }
        }
        Arc::clone(&state.key)
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertificateError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| CertificateError::Read {
            path: path.to_owned(),
            error,
        })
    };
    let cert_pem = read(cert_file)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertificateError::BadCertificate {
            path: cert_file.to_owned(),
            error,
        })?;
    if certs.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: cert_file.to_owned(),
        });
    }
    let key_pem = read(key_file)?;
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| CertificateError::BadKey {
            path: key_file.to_owned(),
            error,
        })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|error| CertificateError::Pair {
        cert: cert_file.to_owned(),
        key: key_file.to_owned(),
        error,
    })
}

// ---------------------------------------------------------------------------------------
// Basic auth.

/// Successful verifications remembered, at most; the set is emptied when full.
const AUTH_CACHE_SIZE: usize = 1024;

/// Checks `Authorization: Basic` against bcrypt hashes. bcrypt is slow on purpose, so a
/// successful check is remembered (as an HMAC of user, hash and password under a key made
/// at start-up, never the password itself) and the next request with the same credentials
/// costs one HMAC. Failures are never remembered: guessing stays as slow as bcrypt.
pub struct BasicAuth {
    users: HashMap<String, Secret>,
    /// Checked for unknown users, so that they take as long as known ones.
    decoy: Secret,
    cache_key: ring::hmac::Key,
    verified: Mutex<HashSet<Vec<u8>>>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a request was refused, for the debug log; never the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    UnknownUser,
    WrongPassword,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "no credentials",
            AuthFailure::Malformed => "malformed Authorization header",
            AuthFailure::UnknownUser => "unknown user",
            AuthFailure::WrongPassword => "wrong password",
        }
    }
}

impl BasicAuth {
    fn new(users: BTreeMap<String, Secret>) -> Self {
        let decoy = users
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| Secret::new(""));
        let rng = ring::rand::SystemRandom::new();
        let cache_key =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
                // No system randomness: a key from the clock still keeps the cache
                // private to this process.
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &nanos.to_le_bytes())
            });
        BasicAuth {
            users: users.into_iter().collect(),
            decoy,
            cache_key,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// How many users may log in.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Checks the value of a request's `Authorization` header.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthFailure> {
        let Some(header) = authorization else {
            return Err(AuthFailure::Missing);
        };
        let (user, password) = parse_basic(header.as_bytes()).ok_or(AuthFailure::Malformed)?;
        let known = self.users.get(&user);
        let hash = known.unwrap_or(&self.decoy).clone();
        let tag = self.tag(&user, &hash, &password);
        if known.is_some() && self.lock_cache().contains(&tag) {
            return Ok(());
        }
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&password, hash.expose()).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        match (known, matches) {
            (None, _) => Err(AuthFailure::UnknownUser),
            (Some(_), false) => Err(AuthFailure::WrongPassword),
            (Some(_), true) => {
                let mut cache = self.lock_cache();
                if cache.len() >= AUTH_CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(tag);
                Ok(())
            }
        }
    }

    fn tag(&self, user: &str, hash: &Secret, password: &[u8]) -> Vec<u8> {
        let mut context = ring::hmac::Context::with_key(&self.cache_key);
        for part in [user.as_bytes(), hash.expose().as_bytes(), password] {
            context.update(&(part.len() as u64).to_le_bytes());
            context.update(part);
        }
        context.sign().as_ref().to_vec()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        match self.verified.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock_cache().len()
    }
}

/// `Basic base64(user:password)` -> (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(text, Path::new("/etc/wa/web.yml")).map_err(|e| e.to_string())
    }

    /// A fast bcrypt hash (cost 4) of `password`.
    fn hash(password: &str) -> String {
        bcrypt::hash(password, 4).unwrap()
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        let config = parse("").unwrap();
        assert_eq!(config.tls, None);
        assert!(config.basic_auth_users.is_empty());
        // A tls_server_config without files is plain HTTP too, as with the toolkit.
        assert_eq!(parse("tls_server_config: {}\n").unwrap().tls, None);
    }

    #[test]
    fn full_tls_section_parses_with_relative_paths_resolved() {
        let config = parse(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
             min_version: TLS13\n  max_version: TLS13\n  \
             cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  \
             prefer_server_cipher_suites: false\n  curve_preferences: [X25519, CurveP256]\n\
             http_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n    \
             Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: \"\"\n",
        )
        .unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("/etc/wa/server.crt"));
        assert_eq!(tls.key_file, PathBuf::from("/abs/server.key"));
        assert_eq!(tls.client_ca_file, Some(PathBuf::from("/etc/wa/ca.pem")));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.max_version, TlsVersion::Tls13);
        assert!(!tls.prefer_server_cipher_suites);
        assert_eq!(
            config.headers,
            vec![
                (
                    "Strict-Transport-Security".to_owned(),
                    "max-age=31536000".to_owned()
                ),
                ("X-Frame-Options".to_owned(), "deny".to_owned()),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let err = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  certfile: c\n")
            .unwrap_err();
        assert!(
            err.starts_with("/etc/wa/web.yml: tls_server_config: unknown field `certfile`"),
            "{err}"
        );
        assert!(err.contains("line 4"), "{err}");
        let err = parse("basic_auth:\n  a: b\n").unwrap_err();
        assert!(err.contains("unknown field `basic_auth`"), "{err}");
        let err = parse("http_server_config:\n  http3: true\n").unwrap_err();
        assert!(err.contains("unknown field `http3`"), "{err}");
    }

    #[test]
    fn unsupported_settings_say_so() {
        let tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
        let cases = [
            (
                "  min_version: TLS10\n",
                "tls_server_config.min_version TLS10 is not supported: whatsapp-exporter serves TLS 1.2 and TLS 1.3 only",
            ),
            (
                "  max_version: SSL3\n",
                "tls_server_config.max_version \"SSL3\" is unknown: use TLS12 or TLS13",
            ),
            (
                "  min_version: TLS13\n  max_version: TLS12\n",
                "tls_server_config: min_version is above max_version",
            ),
            (
                "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
                "tls_server_config.cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is not supported (supported: ",
            ),
            (
                "  curve_preferences: [CurveP521]\n",
                "tls_server_config.curve_preferences: \"CurveP521\" is not supported",
            ),
            (
                "  client_auth_type: RequireAnyClientCert\n",
                "tls_server_config.client_auth_type RequireAnyClientCert (a client certificate that is not verified) is not supported",
            ),
            (
                "  client_auth_type: RequireAndVerifyClientCert\n",
                "tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file",
            ),
            (
                "  client_auth_type: Sometimes\n",
                "tls_server_config.client_auth_type \"Sometimes\" is unknown",
            ),
            (
                "  cert: \"-----BEGIN CERTIFICATE-----\"\n",
                "tls_server_config.cert (inline PEM) is not supported: use cert_file",
            ),
            (
                "  client_allowed_sans: [a]\n",
                "tls_server_config.client_allowed_sans is not supported",
            ),
        ];
        for (extra, expected) in cases {
            let err = parse(&format!("{tls}{extra}")).unwrap_err();
            assert!(
                err.starts_with(&format!("/etc/wa/web.yml: {expected}")),
                "{extra}: {err}"
            );
        }
        let err = parse("tls_server_config:\n  cert_file: a\n").unwrap_err();
        assert!(
            err.ends_with("tls_server_config: missing key_file"),
            "{err}"
        );
        let err = parse("tls_server_config:\n  key_file: a\n").unwrap_err();
        assert!(
            err.ends_with("tls_server_config: missing cert_file"),
            "{err}"
        );
        let err = parse("rate_limit:\n  interval: 1s\n  burst: 5\n").unwrap_err();
        assert!(
            err.ends_with("rate_limit is not supported by whatsapp-exporter"),
            "{err}"
        );
        let err = parse("http_server_config:\n  headers:\n    Server: x\n").unwrap_err();
        assert!(err.contains("\"Server\" cannot be set (allowed: "), "{err}");
        let err =
            parse("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").unwrap_err();
        assert!(
            err.ends_with("X-Frame-Options must be one of deny, sameorigin, not \"allow\""),
            "{err}"
        );
    }

    #[test]
    fn bad_hash_is_an_error_that_does_not_print_it() {
        let err = parse("basic_auth_users:\n  alice: plain-text-password-77\n").unwrap_err();
        assert_eq!(
            err,
            "/etc/wa/web.yml: basic_auth_users: the password of \"alice\" is not a bcrypt hash \
             (make one with `htpasswd -nBC 10 alice`)"
        );
        let err = parse("basic_auth_users:\n  \"a:b\": x\n").unwrap_err();
        assert!(err.contains("not a usable user name"), "{err}");
        let good = hash("pw");
        let config = parse(&format!("basic_auth_users:\n  alice: '{good}'\n")).unwrap();
        assert_eq!(config.basic_auth_users["alice"], Secret::new(good.clone()));
        assert!(!format!("{config:?}").contains(&good));
        // htpasswd writes $2y$ hashes.
        let y = good.replacen("$2b$", "$2y$", 1);
        assert!(parse(&format!("basic_auth_users:\n  alice: '{y}'\n")).is_ok());
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::try_from(format!("Basic {encoded}")).unwrap()
    }

    #[tokio::test]
    async fn basic_auth_checks_and_caches_successes_only() {
        // htpasswd writes $2y$: the same hash under another prefix.
        let carol = hash("htpasswd").replacen("$2b$", "$2y$", 1);
        let users = BTreeMap::from([
            ("alice".to_owned(), Secret::new(hash("wonderland"))),
            ("bob".to_owned(), Secret::new(hash("b:c"))),
            ("carol".to_owned(), Secret::new(carol)),
        ]);
        let auth = BasicAuth::new(users);
        assert_eq!(auth.check(None).await, Err(AuthFailure::Missing));
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(auth.check(Some(&bearer)).await, Err(AuthFailure::Malformed));
        let garbage = HeaderValue::from_static("Basic !!!");
        assert_eq!(
            auth.check(Some(&garbage)).await,
            Err(AuthFailure::Malformed)
        );
        let wrong = header("alice", "looking-glass");
        assert_eq!(
            auth.check(Some(&wrong)).await,
            Err(AuthFailure::WrongPassword)
        );
        let stranger = header("dave", "wonderland");
        assert_eq!(
            auth.check(Some(&stranger)).await,
            Err(AuthFailure::UnknownUser)
        );
        assert_eq!(auth.cached(), 0);
        let right = header("alice", "wonderland");
        assert_eq!(auth.check(Some(&right)).await, Ok(()));
        assert_eq!(auth.cached(), 1);
        assert_eq!(auth.check(Some(&right)).await, Ok(()));
        assert_eq!(auth.cached(), 1);
        // The password may hold ':'; the scheme is case-insensitive.
        let colon = header("bob", "b:c");
        let lower =
            HeaderValue::try_from(colon.to_str().unwrap().replacen("Basic", "basic", 1)).unwrap();
        assert_eq!(auth.check(Some(&lower)).await, Ok(()));
        assert_eq!(auth.check(Some(&header("carol", "htpasswd"))).await, Ok(()));
        // A cached success does not open the door to another password.
        assert_eq!(
            auth.check(Some(&wrong)).await,
            Err(AuthFailure::WrongPassword)
        );
        assert!(!format!("{auth:?}").contains("$2"));
    }

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.join("server.crt");
        let key_file = dir.join("server.key");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    fn served_der(files: &CertificateFiles) -> Vec<u8> {
        files.current().cert[0].as_ref().to_vec()
    }

    #[test]
    fn certificate_files_follow_changes_and_survive_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path(), "first.example");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = CertificateFiles::new(cert_file.clone(), key_file.clone(), provider).unwrap();
        let first = served_der(&files);
        assert_eq!(served_der(&files), first);
        write_pair(dir.path(), "second.example");
        let second = served_der(&files);
        assert_ne!(second, first);
        // A certificate whose key is not there yet: the previous pair stays in service.
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["third.example".to_owned()])
            .unwrap()
            .self_signed(&other)
            .unwrap();
        std::fs::write(&cert_file, cert.pem()).unwrap();
        assert_eq!(served_der(&files), second);
        std::fs::write(&key_file, other.serialize_pem()).unwrap();
        assert_eq!(served_der(&files), cert.der().as_ref());
    }

    #[test]
    fn unusable_certificate_files_fail_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path(), "a.example");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let missing = dir.path().join("missing.crt");
        let err = CertificateFiles::new(missing.clone(), key_file.clone(), Arc::clone(&provider))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read {}", missing.display())),
            "{err}"
        );
        let err = CertificateFiles::new(key_file.clone(), key_file.clone(), Arc::clone(&provider))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("{}: no PEM certificate found", key_file.display())
        );
        let err = CertificateFiles::new(cert_file.clone(), cert_file.clone(), provider)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: no usable PEM private key",
                cert_file.display()
            )),
            "{err}"
        );
        let key_text = std::fs::read_to_string(&key_file).unwrap();
        let body = key_text.lines().nth(1).unwrap();
        assert!(!err.contains(body));
    }

    #[test]
    fn security_builds_tls_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "localhost");
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
        )
        .unwrap();
        let security = WebSecurity::load(&path).unwrap();
        let tls = security.tls.unwrap();
        assert!(tls.ignore_client_order);
        assert!(security.auth.is_none());
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: absent.crt\n  key_file: server.key\n",
        )
        .unwrap();
        let err = WebSecurity::load(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: tls_server_config: cannot read {}",
                path.display(),
                dir.path().join("absent.crt").display()
            )),
            "{err}"
        );
    }

    #[test]
    fn the_example_in_deploy_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/web-config.example.yml"
        ));
        let config = WebConfig::load(path).unwrap();
        let tls = config.tls.expect("the example serves TLS");
        assert_eq!(
            tls.cert_file,
            PathBuf::from("/etc/whatsapp-exporter/tls/server.crt")
        );
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        let hash = &config.basic_auth_users["prometheus"];
        assert!(bcrypt::verify("change-me-please", hash.expose()).unwrap());
        assert_eq!(
            config.headers,
            vec![
                ("X-Content-Type-Options".to_owned(), "nosniff".to_owned()),
                ("X-Frame-Options".to_owned(), "deny".to_owned()),
            ]
        );
    }
}
