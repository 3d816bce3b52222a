//! Batched writes: concurrent `set_many`s share one sled transaction.
//!
//! Under load most of a sled write's cost is per transaction, not per key:
//! the hand-off to a blocking thread, sled's process-wide transaction lock,
//! the log reservation and the wake-ups around them (a profile under the
//! HTTP bench put about two thirds of the time in the kernel's scheduler and
//! sled's log I/O). So one thread owned by the store takes every write
//! waiting in its queue and applies them in order in one transaction, then
//! answers each. A transaction that aborts (one write over the size limits,
//! say) is replayed one write at a time, so each gets its own answer and no
//! write is refused for another's sake.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use session_core::{Change, ExpiryPolicy, Limits, Result, SessionSize, WriteMode, WriteOutcome};
use tokio::sync::oneshot;

use crate::layout::data_key;
use crate::trees::{abort, now_ms, Count, Trees, Tx, TxResult};

/// At most this many writes in one transaction.
const MAX_BATCH: usize = 64;

/// How long the writer holds a batch open for more writes while writes
/// keep coming (see [`gather`]).
const LINGER: Linger = Linger {
    gap: Duration::from_micros(200),
    max: Duration::from_micros(500),
};

/// One `set_many`, waiting for the writer.
pub(crate) struct Write {
    pub(crate) id: String,
    pub(crate) changes: Vec<Change>,
    pub(crate) mode: WriteMode,
    pub(crate) policy: ExpiryPolicy,
    pub(crate) reply: oneshot::Sender<Result<WriteOutcome>>,
}

/// The writer thread and its queue; dropping it stops the thread once the
/// queue is empty.
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Write>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn start(trees: Trees, limits: Limits) -> std::io::Result<Writer> {
        let (queue, writes) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-sled-writer".into())
            .spawn(move || run(&trees, &limits, &writes))?;
        Ok(Writer {
            queue: Mutex::new(Some(queue)),
            thread: Some(thread),
        })
    }

    /// Queues `write`; `false` if the writer has stopped.
    pub(crate) fn send(&self, write: Write) -> bool {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue
            .as_ref()
            .is_some_and(|queue| queue.send(write).is_ok())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(trees: &Trees, limits: &Limits, writes: &mpsc::Receiver<Write>) {
    let mut busy = false;
    while let Ok(first) = writes.recv() {
        let batch = gather(first, writes, busy.then_some(LINGER));
        busy = batch.len() > 1;
        apply_all(trees, limits, batch);
    }
}

/// Applies `batch` in one transaction and answers each write; if that
/// aborts, or panics, one transaction per write.
///
/// A panic (a bug, sled's or ours) must not end the thread that every later
/// write needs, nor fail the writes of the batch that did not cause it: a
/// write that panics alone gets no answer, and its caller an error.
fn apply_all(trees: &Trees, limits: &Limits, batch: Vec<Write>) {
    // A caller that gave up (its deadline passed) still gets its write
    // applied, as with any timed-out write: it may or may not land. The
    // time is read inside the transaction, past sled's lock (see
    // `SledStore::with_live`).
    let together = catch_unwind(AssertUnwindSafe(|| {
        trees.transaction(|tx| {
            let now = now_ms();
            batch
                .iter()
                .map(|write| apply(tx, write, now, limits))
                .collect::<TxResult<Vec<_>>>()
        })
    }));
    if let Ok(Ok(outcomes)) = together {
        for (write, outcome) in batch.into_iter().zip(outcomes) {
            let _ = write.reply.send(Ok(outcome));
        }
        return;
    }
    for write in batch {
        // The time of its own transaction: the replays before it may have
        // waited for sled's lock, and a session that has expired since
        // must stay expired.
        let alone = catch_unwind(AssertUnwindSafe(|| {
            trees.transaction(|tx| apply(tx, &write, now_ms(), limits))
        }));
        match alone {
            Ok(answer) => {
                let _ = write.reply.send(answer);
            }
            Err(_) => {
                tracing::error!("store-sled: a write panicked; it failed, and the writer goes on")
            }
        }
    }
}

/// How long [`gather`] waits for more writes.
#[derive(Clone, Copy, Debug)]
struct Linger {
    /// For each next write, from the last.
    gap: Duration,
    /// In all, from the batch's first write.
    max: Duration,
}

/// The batch that starts with `first`: every write already queued, up to
/// [`MAX_BATCH`]; with `linger`, also those that arrive while it waits,
/// each within `gap` of the last, for at most `max` in all.
///
/// The writer lingers only when its previous batch had more than one
/// write, so writes one at a time are never kept waiting (the first after a
/// busy spell at most one `gap`). Under load a transaction's cost is
/// mostly per transaction (sled rolls its log buffer twice for each one and
/// wakes its I/O threads), so fewer, larger ones leave more of the machine
/// to everything else. Under the HTTP bench's `set:50,get:50`, with a
/// 500 ms flush, waiting up to 500 µs grew batches from about 10 writes to
/// about 25, cut server CPU per request from 30 µs to 27 and raised req/s
/// by about 15 %; the same held with `Durability::EveryWrite`.
fn gather(first: Write, writes: &mpsc::Receiver<Write>, linger: Option<Linger>) -> Vec<Write> {
    let start = Instant::now();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        let next = match linger {
            Some(Linger { gap, max }) => {
                let left = max.saturating_sub(start.elapsed());
                writes.recv_timeout(left.min(gap)).ok()
            }
            None => writes.try_recv().ok(),
        };
        match next {
            Some(write) => batch.push(write),
            None => break,
        }
    }
    batch
}

/// Applies one `set_many` in transaction `tx`: `changes` to the live
/// session (created for [`WriteMode::Create`]), within the limits, or
/// aborts with their refusal.
pub(crate) fn apply(
    tx: &Tx<'_>,
    write: &Write,
    now: u64,
    limits: &Limits,
) -> TxResult<WriteOutcome> {
    set_many(
        tx,
        &write.id,
        &write.changes,
        write.mode,
        &write.policy,
        now,
        limits,
    )
}

/// See [`apply`].
pub(crate) fn set_many(
    tx: &Tx<'_>,
    id: &str,
    changes: &[Change],
    mode: WriteMode,
    policy: &ExpiryPolicy,
    now: u64,
    limits: &Limits,
) -> TxResult<WriteOutcome> {
    let live = match (tx.live(id, now, policy)?, mode) {
        (Some(live), _) => Some(live),
        (None, WriteMode::Create) => Tx::create(now, policy),
        (None, WriteMode::Existing) => return Ok(WriteOutcome::NoSession),
    };
    // A zero absolute lifetime: the session would be born expired.
    let Some(mut live) = live else {
        return Ok(WriteOutcome::Applied);
    };
    // What the changes add and take away, from the values they replace.
    let (mut added, mut removed) = (SessionSize::default(), SessionSize::default());
    for (key, value) in changes {
        let old = match value {
            Some(value) => {
                live.meta.keys.insert(key.clone());
                added.add(key, value.len());
                tx.data.insert(data_key(id, key), value.as_slice())?
            }
            None => {
                live.meta.keys.remove(key);
                tx.data.remove(data_key(id, key))?
            }
        };
        if let Some(old) = old {
            removed.add(key, old.len());
        }
    }
    // Only a session that grows can cross a limit, so only then is its
    // size read: one read per key, which would otherwise be most of a
    // write's cost in the writer thread. The reads see the writes above;
    // aborting the transaction undoes them.
    if added.keys > removed.keys || added.bytes > removed.bytes {
        let after = tx.size(id, &live)?;
        let before = SessionSize {
            keys: (after.keys + removed.keys).saturating_sub(added.keys),
            bytes: (after.bytes + removed.bytes).saturating_sub(added.bytes),
        };
        if let Err(error) = limits.check_session(before, after) {
            return abort(error);
        }
    }
    live.count(Count::Write);
    tx.save(id, &live)?;
    Ok(WriteOutcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(n: usize) -> Write {
        Write {
            id: format!("session-{n}"),
            changes: vec![("k".into(), Some(vec![1]))],
            mode: WriteMode::Create,
            policy: ExpiryPolicy::idle(Duration::from_secs(60)),
            reply: oneshot::channel().0,
        }
    }

    fn ids(batch: &[Write]) -> Vec<&str> {
        batch.iter().map(|write| write.id.as_str()).collect()
    }

    #[test]
    fn without_lingering_a_batch_is_what_is_queued_up_to_the_cap() {
        let (queue, writes) = mpsc::channel();
        for n in 1..MAX_BATCH + 5 {
            queue.send(write(n)).unwrap();
        }
        let first = gather(write(0), &writes, None);
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].id, "session-0");
        assert_eq!(
            first[MAX_BATCH - 1].id,
            format!("session-{}", MAX_BATCH - 1)
        );
        let next = writes.recv().unwrap();
        let rest = gather(next, &writes, None);
        assert_eq!(rest.len(), 5, "the rest waits for the next batch");
        assert_eq!(rest[0].id, format!("session-{MAX_BATCH}"));
    }

    #[test]
    fn lingering_takes_in_a_write_that_arrives_meanwhile() {
        let (queue, writes) = mpsc::channel();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            queue.send(write(1)).unwrap();
            // Dropping the queue ends the wait at once.
        });
        let generous = Linger {
            gap: Duration::from_secs(30),
            max: Duration::from_secs(30),
        };
        let batch = gather(write(0), &writes, Some(generous));
        late.join().unwrap();
        assert_eq!(ids(&batch), ["session-0", "session-1"]);
    }

    #[test]
    fn lingering_stops_at_its_limit() {
        let (queue, writes) = mpsc::channel();
        queue.send(write(1)).unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let _ = queue.send(write(2));
        });
        let spent = Linger {
            gap: Duration::from_secs(30),
            max: Duration::ZERO,
        };
        // Only the limit can end the wait before the late write comes.
        let batch = gather(write(0), &writes, Some(spent));
        assert_eq!(ids(&batch), ["session-0", "session-1"]);
        late.join().unwrap();
    }
}
