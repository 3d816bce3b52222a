//! The store-wide queries, on a snapshot (a read transaction), which the
//! writer's commits never block: a session's info, an owner's sessions, and
//! the sessions active in a window, counted or paged by cursor. (The store
//! has the writer apply the refreshes reads left before it takes one.)

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTableMetadata};
use session_core::{ActivePage, Handle, ReadTally, SessionInfo};

use crate::layout::{
    all_in, meta_in, owned, value_in, Meta, TxResult, ACTIVITY, ACTIVITY_GRAIN_MS, EXPIRY, OWNERS,
    RECORDS,
};

/// The tables open in one read transaction: a snapshot, for the store-wide
/// queries, which the writer's commits never block.
pub(crate) struct Snapshot {
    records: ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
    expiry: ReadOnlyTable<(u64, &'static str), ()>,
    owners: ReadOnlyTable<(&'static str, &'static str), &'static str>,
    activity: ReadOnlyTable<(u64, &'static str), &'static str>,
    /// The store's reads not yet in their rows, which reports add; none in
    /// tests.
    pub(crate) tally: Option<Arc<ReadTally>>,
}

impl Snapshot {
    pub(crate) fn open(tx: &ReadTransaction) -> Result<Snapshot, redb::TableError> {
        Ok(Snapshot {
            records: tx.open_table(RECORDS)?,
            expiry: tx.open_table(EXPIRY)?,
            owners: tx.open_table(OWNERS)?,
            activity: tx.open_table(ACTIVITY)?,
            tally: None,
        })
    }

    /// The metadata of `id`, expired or not.
    pub(crate) fn meta(&self, id: &str) -> TxResult<Option<Meta>> {
        meta_in(&self.records, id)
    }

    /// The value of `key` in session `id`.
    pub(crate) fn value(&self, id: &str, key: &str) -> TxResult<Option<Vec<u8>>> {
        value_in(&self.records, id, key)
    }

    /// Every key and value of session `id`.
    pub(crate) fn all(&self, id: &str) -> TxResult<HashMap<String, Vec<u8>>> {
        all_in(&self.records, id)
    }

    /// What a listing shows of session `id`: its reads include those still
    /// pending in the tally.
    fn info_of(&self, meta: &Meta, id: &str, now: u64) -> SessionInfo {
        let mut info = meta.info(id, now);
        if let Some(tally) = &self.tally {
            tally.get(id).add_to(&mut info, now);
        }
        info
    }

    /// Sessions on disk, expired ones not yet swept included: their
    /// entries in `expiry`, one each (what `verify` checks), counted
    /// without walking their data.
    pub(crate) fn len_on_disk(&self) -> TxResult<u64> {
        Ok(self.expiry.len()?)
    }

    /// The metadata of the live session `id`.
    pub(crate) fn info(&self, id: &str, now: u64) -> TxResult<Option<SessionInfo>> {
        Ok(meta_in(&self.records, id)?
            .filter(|meta| meta.alive(now))
            .map(|meta| self.info_of(&meta, id, now)))
    }

    /// The live sessions of `owner`, most recently active first: one range
    /// of `owners` and a lookup per session, O(k log n).
    pub(crate) fn owner_sessions(&self, owner: &str, now: u64) -> TxResult<Vec<SessionInfo>> {
        let mut sessions: Vec<SessionInfo> = owned(&self.owners, &self.records, owner)?
            .into_iter()
            .filter(|(_, _, meta)| meta.alive(now))
            .map(|(_, id, meta)| self.info_of(&meta, &id, now))
            .collect();
        sessions.sort_by(|a, b| {
            b.last_active_ms
                .cmp(&a.last_active_ms)
                .then_with(|| a.handle.cmp(&b.handle))
        });
        Ok(sessions)
    }

    /// The handles of the sessions past their deadline at `now` but not
    /// yet swept, marked at or after `since`: the entries of `activity`
    /// that a count takes without a lookup and must skip. A range at the
    /// start of `expiry`, as long as what the sweeper has yet to do.
    fn expired_since(&self, now: u64, since: u64) -> TxResult<HashSet<String>> {
        let mut expired = HashSet::new();
        for entry in self.expiry.range(..(now.saturating_add(1), ""))? {
            let (key, _) = entry?;
            let id = key.value().1;
            if let Some(meta) = meta_in(&self.records, id)? {
                if !meta.alive(now) && meta.mark >= since {
                    expired.insert(Handle::of_stored(id).as_str().to_owned());
                }
            }
        }
        Ok(expired)
    }

    /// How many live sessions were active at or after `since`: the range of
    /// `activity` from `since`, walked without a lookup per entry, less the
    /// expired sessions not yet swept; plus those marked in the grain
    /// before `since` whose row says they were active since.
    pub(crate) fn count_active(&self, now: u64, since: u64) -> TxResult<u64> {
        let expired = self.expired_since(now, since)?;
        let mut count = 0;
        for entry in self.activity.range((band_start(since), "")..)? {
            let (key, id) = entry?;
            let (mark, handle) = key.value();
            count += u64::from(if mark >= since {
                !expired.contains(handle)
            } else {
                meta_in(&self.records, id.value())?
                    .is_some_and(|meta| meta.alive(now) && meta.active_since(since))
            });
        }
        Ok(count)
    }

    /// Up to `limit` live sessions active at or after `since`, in order of
    /// their marks, after `cursor`.
    pub(crate) fn active_page(
        &self,
        now: u64,
        since: u64,
        cursor: Option<(u64, &str)>,
        limit: usize,
    ) -> TxResult<ActivePage> {
        let limit = limit.max(1);
        let start = match cursor {
            Some((mark, handle)) if mark >= band_start(since) => Bound::Excluded((mark, handle)),
            _ => Bound::Included((band_start(since), "")),
        };
        let mut page = ActivePage::default();
        for entry in self.activity.range((start, Bound::Unbounded))? {
            let (key, id) = entry?;
            let ((mark, handle), id) = (key.value(), id.value());
            let Some(meta) = meta_in(&self.records, id)? else {
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

/// Where the entries of sessions active since `since` may start: a session
/// is marked less than the grain before its last activity.
fn band_start(since: u64) -> u64 {
    since.saturating_sub(ACTIVITY_GRAIN_MS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::database;
    use crate::tables::Tables;
    use crate::verify::tests::problems;
    use redb::ReadableDatabase;
    use session_core::{ExpiryPolicy, SessionId};
    use std::time::Duration;

    /// Marks trail the last activity by less than the grain; counts and
    /// pages stay exact at the window's edge by checking the rows there.
    #[test]
    fn counts_are_exact_although_marks_trail() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let ids: Vec<String> = (0..4)
            .map(|_| SessionId::generate("t:").as_str().to_owned())
            .collect();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            // (created, touched): marks 10_000, 10_200, 9_000 and 11_200.
            for (id, (created, touched)) in ids.iter().zip([
                (10_000, 10_500),
                (10_200, 10_200),
                (9_000, 9_900),
                (10_000, 11_200),
            ]) {
                let live = Tables::create(created, &policy).unwrap();
                tables.save(id, &live).unwrap();
                let live = tables.live(id, touched, &policy).unwrap().unwrap();
                tables.save(id, &live).unwrap();
            }
            let marks: Vec<(u64, u64)> = ids
                .iter()
                .map(|id| tables.meta(id).unwrap().unwrap())
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
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
        }
        tx.commit().unwrap();
        let tx = db.begin_read().unwrap();
        let snapshot = Snapshot::open(&tx).unwrap();
        let now = 11_500;
        let handles = |since| {
            let page = snapshot.active_page(now, since, None, 10).unwrap();
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
                snapshot.count_active(now, since).unwrap(),
                active.len() as u64,
                "since {since}"
            );
            assert_eq!(handles(since), active, "since {since}");
        }
    }
}
