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

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

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
    fresh: Box<[Mutex<HashMap<String, Instant>>]>,
    hasher: RandomState,
    /// At most this many sessions per shard: past it, reads take the script.
    per_shard: usize,
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
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(Reads::SHARDS),
            tally: ReadTally::new(),
            gate: tokio::sync::RwLock::new(()),
        }
    }

    fn shard(&self, hash: &str) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.lock(self.hasher.hash_one(hash) as usize % self.fresh.len())
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, HashMap<String, Instant>> {
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

    /// Drops what no read can use any more.
    fn purge(&self) {
        let now = Instant::now();
        for shard in 0..self.fresh.len() {
            self.lock(shard).retain(|_, due| now < *due);
        }
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
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(reads) = reads.upgrade() else { return };
        reads.purge();
        let _gate = reads.gate.write().await;
        let flushes = reads.tally.pending().into_iter().map(|(hash, pending)| {
            let connection = connection.clone();
            let scripts = &scripts;
            async move {
                let flushed = flush_one(connection, scripts, timeout, &hash, pending).await;
                (hash, pending, flushed)
            }
        });
        let mut flushes = stream::iter(flushes).buffer_unordered(CONCURRENT);
        while let Some((hash, pending, flushed)) = flushes.next().await {
            match flushed {
                Ok(true) => reads.tally.settle(&hash, pending),
                // Gone: so are its counts, and what it was known for.
                Ok(false) => reads.forget(&hash),
                Err(()) => {}
            }
        }
    }
}

/// Sessions flushed at once.
const CONCURRENT: usize = 32;

/// Adds `pending` to the read counter of `hash`: whether it still exists, or
/// `Err` if that is not known.
async fn flush_one(
    mut connection: Connection,
    scripts: &Scripts,
    timeout: Duration,
    hash: &str,
    pending: PendingReads,
) -> Result<bool, ()> {
    let mut invocation = scripts.add_reads.key(hash);
    invocation.arg(pending.reads);
    match tokio::time::timeout(timeout, invocation.invoke_async::<i64>(&mut connection)).await {
        Ok(Ok(exists)) => Ok(exists == 1),
        Ok(Err(error)) => {
            tracing::debug!(%error, "pending read counts stay pending");
            Err(())
        }
        Err(_) => Err(()),
    }
}
