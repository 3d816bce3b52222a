//! One session's record read and written: each writer waits for its
//! session's turn, then goes through moka's per-key `and_compute_with`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use moka::ops::compute::{CompResult, Op};
use session_core::{
    Edit, ExpiryPolicy, KeyChange, Result, SessionId, SessionSize, WriteMode, WriteOutcome,
};

use crate::record::{FieldChange, Record};
use crate::store::MemoryStore;

/// First-come, first-served locks that order the writers of one session
/// before they reach moka's `and_compute_with` (which lets a caller lose to
/// newcomers again and again). Striped by the id's hash, so unrelated
/// sessions rarely share one; a writer holds only its own session's.
pub(crate) struct Turns {
    locks: Box<[tokio::sync::Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Turns {
    const STRIPES: usize = 1024;

    pub(crate) fn new() -> Turns {
        Turns {
            locks: (0..Turns::STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Waits for the turn of the writers of `id`.
    pub(crate) async fn take(&self, id: &SessionId) -> tokio::sync::MutexGuard<'_, ()> {
        self.take_named(id.as_str()).await
    }

    /// Waits for the turn of whatever `name` names (an owner, for the
    /// store's cap steps).
    pub(crate) async fn take_named(&self, name: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        let stripe = self.hasher.hash_one(name) as usize % self.locks.len();
        self.locks[stripe].lock().await
    }
}

impl MemoryStore {
    /// The live record of a session, read: counted, and its expiry and last
    /// activity slid if a refresh is due (see [`Record::refresh_due`]).
    pub(crate) async fn read(&self, id: &SessionId) -> Option<Arc<Record>> {
        let record = self
            .cache
            .get(id.as_str())
            .await
            .filter(|record| record.alive(Instant::now()))?;
        // The same decision moka's read made of the expiry, as of now.
        let now = Instant::now();
        if record.refresh_due(now, record.left_now(now)) {
            record.stats.touch();
        }
        record.stats.reads.fetch_add(1, Ordering::Relaxed);
        Some(record)
    }

    /// The live record of a session, without sliding its expiry: moka
    /// counts every keyed access as a read (and slides), so the record is
    /// put back untouched, and its deadline computed again from its last
    /// activity.
    pub(crate) async fn peek(&self, id: &str) -> Option<Arc<Record>> {
        let result = self
            .cache
            .entry_by_ref(id)
            .and_compute_with(|entry| {
                let now = Instant::now();
                let op = match entry.map(|e| e.into_value()).filter(|r| r.alive(now)) {
                    Some(record) => Op::Put(record),
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::ReplacedWith(entry) => Some(entry.into_value()),
            _ => None,
        }
    }

    /// Removes the session `id` if it is alive and `owner`'s (any owner's
    /// for `None`). Returns whether it did.
    pub(crate) async fn remove_owned(&self, id: &str, owner: Option<&str>) -> bool {
        let Some(id) = SessionId::from_stored(id) else {
            return false;
        };
        let _turn = self.turns.take(&id).await;
        let result = self
            .cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| {
                let now = Instant::now();
                let remove = entry.is_some_and(|e| {
                    let record = e.value();
                    record.alive(now) && owner.is_none_or(|o| record.owner.as_deref() == Some(o))
                });
                std::future::ready(if remove { Op::Remove } else { Op::Nop })
            })
            .await;
        matches!(result, CompResult::Removed(_))
    }

    /// Atomically replaces the session's record with `update(current)`, where
    /// `current` is the live record or `None`; `update` returning `None` leaves
    /// the entry as it is. Returns whether a record was written.
    pub(crate) async fn update<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Record>) -> Option<Record> + Send,
    {
        let _turn = self.turns.take(id).await;
        self.update_in_turn(id, update).await
    }

    /// [`update`](Self::update), by a caller that holds the session's turn.
    pub(crate) async fn update_in_turn<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Record>) -> Option<Record> + Send,
    {
        self.compute_in_turn(id, |current| update(current.map(|r| &**r)).map(Arc::new))
            .await
    }

    /// [`update`](Self::update), where returning the current record itself
    /// puts it back as it is: a read inside a write's lock, whose expiry
    /// then slides from the last activity, as after a write.
    pub(crate) async fn compute<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Arc<Record>>) -> Option<Arc<Record>> + Send,
    {
        let _turn = self.turns.take(id).await;
        self.compute_in_turn(id, update).await
    }

    /// [`compute`](Self::compute), by a caller that holds the session's turn.
    async fn compute_in_turn<F>(&self, id: &SessionId, update: F) -> bool
    where
        F: FnOnce(Option<&Arc<Record>>) -> Option<Arc<Record>> + Send,
    {
        let result = self
            .cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| {
                let now = Instant::now();
                let current = entry.map(|e| e.into_value()).filter(|r| r.alive(now));
                let op = match update(current.as_ref()) {
                    Some(record) => Op::Put(record),
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
    }

    /// `set_many` once its keys and values are checked: `changes` applied
    /// to the live session (created for [`WriteMode::Create`]) in one step,
    /// if the session stays within the limits.
    pub(crate) async fn write(
        &self,
        id: &SessionId,
        changes: &[FieldChange<'_>],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        let limits = self.limits;
        let _turn = self.turns.take(id).await;
        // One key, in a record the cache weighed heavy enough: changed in
        // place, with no copy of the record and no compute in moka.
        if let [change] = changes {
            let record = self.cache.get(id.as_str()).await;
            if let Some(record) = record.filter(|r| r.alive(Instant::now())) {
                let check = |before, after| limits.check_session(before, after);
                if let Some(changed) = record.change_in_place(*change, policy, check) {
                    changed?;
                    record.stats.count(true);
                    // Read again: the read's expiry slides the deadline from
                    // the write's touch (see `SessionExpiry`).
                    let _ = self.cache.get(id.as_str()).await;
                    return Ok(WriteOutcome::Applied);
                }
            }
        }
        let mut refused = None;
        let written = self
            .compute_in_turn(id, |current| {
                let current = current.map(|record| &**record);
                let (before, after) = match (current, mode) {
                    (Some(record), _) => (record.size(), record.with_changes(changes, policy)),
                    (None, WriteMode::Create) => (
                        SessionSize::default(),
                        Record::new(Instant::now(), *policy).with_changes(changes, policy),
                    ),
                    (None, WriteMode::Existing) => return None,
                };
                // Checked inside the compute, so concurrent writers see each
                // other's keys.
                match limits.check_session(before, after.size()) {
                    Ok(()) => {
                        after.stats.count(true);
                        Some(Arc::new(after))
                    }
                    Err(error) => {
                        refused = Some(error);
                        None
                    }
                }
            })
            .await;
        if let Some(error) = refused {
            return Err(error);
        }
        Ok(if written {
            WriteOutcome::Applied
        } else {
            WriteOutcome::NoSession
        })
    }

    /// An atomic operation on one key, under the session's lock: `decide`
    /// sees the key's value, and its [`Edit`] is applied, with the limits
    /// checked as in `set_many`. An absent session is `None` with
    /// [`WriteMode::Existing`]; with [`WriteMode::Create`] it counts as
    /// empty, and is created only if the edit puts a value. An error of
    /// `decide` or a refusal of the limits changes nothing.
    pub(crate) async fn edit<T: Send>(
        &self,
        id: &SessionId,
        key: &str,
        mode: WriteMode,
        policy: &ExpiryPolicy,
        decide: impl FnOnce(Option<&[u8]>) -> Result<Edit<T>> + Send,
    ) -> Result<Option<T>> {
        self.limits.check_key(key)?;
        let limits = self.limits;
        let mut outcome = Ok(None);
        self.compute(id, |current| {
            if current.is_none() && mode == WriteMode::Existing {
                return None;
            }
            let value = current.and_then(|record| record.field(key));
            let edit = match decide(value.as_deref()) {
                Ok(edit) => edit,
                Err(error) => {
                    outcome = Err(error);
                    return None;
                }
            };
            if let KeyChange::Put(value) = &edit.change {
                if let Err(error) = limits.check_value(value) {
                    outcome = Err(error);
                    return None;
                }
            }
            let (before, record) = match (current, edit.change) {
                // A read, or nothing to write: the record goes back as it
                // is, touched, so that its expiry slides.
                (Some(record), KeyChange::Keep) => {
                    record.stats.count(edit.writes);
                    outcome = Ok(Some(edit.answer));
                    return Some(record.clone());
                }
                (Some(record), KeyChange::Delete) => {
                    (record.size(), record.with_changes(&[(key, None)], policy))
                }
                (Some(record), KeyChange::Put(value)) => (
                    record.size(),
                    record.with_changes(&[(key, Some(&value))], policy),
                ),
                (None, KeyChange::Put(value)) => (
                    SessionSize::default(),
                    Record::new(Instant::now(), *policy)
                        .with_changes(&[(key, Some(&value))], policy),
                ),
                // Nothing to write: nothing to create.
                (None, _) => {
                    outcome = Ok(Some(edit.answer));
                    return None;
                }
            };
            if let Err(error) = limits.check_session(before, record.size()) {
                outcome = Err(error);
                return None;
            }
            record.stats.count(edit.writes);
            outcome = Ok(Some(edit.answer));
            Some(Arc::new(record))
        })
        .await;
        outcome
    }

    /// Removes the session through its per-key lock, so a write racing the
    /// removal cannot put it back.
    pub(crate) async fn remove(&self, id: &SessionId) {
        let _turn = self.turns.take(id).await;
        self.cache
            .entry_by_ref(id.as_str())
            .and_compute_with(|entry| std::future::ready(entry.map_or(Op::Nop, |_| Op::Remove)))
            .await;
    }
}
