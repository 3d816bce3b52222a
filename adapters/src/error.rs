//! [`Error`]: what a handler using the session can fail with, and the HTTP
//! status each failure answers.

use http::StatusCode;

/// The error of session-adapters, usable as a handler's error type: `?`
/// converts [`session_core::Error`] into it, and it becomes a response with
/// [`status`](Error::status) (axum's `IntoResponse`, actix-web's
/// `ResponseError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A handler asked for the session but no session middleware ran for its
    /// request: a set-up mistake, answered with 500.
    #[error(
        "no session on this request: add session_adapters::SessionLayer (tower, axum) \
         or SessionMiddleware (actix-web) in front of this handler"
    )]
    MissingMiddleware,
    /// A session operation failed.
    #[error(transparent)]
    Session(#[from] session_core::Error),
}

impl Error {
    /// The status this error answers, [`session_core::Error::status`]'s: 400
    /// for bad input (an empty or oversized key or value, an increment of a
    /// value that is not an integer), 409 for an update that kept losing
    /// its race, 503 when the store is down or slow, 500 for the rest.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Session(error) => error.status(),
            Error::MissingMiddleware => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body: the message for client and set-up errors, and a
    /// generic text for store failures, so that addresses and driver
    /// messages do not leak to clients. It logs nothing: build responses
    /// with [`to_response`](Self::to_response), which logs the error once.
    pub fn public_message(&self) -> String {
        match self {
            Error::Session(error) => error.public_message(),
            Error::MissingMiddleware => self.to_string(),
        }
    }

    /// The response this error answers, made and logged by
    /// [`session_core::Error::to_response`] for a session error; a missing
    /// middleware is logged as the set-up mistake it is.
    pub fn to_response(&self) -> http::Response<String> {
        match self {
            Error::Session(error) => error.to_response(),
            Error::MissingMiddleware => {
                tracing::error!("{self}");
                let mut response = http::Response::new(self.to_string());
                *response.status_mut() = self.status();
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_failure_answers_its_status_and_store_details_stay_private() {
        let down = Error::from(session_core::Error::Unavailable(
            "connection refused by 10.0.0.7:6379".into(),
        ));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.public_message(), "session store unavailable");
        let slow = Error::from(session_core::Error::Timeout(Duration::from_millis(500)));
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        let broken = Error::from(session_core::Error::Backend("disk full on /var/db".into()));
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(broken.public_message(), "session store failed");

        // A value the server could not encode is the server's fault.
        let unencodable = Error::from(session_core::Error::Encode("key must be a string".into()));
        assert_eq!(unencodable.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let bad = Error::from(session_core::Error::KeyTooLarge { len: 300, max: 256 });
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(bad.public_message().contains("300"));
        assert_eq!(
            Error::MissingMiddleware.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
