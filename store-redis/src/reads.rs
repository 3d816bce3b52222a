//! The plain read path: a read that is not due to slide a session's expiry
//! is one `HGET` (`HMGET`, `HGETALL`), not a script.
//!
//! Every read script answers, beside the values, how long until the next
//! read must slide the expiry (the touch granularity, see
//! [`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity)).
//! Until then this process serves reads of that session with the plain
//! command, which changes nothing on the server, as the script would not
//! either, except for the read counter: those reads are counted here, in a
//! [`ReadTally`], and added to the session's counter in the background about
//! once a second. This process's own reports ([`Store::info`](session_core::Store::info)
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
use session_core::{PendingReads, ReadTally};

use crate::connection::Connection;
use crate::scripts::Scripts;

/// How often pending read counts are written out.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Sessions this process knows need no refresh before some instant, and the
/// reads it served without a script.
pub(crate) struct Reads {
    /// Session hash → the instant its next refresh falls due, by the server's
    /// answer, counted from before the request went out (so never late).
    fresh: Box<[Mutex<HashMap<String, Instant, RandomState>>]>,
    hasher: RandomState,
    /// At most this many sessions per shard: past it, reads take the script.
    per_shard: usize,
    /// Shards purged so far: the next to purge, modulo their number.
    purged: AtomicUsize,
    /// Reads served with a plain command, not yet in the sessions' counters.
    pub(crate) tally: ReadTally,
    /// A flush pass holds it for writing; a regenerate, which moves pending
    /// reads to the new id, for reading, so the two never interleave.
    pub(crate) gate: tokio::sync::RwLock<()>,
}

impl Reads {
    const SHARDS: usize = 64;

    /// Room for `capacity` sessions at once (0: no plain read path).
    pub(crate) fn new(capacity: usize) -> Reads {
        Reads {
            fresh: (0..Reads::SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            per_shard: capacity.div_ceil(Reads::SHARDS),
            purged: AtomicUsize::new(0),
            tally: ReadTally::new(),
            gate: tokio::sync::RwLock::new(()),
        }
    }

    fn shard(&self, hash: &str) -> MutexGuard<'_, HashMap<String, Instant, RandomState>> {
        self.lock(self.hasher.hash_one(hash) as usize % self.fresh.len())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, HashMap<String, Instant, RandomState>> {
        // An instant cannot be left half-written: recover the map.
        self.fresh[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a read of `hash` now may be a plain command.
    pub(crate) fn fresh(&self, hash: &str) -> bool {
        if self.per_shard == 0 {
            return false;
        }
        self.shard(hash)
            .get(hash)
            .is_some_and(|due| Instant::now() < *due)
    }

    /// Records that no read of `hash` needs to refresh it for `due` ms from
    /// `sent`, when the request that learnt it went out.
    pub(crate) fn note(&self, hash: &str, sent: Instant, due: u64) {
        if self.per_shard == 0 || due == 0 {
            return;
        }
        let until = sent + Duration::from_millis(due);
        let mut shard = self.shard(hash);
        if let Some(known) = shard.get_mut(hash) {
            *known = until;
            return;
        }
        if shard.len() >= self.per_shard {
            let now = Instant::now();
            shard.retain(|_, due| now < *due);
            if shard.len() >= self.per_shard {
                return;
            }
        }
        shard.insert(hash.to_owned(), until);
    }

    /// Counts a read of `hash` served with a plain command. It leaves last
    /// activity alone, as a script read inside the granularity does.
    pub(crate) fn count(&self, hash: &str) {
        self.tally.add(hash, 0);
    }

    /// Forgets that `hash` needs no refresh (given a new lifetime, or
    /// gone): its next read takes the script.
    pub(crate) fn forget_fresh(&self, hash: &str) {
        if self.per_shard > 0 {
            self.shard(hash).remove(hash);
        }
    }

    /// Forgets `hash`, destroyed: what it was known for, and its counts.
    pub(crate) fn forget(&self, hash: &str) {
        self.forget_fresh(hash);
        self.tally.forget(hash);
    }

    /// Forgets every session.
    pub(crate) fn clear(&self) {
        for shard in 0..self.fresh.len() {
            self.lock(shard).clear();
        }
        self.tally.clear();
    }

    /// Drops what no read can use any more from the next shard in turn:
    /// one shard a pass, so that the cost of a pass does not grow with the
    /// sessions known. Each shard comes round every 64 passes, and a full
    /// shard drops what has run out by itself (see [`note`](Self::note)).
    fn purge_next(&self) {
        let shard = self.purged.fetch_add(1, Ordering::Relaxed) % self.fresh.len();
        let now = Instant::now();
        self.lock(shard).retain(|_, due| now < *due);
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
        let mut pending = reads.tally.pending().into_iter();
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
            // Not known: the counts stay pending.
            let Ok(found) = found else { continue };
            for ((hash, pending), exists) in sessions.into_iter().zip(found) {
                if exists == 1 {
                    reads.tally.settle(&hash, pending);
                } else {
                    // Gone: so are its counts, and what it was known for.
                    reads.forget(&hash);
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
    sessions: &[(String, PendingReads)],
) -> Result<Vec<i64>, ()> {
    let mut invocation = scripts.add_reads.prepare_invoke();
    for (hash, pending) in sessions {
        invocation.key(hash).arg(pending.reads);
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
