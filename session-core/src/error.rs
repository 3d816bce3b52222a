//! The one error type of session-core, shared by every store.

use std::time::Duration;

/// A boxed error from a store's driver or a codec, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a session operation.
///
/// The variants are distinct so that a web layer can map them: a store that is
/// down or slow ([`Unavailable`](Error::Unavailable), [`Timeout`](Error::Timeout))
/// is a 503, bad input ([`EmptyKey`](Error::EmptyKey),
/// [`KeyTooLarge`](Error::KeyTooLarge), [`ValueTooLarge`](Error::ValueTooLarge),
/// [`TooManyKeys`](Error::TooManyKeys), [`SessionTooLarge`](Error::SessionTooLarge))
/// a 400, an [`UpdateConflict`](Error::UpdateConflict) a 409, the server's own failures ([`Encode`](Error::Encode),
/// [`Backend`](Error::Backend)) a 500, and [`Config`](Error::Config) and
/// [`Open`](Error::Open) only happen at start-up: see [`Error::status`].
///
/// A forged, malformed or expired cookie is never an error: it simply means
/// "no session".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be reached or refused the operation (connection refused,
    /// connection lost, server shutting down). Nothing was written.
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] BoxError),

    /// The store did not answer within its response timeout. The write may or may
    /// not have been applied, as with any timed-out network call.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),

    /// The store answered, but with something it should not have (a protocol error,
    /// corrupted data, a failed disk write).
    #[error("session store failed: {0}")]
    Backend(#[source] BoxError),

    /// A value could not be encoded by the session's codec.
    #[error("could not encode session value: {0}")]
    Encode(#[source] BoxError),

    /// Stored bytes could not be decoded by the session's codec.
    ///
    /// [`GenericSession`](crate::GenericSession) never returns this: it logs the
    /// problem and treats the value as absent. It is returned by
    /// [`Codec::decode`](crate::Codec::decode) for callers that want to know.
    #[error("could not decode session value: {0}")]
    Decode(#[source] BoxError),

    /// A session key was the empty string.
    #[error("session key is empty")]
    EmptyKey,

    /// A session key was longer than the store's [`Limits`](crate::Limits) allow.
    #[error("session key is {len} bytes, over the limit of {max}")]
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },

    /// A session value was larger than the store's [`Limits`](crate::Limits) allow.
    #[error("session value is {len} bytes, over the limit of {max}")]
    ValueTooLarge {
        /// The encoded value's length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },

    /// A write would leave the session with more keys than the store's
    /// [`Limits`](crate::Limits) allow; nothing was written.
    #[error("session would hold {keys} keys, over the limit of {max}")]
    TooManyKeys {
        /// The keys it would hold.
        keys: usize,
        /// The configured maximum.
        max: usize,
    },

    /// A write would leave the session larger than the store's
    /// [`Limits`](crate::Limits) allow; nothing was written.
    #[error("session would hold {bytes} bytes, over the limit of {max}")]
    SessionTooLarge {
        /// The bytes (keys plus values) it would hold.
        bytes: usize,
        /// The configured maximum.
        max: usize,
    },

    /// An owner (a user id) was empty or longer than
    /// [`MAX_OWNER_BYTES`](crate::MAX_OWNER_BYTES).
    #[error("session owner is {len} bytes; it must be 1 to {max}")]
    InvalidOwner {
        /// The owner's length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },

    /// An [increment](crate::Store::increment) found a value that is not an
    /// integer ([`parse_integer`](crate::parse_integer)); nothing
    /// was written.
    #[error("session value is not an integer")]
    NotAnInteger,

    /// An [increment](crate::Store::increment) would take the value out of
    /// `i64`; nothing was written.
    #[error("session value would overflow a 64-bit integer")]
    IntegerOverflow,

    /// [`GenericSession::update`](crate::GenericSession::update) lost the
    /// race to other writers of its key this many times in a row, and
    /// gave up; nothing was written.
    #[error("session value kept changing during {attempts} attempts to update it")]
    UpdateConflict {
        /// Compare-and-set attempts made.
        attempts: u32,
    },

    /// A configuration was refused as unsafe or inconsistent.
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// A store could not be opened or built: its builder's own error (a
    /// database locked or unreadable, an invalid option, a first connection
    /// refused), boxed whole so that [`source`](std::error::Error::source)
    /// leads to it and on to the driver's error. Every store converts its
    /// builder error into this variant, and only into it; it happens at
    /// start-up, and [`Error::status`] makes it a 500.
    #[error("session store could not be opened: {0}")]
    Open(#[source] BoxError),

    /// The cookie's name has a prefix (`__Secure-`, `__Host-`) whose rules
    /// its attributes break: browsers would drop such a cookie.
    #[error("invalid session cookie: the {prefix} prefix rule: {rule}")]
    CookiePrefix {
        /// The prefix: `__Secure-` or `__Host-`.
        prefix: &'static str,
        /// The rule, in words.
        rule: &'static str,
    },
}

impl Error {
    /// True for errors caused by the store being down or slow, which usually map to
    /// `503 Service Unavailable`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Timeout(_))
    }

    /// True for errors caused by the caller's input (an empty or oversized
    /// key or value, a session grown past its limits, an increment of a value
    /// that is not an integer or would overflow). Nothing was written.
    ///
    /// Not [`Encode`](Error::Encode): a value the server's own code built and
    /// could not serialize is the server's fault.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::EmptyKey
                | Error::KeyTooLarge { .. }
                | Error::ValueTooLarge { .. }
                | Error::TooManyKeys { .. }
                | Error::SessionTooLarge { .. }
                | Error::InvalidOwner { .. }
                | Error::NotAnInteger
                | Error::IntegerOverflow
        )
    }

    /// The HTTP status that names whose fault this is, the one every adapter
    /// and example server answers: `400 Bad Request` for the client's input,
    /// `409 Conflict` when an update kept losing the race for its key,
    /// `503 Service Unavailable` for a store that is down or slow, and
    /// `500 Internal Server Error` for the server's own failures (a store
    /// that answered wrongly, a value that would not encode, a bad
    /// configuration).
    pub fn status(&self) -> http::StatusCode {
        if self.is_invalid_input() {
            http::StatusCode::BAD_REQUEST
        } else if matches!(self, Error::UpdateConflict { .. }) {
            http::StatusCode::CONFLICT
        } else if self.is_unavailable() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// What a client may be told: the message for its own bad input, and a
    /// generic text otherwise, so that store addresses, driver messages and
    /// values stay in the server's logs.
    pub fn public_message(&self) -> String {
        if self.is_client_error() {
            self.to_string()
        } else if self.is_unavailable() {
            "session store unavailable".into()
        } else {
            "session store failed".into()
        }
    }

    /// The response every adapter and example server answers this error
    /// with: [`status`](Self::status), and
    /// [`public_message`](Self::public_message) as a `text/plain` body.
    ///
    /// Making the response is where the error is logged: at `debug` for
    /// the client's own input, which is the client's business, and at
    /// `warn` for the rest (a lost update race, the store's or the
    /// server's failures), which is the operator's. A codec error is
    /// logged without its text, which may quote the value.
    ///
    /// ```
    /// let response = session_core::Error::EmptyKey.to_response();
    /// assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
    /// assert_eq!(response.body(), "session key is empty");
    /// ```
    pub fn to_response(&self) -> http::Response<String> {
        match self {
            _ if self.is_invalid_input() => {
                tracing::debug!(error = %self, "session operation refused");
            }
            // serde's messages quote the value they could not handle.
            Error::Encode(_) => tracing::warn!("session value could not be encoded"),
            Error::Decode(_) => tracing::warn!("session value could not be decoded"),
            _ => tracing::warn!(error = %self, "session operation failed"),
        }
        let mut response = http::Response::new(self.public_message());
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// A 4xx: the client's input, or an update that lost its race.
    fn is_client_error(&self) -> bool {
        self.is_invalid_input() || matches!(self, Error::UpdateConflict { .. })
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;

    #[test]
    fn each_error_answers_its_status_and_keeps_store_details_private() {
        let cases: [(Error, StatusCode, &str); 7] = [
            (
                Error::EmptyKey,
                StatusCode::BAD_REQUEST,
                "session key is empty",
            ),
            (
                Error::UpdateConflict { attempts: 3 },
                StatusCode::CONFLICT,
                "session value kept changing during 3 attempts to update it",
            ),
            (
                Error::Unavailable("connection refused by 10.0.0.7:6379".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                "session store unavailable",
            ),
            (
                Error::Timeout(Duration::from_millis(500)),
                StatusCode::SERVICE_UNAVAILABLE,
                "session store unavailable",
            ),
            (
                Error::Backend("disk full on /var/db".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store failed",
            ),
            (
                Error::Decode("invalid type: string \"secret\"".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store failed",
            ),
            (
                Error::Open("cannot open /var/db/sessions".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "session store failed",
            ),
        ];
        for (error, status, body) in cases {
            let response = error.to_response();
            assert_eq!(response.status(), status, "{error}");
            assert_eq!(response.body(), body, "{error}");
            assert_eq!(
                response.headers()[http::header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
        }
    }
}
