//! The three trees of a store and the transactions over them: every
//! operation reads and writes a session's metadata, data and expiry entry in
//! one sled transaction, so it is atomic, and concurrent operations on one
//! session are serialized by sled's conflict detection and retries, never
//! lost.

use std::time::{SystemTime, UNIX_EPOCH};

use session_core::{Error, ExpiryPolicy, Result, SessionSize};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{Transactional, Tree};

use crate::error::backend;
use crate::layout::{data_key, data_prefix, expiry_key, split_expiry_key, Meta};

/// Now, in ms since the Unix epoch: deadlines outlive the process, so they
/// are wall-clock times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The trees of one database. Cloning is cheap (sled's trees are `Arc`s).
#[derive(Clone, Debug)]
pub(crate) struct Trees {
    pub(crate) meta: Tree,
    pub(crate) data: Tree,
    pub(crate) expiry: Tree,
}

/// The trees inside a transaction.
pub(crate) struct Tx<'a> {
    meta: &'a TransactionalTree,
    pub(crate) data: &'a TransactionalTree,
    expiry: &'a TransactionalTree,
}

/// The result of a step inside a transaction: `?` works on sled's own errors,
/// and our errors abort the transaction.
pub(crate) type TxResult<T> = ConflictableTransactionResult<T, Error>;

/// A live session found in a transaction, its deadline already moved.
pub(crate) struct Live {
    pub(crate) meta: Meta,
    /// Its deadline as stored, `None` for a session being created.
    old_deadline: Option<u64>,
}

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<Trees> {
        Ok(Trees {
            meta: db.open_tree("meta")?,
            data: db.open_tree("data")?,
            expiry: db.open_tree("expiry")?,
        })
    }

    /// Runs `step` as one transaction over the three trees. sled may run it
    /// more than once when it conflicts with another, so it only computes
    /// from its inputs.
    pub(crate) fn transaction<T>(&self, step: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        (&self.meta, &self.data, &self.expiry)
            .transaction(|(meta, data, expiry)| step(&Tx { meta, data, expiry }))
            .map_err(|error| match error {
                TransactionError::Abort(error) => error,
                TransactionError::Storage(error) => backend(error),
            })
    }

    /// Removes sessions whose deadline is at or before `now`, at most `batch`
    /// of them, oldest first, while `go_on()` says so. Returns how many expiry
    /// entries it handled.
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
            let Some((deadline, id)) = split_expiry_key(key) else {
                // Not ours: drop it so it cannot stall the sweep.
                self.expiry.remove(key).map_err(backend)?;
                continue;
            };
            let swept = self.transaction(|tx| {
                match tx.meta(id)? {
                    Some(meta) if meta.deadline <= now => tx.purge(id, &meta)?,
                    // Moved or gone meanwhile: only this entry is stale.
                    Some(meta) if meta.deadline != deadline => {
                        tx.expiry.remove(key.as_ref())?;
                    }
                    Some(_) => {}
                    None => {
                        tx.expiry.remove(key.as_ref())?;
                    }
                }
                Ok(())
            });
            if let Err(error) = swept {
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
    /// outside a transaction: for metadata that does not decode.
    pub(crate) fn remove_raw(&self, id: &str) -> Result<()> {
        for key in self.data.scan_prefix(data_prefix(id)).keys() {
            self.data.remove(key.map_err(backend)?).map_err(backend)?;
        }
        self.meta.remove(id).map_err(backend)?;
        Ok(())
    }

    /// Removes every session, one transaction each, so that none is left half
    /// removed; returns how many it removed.
    pub(crate) fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        for id in self.meta.iter().keys() {
            let id = id.map_err(backend)?;
            let Ok(id) = std::str::from_utf8(&id) else {
                self.meta.remove(&id).map_err(backend)?;
                continue;
            };
            let purged = self.transaction(|tx| match tx.meta(id)? {
                Some(meta) => tx.purge(id, &meta).map(|()| true),
                None => Ok(false),
            });
            match purged {
                Ok(purged) => removed += u64::from(purged),
                Err(_) => {
                    self.remove_raw(id)?;
                    removed += 1;
                }
            }
        }
        // Expiry entries no session owns any more (an unreadable one's) are
        // the sweeper's: clearing the tree would also drop those of sessions
        // created meanwhile, which then would never be swept.
        Ok(removed)
    }

    /// Checks that the trees agree: every session has exactly one expiry
    /// entry, at its deadline; every expiry entry and every data entry
    /// belongs to a session that lists it. Returns the problems found.
    pub(crate) fn verify(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut deadlines = std::collections::HashMap::new();
        let mut listed = std::collections::HashSet::new();
        for entry in self.meta.iter() {
            let (id, bytes) = entry.map_err(backend)?;
            let id = String::from_utf8_lossy(&id).into_owned();
            let meta = match Meta::decode(&bytes) {
                Ok(meta) => meta,
                Err(error) => {
                    problems.push(format!("session {id}: {error}"));
                    continue;
                }
            };
            if !self
                .expiry
                .contains_key(expiry_key(meta.deadline, &id))
                .map_err(backend)?
            {
                problems.push(format!("session {id}: no expiry entry at its deadline"));
            }
            for key in &meta.keys {
                let data = data_key(&id, key);
                if !self.data.contains_key(&data).map_err(backend)? {
                    problems.push(format!("session {id}: key {key:?} listed but missing"));
                }
                listed.insert(data);
            }
            deadlines.insert(id, meta.deadline);
        }
        for key in self.expiry.iter().keys() {
            let key = key.map_err(backend)?;
            match split_expiry_key(&key) {
                Some((deadline, id)) if deadlines.get(id) == Some(&deadline) => {}
                _ => problems.push(format!("stray expiry entry {key:?}")),
            }
        }
        for key in self.data.iter().keys() {
            let key = key.map_err(backend)?;
            if !listed.contains(key.as_ref()) {
                problems.push(format!("stray data entry {key:?}"));
            }
        }
        Ok(problems)
    }
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
    /// deadline slid to what `policy` gives now (not yet saved). An expired
    /// session is removed on the spot and reported absent.
    pub(crate) fn live(&self, id: &str, now: u64, policy: &ExpiryPolicy) -> TxResult<Option<Live>> {
        let Some(mut meta) = self.meta(id)? else {
            return Ok(None);
        };
        let deadline = (meta.deadline > now)
            .then(|| meta.policy(policy).deadline_ms(meta.created, now))
            .flatten();
        match deadline {
            Some(deadline) => {
                let old_deadline = std::mem::replace(&mut meta.deadline, deadline);
                Ok(Some(Live {
                    meta,
                    old_deadline: Some(old_deadline),
                }))
            }
            None => {
                self.purge(id, &meta)?;
                Ok(None)
            }
        }
    }

    /// A new session's metadata, created `now`; `None` if `policy` gives it no
    /// time at all (a zero absolute lifetime).
    pub(crate) fn create(now: u64, policy: &ExpiryPolicy) -> Option<Live> {
        let mut meta = Meta::new(now);
        meta.deadline = policy.deadline_ms(now, now)?;
        Some(Live {
            meta,
            old_deadline: None,
        })
    }

    /// Writes `live`'s metadata and moves its expiry entry.
    pub(crate) fn save(&self, id: &str, live: &Live) -> TxResult<()> {
        let deadline = live.meta.deadline;
        if live.old_deadline != Some(deadline) {
            if let Some(old) = live.old_deadline {
                self.expiry.remove(expiry_key(old, id))?;
            }
            self.expiry.insert(expiry_key(deadline, id), &[])?;
        }
        self.meta.insert(id, live.meta.encode())?;
        Ok(())
    }

    /// Moves the live session `old` to the fresh id `new`: its data, its
    /// creation time and its (slid) deadline.
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
        self.meta.remove(old)?;
        if let Some(deadline) = live.old_deadline {
            self.expiry.remove(expiry_key(deadline, old))?;
        }
        let moved = Live {
            meta: live.meta,
            old_deadline: None,
        };
        self.save(new, &moved)
    }

    /// Removes everything of the session `id`.
    pub(crate) fn purge(&self, id: &str, meta: &Meta) -> TxResult<()> {
        for key in &meta.keys {
            self.data.remove(data_key(id, key))?;
        }
        self.meta.remove(id)?;
        self.expiry.remove(expiry_key(meta.deadline, id))?;
        Ok(())
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

    #[test]
    fn verify_reports_trees_that_disagree() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::open(&db).unwrap();
        assert!(trees.verify().unwrap().is_empty());
        let mut meta = Meta::new(1);
        meta.deadline = 2;
        meta.keys.insert("listed".into());
        trees.meta.insert("s1", meta.encode()).unwrap();
        trees.expiry.insert(expiry_key(3, "s1"), &[]).unwrap();
        trees
            .data
            .insert(data_key("s2", "orphan"), &b"x"[..])
            .unwrap();
        let problems = trees.verify().unwrap();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
