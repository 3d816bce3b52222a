//! [`SledStoreBuilder`]: where the database lives, how often it reaches the
//! disk, and how the sweeper runs.

use std::path::PathBuf;
use std::time::Duration;

use session_core::Limits;

use crate::{Error, SledStore};

/// When writes reach the disk, and so what a crash (power loss, `SIGKILL`,
/// a kernel panic) can lose. A clean drop of the store always flushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every write (`set`, `set_many`, `del`, `del_many`, `del_all`,
    /// `regenerate`, `set_lifetime`, `bind_owner`, `destroy_owner`,
    /// `revoke`, `destroy_all`) is flushed to disk before it returns: a
    /// crash loses no acknowledged write. Reads and `extend` slide expiry
    /// without waiting for the disk; sled flushes those every 500 ms (and
    /// a read far from its deadline leaves its slide to a pass every
    /// 500 ms), so a crash loses the slides of about the last second:
    /// their sessions keep the deadline of their previous refresh, so they
    /// may expire sooner than an idle timeout after the lost read, never
    /// later, and report the reads since that refresh less.
    /// Costs a disk sync per write (about 0.1 ms here, more on slow disks);
    /// concurrent writes share one. If the sync fails the write returns an
    /// error although it was applied, and may still reach the disk later.
    /// The default.
    EveryWrite,
    /// sled flushes in the background at this interval: a crash loses at most
    /// the writes of the last interval, and never leaves a session half
    /// written (each operation is one transaction).
    Every(Duration),
    /// No flush until [`SledStore::flush`] or the store is dropped (sled
    /// still writes out full buffers by itself): a crash may lose everything
    /// since the last flush.
    Manual,
}

/// Builds a [`SledStore`]; see [`SledStore::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until it is built"]
pub struct SledStoreBuilder {
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) sweep_interval: Duration,
    pub(crate) sweep_batch: usize,
    pub(crate) cache_bytes: u64,
    pub(crate) limits: Limits,
    pub(crate) timeout: Duration,
    pub(crate) max_concurrent: usize,
    /// How often the refresher applies what reads left
    /// ([`DeferredRefreshes::PASS_EVERY`](session_core::DeferredRefreshes::PASS_EVERY);
    /// tests set another).
    pub(crate) refresh_every: Duration,
}

/// The default directory, relative to the working directory.
pub const DEFAULT_PATH: &str = "session-data";

/// The default page cache: 64 MiB (sled's own default is 1 GiB). See
/// [`SledStoreBuilder::cache_bytes`].
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The least page cache sled takes; less is taken as this.
pub(crate) const MIN_CACHE_BYTES: u64 = 256;

impl Default for SledStoreBuilder {
    fn default() -> Self {
        SledStoreBuilder {
            path: PathBuf::from(DEFAULT_PATH),
            durability: Durability::EveryWrite,
            sweep_interval: Duration::from_secs(5),
            sweep_batch: 1000,
            cache_bytes: DEFAULT_CACHE_BYTES,
            limits: Limits::default(),
            timeout: Duration::from_secs(5),
            max_concurrent: 64,
            refresh_every: session_core::DeferredRefreshes::PASS_EVERY,
        }
    }
}

impl SledStoreBuilder {
    /// The database directory, created if missing ([`DEFAULT_PATH`] if not set).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// When writes reach the disk (default [`Durability::EveryWrite`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How often the sweeper looks for expired sessions (default 5 s).
    /// Expired sessions are never visible in between: this only bounds how
    /// long they take space on disk.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// How many expired sessions the sweeper handles before it reads the
    /// expiry index again (default 1000).
    pub fn sweep_batch(mut self, batch: usize) -> Self {
        self.sweep_batch = batch;
        self
    }

    /// sled's page cache, in bytes (default [`DEFAULT_CACHE_BYTES`], 64 MiB;
    /// sled's own default is 1 GiB; at least 256, sled's least, so 0 is
    /// taken as that). It fills as pages are read and written.
    /// PERFORMANCE.md ("The embedded stores", under "As the store grows,
    /// straight on the stores") tells what a cache that holds the database
    /// buys at a million sessions.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Size limits on keys and values (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long an operation may take before it fails with
    /// [`session_core::Error::Timeout`] (default 5 s). sled 0.34 can
    /// deadlock under load (sled #1412); with a deadline, a request then
    /// gets an error (a 503 from the example servers) instead of hanging for
    /// good. The operation may still be applied later, as with any timed-out
    /// call. The deadline uses tokio's timer: run the store on a runtime with
    /// time enabled (`#[tokio::main]` is).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many sled transactions may run at once (default 64), each on a
    /// thread of tokio's blocking pool. Operations beyond it wait their turn
    /// (within their deadline) without holding a thread. This bounds the
    /// threads a deadlocked sled can hold; it does not prevent the deadlock
    /// (one at a time deadlocked too here; see the crate docs).
    pub fn max_concurrent(mut self, transactions: usize) -> Self {
        self.max_concurrent = transactions;
        self
    }

    /// Opens (or creates) the database and starts the sweeper. Fails with
    /// [`Error::Locked`] when another process has it open. The first open
    /// of a database from before owned sessions upgrades it (see the crate
    /// docs), or fails with [`Error::Upgrade`].
    pub fn open(self) -> Result<SledStore, Error> {
        if self.sweep_interval.is_zero()
            || self.sweep_batch == 0
            || self.timeout.is_zero()
            || self.max_concurrent == 0
        {
            return Err(Error::Config(
                "sweep_interval, sweep_batch, timeout and max_concurrent must be more than zero"
                    .into(),
            ));
        }
        if matches!(self.durability, Durability::Every(every) if every < Duration::from_millis(1)) {
            return Err(Error::Config(
                "Durability::Every needs an interval of at least 1 ms".into(),
            ));
        }
        SledStore::open_with(self)
    }
}
