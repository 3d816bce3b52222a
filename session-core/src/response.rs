//! [`ResponseCookie`]: the response half of a session, which alone writes
//! its cookie.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

use crate::signer::Verified;
use crate::state::{Current, Lifetime, RequestState, Stage, State};
use crate::{Codec, JsonCodec, SessionConfig};

/// The response half of a [`GenericSession`](crate::GenericSession): what the response must say
/// about the session cookie after the handler ran. It is handed out once,
/// beside the session, and writing consumes it, so the cookie is sent at
/// most once per response.
pub struct ResponseCookie<C: Codec = JsonCodec> {
    config: Arc<SessionConfig<C>>,
    request: Arc<RequestState>,
}

impl<C: Codec> std::fmt::Debug for ResponseCookie<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCookie")
            .field("state", &*self.request.lock_unverified())
            .finish_non_exhaustive()
    }
}
impl<C: Codec> ResponseCookie<C> {
    /// The response half of the session of `request`.
    pub(crate) fn new(config: Arc<SessionConfig<C>>, request: Arc<RequestState>) -> Self {
        ResponseCookie { config, request }
    }

    /// The `Set-Cookie` value this response needs, if any: the new id after a
    /// creation or regeneration; the same id re-issued when the session was used
    /// and its cookie was signed by an older key or is due a refresh (halfway
    /// through a `Max-Age` that is the absolute lifetime; after the touch
    /// granularity, one that is an idle timeout);
    /// or an expired cookie after [`destroy`](crate::GenericSession::destroy). `None`
    /// when the session was not touched or its cookie did not change.
    ///
    /// A query, for tests and logs: [`write`](Self::write) or
    /// [`into_headers`](Self::into_headers) send the cookie, once. In the
    /// Keygrip format the cookie's signature travels in a second
    /// `Set-Cookie`: see [`values`](Self::values).
    pub fn value(&self) -> Option<HeaderValue> {
        self.values().into_iter().next()
    }

    /// Every `Set-Cookie` value this response needs: [`value`](Self::value)'s,
    /// and in the [Keygrip](crate::CookieFormat::Keygrip) format the
    /// `<name>.sig` cookie after it. Empty when [`value`](Self::value) is
    /// `None`.
    pub fn values(&self) -> Vec<HeaderValue> {
        self.values_in(&self.request.lock_unverified())
    }

    /// [`values`](Self::values) for the request's `state`, locked.
    fn values_in(&self, state: &State) -> Vec<HeaderValue> {
        let cookie = &self.config.cookie;
        let live = match &state.session {
            // Nothing looked at the session, so nothing about it changed.
            Current::Unverified => return Vec::new(),
            Current::None => {
                let drop = state.expire_cookie && self.request.incoming.present;
                return if drop { cookie.removal() } else { Vec::new() };
            }
            Current::Live(live) => live,
        };
        // A session with its own lifetime keeps a persistent cookie of that
        // length, bounded by the absolute lifetime.
        let (lifetime, resend) = match live.lifetime {
            Lifetime::Configured => (None, false),
            Lifetime::Own { seconds, resend } => {
                let max_age = resend.unwrap_or_else(|| {
                    let own = Duration::from_secs(seconds);
                    self.config
                        .policy
                        .absolute
                        .map_or(own, |absolute| own.min(absolute))
                });
                (Some((seconds, max_age)), resend.is_some())
            }
        };
        let send = match live.stage {
            Stage::Created => true,
            _ if resend => true,
            Stage::Minted => false,
            Stage::Cookie => {
                let found = self.request.found(cookie).filter(|f| f.id == live.id);
                state.accessed
                    && found.is_some_and(|found| {
                        found.verified == Verified::Rotated
                            || cookie.needs_refresh(found, &self.config.policy)
                    })
            }
        };
        if send {
            cookie.issue(&live.id, lifetime)
        } else {
            Vec::new()
        }
    }

    /// Whether the handler left the session alone: it called no method of
    /// it. Then the response needs no session header, whatever its own
    /// headers say, and [`into_headers`](Self::into_headers) would return
    /// none. A cheap check, for adapters that would otherwise copy the
    /// response's `Cache-Control` and `Vary` only to learn that.
    pub fn is_untouched(&self) -> bool {
        let state = self.request.lock_unverified();
        !state.accessed && matches!(state.session, Current::Unverified)
    }

    /// The headers this response needs, to be appended to the `response`
    /// headers the handler set (which are read, never replaced):
    ///
    /// - `Set-Cookie`, as [`values`](Self::values) says;
    /// - with it, `Cache-Control: no-cache="Set-Cookie"`, so that no shared
    ///   cache hands one user's cookie to another;
    /// - `Vary: Cookie` when the handler used the session, so that no cache
    ///   serves one user's page to another (left out when the handler's
    ///   `Vary` already names `Cookie` or is `*`).
    ///
    /// For frameworks whose header types are not `http` 1's: copy in the
    /// response's `Cache-Control` and `Vary`, and append what this returns
    /// (or what [`for_each_header`](Self::for_each_header) hands over, which
    /// makes no list).
    pub fn into_headers(self, response: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        self.for_each_header(response, |name, value| headers.push((name, value)));
        headers
    }

    /// Hands `add` each header [`into_headers`](Self::into_headers) would
    /// list, in the same order.
    pub fn for_each_header(self, response: &HeaderMap, add: impl FnMut(HeaderName, HeaderValue)) {
        self.plan(response).each(add);
    }

    /// Appends the headers the response needs, if any, to the response's
    /// `headers`: see [`into_headers`](Self::into_headers).
    pub fn write(self, headers: &mut HeaderMap) {
        // Decided against the handler's headers, then appended: no list in
        // between (most responses that add anything add `Vary` alone).
        self.plan(headers).each(|name, value| {
            headers.append(name, value);
        });
    }

    fn plan(&self, response: &HeaderMap) -> Plan {
        let (cookies, accessed) = {
            let state = self.request.lock_unverified();
            (self.values_in(&state), state.accessed)
        };
        let cache_control = !cookies.is_empty()
            && !lists(response, &CACHE_CONTROL, |item| {
                item.eq_ignore_ascii_case("no-cache=\"set-cookie\"")
            });
        let vary = accessed
            && !lists(response, &VARY, |item| {
                item == "*" || item.eq_ignore_ascii_case("cookie")
            });
        Plan {
            cookies,
            cache_control,
            vary,
        }
    }
}

/// The headers a response needs, as [`ResponseCookie::into_headers`] lists
/// them.
struct Plan {
    cookies: Vec<HeaderValue>,
    cache_control: bool,
    vary: bool,
}

impl Plan {
    /// Hands `add` each header, in order.
    fn each(self, mut add: impl FnMut(HeaderName, HeaderValue)) {
        for cookie in self.cookies {
            add(SET_COOKIE, cookie);
        }
        // Checked when this compiles, not on every response.
        const NO_CACHE_SET_COOKIE: HeaderValue =
            HeaderValue::from_static("no-cache=\"Set-Cookie\"");
        const COOKIE: HeaderValue = HeaderValue::from_static("Cookie");
        if self.cache_control {
            add(CACHE_CONTROL, NO_CACHE_SET_COOKIE);
        }
        if self.vary {
            add(VARY, COOKIE);
        }
    }
}

/// Whether any comma-separated item of `name`'s values in `headers` passes
/// `matches` (items trimmed; values that are not text are skipped).
fn lists(headers: &HeaderMap, name: &HeaderName, matches: impl Fn(&str) -> bool) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| matches(item.trim()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::header::{COOKIE, SET_COOKIE, VARY};
    use http::{HeaderMap, HeaderValue};

    use crate::testkit::MapStore;
    use crate::{GenericSession, SessionConfig, Store};

    /// A request's session and its response half, with `headers`.
    fn request(
        headers: &HeaderMap,
        store: &Arc<dyn Store>,
    ) -> (GenericSession, super::ResponseCookie) {
        let config = SessionConfig::builder()
            .keys([b"response-test-key-0123456789abcd".to_vec()])
            .secure(false)
            .build()
            .unwrap();
        GenericSession::new(headers, Arc::clone(store), Arc::new(config))
    }

    /// Untouched until the handler calls the session, cookie or not; and
    /// while untouched, the response needs no header.
    #[test]
    fn untouched_until_the_session_is_called() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store: Arc<dyn Store> = Arc::new(MapStore::new());
            let (session, cookie) = request(&HeaderMap::new(), &store);
            assert!(cookie.is_untouched());
            session.set("a", &1).await.unwrap();
            assert!(!cookie.is_untouched());
            let headers: HeaderMap = cookie.into_headers(&HeaderMap::new()).into_iter().collect();
            let set = headers[SET_COOKIE].to_str().unwrap();
            let pair = set.split(';').next().unwrap();

            let mut sent = HeaderMap::new();
            sent.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
            let (_, cookie) = request(&sent, &store);
            assert!(cookie.is_untouched());
            assert!(cookie.into_headers(&HeaderMap::new()).is_empty());

            let (session, cookie) = request(&sent, &store);
            assert_eq!(session.get::<i32>("a").await.unwrap(), Some(1));
            assert!(!cookie.is_untouched());
            let headers = cookie.into_headers(&HeaderMap::new());
            assert_eq!(headers, [(VARY, HeaderValue::from_static("Cookie"))]);
        });
    }
}
