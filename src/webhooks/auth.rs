//! Who may talk to the webhook receiver: Meta's signed deliveries, relays holding a bearer
//! token, and the subscription handshake.
//!
//! Every comparison against a configured value runs in constant time, and no error or
//! `Debug` output carries a secret, a computed digest or any part of a body: the errors
//! name only what was wrong, for counting.

use std::sync::OnceLock;

use ring::hmac;

use super::ingest::RequestResult;
use crate::secret::Secret;

/// The header Meta signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Longest `hub.challenge` echoed back. Meta sends a decimal integer; anything longer than
/// this is not from Meta and is not worth reflecting.
pub const MAX_CHALLENGE_BYTES: usize = 256;

const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a delivery's `X-Hub-Signature-256` was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is malformed: {0}")]
    Malformed(Malformed),
    #[error("X-Hub-Signature-256 matches no configured app secret")]
    Mismatch,
}

/// What is wrong with the form of a signature header (never its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("it does not start with sha256=")]
    NoPrefix,
    #[error("it has a character that is not a hex digit")]
    NotHex,
    #[error("it is not 64 hex digits long")]
    WrongLength,
}

impl SignatureError {
    /// The `result` of `whatsapp_webhook_requests_total` this refusal counts under: a
    /// request without any credential is `unauthenticated` (401), one with a wrong or
    /// garbled signature `bad_signature` (403).
    pub fn result(&self) -> RequestResult {
        match self {
            SignatureError::Missing => RequestResult::Unauthenticated,
            SignatureError::Malformed(_) | SignatureError::Mismatch => RequestResult::BadSignature,
        }
    }
}

/// Checks Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` against
/// each app secret (one per app subscribed to the same receiver); any match accepts.
///
/// Meta sends lowercase hex. Uppercase digits are accepted too: they denote the same
/// digest, so accepting them admits no body that lowercase would refuse. The `sha256=`
/// prefix must be exactly that, as Meta sends it.
///
/// The digest is compared by `ring::hmac::verify`, in constant time. Every secret is
/// tried even after a match, so the time taken does not tell which app's secret matched.
pub fn verify_signature(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(SignatureError::Malformed(Malformed::NoPrefix))?;
    let tag = decode_digest(hex).map_err(SignatureError::Malformed)?;
    let mut matched = false;
    for secret in secrets {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        matched |= hmac::verify(&key, body, &tag).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The 32 bytes of a SHA-256 digest written as 64 hex digits, either case.
fn decode_digest(hex: &str) -> Result<[u8; 32], Malformed> {
    let digits = hex.as_bytes();
    if digits.iter().any(|&b| !b.is_ascii_hexdigit()) {
        return Err(Malformed::NotHex);
    }
    if digits.len() != 64 {
        return Err(Malformed::WrongLength);
    }
    let value = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
    let mut tag = [0u8; 32];
    for (byte, pair) in tag.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0]) << 4 | value(pair[1]);
    }
    Ok(tag)
}

/// Why an `Authorization: Bearer` header was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no Authorization header")]
    Missing,
    #[error("Authorization is not Bearer and a token")]
    Malformed,
    #[error("the bearer token matches no configured token")]
    Mismatch,
}

impl BearerError {
    /// The `result` of `whatsapp_webhook_requests_total` this refusal counts under, as for
    /// a signature: no credential is `unauthenticated` (401); a credential presented and
    /// wrong is `bad_signature` (403), so one alert on that result covers a relay with a
    /// stale token as well as a forger.
    pub fn result(&self) -> RequestResult {
        match self {
            BearerError::Missing => RequestResult::Unauthenticated,
            BearerError::Malformed | BearerError::Mismatch => RequestResult::BadSignature,
        }
    }
}

/// Checks `Authorization: Bearer <token>`, for relays that forward deliveries without
/// Meta's signature (360dialog, a business's own receiver). The scheme is matched without
/// regard to case (RFC 7235); the token exactly.
pub fn verify_bearer(expected: &[Secret], header: Option<&str>) -> Result<(), BearerError> {
    let header = header.ok_or(BearerError::Missing)?;
    let (scheme, token) = header.split_once(' ').ok_or(BearerError::Malformed)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(BearerError::Malformed);
    }
    if matches_any(expected, token) {
        Ok(())
    } else {
        Err(BearerError::Mismatch)
    }
}

/// Whether `presented` equals one of `expected`, in time that depends on neither value.
///
/// Both sides go through HMAC-SHA256 under a key drawn at random once per process, and the
/// two tags are compared by `ring::hmac::verify` (constant time). Comparing the tags
/// rather than the tokens means neither the token's length nor how many of its leading
/// bytes are right shows in the timing. (`ring::constant_time` would do the last step but
/// is deprecated, and alone it returns early on a length difference.)
fn matches_any(expected: &[Secret], presented: &str) -> bool {
    let key = comparison_key();
    let mut matched = false;
    for secret in expected {
        let tag = hmac::sign(key, secret.expose().as_bytes());
        matched |= hmac::verify(key, presented.as_bytes(), tag.as_ref()).is_ok();
    }
    matched
}

fn comparison_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
            // No system randomness: the comparison stays constant-time with any key; a
            // random one only adds that the tags cannot be precomputed.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            hmac::Key::new(hmac::HMAC_SHA256, &nanos.to_le_bytes())
        })
    })
}

/// The answer to a subscription handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Answer 200 with this challenge as `text/plain`: at most [`MAX_CHALLENGE_BYTES`],
    /// no control characters.
    Accept(String),
    /// Answer 403.
    Refused(Refusal),
}

/// Why a handshake was refused (for counting; nothing of the request's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `hub.mode` absent or not `subscribe`.
    Mode,
    /// `hub.verify_token` absent or matching no configured token.
    Token,
    /// `hub.challenge` absent, empty, too long or holding control characters.
    Challenge,
}

impl Refusal {
    /// A `result` label value for `whatsapp_webhook_verifications_total`.
    pub fn result(&self) -> &'static str {
        match self {
            Refusal::Mode => "bad_mode",
            Refusal::Token => "bad_token",
            Refusal::Challenge => "bad_challenge",
        }
    }
}

/// Answers Meta's `GET path?hub.mode=subscribe&hub.verify_token=...&hub.challenge=N`
/// (`query` is the request's query string without the `?`). Values are form-decoded; of a
/// repeated key the first counts. The token is compared in constant time whatever the
/// mode, and checked before the challenge, so a caller without the token learns nothing
/// about what else it got right.
pub fn handshake(query: &str, verify_tokens: &[Secret]) -> Handshake {
    let params = crate::query::QueryParams::parse(query);
    let param = |name: &str| params.get(name);
    let token_ok = param("hub.verify_token").is_some_and(|token| matches_any(verify_tokens, token));
    if !token_ok {
        return Handshake::Refused(Refusal::Token);
    }
    if param("hub.mode") != Some("subscribe") {
        return Handshake::Refused(Refusal::Mode);
    }
    match param("hub.challenge") {
        Some(challenge)
            if !challenge.is_empty()
                && challenge.len() <= MAX_CHALLENGE_BYTES
                && !challenge.chars().any(char::is_control) =>
        {
            Handshake::Accept(challenge.to_owned())
        }
        _ => Handshake::Refused(Refusal::Challenge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
    const RFC4231_KEY: &str = "Jefe";
    const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC4231_DIGEST: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::new(*v)).collect()
    }

    fn meta_header() -> String {
        format!("sha256={RFC4231_DIGEST}")
    }

    #[test]
    fn published_vector_is_accepted() {
        let header = meta_header();
        assert_eq!(
            verify_signature(&secrets(&[RFC4231_KEY]), Some(&header), RFC4231_DATA),
            Ok(())
        );
    }

    #[test]
    fn tampered_body_or_wrong_secret_is_a_mismatch() {
        let header = meta_header();
        assert_eq!(
            verify_signature(
                &secrets(&[RFC4231_KEY]),
                Some(&header),
                b"what do ya want for nothing!"
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&secrets(&["Jeff"]), Some(&header), RFC4231_DATA),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&[], Some(&header), RFC4231_DATA),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            SignatureError::Mismatch.result(),
            RequestResult::BadSignature
        );
    }

    #[test]
    fn any_configured_secret_may_match() {
        let header = meta_header();
        assert_eq!(
            verify_signature(
                &secrets(&["other-app-secret", RFC4231_KEY]),
                Some(&header),
                RFC4231_DATA
            ),
            Ok(())
        );
    }

    #[test]
    fn uppercase_hex_is_the_same_digest() {
        let header = format!("sha256={}", RFC4231_DIGEST.to_uppercase());
        assert_eq!(
            verify_signature(&secrets(&[RFC4231_KEY]), Some(&header), RFC4231_DATA),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers_are_told_apart_from_mismatches() {
        let keys = secrets(&[RFC4231_KEY]);
        let check = |header: &str| verify_signature(&keys, Some(header), RFC4231_DATA);
        assert_eq!(
            check(RFC4231_DIGEST),
            Err(SignatureError::Malformed(Malformed::NoPrefix))
        );
        assert_eq!(
            check(&format!("sha1={RFC4231_DIGEST}")),
            Err(SignatureError::Malformed(Malformed::NoPrefix))
        );
        assert_eq!(
            check(&format!("SHA256={RFC4231_DIGEST}")),
            Err(SignatureError::Malformed(Malformed::NoPrefix))
        );
        assert_eq!(
            check(""),
            Err(SignatureError::Malformed(Malformed::NoPrefix))
        );
        assert_eq!(
            check("sha256="),
            Err(SignatureError::Malformed(Malformed::WrongLength))
        );
        assert_eq!(
            check(&format!("sha256={}", &RFC4231_DIGEST[..63])),
            Err(SignatureError::Malformed(Malformed::WrongLength))
        );
        assert_eq!(
            check(&format!("sha256={RFC4231_DIGEST}00")),
            Err(SignatureError::Malformed(Malformed::WrongLength))
        );
        assert_eq!(
            check(&format!("sha256={}g", &RFC4231_DIGEST[..63])),
            Err(SignatureError::Malformed(Malformed::NotHex))
        );
        assert_eq!(
            check(&format!("sha256= {RFC4231_DIGEST}")),
            Err(SignatureError::Malformed(Malformed::NotHex))
        );
        assert_eq!(
            SignatureError::Malformed(Malformed::NotHex).result(),
            RequestResult::BadSignature
        );
    }

    #[test]
    fn missing_header_is_unauthenticated() {
        let err = verify_signature(&secrets(&[RFC4231_KEY]), None, RFC4231_DATA).unwrap_err();
        assert_eq!(err, SignatureError::Missing);
        assert_eq!(err.result(), RequestResult::Unauthenticated);
    }

    #[test]
    fn errors_show_no_secret_digest_or_body() {
        let keys = secrets(&["app-secret-value"]);
        let header = meta_header();
        let errors = [
            verify_signature(&keys, Some(&header), b"customer body +15551234567").unwrap_err(),
            verify_signature(&keys, Some("sha256=zz"), b"customer body").unwrap_err(),
            verify_signature(&keys, None, b"customer body").unwrap_err(),
        ];
        for err in errors {
            for shown in [err.to_string(), format!("{err:?}")] {
                for leak in ["app-secret-value", RFC4231_DIGEST, "customer", "zz"] {
                    assert!(!shown.contains(leak), "{shown:?} shows {leak:?}");
                }
            }
        }
        let err =
            verify_bearer(&secrets(&["relay-token"]), Some("Bearer wrong-token")).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("relay-token") && !shown.contains("wrong-token"));
        }
    }

    #[test]
    fn bearer_token_matches_any_configured_one() {
        let tokens = secrets(&["first-token", "second-token"]);
        assert_eq!(verify_bearer(&tokens, Some("Bearer first-token")), Ok(()));
        assert_eq!(verify_bearer(&tokens, Some("bearer second-token")), Ok(()));
        assert_eq!(verify_bearer(&tokens, Some("Bearer  second-token")), Ok(()));
        assert_eq!(
            verify_bearer(&tokens, Some("Bearer second-toke")),
            Err(BearerError::Mismatch)
        );
        assert_eq!(
            verify_bearer(&tokens, Some("Bearer second-token2")),
            Err(BearerError::Mismatch)
        );
        assert_eq!(
            verify_bearer(&tokens, Some("Bearer First-token")),
            Err(BearerError::Mismatch)
        );
        assert_eq!(
            verify_bearer(&[], Some("Bearer first-token")),
            Err(BearerError::Mismatch)
        );
    }

    #[test]
    fn bearer_header_must_be_bearer_and_a_token() {
        let tokens = secrets(&["first-token"]);
        assert_eq!(verify_bearer(&tokens, None), Err(BearerError::Missing));
        for header in [
            "",
            "first-token",
            "Basic Zmlyc3QtdG9rZW4=",
            "Bearer",
            "Bearer ",
        ] {
            assert_eq!(
                verify_bearer(&tokens, Some(header)),
                Err(BearerError::Malformed),
                "{header:?}"
            );
        }
        assert_eq!(
            BearerError::Missing.result(),
            RequestResult::Unauthenticated
        );
        assert_eq!(BearerError::Malformed.result(), RequestResult::BadSignature);
        assert_eq!(BearerError::Mismatch.result(), RequestResult::BadSignature);
    }

    #[test]
    fn handshake_echoes_the_challenge_for_the_right_token() {
        let tokens = secrets(&["my-verify-token"]);
        assert_eq!(
            handshake(
                "hub.mode=subscribe&hub.verify_token=my-verify-token&hub.challenge=1158201444",
                &tokens
            ),
            Handshake::Accept("1158201444".to_owned())
        );
        // Order of the parameters does not matter, and a second configured token works.
        assert_eq!(
            handshake(
                "hub.challenge=42&hub.verify_token=second&hub.mode=subscribe",
                &secrets(&["my-verify-token", "second"])
            ),
            Handshake::Accept("42".to_owned())
        );
    }

    #[test]
    fn handshake_values_are_form_decoded() {
        let tokens = secrets(&["a token/with+&=chars"]);
        assert_eq!(
            handshake(
                "hub.mode=subscribe&hub.verify_token=a+token%2Fwith%2B%26%3Dchars&hub.challenge=7",
                &tokens
            ),
            Handshake::Accept("7".to_owned())
        );
        assert_eq!(
            handshake(
                "hub.mode=subscribe&hub.verify_token=a+token/with+&=chars&hub.challenge=7",
                &tokens
            ),
            Handshake::Refused(Refusal::Token)
        );
    }

    #[test]
    fn handshake_refuses_wrong_token_or_mode() {
        let tokens = secrets(&["my-verify-token"]);
        let refused = |query: &str| handshake(query, &tokens);
        assert_eq!(
            refused("hub.mode=subscribe&hub.verify_token=my-verify-tokeN&hub.challenge=1"),
            Handshake::Refused(Refusal::Token)
        );
        assert_eq!(
            refused("hub.mode=subscribe&hub.challenge=1"),
            Handshake::Refused(Refusal::Token)
        );
        assert_eq!(
            handshake("hub.mode=subscribe&hub.verify_token=&hub.challenge=1", &[]),
            Handshake::Refused(Refusal::Token)
        );
        assert_eq!(
            refused("hub.mode=unsubscribe&hub.verify_token=my-verify-token&hub.challenge=1"),
            Handshake::Refused(Refusal::Mode)
        );
        assert_eq!(
            refused("hub.verify_token=my-verify-token&hub.challenge=1"),
            Handshake::Refused(Refusal::Mode)
        );
        assert_eq!(refused(""), Handshake::Refused(Refusal::Token));
    }

    #[test]
    fn handshake_refuses_a_challenge_unsafe_to_echo() {
        let tokens = secrets(&["t"]);
        let with = |challenge: &str| {
            handshake(
                &format!("hub.mode=subscribe&hub.verify_token=t{challenge}"),
                &tokens,
            )
        };
        assert_eq!(with(""), Handshake::Refused(Refusal::Challenge));
        assert_eq!(
            with("&hub.challenge="),
            Handshake::Refused(Refusal::Challenge)
        );
        let longest = "9".repeat(MAX_CHALLENGE_BYTES);
        assert_eq!(
            with(&format!("&hub.challenge={longest}")),
            Handshake::Accept(longest.clone())
        );
        assert_eq!(
            with(&format!("&hub.challenge={longest}9")),
            Handshake::Refused(Refusal::Challenge)
        );
        for control in ["%0A", "%0D", "%00", "%7F", "%C2%85"] {
            assert_eq!(
                with(&format!("&hub.challenge=1{control}2")),
                Handshake::Refused(Refusal::Challenge),
                "{control}"
            );
        }
    }
}
