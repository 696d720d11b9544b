//! Reading upstream JSON bodies into errors that say what is wrong and where.
//!
//! Every upstream (On-Premises, Graph, 360dialog, Kapso) answers in JSON, and a bad body has
//! to fail its one target with a message an operator can act on: `missing required field
//! `health.gateway_status` (absent or null)` rather than a bare parser message or the body
//! itself. The error shape and the field readers are the same for all of them; only the
//! upstream's own error envelope differs, so [`PayloadError`] takes it as a type parameter
//! and each upstream's payload module names its own (`onprem::payload::PayloadError`,
//! `graph::payload::PayloadError`).
//!
//! Paths in errors: `$` is the top-level value, `a.b` a field with an identifier-like name,
//! `a["k"]` any other key, `a[0]` an array entry. Upstream strings quoted in an error are cut
//! at 200 characters with their control characters replaced; whole bodies never go into
//! error messages.

use std::convert::Infallible;

use serde_json::{Map, Value};

use crate::timestamp::parse_timestamp;

/// Longest upstream string (in characters) copied into an error message.
const CLIP_CHARS: usize = 200;

/// Path used in errors for the top-level JSON value.
pub(crate) const ROOT: &str = "$";

pub(crate) type Obj = Map<String, Value>;

/// Why a body (or header) could not be read; `U` is the upstream's own error, for a body
/// that is the upstream's error envelope where a payload was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError<U> {
    /// The body is empty (or only whitespace).
    #[error("empty response body")]
    EmptyBody,
    /// The body ends in the middle of a JSON value.
    #[error("truncated JSON: unexpected end of input at line {line}, column {column}")]
    Truncated { line: usize, column: usize },
    /// The body is not valid JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// A required object or field is absent or `null`.
    #[error("missing required field `{path}` (absent or null)")]
    Missing { path: String },
    /// A field is present with the wrong JSON type.
    #[error("wrong type at `{path}`: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A field has the right type but a value that cannot be used.
    #[error("invalid value at `{path}`: {reason}")]
    Invalid { path: String, reason: String },
    /// A 2xx body in the upstream's error envelope instead of the payload.
    #[error("{0}")]
    Upstream(U),
}

// ---------------------------------------------------------------------------------------------
// Tolerant reading

/// Most problem messages one answer keeps for its log line and `/probe?debug=true`; the
/// rest are only counted, so an answer of ten thousand odd items costs no more memory.
const MAX_NOTES: usize = 20;

/// What a tolerant reading left out of an answer it otherwise used: items skipped whole
/// (unusable, e.g. without an id) and fields dropped from items that were kept. One odd
/// item never fails its siblings or the endpoint; it ends up here, with its JSON path and
/// why, and the poller logs and counts it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Problems(
    /// Boxed and absent while there is none: most answers have none, and a poll result
    /// carries this beside its samples.
    Option<Box<Noted>>,
);

#[derive(Debug, Default, Clone, PartialEq)]
struct Noted {
    skipped: u64,
    noted: u64,
    notes: Vec<String>,
}

impl Problems {
    /// An item left out whole.
    pub fn skip(&mut self, why: impl std::fmt::Display) {
        self.noted().skipped += 1;
        self.note(format_args!("item skipped: {why}"));
    }

    /// A part of an item that was kept without it.
    pub fn ignore(&mut self, why: impl std::fmt::Display) {
        self.note(format_args!("ignored: {why}"));
    }

    fn noted(&mut self) -> &mut Noted {
        self.0.get_or_insert_with(Box::default)
    }

    fn note(&mut self, text: std::fmt::Arguments<'_>) {
        let noted = self.noted();
        noted.noted += 1;
        if noted.notes.len() < MAX_NOTES {
            noted.notes.push(text.to_string());
        }
    }

    /// The item, or `None` (counted as skipped) when it could not be read.
    pub fn item<T, E: std::fmt::Display>(&mut self, read: Result<T, E>) -> Option<T> {
        read.map_err(|e| self.skip(e)).ok()
    }

    /// An optional field of an item that is kept either way: `None` when absent, or when it
    /// could not be read (noted).
    pub fn field<T, E: std::fmt::Display>(&mut self, read: Result<Option<T>, E>) -> Option<T> {
        read.map_err(|e| self.ignore(e)).ok().flatten()
    }

    /// A string field of a kept item, ignored (noted) when it is not a string.
    pub(crate) fn opt_str(&mut self, o: &Obj, base: &str, name: &str) -> Option<String> {
        self.field(opt_str::<Infallible>(o, base, name))
    }

    /// A boolean field of a kept item, ignored (noted) when it is not a boolean.
    pub(crate) fn opt_bool(&mut self, o: &Obj, base: &str, name: &str) -> Option<bool> {
        self.field(opt_bool::<Infallible>(o, base, name))
    }

    /// A timestamp field of a kept item (see [`opt_timestamp`]), ignored (noted) when it
    /// cannot be read.
    pub(crate) fn opt_timestamp(
        &mut self,
        o: &Obj,
        base: &str,
        name: &str,
        allow_number: bool,
    ) -> Option<f64> {
        self.field(opt_timestamp::<Infallible>(o, base, name, allow_number))
    }

    /// Items skipped.
    pub fn skipped(&self) -> u64 {
        self.0.as_ref().map_or(0, |n| n.skipped)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The first problems, each with its path and why.
    pub fn notes(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |n| &n.notes)
    }

    /// Problems beyond [`Problems::notes`], counted only.
    pub fn unlisted(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |n| n.noted - n.notes.len() as u64)
    }

    /// Adds the problems of another reading of the same answer.
    pub fn extend(&mut self, other: Problems) {
        let Some(other) = other.0 else {
            return;
        };
        let noted = self.noted();
        noted.skipped += other.skipped;
        noted.noted += other.noted;
        let room = MAX_NOTES.saturating_sub(noted.notes.len());
        noted.notes.extend(other.notes.into_iter().take(room));
    }
}

impl std::fmt::Display for Problems {
    /// `first; second; ... (and N more)`, for one log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.notes().join("; "))?;
        match self.unlisted() {
            0 => Ok(()),
            more => write!(f, " (and {more} more)"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// The body without a leading UTF-8 byte order mark.
pub(crate) fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// Decodes the body into its top-level object.
pub(crate) fn load<U>(body: &[u8]) -> Result<Obj, PayloadError<U>> {
    let body = strip_bom(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::EmptyBody);
    }
    top_level_object(serde_json::from_slice(body))
}

/// The decoded top-level value as an object, or the error saying why it is not one.
pub(crate) fn top_level_object<U>(
    decoded: serde_json::Result<Value>,
) -> Result<Obj, PayloadError<U>> {
    match decoded {
        Ok(Value::Object(root)) => Ok(root),
        Ok(other) => Err(wrong_type(ROOT, "object", &other)),
        Err(e) => Err(json_error(&e)),
    }
}

fn json_error<U>(e: &serde_json::Error) -> PayloadError<U> {
    let (line, column) = (e.line(), e.column());
    if e.is_eof() {
        return PayloadError::Truncated { line, column };
    }
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    PayloadError::Malformed {
        line,
        column,
        message: clip(message),
    }
}

// ---------------------------------------------------------------------------------------------
// Field access

/// The value of `name`, treating `null` as absent.
pub(crate) fn present<'a>(o: &'a Obj, name: &str) -> Option<&'a Value> {
    o.get(name).filter(|v| !v.is_null())
}

pub(crate) fn as_object<'a, U>(v: &'a Value, path: &str) -> Result<&'a Obj, PayloadError<U>> {
    v.as_object().ok_or_else(|| wrong_type(path, "object", v))
}

pub(crate) fn required_str<U>(o: &Obj, base: &str, name: &str) -> Result<String, PayloadError<U>> {
    opt_str(o, base, name)?.ok_or_else(|| PayloadError::Missing {
        path: field(base, name),
    })
}

pub(crate) fn opt_str<U>(
    o: &Obj,
    base: &str,
    name: &str,
) -> Result<Option<String>, PayloadError<U>> {
    opt_as(o, base, name, "string", |v| v.as_str().map(str::to_owned))
}

pub(crate) fn opt_bool<U>(
    o: &Obj,
    base: &str,
    name: &str,
) -> Result<Option<bool>, PayloadError<U>> {
    opt_as(o, base, name, "boolean", Value::as_bool)
}

/// An id given as a JSON string or number (numbers become their decimal text).
pub(crate) fn opt_id<U>(
    o: &Obj,
    base: &str,
    name: &str,
) -> Result<Option<String>, PayloadError<U>> {
    opt_as(o, base, name, "string or number", |v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The value of `name` converted by `read`, `None` when absent or null; a value `read`
/// refuses is of the wrong type (`expected` says which).
fn opt_as<T, U>(
    o: &Obj,
    base: &str,
    name: &str,
    expected: &'static str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> Result<Option<T>, PayloadError<U>> {
    match present(o, name) {
        None => Ok(None),
        Some(v) => match read(v) {
            Some(t) => Ok(Some(t)),
            None => Err(wrong_type(&field(base, name), expected, v)),
        },
    }
}

/// A timestamp string (see [`parse_timestamp`]) as unix seconds; with `allow_number`, a JSON
/// number of unix seconds too.
pub(crate) fn opt_timestamp<U>(
    o: &Obj,
    base: &str,
    name: &str,
    allow_number: bool,
) -> Result<Option<f64>, PayloadError<U>> {
    match present(o, name) {
        None => Ok(None),
        Some(Value::String(s)) => match parse_timestamp(s) {
            Some(t) => Ok(Some(t)),
            None => Err(PayloadError::Invalid {
                path: field(base, name),
                reason: format!("unparseable timestamp \"{}\"", clip(s).escape_debug()),
            }),
        },
        Some(Value::Number(n)) if allow_number => Ok(n.as_f64()),
        Some(v) => {
            let expected = if allow_number {
                "timestamp string or number"
            } else {
                "timestamp string"
            };
            Err(wrong_type(&field(base, name), expected, v))
        }
    }
}

/// An integer from a number (integral, including `1005.0`) or a numeric string.
pub(crate) fn lenient_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number from a number or a numeric string.
pub(crate) fn lenient_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A boolean from a boolean or `"true"`/`"false"` (any case).
pub(crate) fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub(crate) fn wrong_type<U>(path: &str, expected: &'static str, found: &Value) -> PayloadError<U> {
    PayloadError::WrongType {
        path: path.to_owned(),
        expected,
        found: kind(found),
    }
}

/// The JSON type of `v`, as named in error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and clipping

/// `base.name` for identifier-like names, else `base["name"]`; just `name` at the top level
/// (empty `base`).
pub(crate) fn field(base: &str, name: &str) -> String {
    let ident = !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    match (base.is_empty(), ident) {
        (true, true) => name.to_owned(),
        (false, true) => format!("{base}.{name}"),
        (_, false) => key(base, name),
    }
}

/// `base["key"]` for a dynamic key, escaped and clipped (`$["key"]` at the top level).
pub(crate) fn key(base: &str, k: &str) -> String {
    let base = if base.is_empty() { ROOT } else { base };
    format!("{base}[\"{}\"]", clip(k).escape_debug())
}

/// `base[i]` for an array entry.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Cuts an upstream string at [`CLIP_CHARS`] characters (marking the cut with `…`) and
/// replaces control characters with spaces, so it is safe to put in an error message.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(CLIP_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(CLIP_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The errors the payload tests expect, for any upstream error type.
#[cfg(test)]
pub(crate) mod expected {
    use super::PayloadError;

    pub(crate) fn missing<U>(path: &str) -> PayloadError<U> {
        PayloadError::Missing { path: path.into() }
    }

    pub(crate) fn wrong<U>(
        path: &str,
        expected: &'static str,
        found: &'static str,
    ) -> PayloadError<U> {
        PayloadError::WrongType {
            path: path.into(),
            expected,
            found,
        }
    }

    pub(crate) fn invalid<U>(path: &str, reason: &str) -> PayloadError<U> {
        PayloadError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expected::{invalid, missing, wrong};
    use super::*;

    #[test]
    fn problems_count_every_skip_and_keep_the_first_notes() {
        let mut problems = Problems::default();
        assert!(problems.is_empty());
        assert_eq!(problems.item(Ok::<_, String>(1)), Some(1));
        assert_eq!(problems.field(Ok::<Option<u8>, String>(None)), None);
        assert!(problems.is_empty(), "good reads note nothing");
        for i in 0..25 {
            assert_eq!(problems.item(Err::<u8, _>(format!("entry {i}"))), None);
        }
        assert_eq!(problems.field(Err::<Option<u8>, _>("bad field")), None);
        problems.ignore("bad list");
        assert_eq!(
            problems.skipped(),
            25,
            "dropped fields are not skipped items"
        );
        assert_eq!(problems.notes().len(), MAX_NOTES);
        assert_eq!(problems.notes()[0], "item skipped: entry 0");
        assert_eq!(problems.unlisted(), 27 - MAX_NOTES as u64);
        let text = problems.to_string();
        assert!(
            text.starts_with("item skipped: entry 0; item skipped: entry 1; "),
            "{text}"
        );
        assert!(
            text.ends_with("item skipped: entry 19 (and 7 more)"),
            "{text}"
        );

        let mut first = Problems::default();
        first.ignore("a");
        let mut second = Problems::default();
        second.skip("b");
        first.extend(second);
        assert_eq!(first.skipped(), 1);
        assert_eq!(first.to_string(), "ignored: a; item skipped: b");
    }

    /// No upstream envelope: these tests are about the JSON alone.
    type U = std::convert::Infallible;
    type Error = PayloadError<U>;

    fn load_err(body: &[u8]) -> Error {
        load(body).unwrap_err()
    }

    fn object(json: &str) -> Obj {
        match serde_json::from_str(json) {
            Ok(Value::Object(o)) => o,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn empty_body() {
        for body in [&b""[..], b"   \r\n\t", b"\xEF\xBB\xBF", b"\xEF\xBB\xBF \n"] {
            assert_eq!(load_err(body), PayloadError::EmptyBody, "{body:?}");
        }
        assert_eq!(Error::EmptyBody.to_string(), "empty response body");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let root: Obj = load::<U>(b"\xEF\xBB\xBF{\"a\":1}").unwrap();
        assert_eq!(root, object(r#"{"a":1}"#));
        assert_eq!(strip_bom(b"\xEF\xBB\xBF{}"), b"{}");
        assert_eq!(strip_bom(b"{}"), b"{}");
    }

    #[test]
    fn malformed_json() {
        let e = load_err(b"<html>\n<body>502 Bad Gateway</body>\n</html>");
        assert_eq!(
            e,
            PayloadError::Malformed {
                line: 1,
                column: 1,
                message: "expected value".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "malformed JSON at line 1, column 1: expected value"
        );
        let e = load_err(b"{\"a\":[]}\n{}");
        assert_eq!(
            e,
            PayloadError::Malformed {
                line: 2,
                column: 1,
                message: "trailing characters".into()
            }
        );
        let e = load_err(b"{\"a\":\"\xff\"}");
        assert!(
            matches!(e, PayloadError::Malformed { line: 1, .. }),
            "{e:?}"
        );
        let deep = "[".repeat(100_000);
        assert!(
            matches!(load_err(deep.as_bytes()), PayloadError::Malformed { .. }),
            "deep nesting is an error, not a stack overflow"
        );
    }

    #[test]
    fn truncated_json() {
        let e = load_err(b"{\"a\": [1, \"b");
        assert_eq!(
            e,
            PayloadError::Truncated {
                line: 1,
                column: 12
            }
        );
        assert_eq!(
            e.to_string(),
            "truncated JSON: unexpected end of input at line 1, column 12"
        );
    }

    #[test]
    fn top_level_must_be_an_object() {
        for (body, found) in [
            ("[]", "array"),
            (r#""connected""#, "string"),
            ("42", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            assert_eq!(
                load_err(body.as_bytes()),
                wrong("$", "object", found),
                "{body}"
            );
        }
        assert_eq!(
            load_err(b"[]").to_string(),
            "wrong type at `$`: expected object, found array"
        );
        assert_eq!(
            top_level_object::<U>(serde_json::from_str("{\"a\":1")),
            Err(PayloadError::Truncated { line: 1, column: 6 })
        );
    }

    #[test]
    fn field_readers_treat_null_as_absent_and_name_the_path() {
        let o = object(r#"{"s":"x","n":null,"b":true,"i":42,"f":1.5,"t":"2021-09-14T15:29:26Z"}"#);
        assert_eq!(present(&o, "s"), Some(&Value::from("x")));
        assert_eq!(present(&o, "n"), None);
        assert_eq!(present(&o, "absent"), None);

        assert_eq!(opt_str::<U>(&o, "a", "s"), Ok(Some("x".into())));
        assert_eq!(opt_str::<U>(&o, "a", "n"), Ok(None));
        assert_eq!(
            opt_str::<U>(&o, "a", "b"),
            Err(wrong("a.b", "string", "boolean"))
        );
        assert_eq!(required_str::<U>(&o, "a", "n"), Err(missing("a.n")));
        assert_eq!(
            Error::Missing { path: "a.n".into() }.to_string(),
            "missing required field `a.n` (absent or null)"
        );
        assert_eq!(required_str::<U>(&o, "", "s"), Ok("x".into()));

        assert_eq!(opt_bool::<U>(&o, "a", "b"), Ok(Some(true)));
        assert_eq!(opt_bool::<U>(&o, "a", "n"), Ok(None));
        assert_eq!(
            opt_bool::<U>(&o, "a", "s"),
            Err(wrong("a.s", "boolean", "string"))
        );

        assert_eq!(opt_id::<U>(&o, "a", "s"), Ok(Some("x".into())));
        assert_eq!(opt_id::<U>(&o, "a", "i"), Ok(Some("42".into())));
        assert_eq!(
            opt_id::<U>(&o, "a", "b"),
            Err(wrong("a.b", "string or number", "boolean"))
        );

        assert_eq!(
            as_object::<U>(&Value::from(1), "x[0]"),
            Err(wrong("x[0]", "object", "number"))
        );
        assert_eq!(
            wrong_type::<U>("p", "array", &Value::Null).to_string(),
            "wrong type at `p`: expected array, found null"
        );
    }

    #[test]
    fn timestamps_as_strings_or_numbers() {
        let o = object(r#"{"t":"2021-09-14T15:29:26Z","n":1631633366,"x":"soon","b":false}"#);
        for allow_number in [true, false] {
            assert_eq!(
                opt_timestamp::<U>(&o, "a", "t", allow_number),
                Ok(Some(1_631_633_366.0))
            );
            assert_eq!(
                opt_timestamp::<U>(&o, "a", "absent", allow_number),
                Ok(None)
            );
            assert_eq!(
                opt_timestamp::<U>(&o, "a", "x", allow_number),
                Err(invalid("a.x", r#"unparseable timestamp "soon""#))
            );
        }
        assert_eq!(
            opt_timestamp::<U>(&o, "a", "n", true),
            Ok(Some(1_631_633_366.0))
        );
        assert_eq!(
            opt_timestamp::<U>(&o, "a", "n", false),
            Err(wrong("a.n", "timestamp string", "number"))
        );
        assert_eq!(
            opt_timestamp::<U>(&o, "a", "b", true),
            Err(wrong("a.b", "timestamp string or number", "boolean"))
        );
        assert_eq!(
            invalid::<U>("a.x", "bad").to_string(),
            "invalid value at `a.x`: bad"
        );
    }

    #[test]
    fn lenient_numbers_and_booleans() {
        let v = |json: &str| serde_json::from_str::<Value>(json).unwrap();
        assert_eq!(lenient_i64(&v("1005")), Some(1005));
        assert_eq!(lenient_i64(&v("1005.0")), Some(1005));
        assert_eq!(lenient_i64(&v(r#"" 470 ""#)), Some(470));
        for bad in ["1.5", "1e300", r#""x""#, "true", "null", "[]"] {
            assert_eq!(lenient_i64(&v(bad)), None, "{bad}");
        }
        assert_eq!(lenient_f64(&v("2.5")), Some(2.5));
        assert_eq!(lenient_f64(&v(r#"" 25 ""#)), Some(25.0));
        for bad in [r#""inf""#, r#""NaN""#, r#""x""#, "false", "null"] {
            assert_eq!(lenient_f64(&v(bad)), None, "{bad}");
        }
        assert_eq!(lenient_bool(&v("true")), Some(true));
        assert_eq!(lenient_bool(&v(r#"" FALSE ""#)), Some(false));
        for bad in ["1", r#""yes""#, "null"] {
            assert_eq!(lenient_bool(&v(bad)), None, "{bad}");
        }
    }

    #[test]
    fn paths_escape_and_clip_keys() {
        assert_eq!(field("", "data"), "data");
        assert_eq!(field("a", "b_1"), "a.b_1");
        assert_eq!(field("a", "b-c"), r#"a["b-c"]"#);
        assert_eq!(field("a", ""), r#"a[""]"#);
        assert_eq!(field("", "b c"), r#"$["b c"]"#);
        assert_eq!(key("", "a\"b\\c\nd"), r#"$["a\"b\\c d"]"#);
        assert_eq!(key("h", "x:1"), r#"h["x:1"]"#);
        let long = "k".repeat(300);
        assert_eq!(key("h", &long), format!("h[\"{}…\"]", "k".repeat(200)));
        assert_eq!(index("data", 3), "data[3]");
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("abc"), "abc");
        assert_eq!(clip(&"€".repeat(200)), "€".repeat(200));
        assert_eq!(clip(&"€".repeat(201)), format!("{}…", "€".repeat(200)));
        assert_eq!(clip("a\u{0}b\r\nc"), "a b  c");
    }
}
