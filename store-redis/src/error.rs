//! store-redis's error type, for building a store, and the mapping of driver
//! errors onto session-core's [`Error`](session_core::Error).

use std::time::Duration;

use redis::RedisError;

/// Why a [`RedisStore`](crate::RedisStore) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option was invalid: a URL the driver cannot parse, `rediss://` without
    /// the `tls` feature, an empty cluster node list, a zero timeout.
    #[error("invalid Redis store configuration: {0}")]
    Config(String),

    /// The first connection to Redis failed (refused, timed out, wrong
    /// password, unknown database).
    #[error("could not connect to Redis: {0}")]
    Connect(#[source] RedisError),
}

impl From<Error> for session_core::Error {
    /// For code that builds every store behind one error type (the example
    /// servers): as every store's, a build failure becomes
    /// [`Open`](session_core::Error::Open), with this error, whole, as its
    /// source (and the driver's after it). The one exception is a first
    /// connection that failed: Redis is down, the kind an operation gets
    /// when Redis is down, so it becomes
    /// [`Unavailable`](session_core::Error::Unavailable) (retry later), with
    /// the same source.
    fn from(error: Error) -> session_core::Error {
        match error {
            Error::Connect(_) => session_core::Error::Unavailable(Box::new(error)),
            Error::Config(_) => session_core::Error::Open(Box::new(error)),
        }
    }
}

/// Maps a driver error onto the core's kinds: unreachable or reconnecting is
/// [`Unavailable`](session_core::Error::Unavailable), slow is
/// [`Timeout`](session_core::Error::Timeout), anything else (a script error, an
/// unexpected reply) is [`Backend`](session_core::Error::Backend).
pub(crate) fn to_core(error: RedisError, timeout: Duration) -> session_core::Error {
    use session_core::Error as Core;
    if error.is_timeout() {
        Core::Timeout(timeout)
    } else if error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_cluster_error()
        || is_transient(&error)
    {
        Core::Unavailable(error.into())
    } else {
        Core::Backend(error.into())
    }
}

/// Server errors that say "not now" rather than "wrong": loading, busy
/// scripts, a master down, a cluster being resharded.
fn is_transient(error: &RedisError) -> bool {
    matches!(
        error.code(),
        Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY")
    )
}
