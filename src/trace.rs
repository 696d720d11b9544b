//! `/probe?target=NAME&debug=true`: a trace of one poll, for a bug report.
//!
//! While a probe runs a poll inside [`record`], every request that goes through
//! `upstream::fetch` and every endpoint's result are appended to a recording held in a
//! task-local, so no client takes a parameter for it and a poll outside a trace pays one
//! task-local lookup per request. [`render`] turns the recording into text with every
//! credential taken out: query parameters and JSON string values under credential-like
//! names, the target's configured secrets and every credential the poll sent, wherever
//! they appear. Request headers are listed by name only.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::HeaderMap;

use crate::json::Problems;

/// What stands in for a credential.
pub const REDACTED: &str = "<redacted>";
/// Most bytes of one response body shown.
const BODY_SHOWN: usize = 2000;
/// Response headers worth showing, beside the `ratelimit-*` and `x-ratelimit-*` families.
const SHOWN_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "retry-after",
    "x-business-use-case-usage",
    "x-app-usage",
    "x-ad-account-usage",
    "www-authenticate",
    "location",
    "x-fb-trace-id",
];

tokio::task_local! {
    static ACTIVE: Arc<Mutex<Recording>>;
}

/// What one poll did, in order. Holds credentials (the ones it sent, to take them out of
/// the text): only [`render`] shows it.
#[derive(Default)]
pub struct Recording {
    events: Vec<Event>,
    /// Credentials the poll sent, taken out wherever they appear.
    sent: Vec<String>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

enum Event {
    Endpoint(&'static str),
    Exchange(Exchange),
    Outcome(Outcome),
}

struct Exchange {
    method: String,
    url: String,
    request_headers: Vec<String>,
    response: Option<Head>,
    body: Vec<u8>,
    /// Why no whole answer came, when none did.
    error: Option<String>,
    elapsed: Option<Duration>,
}

struct Head {
    status: reqwest::StatusCode,
    /// The URL that answered, when redirects led elsewhere.
    redirected_to: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
}

/// How one endpoint's poll ended, as the poller saw it.
pub enum Outcome {
    /// Not polled this cycle (discovery runs on its own, slower interval).
    NotDue,
    Success {
        upstream_error: Option<String>,
        problems: Problems,
    },
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// Runs `poll` with a fresh recording active, and returns what it recorded.
pub async fn record<F: Future>(poll: F) -> (F::Output, Recording) {
    let recording = Arc::new(Mutex::new(Recording::default()));
    let output = ACTIVE.scope(Arc::clone(&recording), poll).await;
    let recording = match Arc::try_unwrap(recording) {
        Ok(mutex) => mutex.into_inner().unwrap_or_else(|e| e.into_inner()),
        // An exchange outlived the poll (it cannot: each is dropped with its request).
        Err(shared) => std::mem::take(&mut *lock(&shared)),
    };
    (output, recording)
}

fn lock(recording: &Mutex<Recording>) -> std::sync::MutexGuard<'_, Recording> {
    recording.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_active(f: impl FnOnce(&mut Recording)) {
    let _ = ACTIVE.try_with(|recording| f(&mut lock(recording)));
}

/// The poller begins polling `endpoint`.
pub fn endpoint(name: &'static str) {
    with_active(|r| r.events.push(Event::Endpoint(name)));
}

/// The poller's result of the endpoint it began last.
pub fn outcome(outcome: impl FnOnce() -> Outcome) {
    with_active(|r| r.events.push(Event::Outcome(outcome())));
}

/// One request of a traced poll, from its start to its end. Dropped before [`Traced::end`]
/// (the poll's timeout cancelled it), it records that.
pub struct Traced {
    recording: Arc<Mutex<Recording>>,
    index: usize,
    started: Instant,
    ended: bool,
}

impl Traced {
    /// Records `request` when a trace is active.
    pub fn begin(request: &reqwest::Request) -> Option<Traced> {
        let recording = ACTIVE.try_with(Arc::clone).ok()?;
        let index = {
            let mut r = lock(&recording);
            let url = request.url();
            if let Some(password) = url.password() {
                r.sent.push(password.to_owned());
                r.sent.push(percent_decode(password));
            }
            for (name, value) in url.query_pairs() {
                if credential_name(&name) {
                    r.sent.push(value.into_owned());
                }
            }
            let mut names = Vec::new();
            for (name, value) in request.headers() {
                if !names.iter().any(|n| n == name.as_str()) {
                    names.push(name.as_str().to_owned());
                }
                if value.is_sensitive()
                    || name == reqwest::header::AUTHORIZATION
                    || credential_name(name.as_str())
                {
                    let sent = header_credentials(value.as_bytes());
                    r.sent.extend(sent);
                }
            }
            r.events.push(Event::Exchange(Exchange {
                method: request.method().to_string(),
                url: url.to_string(),
                request_headers: names,
                response: None,
                body: Vec::new(),
                error: None,
                elapsed: None,
            }));
            r.events.len() - 1
        };
        Some(Traced {
            recording,
            index,
            started: Instant::now(),
            ended: false,
        })
    }

    fn with_exchange(&self, f: impl FnOnce(&mut Exchange)) {
        if let Some(Event::Exchange(exchange)) = lock(&self.recording).events.get_mut(self.index) {
            f(exchange);
        }
    }

    /// The response's status line and headers arrived.
    pub fn head(&self, status: reqwest::StatusCode, headers: &HeaderMap, url: &reqwest::Url) {
        let shown = headers
            .iter()
            .filter(|(name, _)| shown_header(name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        self.with_exchange(|e| {
            let redirected_to = (url.as_str() != e.url).then(|| url.to_string());
            e.response = Some(Head {
                status,
                redirected_to,
                headers: shown,
            });
        });
    }

    /// A part of the body arrived.
    pub fn chunk(&self, bytes: &[u8]) {
        self.with_exchange(|e| e.body.extend_from_slice(bytes));
    }

    /// The exchange ended: whole, or with `error`.
    pub fn end(mut self, error: Option<&dyn std::fmt::Display>) {
        self.ended = true;
        let elapsed = self.started.elapsed();
        let error = error.map(ToString::to_string);
        self.with_exchange(|e| {
            e.elapsed = Some(elapsed);
            e.error = error;
        });
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if !self.ended {
            let elapsed = self.started.elapsed();
            self.with_exchange(|e| {
                e.elapsed = Some(elapsed);
                e.error = Some("abandoned: the poll's time ran out first".to_owned());
            });
        }
    }
}

/// The credentials in a header value: the value, and for `Scheme credentials` the
/// credentials, and for Basic the decoded `user:password` and password.
fn header_credentials(value: &[u8]) -> Vec<String> {
    let value = String::from_utf8_lossy(value).trim().to_owned();
    let mut out = vec![value.clone()];
    if let Some((scheme, rest)) = value.split_once(' ') {
        let rest = rest.trim();
        out.push(rest.to_owned());
        if scheme.eq_ignore_ascii_case("basic") {
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) {
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                if let Some((_, password)) = decoded.split_once(':') {
                    out.push(password.to_owned());
                }
                out.push(decoded);
            }
        }
    }
    out
}

fn shown_header(name: &str) -> bool {
    SHOWN_HEADERS.contains(&name)
        || name.starts_with("ratelimit-")
        || name.starts_with("x-ratelimit-")
}

/// Whether a query parameter, header or JSON key of this name carries a credential:
/// `token`, `access_token`, `apiKey`, `X-API-Key`, `password`, `client_secret`, ...
pub fn credential_name(name: &str) -> bool {
    const LAST_WORDS: [&str; 8] = [
        "token",
        "secret",
        "password",
        "passwd",
        "key",
        "apikey",
        "authorization",
        "credentials",
    ];
    let words = words(name);
    let joined: String = words.concat();
    words
        .last()
        .is_some_and(|w| LAST_WORDS.contains(&w.as_str()))
        || ["token", "secret", "password", "passwd"]
            .iter()
            .any(|end| joined.ends_with(end))
}

/// The words of a name, lower-case: split at anything but letters and digits, and where a
/// lower-case letter meets an upper-case one (`apiKey`).
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Replaces every occurrence of known secrets, also JSON-escaped, percent-encoded and in
/// base64, in text.
#[derive(Debug)]
pub struct Redactor {
    /// Longest first, so a secret that contains another goes whole.
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            needles.push(secret.to_owned());
            if let Ok(quoted) = serde_json::to_string(secret) {
                needles.push(quoted[1..quoted.len() - 1].to_owned());
                // JSON may escape `/` too.
                needles.push(quoted[1..quoted.len() - 1].replace('/', "\\/"));
            }
            needles.push(percent_encode(secret));
            needles.push(base64::engine::general_purpose::STANDARD.encode(secret));
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out
    }

    /// A URL with the password of its user info and the values of credential-named query
    /// parameters replaced, then any secret.
    pub fn url(&self, url: &str) -> String {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return self.text(url);
        };
        let mut out = String::with_capacity(url.len());
        out.push_str(parsed.scheme());
        out.push_str("://");
        if !parsed.username().is_empty() || parsed.password().is_some() {
            out.push_str(parsed.username());
            if parsed.password().is_some() {
                out.push(':');
                out.push_str(REDACTED);
            }
            out.push('@');
        }
        out.push_str(parsed.host_str().unwrap_or_default());
        if let Some(port) = parsed.port() {
            let _ = write!(out, ":{port}");
        }
        out.push_str(parsed.path());
        if let Some(query) = parsed.query() {
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    if credential_name(&percent_decode(name)) {
                        format!("{name}={REDACTED}")
                    } else {
                        pair.to_owned()
                    }
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        if let Some(fragment) = parsed.fragment() {
            out.push('#');
            out.push_str(fragment);
        }
        self.text(&out)
    }

    /// A response body for the trace: credential-named JSON string values and secrets
    /// replaced, clipped, control characters escaped.
    pub fn body(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let looks_json = text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with(['{', '[']);
        let text = if looks_json {
            redact_json_values(&text)
        } else {
            text.into_owned()
        };
        // Secrets go before the cut, so none is cut in half and half shown.
        let text = self.text(&text);
        let (shown, rest) = clip(&text, BODY_SHOWN);
        let mut out = escape_controls(shown);
        if rest > 0 {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            let _ = write!(out, "... ({} more bytes not shown)", thousands(rest as u64));
        }
        out
    }
}

/// The text cut at most `max` bytes in, on a character boundary, and the bytes left out.
fn clip(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (&text[..cut], text.len() - cut)
}

/// Control characters as escapes, so a body cannot garble the report; a line break (LF or
/// CRLF) stays one.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('\n'),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// JSON string values under credential-like keys, at any depth, as `"<redacted>"`. Read
/// token by token rather than parsed, so a truncated or malformed body (where the trace
/// matters most) loses its credentials too, and everything else stays byte for byte.
fn redact_json_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    // The last key named a credential and its value comes next.
    let mut secret_value_next = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let (end, closed) = string_end(bytes, i);
                let mut after = end;
                while after < bytes.len() && bytes[after].is_ascii_whitespace() {
                    after += 1;
                }
                if closed && bytes.get(after) == Some(&b':') {
                    let raw = &text[i..end];
                    let key = serde_json::from_str::<String>(raw)
                        .unwrap_or_else(|_| raw[1..raw.len() - 1].to_owned());
                    secret_value_next = credential_name(&key);
                    i = after + 1;
                    continue;
                }
                if secret_value_next {
                    out.push_str(&text[copied..i]);
                    out.push('"');
                    out.push_str(REDACTED);
                    if closed {
                        out.push('"');
                    }
                    copied = end;
                }
                secret_value_next = false;
                i = end;
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                secret_value_next = false;
                i += 1;
            }
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The index after the JSON string that opens at `start`, and whether it was closed.
/// Quotes and backslashes are ASCII, so a byte scan never stops inside a character.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return (i + 1, true),
            _ => i += 1,
        }
    }
    (bytes.len(), false)
}

/// What the trace says about the target around the recording.
pub struct Context<'a> {
    pub target: &'a str,
    pub type_name: &'a str,
    pub version: &'a str,
    /// The target's endpoints, in poll order.
    pub endpoints: &'a [&'static str],
    /// The target's configured secrets.
    pub secrets: &'a [String],
    /// The series after the poll, as `/probe` answers them.
    pub series: &'a str,
}

/// The trace as text. Nothing in it holds a credential the poll sent or the target has.
pub fn render(recording: &Recording, context: &Context<'_>) -> String {
    let redactor = Redactor::new(context.secrets.iter().chain(&recording.sent));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Debug trace of one poll of target {:?} (type {}) by whatsapp-exporter {}.",
        context.target, context.type_name, context.version
    );
    let _ = writeln!(
        out,
        "# Credentials are shown as {REDACTED}, request headers by name only; bodies are cut \
         after {} bytes.",
        thousands(BODY_SHOWN as u64)
    );
    let mut polled = Vec::new();
    let mut requests = 0;
    for event in &recording.events {
        match event {
            Event::Endpoint(name) => {
                polled.push(*name);
                let _ = write!(out, "\nendpoint {name}\n");
            }
            Event::Exchange(exchange) => {
                requests += 1;
                render_exchange(&mut out, requests, exchange, &redactor);
            }
            Event::Outcome(outcome) => render_outcome(&mut out, outcome),
        }
    }
    for name in context.endpoints {
        if !polled.contains(name) {
            let _ = write!(
                out,
                "\nendpoint {name}\n  result: not polled (an endpoint before it was told to \
                 slow down, or the poll ended)\n"
            );
        }
    }
    out.push_str("\nseries\n");
    out.push_str(context.series);
    // Last, over everything: poll messages and label values are not meant to hold a
    // credential, and this makes sure.
    redactor.text(&out)
}

fn render_exchange(out: &mut String, n: usize, exchange: &Exchange, redactor: &Redactor) {
    let _ = writeln!(
        out,
        "  request {n}: {} {}",
        exchange.method,
        redactor.url(&exchange.url)
    );
    if !exchange.request_headers.is_empty() {
        let _ = writeln!(
            out,
            "    request headers (values not shown): {}",
            exchange.request_headers.join(", ")
        );
    }
    let elapsed = exchange.elapsed.map_or_else(String::new, |d| {
        format!(" after {:.1} ms", d.as_secs_f64() * 1000.0)
    });
    match &exchange.response {
        Some(head) => {
            let _ = writeln!(
                out,
                "    response: {} {}{elapsed}",
                head.status.as_u16(),
                head.status.canonical_reason().unwrap_or_default()
            );
            if let Some(url) = &head.redirected_to {
                let _ = writeln!(out, "    answered by: {}", redactor.url(url));
            }
            for (name, value) in &head.headers {
                let value = String::from_utf8_lossy(value);
                let value = if name == "location" {
                    redactor.url(&value)
                } else {
                    redactor.text(&value)
                };
                let _ = writeln!(
                    out,
                    "    {name}: {}",
                    escape_controls(&value).replace('\n', "\\n")
                );
            }
        }
        None => {
            let _ = writeln!(out, "    no response{elapsed}");
        }
    }
    if let Some(error) = &exchange.error {
        let _ = writeln!(out, "    failed: {}", redactor.text(error));
    }
    if exchange.response.is_some() {
        if exchange.body.is_empty() {
            let _ = writeln!(out, "    body: empty");
        } else {
            let _ = writeln!(
                out,
                "    body ({} bytes{}):",
                thousands(exchange.body.len() as u64),
                if exchange.error.is_some() {
                    " read"
                } else {
                    ""
                }
            );
            for line in redactor.body(&exchange.body).lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
}

fn render_outcome(out: &mut String, outcome: &Outcome) {
    match outcome {
        Outcome::NotDue => {
            out.push_str("  result: not due in this poll (it runs on its own, slower interval)\n");
        }
        Outcome::Success {
            upstream_error,
            problems,
        } => {
            out.push_str("  result: success\n");
            if let Some(error) = upstream_error {
                let _ = writeln!(out, "  the upstream reports an error: {error}");
            }
            if !problems.is_empty() {
                out.push_str("  could not be read (the rest of the answer was used):\n");
                for note in problems.notes() {
                    let _ = writeln!(out, "    {note}");
                }
                if problems.unlisted() > 0 {
                    let _ = writeln!(out, "    ... and {} more", problems.unlisted());
                }
                if problems.skipped() > 0 {
                    let _ = writeln!(out, "  items skipped: {}", problems.skipped());
                }
            }
        }
        Outcome::Failed { reason, message } => {
            let _ = writeln!(out, "  result: failed, reason {reason}: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names() {
        for name in [
            "token",
            "access_token",
            "input_token",
            "ACCESS_TOKEN",
            "api_key",
            "apiKey",
            "APIKEY",
            "X-API-Key",
            "D360-API-KEY",
            "key",
            "password",
            "client_secret",
            "Authorization",
            "accesstoken",
        ] {
            assert!(credential_name(name), "{name}");
        }
        for name in [
            "expires_after",
            "tokens_used",
            "monkey",
            "keys",
            "id",
            "next",
            "after",
            "token_expiry",
        ] {
            assert!(!credential_name(name), "{name}");
        }
    }

    #[test]
    fn query_credentials_and_user_info_are_replaced() {
        let redactor = Redactor::new(["s3cr3t-token"]);
        assert_eq!(
            redactor.url(
                "https://graph.example/v24.0/1?fields=a,b&access_token=EAAG123&Input_Token=x&limit=5"
            ),
            "https://graph.example/v24.0/1?fields=a,b&access_token=<redacted>&Input_Token=<redacted>&limit=5"
        );
        assert_eq!(
            redactor.url("http://user:pw@h:8080/p?KEY=1&api%5Fkey=2&token&q=s3cr3t-token#f"),
            "http://user:<redacted>@h:8080/p?KEY=<redacted>&api%5Fkey=<redacted>&token=<redacted>&q=<redacted>#f"
        );
        assert_eq!(
            redactor.url("not a url s3cr3t-token"),
            "not a url <redacted>"
        );
    }

    #[test]
    fn json_values_under_credential_keys_at_any_depth() {
        let redactor = Redactor::new(Vec::<String>::new());
        assert_eq!(
            redactor.body(
                br#"{"users":[{"token":"eyJhbGciOi.x.y","expires_after":"2030-01-01 00:00:00+00:00"}]}"#
            ),
            r#"{"users":[{"token":"<redacted>","expires_after":"2030-01-01 00:00:00+00:00"}]}"#
        );
        assert_eq!(
            redactor.body(
                b"{\n  \"a\": {\"b\": [ {\"Access_Token\" : \"t\\\"q\", \"n\": 1} ]},\n  \"password\":\"p\", \"key\": 5, \"x\": \"token\"\n}"
            ),
            "{\n  \"a\": {\"b\": [ {\"Access_Token\" : \"<redacted>\", \"n\": 1} ]},\n  \"password\":\"<redacted>\", \"key\": 5, \"x\": \"token\"\n}"
        );
        // Cut in the middle of the token: what there is of it goes.
        assert_eq!(
            redactor.body(br#"{"users":[{"token":"eyJhbGciOiJIUzI1"#),
            r#"{"users":[{"token":"<redacted>"#
        );
        // An escaped key is read as JSON reads it.
        assert_eq!(
            redactor.body(br#"{"\u0074oken":"abc"}"#),
            r#"{"\u0074oken":"<redacted>"}"#
        );
        // Not JSON: the same text, keys untouched.
        assert_eq!(
            redactor.body(br#"<p>"token": "abc"</p>"#),
            r#"<p>"token": "abc"</p>"#
        );
    }

    #[test]
    fn literal_secrets_in_every_encoding() {
        let redactor = Redactor::new(["pa/ss\"word", "key-123"]);
        assert_eq!(
            redactor
                .body(br#"{"msg":"bad pa\/ss\"word and pa/ss\"word","u":"x?k=pa%2Fss%22word"}"#),
            r#"{"msg":"bad <redacted> and <redacted>","u":"x?k=<redacted>"}"#
        );
        assert_eq!(
            redactor.body(b"<html>key-123 a2V5LTEyMw==</html>"),
            "<html><redacted> <redacted></html>"
        );
    }

    #[test]
    fn bodies_are_clipped_after_redaction() {
        let redactor = Redactor::new(["SECRETVALUE"]);
        let mut body = "x".repeat(BODY_SHOWN - 3);
        body.push_str("SECRETVALUE");
        body.push_str(&"y".repeat(1234));
        let shown = redactor.body(body.as_bytes());
        // No piece of the secret at the cut.
        assert!(!shown.contains("SEC"), "{shown}");
        let expected_rest = body.len() - "SECRETVALUE".len() + REDACTED.len() - BODY_SHOWN;
        assert!(
            shown.ends_with(&format!(
                "\n... ({} more bytes not shown)",
                thousands(expected_rest as u64)
            )),
            "{shown}"
        );
        assert_eq!(shown.lines().next().map(str::len), Some(BODY_SHOWN));
        // Multi-byte characters are not split.
        let wide = "é".repeat(BODY_SHOWN);
        let shown = redactor.body(wide.as_bytes());
        assert!(shown.starts_with(&"é".repeat(BODY_SHOWN / 2)));
        assert!(
            shown.ends_with("... (2,000 more bytes not shown)"),
            "{shown}"
        );
    }

    #[test]
    fn non_utf8_and_control_characters_are_shown_escaped() {
        let redactor = Redactor::new(["k1"]);
        assert_eq!(
            redactor.body(b"\xff\xfeok\r\n\x1b[31mk1\x00\tend\rx"),
            "\u{fffd}\u{fffd}ok\n\\u{1b}[31m<redacted>\\u{0}\\tend\\rx"
        );
    }

    #[test]
    fn header_credentials_are_collected() {
        let basic = base64::engine::general_purpose::STANDARD.encode("user:pw-1");
        let found = header_credentials(format!("Basic {basic}").as_bytes());
        assert!(found.contains(&"pw-1".to_owned()), "{found:?}");
        assert!(found.contains(&"user:pw-1".to_owned()), "{found:?}");
        assert!(found.contains(&basic), "{found:?}");
        let found = header_credentials(b"Bearer tok-9");
        assert!(found.contains(&"tok-9".to_owned()), "{found:?}");
        assert_eq!(header_credentials(b"rawkey"), vec!["rawkey".to_owned()]);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    /// A whole poll recorded: sent credentials come out of every part of the text, an
    /// abandoned request says so, and endpoints not reached are listed.
    #[tokio::test]
    async fn a_recorded_poll_renders_without_its_credentials() {
        let client = reqwest::Client::new();
        let ((), recording) = record(async {
            endpoint("health");
            let request = client
                .get("http://127.0.0.1:9/v1/health?access_token=tok-sent-1")
                .header(reqwest::header::AUTHORIZATION, "Bearer tok-sent-2")
                .build()
                .unwrap();
            let traced = Traced::begin(&request).unwrap();
            let mut headers = HeaderMap::new();
            headers.insert("content-type", "application/json".parse().unwrap());
            headers.insert("set-cookie", "session=abc".parse().unwrap());
            headers.insert("x-ratelimit-remaining", "7".parse().unwrap());
            traced.head(reqwest::StatusCode::OK, &headers, request.url());
            traced.chunk(br#"{"echo":"tok-sent-2","#);
            traced.chunk(br#""users":[{"token":"fresh"}]}"#);
            traced.end(None);
            outcome(|| Outcome::Failed {
                reason: "decode",
                message: "wrong type at `users[0]` near tok-sent-1".to_owned(),
            });
            endpoint("support");
            let request = client.post("http://127.0.0.1:9/login").build().unwrap();
            drop(Traced::begin(&request));
        })
        .await;
        let text = render(
            &recording,
            &Context {
                target: "t",
                type_name: "onprem",
                version: "0.0.0",
                endpoints: &["health", "support", "other"],
                secrets: &["configured-1".to_owned()],
                series: "whatsapp_up{target=\"t\"} 0\n",
            },
        );
        assert!(!text.contains("tok-sent"), "{text}");
        assert!(!text.contains("fresh"), "{text}");
        let expected_lines = [
            "endpoint health",
            "  request 1: GET http://127.0.0.1:9/v1/health?access_token=<redacted>",
            "    request headers (values not shown): authorization",
            "    content-type: application/json",
            "    x-ratelimit-remaining: 7",
            "    body (49 bytes):",
            r#"      {"echo":"<redacted>","users":[{"token":"<redacted>"}]}"#,
            "  result: failed, reason decode: wrong type at `users[0]` near <redacted>",
            "endpoint support",
            "  request 2: POST http://127.0.0.1:9/login",
            "    failed: abandoned: the poll's time ran out first",
            "endpoint other",
            "series",
            "whatsapp_up{target=\"t\"} 0",
        ];
        let mut lines = text.lines();
        for expected in expected_lines {
            assert!(
                lines.any(|l| l == expected),
                "{expected:?} missing or out of order in\n{text}"
            );
        }
        assert!(!text.contains("set-cookie"), "{text}");
        assert!(text.contains("\n    response: 200 OK after "), "{text}");
    }

    #[test]
    fn nothing_is_recorded_outside_a_trace() {
        endpoint("health");
        let request = reqwest::Client::new()
            .get("http://127.0.0.1:9/")
            .build()
            .unwrap();
        assert!(Traced::begin(&request).is_none());
    }
}
