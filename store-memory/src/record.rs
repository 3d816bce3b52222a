//! A session's record, what it counts, and how long moka keeps it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use session_core::{ExpiryPolicy, Handle, SessionInfo, SessionSize};

/// Bytes counted per field and per session on top of their text, for the
/// allocations around them.
const FIELD_OVERHEAD: usize = 48;
const RECORD_OVERHEAD: usize = 128;

/// Now, in ms since the Unix epoch, as [`SessionInfo`] reports times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every version of one session's record shares: counted in place, so
/// that a read racing a write (which builds a new record) loses no count.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
    /// Last activity, ms since the Unix epoch.
    last_ms: AtomicU64,
}

impl Stats {
    pub(crate) fn touch(&self) {
        self.last_ms.fetch_max(now_ms(), Ordering::Relaxed);
    }

    /// Counts a write (or a read) and touches.
    pub(crate) fn count(&self, writes: bool) {
        let counter = if writes { &self.writes } else { &self.reads };
        counter.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }
}

/// One change of a write: a key and its new value, or `None` to delete it;
/// borrowed, so that a write copies each byte once, into the record.
pub(crate) type FieldChange<'a> = (&'a str, Option<&'a [u8]>);

/// The bytes the cache's weigher counts for a session of `size`.
fn weight(size: SessionSize) -> usize {
    RECORD_OVERHEAD + size.bytes + size.keys * FIELD_OVERHEAD
}

/// A session's keys and values, and their size as the limits count it.
#[derive(Clone, Default)]
pub(crate) struct Fields {
    /// Shared keys and values: a copy of the record copies the map, not its
    /// contents.
    pub(crate) map: HashMap<Arc<str>, Arc<[u8]>>,
    /// What `map` holds, kept as it changes.
    pub(crate) size: SessionSize,
}

impl std::fmt::Debug for Fields {
    /// Sizes only: never keys or values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("keys", &self.size.keys)
            .field("bytes", &self.size.bytes)
            .finish()
    }
}

impl Fields {
    /// Applies `changes`.
    fn apply(&mut self, changes: &[FieldChange<'_>]) {
        for &(key, value) in changes {
            let old = match value {
                Some(value) => {
                    self.size.add(key, value.len());
                    // The key's own allocation is kept when it is there.
                    match self.map.get_mut(key) {
                        Some(slot) => Some(std::mem::replace(slot, Arc::from(value))),
                        None => self.map.insert(Arc::from(key), Arc::from(value)),
                    }
                }
                None => self.map.remove(key),
            };
            if let Some(old) = old {
                self.size.remove(key, old.len());
            }
        }
    }

    /// The bytes the cache's weigher counts for a session holding these.
    fn weight(&self) -> usize {
        weight(self.size)
    }
}

/// One session. Its creation, policy, lifetime and owner never change: a
/// write of those builds a new record. Its fields change in place when a
/// write leaves it no heavier than the cache weighed it (see
/// [`change_in_place`](Self::change_in_place)), else in a new record.
#[derive(Debug)]
pub(crate) struct Record {
    created: Instant,
    /// `created` on the wall clock, for [`SessionInfo`].
    created_ms: u64,
    policy: ExpiryPolicy,
    /// The session's own idle timeout, used in place of `policy.idle`.
    idle: Option<Duration>,
    pub(crate) owner: Option<Arc<str>>,
    pub(crate) stats: Arc<Stats>,
    /// Locked only to copy in or out: never across an await.
    fields: Mutex<Fields>,
    /// What the cache's weigher counts, fixed when the record is built.
    pub(crate) bytes: usize,
}

impl Record {
    pub(crate) fn new(created: Instant, policy: ExpiryPolicy) -> Record {
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
            fields: Mutex::default(),
            bytes: RECORD_OVERHEAD,
        }
    }

    /// The fields, locked. A panic elsewhere cannot leave them half-changed
    /// (`apply` changes the map and the size key by key), so a poisoned lock
    /// is taken over.
    pub(crate) fn fields(&self) -> MutexGuard<'_, Fields> {
        self.fields
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    pub(crate) fn info(&self, id: &str, now: Instant, now_ms: u64) -> SessionInfo {
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

    pub(crate) fn last_ms(&self) -> u64 {
        self.stats.last_ms.load(Ordering::Relaxed)
    }

    /// Time left to live if touched at `now`, zero once past the absolute lifetime.
    pub(crate) fn ttl(&self, now: Instant) -> Duration {
        self.own_policy()
            .remaining(now.saturating_duration_since(self.created))
            .unwrap_or(Duration::ZERO)
    }

    /// Whether a read at `now`, with `left` to live before it, slides the
    /// session: when that moves its deadline by the touch granularity or
    /// more. Between refreshes, moka's timer and the reported deadline stay
    /// put, and the read changes nothing but its count.
    pub(crate) fn refresh_due(&self, now: Instant, left: Duration) -> bool {
        self.ttl(now).saturating_sub(left) >= self.own_policy().touch_granularity()
    }

    /// Time left to live as of `now`, from the last activity (what a read
    /// that is not due for a refresh leaves).
    pub(crate) fn left_now(&self, now: Instant) -> Duration {
        self.left(now, now_ms())
    }

    pub(crate) fn alive(&self, now: Instant) -> bool {
        !self.ttl(now).is_zero()
    }

    /// A copy with `changes` applied and `policy` recorded.
    pub(crate) fn with_changes(
        &self,
        changes: &[FieldChange<'_>],
        policy: &ExpiryPolicy,
    ) -> Record {
        let mut fields = self.fields().clone();
        fields.apply(changes);
        Record {
            created: self.created,
            created_ms: self.created_ms,
            policy: *policy,
            idle: self.idle,
            owner: self.owner.clone(),
            stats: self.stats.clone(),
            bytes: fields.weight(),
            fields: Mutex::new(fields),
        }
    }

    /// Applies `change` to this record itself, if it leaves the record no
    /// heavier than the cache weighed it (so the cache's bound holds) and
    /// `policy` is the one it records, and `check` accepts the sizes before
    /// and after. `None` if it needs a new record; `check`'s refusal changes
    /// nothing. The caller holds the session's turn, so that no copy of the
    /// record is being made meanwhile.
    pub(crate) fn change_in_place<E>(
        &self,
        (key, value): FieldChange<'_>,
        policy: &ExpiryPolicy,
        check: impl FnOnce(SessionSize, SessionSize) -> Result<(), E>,
    ) -> Option<Result<(), E>> {
        if self.policy != *policy {
            return None;
        }
        let mut fields = self.fields();
        let before = fields.size;
        let mut after = before;
        if let Some(old) = fields.map.get(key) {
            after.remove(key, old.len());
        }
        if let Some(value) = value {
            after.add(key, value.len());
        }
        if weight(after) > self.bytes {
            return None;
        }
        if let Err(error) = check(before, after) {
            return Some(Err(error));
        }
        fields.apply(&[(key, value)]);
        Some(Ok(()))
    }

    /// A copy bound to `owner`.
    pub(crate) fn with_owner(&self, owner: &str, policy: &ExpiryPolicy) -> Record {
        Record {
            owner: Some(Arc::from(owner)),
            ..self.with_changes(&[], policy)
        }
    }

    /// A copy with its own idle timeout.
    pub(crate) fn with_lifetime(&self, idle: Duration, policy: &ExpiryPolicy) -> Record {
        Record {
            idle: Some(idle),
            ..self.with_changes(&[], policy)
        }
    }

    /// What the session holds, as [`Limits::check_session`] counts it.
    pub(crate) fn size(&self) -> SessionSize {
        self.fields().size
    }

    pub(crate) fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.field(key).map(|v| v.to_vec())
    }

    /// The value of `key`, shared.
    pub(crate) fn field(&self, key: &str) -> Option<Arc<[u8]>> {
        self.fields().map.get(key).cloned()
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Tells moka each session's time-to-live after every access.
pub(crate) struct SessionExpiry;

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
        left: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        // No side effect here: moka also calls this when a listing peeks.
        // Never earlier than the last activity allows: a write in place
        // (which moka does not see) touched the record, then read it, so
        // that this slides its deadline.
        match left {
            Some(left) if !record.refresh_due(now, left) => {
                Some(left.max(record.left(now, now_ms())))
            }
            _ => Some(record.ttl(now)),
        }
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
