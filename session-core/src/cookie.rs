//! The session cookie: its attributes, and how a signed id is read from a request
//! and written to a response.
//!
//! The cookie value is `<token>.<issued>.<signature>`: the session token, the
//! Unix time (seconds) the cookie was issued, and HMAC-SHA256 over
//! `<cookie name>=<token>.<issued>` (see [`Signer`]). The issue time lets a
//! persistent cookie be refreshed once half its `Max-Age` has passed, so an
//! active user's browser never drops a cookie whose session is still alive,
//! while most responses still carry no `Set-Cookie`.
//!
//! Reading never fails: a cookie that is missing, oversized, malformed or
//! wrongly signed is simply no session, and its text never reaches a store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::id::TOKEN_LEN;
use crate::signer::{Signer, Verified, SIGNATURE_LEN};
use crate::SessionId;

/// The longest cookie value even looked at: a token, a 20-digit time, a
/// signature and two dots.
const MAX_VALUE_LEN: usize = TOKEN_LEN + 1 + 20 + 1 + SIGNATURE_LEN;

/// Attributes of the session cookie. Built by
/// [`SessionConfigBuilder`](crate::SessionConfigBuilder).
#[derive(Clone, Debug)]
pub(crate) struct CookieSettings {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    /// `Some` for a persistent cookie, `None` for a browser-session cookie.
    pub(crate) max_age: Option<Duration>,
}

/// What the request's cookies said about the session.
#[derive(Clone, Debug, Default)]
pub(crate) struct Incoming {
    /// A cookie with our name was present, valid or not.
    pub(crate) present: bool,
    /// The verified cookie, if one was.
    pub(crate) found: Option<Found>,
}

/// A session cookie whose signature verified.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub(crate) id: SessionId,
    /// Signed with the newest key, or an older one.
    pub(crate) verified: Verified,
    /// When it was issued, in Unix seconds.
    pub(crate) issued: u64,
}

/// Now, in Unix seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CookieSettings {
    /// Finds and verifies the session cookie among the request's `Cookie` headers.
    ///
    /// Several cookies may carry our name (set for different paths); the first
    /// that verifies wins.
    pub(crate) fn read(&self, headers: &HeaderMap, signer: &Signer, prefix: &str) -> Incoming {
        let mut incoming = Incoming::default();
        let values = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|header| header.to_str().ok())
            .flat_map(|header| Cookie::split_parse(header).filter_map(Result::ok))
            .filter(|cookie| cookie.name() == self.name);
        for cookie in values {
            incoming.present = true;
            if let Some(found) = self.verify(cookie.value(), signer, prefix) {
                incoming.found = Some(found);
                break;
            }
        }
        incoming
    }

    fn verify(&self, value: &str, signer: &Signer, prefix: &str) -> Option<Found> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let (payload, signature) = value.rsplit_once('.')?;
        let verified = signer.verify(&self.name, payload, signature)?;
        // Checked after the signature too, so only our own well-formed ids go further.
        let (token, issued) = payload.split_once('.')?;
        let id = SessionId::parse(prefix, token)?;
        let issued = issued.parse().ok()?;
        Some(Found {
            id,
            verified,
            issued,
        })
    }

    /// Whether a cookie issued at `issued` has used half its `Max-Age` and should
    /// be refreshed. Browser-session cookies never need it.
    pub(crate) fn needs_refresh(&self, issued: u64) -> bool {
        self.max_age
            .is_some_and(|max_age| now_secs().saturating_sub(issued) >= max_age.as_secs() / 2)
    }

    /// A `Set-Cookie` header carrying `id`, issued now, signed with the newest key.
    pub(crate) fn issue(&self, id: &SessionId, signer: &Signer) -> HeaderValue {
        let payload = format!("{}.{}", id.token(), now_secs());
        let value = format!("{payload}.{}", signer.sign(&self.name, &payload));
        let mut cookie = self.base(value);
        if let Some(max_age) = self.max_age {
            cookie.set_max_age(to_time(max_age));
        }
        header(&cookie)
    }

    /// A `Set-Cookie` header that makes the browser drop the cookie: same name,
    /// Path and Domain, empty value, expired.
    pub(crate) fn removal(&self) -> HeaderValue {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        header(&cookie)
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::new(self.name.clone(), value);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie
    }

    /// Appends a `Set-Cookie` line (never replacing other cookies the handler set).
    pub(crate) fn append(headers: &mut HeaderMap, value: HeaderValue) {
        headers.append(SET_COOKIE, value);
    }
}

fn to_time(duration: Duration) -> cookie::time::Duration {
    cookie::time::Duration::try_from(duration).unwrap_or(cookie::time::Duration::MAX)
}

fn header(cookie: &Cookie<'_>) -> HeaderValue {
    // Name, path and domain were validated by the config builder and the value is
    // base64url, so the text is always a valid header value.
    HeaderValue::try_from(cookie.to_string()).expect("session cookie is a valid header value")
}
