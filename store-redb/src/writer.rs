//! Group commit: one thread owns every write transaction of the store.
//!
//! redb runs one write transaction at a time, and under
//! [`Durability::EveryWrite`] each commit costs a disk sync. So that 64
//! concurrent requests do not queue behind 64 syncs, operations are sent to
//! the writer thread, which takes every operation waiting when it is free
//! (up to `max_batch`), runs them in order in one transaction, commits once,
//! and only then answers each. Under `EveryWrite`, operations that change
//! user data ask for a synced commit; other commits do not wait for the
//! disk, and a synced commit follows within the durability's interval.
//!
//! The same thread runs the expiry sweeper between batches, and applies the
//! refreshes reads left for it (the `refresh` module) every
//! [`PASS_EVERY`](DeferredRefreshes::PASS_EVERY), in transactions of their own, so nothing else ever waits
//! for redb's write lock.
//!
//! If a grouped transaction fails, its operations run again one per
//! transaction, so that one operation that cannot succeed fails alone.

use std::any::Any;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable};
use session_core::{DeferredRefreshes, Error, ReadTally, Result};
use tokio::sync::oneshot;

use crate::config::Durability;
use crate::error::NotApplied;
use crate::layout::{now_ms, TxResult};
use crate::tables::{Tables, WRITE_OUT_CHUNK};

type Answer = Box<dyn Any + Send>;
/// An operation's step; `Fn`, so that a failed group can run it again alone.
type Step = Box<dyn Fn(&mut Tables<'_>, u64) -> TxResult<Answer> + Send>;

/// One operation for the writer thread.
struct Job {
    /// Whether its commit must be synced before it is answered.
    sync: bool,
    step: Step,
    reply: oneshot::Sender<Result<Answer>>,
}

/// The handle the store holds; dropping it stops the thread after a last
/// synced commit.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// How the writer thread runs.
pub(crate) struct Settings {
    pub(crate) durability: Durability,
    pub(crate) max_batch: usize,
    pub(crate) sweep_interval: Duration,
    pub(crate) sweep_batch: usize,
    /// The store's pending reads, folded into rows by the transactions.
    pub(crate) tally: Arc<ReadTally>,
    /// The refreshes reads left for the writer.
    pub(crate) refreshes: Arc<DeferredRefreshes>,
    /// How often it applies them ([`PASS_EVERY`](DeferredRefreshes::PASS_EVERY)
    /// but in tests).
    pub(crate) refresh_every: Duration,
}

impl Settings {
    /// What every transaction of the writer's takes in and settles.
    fn pending(&self) -> Pending<'_> {
        Pending {
            tally: &self.tally,
            refreshes: &self.refreshes,
        }
    }
}

/// The store's state kept in memory until a transaction writes it: reads
/// not yet counted in their rows, and refreshes not yet applied.
#[derive(Clone, Copy)]
struct Pending<'a> {
    tally: &'a ReadTally,
    refreshes: &'a DeferredRefreshes,
}

impl Writer {
    pub(crate) fn start(db: Arc<Database>, settings: Settings) -> std::io::Result<Writer> {
        let (jobs, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-redb-writer".into())
            .spawn(move || run(&db, &receiver, &settings))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `step` in the writer's next transaction and answers once it is
    /// committed (and synced, if `sync`).
    pub(crate) async fn submit<T: Send + 'static>(
        &self,
        sync: bool,
        step: impl Fn(&mut Tables<'_>, u64) -> TxResult<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sync,
            step: Box::new(move |tables, now| Ok(Box::new(step(tables, now)?) as Answer)),
            reply,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(closed());
        }
        let answer = answer.await.map_err(|_| closed())??;
        answer
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| Error::Backend("store-redb: the writer answered the wrong type".into()))
    }
}

fn closed() -> Error {
    Error::Unavailable("store-redb: the writer thread has stopped".into())
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The thread drains what is queued, syncs, and ends.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store-redb: the writer thread panicked");
            }
        }
    }
}

/// The writer thread's loop.
fn run(db: &Database, jobs: &mpsc::Receiver<Job>, settings: &Settings) {
    let pending = settings.pending();
    let mut next_sweep = later(Instant::now(), settings.sweep_interval);
    let mut next_fold = later(Instant::now(), settings.refresh_every);
    let mut sync = SyncState {
        every: settings.durability.sync_every(),
        due: None,
    };
    loop {
        let wake = sync
            .due
            .map_or(next_sweep, |due| due.min(next_sweep))
            .min(next_fold);
        let mut batch = Vec::new();
        let mut open = true;
        match jobs.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(job) => batch.push(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        while batch.len() < settings.max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        // Before the batch, so that a synced batch takes the refreshes to
        // the disk with it.
        if (now >= next_fold || !open)
            && !settings.refreshes.is_empty()
            && apply_refreshes(db, pending)
        {
            sync.after_commit(now, false, true);
        }
        if now >= next_fold {
            next_fold = later(now, settings.refresh_every);
        }
        if !open && write_out_reads(db, pending) {
            sync.after_commit(now, false, true);
        }
        if !open {
            // The store is being dropped: what is left, and a last sync.
            if sync.due.is_some() || !batch.is_empty() {
                commit(db, pending, batch, true);
            }
            return;
        }
        let synced = batch.iter().any(|job| job.sync) || sync.due.is_some_and(|due| now >= due);
        if !batch.is_empty() || synced {
            let committed = commit(db, pending, batch, synced);
            sync.after_commit(now, synced, committed);
        }
        if now >= next_sweep {
            let swept = sweep(db, pending, settings.sweep_batch);
            if swept.is_some_and(|count| count > 0) {
                sync.after_commit(now, false, true);
            }
            // A full sweep means more is due: sweep again at once.
            next_sweep = if swept == Some(settings.sweep_batch) {
                now
            } else {
                later(now, settings.sweep_interval)
            };
        }
    }
}

/// When commits that did not wait for the disk must be synced.
struct SyncState {
    /// The durability's interval; `None` under `Manual`.
    every: Option<Duration>,
    /// When the oldest unsynced commit must be synced; `Some` (maybe far
    /// off, under `Manual`) while there is one.
    due: Option<Instant>,
}

impl SyncState {
    fn after_commit(&mut self, now: Instant, synced: bool, committed: bool) {
        match (synced, committed) {
            (true, true) => self.due = None,
            // A failed sync: try again in a second, not in a busy loop.
            (true, false) => self.due = Some(later(now, Duration::from_secs(1))),
            (false, true) if self.due.is_none() => {
                // Under `Manual`, only `flush` or the drop syncs.
                self.due = Some(later(now, self.every.unwrap_or(Duration::MAX)));
            }
            (false, _) => {}
        }
    }
}

/// `now + after`, or a century on for durations too long to add.
fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Runs `body` in one write transaction and commits it, synced or not;
/// then settles what it took (see [`Taken::settle`](crate::tables::Taken::settle)).
fn transaction<T>(
    db: &Database,
    pending: Pending<'_>,
    synced: bool,
    body: impl FnOnce(&mut Tables<'_>, u64) -> TxResult<T>,
) -> TxResult<T> {
    let mut tx = db.begin_write()?;
    tx.set_durability(if synced {
        redb::Durability::Immediate
    } else {
        redb::Durability::None
    })?;
    let (value, taken) = {
        let mut tables = Tables::open(&tx)?;
        tables.tally = Some(pending.tally);
        tables.refreshes = Some(pending.refreshes);
        let value = body(&mut tables, now_ms())?;
        (value, tables.taken())
    };
    tx.commit()?;
    taken.settle(pending.tally, pending.refreshes);
    Ok(value)
}

/// Applies the refreshes left for the writer, in a transaction of their own
/// (not synced). Returns whether it committed; if not, they stay left, for
/// the next pass.
fn apply_refreshes(db: &Database, pending: Pending<'_>) -> bool {
    match transaction(db, pending, false, |tables, now| {
        tables.apply_refreshes(now)
    }) {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "store-redb: applying deferred refreshes failed; retrying next pass");
            false
        }
    }
}

/// Takes the reads the tally holds into their rows as the store closes,
/// [`WRITE_OUT_CHUNK`] sessions to a transaction (not synced). Returns
/// whether it wrote any.
fn write_out_reads(db: &Database, pending: Pending<'_>) -> bool {
    let mut wrote = false;
    for chunk in pending.tally.sessions().chunks(WRITE_OUT_CHUNK) {
        match transaction(db, pending, false, |tables, now| {
            tables.write_out_reads(chunk, now)
        }) {
            Ok(written) => wrote |= written > 0,
            Err(error) => {
                tracing::error!(%error, sessions = chunk.len(), "store-redb: writing out read counts at close failed; they are lost");
            }
        }
    }
    wrote
}

/// Runs `jobs` in one transaction and answers each. If that fails, runs each
/// in a transaction of its own, so that one operation that cannot succeed
/// (a damaged page, say) fails alone. Returns whether any transaction
/// committed: the others' writes, answered, must be synced all the same
/// (and a synced commit syncs every commit before it).
fn commit(db: &Database, pending: Pending<'_>, jobs: Vec<Job>, synced: bool) -> bool {
    let together = transaction(db, pending, synced, |tables, now| {
        jobs.iter()
            .map(|job| (job.step)(tables, now))
            .collect::<TxResult<Vec<Answer>>>()
    });
    let failed = |error: &Arc<redb::Error>| Error::Backend(Box::new(NotApplied(Arc::clone(error))));
    match together {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                // The caller may have given up (its deadline passed).
                let _ = job.reply.send(Ok(answer));
            }
            true
        }
        Err(error) if jobs.len() > 1 => {
            tracing::warn!(%error, operations = jobs.len(), "store-redb: a grouped commit failed; retrying its operations one by one");
            let mut any = false;
            for job in jobs {
                let alone = transaction(db, pending, synced, |tables, now| (job.step)(tables, now));
                any |= alone.is_ok();
                let _ = job
                    .reply
                    .send(alone.map_err(|error| failed(&Arc::new(error))));
            }
            any
        }
        Err(error) => {
            tracing::error!(%error, "store-redb: a commit failed; its operation is not applied");
            let error = Arc::new(error);
            for job in jobs {
                let _ = job.reply.send(Err(failed(&error)));
            }
            false
        }
    }
}

/// Handles up to `batch` expiry entries that came due, in a transaction of
/// their own (not synced): expired sessions removed, live ones filed again.
/// Returns how many entries it handled, `None` on an error.
fn sweep(db: &Database, pending: Pending<'_>, batch: usize) -> Option<usize> {
    if !anything_expired(db) {
        return Some(0);
    }
    match transaction(db, pending, false, |tables, now| tables.sweep(now, batch)) {
        Ok(count) => Some(count),
        Err(error) => {
            tracing::warn!(%error, "store-redb: expiry sweep failed; retrying next interval");
            None
        }
    }
}

/// Whether the first entry of the expiry index is due, read without taking
/// the write lock, so that an idle store does not commit for nothing.
fn anything_expired(db: &Database) -> bool {
    let first = (|| -> TxResult<Option<u64>> {
        let tx = db.begin_read()?;
        let expiry = match tx.open_table(crate::layout::EXPIRY) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let first = expiry.first()?.map(|(key, _)| key.value().0);
        Ok(first)
    })();
    match first {
        Ok(first) => first.is_some_and(|deadline| deadline <= now_ms()),
        // Let the sweep itself meet (and report) the error.
        Err(_) => true,
    }
}
