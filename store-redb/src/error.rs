//! [`Error`]: what can go wrong opening a store-redb database. Once open, the
//! store's operations fail with [`session_core::Error`] like every store's.

use std::path::PathBuf;
use std::sync::Arc;

/// Why [`RedbStoreBuilder::open`](crate::RedbStoreBuilder::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another store, in this process or another, has the database open:
    /// redb allows one at a time.
    #[error("store-redb: {path} is already open in another store or process")]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The file or its directory could not be created or read, or redb
    /// refused what it found there (not a redb database, a newer format,
    /// corruption).
    #[error("store-redb: cannot open {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// redb's (or the file system's) error.
        #[source]
        source: redb::Error,
    },
    /// An option was out of range.
    #[error("store-redb: invalid option: {0}")]
    Config(String),
    /// The store's writer thread could not be started.
    #[error("store-redb: cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Error {
    pub(crate) fn open(path: PathBuf, source: impl Into<redb::Error>) -> Error {
        match source.into() {
            redb::Error::DatabaseAlreadyOpen => Error::Locked { path },
            source => Error::Open { path, source },
        }
    }
}

impl From<Error> for session_core::Error {
    /// For code that builds every store behind one error type (the example
    /// servers): as every store's, an opening failure becomes
    /// [`Open`](session_core::Error::Open), with this error, whole, as its
    /// source (and redb's after it).
    fn from(error: Error) -> Self {
        session_core::Error::Open(Box::new(error))
    }
}

/// A redb failure during an operation, as session-core's error.
pub(crate) fn backend(error: impl Into<redb::Error>) -> session_core::Error {
    session_core::Error::Backend(Box::new(error.into()))
}

/// A failed commit, as each operation it held reports it: the one redb
/// error, shared, kept as the source.
#[derive(Debug)]
pub(crate) struct NotApplied(pub(crate) Arc<redb::Error>);

impl std::fmt::Display for NotApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store-redb: operation not applied: {}", self.0)
    }
}

impl std::error::Error for NotApplied {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_failed_commit_keeps_redbs_error_as_its_source() {
        let shared = Arc::new(redb::Error::DatabaseAlreadyOpen);
        let error = session_core::Error::Backend(Box::new(NotApplied(shared)));
        let not_applied = error.source().expect("the commit's error");
        assert!(not_applied.to_string().contains("operation not applied"));
        let redb = not_applied.source().expect("redb's error");
        assert!(redb.is::<redb::Error>(), "{redb:?}");
    }
}
