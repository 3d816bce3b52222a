//! The set-up the adapters' tests share: one config, a store that counts its
//! calls, the layer or middleware on them, requests with or without a
//! cookie, and the session cookie of a response.
//!
//! Each test binary uses a part of it, and builds with the features it
//! requires only: what needs a feature is behind it.
#![allow(dead_code)]

use std::sync::Arc;

use session_core::testkit::{cookie_pair, CountingStore};
use session_core::SessionConfig;
use store_memory::MemoryStore;

/// The signing key of every test's config. `secrets.rs` looks for its
/// first words in what the public types print.
pub const KEY: &[u8] = b"the-signing-key-0123456789abcdef!";

/// The session cookie's name (the library's default).
pub const COOKIE_NAME: &str = "s";

/// A config signing with [`KEY`], with cookies sent over plain http too.
pub fn config() -> Arc<SessionConfig> {
    Arc::new(
        SessionConfig::builder()
            .key(KEY.to_vec())
            .secure(false)
            .build()
            .unwrap(),
    )
}

/// An in-memory store that counts its calls.
pub fn counting_store() -> Arc<CountingStore> {
    Arc::new(CountingStore::new(Arc::new(MemoryStore::new())))
}

/// The tower layer on a [`counting_store`] and the [`config`], and the store.
#[cfg(feature = "tower")]
pub fn layer() -> (session_adapters::SessionLayer, Arc<CountingStore>) {
    let store = counting_store();
    (
        session_adapters::SessionLayer::new(store.clone(), config()),
        store,
    )
}

/// The actix-web middleware on a [`counting_store`] and the [`config`], and
/// the store.
#[cfg(feature = "actix")]
pub fn middleware() -> (session_adapters::SessionMiddleware, Arc<CountingStore>) {
    let store = counting_store();
    (
        session_adapters::SessionMiddleware::new(store.clone(), config()),
        store,
    )
}

/// `request` through a clone of `service`, which must answer it.
pub async fn send<S, B>(service: &S, request: http::Request<B>) -> S::Response
where
    S: tower::Service<http::Request<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    tower::ServiceExt::oneshot(service.clone(), request)
        .await
        .unwrap()
}

/// A GET of `path` with an empty body, and `cookie` (a `name=value` pair)
/// if given.
pub fn get<B: Default>(path: &str, cookie: Option<&str>) -> http::Request<B> {
    let mut request = http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    request.body(B::default()).unwrap()
}

/// The `name=value` pair of the session cookie among a response's
/// `Set-Cookie` values, if one sets it; a handler's own cookies are passed
/// over. Takes the values of any `http` version (actix-web's is older).
pub fn session_cookie<V: AsRef<[u8]>>(set_cookies: impl IntoIterator<Item = V>) -> Option<String> {
    let ours = format!("{COOKIE_NAME}=");
    set_cookies
        .into_iter()
        .map(cookie_pair)
        .find(|pair| pair.starts_with(&ours))
}

/// The `name=value` pair of the session cookie a response sets, if any.
pub fn response_cookie<B>(response: &http::Response<B>) -> Option<String> {
    session_cookie(response.headers().get_all(http::header::SET_COOKIE))
}
