//! The five trees of a store and the transactions over them: every
//! operation reads and writes a session's metadata, data, expiry entry and
//! index entries in one sled transaction, so it is atomic, and concurrent
//! operations on one session are serialized by sled's conflict detection and
//! retries, never lost (nor their counts).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use session_core::{
    DeferredRefresh, DeferredRefreshes, Error, ExpiryPolicy, Handle, Limits, PendingReads,
    ReadTally, Result, SessionId, SessionSize,
};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{Transactional, Tree};

use crate::error::backend;
use crate::layout::{
    activity_key, data_key, data_prefix, expiry_key, owner_key, split_activity_key,
    split_expiry_key, split_owner_key, Meta,
};
use crate::refresh;

/// Now, in ms since the Unix epoch: deadlines outlive the process, so they
/// are wall-clock times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How many locks the owners' cap steps are striped over.
const CAP_STRIPES: usize = 64;

/// The trees of one database. Cloning is cheap (sled's trees are `Arc`s).
#[derive(Clone)]
pub(crate) struct Trees {
    pub(crate) meta: Tree,
    pub(crate) data: Tree,
    pub(crate) expiry: Tree,
    pub(crate) owners: Tree,
    pub(crate) activity: Tree,
    /// Reads served without a transaction, not yet in their `meta`.
    pub(crate) tally: Arc<ReadTally>,
    /// Refreshes reads found due and left for the refresher (see `refresh`).
    pub(crate) refreshes: Arc<DeferredRefreshes>,
    /// Transactions running or waiting to (see [`Trees::quiet`]).
    transactions: Arc<AtomicUsize>,
    /// Held through a bind's cap step (its listing of the owner's sessions
    /// and the ends of those beyond the cap), so that two binds of one
    /// owner racing cannot each end the other's session (see
    /// `session_core::beyond_cap`). Striped by the owner's hash, so that a
    /// burst of logins waits (holding the store's permits) only behind
    /// steps of the same stripe.
    pub(crate) cap_steps: Arc<[std::sync::Mutex<()>]>,
}

/// Never the trees' contents: sled's own `Debug` of a tree prints every
/// key and value, session ids and data among them.
impl std::fmt::Debug for Trees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trees")
            .field("transactions", &self.transactions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One transaction counted in [`Trees::quiet`]'s figure while it lives,
/// uncounted however it ends.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(count: &'a AtomicUsize) -> Counted<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The trees inside a transaction.
pub(crate) struct Tx<'a> {
    meta: &'a TransactionalTree,
    pub(crate) data: &'a TransactionalTree,
    expiry: &'a TransactionalTree,
    owners: &'a TransactionalTree,
    activity: &'a TransactionalTree,
    tally: &'a ReadTally,
    /// The refreshes reads left for later, not yet applied.
    refreshes: &'a DeferredRefreshes,
    /// The pending reads this attempt took out of the tally to write into
    /// `meta` (or to drop with their session), put back unless it commits.
    folded: &'a RefCell<Vec<(String, PendingReads)>>,
    /// The sessions this attempt removed, or renamed away, and did not
    /// save again.
    gone: &'a RefCell<Vec<String>>,
    /// The sessions this attempt renamed, old id and new.
    renamed: &'a RefCell<Vec<(String, String)>>,
}

/// The reads a transaction took out of the tally to fold into `meta`:
/// put back when dropped (a failed commit, or a panic in the step) unless
/// the transaction committed.
struct Taken<'a> {
    tally: &'a ReadTally,
    reads: RefCell<Vec<(String, PendingReads)>>,
    /// The sessions the attempt removed or renamed away.
    gone: RefCell<Vec<String>>,
    /// The sessions the attempt renamed, old id and new.
    renamed: RefCell<Vec<(String, String)>>,
}

impl Taken<'_> {
    /// Returns the reads taken so far to the tally.
    fn put_back(&self) {
        for (id, pending) in self.reads.borrow_mut().drain(..) {
            self.tally.add_pending(&id, pending);
        }
        self.gone.borrow_mut().clear();
        self.renamed.borrow_mut().clear();
    }

    /// The transaction committed: the reads are in `meta` now. What the
    /// tally still holds of a session it removed was counted by a read
    /// that raced the removal (it read the trees before the commit, and
    /// counted after the removal took the reads): it goes with the session,
    /// where its entry would stay until the store is flushed. Of a session
    /// it renamed (a regenerate), such reads move to the new id: the
    /// session lives on there.
    fn keep(self) {
        self.reads.borrow_mut().clear();
        let gone = self.gone.borrow();
        for (old, new) in self.renamed.borrow_mut().drain(..) {
            if gone.contains(&old) {
                self.tally.add_pending(&new, self.tally.take(&old));
            }
        }
        drop(gone);
        for id in self.gone.borrow_mut().drain(..) {
            self.tally.forget(&id);
        }
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.put_back();
    }
}

/// The most sessions one transaction removes, in the operations that
/// remove many.
pub(crate) const BATCH: usize = 256;

/// How many sessions' pending reads `flush` writes out under one
/// operation's deadline ([`BATCH`] to a transaction): about a fifth of a
/// second at a million sessions.
pub(crate) const WRITE_OUT_CHUNK: usize = 4096;

/// Where the default tree keeps the layout a database has been upgraded
/// to, so that only the first open after an upgrade reads every session.
const LAYOUT_KEY: &[u8] = b"store-sled/layout";
/// The layout with `owners` and `activity`.
const LAYOUT_OWNED: u8 = 3;

/// The result of a step inside a transaction: `?` works on sled's own errors,
/// and our errors abort the transaction.
pub(crate) type TxResult<T> = ConflictableTransactionResult<T, Error>;

/// What an operation counts, inside its own transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    /// A read (`get`, `get_many`, `get_all`).
    Read,
    /// An applied write.
    Write,
    /// Neither (`extend`, `set_lifetime`, `bind_owner`, `regenerate`).
    Neither,
}

/// A live session found in a transaction, its deadline and last activity
/// already moved.
pub(crate) struct Live {
    pub(crate) meta: Meta,
    /// Where its index entries are, as stored; `None` for a session being
    /// created (or moved to a new id).
    placed: Option<Placed>,
}

/// The parts of a session's metadata that its index entries are keyed by.
struct Placed {
    slot: u64,
    mark: u64,
    owner: Option<String>,
}

impl Placed {
    fn of(meta: &Meta) -> Placed {
        Placed {
            slot: meta.slot,
            mark: meta.mark,
            owner: meta.owner.clone(),
        }
    }
}

impl Live {
    /// Counts `count` on the session.
    pub(crate) fn count(&mut self, count: Count) {
        match count {
            Count::Read => self.meta.reads = self.meta.reads.saturating_add(1),
            Count::Write => self.meta.writes = self.meta.writes.saturating_add(1),
            Count::Neither => {}
        }
    }
}

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<Trees> {
        Ok(Trees {
            meta: db.open_tree("meta")?,
            data: db.open_tree("data")?,
            expiry: db.open_tree("expiry")?,
            owners: db.open_tree("owners")?,
            activity: db.open_tree("activity")?,
            tally: Arc::new(ReadTally::new()),
            refreshes: Arc::new(DeferredRefreshes::new()),
            transactions: Arc::new(AtomicUsize::new(0)),
            cap_steps: (0..CAP_STRIPES).map(|_| Default::default()).collect(),
        })
    }

    /// The lock of `owner`'s cap steps (see [`Trees::cap_steps`]).
    pub(crate) fn cap_step(&self, owner: &str) -> &std::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        owner.hash(&mut hasher);
        // The remainder is below the stripe count, a usize.
        let stripe = hasher.finish() % self.cap_steps.len() as u64;
        &self.cap_steps[usize::try_from(stripe).unwrap_or(0)]
    }

    /// Whether no transaction of the store's is running or waiting for
    /// sled's lock. Every transaction in the process takes sled's one
    /// lock for writing, and while one waits for it (behind a flush syncing
    /// the disk, say) even a plain read waits too; with none, a plain read
    /// waits for nothing, but a transaction can always begin just after the
    /// check.
    pub(crate) fn quiet(&self) -> bool {
        self.transactions.load(Ordering::Acquire) == 0
    }

    /// Brings a database written before owned sessions to the current
    /// layout, once: each session in an older [`Meta`] version is written
    /// again in the current one, with zero counters, no owner, the latest
    /// last activity known and its `activity` entry, one transaction each
    /// (so a crash half way leaves the rest for the next open). Returns how
    /// many it upgraded.
    pub(crate) fn upgrade(&self, db: &sled::Db) -> Result<u64> {
        if db.get(LAYOUT_KEY).map_err(backend)?.as_deref() == Some(&[LAYOUT_OWNED][..]) {
            return Ok(0);
        }
        let mut upgraded = 0;
        for entry in self.meta.iter() {
            let (id, bytes) = entry.map_err(backend)?;
            if !Meta::is_legacy(&bytes) {
                continue;
            }
            let Ok(id) = std::str::from_utf8(&id) else {
                continue;
            };
            let done = self.transaction(|tx| match tx.meta.get(id)? {
                Some(bytes) if Meta::is_legacy(&bytes) => {
                    let meta = match Meta::decode(&bytes) {
                        Ok(meta) => meta,
                        Err(error) => return abort(error),
                    };
                    // Its expiry entry is there already: `save` writes the same key.
                    tx.save(id, &Live { meta, placed: None })?;
                    Ok(true)
                }
                _ => Ok(false),
            });
            match done {
                Ok(done) => upgraded += u64::from(done),
                // Unreadable: the sweeper removes it when it is due.
                Err(error) => {
                    tracing::warn!(%error, "store-sled: a session could not be upgraded")
                }
            }
        }
        db.insert(LAYOUT_KEY, &[LAYOUT_OWNED]).map_err(backend)?;
        Ok(upgraded)
    }

    /// Runs `step` as one transaction over the five trees. sled may run it
    /// more than once when it conflicts with another, so it only computes
    /// from its inputs, and the reads it takes out of the tally to fold
    /// into `meta` go back unless the attempt commits.
    pub(crate) fn transaction<T>(&self, step: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        let _counted = Counted::enter(&self.transactions);
        let taken = Taken {
            tally: &self.tally,
            reads: RefCell::default(),
            gone: RefCell::default(),
            renamed: RefCell::default(),
        };
        let result = (
            &self.meta,
            &self.data,
            &self.expiry,
            &self.owners,
            &self.activity,
        )
            .transaction(|(meta, data, expiry, owners, activity)| {
                // sled runs the step again on a conflict: only the
                // attempt that commits counts.
                taken.put_back();
                let result = step(&Tx {
                    meta,
                    data,
                    expiry,
                    owners,
                    activity,
                    tally: &self.tally,
                    refreshes: &self.refreshes,
                    folded: &taken.reads,
                    gone: &taken.gone,
                    renamed: &taken.renamed,
                });
                // Back while sled still holds its lock, before any other
                // transaction can run without them.
                if result.is_err() {
                    taken.put_back();
                }
                result
            })
            .map_err(|error| match error {
                TransactionError::Abort(error) => error,
                TransactionError::Storage(error) => backend(error),
            });
        if result.is_ok() {
            taken.keep();
        }
        result
    }

    /// These trees, once the refreshes reads left for later are applied:
    /// what a report of deadlines or activity reads, so that it sees every
    /// read before it as it would had each read slid its session itself.
    pub(crate) fn settled(&self) -> &Trees {
        if !self.refreshes.is_empty() {
            self.apply_refreshes();
        }
        self
    }

    /// Slides the sessions whose refresh reads left for later, in order of
    /// id, [`BATCH`] to a transaction, each to the deadline the refresh
    /// gives its metadata as it stands (see [`refresh::deadline_for`]): a
    /// session expired, or slid by an operation since the read, is left as
    /// it is. A batch that fails is applied again one session at a time, and
    /// a refresh that fails alone is dropped, so that one session cannot
    /// hold up the others pass after pass. Returns how many refreshes it
    /// handled.
    pub(crate) fn apply_refreshes(&self) -> usize {
        let pending = self.refreshes.pending();
        for batch in pending.chunks(BATCH) {
            if let Err(error) = self.apply_batch(batch) {
                tracing::warn!(%error, "store-sled: a batch of deferred refreshes failed; applying them one at a time");
                for one in batch {
                    if let Err(error) = self.apply_batch(std::slice::from_ref(one)) {
                        tracing::warn!(%error, "store-sled: a deferred refresh failed; dropped");
                        self.refreshes.settle(&one.0, one.1);
                    }
                }
            }
        }
        pending.len()
    }

    /// Takes the reads the tally holds for `ids` into their sessions'
    /// metadata, [`BATCH`] to a transaction: the count and the last
    /// activity, the deadline as it is (those reads were not due a refresh).
    /// A refresh a read left for one of them since the last pass is applied
    /// with it: the last activity would otherwise reach the refresh's time,
    /// and the pass skip it. For `flush` and a closing store: the tally
    /// lives in memory, and without this a clean restart lost the count of
    /// every read since the session's last write or refresh. A session
    /// gone, expired or whose metadata does not decode takes its count
    /// with it; a batch that fails keeps its counts in the tally (the
    /// transaction puts them back), and the batches after it still go.
    /// Returns how many sessions it wrote, or the first batch's error.
    pub(crate) fn write_out_reads(&self, ids: &[String]) -> Result<usize> {
        let (mut written, mut failed) = (0, None);
        for batch in ids.chunks(BATCH) {
            let result = self.transaction(|tx| {
                // Past sled's lock: see `apply_batch`.
                let now = now_ms();
                let (mut wrote, mut applied) = (0, Vec::new());
                for id in batch {
                    let meta = match tx.meta.get(id.as_str())? {
                        Some(bytes) => Meta::decode(&bytes)
                            .ok()
                            .filter(|meta| refresh::alive(&self.refreshes, id, meta, now)),
                        None => None,
                    };
                    let Some(meta) = meta else {
                        // Gone, expired (the sweeper's) or undecodable: its
                        // count goes, once this commits.
                        tx.fold(id);
                        continue;
                    };
                    let placed = Placed::of(&meta);
                    let mut read = meta.clone();
                    // The count's time before the refresh: a read leaves
                    // its refresh before its count, so this sees the
                    // refresh of any read whose time it takes.
                    let last_read = self.tally.get(id).last_ms;
                    if let Some(left) = self.refreshes.get(id) {
                        if let Some(deadline) = refresh::deadline_for(&left, &meta, now) {
                            read.deadline = deadline;
                            read.fit_slot();
                            read.touch(left.at_ms);
                        }
                        applied.push((id.as_str(), left));
                    }
                    read.touch(last_read);
                    // `save` takes the pending reads in.
                    tx.save(
                        id,
                        &Live {
                            meta: read,
                            placed: Some(placed),
                        },
                    )?;
                    wrote += 1;
                }
                Ok((wrote, applied))
            });
            match result {
                Ok((wrote, applied)) => {
                    for (id, left) in applied {
                        self.refreshes.settle(id, left);
                    }
                    written += wrote;
                }
                // The other batches still go; the first error is the answer.
                Err(error) => {
                    tracing::warn!(%error, sessions = batch.len(), "store-sled: a batch of read counts could not be written out");
                    failed.get_or_insert(error);
                }
            }
        }
        failed.map_or(Ok(written), Err)
    }

    /// Applies `batch` of the refreshes left in one transaction, and takes
    /// them out once it commits.
    fn apply_batch(&self, batch: &[(String, DeferredRefresh)]) -> Result<()> {
        // Now for each batch, inside its transaction: a long pass, or a
        // wait for sled's lock, must not take a session that expired
        // meanwhile for alive.
        let gone = self.transaction(|tx| {
            let now = now_ms();
            let mut gone = Vec::new();
            for (id, left) in batch {
                if !tx.apply_refresh(id, left, now)? {
                    gone.push(id.as_str());
                }
            }
            Ok(gone)
        })?;
        // Gone (destroyed, regenerated, swept) since the read was counted:
        // its count goes with it.
        for id in gone {
            self.tally.forget(id);
        }
        for (id, applied) in batch {
            self.refreshes.settle(id, *applied);
        }
        Ok(())
    }

    /// Removes sessions whose slot (so their deadline) is at or before
    /// `now`, with their index entries, at most `batch` of them, oldest
    /// first, while `go_on()` says so. Returns how many expiry entries it handled.
    pub(crate) fn sweep(&self, now: u64, batch: usize, go_on: &dyn Fn() -> bool) -> Result<usize> {
        let end = expiry_key(now.saturating_add(1), "");
        let mut due = Vec::with_capacity(batch.min(1024));
        for entry in self.expiry.range(..end).keys().take(batch) {
            due.push(entry.map_err(backend)?);
        }
        for key in &due {
            if !go_on() {
                break;
            }
            let Some((slot, id)) = split_expiry_key(key) else {
                // Not ours: drop it so it cannot stall the sweep.
                self.expiry.remove(key).map_err(backend)?;
                continue;
            };
            let swept = self.transaction(|tx| {
                let meta = tx.meta(id)?;
                if let Some((left, _)) = meta.as_ref().and_then(|meta| {
                    self.refreshes
                        .left_for(id, |left| refresh::deadline_for(left, meta, now))
                }) {
                    // Past its stored deadline, but a read slid it and no
                    // pass has applied that yet: slid now, to a later slot.
                    tx.apply_refresh(id, &left, now)?;
                    return Ok(Some(left));
                }
                match meta {
                    Some(meta) if meta.deadline <= now => tx.purge(id, &meta)?,
                    // Moved or gone meanwhile: only this entry is stale.
                    Some(meta) if meta.slot != slot => {
                        tx.expiry.remove(key.as_ref())?;
                    }
                    Some(_) => {}
                    None => {
                        tx.expiry.remove(key.as_ref())?;
                    }
                }
                Ok(None)
            });
            if let Ok(Some(applied)) = &swept {
                self.refreshes.settle(id, *applied);
            }
            if let Err(error) = swept {
                let readable = match self.meta.get(id).map_err(backend)? {
                    Some(bytes) => Meta::decode(&bytes).is_ok(),
                    None => true,
                };
                if readable {
                    // Not the metadata (the disk, say): the session stays,
                    // for the next sweep.
                    return Err(error);
                }
                // Unreadable metadata would stop every later sweep at this
                // entry: remove the session by its id instead.
                tracing::error!(%error, "store-sled: removing a session whose metadata is unreadable");
                self.remove_raw(id)?;
                self.expiry.remove(key).map_err(backend)?;
            }
        }
        Ok(due.len())
    }

    /// Removes every entry of the session `id` without reading its metadata,
    /// outside a transaction: for metadata that does not decode. Its index
    /// entries cannot be found from its metadata, so both indexes are
    /// walked for them: O(sessions), on this corruption path only.
    pub(crate) fn remove_raw(&self, id: &str) -> Result<()> {
        self.tally.forget(id);
        for key in self.data.scan_prefix(data_prefix(id)).keys() {
            self.data.remove(key.map_err(backend)?).map_err(backend)?;
        }
        self.meta.remove(id).map_err(backend)?;
        for index in [&self.owners, &self.activity] {
            for entry in index.iter() {
                let (key, value) = entry.map_err(backend)?;
                if value.as_ref() == id.as_bytes() {
                    index.remove(key).map_err(backend)?;
                }
            }
        }
        Ok(())
    }

    /// Removes every session, up to [`BATCH`] per transaction, so that none
    /// is left half removed, then every index entry no session places;
    /// returns how many
    /// sessions it removed, and how many of them were alive at `now`.
    pub(crate) fn clear(&self, now: u64) -> Result<(u64, u64)> {
        let (mut removed, mut live) = (0, 0);
        let mut ids = self.meta.iter().keys().peekable();
        while ids.peek().is_some() {
            let mut batch = Vec::with_capacity(BATCH);
            for id in ids.by_ref().take(BATCH) {
                let id = id.map_err(backend)?;
                match String::from_utf8(id.to_vec()) {
                    Ok(id) => batch.push(id),
                    Err(_) => {
                        self.meta.remove(&id).map_err(backend)?;
                    }
                }
            }
            // A batch per transaction: one per session made a large store
            // (or a slow disk) take longer than an operation's deadline.
            let purged = self.transaction(|tx| {
                let (mut removed, mut live) = (0, 0);
                for id in &batch {
                    if let Some(meta) = tx.meta(id)? {
                        live += u64::from(tx.alive(id, &meta, now));
                        tx.purge(id, &meta)?;
                        removed += 1;
                    }
                }
                Ok((removed, live))
            });
            match purged {
                Ok((batch_removed, batch_live)) => {
                    removed += batch_removed;
                    live += batch_live;
                }
                // Unreadable metadata somewhere in the batch: one by one.
                Err(_) => {
                    for id in &batch {
                        let purged = self.transaction(|tx| match tx.meta(id)? {
                            Some(meta) => {
                                let alive = tx.alive(id, &meta, now);
                                tx.purge(id, &meta).map(|()| Some(alive))
                            }
                            None => Ok(None),
                        });
                        match purged {
                            Ok(Some(alive)) => {
                                removed += 1;
                                live += u64::from(alive);
                            }
                            Ok(None) => {}
                            Err(_) => {
                                self.remove_raw(id)?;
                                removed += 1;
                            }
                        }
                    }
                }
            }
        }
        self.prune_indexes()?;
        // Expiry entries no session owns any more (an unreadable one's) are
        // the sweeper's: clearing the tree would also drop those of sessions
        // created meanwhile, which then would never be swept.
        Ok((removed, live))
    }

    /// Removes the `owners` and `activity` entries that name no session, or
    /// one whose metadata places it elsewhere, each in a transaction that
    /// checks the session again (so that one created or moved meanwhile
    /// keeps its entry). Returns how many it removed.
    pub(crate) fn prune_indexes(&self) -> Result<u64> {
        let mut pruned = 0;
        for (index, is_owners) in [(&self.owners, true), (&self.activity, false)] {
            for entry in index.iter() {
                let (key, id) = entry.map_err(backend)?;
                // Sound as read outside a transaction: nothing to do (the
                // usual case, without a transaction per entry).
                let sound = std::str::from_utf8(&id).is_ok_and(|id| {
                    let meta = self.meta.get(id).ok().flatten();
                    let meta = meta.and_then(|bytes| Meta::decode(&bytes).ok());
                    meta.is_some_and(|meta| places(&meta, id, &key, is_owners))
                });
                if sound {
                    continue;
                }
                let removed = self.transaction(|tx| {
                    let tree = if is_owners { tx.owners } else { tx.activity };
                    if tree.get(&key)?.as_deref() != Some(id.as_ref()) {
                        return Ok(false);
                    }
                    let sound = match std::str::from_utf8(&id) {
                        Ok(id) => {
                            let meta = tx.meta.get(id)?.and_then(|b| Meta::decode(&b).ok());
                            meta.is_some_and(|meta| places(&meta, id, &key, is_owners))
                        }
                        Err(_) => false,
                    };
                    if !sound {
                        tree.remove(key.as_ref())?;
                    }
                    Ok(!sound)
                })?;
                pruned += u64::from(removed);
            }
        }
        Ok(pruned)
    }

    /// Checks that the trees agree: every session has exactly one expiry
    /// entry, at its slot (within the grain after its deadline), one activity entry, at its last activity,
    /// and, if it has an owner, one owner entry; every index and data entry
    /// belongs to a session that places or lists it. Returns the problems
    /// found, naming sessions by the few characters of their id that
    /// session-core shows, and never showing an owner, a user key or data.
    pub(crate) fn verify(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut metas = std::collections::HashMap::new();
        let mut listed = std::collections::HashSet::new();
        for entry in self.meta.iter() {
            let (id, bytes) = entry.map_err(backend)?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let meta = match Meta::decode(&bytes) {
                Ok(meta) => meta,
                Err(error) => {
                    problems.push(format!("session {}: {error}", short(&id)));
                    continue;
                }
            };
            let handle = Handle::of_stored(&id);
            let handle = handle.as_str();
            if !self
                .expiry
                .contains_key(expiry_key(meta.slot, &id))
                .map_err(backend)?
            {
                problems.push(format!(
                    "session {}: no expiry entry at its slot",
                    short(&id)
                ));
            }
            if !meta.slot_in_grain() {
                problems.push(format!(
                    "session {}: its slot is not within the grain after its deadline",
                    short(&id)
                ));
            }
            let indexed = |tree: &Tree, key: Vec<u8>| -> Result<bool> {
                Ok(tree.get(key).map_err(backend)?.as_deref() == Some(id.as_bytes()))
            };
            if !indexed(&self.activity, activity_key(meta.mark, handle))? {
                problems.push(format!(
                    "session {}: no activity entry at its mark",
                    short(&id)
                ));
            }
            if !meta.mark_in_grain() {
                problems.push(format!(
                    "session {}: its mark is not within the grain of its last activity",
                    short(&id)
                ));
            }
            if let Some(owner) = &meta.owner {
                if !indexed(&self.owners, owner_key(owner, handle))? {
                    problems.push(format!("session {}: no entry for its owner", short(&id)));
                }
            }
            if meta.last < meta.created {
                problems.push(format!(
                    "session {}: last activity before its creation",
                    short(&id)
                ));
            }
            for key in &meta.keys {
                let data = data_key(&id, key);
                if !self.data.contains_key(&data).map_err(backend)? {
                    problems.push(format!("session {}: a listed key is missing", short(&id)));
                }
                listed.insert(data);
            }
            metas.insert(id, meta);
        }
        for key in self.expiry.iter().keys() {
            let key = key.map_err(backend)?;
            match split_expiry_key(&key) {
                Some((slot, id)) if metas.get(id).map(|m| m.slot) == Some(slot) => {}
                Some((slot, id)) => {
                    problems.push(format!("stray expiry entry at {slot} for {}", short(id)))
                }
                None => problems.push("an expiry key that does not parse".into()),
            }
        }
        for (tree, is_owners, what) in [
            (&self.owners, true, "owner"),
            (&self.activity, false, "activity"),
        ] {
            for entry in tree.iter() {
                let (key, id) = entry.map_err(backend)?;
                let id = String::from_utf8_lossy(&id);
                let sound = metas
                    .get(id.as_ref())
                    .is_some_and(|meta| places(meta, &id, &key, is_owners));
                if !sound {
                    problems.push(format!("stray {what} entry for {}", short(&id)));
                }
            }
        }
        for key in self.data.iter().keys() {
            let key = key.map_err(backend)?;
            if !listed.contains(key.as_ref()) {
                let id = crate::layout::split_data_key(&key).map_or("?", |(id, _)| id);
                problems.push(format!("stray data entry of {}", short(id)));
            }
        }
        Ok(problems)
    }
}

/// Whether `meta`, the metadata of session `id`, places it at `key` of
/// `owners` (if `is_owners`) or of `activity`.
fn places(meta: &Meta, id: &str, key: &[u8], is_owners: bool) -> bool {
    let handle = Handle::of_stored(id);
    if is_owners {
        split_owner_key(key)
            .is_some_and(|(owner, h)| h == handle.as_str() && meta.owner.as_deref() == Some(owner))
    } else {
        split_activity_key(key).is_some_and(|(mark, h)| h == handle.as_str() && meta.mark == mark)
    }
}

/// An id as session-core shows it (a few characters of the token, too few
/// to use as a credential), or `?` for one that does not parse.
pub(crate) fn short(id: &str) -> String {
    SessionId::from_stored(id).map_or_else(|| "?".to_string(), |id| id.to_string())
}

pub(crate) fn abort<T>(error: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

impl Tx<'_> {
    /// The stored metadata of `id`, expired or not.
    pub(crate) fn meta(&self, id: &str) -> TxResult<Option<Meta>> {
        match self.meta.get(id)? {
            None => Ok(None),
            Some(bytes) => match Meta::decode(&bytes) {
                Ok(meta) => Ok(Some(meta)),
                Err(error) => abort(error),
            },
        }
    }

    /// The session `id` if it is alive at `now` under `policy`, with its
    /// deadline slid to what `policy` gives now and its last activity now
    /// (not yet saved). An expired session is removed on the spot and
    /// reported absent.
    pub(crate) fn live(&self, id: &str, now: u64, policy: &ExpiryPolicy) -> TxResult<Option<Live>> {
        let Some(mut meta) = self.meta(id)? else {
            return Ok(None);
        };
        let deadline = self
            .alive(id, &meta, now)
            .then(|| meta.policy(policy).deadline_ms(meta.created, now))
            .flatten();
        match deadline {
            Some(deadline) => {
                let placed = Placed::of(&meta);
                meta.deadline = deadline;
                meta.fit_slot();
                // Never backwards, should the wall clock be.
                meta.touch(now);
                Ok(Some(Live {
                    meta,
                    placed: Some(placed),
                }))
            }
            None => {
                self.purge(id, &meta)?;
                Ok(None)
            }
        }
    }

    /// Slides session `id` as the read that left `left` would have by
    /// writing (see [`Trees::apply_refreshes`]); `false` if the session is
    /// gone.
    fn apply_refresh(&self, id: &str, left: &DeferredRefresh, now: u64) -> TxResult<bool> {
        let Some(mut meta) = self.meta(id)? else {
            return Ok(false);
        };
        if let Some(deadline) = refresh::deadline_for(left, &meta, now) {
            let placed = Placed::of(&meta);
            meta.deadline = deadline;
            meta.fit_slot();
            meta.touch(left.at_ms);
            self.save(
                id,
                &Live {
                    meta,
                    placed: Some(placed),
                },
            )?;
        }
        Ok(true)
    }

    /// A new session's metadata, created `now`; `None` if `policy` gives it no
    /// time at all (a zero absolute lifetime).
    pub(crate) fn create(now: u64, policy: &ExpiryPolicy) -> Option<Live> {
        let mut meta = Meta::new(now);
        meta.deadline = policy.deadline_ms(now, now)?;
        meta.fit_slot();
        Some(Live { meta, placed: None })
    }

    /// The reads of `id` the tally holds, taken out of it for this
    /// transaction to write into the record (put back if it does not
    /// commit).
    ///
    /// Taken out here, not once the transaction has committed: sled runs
    /// the step under its process-wide lock, so no other transaction can
    /// see the reads both in the record and in the tally, and fold them in
    /// twice. A session saved twice in one transaction (batched writes)
    /// finds them taken the second time: they are in the record already.
    fn fold(&self, id: &str) -> PendingReads {
        let pending = self.tally.take(id);
        if pending.reads > 0 {
            self.folded.borrow_mut().push((id.to_owned(), pending));
        }
        pending
    }

    /// Writes `live`'s metadata, with the reads still pending in the tally,
    /// and moves its index entries to match it.
    pub(crate) fn save(&self, id: &str, live: &Live) -> TxResult<()> {
        let pending = self.fold(id);
        // Removed earlier in this transaction and made again (a create
        // after a destroy): live once it commits.
        self.gone.borrow_mut().retain(|gone| gone != id);
        // Fitted already where the deadline slid (`live`), not where a
        // caller set it.
        let slot = live.meta.fitted_slot();
        let changed;
        let new = if pending.reads == 0 && slot == live.meta.slot {
            &live.meta
        } else {
            changed = Meta {
                reads: live.meta.reads + pending.reads,
                slot,
                ..live.meta.clone()
            };
            &changed
        };
        let old = live.placed.as_ref();
        if old.map(|old| old.slot) != Some(new.slot) {
            if let Some(old) = old {
                self.expiry.remove(expiry_key(old.slot, id))?;
            }
            self.expiry.insert(expiry_key(new.slot, id), &[])?;
        }
        let old_owner = old.and_then(|old| old.owner.as_deref());
        let owner_moved = old.is_none() || old_owner != new.owner.as_deref();
        let mark_moved = old.map(|old| old.mark) != Some(new.mark);
        // The handle (a hash) only when an index keyed by it moves.
        if owner_moved || mark_moved {
            let handle = Handle::of_stored(id);
            let handle = handle.as_str();
            if mark_moved {
                if let Some(old) = old {
                    self.activity.remove(activity_key(old.mark, handle))?;
                }
                self.activity.insert(activity_key(new.mark, handle), id)?;
            }
            if owner_moved {
                if let Some(owner) = old_owner {
                    self.owners.remove(owner_key(owner, handle))?;
                }
                if let Some(owner) = new.owner.as_deref() {
                    self.owners.insert(owner_key(owner, handle), id)?;
                }
            }
        }
        self.meta.insert(id, new.encode())?;
        Ok(())
    }

    /// Binds the live session `id` to `owner`, sliding (not counting) it.
    /// Returns whether it was alive.
    pub(crate) fn bind(
        &self,
        id: &str,
        owner: &str,
        now: u64,
        policy: &ExpiryPolicy,
    ) -> TxResult<bool> {
        let Some(mut live) = self.live(id, now, policy)? else {
            return Ok(false);
        };
        live.meta.owner = Some(owner.to_owned());
        self.save(id, &live)?;
        Ok(true)
    }

    /// [`remove_owned`](Self::remove_owned), unless the session is alive
    /// at `now` (see [`refresh::alive`]): whether it removed it.
    pub(crate) fn remove_owned_if_expired(
        &self,
        id: &str,
        owner: &str,
        key: &[u8],
        now: u64,
    ) -> TxResult<bool> {
        if let Some(meta) = self.meta(id)? {
            if meta.owner.as_deref() == Some(owner) && self.alive(id, &meta, now) {
                return Ok(false);
            }
        }
        self.remove_owned(id, owner, key, now).map(|_| true)
    }

    /// Whether session `id`, whose metadata is `meta`, is alive at `now`,
    /// counting a refresh a read left for it that no pass has applied yet
    /// (see [`refresh::deadline_for`]).
    pub(crate) fn alive(&self, id: &str, meta: &Meta, now: u64) -> bool {
        refresh::alive(self.refreshes, id, meta, now)
    }

    /// Removes the session `id` that the `owners` entry `key` of `owner`
    /// names, if it still is that owner's: `Some(alive at now)`. Otherwise
    /// the entry is stale (only a damaged database has such) and goes:
    /// `None`.
    pub(crate) fn remove_owned(
        &self,
        id: &str,
        owner: &str,
        key: &[u8],
        now: u64,
    ) -> TxResult<Option<bool>> {
        match self.meta(id)? {
            Some(meta) if meta.owner.as_deref() == Some(owner) => {
                let alive = self.alive(id, &meta, now);
                self.purge(id, &meta)?;
                Ok(Some(alive))
            }
            _ => {
                if self.owners.get(key)?.as_deref() == Some(id.as_bytes()) {
                    self.owners.remove(key)?;
                }
                Ok(None)
            }
        }
    }

    /// Removes the session of `owner` with `handle`; returns whether it was
    /// alive at `now` (an expired one goes too, and reports `false`).
    pub(crate) fn revoke(&self, owner: &str, handle: &Handle, now: u64) -> TxResult<bool> {
        let key = owner_key(owner, handle.as_str());
        let Some(id) = self.owners.get(&key)? else {
            return Ok(false);
        };
        let Ok(id) = std::str::from_utf8(&id) else {
            self.owners.remove(key)?;
            return Ok(false);
        };
        Ok(self.remove_owned(id, owner, &key, now)? == Some(true))
    }

    /// Moves the live session `old` to the fresh id `new`: its data, its
    /// creation time, (slid) deadline and last activity, its counters, own
    /// idle timeout and owner; the indexes then name `new`.
    pub(crate) fn rename(&self, old: &str, new: &str, live: Live) -> TxResult<()> {
        if old == new {
            return self.save(new, &live);
        }
        // `new` is freshly minted; should it exist anyway, it is replaced whole.
        if let Some(existing) = self.meta(new)? {
            self.purge(new, &existing)?;
        }
        for key in &live.meta.keys {
            if let Some(value) = self.data.remove(data_key(old, key))? {
                self.data.insert(data_key(new, key), value)?;
            }
        }
        if let Some(placed) = &live.placed {
            self.unindex(old, placed)?;
        }
        let mut meta = live.meta;
        meta.reads += self.fold(old).reads;
        self.gone.borrow_mut().push(old.to_owned());
        self.renamed
            .borrow_mut()
            .push((old.to_owned(), new.to_owned()));
        let moved = Live { meta, placed: None };
        self.save(new, &moved)
    }

    /// Removes the metadata of session `id` and its entries in every
    /// index, as `placed` says they are.
    fn unindex(&self, id: &str, placed: &Placed) -> TxResult<()> {
        let handle = Handle::of_stored(id);
        self.meta.remove(id)?;
        self.expiry.remove(expiry_key(placed.slot, id))?;
        self.activity
            .remove(activity_key(placed.mark, handle.as_str()))?;
        if let Some(owner) = placed.owner.as_deref() {
            self.owners.remove(owner_key(owner, handle.as_str()))?;
        }
        Ok(())
    }

    /// Removes everything of the session `id`, its index entries included.
    pub(crate) fn purge(&self, id: &str, meta: &Meta) -> TxResult<()> {
        // Its pending reads go with it.
        self.fold(id);
        self.gone.borrow_mut().push(id.to_owned());
        for key in &meta.keys {
            self.data.remove(data_key(id, key))?;
        }
        self.unindex(id, &Placed::of(meta))
    }

    /// What the live session holds, as `Limits::check_session` counts it
    /// (one read per key: sled transactions cannot scan).
    pub(crate) fn size(&self, id: &str, live: &Live) -> TxResult<SessionSize> {
        let mut size = SessionSize::default();
        for key in &live.meta.keys {
            let len = self.data.get(data_key(id, key))?.map_or(0, |v| v.len());
            size.add(key, len);
        }
        Ok(size)
    }

    /// Sets `key` of the session `id` to `value`, replacing a value of
    /// `old_len` bytes if there is one; aborts the transaction if `limits`
    /// refuse the value or what the session would hold.
    pub(crate) fn put_within(
        &self,
        id: &str,
        live: &mut Live,
        key: &str,
        value: &[u8],
        old_len: Option<usize>,
        limits: &Limits,
    ) -> TxResult<()> {
        // Only a new key or a longer value can cross a limit: skip the
        // session's size otherwise.
        if old_len.is_none_or(|old| value.len() > old) {
            if let Err(error) = limits.check_value(value) {
                return abort(error);
            }
            let before = self.size(id, live)?;
            let mut after = before;
            if let Some(old) = old_len {
                after.remove(key, old);
            }
            after.add(key, value.len());
            if let Err(error) = limits.check_session(before, after) {
                return abort(error);
            }
        }
        live.meta.keys.insert(key.to_owned());
        self.data.insert(data_key(id, key), value)?;
        Ok(())
    }

    /// The value of `key` in a live session.
    pub(crate) fn value(&self, id: &str, live: &Live, key: &str) -> TxResult<Option<Vec<u8>>> {
        if !live.meta.keys.contains(key) {
            return Ok(None);
        }
        Ok(self.data.get(data_key(id, key))?.map(|v| v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trees() -> Trees {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Trees::open(&db).unwrap()
    }

    /// A live session of `owner` with one key, saved as the store saves one.
    fn session(trees: &Trees, owner: Option<&str>) -> String {
        let id = SessionId::generate("t:").as_str().to_owned();
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
        trees
            .transaction(|tx| {
                let mut live = Tx::create(now_ms(), &policy).unwrap();
                live.meta.owner = owner.map(str::to_owned);
                live.meta.keys.insert("card-key".into());
                tx.data.insert(data_key(&id, "card-key"), &b"x"[..])?;
                tx.save(&id, &live)
            })
            .unwrap();
        id
    }

    /// A refresh a read left slides the session as the read would have by
    /// writing: not at all after a later operation, by the session's own
    /// idle timeout where one was set after the read (a shorter lifetime
    /// stays short), with its index entries in step; a session gone
    /// meanwhile takes its pending reads with it.
    #[test]
    fn a_left_refresh_slides_the_session_as_it_stands() {
        let trees = trees();
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(3600));
        let t0 = now_ms();
        let read_at = t0 + 10_000;
        for id in ["read", "written", "shortened", "gone"] {
            let live = Tx::create(t0, &policy).unwrap();
            trees.transaction(|tx| tx.save(id, &live)).unwrap();
            let left = DeferredRefresh {
                at_ms: read_at,
                policy,
            };
            trees.refreshes.defer(id, left);
            trees.tally.add(id, read_at);
        }
        // After the read, a write with a deadline of its own.
        trees
            .transaction(|tx| {
                let Some(mut live) = tx.live("written", read_at + 10_000, &policy)? else {
                    return abort(Error::Unavailable("gone".into()));
                };
                live.meta.deadline = t0 + 60_000;
                tx.save("written", &live)
            })
            .unwrap();
        // Before the read (it had not seen it yet), a lifetime of a minute.
        trees
            .transaction(|tx| {
                let Some(mut live) = tx.live("shortened", read_at - 1, &policy)? else {
                    return abort(Error::Unavailable("gone".into()));
                };
                live.meta.idle = Some(60_000);
                live.meta.deadline = read_at - 1 + 60_000;
                tx.save("shortened", &live)
            })
            .unwrap();
        trees
            .transaction(|tx| match tx.meta("gone")? {
                Some(meta) => tx.purge("gone", &meta),
                None => Ok(()),
            })
            .unwrap();
        trees.tally.add("gone", read_at + 1);

        assert_eq!(trees.apply_refreshes(), 4);
        let meta = |id: &str| Meta::decode(&trees.meta.get(id).unwrap().unwrap()).unwrap();
        let read = meta("read");
        assert_eq!(
            (read.deadline, read.last, read.reads),
            (read_at + 3_600_000, read_at, 1)
        );
        let written = meta("written");
        assert_eq!(written.deadline, t0 + 60_000, "the read undid a write");
        let shortened = meta("shortened");
        assert_eq!(
            shortened.deadline,
            read_at + 60_000,
            "the read undid a shorter lifetime"
        );
        assert_eq!(
            trees.tally.get("gone").reads,
            0,
            "a gone session kept its reads"
        );
        assert!(trees.refreshes.is_empty());
        let problems = trees.verify().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// A read counted after a removal took its session's reads (it read
    /// the trees before the removal committed) goes with the session once
    /// a destroy commits, and moves to the new id once a regenerate does:
    /// the tally keeps nothing of the old id, which no transaction would
    /// touch again. A session destroyed and made again in one transaction
    /// keeps such a read: it is live.
    #[test]
    fn reads_racing_a_removal_go_with_the_session() {
        let trees = trees();
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
        for (case, kept) in [("destroyed", 0), ("renamed", 0), ("made again", 1)] {
            let id = session(&trees, None);
            trees.tally.add(&id, now_ms());
            let new = format!("{id}-new");
            trees
                .transaction(|tx| {
                    if case == "renamed" {
                        if let Some(live) = tx.live(&id, now_ms(), &policy)? {
                            tx.rename(&id, &new, live)?;
                        }
                    } else if let Some(meta) = tx.meta(&id)? {
                        tx.purge(&id, &meta)?;
                    }
                    // The racing read.
                    trees.tally.add(&id, now_ms());
                    if case == "made again" {
                        tx.save(&id, &Tx::create(now_ms(), &policy).expect("time"))?;
                        // Counted after the save: not in the new record.
                        trees.tally.add(&id, now_ms());
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(trees.tally.get(&id).reads, kept, "{case}");
            if case == "renamed" {
                let meta = trees.transaction(|tx| tx.meta(&new)).unwrap();
                assert_eq!(meta.expect("renamed").reads, 1, "the read before");
                assert_eq!(trees.tally.get(&new).reads, 1, "the racing read");
            }
        }
    }

    /// The reads a transaction takes out of the tally to fold go back if
    /// it does not commit, and are counted once if it does.
    #[test]
    fn folded_reads_go_back_unless_the_transaction_commits() {
        let trees = trees();
        let id = session(&trees, None);
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
        trees.tally.add(&id, now_ms());
        trees.tally.add(&id, now_ms());
        let save = |fail: bool| {
            trees.transaction(|tx| {
                // Saved twice in one transaction, as batched writes may.
                for _ in 0..2 {
                    let Some(live) = tx.live(&id, now_ms(), &policy)? else {
                        return abort(Error::Unavailable("gone".into()));
                    };
                    tx.save(&id, &live)?;
                }
                if fail {
                    return abort(Error::Unavailable("refused".into()));
                }
                Ok(())
            })
        };
        assert!(save(true).is_err());
        assert_eq!(trees.tally.get(&id).reads, 2, "an abort lost reads");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            trees.transaction(|tx| -> TxResult<()> {
                if let Some(live) = tx.live(&id, now_ms(), &policy)? {
                    tx.save(&id, &live)?;
                }
                panic!("a bug in a step");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(trees.tally.get(&id).reads, 2, "a panic lost reads");
        save(false).unwrap();
        assert_eq!(trees.tally.get(&id).reads, 0);
        let meta = Meta::decode(&trees.meta.get(&id).unwrap().unwrap()).unwrap();
        assert_eq!(meta.reads, 2);
    }

    #[test]
    fn verify_reports_trees_that_disagree() {
        let trees = trees();
        assert!(trees.verify().unwrap().is_empty());
        let id = session(&trees, None);
        assert!(trees.verify().unwrap().is_empty());
        let meta = Meta::decode(&trees.meta.get(&id).unwrap().unwrap()).unwrap();
        trees.expiry.remove(expiry_key(meta.slot, &id)).unwrap();
        trees.expiry.insert(expiry_key(3, &id), &[]).unwrap();
        trees.data.remove(data_key(&id, "card-key")).unwrap();
        trees
            .data
            .insert(data_key("s2", "orphan"), &b"x"[..])
            .unwrap();
        let problems = trees.verify().unwrap();
        // No entry at the slot, a stray one at 3, a listed key missing,
        // orphaned data of s2.
        assert_eq!(problems.len(), 4, "{problems:?}");
        for problem in &problems {
            assert!(
                !problem.contains("orphan") && !problem.contains("card-key"),
                "{problem}"
            );
            assert!(!problem.contains(&id[id.len() - 20..]), "{problem}");
        }
    }

    /// The session's expiry entry stays while its deadline slides within
    /// the grain, and moves (one entry, at the new slot) once it passes.
    #[test]
    fn a_write_moves_the_expiry_entry_only_past_its_slot() {
        let trees = trees();
        let id = session(&trees, None);
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
        let meta = || Meta::decode(&trees.meta.get(&id).unwrap().unwrap()).unwrap();
        let entries = || -> Vec<Vec<u8>> {
            trees
                .expiry
                .iter()
                .keys()
                .map(|k| k.unwrap().to_vec())
                .collect()
        };
        let slot = meta().slot;
        let write_at = |now: u64| {
            trees
                .transaction(|tx| {
                    let live = tx.live(&id, now, &policy)?.unwrap();
                    tx.save(&id, &live)
                })
                .unwrap();
        };
        // Deadlines inside the grain before the slot fit it: the entry stays.
        for before in [500, 0] {
            write_at(slot - 60_000 - before);
            assert_eq!((meta().deadline, meta().slot), (slot - before, slot));
            assert_eq!(entries(), vec![expiry_key(slot, &id)]);
        }
        // A millisecond later, it is past the slot.
        write_at(slot - 60_000 + 1);
        let moved = meta();
        assert_eq!(moved.deadline, slot + 1);
        assert!(moved.slot > slot && moved.slot_in_grain(), "{moved:?}");
        assert_eq!(entries(), vec![expiry_key(moved.slot, &id)]);
        assert!(trees.verify().unwrap().is_empty());
    }

    #[test]
    fn verify_reports_index_entries_that_disagree() {
        let trees = trees();
        let ada = session(&trees, Some("ada-secret-owner"));
        let plain = session(&trees, None);
        assert!(trees.verify().unwrap().is_empty(), "{:?}", trees.verify());

        let (ada_handle, plain_handle) = (Handle::of_stored(&ada), Handle::of_stored(&plain));
        // Ada's owner entry gone, an owner entry for a session with no
        // owner, an activity entry at the wrong time, another naming a
        // session that does not exist.
        trees
            .owners
            .remove(owner_key("ada-secret-owner", ada_handle.as_str()))
            .unwrap();
        trees
            .owners
            .insert(
                owner_key("ada-secret-owner", plain_handle.as_str()),
                plain.as_str(),
            )
            .unwrap();
        let last = Meta::decode(&trees.meta.get(&plain).unwrap().unwrap())
            .unwrap()
            .mark;
        trees
            .activity
            .remove(activity_key(last, plain_handle.as_str()))
            .unwrap();
        trees
            .activity
            .insert(
                activity_key(last + 1, plain_handle.as_str()),
                plain.as_str(),
            )
            .unwrap();
        let ghost = SessionId::generate("t:");
        trees
            .activity
            .insert(
                activity_key(last, Handle::of(&ghost).as_str()),
                ghost.as_str(),
            )
            .unwrap();
        let problems = trees.verify().unwrap();
        // Ada: no owner entry. Plain: a stray owner entry, a stray activity
        // entry and none at its time. The ghost's entry.
        assert_eq!(problems.len(), 5, "{problems:?}");
        for problem in &problems {
            assert!(
                !problem.contains("ada-secret"),
                "owners stay out: {problem}"
            );
            for id in [ada.as_str(), plain.as_str(), ghost.as_str()] {
                assert!(
                    !problem.contains(&id[id.len() - 20..]),
                    "ids stay out: {problem}"
                );
            }
        }

        // Pruning removes what no session places, and nothing else; the
        // missing entries are a session's to write again (any operation).
        assert_eq!(trees.prune_indexes().unwrap(), 3);
        assert_eq!(trees.verify().unwrap().len(), 2, "the two missing entries");
    }

    #[test]
    fn purge_and_rename_keep_the_indexes_in_step() {
        let trees = trees();
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
        let from = session(&trees, Some("ada"));
        let to = SessionId::generate("t:").as_str().to_owned();
        trees
            .transaction(|tx| {
                let live = tx.live(&from, now_ms() + 5, &policy)?.unwrap();
                tx.rename(&from, &to, live)
            })
            .unwrap();
        assert!(trees.verify().unwrap().is_empty(), "{:?}", trees.verify());
        assert_eq!((trees.owners.len(), trees.activity.len()), (1, 1));
        trees
            .transaction(|tx| {
                let meta = tx.meta(&to)?.unwrap();
                tx.purge(&to, &meta)
            })
            .unwrap();
        for tree in [
            &trees.meta,
            &trees.data,
            &trees.expiry,
            &trees.owners,
            &trees.activity,
        ] {
            assert!(tree.is_empty());
        }
    }

    #[test]
    fn remove_raw_finds_the_index_entries_of_unreadable_metadata() {
        let trees = trees();
        let id = session(&trees, Some("ada"));
        let other = session(&trees, Some("ada"));
        trees.meta.insert(id.as_str(), &[9][..]).unwrap();
        trees.remove_raw(&id).unwrap();
        let problems = trees.verify().unwrap();
        assert_eq!(
            problems.len(),
            1,
            "its expiry entry is the sweeper's: {problems:?}"
        );
        assert_eq!((trees.owners.len(), trees.activity.len()), (1, 1));
        assert!(trees.meta.contains_key(&other).unwrap());
    }
}
