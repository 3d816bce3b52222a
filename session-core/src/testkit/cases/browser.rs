//! A browser for the session cases: a cookie jar of one cookie, and the
//! store and config each request's [`GenericSession`] is made with.
//!
//! The two functions at the top are the only places the testkit asks a
//! session for its outgoing cookie or its response headers.

use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;

use crate::{GenericSession, SessionConfig, Store};

/// The `Set-Cookie` value the session's response needs, if any.
pub(super) fn sent_cookie(session: &GenericSession) -> Option<HeaderValue> {
    session.set_cookie()
}

/// The `Set-Cookie` line the session's response needs, if any, as text.
pub(super) fn sent_cookie_line(session: &GenericSession) -> Option<String> {
    sent_cookie(session).map(|value| value.to_str().unwrap().to_owned())
}

/// The headers the session adds to an empty response.
fn response_headers(session: &GenericSession) -> HeaderMap {
    let mut response = HeaderMap::new();
    session.write_cookie(&mut response);
    response
}

pub(super) const KEY_NEW: [u8; 32] = *b"testkit-key-new-0123456789abcdef";
pub(super) const KEY_OLD: [u8; 32] = *b"testkit-key-old-0123456789abcdef";

/// A config signing with the first of `keys`, verifying with all of them,
/// with cookies sent over plain HTTP too.
pub(super) fn config(keys: &[[u8; 32]]) -> Arc<SessionConfig> {
    let builder = SessionConfig::builder()
        .keys(keys.iter().map(|k| k.to_vec()))
        .secure(false);
    Arc::new(builder.build().unwrap())
}

/// One browser: sends back the cookie of the last response that set one.
pub(super) struct Browser {
    store: Arc<dyn Store>,
    config: Arc<SessionConfig>,
    /// The `name=value` pair it sends, if any.
    cookie: Option<String>,
}

impl Browser {
    /// A browser with no cookie, whose requests use `store` and `config`.
    pub(super) fn new(store: &Arc<dyn Store>, config: &Arc<SessionConfig>) -> Browser {
        Browser {
            store: store.clone(),
            config: config.clone(),
            cookie: None,
        }
    }

    /// A browser with no cookie, over `store`, with [`config`]`(&[KEY_NEW])`.
    pub(super) fn with_key(store: &Arc<dyn Store>) -> Browser {
        Browser::new(store, &config(&[KEY_NEW]))
    }

    /// The request headers: the cookie, if it has one.
    pub(super) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(pair) = &self.cookie {
            headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
        }
        headers
    }

    /// The session of a new request.
    pub(super) fn request(&self) -> GenericSession {
        self.request_with(&self.config)
    }

    /// The session of a new request to a server configured with `config`.
    pub(super) fn request_with(&self, config: &Arc<SessionConfig>) -> GenericSession {
        GenericSession::new(&self.headers(), self.store.clone(), config.clone())
    }

    /// Takes the cookie of the session's response; returns whether it set
    /// one. An expired cookie empties the jar.
    pub(super) fn respond(&mut self, session: &GenericSession) -> bool {
        let response = response_headers(session);
        let lines: Vec<_> = response.get_all(SET_COOKIE).iter().collect();
        assert!(lines.len() <= 1, "at most one Set-Cookie per response");
        let Some(line) = lines.first() else {
            return false;
        };
        let removal = line.to_str().unwrap().contains("Max-Age=0");
        self.cookie = (!removal).then(|| crate::testkit::cookie_pair(line));
        true
    }

    /// The `name=value` pair it sends, if any.
    pub(super) fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// A first request that writes `key` and so creates the session, whose
    /// cookie it takes. Returns that request's session.
    pub(super) async fn start<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> GenericSession {
        let first = self.request();
        first.set(key, value).await.unwrap();
        assert!(self.respond(&first), "the first write sets the cookie");
        first
    }
}
