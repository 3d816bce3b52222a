//! A browser for the session cases: a cookie jar of one cookie, and the
//! store and config each request's [`GenericSession`] is made with.
//!
//! A [`Request`] keeps both halves of a session; the two functions at the
//! top are the only places the testkit asks for a response's cookie or
//! headers.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;

use crate::{GenericSession, ResponseCookie, SessionConfig, Store};

/// The `Set-Cookie` value the request's response needs (or got, once
/// [`response_headers`] ran), if any.
pub(super) fn sent_cookie(request: &Request) -> Option<HeaderValue> {
    match &*request.cookie.lock().unwrap() {
        Some(cookie) => cookie.value(),
        None => request.sent.lock().unwrap().clone(),
    }
}

/// The `Set-Cookie` line the request's response needs, if any, as text.
pub(super) fn sent_cookie_line(request: &Request) -> Option<String> {
    sent_cookie(request).map(|value| value.to_str().unwrap().to_owned())
}

/// The headers the request's session adds to an empty response: the first
/// call only, as a response is made once.
fn response_headers(request: &Request) -> HeaderMap {
    let mut response = HeaderMap::new();
    if let Some(cookie) = request.cookie.lock().unwrap().take() {
        cookie.write(&mut response);
        *request.sent.lock().unwrap() = response.get(SET_COOKIE).cloned();
    }
    response
}

/// One request's session: the [`GenericSession`] a handler gets (through
/// `Deref`), and its [`ResponseCookie`], kept to be asked what it sends.
pub(super) struct Request {
    session: GenericSession,
    cookie: Mutex<Option<ResponseCookie>>,
    /// What [`response_headers`] sent, once it ran.
    sent: Mutex<Option<HeaderValue>>,
}

impl Request {
    /// The session of a request with these headers.
    pub(super) fn new(
        headers: &HeaderMap,
        store: Arc<dyn Store>,
        config: Arc<SessionConfig>,
    ) -> Request {
        let (session, cookie) = GenericSession::new(headers, store, config);
        Request {
            session,
            cookie: Mutex::new(Some(cookie)),
            sent: Mutex::new(None),
        }
    }
}

impl Deref for Request {
    type Target = GenericSession;

    fn deref(&self) -> &GenericSession {
        &self.session
    }
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
    pub(super) fn request(&self) -> Request {
        self.request_with(&self.config)
    }

    /// The session of a new request to a server configured with `config`.
    pub(super) fn request_with(&self, config: &Arc<SessionConfig>) -> Request {
        Request::new(&self.headers(), self.store.clone(), config.clone())
    }

    /// Takes the cookie of the session's response; returns whether it set
    /// one. An expired cookie empties the jar.
    pub(super) fn respond(&mut self, session: &Request) -> bool {
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
    pub(super) async fn start<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Request {
        let first = self.request();
        first.set(key, value).await.unwrap();
        assert!(self.respond(&first), "the first write sets the cookie");
        first
    }
}
