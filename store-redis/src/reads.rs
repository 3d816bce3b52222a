//! The plain read path: a read that is not due to slide a session's expiry,
//! or is due while the session's deadline is far off, is one `HGET`
//! (`HMGET`, `HGETALL`), not a script.
//!
//! Every read script answers, beside the values, how long until the next
//! read must slide the expiry (the touch granularity, see
//! [`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity)).
//! Until then this process serves reads of that session with the plain
//! command, which changes nothing on the server, as the script would not
//! either, except for the read counter: those reads are counted here, in
//! the same entry that says the session is fresh, and added to the session's
//! counter in the background about once a second. This process's own
//! reports ([`Store::info`](session_core::Store::info) and the owner
//! listings) add what is still pending, so its counters stay exact; other processes see them up to a second late, and a process that
//! exits loses at most that second's counts, never data. A flush whose
//! call gets no answer may still have landed: each call leaves its token
//! in the session's hash, and the reads it carried go out again alone,
//! under the same token, so the script adds them only if the first did not
//! (until then this process's reports count them as pending). A token is
//! the store's random mark and a number, and the hash keeps the latest
//! token of each of the last three stores that counted its reads (see
//! `lua/passes.lua`): a store whose call is in doubt sends nothing else for
//! that session, so the calls of up to two other stores flushing the same
//! session meanwhile cannot push its token out. With four or more stores
//! (a restarted process is a new one) flushing one session while Redis
//! stalls, such reads could still be counted twice; so could they if the
//! call sent again overtook the first, on a new connection, and the next
//! call's token replaced its own before the first landed.
//!
//! Redis still expires the hash by itself at its deadline, so a plain read
//! of an expired, destroyed or regenerated session finds nothing, as the
//! script would. A hash whose expiry something else set past the session's
//! absolute lifetime (a Node app's touch on the connect-redis layout, say)
//! has it cut back by the read script that allows the plain reads (see
//! `bounded_pttl` in `lua/prelude.lua`).
//!
//! A read that is due a refresh is a plain command too while the session's
//! deadline, as the last script told it, is more than [`MARGIN`] (10 s)
//! off: it leaves the refresh to the same background pass, which slides the
//! expiry of a batch of sessions of one policy in one script call, each as
//! of its last read (see `lua/refresh_reads.lua`). With many sessions, each
//! read rarely within the granularity of its last, that is most reads, and
//! a script per read cost Redis about twice what a plain read does. The
//! refresh lands about a second late; the deadline it sets is the read's
//! own, later only by the time the call takes to reach Redis. Queries that
//! report deadlines or last activity write the refreshes out first, and so
//! does [`RedisStore::flush`](crate::RedisStore::flush). A process that
//! exits without it loses the refreshes of its last second: those sessions
//! may end an idle timeout after an earlier read. Stores that keep the
//! [activity index](crate::RedisStoreBuilder::activity_index) refresh in the
//! read's own script, which moves the session in the index too.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

// Seeded and fast: the keys hold session ids, which only the server mints,
// and every plain read hashes one twice (its shard, then its entry).
use foldhash::fast::RandomState;
use futures_util::stream::{self, StreamExt};
use session_core::DeferredRefreshes;
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

/// How long before a session's deadline a read due a refresh stops
/// leaving it for later, and slides it itself: twice the embedded stores'
/// ([`DeferredRefreshes::MARGIN_MS`]), ten passes here as there, since a
/// pass comes every second, not every 500 ms.
pub(crate) const MARGIN: Duration = Duration::from_millis(2 * DeferredRefreshes::MARGIN_MS);

/// A session's policy as the scripts take it, in milliseconds: the idle
/// timeout, the absolute lifetime (0: none) and the touch granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Policy {
    pub(crate) idle: u64,
    pub(crate) absolute: u64,
    pub(crate) granularity: u64,
}

/// A refresh a read left for the background pass: the read's instant and
/// the policy it read under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deferred {
    pub(crate) at: Instant,
    pub(crate) policy: Policy,
}

/// What the last script said of a session, counted from before its request
/// went out (so never late).
#[derive(Clone, Copy)]
struct Fresh {
    /// When the request that learnt it went out: a later answer replaces
    /// it, an earlier one does not.
    learnt: Instant,
    /// When its next refresh falls due.
    until: Instant,
    /// When its hash expires, unless something slides it.
    expires: Instant,
}

/// What this process knows of one session. One entry holds it all, so
/// that a plain read finds and counts in one map, and counts a session it
/// already knows without allocating: with a million sessions each lookup
/// misses the CPU caches.
struct Known {
    /// `None`: not known.
    fresh: Option<Fresh>,
    /// A refresh left for the next flush.
    refresh: Option<Deferred>,
    /// Reads served with a plain command, not yet known to be in its read
    /// counter (those in `doubt` may be).
    pending: u64,
    /// Whether its key is in its shard's `queued` list, which it then is
    /// once.
    queued: bool,
    /// Reads a flush sent in a call that got no answer: they may be in its
    /// counter already. Until a call answers for them, they go out again
    /// as they went, alone and under the same token, so that the script can
    /// tell (see `lua/add_reads.lua`).
    doubt: Option<Doubt>,
}

/// Reads sent under `token` in a call whose outcome is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Doubt {
    token: u64,
    reads: u64,
}

impl Known {
    /// Puts `hash`, this entry's key, on its shard's `queue` for the next
    /// flush, if it has pending reads or a refresh and is not there yet.
    fn queue_in(&mut self, hash: &[u8], queue: &mut Vec<Key>) {
        if (self.pending > 0 || self.refresh.is_some()) && !self.queued {
            self.queued = true;
            queue.push(Key::from_slice(hash));
        }
    }

    /// Whether it holds counts or a refresh to write out.
    fn owed(&self) -> bool {
        self.pending > 0 || self.refresh.is_some()
    }

    /// What a flush is to write out for it, `hash`: its reads, or those in
    /// doubt alone, again.
    fn owing(&self, hash: Key) -> Owed {
        let (reads, again) = match self.doubt {
            Some(doubt) => (doubt.reads, Some(doubt.token)),
            None => (self.pending, None),
        };
        Owed {
            hash,
            reads,
            refresh: self.refresh,
            again,
        }
    }

    /// Whether a read may still be a plain command for it, or it holds
    /// what a flush must write out. A full shard keeps only these.
    fn needed(&self, now: Instant) -> bool {
        self.owed() || self.fresh.is_some_and(|fresh| now < fresh.until)
    }

    /// [`needed`](Self::needed), or a read due a refresh may still leave it
    /// for later: what a purge keeps.
    fn useful(&self, now: Instant, defer: bool) -> bool {
        self.needed(now) || (defer && self.fresh.is_some_and(|fresh| now + MARGIN < fresh.expires))
    }
}

/// How a read may go, by what this process knows of its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// No refresh is due: a plain command, counted here.
    Plain,
    /// A refresh is due, and the deadline far enough off: a plain command,
    /// counted here, and the refresh left for the next flush.
    Defer,
    /// The script.
    Script,
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
    /// The sessions with pending reads or refreshes that the next flush is
    /// to write out, so that it visits those, not every session known (a million
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
    /// Whether a read due a refresh may leave it for the next flush.
    defer: bool,
    /// Shards purged so far: the next to purge, modulo their number.
    purged: AtomicUsize,
    /// This store's mark, random, in the high half of its flush tokens:
    /// a session's hash keeps one token per mark (see `lua/passes.lua`).
    mark: u32,
    /// The low half of the next flush's token, counting up.
    tokens: AtomicU32,
    /// A flush pass (or a query's write-out, see [`write_out_now`]) holds
    /// it for writing; a regenerate, which moves pending reads to the new
    /// id, for reading, so the two never interleave.
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
    /// path); `defer`: whether a read due a refresh may leave it for the
    /// next flush.
    pub(crate) fn new(capacity: usize, defer: bool) -> Reads {
        Reads {
            shards: (0..Reads::SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::default(),
            per_shard: capacity.div_ceil(Reads::SHARDS),
            defer,
            purged: AtomicUsize::new(0),
            // The high half of a random u64.
            mark: (std::hash::RandomState::new().hash_one(0u8) >> 32) as u32,
            tokens: AtomicU32::new(0),
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

    /// How a read of `hash` now may go.
    #[cfg(test)]
    fn plan(&self, hash: &str) -> Plan {
        self.plan_at(hash, Instant::now())
    }

    /// How a read of `hash` at `now` (the caller's clock reading, which it
    /// has anyway) may go.
    pub(crate) fn plan_at(&self, hash: &str, now: Instant) -> Plan {
        if self.per_shard == 0 {
            return Plan::Script;
        }
        let fresh = self
            .shard(hash.as_bytes())
            .known
            .get(hash.as_bytes())
            .and_then(|known| known.fresh);
        match fresh {
            Some(fresh) if now < fresh.until => Plan::Plain,
            Some(fresh) if self.defer && now + MARGIN < fresh.expires => Plan::Defer,
            _ => Plan::Script,
        }
    }

    /// Whether a read of `hash` now may be a plain command with no refresh.
    #[cfg(test)]
    fn fresh(&self, hash: &str) -> bool {
        self.plan(hash) == Plan::Plain
    }

    /// Records that no read of `hash` needs to refresh it for `due` ms from
    /// `sent`, when the request that learnt it went out, and that it has
    /// `left` ms to live from then.
    pub(crate) fn note(&self, hash: &str, sent: Instant, due: u64, left: u64) {
        self.note_at(hash, sent, (due, left), Instant::now());
    }

    /// [`note`](Self::note) at `now`. A session new to a full shard is
    /// left out (its reads take the script) unless walking the shard frees
    /// room; a walk that frees none is not tried again for [`FULL_RETRY`].
    fn note_at(&self, hash: &str, sent: Instant, (due, left): (u64, u64), now: Instant) {
        if self.per_shard == 0 || due == 0 {
            return;
        }
        let fresh = Some(Fresh {
            learnt: sent,
            until: sent + Duration::from_millis(due),
            expires: sent + Duration::from_millis(left),
        });
        let mut shard = self.shard(hash.as_bytes());
        if let Some(known) = shard.known.get_mut(hash.as_bytes()) {
            known.fresh = fresh;
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
            fresh,
            refresh: None,
            pending: 0,
            queued: false,
            doubt: None,
        };
        shard.known.insert(Key::from_slice(hash.as_bytes()), known);
    }

    /// Counts a read of `hash` served with a plain command. It leaves last
    /// activity alone, as a script read inside the granularity does.
    pub(crate) fn count(&self, hash: &str) {
        self.add(hash, 1, None);
    }

    /// Counts a read of `hash` served with a plain command at `at`, under
    /// `policy`, and leaves its refresh to the next flush, which slides the
    /// session as of this read (or of a later one left so).
    pub(crate) fn defer(&self, hash: &str, at: Instant, policy: Policy) {
        self.add(hash, 1, Some(Deferred { at, policy }));
    }

    /// Adds `reads` to what is pending for `hash`, and `refresh` unless a
    /// later one is there.
    fn add(&self, hash: &str, reads: u64, refresh: Option<Deferred>) {
        if reads == 0 && refresh.is_none() {
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
            if let Some(refresh) = refresh {
                if known.refresh.is_none_or(|left| left.at <= refresh.at) {
                    known.refresh = Some(refresh);
                }
            }
            known.queue_in(hash, queued);
        } else {
            let mut new = Known {
                fresh: None,
                refresh,
                pending: reads,
                queued: false,
                doubt: None,
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

    /// Takes every queued session with pending reads or a refresh left,
    /// how many reads and which refresh, as of now. Each must then be
    /// [`settle`](Self::settle)d, forgotten or [`requeue`](Self::requeue)d.
    fn take_pending(&self) -> Vec<Owed> {
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
                if std::mem::take(&mut known.queued) && known.owed() {
                    all.push(known.owing(key));
                }
            }
        }
        all
    }

    /// Whether a query about `hash` must write out what is owed first: a
    /// refresh a read left for the next flush, or reads in doubt (which it
    /// would report twice if they did land).
    pub(crate) fn must_write_out(&self, hash: &str) -> bool {
        self.shard(hash.as_bytes())
            .known
            .get(hash.as_bytes())
            .is_some_and(|known| known.refresh.is_some() || known.doubt.is_some())
    }

    /// What is owed for `hash` alone, if anything: for a query that must see
    /// it written out first. The caller holds the [`gate`](Self::gate) for
    /// writing, as a flush pass does.
    pub(crate) fn owed(&self, hash: &str) -> Option<Owed> {
        let shard = self.shard(hash.as_bytes());
        let known = shard.known.get(hash.as_bytes())?;
        known
            .owed()
            .then(|| known.owing(Key::from_slice(hash.as_bytes())))
    }

    /// Takes out `written` reads of `hash`, now in its counter, and the
    /// refresh `applied`, unless a later read left another; what came
    /// meanwhile stays, queued for the next flush. `again`: the token of the
    /// doubt those reads were, which is settled too. `fresh`: what the
    /// refresh's script said of the session, as [`note`](Self::note) takes
    /// it.
    fn settle(
        &self,
        hash: &[u8],
        (written, again): (u64, Option<u64>),
        applied: Option<Deferred>,
        fresh: Option<(Instant, u64, u64)>,
    ) {
        let mut shard = self.shard(hash);
        let Shard {
            known: entries,
            queued,
            ..
        } = &mut *shard;
        if let Some(known) = entries.get_mut(hash) {
            known.pending = known.pending.saturating_sub(written);
            if again.is_some() && known.doubt.map(|doubt| doubt.token) == again {
                known.doubt = None;
            }
            if applied.is_some() && known.refresh == applied {
                known.refresh = None;
            }
            // Not if forgotten meanwhile (a new lifetime: the next read asks
            // the script), nor over what a later request learnt.
            if let (Some(known_fresh), Some((sent, due, left))) = (known.fresh, fresh) {
                if known_fresh.learnt <= sent {
                    known.fresh = Some(Fresh {
                        learnt: sent,
                        until: sent + Duration::from_millis(due),
                        expires: sent + Duration::from_millis(left),
                    });
                }
            }
            if known.useful(Instant::now(), self.defer) {
                known.queue_in(hash, queued);
            } else {
                entries.remove(hash);
            }
        }
    }

    /// Queues `owed` again for the next flush: taken, and sent under
    /// `token` in a call that got no answer. Its reads are in doubt until
    /// a call answers for them (a doubt already there stays as it was:
    /// this was that doubt, sent again).
    fn requeue(&self, owed: &Owed, token: u64) {
        let hash = owed.hash.as_slice();
        let mut shard = self.shard(hash);
        if let Some(known) = shard.known.get_mut(hash) {
            if known.doubt.is_none() && owed.again.is_none() && owed.reads > 0 {
                known.doubt = Some(Doubt {
                    token,
                    reads: owed.reads,
                });
            }
        }
        shard.queue(hash);
    }

    /// A token for the calls of one write-out that sends something: this
    /// store's mark and a number, unique in this store until the number
    /// wraps, after 2^32 such write-outs (a session whose hash still held
    /// this store's token from that long ago would have reads skipped);
    /// two stores' marks meet by a chance of one in 2^32.
    fn token(&self) -> u64 {
        let number = self.tokens.fetch_add(1, Ordering::Relaxed);
        u64::from(self.mark) << 32 | u64::from(number)
    }

    /// Moves what is pending for `from` to `to`, its new id, and forgets
    /// `from`.
    pub(crate) fn moved(&self, from: &str, to: &str) {
        let Some(old) = self.shard(from.as_bytes()).known.remove(from.as_bytes()) else {
            return;
        };
        // A refresh left for the old id has no use: regenerating slid the new.
        self.add(to, old.pending, None);
        // The hash moved with its token, so a doubt holds for the new id.
        if let Some(doubt) = old.doubt {
            if let Some(new) = self.shard(to.as_bytes()).known.get_mut(to.as_bytes()) {
                new.doubt.get_or_insert(doubt);
            }
        }
    }

    /// Forgets that `hash` needs no refresh (given a new lifetime, or
    /// gone): its next read takes the script. Its pending reads stay.
    pub(crate) fn forget_fresh(&self, hash: &str) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(hash.as_bytes());
        if let Some(known) = shard.known.get_mut(hash.as_bytes()) {
            known.fresh = None;
            if !known.owed() {
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
        let defer = self.defer;
        self.lock(shard)
            .known
            .retain(|_, known| known.useful(now, defer));
    }
}

/// What a flush owes one session: reads to add to its counter, a refresh
/// to apply, or both. No `Debug`: it holds the session's key.
pub(crate) struct Owed {
    hash: Key,
    reads: u64,
    refresh: Option<Deferred>,
    /// Set when `reads` are a doubt sent again: that doubt's token.
    again: Option<u64>,
}

/// Writes out pending read counts and refreshes every [`FLUSH_EVERY`]
/// until the store is gone. What fails to go out stays for the next pass.
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
        reads.purge_next();
        let _gate = reads.gate.write().await;
        let owed = reads.take_pending();
        write_out(&reads, &connection, &scripts, timeout, owed).await;
    }
}

/// Writes out now what is owed: every session's, or `only` this one's. In
/// a task of its own, so that a caller dropped midway cannot leave counts
/// written but not settled, which the next pass would write again. Answers
/// how many sessions' dues stayed owed.
pub(crate) async fn write_out_now(
    reads: Arc<Reads>,
    connection: Connection,
    scripts: Arc<Scripts>,
    timeout: Duration,
    only: Option<String>,
) -> usize {
    let task = tokio::spawn(async move {
        let _gate = reads.gate.write().await;
        let take = || match &only {
            Some(hash) => reads.owed(hash).into_iter().collect(),
            None => reads.take_pending(),
        };
        let owed: Vec<Owed> = take();
        let doubts = owed.iter().any(|owed| owed.again.is_some());
        let stayed = write_out(&reads, &connection, &scripts, timeout, owed).await;
        if !doubts || stayed > 0 {
            return stayed;
        }
        // Reads in doubt went out alone, and those counted after them
        // waited: with the doubts settled, they go now.
        write_out(&reads, &connection, &scripts, timeout, take()).await
    });
    // A pass that panicked wrote out what it may have: call it one left.
    task.await.unwrap_or(1)
}

/// What a flush found of one session.
enum Written {
    /// Gone: so are its counts and refresh, and what it was known for.
    Gone,
    /// Its reads are in its counter.
    Counted,
    /// Its reads too, and its expiry slid: the next refresh falls due in
    /// `due` ms, and it has `left` ms to live.
    Refreshed { due: u64, left: u64 },
}

/// A script call whose outcome is not known: no answer, an error (the
/// scripts answer for each session, so an error is the server's as a
/// whole), or not as many answers as the sessions call for.
struct Unknown;

/// Writes out `owed`, taken from `reads` (whose [`gate`](Reads::gate) the
/// caller holds for writing): counts alone in batches of `add_reads`,
/// refreshes in batches of `refresh_reads` of one policy each. Settles what
/// went out, and queues again what did not. A session whose key refuses
/// its script (see `lua/guard.lua`) answers as gone: its dues are dropped,
/// and it holds up no other. Answers how many sessions' dues stayed owed.
pub(crate) async fn write_out(
    reads: &Reads,
    connection: &Connection,
    scripts: &Scripts,
    timeout: Duration,
    owed: Vec<Owed>,
) -> usize {
    // One script call writes out a batch of sessions. A cluster takes them
    // one by one, more at once: a script's keys share a slot.
    let (batch, concurrent) = if connection.is_cluster() {
        (1, 32)
    } else {
        (BATCH, 4)
    };
    if owed.is_empty() {
        // No call, so no token spent.
        return 0;
    }
    let mut groups: HashMap<Option<Policy>, Vec<Owed>> = HashMap::new();
    for owed in owed {
        let policy = owed.refresh.map(|refresh| refresh.policy);
        groups.entry(policy).or_default().push(owed);
    }
    let token = reads.token();
    let batches = groups.into_iter().flat_map(|(policy, owed)| {
        let mut owed = owed.into_iter();
        std::iter::from_fn(move || {
            let sessions: Vec<Owed> = owed.by_ref().take(batch).collect();
            (!sessions.is_empty()).then_some((policy, sessions))
        })
    });
    let flushes = batches.map(|(policy, sessions)| async move {
        let sent = Instant::now();
        let written = write_batch(connection, scripts, (timeout, token), policy, &sessions).await;
        (sessions, sent, written)
    });
    let mut flushes = stream::iter(flushes).buffer_unordered(concurrent);
    let mut stayed = 0;
    while let Some((sessions, sent, written)) = flushes.next().await {
        match written {
            Ok(written) => settle_batch(reads, sessions, sent, written),
            Err(Unknown) => {
                stayed += sessions.len();
                for owed in &sessions {
                    reads.requeue(owed, token);
                }
            }
        }
    }
    stayed
}

/// Settles each session of a batch by what its script call found.
fn settle_batch(reads: &Reads, sessions: Vec<Owed>, sent: Instant, written: Vec<Written>) {
    for (owed, written) in sessions.into_iter().zip(written) {
        match written {
            Written::Gone => reads.forget_key(&owed.hash),
            Written::Counted => reads.settle(&owed.hash, (owed.reads, owed.again), None, None),
            Written::Refreshed { due, left } => {
                let fresh = Some((sent, due, left));
                reads.settle(&owed.hash, (owed.reads, owed.again), owed.refresh, fresh);
            }
        }
    }
}

/// Sessions that one script call writes out, on a single server: about a
/// quarter of a millisecond of Redis's time for counts alone, about half a
/// millisecond for refreshes (measured at 4.6 and 9 µs a session), short
/// enough not to hold up the requests queued behind it for long.
const BATCH: usize = 64;

/// One script call for `sessions`: their counts alone (`policy` `None`),
/// or their refreshes under `policy` with their counts. Each session's
/// reads go with a token, `token` unless they are a doubt sent again (see
/// `lua/add_reads.lua`).
async fn write_batch(
    connection: &Connection,
    scripts: &Scripts,
    (timeout, token): (Duration, u64),
    policy: Option<Policy>,
    sessions: &[Owed],
) -> Result<Vec<Written>, Unknown> {
    let connection = connection.clone();
    let mut invocation = match policy {
        None => scripts.add_reads.prepare_invoke(),
        Some(policy) => {
            let mut invocation = scripts.refresh_reads.prepare_invoke();
            invocation
                .arg(policy.idle)
                .arg(policy.absolute)
                .arg(policy.granularity);
            invocation
        }
    };
    let now = Instant::now();
    // Made once: every session but a doubt sent again goes under it.
    let call_token = token_arg(token);
    for owed in sessions {
        invocation.key(owed.hash.as_slice()).arg(owed.reads);
        if policy.is_some() {
            // "As of" counts the read's age when the call goes out: the
            // slide lands later by the time the call takes to reach Redis.
            let age = owed.refresh.map_or(0, |refresh| {
                let age = now.saturating_duration_since(refresh.at).as_millis();
                u64::try_from(age).unwrap_or(u64::MAX)
            });
            invocation.arg(age);
        }
        // Its reads go under a doubt's own token, or this call's.
        match owed.again {
            Some(again) => invocation.arg(token_arg(again)),
            None => invocation.arg(call_token.as_str()),
        };
    }
    match policy {
        None => {
            let found: Vec<i64> = invoke(connection, invocation, timeout, sessions.len()).await?;
            Ok(found.into_iter().map(counted).collect())
        }
        Some(_) => {
            // Flat: due and left of the first session, then of the second, ...
            let replies: Vec<i64> =
                invoke(connection, invocation, timeout, 2 * sessions.len()).await?;
            Ok(replies
                .chunks_exact(2)
                .map(|pair| refreshed((pair[0], pair[1])))
                .collect())
        }
    }
}

/// A token as the scripts take it: the store's mark in hex, `:`, and the
/// number, so that a session's hash keeps one token per store (see
/// `lua/passes.lua`). At most 19 bytes: three fit in 64.
fn token_arg(token: u64) -> String {
    format!("{:08x}:{}", token >> 32, token & u64::from(u32::MAX))
}

/// Runs `invocation` with the timeout, for a list of `expected` replies.
async fn invoke<T: redis::FromRedisValue>(
    mut connection: Connection,
    invocation: redis::ScriptInvocation<'_>,
    timeout: Duration,
    expected: usize,
) -> Result<Vec<T>, Unknown> {
    match tokio::time::timeout(timeout, invocation.invoke_async::<Vec<T>>(&mut connection)).await {
        Ok(Ok(replies)) if replies.len() == expected => Ok(replies),
        Ok(Ok(_)) => {
            tracing::debug!("pending reads stay pending: a reply of the wrong length");
            Err(Unknown)
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "pending reads stay pending");
            Err(Unknown)
        }
        Err(_) => Err(Unknown),
    }
}

/// What `add_reads.lua` found of a session: 1 if it counted its reads.
fn counted(found: i64) -> Written {
    match found {
        1 => Written::Counted,
        _ => Written::Gone,
    }
}

/// What `refresh_reads.lua` found of a session: when its next refresh
/// falls due and how long it has to live, or `-1` if it is gone.
fn refreshed((due, left): (i64, i64)) -> Written {
    match (u64::try_from(due), u64::try_from(left)) {
        (Ok(due), Ok(left)) => Written::Refreshed { due, left },
        _ => Written::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 3_600_000;

    /// What [`Reads::take_pending`] takes, as bytes and counts.
    fn pending(reads: &Reads) -> Vec<(Vec<u8>, u64)> {
        let all = reads.take_pending().into_iter();
        all.map(|owed| (owed.hash.as_slice().to_vec(), owed.reads))
            .collect()
    }

    /// A store's tokens share its mark and differ in their number; the
    /// scripts take them as `mark:number`, three within 64 bytes.
    #[test]
    fn a_store_marks_its_tokens() {
        let (one, other) = (Reads::new(10, true), Reads::new(10, true));
        let (first, second) = (one.token(), one.token());
        assert_eq!(first >> 32, second >> 32);
        assert_eq!(second, first + 1);
        assert_ne!(one.token() >> 32, other.token() >> 32, "marks apart");
        let arg = token_arg(first);
        assert_eq!(arg, format!("{:08x}:{}", one.mark, first & 0xffff_ffff));
        assert_eq!(token_arg(u64::MAX), "ffffffff:4294967295");
        assert_eq!(token_arg(7), "00000000:7");
    }

    #[test]
    fn reads_of_a_fresh_session_are_counted_and_settled_in_its_entry() {
        let reads = Reads::new(1_000, true);
        assert!(!reads.fresh("s:a"));
        reads.note("s:a", Instant::now(), MINUTE, HOUR);
        assert!(reads.fresh("s:a"));
        for _ in 0..3 {
            reads.count("s:a");
        }
        assert_eq!(reads.pending("s:a"), 3);
        assert_eq!(pending(&reads), vec![(b"s:a".to_vec(), 3)]);
        // Two went out; the third was counted meanwhile and stays.
        reads.settle(b"s:a", (2, None), None, None);
        assert_eq!(reads.pending("s:a"), 1);
        reads.settle(b"s:a", (1, None), None, None);
        assert_eq!(reads.pending("s:a"), 0);
        assert!(reads.take_pending().is_empty());
        assert!(reads.fresh("s:a"), "settling leaves what is known alone");
    }

    #[test]
    fn a_flush_takes_each_session_with_pending_reads_once_until_it_is_queued_again() {
        let reads = Reads::new(1_000, true);
        reads.note("s:a", Instant::now(), MINUTE, HOUR);
        reads.count("s:a");
        reads.count("s:a");
        reads.count("s:b");
        let taken = reads.take_pending();
        let mut counts: Vec<_> = taken
            .iter()
            .map(|owed| (owed.hash.to_vec(), owed.reads, owed.again))
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            vec![(b"s:a".to_vec(), 2, None), (b"s:b".to_vec(), 1, None)]
        );
        // Taken, and not yet settled: not taken again.
        assert!(pending(&reads).is_empty());
        // A call that got no answer queues it again, once: the reads it
        // sent are in doubt, and go out again alone, under the same token.
        reads.count("s:a");
        let sent = taken.iter().find(|owed| owed.hash.as_slice() == b"s:a");
        let sent = sent.expect("s:a was taken");
        reads.requeue(sent, 7);
        reads.requeue(sent, 7);
        let again = reads.take_pending();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].reads, again[0].again), (2, Some(7)));
        assert_eq!(reads.pending("s:a"), 3, "still reported as pending");
        // Sent again with no answer again: the doubt stays as it was.
        reads.requeue(&again[0], 8);
        let again = reads.take_pending();
        assert_eq!((again[0].reads, again[0].again), (2, Some(7)));
        // Settling the doubt queues the rest, to go under a new token.
        reads.settle(b"s:a", (2, Some(7)), None, None);
        assert_eq!(pending(&reads), vec![(b"s:a".to_vec(), 1)]);
        assert_eq!(reads.owed("s:a").map(|owed| owed.again), Some(None));
        reads.settle(b"s:a", (1, None), None, None);
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
        let reads = Reads::new(1_000, true);
        let long = format!("{}:{}", "p".repeat(INLINE), "id");
        let edge = "e".repeat(INLINE);
        for hash in [long.as_str(), edge.as_str()] {
            reads.note(hash, Instant::now(), MINUTE, HOUR);
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
        reads.settle(long.as_bytes(), (2, None), None, None);
        reads.forget(&edge);
        assert_eq!((reads.pending(&long), reads.pending(&edge)), (0, 0));
        assert!(reads.fresh(&long) && !reads.fresh(&edge));
    }

    #[test]
    fn forgetting_freshness_keeps_the_counts_and_forgetting_drops_them() {
        let reads = Reads::new(1_000, true);
        reads.note("s:a", Instant::now(), MINUTE, HOUR);
        reads.count("s:a");
        reads.forget_fresh("s:a");
        assert!(!reads.fresh("s:a"));
        assert_eq!(reads.pending("s:a"), 1);
        reads.note("s:b", Instant::now(), MINUTE, HOUR);
        reads.count("s:b");
        reads.forget("s:b");
        assert_eq!((reads.fresh("s:b"), reads.pending("s:b")), (false, 0));
        reads.clear();
        assert_eq!(reads.pending("s:a"), 0);
    }

    #[test]
    fn a_regenerated_session_takes_its_pending_reads_along() {
        let reads = Reads::new(1_000, true);
        reads.note("s:old", Instant::now(), MINUTE, HOUR);
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
        let reads = Reads::new(Reads::SHARDS, true);
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
        reads.note("s:a", long_ago, 1, 1);
        reads.count("s:a");
        reads.note(&other, Instant::now(), MINUTE, HOUR);
        assert!(!reads.fresh(&other), "no room: its reads take the script");
        assert_eq!(reads.pending("s:a"), 1);
        for _ in 0..Reads::SHARDS {
            reads.purge_next();
        }
        assert_eq!(reads.pending("s:a"), 1, "a purge keeps counts");
        // Written out, the entry has nothing left to keep: room again.
        reads.settle(b"s:a", (1, None), None, None);
        reads.note(&other, Instant::now(), MINUTE, HOUR);
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
        reads.note_at("s:a", start, (10, 10), start);
        reads.note_at(&other, at(1), (MINUTE, HOUR), at(1));
        assert!(!known(&other), "no room while s:a is fresh");
        // s:a has run out, but the shard was found full a moment ago: no
        // walk, so no room yet.
        reads.note_at(&other, at(20), (MINUTE, HOUR), at(20));
        assert!(!known(&other), "a full shard is not walked again at once");
        assert!(known("s:a"));
        // A retry later the walk drops s:a and makes room.
        let later = at(1) + FULL_RETRY;
        reads.note_at(&other, later, (MINUTE, HOUR), later);
        assert!(known(&other), "walked again after the retry");
        assert!(!known("s:a"));
    }

    /// A policy, as the scripts take it.
    const POLICY: Policy = Policy {
        idle: HOUR,
        absolute: 0,
        granularity: MINUTE,
    };

    #[test]
    fn a_read_due_a_refresh_far_from_the_deadline_leaves_it_for_the_flush() {
        let reads = Reads::new(1_000, true);
        let now = Instant::now();
        let two_minutes_ago = now - Duration::from_secs(120);
        // Due since a minute ago, with an hour to live: left for later.
        reads.note("s:a", two_minutes_ago, MINUTE, HOUR);
        assert_eq!(reads.plan("s:a"), Plan::Defer);
        // Due, and 3 s from its deadline: the read slides it itself.
        reads.note("s:b", two_minutes_ago, MINUTE, 123_000);
        assert_eq!(reads.plan("s:b"), Plan::Script);
        // Nothing known: the script.
        assert_eq!(reads.plan("s:c"), Plan::Script);

        let (first, later) = (now, now + Duration::from_millis(5));
        reads.defer("s:a", later, POLICY);
        // An earlier read's refresh, counted after it, does not replace it.
        reads.defer("s:a", first, POLICY);
        assert!(reads.must_write_out("s:a"));
        assert_eq!(reads.pending("s:a"), 2);
        let taken = reads.take_pending();
        assert_eq!(taken.len(), 1);
        let applied = taken[0].refresh;
        assert_eq!(applied.map(|refresh| refresh.at), Some(later));
        assert_eq!(taken[0].reads, 2);

        // Written out: the script's answer makes it fresh again.
        reads.settle(
            b"s:a",
            (2, None),
            applied,
            Some((Instant::now(), MINUTE, HOUR)),
        );
        assert_eq!(reads.plan("s:a"), Plan::Plain);
        assert!(!reads.must_write_out("s:a"));
        assert!(reads.take_pending().is_empty());
    }

    #[test]
    fn a_refresh_left_while_one_goes_out_stays_for_the_next_flush() {
        let reads = Reads::new(1_000, true);
        let now = Instant::now();
        reads.note("s:a", now - Duration::from_secs(120), MINUTE, HOUR);
        reads.defer("s:a", now, POLICY);
        let taken = reads.take_pending();
        let applied = taken[0].refresh;
        // Another read while the first refresh is on its way.
        let later = now + Duration::from_millis(5);
        reads.defer("s:a", later, POLICY);
        reads.settle(b"s:a", (1, None), applied, Some((now, MINUTE, HOUR)));
        let next = reads.take_pending();
        assert_eq!(next.len(), 1, "the later refresh is queued");
        assert_eq!(next[0].refresh.map(|refresh| refresh.at), Some(later));
        assert_eq!(next[0].reads, 1);
        // A call that got no answer keeps it, queued once.
        reads.requeue(&next[0], 9);
        reads.requeue(&next[0], 9);
        assert_eq!(reads.take_pending().len(), 1);
    }

    #[test]
    fn an_older_answer_never_replaces_what_a_later_one_said() {
        let reads = Reads::new(1_000, true);
        let now = Instant::now();
        let earlier = now - Duration::from_secs(120);
        reads.note("s:a", earlier, MINUTE, HOUR);
        reads.defer("s:a", now, POLICY);
        let taken = reads.take_pending();
        // Meanwhile a new lifetime, and a script read that learnt it.
        reads.forget_fresh("s:a");
        let later = now + Duration::from_millis(5);
        reads.note("s:a", later, 1_000, 5_000);
        // The refresh's answer, sent before that read, changes nothing.
        reads.settle(
            b"s:a",
            (1, None),
            taken[0].refresh,
            Some((now, MINUTE, HOUR)),
        );
        let fresh = reads.shard(b"s:a").known[b"s:a".as_slice()].fresh;
        assert!(fresh.is_some_and(|fresh| fresh.learnt == later));
        assert!(!reads.must_write_out("s:a"));
        // Forgotten and not learnt again: the answer brings nothing back.
        reads.note("s:b", earlier, MINUTE, HOUR);
        reads.defer("s:b", now, POLICY);
        let taken = reads.take_pending();
        reads.forget_fresh("s:b");
        reads.settle(
            b"s:b",
            (1, None),
            taken[0].refresh,
            Some((now, MINUTE, HOUR)),
        );
        assert_eq!(reads.plan("s:b"), Plan::Script);
    }

    #[test]
    fn without_deferral_a_read_due_a_refresh_takes_the_script() {
        let reads = Reads::new(1_000, false);
        reads.note(
            "s:a",
            Instant::now() - Duration::from_secs(120),
            MINUTE,
            HOUR,
        );
        assert_eq!(reads.plan("s:a"), Plan::Script);
        // And a purge drops what only deferral could use.
        for _ in 0..Reads::SHARDS {
            reads.purge_next();
        }
        assert!(!reads.shard(b"s:a").known.contains_key(b"s:a".as_slice()));
        let deferring = Reads::new(1_000, true);
        deferring.note(
            "s:a",
            Instant::now() - Duration::from_secs(120),
            MINUTE,
            HOUR,
        );
        for _ in 0..Reads::SHARDS {
            deferring.purge_next();
        }
        assert_eq!(
            deferring.plan("s:a"),
            Plan::Defer,
            "kept while it may defer"
        );
    }

    #[test]
    fn no_plain_reads_means_nothing_is_known_fresh() {
        let reads = Reads::new(0, true);
        reads.note("s:a", Instant::now(), MINUTE, HOUR);
        assert!(!reads.fresh("s:a"));
    }

    #[test]
    fn debug_shows_how_many_never_which() {
        let reads = Reads::new(1_000, true);
        reads.note("s:secret-id", Instant::now(), MINUTE, HOUR);
        reads.count("s:secret-id");
        reads.note("s:other-id", Instant::now(), MINUTE, HOUR);
        let shown = format!("{reads:?}");
        assert_eq!(shown, "Reads { sessions: 2, with_pending_reads: 1 }");
        assert!(!shown.contains("secret"));
    }
}
