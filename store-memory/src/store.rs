//! [`MemoryStore`]: the store and its [`Store`] implementation.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::Expiry;
use session_core::{beyond_cap, check_owner};
use session_core::{
    ActivePage, Change, ExpiryPolicy, Handle, Limits, Result, SessionId, SessionInfo, SessionSize,
    Store, Swap, WriteMode, WriteOutcome,
};
use session_core::{Edit, KeyChange};

/// Default bound on the bytes held: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes counted per field and per session on top of their text, for the
/// allocations around them.
const FIELD_OVERHEAD: usize = 48;
const RECORD_OVERHEAD: usize = 128;

/// Now, in ms since the Unix epoch, as [`SessionInfo`] reports times.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every version of one session's record shares: counted in place, so
/// that a read racing a write (which builds a new record) loses no count.
#[derive(Debug, Default)]
struct Stats {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Last activity, ms since the Unix epoch.
    last_ms: AtomicU64,
}

impl Stats {
    fn touch(&self) {
        self.last_ms.fetch_max(now_ms(), Ordering::Relaxed);
    }

    /// Counts a write (or a read) and touches.
    fn count(&self, writes: bool) {
        let counter = if writes { &self.writes } else { &self.reads };
        counter.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }
}

/// One session: immutable once built; writes build a new one.
#[derive(Debug)]
struct Record {
    created: Instant,
    /// `created` on the wall clock, for [`SessionInfo`].
    created_ms: u64,
    policy: ExpiryPolicy,
    /// The session's own idle timeout, used in place of `policy.idle`.
    idle: Option<Duration>,
    owner: Option<Arc<str>>,
    stats: Arc<Stats>,
    fields: HashMap<String, Arc<[u8]>>,
    bytes: usize,
}

impl Record {
    fn new(created: Instant, policy: ExpiryPolicy) -> Record {
        let created_ms = now_ms();
        let stats = Stats::default();
        stats.last_ms.store(created_ms, Ordering::Relaxed);
        Record {
            created,
            created_ms,
            policy,
            idle: None,
            owner: None,
            stats: Arc::new(stats),
            fields: HashMap::new(),
            bytes: RECORD_OVERHEAD,
        }
    }

    /// The policy with the session's own idle timeout, if it has one.
    fn own_policy(&self) -> ExpiryPolicy {
        self.idle
            .map_or(self.policy, |idle| self.policy.with_idle(idle))
    }

    /// What a listing shows, as of `now`.
    /// Time left to live as of `now`, counted from the last activity (not
    /// from `now`, as [`ttl`](Self::ttl) is).
    fn left(&self, now: Instant, now_ms: u64) -> Duration {
        let idle = Duration::from_millis(now_ms.saturating_sub(self.last_ms()));
        let policy = self.own_policy();
        let mut left = policy.idle.saturating_sub(idle);
        if let Some(absolute) = policy.absolute {
            left = left.min(absolute.saturating_sub(now.saturating_duration_since(self.created)));
        }
        left
    }

    fn info(&self, id: &str, now: Instant, now_ms: u64) -> SessionInfo {
        let last_ms = self.last_ms();
        let idle = Duration::from_millis(now_ms.saturating_sub(last_ms));
        let ttl = self.left(now, now_ms);
        SessionInfo {
            handle: Handle::of_stored(id),
            owner: self.owner.as_deref().map(str::to_owned),
            created_ms: self.created_ms,
            last_active_ms: last_ms,
            reads: self.stats.reads.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
            idle,
            ttl,
        }
    }

    fn last_ms(&self) -> u64 {
        self.stats.last_ms.load(Ordering::Relaxed)
    }

    /// Time left to live if touched at `now`, zero once past the absolute lifetime.
    fn ttl(&self, now: Instant) -> Duration {
        self.own_policy()
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
            created_ms: self.created_ms,
            policy: *policy,
            idle: self.idle,
            owner: self.owner.clone(),
            stats: self.stats.clone(),
            fields,
            bytes,
        }
    }

    /// A copy bound to `owner`.
    fn with_owner(&self, owner: &str, policy: &ExpiryPolicy) -> Record {
        Record {
            owner: Some(Arc::from(owner)),
            ..self.with_changes(&[], policy)
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

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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
        // From the last activity: every write touches the record before it
        // is put, so this slides; a peek puts the record back untouched, so
        // this restores the deadline moka's read moved.
        Some(record.left(now, now_ms()))
    }
}

/// Configures a [`MemoryStore`].
///
/// | setting | default |
/// |---|---|
/// | [`max_bytes`](Self::max_bytes) | [`DEFAULT_MAX_BYTES`] (64 MiB) |
/// | [`limits`](Self::limits) | [`Limits::default`] (keys 256 B, values 4 MiB, sessions 1,024 keys and 16 MiB) |
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until it is built"]
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
        let owners = Arc::new(Owners::default());
        let listener = owners.clone();
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
            // A session that leaves the cache (expired, evicted, destroyed)
            // leaves its owner's index; a new version of it does not.
            .eviction_listener(move |id: Arc<String>, record: Arc<Record>, cause| {
                if cause != RemovalCause::Replaced {
                    if let Some(owner) = &record.owner {
                        listener.remove(owner, &id);
                    }
                }
            })
            .build();
        MemoryStore {
            cache,
            limits: self.limits,
            turns: Arc::new(Turns::new()),
            owners,
        }
    }
}

/// The in-memory session store. Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Arc<Record>>,
    limits: Limits,
    turns: Arc<Turns>,
    owners: Arc<Owners>,
}

/// Each owner's session ids. It may name a session that has just ended,
/// never miss a live one: a bind adds the id before it returns, and every
/// reader checks the session itself.
#[derive(Default)]
struct Owners(Mutex<HashMap<Arc<str>, HashSet<String>>>);

impl Owners {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashSet<String>>> {
        // Each change is one insert or remove: a panic elsewhere cannot
        // leave the map half-changed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, owner: &Arc<str>, id: &str) {
        self.lock()
            .entry(owner.clone())
            .or_default()
            .insert(id.to_owned());
    }

    fn remove(&self, owner: &str, id: &str) {
        let mut owners = self.lock();
        if let Some(ids) = owners.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                owners.remove(owner);
            }
        }
    }

    fn ids(&self, owner: &str) -> Vec<String> {
        self.lock()
            .get(owner)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
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

    /// Bytes held, as the weigher counts them, after running moka's pending
    /// maintenance (expirations, evictions, and the recorded reads that
    /// order its LRU).
    ///
    /// Counting and clearing the sessions is the [`Store`] trait's, as for
    /// every store: [`Store::len`], [`Store::is_empty`] and
    /// [`Store::destroy_all`].
    pub async fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// The live record of a session; reading it slides its expiry and its
    /// last activity, and counts a read if `read`.
    async fn live(&self, id: &SessionId, read: bool) -> Option<Arc<Record>> {
        let record = self
            .cache
            .get(id.as_str())
            .await
            .filter(|record| record.alive(Instant::now()))?;
        record.stats.touch();
        if read {
            record.stats.reads.fetch_add(1, Ordering::Relaxed);
        }
        Some(record)
    }

    /// The live record of a session, without sliding its expiry: moka
    /// counts every keyed access as a read (and slides), so the record is
    /// put back untouched, and its deadline computed again from its last
    /// activity.
    async fn peek(&self, id: &str) -> Option<Arc<Record>> {
        let result = self
            .cache
            .entry_by_ref(id)
            .and_compute_with(|entry| {
                let now = Instant::now();
                let op = match entry.map(|e| e.into_value()).filter(|r| r.alive(now)) {
                    Some(record) => Op::Put(record),
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::ReplacedWith(entry) => Some(entry.into_value()),
            _ => None,
        }
    }

    /// Removes the session `id` if it is alive and `owner`'s (any owner's
    /// for `None`). Returns whether it did.
    async fn remove_owned(&self, id: &str, owner: Option<&str>) -> bool {
        let Some(id) = SessionId::from_stored(id) else {
            return false;
        };
        let _turn = self.turns.take(&id).await;
        let result = self
            .cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| {
                let now = Instant::now();
                let remove = entry.is_some_and(|e| {
                    let record = e.value();
                    record.alive(now) && owner.is_none_or(|o| record.owner.as_deref() == Some(o))
                });
                std::future::ready(if remove { Op::Remove } else { Op::Nop })
            })
            .await;
        matches!(result, CompResult::Removed(_))
    }

    /// The live sessions of `owner`, with their ids; prunes dead entries.
    async fn owned(&self, owner: &str) -> Vec<(String, Arc<Record>)> {
        let mut live = Vec::new();
        for id in self.owners.ids(owner) {
            match self.peek(&id).await {
                Some(record) if record.owner.as_deref() == Some(owner) => live.push((id, record)),
                // Not yet bound (a bind in flight added the entry first), or
                // bound elsewhere since (that bind drops the entry): kept.
                Some(_) => {}
                None => self.owners.remove(owner, &id),
            }
        }
        live
    }

    /// Every live session active since `since_ms`, ordered by handle.
    fn active(&self, since_ms: u64) -> Vec<SessionInfo> {
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut active: Vec<SessionInfo> = self
            .cache
            .iter()
            .filter(|(_, record)| record.alive(now) && record.last_ms() >= since_ms)
            .map(|(id, record)| record.info(&id, now, now_ms))
            .collect();
        active.sort_by(|a, b| a.handle.cmp(&b.handle));
        active
    }

    /// Atomically replaces the session's record with `update(current)`, where
    /// `current` is the live record or `None`; `update` returning `None` leaves
    /// the entry as it is. Returns whether a record was written.
    async fn update<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Record>) -> Option<Record> + Send,
    {
        self.compute(id, |current| update(current.map(|r| &**r)).map(Arc::new))
            .await
    }

    /// [`update`](Self::update), where returning the current record itself
    /// puts it back as it is: a read inside a write's lock, whose expiry
    /// then slides from the last activity, as after a write.
    async fn compute<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Arc<Record>>) -> Option<Arc<Record>> + Send,
    {
        let _turn = self.turns.take(id).await;
        let result = self
            .cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| {
                let now = Instant::now();
                let current = entry.map(|e| e.into_value()).filter(|r| r.alive(now));
                let op = match update(current.as_ref()) {
                    Some(record) => Op::Put(record),
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

    /// An atomic operation on one key, under the session's lock: `decide`
    /// sees the key's value, and its [`Edit`] is applied, with the limits
    /// checked as in `set_many`. An absent session is `None` with
    /// [`WriteMode::Existing`]; with [`WriteMode::Create`] it counts as
    /// empty, and is created only if the edit puts a value. An error of
    /// `decide` or a refusal of the limits changes nothing.
    async fn edit<T: Send>(
        &self,
        id: &SessionId,
        key: &str,
        mode: WriteMode,
        policy: &ExpiryPolicy,
        decide: impl FnOnce(Option<&[u8]>) -> Result<Edit<T>> + Send,
    ) -> Result<Option<T>> {
        self.limits.check_key(key)?;
        let limits = self.limits;
        let mut outcome = Ok(None);
        self.compute(id, |current| {
            if current.is_none() && mode == WriteMode::Existing {
                return None;
            }
            let value = current.and_then(|record| record.fields.get(key));
            let edit = match decide(value.map(|v| &v[..])) {
                Ok(edit) => edit,
                Err(error) => {
                    outcome = Err(error);
                    return None;
                }
            };
            if let KeyChange::Put(value) = &edit.change {
                if let Err(error) = limits.check_value(value) {
                    outcome = Err(error);
                    return None;
                }
            }
            let (before, record) = match (current, edit.change) {
                // A read, or nothing to write: the record goes back as it
                // is, touched, so that its expiry slides.
                (Some(record), KeyChange::Keep) => {
                    record.stats.count(edit.writes);
                    outcome = Ok(Some(edit.answer));
                    return Some(record.clone());
                }
                (Some(record), KeyChange::Delete) => (
                    record.size(),
                    record.with_changes(&[(key.to_owned(), None)], policy),
                ),
                (Some(record), KeyChange::Put(value)) => (
                    record.size(),
                    record.with_changes(&[(key.to_owned(), Some(value))], policy),
                ),
                (None, KeyChange::Put(value)) => (
                    SessionSize::default(),
                    Record::new(Instant::now(), *policy)
                        .with_changes(&[(key.to_owned(), Some(value))], policy),
                ),
                // Nothing to write: nothing to create.
                (None, _) => {
                    outcome = Ok(Some(edit.answer));
                    return None;
                }
            };
            if let Err(error) = limits.check_session(before, record.size()) {
                outcome = Err(error);
                return None;
            }
            record.stats.count(edit.writes);
            outcome = Ok(Some(edit.answer));
            Some(Arc::new(record))
        })
        .await;
        outcome
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
        Ok(self
            .live(id, true)
            .await
            .and_then(|record| record.value(key)))
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        _: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let record = self.live(id, true).await;
        Ok(keys
            .iter()
            .map(|key| record.as_ref().and_then(|r| r.value(key)))
            .collect())
    }

    async fn get_all(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<HashMap<String, Vec<u8>>> {
        Ok(self
            .live(id, true)
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
                    Ok(()) => {
                        after.stats.writes.fetch_add(1, Ordering::Relaxed);
                        after.stats.touch();
                        Some(after)
                    }
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
                let record = current?.with_changes(&changes, policy);
                record.stats.writes.fetch_add(1, Ordering::Relaxed);
                record.stats.touch();
                Some(record)
            })
            .await)
    }

    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        let taken = self
            .edit(id, key, WriteMode::Existing, policy, |current| {
                Ok(Edit::take(current))
            })
            .await?;
        Ok(taken.flatten())
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Swap> {
        self.limits.check_key(key)?;
        if let Some(new) = new {
            self.limits.check_value(new)?;
        }
        let swap = self
            .edit(id, key, mode, policy, |current| {
                Ok(Edit::swap(current, expected, new))
            })
            .await?;
        Ok(swap.unwrap_or(Swap::NoSession))
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Option<i64>> {
        self.edit(id, key, mode, policy, |current| {
            Edit::increment(current, delta)
        })
        .await
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.remove(id).await;
        Ok(())
    }

    async fn extend(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<bool> {
        Ok(self.live(id, false).await.is_some())
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
            record.stats.touch();
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
                        moved.stats.touch();
                        if let Some(owner) = &moved.owner {
                            self.owners.add(owner, to.as_str());
                        }
                        self.cache.insert(to.as_str().to_owned(), moved).await;
                        Op::Remove
                    }
                    None => Op::Nop,
                }
            })
            .await;
        Ok(matches!(result, CompResult::Removed(_)))
    }

    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        check_owner(owner)?;
        let owner: Arc<str> = Arc::from(owner);
        let mut before = None;
        // Indexed first: a listing may see the id before the bind lands,
        // and checks the record; it never misses a bound session.
        self.owners.add(&owner, id.as_str());
        let bound = self
            .update(id, |current| {
                let current = current?;
                before = current.owner.clone();
                let record = current.with_owner(&owner, policy);
                record.stats.touch();
                Some(record)
            })
            .await;
        if !bound {
            self.owners.remove(&owner, id.as_str());
            return Ok(false);
        }
        if let Some(before) = before.filter(|before| *before != owner) {
            self.owners.remove(&before, id.as_str());
        }
        if let Some(cap) = cap {
            let sessions = self.owned(&owner).await;
            let last: Vec<(&str, u64)> = sessions
                .iter()
                .map(|(id, record)| (id.as_str(), record.last_ms()))
                .collect();
            for evicted in beyond_cap(&last, cap, id.as_str()) {
                self.remove_owned(evicted, Some(&owner)).await;
            }
        }
        Ok(true)
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        Ok(self
            .peek(id.as_str())
            .await
            .map(|record| record.info(id.as_str(), Instant::now(), now_ms())))
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut sessions: Vec<SessionInfo> = self
            .owned(owner)
            .await
            .iter()
            .map(|(id, record)| record.info(id, now, now_ms))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_active_ms));
        Ok(sessions)
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        let mut destroyed = 0;
        for id in self.owners.ids(owner) {
            if keep.is_some_and(|keep| keep.as_str() == id) {
                continue;
            }
            if self.remove_owned(&id, Some(owner)).await {
                destroyed += 1;
                self.owners.remove(owner, &id);
            } else if self.peek(&id).await.is_none() {
                self.owners.remove(owner, &id);
            }
        }
        Ok(destroyed)
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let Some(id) = self
            .owners
            .ids(owner)
            .into_iter()
            .find(|id| Handle::of_stored(id) == *handle)
        else {
            return Ok(false);
        };
        Ok(self.remove_owned(&id, Some(owner)).await)
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        let since = now_ms().saturating_sub(millis(within));
        let now = Instant::now();
        Ok(self
            .cache
            .iter()
            .filter(|(_, record)| record.alive(now) && record.last_ms() >= since)
            .count() as u64)
    }

    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        // Ordered by handle, which never changes, so a cursor (the last
        // handle shown) stays valid whatever the sessions do meanwhile.
        let active = self.active(now_ms().saturating_sub(millis(within)));
        let start = cursor.map_or(0, |after| {
            active.partition_point(|s| s.handle.as_str() <= after)
        });
        let sessions: Vec<SessionInfo> =
            active.into_iter().skip(start).take(limit.max(1)).collect();
        let next = (sessions.len() == limit.max(1))
            .then(|| sessions.last().map(|s| s.handle.to_string()))
            .flatten();
        Ok(ActivePage { sessions, next })
    }

    async fn destroy_all(&self) -> Result<u64> {
        // One by one, through each session's turn, so that no write racing
        // this brings a session back.
        let ids: Vec<Arc<String>> = self.cache.iter().map(|(id, _)| id).collect();
        let mut destroyed = 0;
        for id in ids {
            if self.remove_owned(&id, None).await {
                destroyed += 1;
            }
        }
        self.cache.run_pending_tasks().await;
        Ok(destroyed)
    }
}
