//! [`Error`]: what can go wrong opening a store-redb database. Once open, the
//! store's operations fail with [`session_core::Error`] like every store's.

use std::path::PathBuf;

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
