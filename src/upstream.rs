//! What every upstream API has in common: HTTP clients, bounded body reads, and the
//! classification of a failed poll into one of the contract's reasons.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use crate::exposition::Samples;
use crate::json::Problems;
use crate::trace::Traced;

/// Why a poll failed: the `reason` label of `whatsapp_poll_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Timeout,
    /// The host name did not resolve.
    Dns,
    ConnectionRefused,
    /// The peer reset the connection: while connecting, sending, or reading the body.
    ConnectionReset,
    /// Any other failure of the connection, or one that closed before the body was whole.
    Connect,
    TlsUnknownCa,
    /// The certificate's validity ended (not-yet-valid certificates count as `tls`).
    TlsExpired,
    TlsWrongHost,
    /// Any other TLS failure: the log line says which.
    Tls,
    HttpStatus,
    Unauthorized,
    RateLimited,
    /// The upstream said it is down for now (Graph API error code 2).
    Unavailable,
    Decode,
    BodyTooLarge,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Timeout,
        Reason::Dns,
        Reason::ConnectionRefused,
        Reason::ConnectionReset,
        Reason::Connect,
        Reason::TlsUnknownCa,
        Reason::TlsExpired,
        Reason::TlsWrongHost,
        Reason::Tls,
        Reason::HttpStatus,
        Reason::Unauthorized,
        Reason::RateLimited,
        Reason::Unavailable,
        Reason::Decode,
        Reason::BodyTooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Dns => "dns",
            Reason::ConnectionRefused => "connection_refused",
            Reason::ConnectionReset => "connection_reset",
            Reason::Connect => "connect",
            Reason::TlsUnknownCa => "tls_unknown_ca",
            Reason::TlsExpired => "tls_expired",
            Reason::TlsWrongHost => "tls_wrong_host",
            Reason::Tls => "tls",
            Reason::HttpStatus => "http_status",
            Reason::Unauthorized => "unauthorized",
            Reason::RateLimited => "rate_limited",
            Reason::Unavailable => "unavailable",
            Reason::Decode => "decode",
            Reason::BodyTooLarge => "body_too_large",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed poll of one endpoint: counted by reason, logged with the message, and (for
/// rate limits) carrying the upstream's Retry-After.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct PollError {
    pub reason: Reason,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl PollError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        PollError {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The result of polling one endpoint.
// Moved once per poll; boxing the data would cost an allocation per poll instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Polled {
    /// Fresh data. `upstream_error` is an error the upstream reported inside a good answer
    /// (Kapso's `error` field): logged and counted, the data still stands. `problems` are
    /// the parts of the answer that could not be read: logged, skipped items counted.
    Data {
        samples: Samples,
        upstream_error: Option<String>,
        problems: Problems,
    },
    /// Not due in this cycle (discovery runs on its own, slower interval).
    NotDue,
}

impl Polled {
    pub fn data(samples: Samples) -> Self {
        Polled::Data {
            samples,
            upstream_error: None,
            problems: Problems::default(),
        }
    }

    /// Fresh data read with `problems`.
    pub fn read(samples: Samples, problems: Problems) -> Self {
        Polled::Data {
            samples,
            upstream_error: None,
            problems,
        }
    }
}

/// How a target's client reaches its upstream: the pooled HTTP client for its TLS settings,
/// its base URL and the most bytes it reads of one answer.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub http: reqwest::Client,
    pub base_url: Url,
    pub body_limit: u64,
}

/// The `tls_config` of a target: how its client verifies the upstream and proves itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tls_config: cannot read {path}: {error}")]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("tls_config: {0}")]
    Build(String),
}

/// One pooled keep-alive client per distinct TLS setting, shared by every target that uses
/// it, so many targets on one upstream host reuse connections. Clients are keyed by the
/// contents of the TLS files as well, so a reload after a certificate rotation builds a
/// new client.
#[derive(Default)]
pub struct Clients {
    by_tls: Mutex<HashMap<(TlsConfig, u64), reqwest::Client>>,
}

/// A client and the fingerprint of the TLS files it was built from.
pub struct ClientFor {
    pub client: reqwest::Client,
    pub tls_fingerprint: u64,
}

impl Clients {
    /// Reads the TLS files now, and returns the client for their current contents.
    pub fn get(&self, tls: &TlsConfig) -> Result<ClientFor, ClientError> {
        let material = TlsMaterial::read(tls)?;
        let key = (tls.clone(), material.fingerprint());
        let mut map = self.by_tls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = map.get(&key) {
            return Ok(ClientFor {
                client: client.clone(),
                tls_fingerprint: key.1,
            });
        }
        let client = material.build(tls)?;
        map.insert(key.clone(), client.clone());
        Ok(ClientFor {
            client,
            tls_fingerprint: key.1,
        })
    }

    /// Forgets clients no running target uses any more (after a reload).
    pub fn retain(&self, in_use: &[(&TlsConfig, u64)]) {
        let mut map = self.by_tls.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(tls, fingerprint), _| in_use.contains(&(tls, *fingerprint)));
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        error: source,
    })
}

/// The contents of a target's TLS files.
struct TlsMaterial {
    ca: Option<Vec<u8>>,
    identity: Option<Vec<u8>>,
}

impl TlsMaterial {
    fn read(tls: &TlsConfig) -> Result<Self, ClientError> {
        let ca = tls.ca_file.as_deref().map(read_file).transpose()?;
        let identity = match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read_file(cert)?;
                pem.push(b'\n');
                pem.extend(read_file(key)?);
                Some(pem)
            }
            _ => None,
        };
        Ok(TlsMaterial { ca, identity })
    }

    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.ca.hash(&mut hasher);
        self.identity.hash(&mut hasher);
        hasher.finish()
    }

    fn build(&self, tls: &TlsConfig) -> Result<reqwest::Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("whatsapp-exporter/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .danger_accept_invalid_certs(tls.insecure_skip_verify);
        if let (Some(pem), Some(path)) = (&self.ca, &tls.ca_file) {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Build(format!("ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Build(format!(
                    "ca_file {}: no PEM certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &self.identity {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|e| ClientError::Build(format!("client certificate: {e}")))?;
            builder = builder.identity(identity);
        }
        builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))
    }
}

/// Builds a client for `tls`, reading its files (for `--config.check` and tests).
pub fn build_client(tls: &TlsConfig) -> Result<reqwest::Client, ClientError> {
    TlsMaterial::read(tls)?.build(tls)
}

/// Redirects are followed only within the origin the request was sent to, so credentials
/// sent as headers never reach another host.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.error("redirect to another origin refused")
        } else if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

tokio::task_local! {
    static SENT: RequestCount;
}

/// The requests sent upstream while polling one endpoint, logins and retries included:
/// `whatsapp_upstream_requests_total`. The poller runs each endpoint's poll inside
/// [`RequestCount::count`] and [`fetch`] counts every request it sends, so no provider
/// has a count of its own to keep, or to forget.
#[derive(Clone, Debug, Default)]
pub struct RequestCount(Arc<AtomicU64>);

impl RequestCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Runs `poll`, counting here every request sent within it.
    pub async fn count<F: Future>(&self, poll: F) -> F::Output {
        SENT.scope(self.clone(), poll).await
    }
}

/// A response read whole, its body capped.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends the request and reads at most `limit` bytes of body. The caller bounds the whole
/// call with its timeout, body included.
///
/// Inside a `/probe?debug=true` poll, the exchange is also recorded for its trace.
pub async fn fetch(request: reqwest::RequestBuilder, limit: u64) -> Result<Fetched, PollError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| classify(&e))?;
    // Counted as it goes out: one that never gets an answer cost the upstream a try too.
    let _ = SENT.try_with(|count| count.0.fetch_add(1, Ordering::Relaxed));
    let traced = Traced::begin(&request);
    let result = exchange(&client, request, limit, traced.as_ref()).await;
    if let Some(traced) = traced {
        traced.end(result.as_ref().err().map(|e| e as &dyn fmt::Display));
    }
    result
}

async fn exchange(
    client: &reqwest::Client,
    request: reqwest::Request,
    limit: u64,
    traced: Option<&Traced>,
) -> Result<Fetched, PollError> {
    let mut response = client.execute(request).await.map_err(|e| classify(&e))?;
    if let Some(traced) = traced {
        traced.head(response.status(), response.headers(), response.url());
    }
    if let Some(length) = response.content_length() {
        if length > limit {
            return Err(too_large(limit));
        }
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large(limit));
        }
        if let Some(traced) = traced {
            traced.chunk(&chunk);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        headers,
        body: body.freeze(),
    })
}

fn too_large(limit: u64) -> PollError {
    PollError::new(
        Reason::BodyTooLarge,
        format!("response body exceeds the limit of {limit} bytes"),
    )
}

/// Maps a transport error to its reason. The message names what failed, never the URL's
/// query or any header.
pub fn classify(err: &reqwest::Error) -> PollError {
    if err.is_timeout() {
        return PollError::new(Reason::Timeout, "request timed out");
    }
    if let Some(tls) = tls_cause(err) {
        return PollError::new(tls_reason(tls), format!("TLS: {tls}"));
    }
    if err.is_redirect() {
        return PollError::new(Reason::HttpStatus, format!("redirect: {}", root_cause(err)));
    }
    let io_reason = match io_cause(err) {
        Some(std::io::ErrorKind::ConnectionRefused) => Reason::ConnectionRefused,
        Some(std::io::ErrorKind::ConnectionReset) => Reason::ConnectionReset,
        _ => Reason::Connect,
    };
    if err.is_connect() {
        let reason = if resolving_failed(err) {
            Reason::Dns
        } else {
            io_reason
        };
        return PollError::new(reason, format!("connect: {}", root_cause(err)));
    }
    if err.is_decode() || err.is_body() {
        return PollError::new(io_reason, format!("reading body: {}", root_cause(err)));
    }
    PollError::new(io_reason, root_cause(err))
}

fn tls_reason(err: &rustls::Error) -> Reason {
    use rustls::CertificateError as Cert;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer => Reason::TlsUnknownCa,
            Cert::Expired | Cert::ExpiredContext { .. } => Reason::TlsExpired,
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => Reason::TlsWrongHost,
            _ => Reason::Tls,
        },
        _ => Reason::Tls,
    }
}

/// `err` and the errors behind it, outermost first.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// `e` as an io::Error and the io::Errors inside it: an io::Error hides the error it wraps
/// from source() (the TLS connector wraps rustls' io::Error in one more), so each layer is
/// opened explicitly.
fn io_layers<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a std::io::Error> {
    std::iter::successors(e.downcast_ref::<std::io::Error>(), |io| {
        io.get_ref()?.downcast_ref::<std::io::Error>()
    })
}

/// hyper-util's connector reports a failed lookup as a private error type whose text is
/// exactly "dns error" (its cause, the resolver's io::Error, has no kind of its own).
fn resolving_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    causes(err).any(|e| e.to_string() == "dns error")
}

/// The kind of the first io::Error in the chain that says more than `Other`, looking
/// inside io::Errors too.
fn io_cause(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    causes(err)
        .flat_map(io_layers)
        .map(std::io::Error::kind)
        .find(|&kind| kind != std::io::ErrorKind::Other)
}

/// The first rustls error in the chain, looking inside io::Errors too.
fn tls_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    causes(err).find_map(|e| {
        e.downcast_ref::<rustls::Error>()
            .or_else(|| io_layers(e).find_map(|io| io.get_ref()?.downcast_ref::<rustls::Error>()))
    })
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    causes(err).last().unwrap_or(err).to_string()
}

/// The reason an HTTP status maps to: 401/403 unauthorized, 429 and 503 (the On-Premises
/// API's capacity limits) rate limited, anything else not 2xx an HTTP status error.
pub fn status_error(status: StatusCode, headers: &HeaderMap, detail: &str) -> PollError {
    let reason = match status.as_u16() {
        401 | 403 => Reason::Unauthorized,
        429 | 503 => Reason::RateLimited,
        _ => Reason::HttpStatus,
    };
    let mut message = format!("HTTP {}", status.as_u16());
    if !detail.is_empty() {
        message.push_str(": ");
        message.push_str(detail);
    }
    PollError {
        reason,
        message,
        retry_after: if reason == Reason::RateLimited {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        } else {
            None
        },
    }
}

/// Retry-After in delay-seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A header value that carries a credential: refused if it holds characters a header
/// cannot, and marked sensitive so no debug output of the request shows it.
pub fn secret_header(value: &str) -> Result<HeaderValue, PollError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        PollError::new(
            Reason::Unauthorized,
            "credential contains characters not allowed in a header",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `base` doubled for each failure in a row after the first (`attempt` counts from 1), at
/// most `cap`: the waits of every backoff.
pub fn doubling(base: Duration, attempt: u32, cap: Duration) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap)
}

/// A target's base URL and the URLs joined to it so far. A target asks for the same few
/// paths at every poll, and parsing a URL costs more than the rest of building a request.
#[derive(Debug)]
pub struct BaseUrl {
    base: Url,
    joined: Mutex<HashMap<String, Url>>,
}

/// Paths remembered per target; discovery can add one per phone number, so the memo is
/// bounded and simply starts over when full.
const MAX_JOINED_URLS: usize = 256;

impl BaseUrl {
    pub fn new(base: &Url) -> Self {
        BaseUrl {
            base: with_trailing_slash(base),
            joined: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `path` (relative) joined to the base URL.
    pub fn join(&self, path: &str) -> Result<Url, PollError> {
        let mut joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(url) = joined.get(path) {
            return Ok(url.clone());
        }
        let url = self.join_unremembered(path)?;
        if joined.len() >= MAX_JOINED_URLS {
            joined.clear();
        }
        joined.insert(path.to_owned(), url.clone());
        Ok(url)
    }

    /// [`BaseUrl::join`] for a URL the caller keeps itself (one per WABA of a business,
    /// more than the memo holds) or must not be kept (a secret in its query).
    pub fn join_unremembered(&self, path: &str) -> Result<Url, PollError> {
        self.base
            .join(path)
            .map_err(|e| PollError::new(Reason::Connect, format!("building URL: {e}")))
    }
}

/// The URL with a trailing slash, so joining a relative path keeps any path prefix.
pub fn with_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// A wrong content type is bad input; no content type at all is tolerated.
pub fn check_json_content_type(value: Option<&HeaderValue>) -> Result<(), PollError> {
    let Some(value) = value else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        Ok(())
    } else {
        Err(PollError::new(
            Reason::Decode,
            format!("unexpected content type {:?}", truncate(&media, 64)),
        ))
    }
}

/// Cuts an upstream string on a character boundary, keeping its characters: for label
/// values, whose newlines and quotes the exposition escapes. Text for messages goes
/// through `json::clip`, which also blanks control characters.
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn status_reasons() {
        let headers = HeaderMap::new();
        assert_eq!(
            status_error(StatusCode::UNAUTHORIZED, &headers, "").reason,
            Reason::Unauthorized
        );
        assert_eq!(
            status_error(StatusCode::FORBIDDEN, &headers, "").reason,
            Reason::Unauthorized
        );
        assert_eq!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, &headers, "").reason,
            Reason::RateLimited
        );
        let err = status_error(StatusCode::INTERNAL_SERVER_ERROR, &headers, "oops");
        assert_eq!(err.reason, Reason::HttpStatus);
        assert_eq!(err.to_string(), "http_status: HTTP 500: oops");
    }

    #[test]
    fn retry_after_from_header() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let err = status_error(StatusCode::TOO_MANY_REQUESTS, &headers, "");
        assert_eq!(err.reason, Reason::RateLimited);
        assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_as_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn base_url_keeps_its_prefix() {
        let base = with_trailing_slash(&Url::parse("https://h:9090/waba").unwrap());
        assert_eq!(
            base.join("v1/health").unwrap().as_str(),
            "https://h:9090/waba/v1/health"
        );
        let root = with_trailing_slash(&Url::parse("https://h").unwrap());
        assert_eq!(
            root.join("v1/support").unwrap().as_str(),
            "https://h/v1/support"
        );
    }

    #[test]
    fn content_types() {
        assert!(check_json_content_type(None).is_ok());
        assert!(check_json_content_type(Some(&HeaderValue::from_static(
            "application/json; charset=utf-8"
        )))
        .is_ok());
        let err =
            check_json_content_type(Some(&HeaderValue::from_static("text/html"))).unwrap_err();
        assert_eq!(err.reason, Reason::Decode);
        assert_eq!(err.message, "unexpected content type \"text/html\"");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "ééé…");
    }

    #[test]
    fn unusable_ca_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let tls = TlsConfig {
            ca_file: Some(missing.clone()),
            ..TlsConfig::default()
        };
        let err = build_client(&tls).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("tls_config: cannot read {}", missing.display())),
            "{err}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let tls = TlsConfig {
            ca_file: Some(garbage.clone()),
            ..TlsConfig::default()
        };
        let err = build_client(&tls).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "tls_config: ca_file {}: no PEM certificate in it",
                garbage.display()
            )
        );
    }

    fn self_signed_pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_owned()])
            .unwrap()
            .cert
            .pem()
    }

    #[test]
    fn clients_are_shared_until_the_tls_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, self_signed_pem("first.example")).unwrap();
        let tls = TlsConfig {
            ca_file: Some(ca.clone()),
            ..TlsConfig::default()
        };
        let clients = Clients::default();
        let first = clients.get(&tls).unwrap().tls_fingerprint;
        assert_eq!(clients.get(&tls).unwrap().tls_fingerprint, first);
        assert_eq!(clients.by_tls.lock().unwrap().len(), 1);
        // A rotated CA at the same path: a new client, and the old one can be dropped.
        std::fs::write(&ca, self_signed_pem("second.example")).unwrap();
        let second = clients.get(&tls).unwrap().tls_fingerprint;
        assert_ne!(second, first);
        clients.retain(&[(&tls, second)]);
        assert_eq!(clients.by_tls.lock().unwrap().len(), 1);
        // No TLS files: one shared client.
        let plain = TlsConfig::default();
        assert_eq!(
            clients.get(&plain).unwrap().tls_fingerprint,
            clients.get(&plain).unwrap().tls_fingerprint
        );
    }

    #[test]
    fn tls_errors_are_found_inside_nested_io_errors() {
        let tls = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let direct = std::io::Error::new(std::io::ErrorKind::InvalidData, tls());
        assert_eq!(
            tls_cause(&direct).map(ToString::to_string).as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
        let nested =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls()));
        assert_eq!(
            tls_cause(&nested).map(tls_reason),
            Some(Reason::TlsUnknownCa)
        );
        let plain =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(tls_cause(&plain), None);
    }

    #[test]
    fn certificate_errors_have_a_reason_each() {
        use rustls::CertificateError as Cert;
        let reason = |cert| tls_reason(&rustls::Error::InvalidCertificate(cert));
        assert_eq!(reason(Cert::UnknownIssuer), Reason::TlsUnknownCa);
        assert_eq!(reason(Cert::Expired), Reason::TlsExpired);
        assert_eq!(reason(Cert::NotValidForName), Reason::TlsWrongHost);
        assert_eq!(reason(Cert::NotValidYet), Reason::Tls);
        assert_eq!(reason(Cert::BadSignature), Reason::Tls);
        assert_eq!(
            tls_reason(&rustls::Error::HandshakeNotComplete),
            Reason::Tls
        );
    }

    #[test]
    fn io_kinds_are_found_through_other_layers() {
        let nested =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(io_cause(&nested), Some(std::io::ErrorKind::ConnectionReset));
        let opaque = std::io::Error::other("no kind");
        assert_eq!(io_cause(&opaque), None);
    }

    async fn failure_of(url: String) -> PollError {
        let client = build_client(&TlsConfig::default()).unwrap();
        fetch(client.get(url), 1024).await.unwrap_err()
    }

    #[tokio::test]
    async fn requests_are_counted_inside_a_count_whether_answered_or_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = build_client(&TlsConfig::default()).unwrap();
        let count = RequestCount::default();
        let refused = count
            .count(async {
                let first = fetch(client.get(format!("http://{addr}/a")), 1024).await;
                let second = fetch(client.get(format!("http://{addr}/b")), 1024).await;
                first.and(second)
            })
            .await;
        assert_eq!(refused.unwrap_err().reason, Reason::ConnectionRefused);
        assert_eq!(count.get(), 2);
        // Outside a count, nothing is counted (and nothing fails for want of one).
        let outside = fetch(client.get(format!("http://{addr}/c")), 1024).await;
        assert_eq!(outside.unwrap_err().reason, Reason::ConnectionRefused);
        assert_eq!(count.get(), 2);
        // A request that cannot even be built is not sent, so not counted.
        let unbuilt = count
            .count(fetch(client.get("http://exa mple.com/"), 1024))
            .await;
        assert!(unbuilt.is_err());
        assert_eq!(count.get(), 2);
    }

    #[tokio::test]
    async fn connection_refused_has_its_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = failure_of(format!("http://{addr}/")).await;
        assert_eq!(err.reason, Reason::ConnectionRefused, "{err}");
        assert!(err.message.starts_with("connect: "), "{err}");
    }

    #[tokio::test]
    async fn a_reset_before_the_answer_has_its_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            // Reading the request first makes the close a reset of an open exchange.
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            stream.set_zero_linger().unwrap();
            drop(stream);
        });
        let err = failure_of(format!("http://{addr}/")).await;
        assert_eq!(err.reason, Reason::ConnectionReset, "{err}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_has_its_reason() {
        // A label over 63 bytes fails inside the resolver library, before any query
        // leaves the machine.
        let name = format!("{}.invalid", "a".repeat(64));
        let err = failure_of(format!("http://{name}:10109/")).await;
        assert_eq!(err.reason, Reason::Dns, "{err}");
    }
}
