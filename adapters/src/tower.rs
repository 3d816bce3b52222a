//! [`SessionLayer`]: the session middleware for tower stacks (hyper 1 through
//! hyper-util, axum, tonic).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::COOKIE;
use http::{Request, Response};
use session_core::{Codec, JsonCodec, ResponseCookie, SessionConfig, Store};
use tower::{Layer, Service};

use crate::session::Sessions;

/// A tower [`Layer`] that gives every request a [`Session`](crate::Session) in its extensions
/// and adds the session's `Set-Cookie` to the response.
///
/// Per request it finds the session cookie and clones two `Arc`s; the
/// cookie's signature is verified and the store called only when the handler
/// uses the session, and no lock is held while the handler runs.
///
/// With hyper alone, wrap a `tower::service_fn` and serve it through
/// `hyper_util::service::TowerToHyperService`; the handler finds the session
/// with `request.extensions().get::<Session>()`.
pub struct SessionLayer<C: Codec = JsonCodec> {
    sessions: Sessions<C>,
}

impl<C: Codec> SessionLayer<C> {
    /// Sessions kept in `store`, with cookies and timeouts from `config` (an
    /// `Arc` works too, to share one config with other code).
    pub fn new(store: Arc<dyn Store>, config: impl Into<Arc<SessionConfig<C>>>) -> Self {
        SessionLayer {
            sessions: Sessions::new(store, config),
        }
    }
}

impl<C: Codec> Clone for SessionLayer<C> {
    fn clone(&self) -> Self {
        SessionLayer {
            sessions: self.sessions.clone(),
        }
    }
}

impl<C: Codec> std::fmt::Debug for SessionLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer").finish_non_exhaustive()
    }
}

impl<S, C: Codec> Layer<S> for SessionLayer<C> {
    type Service = SessionService<S, C>;

    fn layer(&self, inner: S) -> SessionService<S, C> {
        SessionService {
            inner,
            sessions: self.sessions.clone(),
        }
    }
}

/// The [`Service`] built by [`SessionLayer`].
pub struct SessionService<S, C: Codec = JsonCodec> {
    inner: S,
    sessions: Sessions<C>,
}

impl<S: Clone, C: Codec> Clone for SessionService<S, C> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl<S: std::fmt::Debug, C: Codec> std::fmt::Debug for SessionService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Codec,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Bytes, not text: one non-ASCII cookie must not hide the session's.
        let cookies = request.headers().get_all(COOKIE).iter();
        let (session, cookie) = self.sessions.start(cookies.map(|value| value.as_bytes()));
        request.extensions_mut().insert(session);
        ResponseFuture {
            inner: self.inner.call(request),
            cookie: Some(cookie),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's, plus
    /// the `Set-Cookie` header once it is ready.
    pub struct ResponseFuture<F, C: Codec = JsonCodec> {
        #[pin]
        inner: F,
        cookie: Option<ResponseCookie<C>>,
    }
}

impl<F, C, ResBody, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    C: Codec,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        // An error from the inner service has no response to carry a cookie;
        // tower stacks turn such errors into responses further out.
        if let (Ok(response), Some(cookie)) = (&mut result, this.cookie.take()) {
            cookie.write(response.headers_mut());
        }
        Poll::Ready(result)
    }
}
