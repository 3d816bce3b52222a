//! [`RedbStoreBuilder`]: where the database lives, when it reaches the disk,
//! how writers are grouped, how the sweeper runs, and each operation's
//! deadline.

use std::path::PathBuf;
use std::time::Duration;

use session_core::Limits;

use crate::{Error, RedbStore};

/// When writes reach the disk, and so what a crash (power loss, `SIGKILL`,
/// a kernel panic) can lose. A clean drop of the store always syncs. The
/// same choices, with the same meaning, as store-sled's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every write (`set`, `set_many`, `del`, `del_many`, `del_all`,
    /// `regenerate`, `set_lifetime`, `bind_owner`, `destroy_owner`,
    /// `revoke`, `destroy_all`) is in a commit synced to disk before it
    /// returns: a crash loses no acknowledged write. Concurrent writes share
    /// one commit and one sync (group commit). Reads and `extend` slide
    /// expiry in commits that do not wait for the disk; a slide reaches it
    /// within about a second (a read's waits for the writer's next pass of
    /// refreshes, then for the next sync). A crash may lose the slides of
    /// about that last second: the sessions they slid keep their previous
    /// deadlines, so may expire earlier than they would have (never later),
    /// and report the reads since their last refresh less. If a commit or its sync fails, its
    /// operations return an error; after a failed commit redb refuses
    /// further writes until the database is opened again. The default.
    EveryWrite,
    /// Commits do not wait for the disk; a synced commit follows at this
    /// interval. A crash loses at most the writes of the last interval, and
    /// never leaves a session half written (each commit is atomic).
    Every(Duration),
    /// No sync until [`RedbStore::flush`] or the store is dropped: a crash
    /// may lose everything since the last one.
    Manual,
}

impl Durability {
    /// How long a commit that did not wait for the disk may stay off it.
    pub(crate) fn sync_every(self) -> Option<Duration> {
        match self {
            Durability::EveryWrite => Some(Duration::from_millis(500)),
            Durability::Every(every) => Some(every),
            Durability::Manual => None,
        }
    }
}

/// Builds a [`RedbStore`]; see [`RedbStore::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until it is built"]
pub struct RedbStoreBuilder {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) max_batch: usize,
    pub(crate) timeout: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) sweep_batch: usize,
    pub(crate) cache_bytes: usize,
    pub(crate) limits: Limits,
    /// How often the writer applies the refreshes reads left for it; a
    /// constant but in this crate's tests.
    pub(crate) refresh_every: Duration,
}

/// The default database file, relative to the working directory.
pub const DEFAULT_PATH: &str = "session-data/sessions.redb";

/// The default page cache: 64 MiB (redb's own default is 1 GiB). See
/// [`RedbStoreBuilder::cache_bytes`].
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl Default for RedbStoreBuilder {
    fn default() -> Self {
        RedbStoreBuilder {
            path: PathBuf::from(DEFAULT_PATH),
            durability: Durability::EveryWrite,
            max_batch: 256,
            timeout: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(5),
            sweep_batch: 1000,
            cache_bytes: DEFAULT_CACHE_BYTES,
            limits: Limits::default(),
            refresh_every: session_core::DeferredRefreshes::PASS_EVERY,
        }
    }
}

impl RedbStoreBuilder {
    /// The database file, created with its missing parent directories
    /// ([`DEFAULT_PATH`] if not set).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// When writes reach the disk (default [`Durability::EveryWrite`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The most operations that share one commit (default 256). redb
    /// commits one write transaction at a time; the store's writer thread
    /// takes every operation waiting when a commit ends, up to this many,
    /// into the next one. 1 turns group commit off (one commit, and under
    /// [`Durability::EveryWrite`] one disk sync, per operation).
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.max_batch = operations;
        self
    }

    /// How long an operation may take before it fails with
    /// [`session_core::Error::Timeout`] (default 5 s). A request then gets
    /// an error (a 503 from the example servers), never silence. The
    /// operation may still be applied later, as with any timed-out call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the sweeper removes expired sessions (default 5 s).
    /// Expired sessions are never visible in between: this only bounds how
    /// long they take space on disk.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// How many expiry entries one sweep handles at most (default 1000):
    /// expired sessions removed, and live ones whose entry came due filed
    /// again at their deadline. A full sweep is followed by another at once.
    pub fn sweep_batch(mut self, batch: usize) -> Self {
        self.sweep_batch = batch;
        self
    }

    /// redb's page cache, in bytes (default [`DEFAULT_CACHE_BYTES`], 64
    /// MiB; 0 for none). It fills as pages are read and written (commits
    /// not yet synced take up to half), so a small store never uses it
    /// all. Once the file outgrows it, lookups read pages through the OS:
    /// PERFORMANCE.md ("The page cache", under "As the store grows, over
    /// HTTP") tells what a cache that holds the database buys at a million
    /// sessions.
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Size limits on keys and values (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Opens (or creates) the database and starts its writer thread. Fails
    /// with [`Error::Locked`] when another store, in this process or another,
    /// has it open.
    pub fn open(self) -> Result<RedbStore, Error> {
        if self.sweep_interval.is_zero() || self.sweep_batch == 0 || self.max_batch == 0 {
            return Err(Error::Config(
                "sweep_interval, sweep_batch and max_batch must be more than zero".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("timeout must be more than zero".into()));
        }
        if matches!(self.durability, Durability::Every(every) if every < Duration::from_millis(1)) {
            return Err(Error::Config(
                "Durability::Every needs an interval of at least 1 ms".into(),
            ));
        }
        RedbStore::open_with(self)
    }
}
