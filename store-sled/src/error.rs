//! [`Error`]: what can go wrong opening a store-sled database. Once open, the
//! store's operations fail with [`session_core::Error`] like every store's.

use std::path::PathBuf;
use std::sync::Arc;

/// Why [`SledStoreBuilder::open`](crate::SledStoreBuilder::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process (or another store in this one) has the database open:
    /// sled allows one at a time.
    #[error("store-sled: {path} is locked by another process that has it open")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The directory could not be created or read, or sled refused what it
    /// found there (not a sled database, a newer format, corruption).
    #[error("store-sled: cannot open {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// A database written before owned sessions could not be brought to
    /// the current layout (see the crate docs); nothing was lost, and the
    /// next open tries again.
    #[error("store-sled: cannot upgrade {path}: {source}")]
    Upgrade {
        /// The database directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: session_core::Error,
    },
    /// An option was out of range.
    #[error("store-sled: invalid option: {0}")]
    Config(String),
    /// The store's sweeper or flusher thread could not be started.
    #[error("store-sled: cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Error {
    pub(crate) fn open(path: PathBuf, source: sled::Error) -> Error {
        // sled reports a held lock as an I/O error with this text (0.34).
        let locked = matches!(&source, sled::Error::Io(io)
            if io.to_string().starts_with("could not acquire lock"));
        if locked {
            Error::Locked { path }
        } else {
            Error::Open { path, source }
        }
    }
}

impl From<Error> for session_core::Error {
    /// For code that builds every store behind one error type (the example
    /// servers): as every store's, an opening failure becomes
    /// [`Open`](session_core::Error::Open), with this error, whole, as its
    /// source (and sled's after it).
    fn from(error: Error) -> Self {
        session_core::Error::Open(Box::new(error))
    }
}

/// A sled failure during an operation, as session-core's error.
pub(crate) fn backend(error: sled::Error) -> session_core::Error {
    session_core::Error::Backend(Box::new(error))
}

/// A failed flush, as each write that waited for it reports it: sled's
/// error, shared, kept as the source.
#[derive(Debug)]
pub(crate) struct FlushFailed(pub(crate) Option<Arc<sled::Error>>);

impl std::fmt::Display for FlushFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(error) => write!(f, "store-sled: flush to disk failed: {error}"),
            None => write!(f, "store-sled: flush to disk failed: unknown error"),
        }
    }
}

impl std::error::Error for FlushFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .as_deref()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_failed_flush_keeps_sleds_error_as_its_source() {
        let shared = Arc::new(sled::Error::Unsupported("test".into()));
        let error = session_core::Error::Backend(Box::new(FlushFailed(Some(shared))));
        let flush = error.source().expect("the flush's error");
        assert!(flush.to_string().contains("flush to disk failed"));
        let sled = flush.source().expect("sled's error");
        assert!(sled.is::<sled::Error>(), "{sled:?}");
    }
}
