//! The store-wide queries over the `owners` and `activity` indexes.
//!
//! sled transactions cannot scan, so these walk an index outside any
//! transaction, read each session's metadata as they go, and remove
//! sessions in transactions that check again that each is the one the
//! index named. A walk therefore sees each session as it is when
//! the walk reaches it, not one snapshot of the whole store.

use std::collections::HashSet;

use session_core::beyond_cap;
use session_core::{ActivePage, ExpiryPolicy, Handle, Result, SessionInfo};

use crate::error::backend;
use crate::layout::{
    activity_key, data_key, expiry_key, owner_prefix, split_activity_key, split_expiry_key, Meta,
    ACTIVITY_GRAIN_MS, EXPIRY_GRAIN_MS,
};
use crate::refresh;
use crate::trees::{now_ms, Trees, BATCH};

/// One session an owner's index names: its `owners` key, id and metadata.
struct Owned {
    key: sled::IVec,
    id: String,
    meta: Meta,
}

impl Trees {
    /// The metadata of `id`, expired or not.
    pub(crate) fn meta_of(&self, id: &str) -> Result<Option<Meta>> {
        match self.meta.get(id).map_err(backend)? {
            Some(bytes) => Meta::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key` in the session `id` that `meta` describes, read
    /// outside a transaction.
    pub(crate) fn value(&self, id: &str, meta: &Meta, key: &str) -> Result<Option<Vec<u8>>> {
        if !meta.keys.contains(key) {
            return Ok(None);
        }
        Ok(self
            .data
            .get(data_key(id, key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    /// The metadata of the live session `id`, as a listing shows it.
    pub(crate) fn info(&self, id: &str, now: u64) -> Result<Option<SessionInfo>> {
        Ok(self
            .meta_of(id)?
            .filter(|meta| meta.alive(now))
            .map(|meta| self.info_of(&meta, id, now)))
    }

    /// The sessions `owners` names for `owner` that are still its: one
    /// prefix of the index and a lookup per session, O(k log n).
    fn owned(&self, owner: &str) -> Result<Vec<Owned>> {
        let mut owned = Vec::new();
        for entry in self.owners.scan_prefix(owner_prefix(owner)) {
            let (key, id) = entry.map_err(backend)?;
            let Ok(id) = std::str::from_utf8(&id) else {
                continue;
            };
            if let Some(meta) = self.meta_of(id)? {
                if meta.owner.as_deref() == Some(owner) {
                    owned.push(Owned {
                        key,
                        id: id.to_owned(),
                        meta,
                    });
                }
            }
        }
        Ok(owned)
    }

    /// The live sessions of `owner`, most recently active first.
    pub(crate) fn owner_sessions(&self, owner: &str, now: u64) -> Result<Vec<SessionInfo>> {
        let mut sessions: Vec<SessionInfo> = self
            .owned(owner)?
            .into_iter()
            .filter(|owned| owned.meta.alive(now))
            .map(|owned| self.info_of(&owned.meta, &owned.id, now))
            .collect();
        sessions.sort_by(|a, b| {
            b.last_active_ms
                .cmp(&a.last_active_ms)
                .then_with(|| a.handle.cmp(&b.handle))
        });
        Ok(sessions)
    }

    /// Removes the sessions `owners` names for `owner`, but `keep`, up to
    /// [`BATCH`] per transaction; returns how many were alive when removed
    /// (expired ones go too, uncounted).
    pub(crate) fn destroy_owner(&self, owner: &str, keep: Option<&str>) -> Result<u64> {
        let mut destroyed = 0;
        let mut entries = self.owners.scan_prefix(owner_prefix(owner)).peekable();
        while entries.peek().is_some() {
            let mut batch = Vec::with_capacity(BATCH);
            for entry in entries.by_ref().take(BATCH) {
                let (key, id) = entry.map_err(backend)?;
                match String::from_utf8(id.to_vec()) {
                    Ok(id) if keep == Some(id.as_str()) => {}
                    Ok(id) => batch.push((key, id)),
                    Err(_) => {
                        self.owners.remove(&key).map_err(backend)?;
                    }
                }
            }
            destroyed += self.transaction(|tx| {
                let now = now_ms();
                let mut destroyed = 0;
                for (key, id) in &batch {
                    destroyed += u64::from(tx.remove_owned(id, owner, key, now)? == Some(true));
                }
                Ok(destroyed)
            })?;
        }
        Ok(destroyed)
    }

    /// Binds the live session `id` to `owner`; then, with a `cap`, removes
    /// the owner's least recently active other sessions until at most
    /// `cap` remain. Returns whether the session was alive.
    pub(crate) fn bind_owner(
        &self,
        id: &str,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        // The time inside the transaction, past sled's lock (see
        // `SledStore::with_live`).
        if !self.transaction(|tx| tx.bind(id, owner, now_ms(), policy))? {
            return Ok(false);
        }
        let Some(cap) = cap else {
            return Ok(true);
        };
        // It guards no data: a step that panicked left nothing this one
        // relies on, so a poisoned lock is taken all the same.
        let _step = self
            .cap_step(owner)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = now_ms();
        let owned = self.owned(owner)?;
        let mut live = Vec::with_capacity(owned.len());
        for session in &owned {
            // Dead already: it goes now, and does not count. Decided in the
            // transaction: a pass may apply (and take out) a refresh that
            // keeps it alive between the read of its metadata and here.
            let alive = refresh::alive(&self.refreshes, &session.id, &session.meta, now)
                || !self.transaction(|tx| {
                    tx.remove_owned_if_expired(&session.id, owner, &session.key, now_ms())
                })?;
            if alive {
                // A read's time waits in the tally until a pass or the
                // session's next write takes it in: activity all the same.
                let last = session.meta.last.max(self.tally.get(&session.id).last_ms);
                live.push((session.id.as_str(), last));
            }
        }
        for evicted in beyond_cap(&live, cap, id) {
            if let Some(session) = owned.iter().find(|s| s.id == evicted) {
                self.transaction(|tx| tx.remove_owned(&session.id, owner, &session.key, now_ms()))?;
            }
        }
        Ok(true)
    }

    /// The handles of the sessions past their deadline at `now` but not
    /// yet swept, marked at or after `since`: the entries of `activity`
    /// that a count takes without a lookup and must skip. A range at the
    /// start of `expiry`, as long as what the sweeper has yet to do, plus
    /// the sessions whose slot is in the grain after `now` (a slot is up to
    /// a grain after its deadline).
    fn expired_since(&self, now: u64, since: u64) -> Result<HashSet<HandleBytes>> {
        let mut expired = HashSet::new();
        let end = now.saturating_add(EXPIRY_GRAIN_MS).saturating_add(1);
        for key in self.expiry.range(..expiry_key(end, "")).keys() {
            let key = key.map_err(backend)?;
            let Some((_, id)) = split_expiry_key(&key) else {
                continue;
            };
            // Unreadable metadata: its session is the sweeper's, and no
            // count can tell where its activity entry is.
            if let Ok(Some(meta)) = self.meta_of(id) {
                if !meta.alive(now) && meta.mark >= since {
                    expired.extend(handle_bytes(Handle::of_stored(id).as_str()));
                }
            }
        }
        Ok(expired)
    }

    /// How many live sessions were active at or after `since`: the range of
    /// `activity` from `since`, walked without a lookup per entry, less the
    /// expired sessions not yet swept; plus those marked in the grain
    /// before `since` whose metadata says they were active since. A session
    /// whose mark moves during the walk goes to the end of the range and
    /// may be met twice: each handle is counted once.
    pub(crate) fn count_active(&self, now: u64, since: u64) -> Result<u64> {
        let expired = self.expired_since(now, since)?;
        let mut seen = HashSet::new();
        for entry in self.activity.range(activity_key(band_start(since), "")..) {
            let (key, id) = entry.map_err(backend)?;
            let Some((mark, handle)) = split_activity_key(&key) else {
                continue;
            };
            let Some(handle) = handle_bytes(handle) else {
                continue;
            };
            let active = if mark >= since {
                !expired.contains(&handle)
            } else {
                let id = std::str::from_utf8(&id).unwrap_or_default();
                self.meta_of(id)?.is_some_and(|meta| {
                    meta.alive(now) && meta.mark == mark && meta.active_since(since)
                })
            };
            if active {
                seen.insert(handle);
            }
        }
        Ok(seen.len() as u64)
    }

    /// Up to `limit` live sessions active at or after `since`, in order of
    /// their marks, after `cursor`.
    pub(crate) fn active_page(
        &self,
        now: u64,
        since: u64,
        cursor: Option<(u64, &str)>,
        limit: usize,
    ) -> Result<ActivePage> {
        let limit = limit.max(1);
        let range = match cursor {
            Some((mark, handle)) if mark >= band_start(since) => self.activity.range((
                std::ops::Bound::Excluded(activity_key(mark, handle)),
                std::ops::Bound::Unbounded,
            )),
            _ => self.activity.range(activity_key(band_start(since), "")..),
        };
        let mut page = ActivePage::default();
        for entry in range {
            let (key, id) = entry.map_err(backend)?;
            let (Some((mark, handle)), Ok(id)) =
                (split_activity_key(&key), std::str::from_utf8(&id))
            else {
                continue;
            };
            // Skipped: a session gone, expired, or moved on (met again
            // further on at its new place).
            let Some(meta) = self.meta_of(id)? else {
                continue;
            };
            if !meta.alive(now) || meta.mark != mark || !meta.active_since(since) {
                continue;
            }
            page.sessions.push(self.info_of(&meta, id, now));
            if page.sessions.len() == limit {
                page.next = Some(ActivePage::mark_cursor(mark, handle));
                break;
            }
        }
        Ok(page)
    }
}

/// A handle's bytes, kept without an allocation each by the counts.
type HandleBytes = [u8; 22];

fn handle_bytes(handle: &str) -> Option<HandleBytes> {
    handle.as_bytes().try_into().ok()
}

impl Trees {
    /// What a listing shows of the session `id`, as of `now`: its reads
    /// include those still pending in the tally.
    fn info_of(&self, meta: &Meta, id: &str, now: u64) -> SessionInfo {
        use std::time::Duration;
        let mut info = SessionInfo {
            handle: Handle::of_stored(id),
            owner: meta.owner.clone(),
            created_ms: meta.created,
            last_active_ms: meta.last,
            reads: meta.reads,
            writes: meta.writes,
            idle: Duration::from_millis(now.saturating_sub(meta.last)),
            ttl: Duration::from_millis(meta.deadline.saturating_sub(now)),
        };
        self.tally.get(id).add_to(&mut info, now);
        info
    }
}

/// Where the entries of sessions active since `since` may start: a session
/// is marked less than the grain before its last activity.
fn band_start(since: u64) -> u64 {
    since.saturating_sub(ACTIVITY_GRAIN_MS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks trail the last activity by less than the grain; counts and
    /// pages stay exact at the window's edge by checking the metadata there.
    #[test]
    fn counts_are_exact_although_marks_trail() {
        use crate::trees::Tx;
        let db = sled::Config::new().temporary(true).open().unwrap();
        let trees = Trees::open(&db).unwrap();
        let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(3600));
        let ids: Vec<String> = (0..4)
            .map(|_| session_core::SessionId::generate("t:").as_str().to_owned())
            .collect();
        // (created, touched): marks 10_000, 10_200, 9_000 and 11_200.
        for (id, (created, touched)) in ids.iter().zip([
            (10_000, 10_500),
            (10_200, 10_200),
            (9_000, 9_900),
            (10_000, 11_200),
        ]) {
            trees
                .transaction(|tx| {
                    tx.save(id, &Tx::create(created, &policy).unwrap())?;
                    let live = tx.live(id, touched, &policy)?.unwrap();
                    tx.save(id, &live)
                })
                .unwrap();
        }
        let marks: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| trees.meta_of(id).unwrap().unwrap())
            .map(|meta| (meta.mark, meta.last))
            .collect();
        assert_eq!(
            marks,
            [
                (10_000, 10_500),
                (10_200, 10_200),
                (9_000, 9_900),
                (11_200, 11_200)
            ]
        );
        assert!(trees.verify().unwrap().is_empty(), "{:?}", trees.verify());
        let now = 11_500;
        let handles = |since| {
            let page = trees.active_page(now, since, None, 10).unwrap();
            let mut found: Vec<usize> = page
                .sessions
                .iter()
                .map(|info| {
                    ids.iter()
                        .position(|id| Handle::of_stored(id) == info.handle)
                        .unwrap()
                })
                .collect();
            found.sort();
            found
        };
        for (since, active) in [
            (10_300, vec![0, 3]),
            (10_100, vec![0, 1, 3]),
            (9_900, vec![0, 1, 2, 3]),
            (10_501, vec![3]),
        ] {
            assert_eq!(
                trees.count_active(now, since).unwrap(),
                active.len() as u64,
                "since {since}"
            );
            assert_eq!(handles(since), active, "since {since}");
        }
    }
}
