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

/// The request's cookies with our name, not yet verified: verifying costs an
/// HMAC, so it waits until a handler uses the session.
#[derive(Clone, Default)]
pub(crate) struct Incoming {
    /// A cookie with our name was present, valid or not.
    pub(crate) present: bool,
    /// Their values, in request order, leaving out any too long to be ours.
    values: Vec<String>,
}

impl std::fmt::Debug for Incoming {
    // The values are bearer tokens: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("present", &self.present)
            .field("values", &self.values.len())
            .finish()
    }
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
    /// Finds the session cookies among the request's `Cookie` headers.
    pub(crate) fn read(&self, headers: &HeaderMap) -> Incoming {
        let values = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|header| header.to_str().ok());
        self.read_values(values)
    }

    /// [`read`](Self::read) over the text of each `Cookie` header, for callers
    /// whose header types are not `http`'s.
    pub(crate) fn read_values<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
    ) -> Incoming {
        let mut incoming = Incoming::default();
        let cookies = cookie_headers
            .into_iter()
            .flat_map(|header| Cookie::split_parse(header).filter_map(Result::ok))
            .filter(|cookie| cookie.name() == self.name);
        for cookie in cookies {
            incoming.present = true;
            if cookie.value().len() <= MAX_VALUE_LEN {
                incoming.values.push(cookie.value().to_owned());
            }
        }
        incoming
    }

    /// The first of the request's session cookies whose signature verifies.
    /// Several may carry our name (set for different paths).
    pub(crate) fn verify_first(
        &self,
        incoming: &Incoming,
        signer: &Signer,
        prefix: &str,
    ) -> Option<Found> {
        incoming
            .values
            .iter()
            .find_map(|value| self.verify(value, signer, prefix))
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
