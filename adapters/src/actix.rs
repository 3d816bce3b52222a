//! actix-web integration: [`SessionMiddleware`], [`Session`] as an extractor,
//! [`Error`] as a response.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready as ready_poll, Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use session_core::{Codec, JsonCodec, ResponseCookie, SessionConfig, Store};

use crate::session::{Session, Sessions};
use crate::Error;

/// actix-web middleware that gives every request a [`Session`] and adds the
/// session's `Set-Cookie` to the response; add it with `App::wrap`.
///
/// It does what [`SessionLayer`](crate::SessionLayer) does for tower: it
/// finds the cookie, and its signature is verified and the store called only
/// when the handler uses the session. Cloning it is two `Arc` clones, so build it once
/// and clone it into each worker's `App`.
pub struct SessionMiddleware<C: Codec = JsonCodec> {
    sessions: Sessions<C>,
}

impl<C: Codec> SessionMiddleware<C> {
    /// Sessions kept in `store`, with cookies and timeouts from `config`.
    pub fn new(store: Arc<dyn Store>, config: impl Into<Arc<SessionConfig<C>>>) -> Self {
        SessionMiddleware {
            sessions: Sessions::new(store, config),
        }
    }
}

impl<C: Codec> Clone for SessionMiddleware<C> {
    fn clone(&self) -> Self {
        SessionMiddleware {
            sessions: self.sessions.clone(),
        }
    }
}

impl<C: Codec> std::fmt::Debug for SessionMiddleware<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware").finish_non_exhaustive()
    }
}

impl<S, B, C> Transform<S, ServiceRequest> for SessionMiddleware<C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    C: Codec,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service,
            sessions: self.sessions.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an actix-web app.
pub struct SessionMiddlewareService<S, C: Codec = JsonCodec> {
    service: S,
    sessions: Sessions<C>,
}

impl<S, C: Codec> std::fmt::Debug for SessionMiddlewareService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareService")
            .finish_non_exhaustive()
    }
}

impl<S, B, C> Service<ServiceRequest> for SessionMiddlewareService<S, C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    C: Codec,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = SessionMiddlewareFuture<S::Future, C>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // actix-web's headers are not `http` 1's: hand over the cookie bytes
        // (not text: one non-ASCII cookie must not hide the session's).
        let cookies = request
            .headers()
            .get_all(COOKIE)
            .map(|value| value.as_bytes());
        let (session, cookie) = self.sessions.start(cookies);
        request.extensions_mut().insert(session);
        SessionMiddlewareFuture {
            inner: self.service.call(request),
            cookie: Some(cookie),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionMiddlewareService`]: the inner
    /// service's, plus the session's headers once it is ready. A named type
    /// rather than a boxed `async` block, so a request costs no allocation
    /// for it.
    pub struct SessionMiddlewareFuture<F, C: Codec = JsonCodec> {
        #[pin]
        inner: F,
        cookie: Option<ResponseCookie<C>>,
    }
}

impl<F, B, C> Future for SessionMiddlewareFuture<F, C>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    C: Codec,
{
    type Output = Result<ServiceResponse<B>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready_poll!(this.inner.poll(cx))?;
        if let Some(cookie) = this.cookie.take() {
            append_headers(&mut response, cookie);
        }
        Poll::Ready(Ok(response))
    }
}

/// Appends what `cookie` says the response needs (`Set-Cookie`, and the
/// `Cache-Control` and `Vary` that go with it) to `response`.
fn append_headers<B, C: Codec>(response: &mut ServiceResponse<B>, cookie: ResponseCookie<C>) {
    // Most often so for routes that never use the session: skip the copy.
    if cookie.is_untouched() {
        return;
    }
    // The core decides from the handler's own `Cache-Control` and `Vary`
    // (copied into `http` 1's types) what to append.
    let mut seen = http::HeaderMap::new();
    for (ours, theirs) in [
        (CACHE_CONTROL, http::header::CACHE_CONTROL),
        (VARY, http::header::VARY),
    ] {
        for value in response.headers().get_all(ours) {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                seen.append(theirs.clone(), value);
            }
        }
    }
    cookie.for_each_header(&seen, |name, value| match to_actix(&name, &value) {
        Some((name, value)) => response.headers_mut().append(name, value),
        // Cannot happen: both were valid a moment ago.
        None => tracing::error!("session response header dropped"),
    });
}

/// One of the session's response headers in actix-web's types. The names,
/// and the two values that never change, map to constants: no parse and no
/// copy on every request that reads its session (each answers `Vary`).
fn to_actix(
    name: &http::HeaderName,
    value: &http::HeaderValue,
) -> Option<(HeaderName, HeaderValue)> {
    let name = if name == http::header::SET_COOKIE {
        SET_COOKIE
    } else if name == http::header::VARY {
        VARY
    } else if name == http::header::CACHE_CONTROL {
        CACHE_CONTROL
    } else {
        HeaderName::from_bytes(name.as_str().as_bytes()).ok()?
    };
    let value = match value.as_bytes() {
        b"Cookie" => HeaderValue::from_static("Cookie"),
        b"no-cache=\"Set-Cookie\"" => HeaderValue::from_static("no-cache=\"Set-Cookie\""),
        bytes => HeaderValue::from_bytes(bytes).ok()?,
    };
    Some((name, value))
}

/// `async fn handler(session: Session)`: the request's session, or a 500 that
/// says the middleware is missing.
impl<C: Codec> FromRequest for Session<C> {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Session<C>>()
                .cloned()
                .ok_or(Error::MissingMiddleware),
        )
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        // The one mapping's response, carried over into actix-web's types.
        let (parts, body) = self.to_response().into_parts();
        let mut response = HttpResponse::build(self.status_code());
        for (name, value) in &parts.headers {
            response.insert_header((name.as_str(), value.as_bytes()));
        }
        response.body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_headers_carry_over_into_actix_types_unchanged() {
        let cases = [
            (http::header::SET_COOKIE, "id=abc.def; Path=/; HttpOnly"),
            (http::header::VARY, "Cookie"),
            (http::header::CACHE_CONTROL, "no-cache=\"Set-Cookie\""),
            // Neither constant: parsed and copied.
            (http::header::VARY, "Accept"),
            (http::HeaderName::from_static("x-other"), "Cookie"),
        ];
        for (name, value) in cases {
            let (ours, theirs) = to_actix(&name, &http::HeaderValue::from_static(value))
                .unwrap_or_else(|| panic!("{name}: {value} dropped"));
            assert_eq!(ours.as_str(), name.as_str());
            assert_eq!(theirs.as_bytes(), value.as_bytes(), "{name}");
        }
    }
}
