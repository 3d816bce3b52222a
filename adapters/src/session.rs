//! [`Session`]: the handle a middleware puts into each request.

use std::ops::Deref;
use std::sync::Arc;

use session_core::{Codec, GenericSession, JsonCodec, ResponseCookie, SessionConfig, Store};

/// The session of the current request, as handlers receive it.
///
/// A clone shares the same [`GenericSession`], so a handler may pass it to
/// helper tasks; all of [`GenericSession`]'s methods are available through
/// `Deref`. The cookie is the middleware's alone: it keeps the session's
/// [`ResponseCookie`] and writes it once the handler's response is ready, so
/// a handler has no way to send it twice. Changes made by a clone that
/// outlives the response reach the store but not the cookie (a session
/// created that late is lost to the client).
///
/// Get it from the request extensions (tower, hyper), or as an extractor
/// (axum, actix-web).
pub struct Session<C: Codec = JsonCodec> {
    inner: GenericSession<C>,
}

impl<C: Codec> Session<C> {
    /// Wraps a request's session. Middlewares do this; tests and custom
    /// integrations may too.
    pub fn new(session: GenericSession<C>) -> Self {
        Session { inner: session }
    }
}

impl<C: Codec> Clone for Session<C> {
    fn clone(&self) -> Self {
        Session {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Codec> Deref for Session<C> {
    type Target = GenericSession<C>;

    fn deref(&self) -> &GenericSession<C> {
        &self.inner
    }
}

impl<C: Codec> std::fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Session").field(&self.inner).finish()
    }
}

impl<C: Codec> From<GenericSession<C>> for Session<C> {
    fn from(session: GenericSession<C>) -> Self {
        Session::new(session)
    }
}

/// What a middleware needs to start each request's session: the store and the
/// config, shared by every request and every clone of the middleware.
pub(crate) struct Sessions<C: Codec> {
    store: Arc<dyn Store>,
    config: Arc<SessionConfig<C>>,
}

// Not derived: that would require `C: Clone`.
impl<C: Codec> Clone for Sessions<C> {
    fn clone(&self) -> Self {
        Sessions {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
        }
    }
}

#[cfg_attr(not(any(feature = "tower", feature = "actix")), allow(dead_code))]
impl<C: Codec> Sessions<C> {
    pub(crate) fn new(store: Arc<dyn Store>, config: impl Into<Arc<SessionConfig<C>>>) -> Self {
        Sessions {
            store,
            config: config.into(),
        }
    }

    /// The session of a request with these `Cookie` headers' bytes, for
    /// the handler, and its cookie, for the middleware.
    pub(crate) fn start<I>(&self, cookie_headers: I) -> (Session<C>, ResponseCookie<C>)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let (session, cookie) = GenericSession::from_cookie_headers(
            cookie_headers,
            Arc::clone(&self.store),
            Arc::clone(&self.config),
        );
        (Session::new(session), cookie)
    }
}
