//! The one error type of session-core, shared by every store.

use std::time::Duration;

/// A boxed error from a store's driver or a codec, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a session operation.
///
/// The variants are distinct so that a web layer can map them: a store that is
/// down or slow ([`Unavailable`](Error::Unavailable), [`Timeout`](Error::Timeout))
/// is usually a 503, bad input from the application
/// ([`EmptyKey`](Error::EmptyKey), [`KeyTooLarge`](Error::KeyTooLarge),
/// [`ValueTooLarge`](Error::ValueTooLarge), [`Encode`](Error::Encode)) is a bug
/// to fix or a 400, and [`Config`](Error::Config) only happens at start-up.
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

    /// A configuration was refused as unsafe or inconsistent.
    #[error("invalid session configuration: {0}")]
    Config(String),
}

impl Error {
    /// True for errors caused by the store being down or slow, which usually map to
    /// `503 Service Unavailable`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Timeout(_))
    }

    /// True for errors caused by the caller's input (an empty, oversized or
    /// unencodable key or value). Nothing was written.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::EmptyKey
                | Error::KeyTooLarge { .. }
                | Error::ValueTooLarge { .. }
                | Error::Encode(_)
        )
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
