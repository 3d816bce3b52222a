//! The session cookie, in one type: [`SessionCookie`] owns the cookie's
//! name and attributes, the signing keys and the id prefix, and it reads,
//! verifies, issues and removes the cookie. A change of format touches this
//! file alone.
//!
//! The cookie value is `<token>.<issued>.<signature>`: the session token, the
//! Unix time (seconds) the cookie was issued, and HMAC-SHA256 over
//! `<cookie name>=<token>.<issued>` (see [`Signer`]). A session given its own
//! lifetime carries it too, signed: `<token>.<issued>.<lifetime>.<signature>`,
//! so that a later re-issue keeps its `Max-Age`. The issue time lets a
//! persistent cookie be refreshed only when it is due, so an active user's
//! browser never drops a cookie whose session is still alive, while most
//! responses still carry no `Set-Cookie`. A `Max-Age` that is the absolute
//! lifetime is due once half of it has passed. One that is an idle timeout
//! (no absolute lifetime, or a session's own shorter one) slides with the
//! session, so it is due once the touch granularity has passed since it
//! was issued, as the store's deadline is: the browser then drops it no
//! sooner than the session may expire (see
//! [`ExpiryPolicy`](crate::ExpiryPolicy)'s touch granularity).
//!
//! That is the native [`CookieFormat`]; the formats of Node's session
//! libraries, for sharing sessions with a Node app, are in `formats.rs`.
//!
//! Reading never fails: a cookie that is missing, oversized, malformed or
//! wrongly signed is simply no session, and its text never reaches a store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::{Cookie, SameSite};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::formats::{self, MAX_FOREIGN_VALUE_LEN};
use crate::id::TOKEN_LEN;
use crate::signer::{Signer, Verified, SIGNATURE_LEN};
use crate::{CookieFormat, ExpiryPolicy, SessionId};

/// The longest cookie value even looked at: a token, a 20-digit time, a
/// 20-digit lifetime, a signature and three dots.
const MAX_VALUE_LEN: usize = TOKEN_LEN + 1 + 20 + 1 + 20 + 1 + SIGNATURE_LEN;

/// At most this many cookies with our name are kept per request, each
/// costing up to one HMAC per key when verified. A browser sends more than
/// one only for cookies set on different paths or domains; a forged header
/// with thousands must not buy thousands of HMACs.
pub(crate) const MAX_CANDIDATES: usize = 4;

/// The session cookie's format: its name and attributes, the keys that sign
/// it and the prefix of the ids it carries. Built by
/// [`SessionConfigBuilder`](crate::SessionConfigBuilder).
#[derive(Clone, Debug)]
pub(crate) struct SessionCookie {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
    /// `Some` for a persistent cookie, `None` for a browser-session cookie.
    pub(crate) max_age: Option<Duration>,
    /// Signs what the cookie carries; its `Debug` shows no key.
    pub(crate) signer: Signer,
    /// What every id starts with, in the store (never in the cookie).
    pub(crate) id_prefix: String,
    /// How the id travels: ours, or a Node library's.
    pub(crate) format: CookieFormat,
}

/// The request's cookies with our name, not yet verified: verifying costs an
/// HMAC, so it waits until a handler uses the session.
#[derive(Clone, Default)]
pub(crate) struct Incoming {
    /// A cookie with our name was present, valid or not.
    pub(crate) present: bool,
    /// Their values, in request order, leaving out any too long to be ours.
    values: Candidates,
    /// With the Keygrip format, the values of the `<name>.sig` cookies.
    signatures: Candidates,
}

/// Up to [`MAX_CANDIDATES`] cookie values in one buffer: a request with a
/// session cookie allocates once for it, not for a list and each value.
#[derive(Clone, Default)]
struct Candidates {
    text: String,
    /// Where each value ends in `text`; the first `len` are used.
    ends: [usize; MAX_CANDIDATES],
    len: usize,
}

impl Candidates {
    fn len(&self) -> usize {
        self.len
    }

    /// Adds `value`, unless [`MAX_CANDIDATES`] are here already.
    fn push(&mut self, value: &str) {
        if let Some(end) = self.ends.get_mut(self.len) {
            self.text.push_str(value);
            *end = self.text.len();
            self.len += 1;
        }
    }

    /// The values, in the order pushed.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let ends = &self.ends[..self.len];
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts
            .zip(ends)
            .filter_map(|(start, &end)| self.text.get(start..end))
    }
}

impl std::fmt::Debug for Incoming {
    // The values are bearer tokens: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("present", &self.present)
            .field("values", &self.values.len())
            .field("signatures", &self.signatures.len())
            .finish()
    }
}

/// A session cookie whose signature verified.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) id: SessionId,
    /// Signed with the newest key, or an older one.
    pub(crate) verified: Verified,
    /// When it was issued, in Unix seconds; `None` in a format that does
    /// not say.
    pub(crate) issued: Option<u64>,
    /// The session's own lifetime in seconds, if it was given one.
    pub(crate) lifetime: Option<u64>,
}

/// Now, in Unix seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SessionCookie {
    /// A fresh id for a new session.
    pub(crate) fn mint(&self) -> SessionId {
        SessionId::generate(&self.id_prefix)
    }

    /// Finds the session cookies among the request's `Cookie` headers.
    pub(crate) fn read(&self, headers: &HeaderMap) -> Incoming {
        self.read_values(headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes))
    }

    /// [`read`](Self::read) over the bytes of each `Cookie` header, for callers
    /// whose header types are not `http`'s.
    ///
    /// Each header is split into `name=value` pairs on bytes, not parsed as
    /// text: browsers send cookies that a page's script or a sibling
    /// subdomain set, UTF-8 and worse, and one such pair must not hide ours.
    /// A value in double quotes (RFC 6265's `cookie-value`) is unwrapped.
    pub(crate) fn read_values<I>(&self, cookie_headers: I) -> Incoming
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut incoming = Incoming::default();
        let name = self.name.as_bytes();
        let signature_name = self.signature_name();
        let max_len = match self.format {
            CookieFormat::Native => MAX_VALUE_LEN,
            _ => MAX_FOREIGN_VALUE_LEN,
        };
        for header in cookie_headers {
            for pair in pairs(header.as_ref()) {
                let Some((key, value)) = split_pair(pair) else {
                    continue;
                };
                let list = if key == name {
                    incoming.present = true;
                    &mut incoming.values
                } else if signature_name
                    .as_deref()
                    .is_some_and(|n| key == n.as_bytes())
                {
                    &mut incoming.signatures
                } else {
                    continue;
                };
                // Ours are short visible ASCII; anything else is not ours.
                if list.len() < MAX_CANDIDATES && value.len() <= max_len && all_cookie_octets(value)
                {
                    if let Ok(value) = std::str::from_utf8(value) {
                        list.push(value);
                    }
                }
            }
        }
        incoming
    }

    /// The first of the request's session cookies whose signature verifies.
    /// Several may carry our name (set for different paths).
    pub(crate) fn verify_first(&self, incoming: &Incoming) -> Option<Found> {
        incoming
            .values
            .iter()
            .find_map(|value| self.verify(value, &incoming.signatures))
    }

    /// The `<name>.sig` cookie's name, in the Keygrip format.
    fn signature_name(&self) -> Option<String> {
        matches!(self.format, CookieFormat::Keygrip(_)).then(|| format!("{}.sig", self.name))
    }

    fn verify(&self, value: &str, signatures: &Candidates) -> Option<Found> {
        let (token, verified) = match self.format {
            CookieFormat::Native => return self.verify_native(value),
            CookieFormat::Keygrip(_) => {
                let verified = signatures.iter().find_map(|signature| {
                    formats::keygrip_verify(&self.signer, &self.name, value, signature)
                })?;
                (value.to_owned(), verified)
            }
            CookieFormat::Express => formats::express_verify(&self.signer, value)?,
        };
        Some(Found {
            id: formats::foreign_id(&self.id_prefix, &token)?,
            verified,
            issued: None,
            lifetime: None,
        })
    }

    fn verify_native(&self, value: &str) -> Option<Found> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        // The signature and the token have fixed lengths: cut there rather
        // than search for the dots (every request that reads its session
        // comes here).
        let (payload, signature) =
            value.split_at_checked(value.len().checked_sub(SIGNATURE_LEN + 1)?)?;
        let verified = self
            .signer
            .verify(&self.name, payload, signature.strip_prefix('.')?)?;
        // Checked after the signature too, so only our own well-formed ids go further.
        let (token, times) = payload.split_at_checked(TOKEN_LEN)?;
        let id = SessionId::parse(&self.id_prefix, token)?;
        let times = times.strip_prefix('.')?;
        let (issued, lifetime) = match times.split_once('.') {
            Some((issued, lifetime)) => (issued, Some(lifetime)),
            None => (times, None),
        };
        let issued = issued.parse().ok()?;
        let lifetime = lifetime.map(str::parse).transpose().ok()?;
        Some(Found {
            id,
            verified,
            issued: Some(issued),
            lifetime,
        })
    }

    /// Whether `found` should be re-issued when its session is used, under
    /// `policy`: always, for a persistent cookie whose format does not say
    /// when it was issued; never, for a browser-session cookie. Otherwise
    /// its `Max-Age` (the session's own lifetime, or the configured one)
    /// decides. Equal to the absolute lifetime, it outlives the session
    /// wherever it started, and is re-issued once half of it has passed.
    /// Shorter, it is an idle timeout, and every refresh of the session
    /// slides the session past it: it is re-issued once the touch
    /// granularity has passed, so that the browser keeps it at least until
    /// the idle timeout after the last use, less that granularity, which
    /// is how soon the store may end the session too. Halfway would let
    /// the browser drop it after half the idle timeout.
    pub(crate) fn needs_refresh(&self, found: &Found, policy: &ExpiryPolicy) -> bool {
        let Some(max_age) = found
            .lifetime
            .or(self.max_age.map(|age| whole_seconds(age).as_secs()))
        else {
            return false;
        };
        let Some(issued) = found.issued else {
            return true;
        };
        let slides = policy
            .absolute
            .is_none_or(|absolute| max_age < whole_seconds(absolute).as_secs());
        let due_after = if slides {
            ExpiryPolicy {
                idle: Duration::from_secs(max_age),
                ..*policy
            }
            .touch_granularity()
            .as_secs()
        } else {
            max_age / 2
        };
        now_secs().saturating_sub(issued) >= due_after
    }

    /// The `Set-Cookie` headers carrying `id`, issued now, signed with the
    /// newest key: one, or two in the Keygrip format (the value and its
    /// `.sig`). A session with its own `lifetime` (seconds) is persistent
    /// with `max_age`, and in the native format carries the lifetime, signed;
    /// any other has the configured `Max-Age`.
    pub(crate) fn issue(
        &self,
        id: &SessionId,
        lifetime: Option<(u64, Duration)>,
    ) -> Vec<HeaderValue> {
        let token = id.token();
        let mut cookies = match self.format {
            CookieFormat::Native => {
                let payload = match lifetime {
                    Some((seconds, _)) => format!("{token}.{}.{seconds}", now_secs()),
                    None => format!("{token}.{}", now_secs()),
                };
                let value = format!("{payload}.{}", self.signer.sign(&self.name, &payload));
                vec![self.base(&self.name, value)]
            }
            CookieFormat::Keygrip(_) => {
                let signature = formats::keygrip_sign(&self.signer, &self.name, token);
                vec![
                    self.base(&self.name, token.to_owned()),
                    self.base(&format!("{}.sig", self.name), signature),
                ]
            }
            CookieFormat::Express => {
                vec![self.base(&self.name, formats::express_value(&self.signer, token))]
            }
        };
        if let Some(max_age) = lifetime.map(|(_, max_age)| max_age).or(self.max_age) {
            for cookie in &mut cookies {
                cookie.set_max_age(to_time(whole_seconds(max_age)));
            }
        }
        cookies.iter().map(header).collect()
    }

    /// The `Set-Cookie` headers that make the browser drop the cookie (and,
    /// in the Keygrip format, its `.sig`): same name, Path and Domain, empty
    /// value, expired.
    pub(crate) fn removal(&self) -> Vec<HeaderValue> {
        let names = std::iter::once(self.name.clone()).chain(self.signature_name());
        names
            .map(|name| {
                let mut cookie = self.base(&name, String::new());
                cookie.make_removal();
                header(&cookie)
            })
            .collect()
    }

    fn base(&self, name: &str, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::new(name.to_owned(), value);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        if self.partitioned {
            cookie.set_partitioned(true);
        }
        cookie
    }
}

/// The `name=value` pairs of one `Cookie` header: its bytes between `;`s.
// As `split(|&b| b == b';')`, but `memchr` looks at a block of bytes at a
// time, where `split` ran about five instructions a byte (callgrind), on
// every request's cookies.
fn pairs(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let text = rest?;
        Some(match memchr::memchr(b';', text) {
            Some(end) => {
                rest = text.get(end + 1..);
                &text[..end]
            }
            None => {
                rest = None;
                text
            }
        })
    })
}

/// One `name=value` pair of a `Cookie` header, trimmed of the blanks around
/// it, with a quoted value unwrapped; `None` without an `=`.
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let equals = pair.iter().position(|&b| b == b'=')?;
    let (name, value) = (trim(&pair[..equals]), trim(&pair[equals + 1..]));
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    };
    Some((name, value))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Whether every byte is RFC 6265's `cookie-octet`: visible ASCII but `"`,
/// `,`, `;` and `\\`. Every request with a session cookie runs this over
/// about a hundred bytes, so it has no early exit and no branch per byte,
/// which lets the compiler check many bytes per instruction.
fn all_cookie_octets(value: &[u8]) -> bool {
    value.iter().fold(true, |ok, &b| {
        ok & (0x21..=0x7e).contains(&b) & (b != b'"') & (b != b',') & (b != b';') & (b != b'\\')
    })
}

/// `duration` in whole seconds, rounded up, as `Max-Age` counts them:
/// truncated, a lifetime under a second would become `Max-Age=0`, which
/// deletes the cookie it comes with. Saturated, so that a lifetime too long
/// to count (`Duration::MAX`, say) never wraps round to one that does.
pub(crate) fn whole_seconds(duration: Duration) -> Duration {
    Duration::from_secs(u64::try_from(duration.as_millis().div_ceil(1000)).unwrap_or(u64::MAX))
}

fn to_time(duration: Duration) -> cookie::time::Duration {
    cookie::time::Duration::try_from(duration).unwrap_or(cookie::time::Duration::MAX)
}

fn header(cookie: &Cookie<'_>) -> HeaderValue {
    // Name, path and domain were validated by the config builder, and the
    // value is base64(url), a verified Node token or percent-encoded, so the
    // text is always a valid header value.
    HeaderValue::try_from(cookie.to_string()).expect("session cookie is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SessionCookie {
        SessionCookie {
            name: "s".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            max_age: None,
            signer: Signer::new([[7u8; 32].to_vec()]).unwrap(),
            id_prefix: "session:".into(),
            format: CookieFormat::Native,
        }
    }

    /// A valid `s=<value>` pair for a fresh id, and the id.
    fn valid_pair() -> (String, SessionId) {
        let id = SessionId::generate("session:");
        let set_cookie = settings().issue(&id, None).remove(0);
        (pair_of(&set_cookie), id)
    }

    /// What a client sends back of a `Set-Cookie` line.
    fn pair_of(set_cookie: &HeaderValue) -> String {
        let cookie = Cookie::parse(set_cookie.to_str().unwrap()).unwrap();
        format!("{}={}", cookie.name(), cookie.value())
    }

    /// The id the headers' session cookie verifies to, if any.
    fn found(headers: &[&[u8]]) -> Option<SessionId> {
        let settings = settings();
        let incoming = settings.read_values(headers);
        settings.verify_first(&incoming).map(|found| found.id)
    }

    #[test]
    fn candidates_keep_order_and_cap() {
        let mut candidates = Candidates::default();
        assert_eq!(candidates.iter().count(), 0);
        for value in ["a.1", "", "bb.2", "c", "past-the-cap"] {
            candidates.push(value);
        }
        assert_eq!(candidates.len(), MAX_CANDIDATES);
        let kept: Vec<&str> = candidates.iter().collect();
        assert_eq!(kept, ["a.1", "", "bb.2", "c"]);
    }

    #[test]
    fn a_non_ascii_cookie_beside_ours_does_not_hide_it() {
        let (pair, id) = valid_pair();
        let header = format!("a=José; {pair}; b=\u{1F36A}");
        assert_eq!(found(&[header.as_bytes()]), Some(id.clone()));
        // Bytes that are not UTF-8 at all, before and after.
        let mut header = b"a=\xff\xfe; ".to_vec();
        header.extend_from_slice(pair.as_bytes());
        header.extend_from_slice(b"; c=\x80");
        assert_eq!(found(&[&header]), Some(id.clone()));
        // And in a header of its own, as before.
        assert_eq!(found(&[b"a=Jos\xc3\xa9", pair.as_bytes()]), Some(id));
    }

    #[test]
    fn a_quoted_value_is_unwrapped() {
        let (pair, id) = valid_pair();
        let (name, value) = pair.split_once('=').unwrap();
        let quoted = format!("x=1;  {name}=\"{value}\"  ;y=2");
        assert_eq!(found(&[quoted.as_bytes()]), Some(id));
        // One quote alone is no quoting, and the value is refused.
        let half = format!("{name}=\"{value}");
        assert_eq!(found(&[half.as_bytes()]), None);
    }

    #[test]
    fn only_our_name_counts_and_presence_is_noted() {
        let (pair, id) = valid_pair();
        let value = pair.split_once('=').unwrap().1;
        let settings = settings();
        for other in [
            format!("ss={value}"),
            format!("S={value}"),
            format!("x{value}"),
        ] {
            let incoming = settings.read_values([other.as_bytes()]);
            assert!(!incoming.present, "{other}");
        }
        // A broken cookie with our name is present (so destroy can remove
        // it) but holds no value to verify.
        let incoming = settings.read_values([b"s=caf\xc3\xa9".as_slice()]);
        assert!(incoming.present);
        assert_eq!(incoming.values.iter().count(), 0);
        // A forged one before the valid one is skipped.
        let header = format!("s=forged.1.sig; {pair}");
        assert_eq!(found(&[header.as_bytes()]), Some(id));
    }

    #[test]
    fn issued_cookies_carry_their_attributes() {
        let id = SessionId::generate("session:");
        let line = settings().issue(&id, None).remove(0);
        let line = line.to_str().unwrap();
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(line.contains(attribute), "{line}");
        }
        assert!(
            !line.contains("Max-Age") && !line.contains("Partitioned"),
            "{line}"
        );
        let mut partitioned = settings();
        partitioned.partitioned = true;
        let line = partitioned
            .issue(&id, Some((60, Duration::from_secs(60))))
            .remove(0);
        let line = line.to_str().unwrap();
        assert!(
            line.contains("Partitioned") && line.contains("Max-Age=60"),
            "{line}"
        );
    }

    #[test]
    fn a_removal_expires_the_cookie_where_it_was_set() {
        let mut cookie = settings();
        cookie.path = "/app".into();
        cookie.domain = Some("example.com".into());
        let line = cookie.removal().remove(0);
        let line = line.to_str().unwrap();
        assert!(line.starts_with("s=;"), "{line}");
        for attribute in ["Max-Age=0", "Path=/app", "Domain=example.com"] {
            assert!(line.contains(attribute), "{line}");
        }
    }

    #[test]
    fn an_older_keys_cookie_verifies_as_rotated() {
        let (pair, id) = valid_pair();
        let mut rotated = settings();
        rotated.signer = Signer::new([[8u8; 32].to_vec(), [7u8; 32].to_vec()]).unwrap();
        let incoming = rotated.read_values([pair.as_bytes()]);
        let found = rotated
            .verify_first(&incoming)
            .expect("an older key verifies");
        assert_eq!((found.id, found.verified), (id, Verified::Rotated));
        let mut replaced = settings();
        replaced.signer = Signer::new([[8u8; 32].to_vec()]).unwrap();
        let incoming = replaced.read_values([pair.as_bytes()]);
        assert!(
            replaced.verify_first(&incoming).is_none(),
            "a dropped key does not"
        );
    }

    fn found_issued(issued_ago: u64, lifetime: Option<u64>) -> Found {
        Found {
            id: cookie_id(),
            verified: Verified::Current,
            issued: Some(now_secs() - issued_ago),
            lifetime,
        }
    }

    #[test]
    fn a_persistent_cookie_of_the_absolute_lifetime_needs_refresh_halfway() {
        let mut cookie = settings();
        let policy = ExpiryPolicy::idle(Duration::from_secs(30))
            .with_absolute(Duration::from_secs(100))
            .with_touch_after(Duration::from_secs(10));
        // A browser-session cookie never does.
        assert!(!cookie.needs_refresh(&found_issued(1_000_000, None), &policy));
        cookie.max_age = Some(Duration::from_secs(100));
        assert!(!cookie.needs_refresh(&found_issued(40, None), &policy));
        assert!(cookie.needs_refresh(&found_issued(50, None), &policy));
        // A session's own lifetime as long counts the same way.
        assert!(!cookie.needs_refresh(&found_issued(40, Some(100)), &policy));
        assert!(cookie.needs_refresh(&found_issued(50, Some(100)), &policy));
    }

    #[test]
    fn a_persistent_cookie_of_an_idle_timeout_needs_refresh_at_the_touch_granularity() {
        // No absolute lifetime: Max-Age is the idle timeout, which every
        // refresh of the session slides. Refreshed halfway, the cookie
        // issued 45 s ago would expire 55 s from now while a read now keeps
        // the session 100 s.
        let mut cookie = settings();
        cookie.max_age = Some(Duration::from_secs(100));
        let idle =
            ExpiryPolicy::idle(Duration::from_secs(100)).with_touch_after(Duration::from_secs(10));
        assert!(!cookie.needs_refresh(&found_issued(5, None), &idle));
        assert!(cookie.needs_refresh(&found_issued(10, None), &idle));
        assert!(cookie.needs_refresh(&found_issued(45, None), &idle));
        // No granularity: every refresh slides the session, and the cookie.
        assert!(cookie.needs_refresh(
            &found_issued(0, None),
            &ExpiryPolicy::idle(Duration::from_secs(100))
        ));
        // A session's own lifetime shorter than the absolute one is an idle
        // timeout too; the granularity is at most half of it.
        let absolute = ExpiryPolicy::idle(Duration::from_secs(1800))
            .with_absolute(Duration::from_secs(43_200))
            .with_touch_after(Duration::from_secs(60));
        assert!(!cookie.needs_refresh(&found_issued(50, Some(3600)), &absolute));
        assert!(cookie.needs_refresh(&found_issued(60, Some(3600)), &absolute));
        assert!(!cookie.needs_refresh(&found_issued(5, Some(20)), &absolute));
        assert!(cookie.needs_refresh(&found_issued(10, Some(20)), &absolute));
    }

    #[test]
    fn max_age_counts_whole_seconds_rounded_up() {
        assert_eq!(
            whole_seconds(Duration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        assert_eq!(
            whole_seconds(Duration::from_millis(60_001)),
            Duration::from_secs(61)
        );
        // u64::MAX seconds and more would be 2^64 s rounded up: 0 if cast.
        assert_eq!(whole_seconds(Duration::MAX), Duration::from_secs(u64::MAX));
        // A lifetime under a second is no Max-Age=0, which deletes the cookie.
        let mut cookie = settings();
        cookie.max_age = Some(Duration::from_millis(900));
        let lines = cookie.issue(&cookie.mint(), None);
        let line = lines[0].to_str().unwrap();
        assert!(line.contains("Max-Age=1"), "{line}");
    }

    /// The `Cookie` header a browser sends back for `lines`.
    fn sent(lines: &[HeaderValue]) -> String {
        lines.iter().map(pair_of).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn keygrip_cookies_travel_as_a_value_and_its_signature() {
        let mut keygrip = settings();
        keygrip.format = CookieFormat::Keygrip(crate::KeygripDigest::Sha1);
        keygrip.signer = Signer::with([[7u8; 32]], crate::signer::Digest::Sha1, false).unwrap();
        let id = keygrip.mint();
        let lines = keygrip.issue(&id, Some((60, Duration::from_secs(60))));
        assert_eq!(lines.len(), 2);
        let header = sent(&lines);
        assert!(
            header.starts_with(&format!("s={}; s.sig=", id.token())),
            "{header}"
        );
        for line in &lines {
            assert!(line.to_str().unwrap().contains("Max-Age=60"), "{line:?}");
        }
        let read = |header: &str| {
            let incoming = keygrip.read_values([header.as_bytes()]);
            keygrip.verify_first(&incoming).map(|found| found.id)
        };
        assert_eq!(read(&header), Some(id.clone()));
        // In either order, and beside a forged signature.
        let (value, signature) = header.split_once("; ").unwrap();
        assert_eq!(
            read(&format!("{signature}; s.sig=forged; {value}")),
            Some(id.clone())
        );
        // No signature, or the value without our signature, is no session.
        assert_eq!(read(value), None);
        assert_eq!(read(&format!("{value}; s.sig=forged")), None);
        // Another cookie's signature does not sign ours.
        let other = keygrip.mint();
        let other_signature = sent(&keygrip.issue(&other, None)[1..]);
        assert_eq!(read(&format!("{value}; {other_signature}")), None);
        // A cookie that says nothing of when it was issued is refreshed
        // whenever a persistent one is used.
        let found = keygrip.verify_first(&keygrip.read_values([header.as_bytes()]));
        let policy = ExpiryPolicy::idle(Duration::from_secs(100));
        assert!(!keygrip.needs_refresh(found.as_ref().unwrap(), &policy));
        keygrip.max_age = Some(Duration::from_secs(100));
        assert!(keygrip.needs_refresh(found.as_ref().unwrap(), &policy));
        // Both are removed.
        let removal = keygrip.removal();
        let removal: Vec<&str> = removal.iter().map(|l| l.to_str().unwrap()).collect();
        assert!(
            removal[0].starts_with("s=;") && removal[1].starts_with("s.sig=;"),
            "{removal:?}"
        );
    }

    #[test]
    fn express_cookies_carry_a_signed_percent_encoded_id() {
        let mut express = settings();
        express.format = CookieFormat::Express;
        express.name = "connect.sid".into();
        let id = express.mint();
        let lines = express.issue(&id, None);
        assert_eq!(lines.len(), 1);
        let header = sent(&lines);
        assert!(
            header.starts_with(&format!("connect.sid=s%3A{}.", id.token())),
            "{header}"
        );
        let incoming = express.read_values([header.as_bytes()]);
        assert_eq!(express.verify_first(&incoming).map(|f| f.id), Some(id));
        let forged = header.replace("s%3A", "s%3Ax");
        let incoming = express.read_values([forged.as_bytes()]);
        assert!(express.verify_first(&incoming).is_none());
    }

    fn cookie_id() -> SessionId {
        settings().mint()
    }

    #[test]
    fn candidates_are_capped() {
        let (pair, id) = valid_pair();
        let forged = "s=forged.1.sig; ".repeat(10_000);
        let settings = settings();
        let incoming = settings.read_values([forged.as_bytes()]);
        assert!(incoming.present);
        assert_eq!(incoming.values.len(), MAX_CANDIDATES);
        // Within the cap a valid cookie is still found; past it, not.
        let within = format!("{}{pair}", "s=forged.1.sig; ".repeat(MAX_CANDIDATES - 1));
        assert_eq!(found(&[within.as_bytes()]), Some(id));
        let past = format!("{}{pair}", "s=forged.1.sig; ".repeat(MAX_CANDIDATES));
        assert_eq!(found(&[past.as_bytes()]), None);
    }

    #[test]
    fn cookie_octets_are_rfc_6265s() {
        // The grammar as RFC 6265 writes it: %x21 / %x23-2B / %x2D-3A / ...
        let rfc = |b: u8| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        let ours = "abc".as_bytes();
        for b in 0..=u8::MAX {
            // Alone, and in every position of a longer value.
            assert_eq!(all_cookie_octets(&[b]), rfc(b), "byte {b:#04x}");
            for at in 0..=ours.len() {
                let mut value = ours.to_vec();
                value.insert(at, b);
                assert_eq!(all_cookie_octets(&value), rfc(b), "byte {b:#04x} at {at}");
            }
        }
        assert!(all_cookie_octets(b""));
        let long = [b'a'; 200];
        assert!(all_cookie_octets(&long));
        // Wherever a bad byte sits in a long value, as the checks go by blocks.
        for at in [0, 15, 16, 31, 32, 63, 64, 127, 199] {
            let mut value = long;
            value[at] = 0xff;
            assert!(!all_cookie_octets(&value), "at {at}");
        }
    }

    mod properties {
        //! Properties of reading and verifying, over many generated cases
        //! (the counts are in each block's config).
        use proptest::prelude::*;

        use super::*;

        /// Any bytes at all, split into any number of `Cookie` headers.
        fn headers() -> impl Strategy<Value = Vec<Vec<u8>>> {
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..4)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// A header's pairs are its bytes between `;`s, as `split` has
            /// them, empty ones and the last included.
            #[test]
            fn pairs_are_the_bytes_between_semicolons(header in prop::collection::vec(
                prop::sample::select(b"a=; ".to_vec()), 0..40,
            )) {
                let ours: Vec<&[u8]> = pairs(&header).collect();
                let split: Vec<&[u8]> = header.split(|&b| b == b';').collect();
                prop_assert_eq!(ours, split);
            }

            /// Arbitrary header bytes never panic and never verify: no id
            /// comes out, so nothing reaches a store.
            #[test]
            fn arbitrary_headers_never_verify(headers in headers()) {
                let settings = settings();
                let incoming = settings.read_values(&headers);
                prop_assert!(incoming.values.len() <= MAX_CANDIDATES);
                prop_assert!(settings.verify_first(&incoming).is_none());
            }

            /// The same, with our name in front so every value is a candidate.
            #[test]
            fn arbitrary_values_with_our_name_never_verify(value in prop::collection::vec(any::<u8>(), 0..200)) {
                let header = [b"s=".as_slice(), &value].concat();
                prop_assert_eq!(found(&[header.as_slice()]), None);
            }

            /// Any one byte of a valid `s=<value>` changed is refused.
            #[test]
            fn any_single_byte_change_is_refused(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let (pair, _) = valid_pair();
                let mut changed = pair.clone().into_bytes();
                let at = position.index(changed.len());
                prop_assume!(changed[at] != byte);
                changed[at] = byte;
                prop_assert_eq!(found(&[changed.as_slice()]), None, "{}", String::from_utf8_lossy(&changed));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(5_000))]

            /// Signing, then reading what was sent, gives back the id, for
            /// any token name, prefix and neighbouring cookies.
            #[test]
            fn sign_then_parse_round_trips(
                name in "[A-Za-z0-9!#$%&'*+^_`|~-]{1,20}",
                prefix in "[!-~]{0,10}",
                before in "[a-z]{1,5}=[ -~&&[^;\"]]{0,20}",
            ) {
                let mut settings = settings();
                settings.name = name.clone();
                settings.id_prefix = prefix.clone();
                let id = settings.mint();
                let pair = pair_of(&settings.issue(&id, None)[0]);
                prop_assume!(!before.starts_with(&format!("{name}=")));
                let header = format!("{before}; {pair}");
                let incoming = settings.read_values([header.as_bytes()]);
                let found = settings.verify_first(&incoming);
                prop_assert_eq!(found.map(|f| f.id), Some(id));
            }
        }
    }
}
