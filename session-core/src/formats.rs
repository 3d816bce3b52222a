//! The cookie formats of Node's session libraries, so that a Rust app and a
//! Node app can share live sessions: [`CookieFormat::Keygrip`] as the
//! `cookies` and `keygrip` packages write it (Node's generic-session, Koa),
//! and [`CookieFormat::Express`] as express-session and `cookie-signature`
//! write it. [`SessionCookie`](crate::cookie::SessionCookie) picks the
//! format; this module turns ids into cookie values and back.
//!
//! Neither format carries an issue time or a session's own lifetime, as the
//! native one does: a persistent cookie is re-sent on every response that
//! used the session (as both Node libraries do), and a session's own
//! lifetime (`set_lifetime`) is sent once, when set.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::signer::{Signer, Verified};
use crate::SessionId;

/// How the session id travels in the cookie. The default, `Native`, is this
/// library's own; the others are those of Node's session libraries, for
/// sharing sessions with a Node app (see the README's "Sharing sessions
/// with Node apps").
///
/// ```
/// use session_core::{CookieFormat, KeygripDigest, SessionConfig};
///
/// // An Express app's `connect.sid`, signed with its `secret`.
/// let config = SessionConfig::builder()
///     .key(b"a secret of at least thirty-two bytes!".to_vec())
///     .cookie_format(CookieFormat::Express)
///     .build()?;
/// assert_eq!(config.cookie_name(), "connect.sid");
///
/// // Node's generic-session (the `cookies` package with Keygrip).
/// let config = SessionConfig::builder()
///     .key(b"a secret of at least thirty-two bytes!".to_vec())
///     .cookie_format(CookieFormat::Keygrip(KeygripDigest::Sha1))
///     .build()?;
/// assert_eq!(config.cookie_name(), "s");
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CookieFormat {
    /// `<token>.<issued>.<signature>` in one cookie, HMAC-SHA256 over the
    /// cookie's name, the token and its issue time: a persistent cookie is
    /// refreshed only when due (halfway through a `Max-Age` that is the
    /// absolute lifetime; after the touch granularity, one that is an idle
    /// timeout).
    #[default]
    Native,
    /// The `cookies` package's signed cookies, as Node's generic-session and
    /// Koa send them: the token alone in the cookie, and
    /// `<name>.sig=<signature>` beside it, an HMAC over `<name>=<token>` in
    /// URL-safe base64 without padding. Any key verifies, the first signs.
    Keygrip(KeygripDigest),
    /// express-session's cookie, signed as `cookie-signature` does it:
    /// `s:<id>.<signature>`, HMAC-SHA256 over the id in base64 without
    /// padding, percent-encoded; the default cookie name becomes
    /// `connect.sid`. Any secret verifies, the first signs.
    Express,
}

/// The hash under Keygrip's HMAC: `keygrip`'s default is SHA-1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeygripDigest {
    /// HMAC-SHA1, Keygrip's default (`new Keygrip(keys)`).
    #[default]
    Sha1,
    /// HMAC-SHA256 (`new Keygrip(keys, 'sha256')`).
    Sha256,
}

impl CookieFormat {
    /// The cookie name used unless one is set: `connect.sid` for Express,
    /// `s` otherwise.
    pub fn default_cookie_name(self) -> &'static str {
        match self {
            CookieFormat::Express => "connect.sid",
            _ => "s",
        }
    }
}

/// The longest token a Node app's id may have: express-session's are 32
/// characters and generic-session's 40; ours are 43.
const MAX_FOREIGN_TOKEN: usize = 128;

/// The longest cookie value of a Node format even looked at: a token and a
/// signature, every character percent-encoded.
pub(crate) const MAX_FOREIGN_VALUE_LEN: usize = 3 * (2 + MAX_FOREIGN_TOKEN + 1 + 64);

/// An id minted by a Node app (or by us), accepted once its signature
/// verified: 16 to 128 characters of base64 or base64url. That is
/// express-session's `uid-safe` (24 bytes, 32 characters of base64url) and
/// generic-session's `randomBytes(30)` (40 of base64), and keeps cookie text
/// that is no token away from the store.
pub(crate) fn foreign_id(prefix: &str, token: &str) -> Option<SessionId> {
    let well_formed = (16..=MAX_FOREIGN_TOKEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    well_formed.then(|| SessionId::foreign(prefix, token))
}

/// Keygrip's signature of `<name>=<value>`, as the `.sig` cookie carries it.
pub(crate) fn keygrip_sign(signer: &Signer, name: &str, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(signer.tag(&[name.as_bytes(), b"=", value.as_bytes()]))
}

/// Which key, if any, signed `value` as `signature` says (constant time per
/// key).
pub(crate) fn keygrip_verify(
    signer: &Signer,
    name: &str,
    value: &str,
    signature: &str,
) -> Option<Verified> {
    if signature.len() > 2 * signer.tag_len() {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(signature).ok()?;
    signer.check(&[name.as_bytes(), b"=", value.as_bytes()], &tag)
}

/// What `encodeURIComponent` leaves alone, as express-session's `cookie`
/// package serializes values with it.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// express-session's cookie value for `token`: `s:<token>.<signature>`,
/// percent-encoded.
pub(crate) fn express_value(signer: &Signer, token: &str) -> String {
    let signature = STANDARD_NO_PAD.encode(signer.tag(&[token.as_bytes()]));
    let signed = format!("s:{token}.{signature}");
    utf8_percent_encode(&signed, URI_COMPONENT).to_string()
}

/// The token an express-session cookie value carries, and which secret
/// signed it; `None` unless it is `s:<token>.<signature>` (percent-encoded
/// or not) with a signature one of the secrets made.
pub(crate) fn express_verify(signer: &Signer, value: &str) -> Option<(String, Verified)> {
    let decoded = percent_decode_str(value).decode_utf8().ok()?;
    let (token, signature) = decoded.strip_prefix("s:")?.rsplit_once('.')?;
    if signature.len() > 2 * signer.tag_len() {
        return None;
    }
    let tag = STANDARD_NO_PAD.decode(signature).ok()?;
    let verified = signer.check(&[token.as_bytes()], &tag)?;
    Some((token.to_owned(), verified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Digest;

    fn signer(digest: Digest, keys: &[&str]) -> Signer {
        Signer::with(keys.iter().map(|k| k.as_bytes()), digest, true).unwrap()
    }

    #[test]
    fn keygrip_signatures_verify_with_any_key_and_bind_name_and_value() {
        for digest in [Digest::Sha1, Digest::Sha256] {
            let old = signer(digest, &["old"]);
            let both = signer(digest, &["new", "old"]);
            let signature = keygrip_sign(&old, "s", "token");
            assert_eq!(
                signature.len(),
                if digest == Digest::Sha1 { 27 } else { 43 }
            );
            assert_eq!(
                keygrip_verify(&both, "s", "token", &signature),
                Some(Verified::Rotated)
            );
            let signature = keygrip_sign(&both, "s", "token");
            assert_eq!(
                keygrip_verify(&both, "s", "token", &signature),
                Some(Verified::Current)
            );
            assert_eq!(keygrip_verify(&old, "s", "token", &signature), None);
            assert_eq!(keygrip_verify(&both, "t", "token", &signature), None);
            assert_eq!(keygrip_verify(&both, "s", "tokeN", &signature), None);
            assert_eq!(keygrip_verify(&both, "s", "token", &signature[1..]), None);
            assert_eq!(
                keygrip_verify(&both, "s", "token", &"A".repeat(10_000)),
                None
            );
        }
    }

    #[test]
    fn express_values_round_trip_percent_encoded() {
        let both = signer(Digest::Sha256, &["new", "old"]);
        // A generic-session token needs '+' and '/' encoded.
        let token = "byUiI1K9Q3jEqLR/0Lhy6JqJ9qa5bFb9j35auX+5";
        let value = express_value(&both, token);
        assert!(value.starts_with("s%3AbyUiI1K9Q3jEqLR%2F0"), "{value}");
        assert!(!value.contains(['/', '+', ':', '=']), "{value}");
        assert_eq!(
            express_verify(&both, &value),
            Some((token.to_owned(), Verified::Current))
        );
        // Not percent-encoded is read the same.
        let plain = percent_decode_str(&value)
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert_eq!(
            express_verify(&both, &plain),
            Some((token.to_owned(), Verified::Current))
        );
        let old = signer(Digest::Sha256, &["old"]);
        assert_eq!(
            express_verify(&both, &express_value(&old, token)),
            Some((token.to_owned(), Verified::Rotated))
        );
        assert_eq!(express_verify(&old, &value), None, "a secret it lacks");
        assert_eq!(express_verify(&both, &plain[2..]), None, "unsigned: no s:");
        assert_eq!(express_verify(&both, &plain.replace("byU", "byV")), None);
        assert_eq!(express_verify(&both, "s:abc"), None);
        assert_eq!(express_verify(&both, "%zz"), None);
    }

    #[test]
    fn foreign_ids_are_tokens_of_16_to_128_base64_characters() {
        for token in [
            "Qh7Zf3kJ2pX9wV1bN4mC8rT6yL0sD5aE",
            "byUiI1K9Q3jEqLR/0Lhy6JqJ9qa5bFb9j35auXj5",
            &"a".repeat(16),
            &"a".repeat(128),
        ] {
            let id = foreign_id("session:", token).expect(token);
            assert_eq!((id.prefix(), id.token()), ("session:", token));
        }
        for token in [
            "a".repeat(15),
            "a".repeat(129),
            format!("{}.x", "a".repeat(20)),
            format!("{} x", "a".repeat(20)),
            format!("{};x", "a".repeat(20)),
            format!("{}é", "a".repeat(20)),
        ] {
            assert!(foreign_id("", &token).is_none(), "{token}");
        }
    }
}
