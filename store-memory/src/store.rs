//! [`MemoryStore`]: the store, and its [`Store`] implementation.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use session_core::{beyond_cap, check_owner};
use session_core::{
    ActivePage, Change, Edit, ExpiryPolicy, Handle, Limits, Result, SessionId, SessionInfo, Store,
    Swap, WriteMode, WriteOutcome,
};

use crate::access::Turns;
use crate::owners::Owners;
use crate::record::{millis, now_ms, FieldChange, Record};

/// The in-memory session store. Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct MemoryStore {
    pub(crate) cache: Cache<String, Arc<Record>>,
    pub(crate) limits: Limits,
    pub(crate) turns: Arc<Turns>,
    /// One owner's cap steps, one at a time, so that two binds of one
    /// owner racing cannot each end the other's session (see
    /// [`beyond_cap`]). Apart from `turns`: a cap step takes the turns of
    /// the sessions it ends.
    pub(crate) cap_turns: Arc<Turns>,
    pub(crate) owners: Arc<Owners>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .field("limits", &self.limits)
            .finish()
    }
}

impl MemoryStore {
    /// Bytes held, as the weigher counts them, after running moka's pending
    /// maintenance (expirations, evictions, and the recorded reads that
    /// order its LRU).
    ///
    /// Counting and clearing the sessions is the [`Store`] trait's, as for
    /// every store: [`Store::len`], [`Store::is_empty`] and
    /// [`Store::destroy_all`].
    pub async fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// Every live session active since `since_ms`, ordered by handle.
    fn active(&self, since_ms: u64) -> Vec<SessionInfo> {
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut active: Vec<SessionInfo> = self
            .cache
            .iter()
            .filter(|(_, record)| record.alive(now) && record.last_ms() >= since_ms)
            .map(|(id, record)| record.info(&id, now, now_ms))
            .collect();
        active.sort_by(|a, b| a.handle.cmp(&b.handle));
        active
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, id: &SessionId, key: &str, _: &ExpiryPolicy) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        Ok(self.read(id).await.and_then(|record| record.value(key)))
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        _: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let Some(record) = self.read(id).await else {
            return Ok(vec![None; keys.len()]);
        };
        // Every value from one look under the lock, so that a write in
        // place between two keys cannot mix two states of the session;
        // copied after it.
        let shared: Vec<Option<Arc<[u8]>>> = {
            let fields = record.fields();
            keys.iter()
                .map(|key| fields.map.get(*key).cloned())
                .collect()
        };
        Ok(shared
            .into_iter()
            .map(|value| value.map(|v| v.to_vec()))
            .collect())
    }

    async fn get_all(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<HashMap<String, Vec<u8>>> {
        Ok(self
            .read(id)
            .await
            .map(|record| {
                record
                    .fields()
                    .map
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_vec()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn set(
        &self,
        id: &SessionId,
        key: &str,
        value: &[u8],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_key(key)?;
        self.limits.check_value(value)?;
        self.write(id, &[(key, Some(value))], mode, policy).await
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let changes: Vec<FieldChange<'_>> = changes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
            .collect();
        self.write(id, &changes, mode, policy).await
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        let changes: Vec<FieldChange<'_>> = keys.iter().map(|&key| (key, None)).collect();
        Ok(self
            .update(id, |current| {
                let record = current?.with_changes(&changes, policy);
                record.stats.writes.fetch_add(1, Ordering::Relaxed);
                record.stats.touch();
                Some(record)
            })
            .await)
    }

    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        let taken = self
            .edit(id, key, WriteMode::Existing, policy, |current| {
                Ok(Edit::take(current))
            })
            .await?;
        Ok(taken.flatten())
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Swap> {
        self.limits.check_key(key)?;
        if let Some(new) = new {
            self.limits.check_value(new)?;
        }
        let swap = self
            .edit(id, key, mode, policy, |current| {
                Ok(Edit::swap(current, expected, new))
            })
            .await?;
        Ok(swap.unwrap_or(Swap::NoSession))
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Option<i64>> {
        self.edit(id, key, mode, policy, |current| {
            Edit::increment(current, delta)
        })
        .await
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.remove(id).await;
        Ok(())
    }

    async fn extend(&self, id: &SessionId, _: &ExpiryPolicy) -> Result<bool> {
        // Put back touched, under the session's lock: its expiry slides
        // from the new last activity, whatever the touch granularity.
        Ok(self
            .compute(id, |current| {
                current.map(|record| {
                    record.stats.touch();
                    record.clone()
                })
            })
            .await)
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let mut ttl = None;
        self.update(id, |current| {
            let record = current?.with_lifetime(idle, policy);
            record.stats.touch();
            ttl = Some(record.ttl(Instant::now()));
            Some(record)
        })
        .await;
        Ok(ttl)
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        // The new id is stored inside the compute on the old one, before the old
        // one is removed: the move is one step, so a cancelled request can not
        // lose the session between the two.
        let _turn = self.turns.take(from).await;
        let result = self
            .cache
            .entry_by_ref(from.as_str())
            .and_compute_with(|entry| async move {
                let now = Instant::now();
                match entry.map(|e| e.into_value()).filter(|r| r.alive(now)) {
                    Some(record) => {
                        let moved = Arc::new(record.with_changes(&[], policy));
                        moved.stats.touch();
                        let owner = moved.owner.clone();
                        if let Some(owner) = &owner {
                            self.owners.add(owner, to.as_str());
                        }
                        self.cache.insert(to.as_str().to_owned(), moved).await;
                        // Again: a listing that looked for the new id
                        // before it was there may have dropped the entry
                        // (it looks again after dropping, see `owned`).
                        if let Some(owner) = &owner {
                            self.owners.add(owner, to.as_str());
                        }
                        Op::Remove
                    }
                    None => Op::Nop,
                }
            })
            .await;
        Ok(matches!(result, CompResult::Removed(_)))
    }

    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        check_owner(owner)?;
        let owner: Arc<str> = Arc::from(owner);
        let mut before = None;
        // The index changes in the session's turn too: two binds of one
        // session must not interleave, or the second's removal of the
        // owner it replaced could drop the first's entry, or the other way
        // round, leaving the session listed under no owner.
        let turn = self.turns.take(id).await;
        // Indexed first: a listing may see the id before the bind lands,
        // and checks the record; it never misses a bound session.
        self.owners.add(&owner, id.as_str());
        let bound = self
            .update_in_turn(id, |current| {
                let current = current?;
                before = current.owner.clone();
                let record = current.with_owner(&owner, policy);
                record.stats.touch();
                Some(record)
            })
            .await;
        if !bound {
            self.owners.remove(&owner, id.as_str());
            return Ok(false);
        }
        if let Some(before) = before.filter(|before| *before != owner) {
            self.owners.remove(&before, id.as_str());
        }
        drop(turn);
        if let Some(cap) = cap {
            let _cap_turn = self.cap_turns.take_named(&owner).await;
            let sessions = self.owned(&owner).await;
            let last: Vec<(&str, u64)> = sessions
                .iter()
                .map(|(id, record)| (id.as_str(), record.last_ms()))
                .collect();
            for evicted in beyond_cap(&last, cap, id.as_str()) {
                self.remove_owned(evicted, Some(&owner)).await;
            }
        }
        Ok(true)
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        Ok(self
            .peek(id.as_str())
            .await
            .map(|record| record.info(id.as_str(), Instant::now(), now_ms())))
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut sessions: Vec<SessionInfo> = self
            .owned(owner)
            .await
            .iter()
            .map(|(id, record)| record.info(id, now, now_ms))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_active_ms));
        Ok(sessions)
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        let mut destroyed = 0;
        for id in self.owners.ids(owner) {
            if keep.is_some_and(|keep| keep.as_str() == id) {
                continue;
            }
            if self.remove_owned(&id, Some(owner)).await {
                destroyed += 1;
                self.owners.remove(owner, &id);
            } else if self.peek(&id).await.is_none() {
                self.owners.remove(owner, &id);
                // Dropped, then tried again: a regenerate indexes its new id
                // before the session is there, and again after; if this
                // drop came in between, the session is here now, and ends.
                if self.remove_owned(&id, Some(owner)).await {
                    destroyed += 1;
                }
            }
        }
        Ok(destroyed)
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let Some(id) = self
            .owners
            .ids(owner)
            .into_iter()
            .find(|id| Handle::of_stored(id) == *handle)
        else {
            return Ok(false);
        };
        Ok(self.remove_owned(&id, Some(owner)).await)
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        let since = now_ms().saturating_sub(millis(within));
        let now = Instant::now();
        Ok(self
            .cache
            .iter()
            .filter(|(_, record)| record.alive(now) && record.last_ms() >= since)
            .count() as u64)
    }

    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        // Ordered by handle, which never changes, so a cursor (the last
        // handle shown) stays valid whatever the sessions do meanwhile.
        let active = self.active(now_ms().saturating_sub(millis(within)));
        let start = cursor.map_or(0, |after| {
            active.partition_point(|s| s.handle.as_str() <= after)
        });
        let sessions: Vec<SessionInfo> =
            active.into_iter().skip(start).take(limit.max(1)).collect();
        let next = (sessions.len() == limit.max(1))
            .then(|| sessions.last().map(|s| s.handle.to_string()))
            .flatten();
        Ok(ActivePage { sessions, next })
    }

    async fn destroy_all(&self) -> Result<u64> {
        // One by one, through each session's turn, so that no write racing
        // this brings a session back.
        let ids: Vec<Arc<String>> = self.cache.iter().map(|(id, _)| id).collect();
        let mut destroyed = 0;
        for id in ids {
            if self.remove_owned(&id, None).await {
                destroyed += 1;
            }
        }
        self.cache.run_pending_tasks().await;
        Ok(destroyed)
    }
}
