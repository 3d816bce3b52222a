//! [`Refreshes`]: refreshes that reads found due and left to the writer.
//!
//! A read whose refresh is due (it would slide the deadline by the touch
//! granularity or more) answers at once and leaves the refresh here; the
//! writer slides the rows of every refresh left since its last pass in one
//! transaction, every [`FOLD_EVERY`], and a synced commit follows within the
//! durability's interval, as it follows any refresh.
//!
//! Why: with many more sessions than a commit's writes share pages, a
//! refresh in a small commit copies a leaf of `records` and the branches
//! above it for one row. Half a second of refreshes, applied in key order
//! in one transaction, share the branches and some of the leaves, and the
//! read no longer waits for a commit: at a million sessions, `server-axum`'s
//! CPU per `get:100` request, most of them refreshes, fell by about a fifth.
//!
//! What it costs: a crash loses the refreshes not yet applied, as it loses
//! those applied but not yet synced: their sessions keep the deadline of
//! their previous refresh, so they may expire sooner than an idle timeout
//! after the lost read, never later, and no data is lost. A read defers its
//! refresh only while the stored deadline is more than [`DEFER_MARGIN_MS`]
//! off, so a pass runs long before the session could be taken for expired;
//! nearer the deadline, it waits for the writer as before.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use session_core::ExpiryPolicy;

use crate::layout::Meta;

/// How often the writer applies the refreshes left since its last pass.
pub(crate) const FOLD_EVERY: Duration = Duration::from_millis(500);

/// How far off the stored deadline must be for a read to leave its
/// refresh to the writer: ten passes.
pub(crate) const DEFER_MARGIN_MS: u64 = 5_000;

/// A refresh a read left for the writer: when it read, and under what
/// policy. The deadline it gives is worked out when it is applied, from
/// the session's row as it is then (see [`Refresh::deadline_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refresh {
    /// When it read, ms since the Unix epoch: the session's last activity.
    pub(crate) at: u64,
    /// The policy the read was made under.
    pub(crate) policy: ExpiryPolicy,
}

impl Refresh {
    /// The later of two refreshes of one session.
    fn merge(self, other: Refresh) -> Refresh {
        if other.at >= self.at {
            other
        } else {
            self
        }
    }

    /// The deadline this refresh gives the session whose row is `meta`, as
    /// the read would have had it waited for the writer: from the row's own
    /// idle timeout and creation, which an operation may have changed since
    /// the read's snapshot (a shorter lifetime stays short). `None` if it
    /// gives none: the session has expired by `now`, or an operation slid
    /// it at or after the read, or the deadline would not move later.
    pub(crate) fn deadline_for(&self, meta: &Meta, now: u64) -> Option<u64> {
        if !meta.alive(now) || self.at <= meta.last {
            return None;
        }
        let deadline = meta
            .policy(&self.policy)
            .deadline_ms(meta.created, self.at)?;
        (deadline > meta.deadline).then_some(deadline)
    }
}

/// The refreshes left for the writer, by session id.
pub(crate) struct Refreshes {
    shards: Box<[Mutex<HashMap<String, Refresh>>]>,
    hasher: RandomState,
}

impl std::fmt::Debug for Refreshes {
    /// How many sessions have a refresh left; never their ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions: usize = (0..self.shards.len()).map(|i| self.lock(i).len()).sum();
        f.debug_struct("Refreshes")
            .field("sessions", &sessions)
            .finish()
    }
}

impl Refreshes {
    /// Shards, so that readers of different sessions rarely wait for each other.
    const SHARDS: usize = 32;

    pub(crate) fn new() -> Refreshes {
        Refreshes {
            shards: (0..Refreshes::SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, HashMap<String, Refresh>> {
        // A panic cannot leave an entry half-written: recover the map.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, HashMap<String, Refresh>> {
        self.lock(self.hasher.hash_one(id) as usize % self.shards.len())
    }

    /// Leaves `refresh` of session `id` for the writer; with one already
    /// left, the later of the two.
    pub(crate) fn defer(&self, id: &str, refresh: Refresh) {
        let mut shard = self.shard(id);
        match shard.get_mut(id) {
            Some(left) => *left = left.merge(refresh),
            None => {
                shard.insert(id.to_owned(), refresh);
            }
        }
    }

    /// The refresh left for session `id`, if any.
    pub(crate) fn get(&self, id: &str) -> Option<Refresh> {
        self.shard(id).get(id).copied()
    }

    /// Whether no refresh is left.
    pub(crate) fn is_empty(&self) -> bool {
        (0..self.shards.len()).all(|i| self.lock(i).is_empty())
    }

    /// Every refresh left, in order of session id (the order of `records`),
    /// still left until [`settle`](Self::settle)d.
    pub(crate) fn pending(&self) -> Vec<(String, Refresh)> {
        let mut all = Vec::new();
        for shard in 0..self.shards.len() {
            all.extend(self.lock(shard).iter().map(|(id, r)| (id.clone(), *r)));
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Takes out `applied`, which a committed transaction handled for
    /// session `id`, unless a later read left a later refresh meanwhile.
    pub(crate) fn settle(&self, id: &str, applied: Refresh) {
        let mut shard = self.shard(id);
        if shard.get(id).is_some_and(|left| *left == applied) {
            shard.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(at: u64) -> Refresh {
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        Refresh { at, policy }
    }

    #[test]
    fn a_session_keeps_its_latest_refresh() {
        let refreshes = Refreshes::new();
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
        let refreshes = Refreshes::new();
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
        let refreshes = Refreshes::new();
        refreshes.defer("a", refresh(1));
        let (_, applied) = refreshes.pending().remove(0);
        refreshes.defer("a", refresh(2));
        refreshes.settle("a", applied);
        assert_eq!(refreshes.get("a"), Some(refresh(2)));
    }

    #[test]
    fn debug_shows_no_session_id() {
        let refreshes = Refreshes::new();
        refreshes.defer("secret-id", refresh(1));
        let shown = format!("{refreshes:?}");
        assert!(!shown.contains("secret-id"), "{shown}");
        assert!(shown.contains('1'), "{shown}");
    }
}
