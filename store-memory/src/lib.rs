//! # store-memory
//!
//! A bounded, in-memory [`Store`] on [moka](https://docs.rs/moka): generic-session's
//! `MemoryStore`, with the same caveat. It is fast and needs no server, but it is
//! neither persistent nor shared between processes, so use it for development,
//! tests and single-process deployments that can afford to lose sessions on
//! restart.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::Store;
//! use store_memory::MemoryStore;
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::builder().max_bytes(16 * 1024 * 1024).build());
//! ```
//!
//! ## How it works
//!
//! - One cache entry per session: an immutable record of its fields and
//!   creation time behind an `Arc`. Writes go through moka's per-key
//!   `and_compute_with`, which serialises writers of one session without a global
//!   lock, and replace the record copy-on-write, so readers never see half a
//!   write. Before it, a writer takes its turn on a first-come, first-served
//!   lock (one of 1024, picked by the session id): moka does not queue the
//!   callers of one key, and under many concurrent writers to one session the
//!   soak test saw one of them lose every race, for good. A write therefore costs O(number of keys in the session); values
//!   themselves are shared, not copied.
//! - The cache is bounded by bytes (a weigher counts keys and values plus a
//!   fixed overhead per field and per session) and evicts the least recently used
//!   sessions first when full (moka's LRU policy: a new session is always
//!   admitted). An evicted session behaves like an expired one.
//! - Each entry's time-to-live is computed by moka's `Expiry` from the session's
//!   [`ExpiryPolicy`]: reads and writes slide it to the idle timeout, never past
//!   the absolute lifetime. The policy recorded is the one of the latest write;
//!   reads slide by it.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::Expiry;
use session_core::{
    Change, ExpiryPolicy, Limits, Result, SessionId, SessionSize, Store, WriteMode, WriteOutcome,
};

/// Default bound on the bytes held: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes counted per field and per session on top of their text, for the
/// allocations around them.
const FIELD_OVERHEAD: usize = 48;
const RECORD_OVERHEAD: usize = 128;

/// One session: immutable once built; writes build a new one.
#[derive(Debug)]
struct Record {
    created: Instant,
    policy: ExpiryPolicy,
    /// The session's own idle timeout, used in place of `policy.idle`.
    idle: Option<Duration>,
    fields: HashMap<String, Arc<[u8]>>,
    bytes: usize,
}

impl Record {
    fn new(created: Instant, policy: ExpiryPolicy) -> Record {
        Record {
            created,
            policy,
            idle: None,
            fields: HashMap::new(),
            bytes: RECORD_OVERHEAD,
        }
    }

    /// Time left to live if touched at `now`, zero once past the absolute lifetime.
    fn ttl(&self, now: Instant) -> Duration {
        let policy = self
            .idle
            .map_or(self.policy, |idle| self.policy.with_idle(idle));
        policy
            .remaining(now.saturating_duration_since(self.created))
            .unwrap_or(Duration::ZERO)
    }

    fn alive(&self, now: Instant) -> bool {
        !self.ttl(now).is_zero()
    }

    /// A copy with `changes` applied and `policy` recorded.
    fn with_changes(&self, changes: &[Change], policy: &ExpiryPolicy) -> Record {
        let mut fields = self.fields.clone();
        for (key, value) in changes {
            match value {
                Some(value) => fields.insert(key.clone(), Arc::from(value.as_slice())),
                None => fields.remove(key),
            };
        }
        let bytes = RECORD_OVERHEAD
            + fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + FIELD_OVERHEAD)
                .sum::<usize>();
        Record {
            created: self.created,
            policy: *policy,
            idle: self.idle,
            fields,
            bytes,
        }
    }

    /// A copy with its own idle timeout.
    fn with_lifetime(&self, idle: Duration, policy: &ExpiryPolicy) -> Record {
        Record {
            idle: Some(idle),
            ..self.with_changes(&[], policy)
        }
    }

    /// What the session holds, as [`Limits::check_session`] counts it.
    fn size(&self) -> SessionSize {
        let mut size = SessionSize::default();
        for (key, value) in &self.fields {
            size.add(key, value.len());
        }
        size
    }

    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.fields.get(key).map(|v| v.to_vec())
    }
}

/// Tells moka each session's time-to-live after every access.
struct SessionExpiry;

impl Expiry<String, Arc<Record>> for SessionExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        record: &Arc<Record>,
        now: Instant,
    ) -> Option<Duration> {
        Some(record.ttl(now))
    }

    fn expire_after_read(
        &self,
        _: &String,
        record: &Arc<Record>,
        now: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        Some(record.ttl(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        record: &Arc<Record>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(record.ttl(now))
    }
}

/// Configures a [`MemoryStore`].
///
/// | setting | default |
/// |---|---|
/// | [`max_bytes`](Self::max_bytes) | [`DEFAULT_MAX_BYTES`] (64 MiB) |
/// | [`limits`](Self::limits) | [`Limits::default`] (keys 256 B, values 4 MiB, sessions 1,024 keys and 16 MiB) |
#[derive(Clone, Debug)]
pub struct MemoryStoreBuilder {
    max_bytes: u64,
    limits: Limits,
}

impl MemoryStoreBuilder {
    /// Bound on the bytes of keys and values held; least recently used sessions are
    /// evicted beyond it.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Size limits on keys and values.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let cache = Cache::builder()
            .name("store-memory")
            .max_capacity(self.max_bytes)
            // Plain LRU: moka's default (TinyLFU) may refuse to admit a new entry
            // when full, which would drop a session the moment it is created.
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|id: &String, record: &Arc<Record>| {
                u32::try_from(id.len() + record.bytes).unwrap_or(u32::MAX)
            })
            .expire_after(SessionExpiry)
            .build();
        MemoryStore {
            cache,
            limits: self.limits,
            turns: Arc::new(Turns::new()),
        }
    }
}

/// The in-memory session store. Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Arc<Record>>,
    limits: Limits,
    turns: Arc<Turns>,
}

/// First-come, first-served locks that order the writers of one session
/// before they reach moka's `and_compute_with` (which lets a caller lose to
/// newcomers again and again). Striped by the id's hash, so unrelated
/// sessions rarely share one; a writer holds only its own session's.
struct Turns {
    locks: Box<[tokio::sync::Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Turns {
    const STRIPES: usize = 1024;

    fn new() -> Turns {
        Turns {
            locks: (0..Turns::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Waits for the turn of the writers of `id`.
    async fn take(&self, id: &SessionId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        let stripe = self.hasher.hash_one(id.as_str()) as usize % self.locks.len();
        self.locks[stripe].lock().await
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store with the default settings.
    pub fn new() -> MemoryStore {
        MemoryStore::builder().build()
    }

    /// A builder with the default settings.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_bytes: DEFAULT_MAX_BYTES,
            limits: Limits::default(),
        }
    }

    /// Number of sessions held, after running moka's pending maintenance
    /// (expirations and evictions).
    pub async fn len(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }

    /// Whether no session is held.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// Bytes held, as the weigher counts them, after pending maintenance.
    pub async fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// Removes every session.
    pub async fn clear(&self) {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks().await;
    }

    /// The live record of a session; reading it slides its expiry.
    async fn live(&self, id: &SessionId) -> Option<Arc<Record>> {
        self.cache
            .get(id.as_str())
            .await
            .filter(|record| record.alive(Instant::now()))
    }

    /// Atomically replaces the session's record with `update(current)`, where
    /// `current` is the live record or `None`; `update` returning `None` leaves
    /// the entry as it is. Returns whether a record was written.
    async fn update<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Record>) -> Option<Record> + Send,
    {
        let _turn = self.turns.take(id).await;
        let result = self
            .cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| {
                let now = Instant::now();
                let current = entry.map(|e| e.into_value()).filter(|r| r.alive(now));
                let op = match update(current.as_deref()) {
                    Some(record) => Op::Put(Arc::new(record)),
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
    }

    /// Removes the session through its per-key lock, so a write racing the
    /// removal cannot put it back.
    async fn remove(&self, id: &SessionId) {
        let _turn = self.turns.take(id).await;
        self.cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| std::future::ready(entry.map_or(Op::Nop, |_| Op::Remove)))
            .await;
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, id: &SessionId, key: &str, _: &ExpiryPolicy) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        Ok(self.live(id).await.and_then(|record| record.value(key)))
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        _: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let record = self.live(id).await;
        Ok(keys
            .iter()
            .map(|key| record.as_ref().and_then(|r| r.value(key)))
            .collect())
    }

    async fn get_all(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<HashMap<String, Vec<u8>>> {
        Ok(self
            .live(id)
            .await
            .map(|record| {
                record
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_vec()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let mut refused = None;
        let limits = self.limits;
        let written = self
            .update(id, |current| {
                let (before, after) = match (current, mode) {
                    (Some(record), _) => (record.size(), record.with_changes(changes, policy)),
                    (None, WriteMode::Create) => (
                        SessionSize::default(),
                        Record::new(Instant::now(), *policy).with_changes(changes, policy),
                    ),
                    (None, WriteMode::Existing) => return None,
                };
                // Checked inside the compute, so concurrent writers see each
                // other's keys.
                match limits.check_session(before, after.size()) {
                    Ok(()) => Some(after),
                    Err(error) => {
                        refused = Some(error);
                        None
                    }
                }
            })
            .await;
        if let Some(error) = refused {
            return Err(error);
        }
        Ok(if written {
            WriteOutcome::Applied
        } else {
            WriteOutcome::NoSession
        })
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        let changes: Vec<Change> = keys.iter().map(|k| (k.to_string(), None)).collect();
        Ok(self
            .update(id, |current| {
                current.map(|r| r.with_changes(&changes, policy))
            })
            .await)
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.remove(id).await;
        Ok(())
    }

    async fn extend(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<bool> {
        Ok(self.live(id).await.is_some())
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let mut ttl = None;
        self.update(id, |current| {
            let record = current?.with_lifetime(idle, policy);
            ttl = Some(record.ttl(Instant::now()));
            Some(record)
        })
        .await;
        Ok(ttl)
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        // The new id is stored inside the compute on the old one, before the old
        // one is removed: the move is one step, so a cancelled request can not
        // lose the session between the two.
        let _turn = self.turns.take(from).await;
        let result = self
            .cache
            .entry_by_ref(from.as_str())
            .and_compute_with(|entry| async move {
                let now = Instant::now();
                match entry.map(|e| e.into_value()).filter(|r| r.alive(now)) {
                    Some(record) => {
                        let moved = Arc::new(record.with_changes(&[], policy));
                        self.cache.insert(to.as_str().to_owned(), moved).await;
                        Op::Remove
                    }
                    None => Op::Nop,
                }
            })
            .await;
        Ok(matches!(result, CompResult::Removed(_)))
    }
}
