//! [`DeferredRefreshes`]: refreshes that an embedded store's reads found
//! due and left for a later pass.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use foldhash::fast::RandomState;
use smallvec::SmallVec;

use crate::ExpiryPolicy;

/// A refresh a read left for later: when it read, and under what policy.
/// The deadline it gives is worked out when it is applied, from the
/// session's record as it stands then (see [`DeferredRefresh::deadline_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferredRefresh {
    /// When it read, ms since the Unix epoch: the session's last activity.
    pub at_ms: u64,
    /// The policy the read was made under.
    pub policy: ExpiryPolicy,
}

impl DeferredRefresh {
    /// The later of two refreshes of one session.
    fn merge(self, other: DeferredRefresh) -> DeferredRefresh {
        if other.at_ms >= self.at_ms {
            other
        } else {
            self
        }
    }

    /// The deadline this refresh gives the session at `now_ms`, as the read
    /// would have given it by writing: `own` is the refresh's
    /// [`policy`](Self::policy) with the session's own settings applied
    /// (its idle timeout, say), and `created_ms`, `last_ms` and
    /// `deadline_ms` are its record's creation, last activity and deadline
    /// as they stand now, which an operation may have changed since the
    /// read (a shorter lifetime stays short).
    ///
    /// `None` if it gives none: the session had expired by the read, an
    /// operation slid it at or after the read, the deadline would not move
    /// later, or it is past by `now_ms` too.
    ///
    /// A session past its stored deadline is alive if this gives it one:
    /// the read found it alive, and would have slid it by writing. A store
    /// whose pass runs late (a disk that stalls, say) must not take it for
    /// expired, in the pass, the sweeper or any operation.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::{DeferredRefresh, ExpiryPolicy};
    /// let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    /// let refresh = DeferredRefresh { at_ms: 10_000, policy };
    /// // Created at 0, last active at 1,000, due at 61,000: slid to 70,000,
    /// // also once past 61,000 (the pass ran late).
    /// assert_eq!(refresh.deadline_for(&policy, 0, 1_000, 61_000, 20_000), Some(70_000));
    /// assert_eq!(refresh.deadline_for(&policy, 0, 1_000, 61_000, 65_000), Some(70_000));
    /// assert_eq!(refresh.deadline_for(&policy, 0, 1_000, 61_000, 70_000), None);
    /// // A write at 12,000 slid it further since: nothing to do.
    /// assert_eq!(refresh.deadline_for(&policy, 0, 12_000, 72_000, 20_000), None);
    /// ```
    pub fn deadline_for(
        &self,
        own: &ExpiryPolicy,
        created_ms: u64,
        last_ms: u64,
        deadline_ms: u64,
        now_ms: u64,
    ) -> Option<u64> {
        if self.at_ms <= last_ms || self.at_ms >= deadline_ms {
            return None;
        }
        let deadline = own.deadline_ms(created_ms, self.at_ms)?;
        (deadline > deadline_ms && deadline > now_ms).then_some(deadline)
    }
}

/// Refreshes that reads of an embedded store found due and left for the
/// store's next pass, by session id.
///
/// A read whose refresh is due under the touch granularity (see
/// [`ExpiryPolicy::touch_granularity`]) need not wait for a write while
/// the stored deadline is far off ([`may_defer`](Self::may_defer)): it
/// answers at once and [`defer`](Self::defer)s the refresh here. The
/// store's pass, every [`PASS_EVERY`](Self::PASS_EVERY), applies every
/// refresh [`pending`](Self::pending), in order of id and in large
/// transactions, where many refreshes share the pages they write, then
/// [`settle`](Self::settle)s each once that commits. Reports of deadlines
/// apply the pending ones first, or add them as [`get`](Self::get) gives
/// them.
///
/// A crash loses the refreshes not yet applied: their sessions keep the
/// deadline of their previous refresh, so they may expire sooner than an
/// idle timeout after the lost read, never later, and no data is lost.
///
/// ```
/// use std::time::Duration;
/// use session_core::{DeferredRefresh, DeferredRefreshes, ExpiryPolicy};
/// let policy = ExpiryPolicy::idle(Duration::from_secs(60));
/// let refreshes = DeferredRefreshes::new();
/// refreshes.defer("b", DeferredRefresh { at_ms: 2_000, policy });
/// refreshes.defer("a", DeferredRefresh { at_ms: 1_000, policy });
/// let pending = refreshes.pending();
/// assert_eq!(pending[0].0, "a");
/// // The pass applied both, and committed:
/// for (id, applied) in &pending {
///     refreshes.settle(id, *applied);
/// }
/// assert!(refreshes.is_empty());
/// ```
pub struct DeferredRefreshes {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

/// A session id kept inside its entry, as in [`ReadTally`](crate::ReadTally):
/// a million ids each in a heap allocation of its own slow every other
/// allocation of the process.
type Key = SmallVec<[u8; 64]>;

type Shard = HashMap<Key, DeferredRefresh, RandomState>;

impl std::fmt::Debug for DeferredRefreshes {
    /// How many sessions have a refresh left; never their ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions: usize = (0..self.shards.len()).map(|i| self.lock(i).len()).sum();
        f.debug_struct("DeferredRefreshes")
            .field("sessions", &sessions)
            .finish()
    }
}

impl Default for DeferredRefreshes {
    fn default() -> DeferredRefreshes {
        DeferredRefreshes::new()
    }
}

impl DeferredRefreshes {
    /// Shards, so that readers of different sessions rarely wait for each other.
    const SHARDS: usize = 32;

    /// How often a store's pass applies the refreshes left since the last.
    pub const PASS_EVERY: Duration = Duration::from_millis(500);

    /// How far off, in ms, a session's stored deadline must be for a read
    /// to leave its refresh for later: ten passes, so that a pass runs long
    /// before the session could be taken for expired.
    pub const MARGIN_MS: u64 = 5_000;

    /// Whether a read at `now_ms` whose refresh is due may leave it for
    /// later: while the session's stored deadline is more than
    /// [`MARGIN_MS`](Self::MARGIN_MS) off. Nearer, the read slides the
    /// session itself.
    ///
    /// ```
    /// use session_core::DeferredRefreshes;
    /// assert!(DeferredRefreshes::may_defer(60_000, 1_000));
    /// assert!(!DeferredRefreshes::may_defer(60_000, 55_000));
    /// ```
    pub fn may_defer(stored_deadline_ms: u64, now_ms: u64) -> bool {
        stored_deadline_ms > now_ms.saturating_add(DeferredRefreshes::MARGIN_MS)
    }

    /// None left.
    pub fn new() -> DeferredRefreshes {
        DeferredRefreshes {
            shards: (0..DeferredRefreshes::SHARDS)
                .map(|_| Mutex::default())
                .collect(),
            hasher: RandomState::default(),
        }
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic cannot leave an entry half-written: recover the map.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        self.lock(self.hasher.hash_one(id) as usize % self.shards.len())
    }

    /// Leaves `refresh` of session `id` for the next pass; with one already
    /// left, the later of the two.
    pub fn defer(&self, id: &str, refresh: DeferredRefresh) {
        let mut shard = self.shard(id);
        match shard.get_mut(id.as_bytes()) {
            Some(left) => *left = left.merge(refresh),
            None => {
                shard.insert(Key::from_slice(id.as_bytes()), refresh);
            }
        }
    }

    /// The refresh left for session `id`, if any.
    pub fn get(&self, id: &str) -> Option<DeferredRefresh> {
        self.shard(id).get(id.as_bytes()).copied()
    }

    /// The refresh left for session `id` and the deadline `deadline` (the
    /// store's [`DeferredRefresh::deadline_for`] of the session's record)
    /// makes of it, if it makes one.
    pub fn left_for(
        &self,
        id: &str,
        deadline: impl FnOnce(&DeferredRefresh) -> Option<u64>,
    ) -> Option<(DeferredRefresh, u64)> {
        let left = self.get(id)?;
        deadline(&left).map(|deadline| (left, deadline))
    }

    /// Whether no refresh is left.
    pub fn is_empty(&self) -> bool {
        (0..self.shards.len()).all(|i| self.lock(i).is_empty())
    }

    /// Every refresh left, in order of session id (the order of a store
    /// keyed by id), still left until [`settle`](Self::settle)d.
    pub fn pending(&self) -> Vec<(String, DeferredRefresh)> {
        let mut all = Vec::new();
        for shard in 0..self.shards.len() {
            all.extend(self.lock(shard).iter().map(|(id, refresh)| {
                // Every key is made from a `&str`.
                (String::from_utf8_lossy(id).into_owned(), *refresh)
            }));
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Takes out `applied`, which a committed transaction handled for
    /// session `id`, unless a later read left a later refresh meanwhile.
    pub fn settle(&self, id: &str, applied: DeferredRefresh) {
        let mut shard = self.shard(id);
        if shard
            .get(id.as_bytes())
            .is_some_and(|left| *left == applied)
        {
            shard.remove(id.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn refresh(at_ms: u64) -> DeferredRefresh {
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        DeferredRefresh { at_ms, policy }
    }

    #[test]
    fn a_session_keeps_its_latest_refresh() {
        let refreshes = DeferredRefreshes::new();
        assert!(refreshes.is_empty());
        refreshes.defer("a", refresh(1));
        refreshes.defer("a", refresh(3));
        refreshes.defer("a", refresh(2));
        assert_eq!(refreshes.get("a"), Some(refresh(3)));
        assert_eq!(refreshes.get("b"), None);
        assert!(!refreshes.is_empty());
    }

    #[test]
    fn pending_is_in_id_order_and_stays_until_settled() {
        let refreshes = DeferredRefreshes::new();
        for id in ["c", "a", "b"] {
            refreshes.defer(id, refresh(1));
        }
        let pending = refreshes.pending();
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(refreshes.pending(), pending);
        for (id, applied) in &pending {
            refreshes.settle(id, *applied);
        }
        assert!(refreshes.is_empty());
    }

    #[test]
    fn a_refresh_left_while_one_is_applied_stays() {
        let refreshes = DeferredRefreshes::new();
        refreshes.defer("a", refresh(1));
        let (_, applied) = refreshes.pending().remove(0);
        refreshes.defer("a", refresh(2));
        refreshes.settle("a", applied);
        assert_eq!(refreshes.get("a"), Some(refresh(2)));
    }

    #[test]
    fn a_refresh_slides_only_later_and_only_after_the_last_activity() {
        let r = refresh(10_000);
        let policy = r.policy;
        assert_eq!(
            r.deadline_for(&policy, 0, 1_000, 61_000, 10_000),
            Some(70_000)
        );
        // Slid at or after the read.
        assert_eq!(r.deadline_for(&policy, 0, 10_000, 70_000, 10_000), None);
        // A deadline already as late (a longer lifetime set since).
        assert_eq!(r.deadline_for(&policy, 0, 1_000, 70_000, 10_000), None);
        // An absolute lifetime caps it.
        let capped = policy.with_absolute(Duration::from_secs(65));
        assert_eq!(
            r.deadline_for(&capped, 0, 1_000, 61_000, 10_000),
            Some(65_000)
        );
        // Past the stored deadline: alive until its own, not after.
        assert_eq!(
            r.deadline_for(&policy, 0, 1_000, 61_000, 69_999),
            Some(70_000)
        );
        assert_eq!(r.deadline_for(&policy, 0, 1_000, 61_000, 70_000), None);
        // Expired by the read: nothing to revive.
        assert_eq!(r.deadline_for(&policy, 0, 1_000, 10_000, 10_000), None);
    }

    #[test]
    fn debug_shows_no_session_id() {
        let refreshes = DeferredRefreshes::new();
        refreshes.defer("secret-id", refresh(1));
        let shown = format!("{refreshes:?}");
        assert!(!shown.contains("secret-id"), "{shown}");
        assert!(shown.contains('1'), "{shown}");
    }
}
