//! The plain read path: a read that is not due to slide a session's expiry
//! is one `HGET` (`HMGET`, `HGETALL`), not a script.
//!
//! Every read script answers, beside the values, how long until the next
//! read must slide the expiry (the touch granularity, see
//! [`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity)).
//! Until then this process serves reads of that session with the plain
//! command, which changes nothing on the server, as the script would not
//! either, except for the read counter: those reads are counted here, in
//! the same entry that says the session is fresh, and added to the session's
//! counter in the background about once a second. This process's own reports ([`Store::info`](session_core::Store::info)
//! and the owner listings) add what is still pending, so its counters stay
//! exact; other processes see them up to a second late, and a process that
//! exits loses at most that second's counts, never data.
//!
//! Redis still expires the hash by itself at its deadline, so a plain read
//! of an expired, destroyed or regenerated session finds nothing, as the
//! script would.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

// Seeded and fast: the keys hold session ids, which only the server mints,
// and every plain read hashes one twice (its shard, then its entry).
use foldhash::fast::RandomState;
use futures_util::stream::{self, StreamExt};
use smallvec::SmallVec;

use crate::connection::Connection;
use crate::scripts::Scripts;

/// How often pending read counts are written out.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How long a full shard in which nothing could go waits before it is
/// walked for room again: a walk visits every entry of the shard, which
/// must not happen on every read once more sessions are read than the map
/// holds.
const FULL_RETRY: Duration = Duration::from_secs(1);

/// What this process knows of one session. One entry holds both, so that
/// a plain read finds and counts in one map, and counts a session it
/// already knows without allocating: with a million sessions each lookup
/// misses the CPU caches.
struct Known {
    /// When its next refresh falls due, by the server's answer, counted from
    /// before the request went out (so never late); `None`: not known.
    fresh_until: Option<Instant>,
    /// Reads served with a plain command, not yet in its read counter.
    pending: u64,
    /// Whether its key is in its shard's `queued` list, which it then is
    /// once.
    queued: bool,
}

impl Known {
    /// Puts `hash`, this entry's key, on its shard's `queue` for the next
    /// flush, if it has pending reads and is not there yet.
    fn queue_in(&mut self, hash: &[u8], queue: &mut Vec<Key>) {
        if self.pending > 0 && !self.queued {
            self.queued = true;
            queue.push(Key::from_slice(hash));
        }
    }

    /// Whether a read may still use it, or it holds counts to write out.
    fn needed(&self, now: Instant) -> bool {
        self.pending > 0 || self.fresh_until.is_some_and(|until| now < until)
    }
}

/// The longest session key kept inside its map entry: room for the
/// default prefix and a generated id (61 bytes), with a little to spare.
const INLINE: usize = 64;

/// A session's key as the map holds it: inside the entry when it fits, as
/// it does with the default prefix. A million known sessions are then not
/// a million small allocations strewn through the heap, which measurably
/// slowed every other allocation of the process (glibc's `malloc` walks
/// colder free lists), and a flush copies a key without allocating. It
/// hashes and compares as its bytes, so the map is looked up by `&[u8]`.
type Key = SmallVec<[u8; INLINE]>;

/// One shard of the map.
#[derive(Default)]
struct Shard {
    /// Session hash → what is known of it.
    known: HashMap<Key, Known, RandomState>,
    /// The sessions with pending reads that the next flush is to write
    /// out, so that it visits those, not every session known (a million
    /// entries a second, to find the few thousand read). A key may also be
    /// here for an entry that has since gone.
    queued: Vec<Key>,
    /// Until when the shard counts as full without a look: set when it was
    /// full and nothing in it could go.
    full_until: Option<Instant>,
}

impl Shard {
    /// Queues `hash` for the next flush if it has pending reads and is not
    /// queued yet.
    fn queue(&mut self, hash: &[u8]) {
        if let Some(known) = self.known.get_mut(hash) {
            known.queue_in(hash, &mut self.queued);
        }
    }
}

/// Sessions this process knows need no refresh before some instant, and the
/// reads it served without a script.
pub(crate) struct Reads {
    /// What is known of each session, by its hash's shard.
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// At most this many sessions per shard: past it, reads take the script.
    per_shard: usize,
    /// Shards purged so far: the next to purge, modulo their number.
    purged: AtomicUsize,
    /// A flush pass holds it for writing; a regenerate, which moves pending
    /// reads to the new id, for reading, so the two never interleave.
    pub(crate) gate: tokio::sync::RwLock<()>,
}

impl std::fmt::Debug for Reads {
    /// How many sessions are known, and how many have pending reads; never
    /// their ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mut known, mut pending) = (0, 0);
        for shard in 0..self.shards.len() {
            let shard = self.lock(shard);
            known += shard.known.len();
            pending += shard
                .known
                .values()
                .filter(|known| known.pending > 0)
                .count();
        }
        f.debug_struct("Reads")
            .field("sessions", &known)
            .field("with_pending_reads", &pending)
            .finish()
    }
}

impl Reads {
    const SHARDS: usize = 64;

    /// Room for `capacity` sessions known fresh at once (0: no plain read
    /// path).
    pub(crate) fn new(capacity: usize) -> Reads {
        Reads {
            shards: (0..Reads::SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            per_shard: capacity.div_ceil(Reads::SHARDS),
            purged: AtomicUsize::new(0),
            gate: tokio::sync::RwLock::new(()),
        }
    }

    fn shard(&self, hash: &[u8]) -> MutexGuard<'_, Shard> {
        self.lock(self.hasher.hash_one(hash) as usize % self.shards.len())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // An entry cannot be left half-written: recover the map.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a read of `hash` now may be a plain command.
    pub(crate) fn fresh(&self, hash: &str) -> bool {
        if self.per_shard == 0 {
            return false;
        }
        self.shard(hash.as_bytes())
            .known
            .get(hash.as_bytes())
            .and_then(|known| known.fresh_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// Records that no read of `hash` needs to refresh it for `due` ms from
    /// `sent`, when the request that learnt it went out.
    pub(crate) fn note(&self, hash: &str, sent: Instant, due: u64) {
        self.note_at(hash, sent, due, Instant::now());
    }

    /// [`note`](Self::note) at `now`. A session new to a full shard is
    /// left out (its reads take the script) unless walking the shard frees
    /// room; a walk that frees none is not tried again for [`FULL_RETRY`].
    fn note_at(&self, hash: &str, sent: Instant, due: u64, now: Instant) {
        if self.per_shard == 0 || due == 0 {
            return;
        }
        let until = Some(sent + Duration::from_millis(due));
        let mut shard = self.shard(hash.as_bytes());
        if let Some(known) = shard.known.get_mut(hash.as_bytes()) {
            known.fresh_until = until;
            return;
        }
        if shard.known.len() >= self.per_shard {
            if shard.full_until.is_some_and(|full| now < full) {
                return;
            }
            shard.known.retain(|_, known| known.needed(now));
            if shard.known.len() >= self.per_shard {
                shard.full_until = Some(now + FULL_RETRY);
                return;
            }
        }
        let known = Known {
            fresh_until: until,
            pending: 0,
            queued: false,
        };
        shard.known.insert(Key::from_slice(hash.as_bytes()), known);
    }

    /// Counts a read of `hash` served with a plain command. It leaves last
    /// activity alone, as a script read inside the granularity does.
    pub(crate) fn count(&self, hash: &str) {
        self.add(hash, 1);
    }

    /// Adds `reads` to what is pending for `hash`.
    fn add(&self, hash: &str, reads: u64) {
        if reads == 0 {
            return;
        }
        let hash = hash.as_bytes();
        let mut shard = self.shard(hash);
        let Shard {
            known: entries,
            queued,
            ..
        } = &mut *shard;
        // Usually found, as it was a moment ago when the read began.
        if let Some(known) = entries.get_mut(hash) {
            known.pending += reads;
            known.queue_in(hash, queued);
        } else {
            let mut new = Known {
                fresh_until: None,
                pending: reads,
                queued: false,
            };
            new.queue_in(hash, queued);
            entries.insert(Key::from_slice(hash), new);
        }
    }

    /// The reads of `hash` served here and not yet in its counter.
    pub(crate) fn pending(&self, hash: &str) -> u64 {
        self.shard(hash.as_bytes())
            .known
            .get(hash.as_bytes())
            .map_or(0, |known| known.pending)
    }

    /// Takes every queued session with pending reads, and how many, as of
    /// now. Each must then be [`settle`](Self::settle)d, forgotten or
    /// [`requeue`](Self::requeue)d.
    fn take_pending(&self) -> Vec<(Key, u64)> {
        let mut all = Vec::new();
        for shard in 0..self.shards.len() {
            let mut shard = self.lock(shard);
            let Shard { known, queued, .. } = &mut *shard;
            for key in queued.drain(..) {
                // A key queued again after its entry went and came back is
                // here twice: the first takes it.
                let Some(known) = known.get_mut(key.as_slice()) else {
                    continue;
                };
                if std::mem::take(&mut known.queued) && known.pending > 0 {
                    all.push((key, known.pending));
                }
            }
        }
        all
    }

    /// Takes out `written` reads of `hash`, now in its counter; reads counted
    /// meanwhile stay pending, queued for the next flush.
    fn settle(&self, hash: &[u8], written: u64) {
        let mut shard = self.shard(hash);
        let Shard {
            known: entries,
            queued,
            ..
        } = &mut *shard;
        if let Some(known) = entries.get_mut(hash) {
            known.pending = known.pending.saturating_sub(written);
            if known.needed(Instant::now()) {
                known.queue_in(hash, queued);
            } else {
                entries.remove(hash);
            }
        }
    }

    /// Queues `hash` again for the next flush: taken, but not written out.
    fn requeue(&self, hash: &[u8]) {
        self.shard(hash).queue(hash);
    }

    /// Moves what is pending for `from` to `to`, its new id, and forgets
    /// `from`.
    pub(crate) fn moved(&self, from: &str, to: &str) {
        let pending = self
            .shard(from.as_bytes())
            .known
            .remove(from.as_bytes())
            .map_or(0, |known| known.pending);
        self.add(to, pending);
    }

    /// Forgets that `hash` needs no refresh (given a new lifetime, or
    /// gone): its next read takes the script. Its pending reads stay.
    pub(crate) fn forget_fresh(&self, hash: &str) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(hash.as_bytes());
        if let Some(known) = shard.known.get_mut(hash.as_bytes()) {
            known.fresh_until = None;
            if known.pending == 0 {
                shard.known.remove(hash.as_bytes());
            }
        }
    }

    /// Forgets `hash`, destroyed: what it was known for, and its counts.
    pub(crate) fn forget(&self, hash: &str) {
        self.forget_key(hash.as_bytes());
    }

    fn forget_key(&self, hash: &[u8]) {
        self.shard(hash).known.remove(hash);
    }

    /// Forgets every session.
    pub(crate) fn clear(&self) {
        for shard in 0..self.shards.len() {
            let mut shard = self.lock(shard);
            shard.known.clear();
            shard.queued.clear();
        }
    }

    /// Drops what no read can use any more, and holds no counts, from the
    /// next shard in turn: one shard a pass, so that the cost of a pass does
    /// not grow with the sessions known. Each shard comes round every 64
    /// passes, and a full shard drops what has run out by itself (see
    /// [`note`](Self::note)).
    fn purge_next(&self) {
        let shard = self.purged.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let now = Instant::now();
        self.lock(shard).known.retain(|_, known| known.needed(now));
    }
}

/// Writes out pending read counts every [`FLUSH_EVERY`] until the store is
/// gone. A count that fails to go out stays pending for the next pass.
pub(crate) async fn flush_in_background(
    reads: Weak<Reads>,
    connection: Connection,
    scripts: Arc<Scripts>,
    timeout: Duration,
) {
    // One script call adds the counts of a batch of sessions. A cluster
    // takes them one by one, more at once: a script's keys share a slot.
    let (batch, concurrent) = if connection.is_cluster() {
        (1, 32)
    } else {
        (BATCH, 4)
    };
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(reads) = reads.upgrade() else { return };
        reads.purge_next();
        let _gate = reads.gate.write().await;
        let mut pending = reads.take_pending().into_iter();
        let batches = std::iter::from_fn(|| {
            let sessions: Vec<_> = pending.by_ref().take(batch).collect();
            (!sessions.is_empty()).then_some(sessions)
        });
        let flushes = batches.map(|sessions| {
            let (connection, scripts) = (connection.clone(), Arc::clone(&scripts));
            async move {
                let found = flush_batch(connection, &scripts, timeout, &sessions).await;
                (sessions, found)
            }
        });
        let mut flushes = stream::iter(flushes).buffer_unordered(concurrent);
        while let Some((sessions, found)) = flushes.next().await {
            // Not known: the counts stay pending, for the next pass.
            let Ok(found) = found else {
                for (hash, _) in &sessions {
                    reads.requeue(hash);
                }
                continue;
            };
            for ((hash, written), exists) in sessions.into_iter().zip(found) {
                if exists == 1 {
                    reads.settle(&hash, written);
                } else {
                    // Gone: so are its counts, and what it was known for.
                    reads.forget_key(&hash);
                }
            }
        }
    }
}

/// Sessions whose counts one script call adds, on a single server: about a
/// quarter of a millisecond of Redis's time, short enough not to hold up
/// the requests queued behind it.
const BATCH: usize = 64;

/// Adds each session's pending reads to its read counter: for each, whether
/// it still exists (1) or not (0), or `Err` if that is not known.
async fn flush_batch(
    mut connection: Connection,
    scripts: &Scripts,
    timeout: Duration,
    sessions: &[(Key, u64)],
) -> Result<Vec<i64>, ()> {
    let mut invocation = scripts.add_reads.prepare_invoke();
    for (hash, reads) in sessions {
        invocation.key(hash.as_slice()).arg(reads);
    }
    match tokio::time::timeout(
        timeout,
        invocation.invoke_async::<Vec<i64>>(&mut connection),
    )
    .await
    {
        Ok(Ok(found)) if found.len() == sessions.len() => Ok(found),
        Ok(Ok(_)) => {
            tracing::debug!("pending read counts stay pending: a reply of the wrong length");
            Err(())
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "pending read counts stay pending");
            Err(())
        }
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    /// What [`Reads::take_pending`] takes, as bytes and counts.
    fn pending(reads: &Reads) -> Vec<(Vec<u8>, u64)> {
        let all = reads.take_pending().into_iter();
        all.map(|(key, n)| (key.as_slice().to_vec(), n)).collect()
    }

    #[test]
    fn reads_of_a_fresh_session_are_counted_and_settled_in_its_entry() {
        let reads = Reads::new(1_000);
        assert!(!reads.fresh("s:a"));
        reads.note("s:a", Instant::now(), MINUTE);
        assert!(reads.fresh("s:a"));
        for _ in 0..3 {
            reads.count("s:a");
        }
        assert_eq!(reads.pending("s:a"), 3);
        assert_eq!(pending(&reads), vec![(b"s:a".to_vec(), 3)]);
        // Two went out; the third was counted meanwhile and stays.
        reads.settle(b"s:a", 2);
        assert_eq!(reads.pending("s:a"), 1);
        reads.settle(b"s:a", 1);
        assert_eq!(reads.pending("s:a"), 0);
        assert!(reads.take_pending().is_empty());
        assert!(reads.fresh("s:a"), "settling leaves what is known alone");
    }

    #[test]
    fn a_flush_takes_each_session_with_pending_reads_once_until_it_is_queued_again() {
        let reads = Reads::new(1_000);
        reads.note("s:a", Instant::now(), MINUTE);
        reads.count("s:a");
        reads.count("s:a");
        reads.count("s:b");
        let mut taken = pending(&reads);
        taken.sort();
        assert_eq!(taken, vec![(b"s:a".to_vec(), 2), (b"s:b".to_vec(), 1)]);
        // Taken, and not yet settled: not taken again.
        assert!(pending(&reads).is_empty());
        // A failed write queues it again, with what was counted meanwhile.
        reads.count("s:a");
        reads.requeue(b"s:a");
        reads.requeue(b"s:a");
        assert_eq!(pending(&reads), vec![(b"s:a".to_vec(), 3)]);
        // Settling part of it queues the rest.
        reads.settle(b"s:a", 2);
        assert_eq!(pending(&reads), vec![(b"s:a".to_vec(), 1)]);
        reads.settle(b"s:a", 1);
        // Settled in full (and still known fresh): nothing to take.
        assert!(pending(&reads).is_empty());
        assert!(reads.fresh("s:a"));
        // s:d went and came back before a flush: its key is queued twice,
        // and taken once, with what was counted since it came back.
        reads.count("s:d");
        reads.forget("s:d");
        reads.count("s:d");
        assert_eq!(pending(&reads), vec![(b"s:d".to_vec(), 1)]);
        // A session forgotten after it was counted is not taken.
        reads.count("s:c");
        reads.forget("s:c");
        assert!(pending(&reads).is_empty());
    }

    #[test]
    fn keys_too_long_to_hold_inline_are_known_and_counted_alike() {
        let reads = Reads::new(1_000);
        let long = format!("{}:{}", "p".repeat(INLINE), "id");
        let edge = "e".repeat(INLINE);
        for hash in [long.as_str(), edge.as_str()] {
            reads.note(hash, Instant::now(), MINUTE);
            assert!(reads.fresh(hash));
            reads.count(hash);
            reads.count(hash);
            assert_eq!(reads.pending(hash), 2);
        }
        assert!(Key::from_slice(long.as_bytes()).spilled());
        assert!(!Key::from_slice(edge.as_bytes()).spilled());
        let mut all = pending(&reads);
        all.sort();
        assert_eq!(
            all,
            vec![
                (edge.clone().into_bytes(), 2),
                (long.clone().into_bytes(), 2)
            ]
        );
        // A key that only shares a prefix with a known one is not known.
        assert!(!reads.fresh(&long[..INLINE]));
        reads.settle(long.as_bytes(), 2);
        reads.forget(&edge);
        assert_eq!((reads.pending(&long), reads.pending(&edge)), (0, 0));
        assert!(reads.fresh(&long) && !reads.fresh(&edge));
    }

    #[test]
    fn forgetting_freshness_keeps_the_counts_and_forgetting_drops_them() {
        let reads = Reads::new(1_000);
        reads.note("s:a", Instant::now(), MINUTE);
        reads.count("s:a");
        reads.forget_fresh("s:a");
        assert!(!reads.fresh("s:a"));
        assert_eq!(reads.pending("s:a"), 1);
        reads.note("s:b", Instant::now(), MINUTE);
        reads.count("s:b");
        reads.forget("s:b");
        assert_eq!((reads.fresh("s:b"), reads.pending("s:b")), (false, 0));
        reads.clear();
        assert_eq!(reads.pending("s:a"), 0);
    }

    #[test]
    fn a_regenerated_session_takes_its_pending_reads_along() {
        let reads = Reads::new(1_000);
        reads.note("s:old", Instant::now(), MINUTE);
        reads.count("s:old");
        reads.count("s:old");
        reads.count("s:new");
        reads.moved("s:old", "s:new");
        assert_eq!(reads.pending("s:old"), 0);
        assert!(!reads.fresh("s:old"));
        assert_eq!(reads.pending("s:new"), 3);
        // Nothing is known fresh of the new id until a script says so.
        assert!(!reads.fresh("s:new"));
    }

    /// A map with room for one session per shard, and a hash that shares
    /// its shard with `s:a`.
    fn one_per_shard() -> (Reads, String) {
        let reads = Reads::new(Reads::SHARDS);
        let shard = |hash: &str| reads.hasher.hash_one(hash.as_bytes()) as usize % Reads::SHARDS;
        let other = (0..)
            .map(|i| format!("s:{i}"))
            .find(|hash| hash != "s:a" && shard(hash) == shard("s:a"))
            .expect("another hash in the same shard");
        (reads, other)
    }

    #[test]
    fn a_full_shard_never_drops_counts_to_make_room() {
        let (reads, other) = one_per_shard();
        // Known fresh once, no longer, but with a count to write out.
        let long_ago = Instant::now() - Duration::from_secs(10);
        reads.note("s:a", long_ago, 1);
        reads.count("s:a");
        reads.note(&other, Instant::now(), MINUTE);
        assert!(!reads.fresh(&other), "no room: its reads take the script");
        assert_eq!(reads.pending("s:a"), 1);
        for _ in 0..Reads::SHARDS {
            reads.purge_next();
        }
        assert_eq!(reads.pending("s:a"), 1, "a purge keeps counts");
        // Written out, the entry has nothing left to keep: room again.
        reads.settle(b"s:a", 1);
        reads.note(&other, Instant::now(), MINUTE);
        assert!(reads.fresh(&other));
    }

    #[test]
    fn a_full_shard_is_walked_for_room_at_most_once_a_retry() {
        let (reads, other) = one_per_shard();
        let known = |hash: &str| {
            let hash = hash.as_bytes();
            reads.shard(hash).known.contains_key(hash)
        };
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Fresh for 10 ms: while it is, the shard has no room.
        reads.note_at("s:a", start, 10, start);
        reads.note_at(&other, at(1), MINUTE, at(1));
        assert!(!known(&other), "no room while s:a is fresh");
        // s:a has run out, but the shard was found full a moment ago: no
        // walk, so no room yet.
        reads.note_at(&other, at(20), MINUTE, at(20));
        assert!(!known(&other), "a full shard is not walked again at once");
        assert!(known("s:a"));
        // A retry later the walk drops s:a and makes room.
        let later = at(1) + FULL_RETRY;
        reads.note_at(&other, later, MINUTE, later);
        assert!(known(&other), "walked again after the retry");
        assert!(!known("s:a"));
    }

    #[test]
    fn no_plain_reads_means_nothing_is_known_fresh() {
        let reads = Reads::new(0);
        reads.note("s:a", Instant::now(), MINUTE);
        assert!(!reads.fresh("s:a"));
    }

    #[test]
    fn debug_shows_how_many_never_which() {
        let reads = Reads::new(1_000);
        reads.note("s:secret-id", Instant::now(), MINUTE);
        reads.count("s:secret-id");
        reads.note("s:other-id", Instant::now(), MINUTE);
        let shown = format!("{reads:?}");
        assert_eq!(shown, "Reads { sessions: 2, with_pending_reads: 1 }");
        assert!(!shown.contains("secret"));
    }
}
