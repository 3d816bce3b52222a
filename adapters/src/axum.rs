//! axum integration: [`Session`] as an extractor, [`Error`] as a response.
//!
//! The session itself comes from [`SessionLayer`](crate::SessionLayer), added
//! to the router with `.layer(..)`.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use session_core::Codec;

use crate::{Error, Session};

/// `async fn handler(session: Session)`: the request's session, or a 500 that
/// says the layer is missing.
impl<S: Send + Sync, C: Codec> FromRequestParts<S> for Session<C> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        parts
            .extensions
            .get::<Session<C>>()
            .cloned()
            .ok_or(Error::MissingMiddleware)
    }
}

/// `Option<Session>`: `None` where the layer is not installed, for handlers
/// shared between routes with and without sessions.
impl<S: Send + Sync, C: Codec> OptionalFromRequestParts<S> for Session<C> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session<C>>().cloned())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.to_response().into_response()
    }
}
