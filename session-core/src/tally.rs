//! [`ReadTally`]: the reads an embedded store served without writing.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

// Seeded and fast: the keys are session ids, which only the server mints, and
// every read hashes one twice (its shard, then its entry).
use foldhash::fast::RandomState;
use smallvec::SmallVec;

use crate::SessionInfo;

/// What a session's reads added since its stored record last took them in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingReads {
    /// Reads not yet in the stored read counter.
    pub reads: u64,
    /// The latest of them, ms since the Unix epoch.
    pub last_ms: u64,
}

impl PendingReads {
    /// Adds these reads to what a store reports of a session as of
    /// `now_ms`: its read count, and its last activity if they are later.
    pub fn add_to(&self, info: &mut SessionInfo, now_ms: u64) {
        info.reads += self.reads;
        if self.last_ms > info.last_active_ms {
            info.last_active_ms = self.last_ms;
            info.idle = Duration::from_millis(now_ms.saturating_sub(self.last_ms));
        }
    }
}

/// Read counts kept in memory for a store whose reads write nothing between
/// refreshes (see [`ExpiryPolicy::touch_granularity`](crate::ExpiryPolicy::touch_granularity)).
///
/// An embedded store owns its database alone, so its process sees every
/// read: it [`add`](Self::add)s those that write nothing here, folds
/// [`get`](Self::get)'s figures into the record in its next transaction on
/// the session (a write, a refresh, a regenerate), or when it is flushed or
/// closed (every [`pending`](Self::pending) count), and
/// [`settle`](Self::settle)s them once that commits. Reports add what is
/// still pending, so counters stay exact; a crash loses at most the reads
/// since the last refresh, which are never data.
///
/// ```
/// use session_core::ReadTally;
/// let tally = ReadTally::new();
/// tally.add("a", 1_000);
/// tally.add("a", 1_500);
/// let pending = tally.get("a");
/// assert_eq!((pending.reads, pending.last_ms), (2, 1_500));
/// // A transaction folded those two into the record, and committed:
/// tally.settle("a", pending);
/// assert_eq!(tally.get("a").reads, 0);
/// ```
pub struct ReadTally {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

/// A session id kept inside its entry: a generated id with a prefix of
/// up to about 20 bytes fits. A million ids each in a heap allocation of
/// its own slowed every other allocation of the process (glibc's malloc
/// took 8% of a server's CPU at a million sessions against 3% at 1,000).
type Key = SmallVec<[u8; 64]>;

type Shard = HashMap<Key, PendingReads, RandomState>;

/// An id as it went in: every key is made from a `&str`, so it is UTF-8.
fn id_of(key: &Key) -> &str {
    std::str::from_utf8(key).unwrap_or_default()
}

impl std::fmt::Debug for ReadTally {
    /// How many sessions have pending reads; never their ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions: usize = (0..self.shards.len()).map(|i| self.lock(i).len()).sum();
        f.debug_struct("ReadTally")
            .field("sessions", &sessions)
            .finish()
    }
}

impl Default for ReadTally {
    fn default() -> ReadTally {
        ReadTally::new()
    }
}

impl ReadTally {
    /// Shards, so that readers of different sessions rarely wait for each other.
    const SHARDS: usize = 64;

    /// An empty tally.
    pub fn new() -> ReadTally {
        ReadTally {
            shards: (0..ReadTally::SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        self.lock(self.hasher.hash_one(id) as usize % self.shards.len())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic cannot leave a count half-changed: recover the map.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a read of session `id` at `now_ms` that wrote nothing.
    pub fn add(&self, id: &str, now_ms: u64) {
        let mut shard = self.shard(id);
        match shard.get_mut(id.as_bytes()) {
            Some(pending) => {
                pending.reads += 1;
                pending.last_ms = pending.last_ms.max(now_ms);
            }
            None => {
                shard.insert(
                    Key::from_slice(id.as_bytes()),
                    PendingReads {
                        reads: 1,
                        last_ms: now_ms,
                    },
                );
            }
        }
    }

    /// The reads of session `id` not yet in its record.
    pub fn get(&self, id: &str) -> PendingReads {
        self.shard(id)
            .get(id.as_bytes())
            .copied()
            .unwrap_or_default()
    }

    /// Takes out `folded`, which a committed transaction wrote into the
    /// record of `id`; reads counted meanwhile stay pending.
    pub fn settle(&self, id: &str, folded: PendingReads) {
        if folded.reads == 0 {
            return;
        }
        let mut shard = self.shard(id);
        if let Some(pending) = shard.get_mut(id.as_bytes()) {
            pending.reads = pending.reads.saturating_sub(folded.reads);
            if pending.reads == 0 {
                shard.remove(id.as_bytes());
            }
        }
    }

    /// Takes out and returns everything pending for session `id`, as when
    /// it moves to a new id.
    pub fn take(&self, id: &str) -> PendingReads {
        self.shard(id).remove(id.as_bytes()).unwrap_or_default()
    }

    /// Adds `more` to what is pending for session `id`: the reads
    /// [`take`](Self::take)n from the id it had before, or taken out to be
    /// written into a record whose write did not commit.
    pub fn add_pending(&self, id: &str, more: PendingReads) {
        if more.reads == 0 {
            return;
        }
        let mut shard = self.shard(id);
        let pending = shard.entry(Key::from_slice(id.as_bytes())).or_default();
        pending.reads += more.reads;
        pending.last_ms = pending.last_ms.max(more.last_ms);
    }

    /// Every session with pending reads, and what is pending, as of now: for
    /// a store that writes them out in the background.
    pub fn pending(&self) -> Vec<(String, PendingReads)> {
        let mut all = Vec::new();
        for shard in 0..self.shards.len() {
            all.extend(
                self.lock(shard)
                    .iter()
                    .map(|(id, p)| (id_of(id).to_owned(), *p)),
            );
        }
        all
    }

    /// The ids of every session with pending reads, in order: for a store
    /// that writes them all out (on a flush, or as it closes), so that its
    /// transactions take them in key order.
    pub fn sessions(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for shard in 0..self.shards.len() {
            ids.extend(self.lock(shard).keys().map(|id| id_of(id).to_owned()));
        }
        ids.sort_unstable();
        ids
    }

    /// Forgets session `id` (destroyed or expired).
    pub fn forget(&self, id: &str) {
        self.shard(id).remove(id.as_bytes());
    }

    /// Keeps only the sessions `keep` says are still there.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        for shard in 0..self.shards.len() {
            self.lock(shard).retain(|id, _| keep(id_of(id)));
        }
    }

    /// Forgets every session.
    pub fn clear(&self) {
        for shard in 0..self.shards.len() {
            self.lock(shard).clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counted_while_a_fold_commits_stay_pending() {
        let tally = ReadTally::new();
        for at in 0..5 {
            tally.add("a", at);
        }
        let folded = tally.get("a");
        tally.add("a", 9);
        tally.settle("a", folded);
        assert_eq!(
            tally.get("a"),
            PendingReads {
                reads: 1,
                last_ms: 9
            }
        );
        tally.settle("a", tally.get("a"));
        assert_eq!(tally.get("a"), PendingReads::default());
    }

    /// `sessions` names every session with reads pending, once, in order.
    #[test]
    fn sessions_are_those_with_reads_pending_in_order() {
        let tally = ReadTally::new();
        for id in ["c", "a", "b", "a", "d"] {
            tally.add(id, 1);
        }
        tally.settle("d", tally.get("d"));
        assert_eq!(tally.sessions(), ["a", "b", "c"]);
    }

    /// Ids too long to keep inside their entry work the same.
    #[test]
    fn ids_longer_than_an_entry_holds() {
        let tally = ReadTally::new();
        let long = format!("prefix:{}", "x".repeat(100));
        let short = "s".to_owned();
        for id in [&long, &short, &long] {
            tally.add(id, 4);
        }
        assert_eq!(tally.get(&long).reads, 2);
        let mut pending = tally.pending();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            pending,
            vec![
                (long.clone(), tally.get(&long)),
                (short.clone(), tally.get(&short))
            ]
        );
        tally.retain(|id| id != short);
        assert_eq!((tally.get(&long).reads, tally.get(&short).reads), (2, 0));
        tally.settle(&long, tally.get(&long));
        assert_eq!(tally.pending(), vec![]);
    }

    #[test]
    fn forget_retain_and_clear() {
        let tally = ReadTally::new();
        for id in ["a", "b", "c"] {
            tally.add(id, 1);
        }
        tally.forget("a");
        tally.retain(|id| id != "b");
        assert_eq!(["a", "b", "c"].map(|id| tally.get(id).reads), [0, 0, 1]);
        tally.clear();
        assert_eq!(tally.get("c").reads, 0);
    }

    #[test]
    fn take_moves_pending_reads_to_another_id() {
        let tally = ReadTally::new();
        tally.add("old", 5);
        tally.add("old", 7);
        tally.add("new", 3);
        let moved = tally.take("old");
        tally.add_pending("new", moved);
        assert_eq!(tally.get("old"), PendingReads::default());
        assert_eq!(
            tally.get("new"),
            PendingReads {
                reads: 3,
                last_ms: 7
            }
        );
        assert_eq!(tally.pending(), vec![("new".to_owned(), tally.get("new"))]);
    }
}
