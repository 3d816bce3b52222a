//! What an operation does to the tables inside a write transaction: a
//! session found live and slid, saved with its index entries in step, its
//! data read and written, and sessions removed (purged, swept, evicted by
//! an owner's cap, destroyed with their owner or all at once). The tables
//! themselves are described in the `layout` module.

use std::collections::HashMap;

use redb::{ReadableTable, Table, WriteTransaction};
use session_core::{
    DeferredRefresh, DeferredRefreshes, ExpiryPolicy, Handle, Limits, PendingReads, ReadTally,
    SessionSize,
};

use crate::layout::{
    data_of, meta_in, owned, range_end, value_in, Meta, TxResult, ACTIVITY, EXPIRY, OWNERS,
    RECORDS, ROW,
};
use crate::refresh;
use crate::verify::short;

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

/// How many sessions' pending reads one transaction of `flush` or a closing
/// store writes out, so that each stays inside an operation's deadline:
/// about 1.7 s of the writer at a million sessions. Fewer, larger
/// transactions cost less in all: a million sessions' counts took 11 s in
/// one transaction, 14 s in these, 26 s in transactions of 4,096.
pub(crate) const WRITE_OUT_CHUNK: usize = 131_072;

/// A live session found in a transaction, its deadline and last activity
/// already slid.
pub(crate) struct Live {
    pub(crate) meta: Meta,
    /// Its row as stored, `None` for a session being created (or moved to
    /// a new id): what `save` moves the index entries from.
    pub(crate) stored: Option<Meta>,
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

/// The tables, open in one write transaction.
pub(crate) struct Tables<'t> {
    pub(crate) records: Table<'t, (&'static str, &'static str), &'static [u8]>,
    pub(crate) expiry: Table<'t, (u64, &'static str), ()>,
    pub(crate) owners: Table<'t, (&'static str, &'static str), &'static str>,
    pub(crate) activity: Table<'t, (u64, &'static str), &'static str>,
    /// The store's reads served from snapshots, not yet in their rows; none
    /// outside the writer (tests, the upgrade at open).
    pub(crate) tally: Option<&'t ReadTally>,
    /// The pending reads this transaction wrote into rows (or dropped with
    /// their session), by session, taken out of the tally once it commits.
    pub(crate) folded: HashMap<String, PendingReads>,
    /// The refreshes reads left for the writer; none outside the writer.
    pub(crate) refreshes: Option<&'t DeferredRefreshes>,
    /// The refreshes this transaction handled, taken out once it commits.
    pub(crate) refreshed: Vec<(String, DeferredRefresh)>,
    /// The sessions this transaction removed, or renamed away, and did
    /// not save again; and those a refresh pass found gone.
    gone: Vec<String>,
    /// The sessions it renamed, old id and new.
    renamed: Vec<(String, String)>,
    /// Whether it removed every session (`clear`).
    cleared: bool,
}

/// What a transaction took from the tally and from the refreshes left,
/// and the sessions it removed, renamed or found gone: to settle once it
/// commits.
pub(crate) struct Taken {
    folded: HashMap<String, PendingReads>,
    refreshed: Vec<(String, DeferredRefresh)>,
    gone: Vec<String>,
    renamed: Vec<(String, String)>,
    cleared: bool,
}

impl Taken {
    /// Takes out of `tally` the reads the transaction folded into rows,
    /// and out of `refreshes` those it applied; and forgets what `tally`
    /// still holds of a session it removed. Such a read was counted after
    /// the removal took the session's reads in, from a snapshot taken
    /// before it committed: it goes with the session, where its entry would
    /// otherwise stay until the store is flushed. Of a session it renamed
    /// (a regenerate), such reads move to the new id: the session lives on
    /// there.
    pub(crate) fn settle(self, tally: &ReadTally, refreshes: &DeferredRefreshes) {
        for (id, reads) in self.folded {
            tally.settle(&id, reads);
        }
        for (id, refresh) in self.refreshed {
            refreshes.settle(&id, refresh);
        }
        for (old, new) in self.renamed {
            if self.gone.contains(&old) {
                tally.add_pending(&new, tally.take(&old));
            }
        }
        for id in self.gone {
            tally.forget(&id);
        }
        // Every session went, their pending reads with them; only once the
        // removal has committed, so a failed one keeps the counts. Sessions
        // saved after it in the same commit took no counts (see `fold`);
        // reads of them counted before this settles are lost with the rest.
        if self.cleared {
            tally.clear();
        }
    }
}

impl<'t> Tables<'t> {
    pub(crate) fn open(tx: &'t WriteTransaction) -> TxResult<Tables<'t>> {
        Ok(Tables {
            records: tx.open_table(RECORDS)?,
            expiry: tx.open_table(EXPIRY)?,
            owners: tx.open_table(OWNERS)?,
            activity: tx.open_table(ACTIVITY)?,
            tally: None,
            folded: HashMap::new(),
            refreshes: None,
            refreshed: Vec::new(),
            gone: Vec::new(),
            renamed: Vec::new(),
            cleared: false,
        })
    }

    /// What this transaction took, to [`settle`](Taken::settle) once it
    /// commits.
    pub(crate) fn taken(&mut self) -> Taken {
        Taken {
            folded: std::mem::take(&mut self.folded),
            refreshed: std::mem::take(&mut self.refreshed),
            gone: std::mem::take(&mut self.gone),
            renamed: std::mem::take(&mut self.renamed),
            cleared: std::mem::take(&mut self.cleared),
        }
    }

    /// Slides the sessions whose refresh reads left for the writer, in
    /// order of id, each to the deadline [`refresh::deadline_for`] gives its
    /// row as it stands: a session expired, or slid by an operation since
    /// the read, is left as it is. Returns how many refreshes it handled.
    pub(crate) fn apply_refreshes(&mut self, now: u64) -> TxResult<usize> {
        let Some(refreshes) = self.refreshes else {
            return Ok(0);
        };
        let pending = refreshes.pending();
        for (id, left) in &pending {
            match self.meta(id) {
                Ok(Some(meta)) => self.slide(id, left, meta, now)?,
                // Gone (destroyed, regenerated, swept) while the read was
                // counted: its count goes with it, once this commits (a
                // removal in the same commit may yet fail). So does a row
                // that does not decode (`verify` names it), which would
                // otherwise fail every pass.
                Ok(None) | Err(redb::Error::Corrupted(_)) => self.gone.push(id.clone()),
                Err(error) => return Err(error),
            }
        }
        let handled = pending.len();
        self.refreshed.extend(pending);
        Ok(handled)
    }

    /// Slides session `id`, whose row is `meta`, as the read that left
    /// `left` would have by writing (see [`refresh::deadline_for`]).
    fn slide(&mut self, id: &str, left: &DeferredRefresh, meta: Meta, now: u64) -> TxResult<()> {
        if let Some(deadline) = refresh::deadline_for(left, &meta, now) {
            let mut slid = Meta {
                deadline,
                ..meta.clone()
            };
            slid.touch(left.at_ms);
            self.save(
                id,
                &Live {
                    meta: slid,
                    stored: Some(meta),
                },
            )?;
        }
        Ok(())
    }

    /// Takes the reads the tally holds for `ids` into their rows: the count
    /// and the last activity, the deadline as it is (those reads were not
    /// due a refresh). A refresh a read left for a session of `ids` since
    /// the last pass is applied with it: the row's last activity would
    /// otherwise reach the refresh's time, and the pass skip it. For `flush`
    /// and a closing store, [`WRITE_OUT_CHUNK`] ids to a transaction: the
    /// tally lives in memory, and without this a clean restart lost the
    /// count of every read since the session's last write or refresh. A
    /// session gone, expired or whose row does not decode (`verify` names
    /// it) takes its count with it. Returns how many rows it wrote.
    pub(crate) fn write_out_reads(&mut self, ids: &[String], now: u64) -> TxResult<usize> {
        let Some(tally) = self.tally else {
            return Ok(0);
        };
        let mut written = 0;
        for id in ids {
            let meta = match self.meta(id) {
                Ok(Some(meta)) if self.alive(id, &meta, now) => meta,
                Ok(_) | Err(redb::Error::Corrupted(_)) => {
                    // Taken out of the tally once this commits.
                    self.fold(id);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut read = meta.clone();
            // The count's time before the refresh: a read leaves its
            // refresh before its count, so this sees the refresh of any
            // read whose time it takes.
            let last_read = tally.get(id).last_ms;
            if let Some(left) = self.refreshes.and_then(|refreshes| refreshes.get(id)) {
                if let Some(deadline) = refresh::deadline_for(&left, &meta, now) {
                    read.deadline = deadline;
                    read.touch(left.at_ms);
                }
                self.refreshed.push((id.clone(), left));
            }
            read.touch(last_read);
            // `save` takes the pending reads in.
            self.save(
                id,
                &Live {
                    meta: read,
                    stored: Some(meta),
                },
            )?;
            written += 1;
        }
        Ok(written)
    }

    /// The reads of `id` the tally holds that this transaction has not
    /// taken in yet (a session saved twice in one commit takes each read
    /// once), noted as taken in.
    fn fold(&mut self, id: &str) -> PendingReads {
        // After a `clear` in this commit every session saved is new: the
        // tally's counts, cleared once it commits, are of those it removed.
        if self.cleared {
            return PendingReads::default();
        }
        let mut pending = self.tally.map(|tally| tally.get(id)).unwrap_or_default();
        if let Some(taken) = self.folded.get_mut(id) {
            pending.reads = pending.reads.saturating_sub(taken.reads);
            taken.reads += pending.reads;
            taken.last_ms = taken.last_ms.max(pending.last_ms);
        } else if pending.reads > 0 {
            self.folded.insert(id.to_owned(), pending);
        }
        pending
    }

    /// The stored metadata of `id`, expired or not.
    pub(crate) fn meta(&self, id: &str) -> TxResult<Option<Meta>> {
        meta_in(&self.records, id)
    }

    /// Whether session `id`, whose row is `meta`, is alive at `now`,
    /// counting a refresh a read left for it that no pass has applied yet
    /// (see [`refresh::deadline_for`]).
    fn alive(&self, id: &str, meta: &Meta, now: u64) -> bool {
        match self.refreshes {
            Some(refreshes) => refresh::alive(refreshes, id, meta, now),
            None => meta.alive(now),
        }
    }

    /// The session `id` if it is alive at `now` under `policy`, with its
    /// deadline slid to what `policy` gives now and its last activity now
    /// (not yet saved). An expired session is removed on the spot and
    /// reported absent.
    pub(crate) fn live(
        &mut self,
        id: &str,
        now: u64,
        policy: &ExpiryPolicy,
    ) -> TxResult<Option<Live>> {
        let Some(meta) = self.meta(id)? else {
            return Ok(None);
        };
        let deadline = self
            .alive(id, &meta, now)
            .then(|| meta.policy(policy).deadline_ms(meta.created, now))
            .flatten();
        match deadline {
            Some(deadline) => {
                let mut slid = Meta {
                    deadline,
                    ..meta.clone()
                };
                slid.touch(now);
                Ok(Some(Live {
                    meta: slid,
                    stored: Some(meta),
                }))
            }
            None => {
                self.purge(id, &meta)?;
                Ok(None)
            }
        }
    }

    /// A new session's metadata, created `now`; `None` if `policy` gives it
    /// no time at all (a zero absolute lifetime).
    pub(crate) fn create(now: u64, policy: &ExpiryPolicy) -> Option<Live> {
        let deadline = policy.deadline_ms(now, now)?;
        Some(Live {
            meta: Meta {
                created: now,
                deadline,
                filed: deadline,
                last: now,
                mark: now,
                reads: 0,
                writes: 0,
                idle: None,
                owner: None,
            },
            stored: None,
        })
    }

    /// Writes `live`'s row, with the reads still pending in the tally, and
    /// moves its index entries to match it. The expiry entry stays where it
    /// is filed while that is at or before the deadline (the sweeper files
    /// it again when it comes due); a new row is filed at its deadline.
    pub(crate) fn save(&mut self, id: &str, live: &Live) -> TxResult<()> {
        let pending = self.fold(id);
        // Removed earlier in this transaction and made again (a create
        // after a destroy): live once it commits.
        self.gone.retain(|gone| gone != id);
        let old = live.stored.as_ref();
        let filed = match old {
            Some(old) if old.filed <= live.meta.deadline => old.filed,
            _ => live.meta.deadline,
        };
        let adjusted;
        let new = if pending.reads == 0 && live.meta.filed == filed {
            &live.meta
        } else {
            adjusted = Meta {
                reads: live.meta.reads + pending.reads,
                filed,
                ..live.meta.clone()
            };
            &adjusted
        };
        if old == Some(new) {
            return Ok(());
        }
        // The handle (a hash) only when an index keyed by it moves.
        let old_owner = old.and_then(|old| old.owner.as_deref());
        let owner_moved = old.is_none() || old_owner != new.owner.as_deref();
        let mark_moved = old.map(|old| old.mark) != Some(new.mark);
        let handle = (owner_moved || mark_moved).then(|| Handle::of_stored(id));
        let handle = handle.as_ref().map_or("", Handle::as_str);
        if old.map(|old| old.filed) != Some(new.filed) {
            if let Some(old) = old {
                self.expiry.remove((old.filed, id))?;
            }
            self.expiry.insert((new.filed, id), ())?;
        }
        if mark_moved {
            if let Some(old) = old {
                self.activity.remove((old.mark, handle))?;
            }
            self.activity.insert((new.mark, handle), id)?;
        }
        if owner_moved {
            if let Some(owner) = old_owner {
                self.owners.remove((owner, handle))?;
            }
            if let Some(owner) = new.owner.as_deref() {
                self.owners.insert((owner, handle), id)?;
            }
        }
        self.records.insert((id, ROW), new.to_bytes().as_slice())?;
        Ok(())
    }

    /// The value of `key` in session `id`.
    pub(crate) fn value(&self, id: &str, key: &str) -> TxResult<Option<Vec<u8>>> {
        value_in(&self.records, id, key)
    }

    /// What session `id` holds, as `Limits::check_session` counts it.
    pub(crate) fn size(&self, id: &str) -> TxResult<SessionSize> {
        let end = range_end(id);
        let mut size = SessionSize::default();
        for entry in self.records.range(data_of(id, &end))? {
            let (key, value) = entry?;
            size.add(key.value().1, value.value().len());
        }
        Ok(size)
    }

    /// The length of the value of `key` in session `id`.
    pub(crate) fn value_len(&self, id: &str, key: &str) -> TxResult<Option<usize>> {
        Ok(self.records.get((id, key))?.map(|v| v.value().len()))
    }

    pub(crate) fn insert(&mut self, id: &str, key: &str, value: &[u8]) -> TxResult<()> {
        self.records.insert((id, key), value)?;
        Ok(())
    }

    /// Sets `key` of session `id` to `value`, replacing a value of
    /// `old_len` bytes if there is one, unless `limits` refuse the value or
    /// what the session would hold: then nothing is written.
    pub(crate) fn put_within(
        &mut self,
        id: &str,
        key: &str,
        value: &[u8],
        old_len: Option<usize>,
        limits: &Limits,
    ) -> TxResult<session_core::Result<()>> {
        // Only a new key or a longer value can cross a limit: skip the
        // session's size otherwise.
        if old_len.is_none_or(|old| value.len() > old) {
            if let Err(error) = limits.check_value(value) {
                return Ok(Err(error));
            }
            let before = self.size(id)?;
            let mut after = before;
            if let Some(old) = old_len {
                after.remove(key, old);
            }
            after.add(key, value.len());
            if let Err(error) = limits.check_session(before, after) {
                return Ok(Err(error));
            }
        }
        self.insert(id, key, value)?;
        Ok(Ok(()))
    }

    pub(crate) fn remove(&mut self, id: &str, key: &str) -> TxResult<()> {
        self.records.remove((id, key))?;
        Ok(())
    }

    /// Removes every data entry of session `id`; returns what they held.
    fn take_data(&mut self, id: &str) -> TxResult<Vec<(String, Vec<u8>)>> {
        let end = range_end(id);
        let mut taken = Vec::new();
        for entry in self
            .records
            .extract_from_if(data_of(id, &end), |_, _| true)?
        {
            let (key, value) = entry?;
            taken.push((key.value().1.to_owned(), value.value().to_vec()));
        }
        Ok(taken)
    }

    /// Removes the row of session `id` and its entries in every index, as
    /// `meta` (its stored row) places them.
    fn unindex(&mut self, id: &str, meta: &Meta) -> TxResult<()> {
        let handle = Handle::of_stored(id);
        self.records.remove((id, ROW))?;
        self.expiry.remove((meta.filed, id))?;
        self.activity.remove((meta.mark, handle.as_str()))?;
        if let Some(owner) = meta.owner.as_deref() {
            self.owners.remove((owner, handle.as_str()))?;
        }
        Ok(())
    }

    /// Removes the session `id` without reading its row, which does not
    /// decode: its data and row, and its expiry entry `filed`. The
    /// `owners` and `activity` entries that name it are the caller's to
    /// remove, by walking both (on this corruption path only).
    fn remove_raw(&mut self, id: &str, filed: u64) -> TxResult<()> {
        self.fold(id);
        self.gone.push(id.to_owned());
        self.take_data(id)?;
        self.records.remove((id, ROW))?;
        self.expiry.remove((filed, id))?;
        Ok(())
    }

    /// Removes everything of the session `id`, its index entries included.
    pub(crate) fn purge(&mut self, id: &str, meta: &Meta) -> TxResult<()> {
        // Its pending reads go with it.
        self.fold(id);
        self.gone.push(id.to_owned());
        self.take_data(id)?;
        self.unindex(id, meta)
    }

    /// Moves the live session `old` to the fresh id `new`: its data, its
    /// creation time, (slid) deadline and last activity, its counters, own
    /// idle timeout and owner; the indexes then name `new`.
    pub(crate) fn rename(&mut self, old: &str, new: &str, live: Live) -> TxResult<()> {
        if old == new {
            return self.save(new, &live);
        }
        // `new` is freshly minted; should it exist anyway, it is replaced whole.
        if let Some(existing) = self.meta(new)? {
            self.purge(new, &existing)?;
        }
        for (key, value) in self.take_data(old)? {
            self.records.insert((new, key.as_str()), value.as_slice())?;
        }
        if let Some(stored) = &live.stored {
            self.unindex(old, stored)?;
        }
        let mut meta = live.meta;
        meta.reads += self.fold(old).reads;
        self.gone.push(old.to_owned());
        self.renamed.push((old.to_owned(), new.to_owned()));
        let moved = Live { meta, stored: None };
        self.save(new, &moved)
    }

    /// Handles the expiry entries filed at or before `now`, at most `batch`,
    /// oldest first: removes their sessions if expired, with their index
    /// entries, or files them again at their deadline if alive. Returns how
    /// many entries it handled.
    pub(crate) fn sweep(&mut self, now: u64, batch: usize) -> TxResult<usize> {
        let mut due = Vec::with_capacity(batch.min(1024));
        for entry in self
            .expiry
            .range(..(now.saturating_add(1), ""))?
            .take(batch)
        {
            let (key, _) = entry?;
            let (filed, id) = key.value();
            due.push((filed, id.to_owned()));
        }
        let mut undecodable = Vec::new();
        for (filed, id) in &due {
            let mut meta = match self.meta(id) {
                Ok(meta) => meta,
                // A row that does not decode would stop every later sweep
                // at this entry: the session goes, found by its id. Not on
                // redb's own `Corrupted` (a damaged page): that fails the
                // sweep, as any error does.
                Err(redb::Error::Corrupted(_)) if self.undecodable(id)? => {
                    tracing::error!(session = %short(id), "store-redb: removing a session whose row does not decode");
                    self.remove_raw(id, *filed)?;
                    undecodable.push(id.as_str());
                    continue;
                }
                Err(error) => return Err(error),
            };
            let left = self
                .refreshes
                .zip(meta.as_ref())
                .and_then(|(refreshes, meta)| {
                    refreshes
                        .left_for(id, |left| refresh::deadline_for(left, meta, now))
                        .map(|(left, _)| left)
                });
            if let Some(left) = left {
                // Past its stored deadline, but a read slid it and no pass
                // has applied that yet: slid now, and filed again below.
                if let Some(stored) = meta.take() {
                    self.slide(id, &left, stored, now)?;
                    self.refreshed.push((id.clone(), left));
                }
                meta = self.meta(id)?;
            }
            match meta {
                Some(meta) if meta.deadline <= now => {
                    self.purge(id, &meta)?;
                    // A stale entry of the same session goes too.
                    self.expiry.remove((*filed, id.as_str()))?;
                }
                // Not the session's entry (only a damaged file has one).
                Some(meta) if meta.filed != *filed => {
                    self.expiry.remove((*filed, id.as_str()))?;
                }
                // Alive: filed again at its deadline. Its pending reads
                // stay in the tally, for its next save.
                Some(mut meta) => {
                    self.expiry.remove((*filed, id.as_str()))?;
                    meta.filed = meta.deadline;
                    self.expiry.insert((meta.filed, id.as_str()), ())?;
                    self.records
                        .insert((id.as_str(), ROW), meta.to_bytes().as_slice())?;
                }
                None => {
                    self.expiry.remove((*filed, id.as_str()))?;
                }
            }
        }
        if !undecodable.is_empty() {
            // One walk of each index for them all.
            self.owners
                .retain(|_, named| !undecodable.contains(&named))?;
            self.activity
                .retain(|_, named| !undecodable.contains(&named))?;
        }
        Ok(due.len())
    }

    /// Whether the row of session `id` is there but does not decode.
    fn undecodable(&self, id: &str) -> TxResult<bool> {
        let row = self.records.get((id, ROW))?;
        Ok(row.is_some_and(|row| Meta::from_bytes(row.value()).is_none()))
    }

    /// Removes every session and every index entry; returns how many
    /// sessions there were, expired ones not yet swept included, and how
    /// many of them were alive at `now`.
    pub(crate) fn clear(&mut self, now: u64) -> TxResult<(u64, u64)> {
        let (mut sessions, mut live) = (0, 0);
        for entry in self.records.iter()? {
            let (key, row) = entry?;
            if key.value().1 == ROW {
                sessions += 1;
                // A row that does not decode counts as expired: it goes too.
                let meta = Meta::from_bytes(row.value());
                live += u64::from(meta.is_some_and(|m| self.alive(key.value().0, &m, now)));
            }
        }
        // Their pending reads go with them, once this commits (see
        // `Taken::settle`).
        self.cleared = true;
        self.records.retain(|_, _| false)?;
        self.expiry.retain(|_, _| false)?;
        self.owners.retain(|_, _| false)?;
        self.activity.retain(|_, _| false)?;
        Ok((sessions, live))
    }

    /// Binds the live session `id` (its expiry and activity slid, not
    /// counted) to `owner`, then, with a `cap`, removes the owner's least
    /// recently active other sessions until at most `cap` remain. Returns
    /// whether the session was alive.
    pub(crate) fn bind(
        &mut self,
        id: &str,
        owner: &str,
        cap: Option<usize>,
        now: u64,
        policy: &ExpiryPolicy,
    ) -> TxResult<bool> {
        let Some(mut live) = self.live(id, now, policy)? else {
            return Ok(false);
        };
        live.meta.owner = Some(owner.to_owned());
        self.save(id, &live)?;
        let Some(cap) = cap else {
            return Ok(true);
        };
        let mut sessions = Vec::new();
        for (_, other, meta) in owned(&self.owners, &self.records, owner)? {
            if self.alive(&other, &meta, now) {
                // A read's time waits in the tally until a pass or the
                // session's next write takes it in: activity all the same.
                let pending = self.tally.map_or(0, |tally| tally.get(&other).last_ms);
                sessions.push((other, meta.last.max(pending)));
            } else {
                // Dead already: it goes now, and does not count.
                self.purge(&other, &meta)?;
            }
        }
        let last: Vec<(&str, u64)> = sessions.iter().map(|(id, l)| (id.as_str(), *l)).collect();
        for evicted in session_core::beyond_cap(&last, cap, id) {
            if let Some(meta) = self.meta(evicted)? {
                self.purge(evicted, &meta)?;
            }
        }
        Ok(true)
    }

    /// Removes every session of `owner` but `keep`; returns how many of
    /// them were alive at `now` (expired ones go too, uncounted).
    pub(crate) fn destroy_owner(
        &mut self,
        owner: &str,
        keep: Option<&str>,
        now: u64,
    ) -> TxResult<u64> {
        let mut destroyed = 0;
        for (_, id, meta) in owned(&self.owners, &self.records, owner)? {
            if keep == Some(id.as_str()) {
                continue;
            }
            destroyed += u64::from(self.alive(&id, &meta, now));
            self.purge(&id, &meta)?;
        }
        Ok(destroyed)
    }

    /// Removes the session of `owner` with `handle`; returns whether it was
    /// alive at `now` (an expired one goes too, and reports `false`).
    pub(crate) fn revoke(&mut self, owner: &str, handle: &Handle, now: u64) -> TxResult<bool> {
        let Some(id) = self
            .owners
            .get((owner, handle.as_str()))?
            .map(|id| id.value().to_owned())
        else {
            return Ok(false);
        };
        match self.meta(&id)? {
            Some(meta) if meta.owner.as_deref() == Some(owner) => {
                let alive = self.alive(&id, &meta, now);
                self.purge(&id, &meta)?;
                Ok(alive)
            }
            // The index disagrees with the session (only a damaged file
            // can): the entry goes, the session stays.
            _ => {
                self.owners.remove((owner, handle.as_str()))?;
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layout::{all_in, now_ms};
    use crate::verify::tests::problems;
    use redb::ReadableTableMetadata;
    use session_core::SessionId;
    use std::time::Duration;

    pub(crate) fn database() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        (dir, db)
    }

    /// A session saved twice in one commit (two writes in one group) takes
    /// its pending reads into its row once, and a read counted between the
    /// saves once more; the tally then holds none of them.
    #[test]
    fn reads_pending_are_taken_in_once_per_commit() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let tally = ReadTally::new();
        let id = "session";
        let tx = db.begin_write().unwrap();
        let folded = {
            let mut tables = Tables::open(&tx).unwrap();
            tables.tally = Some(&tally);
            let live = Tables::create(now_ms(), &policy).unwrap();
            tables.save(id, &live).unwrap();
            for _ in 0..3 {
                tally.add(id, now_ms());
            }
            let live = tables.live(id, now_ms(), &policy).unwrap().unwrap();
            tables.save(id, &live).unwrap();
            tally.add(id, now_ms());
            let live = tables.live(id, now_ms(), &policy).unwrap().unwrap();
            tables.save(id, &live).unwrap();
            assert_eq!(tables.meta(id).unwrap().unwrap().reads, 4);
            tables.taken()
        };
        tx.commit().unwrap();
        folded.settle(&tally, &DeferredRefreshes::new());
        assert_eq!(tally.get(id).reads, 0);
    }

    /// A read counted after a removal took its session's reads in (from a
    /// snapshot taken before the removal committed) goes with the session
    /// once a destroy commits, and moves to the new id once a regenerate
    /// does: the tally keeps nothing of the old id, which no transaction
    /// would touch again. A session destroyed and made again in one
    /// transaction keeps such a read: it is live.
    #[test]
    fn reads_racing_a_removal_go_with_the_session() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let (tally, refreshes) = (ReadTally::new(), DeferredRefreshes::new());
        for (id, kept) in [("destroyed", 0), ("renamed", 0), ("made again", 1)] {
            let tx = db.begin_write().unwrap();
            {
                let mut tables = Tables::open(&tx).unwrap();
                let live = Tables::create(now_ms(), &policy).unwrap();
                tables.save(id, &live).unwrap();
            }
            tx.commit().unwrap();
            tally.add(id, now_ms());
            let tx = db.begin_write().unwrap();
            let taken = {
                let mut tables = Tables::open(&tx).unwrap();
                tables.tally = Some(&tally);
                if id == "renamed" {
                    let live = tables.live(id, now_ms(), &policy).unwrap().unwrap();
                    tables.rename(id, "new", live).unwrap();
                } else {
                    let meta = tables.meta(id).unwrap().unwrap();
                    tables.purge(id, &meta).unwrap();
                }
                // The racing read.
                tally.add(id, now_ms());
                if id == "made again" {
                    let live = Tables::create(now_ms(), &policy).unwrap();
                    tables.save(id, &live).unwrap();
                    // Counted after the save: not in the new row.
                    tally.add(id, now_ms());
                }
                tables.taken()
            };
            tx.commit().unwrap();
            taken.settle(&tally, &refreshes);
            assert_eq!(tally.get(id).reads, kept, "{id}");
        }
        // The renamed session took the read counted before the rename into
        // its row, and the racing one is pending under its new id.
        let tx = db.begin_write().unwrap();
        let tables = Tables::open(&tx).unwrap();
        assert_eq!(tables.meta("new").unwrap().unwrap().reads, 1);
        assert_eq!(tally.get("new").reads, 1, "the racing read was lost");
    }

    /// A refresh left by a read slides the row as the read would have had
    /// it waited: not at all after a later operation, by the row's own
    /// idle timeout where one was set after the read's snapshot (a shorter
    /// lifetime stays short), and a session gone meanwhile takes its
    /// pending reads with it.
    #[test]
    fn a_left_refresh_slides_the_row_as_it_stands() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let tally = ReadTally::new();
        let refreshes = DeferredRefreshes::new();
        let t0 = now_ms();
        let read_at = t0 + 10_000;
        let tx = db.begin_write().unwrap();
        let taken = {
            let mut tables = Tables::open(&tx).unwrap();
            tables.tally = Some(&tally);
            tables.refreshes = Some(&refreshes);
            for id in ["read", "written", "shortened", "gone"] {
                let live = Tables::create(t0, &policy).unwrap();
                tables.save(id, &live).unwrap();
                refreshes.defer(
                    id,
                    DeferredRefresh {
                        at_ms: read_at,
                        policy,
                    },
                );
                tally.add(id, read_at);
            }
            // After the read, a write with a deadline of its own.
            let mut live = tables
                .live("written", read_at + 10_000, &policy)
                .unwrap()
                .unwrap();
            live.meta.deadline = t0 + 60_000;
            tables.save("written", &live).unwrap();
            // Before the read (its snapshot did not show it yet), a lifetime
            // of one minute.
            let mut live = tables
                .live("shortened", read_at - 1, &policy)
                .unwrap()
                .unwrap();
            live.meta.idle = Some(60_000);
            live.meta.deadline = read_at - 1 + 60_000;
            tables.save("shortened", &live).unwrap();
            let gone = tables.meta("gone").unwrap().unwrap();
            tables.purge("gone", &gone).unwrap();
            tally.add("gone", read_at + 1);

            assert_eq!(tables.apply_refreshes(read_at + 20_000).unwrap(), 4);
            let read = tables.meta("read").unwrap().unwrap();
            assert_eq!(
                (read.deadline, read.last, read.reads),
                (read_at + 3_600_000, read_at, 1)
            );
            let written = tables.meta("written").unwrap().unwrap();
            assert_eq!(
                written.deadline,
                t0 + 60_000,
                "the read undid a later write"
            );
            let shortened = tables.meta("shortened").unwrap().unwrap();
            assert_eq!(
                shortened.deadline,
                read_at + 60_000,
                "the read undid a shorter lifetime"
            );
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
            assert_eq!(tables.refreshed.len(), 4);
            tables.taken()
        };
        // Until the commit, a gone session's reads stay: a removal in the
        // same commit may yet fail.
        assert_eq!(tally.get("gone").reads, 2);
        tx.commit().unwrap();
        taken.settle(&tally, &refreshes);
        assert_eq!(tally.get("gone").reads, 0, "a gone session kept its reads");
        assert!(refreshes.is_empty());
    }

    /// Past its stored deadline, a session whose refresh no pass has
    /// applied yet is alive until the deadline the refresh gives: to an
    /// operation, to the sweeper (which slides and files it again) and to
    /// the pass. One with no refresh, or whose refresh came after its
    /// deadline or gives one past too, is expired.
    #[test]
    fn a_refresh_left_keeps_its_session_alive_past_the_stored_deadline() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        let refreshes = DeferredRefreshes::new();
        let t0 = now_ms();
        let (read_at, now) = (t0 + 50_000, t0 + 70_000);
        let left = DeferredRefresh {
            at_ms: read_at,
            policy,
        };
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            tables.refreshes = Some(&refreshes);
            // Swept in this order (by id): "a", "b", "c"; "d" is left to
            // the pass.
            for id in ["a-expired", "b-operated", "c-swept", "d-passed"] {
                let live = Tables::create(t0, &policy).unwrap();
                tables.save(id, &live).unwrap();
                if id != "a-expired" {
                    refreshes.defer(id, left);
                }
            }
            let meta = tables.meta("c-swept").unwrap().unwrap();
            assert_eq!(refresh::deadline_for(&left, &meta, now), Some(t0 + 110_000));
            assert_eq!(refresh::deadline_for(&left, &meta, t0 + 110_000), None);
            let late = DeferredRefresh {
                at_ms: t0 + 60_000,
                policy,
            };
            assert_eq!(refresh::deadline_for(&late, &meta, now), None);

            let live = tables.live("b-operated", now, &policy).unwrap();
            let live = live.expect("taken for expired");
            assert_eq!(live.meta.deadline, now + 60_000);
            tables.save("b-operated", &live).unwrap();
            assert_eq!(tables.sweep(now, 3).unwrap(), 3);
            assert_eq!(tables.meta("a-expired").unwrap(), None);
            let swept = tables.meta("c-swept").unwrap().unwrap();
            assert_eq!((swept.deadline, swept.last), (t0 + 110_000, read_at));
            assert_eq!(swept.filed, swept.deadline, "not filed again");
            assert_eq!(tables.refreshed, [("c-swept".to_owned(), left)]);
            tables.apply_refreshes(now).unwrap();
            let passed = tables.meta("d-passed").unwrap().unwrap();
            assert_eq!(passed.deadline, t0 + 110_000);
            assert_eq!(
                tables.meta("b-operated").unwrap().unwrap().deadline,
                now + 60_000
            );
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
        }
        tx.commit().unwrap();
    }

    #[test]
    fn one_sessions_range_holds_its_row_and_keys_only() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let policy = ExpiryPolicy::idle(Duration::from_secs(60));
            for id in ["ab", "a", "a\0"] {
                let live = Tables::create(now_ms(), &policy).unwrap();
                tables.save(id, &live).unwrap();
            }
            for (id, key) in [("ab", "c"), ("a", "bc"), ("a", "x"), ("a\0", "y")] {
                tables.insert(id, key, id.as_bytes()).unwrap();
            }
            let mut keys: Vec<_> = all_in(&tables.records, "a").unwrap().into_keys().collect();
            keys.sort();
            assert_eq!(keys, ["bc", "x"], "the row is no user key");
            let taken = tables.take_data("a").unwrap();
            assert_eq!(taken.len(), 2);
            assert!(tables.meta("a").unwrap().is_some(), "the row stays");
            assert_eq!(all_in(&tables.records, "ab").unwrap().len(), 1);
            assert_eq!(all_in(&tables.records, "a\0").unwrap().len(), 1);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
        }
        tx.commit().unwrap();
    }

    #[test]
    fn rows_round_trip_and_damaged_ones_are_errors() {
        let mut meta = Tables::create(5, &ExpiryPolicy::idle(Duration::from_secs(60)))
            .unwrap()
            .meta;
        assert_eq!(Meta::from_bytes(&meta.to_bytes()), Some(meta.clone()));
        (meta.idle, meta.owner) = (Some(7), Some("ada".to_owned()));
        meta.reads = u64::MAX;
        let bytes = meta.to_bytes();
        assert_eq!(Meta::from_bytes(&bytes), Some(meta));
        // Cut short anywhere before the owner (a shorter owner is still an
        // owner), or with a flag that is neither 0 nor 1.
        for len in 0..bytes.len() - "ada".len() {
            assert_eq!(Meta::from_bytes(&bytes[..len]), None, "{len} bytes");
        }
        let mut flag = bytes.clone();
        flag[56] = 2;
        assert_eq!(Meta::from_bytes(&flag), None);

        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            tables
                .records
                .insert(("t:bad", ROW), &b"short"[..])
                .unwrap();
            let error = tables.meta("t:bad").unwrap_err();
            assert!(matches!(error, redb::Error::Corrupted(_)), "{error:?}");
        }
        tx.commit().unwrap();
    }

    /// A row that does not decode holds up neither the sweeper nor the
    /// pass: the sweeper removes its session by id, with every entry that
    /// names it, and the pass drops its refresh and applies the others.
    #[test]
    fn a_row_that_does_not_decode_holds_up_neither_sweep_nor_pass() {
        let (_dir, db) = database();
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        let refreshes = DeferredRefreshes::new();
        let t0 = now_ms();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            tables.refreshes = Some(&refreshes);
            let good = session(&mut tables, Some("ada"));
            let bad = session(&mut tables, Some("ada"));
            tables.insert(&bad, "k", b"v").unwrap();
            tables
                .records
                .insert((bad.as_str(), ROW), &b"short"[..])
                .unwrap();
            let read = DeferredRefresh {
                at_ms: t0 + 30_000,
                policy,
            };
            refreshes.defer(&good, read);
            refreshes.defer(&bad, read);
            assert_eq!(tables.apply_refreshes(t0 + 31_000).unwrap(), 2);
            assert_eq!(tables.meta(&good).unwrap().unwrap().deadline, t0 + 90_000);
            // Both expiry entries are due, filed at the first deadline.
            assert_eq!(tables.sweep(t0 + 70_000, 10).unwrap(), 2);
            assert!(tables.records.get((bad.as_str(), ROW)).unwrap().is_none());
            assert_eq!(tables.value(&bad, "k").unwrap(), None);
            assert!(tables.meta(&good).unwrap().is_some());
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
        }
        tx.commit().unwrap();
    }

    /// A live session of `owner`, saved as the store saves one.
    pub(crate) fn session(tables: &mut Tables<'_>, owner: Option<&str>) -> String {
        let id = SessionId::generate("t:").as_str().to_owned();
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        let mut live = Tables::create(now_ms(), &policy).unwrap();
        live.meta.owner = owner.map(str::to_owned);
        tables.save(&id, &live).unwrap();
        id
    }

    /// The expiry entries filed at or before `now`, as (filed, id).
    fn filed_by(tables: &Tables<'_>, now: u64) -> Vec<(u64, String)> {
        tables
            .expiry
            .range(..(now + 1, ""))
            .unwrap()
            .map(|entry| {
                let (key, _) = entry.unwrap();
                let (filed, id) = key.value();
                (filed, id.to_owned())
            })
            .collect()
    }

    /// A slide later leaves the expiry entry where it is filed; a deadline
    /// moved earlier than it takes it along; the sweeper files a live
    /// session again at its deadline and removes an expired one.
    #[test]
    fn expiry_entries_are_filed_early_and_filed_again_by_the_sweeper() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let policy = ExpiryPolicy::idle(Duration::from_secs(60));
            let t0 = 1_000_000;
            let (busy, idle) = ("t:busy", "t:idle");
            for id in [busy, idle] {
                let live = Tables::create(t0, &policy).unwrap();
                tables.save(id, &live).unwrap();
            }
            // Slid three times: the entry stays at the first deadline.
            for step in 1..=3 {
                let live = tables.live(busy, t0 + step * 10_000, &policy).unwrap();
                tables.save(busy, &live.unwrap()).unwrap();
            }
            let meta = tables.meta(busy).unwrap().unwrap();
            assert_eq!((meta.deadline, meta.filed), (t0 + 90_000, t0 + 60_000));
            assert_eq!(tables.expiry.len().unwrap(), 2);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));

            // At the first deadline: `idle` expired, `busy` filed again.
            assert_eq!(filed_by(&tables, t0 + 60_000).len(), 2);
            assert_eq!(tables.sweep(t0 + 60_000, 10).unwrap(), 2);
            assert!(tables.meta(idle).unwrap().is_none());
            let meta = tables.meta(busy).unwrap().unwrap();
            assert_eq!(meta.filed, t0 + 90_000);
            assert_eq!(
                filed_by(&tables, u64::MAX - 1),
                [(t0 + 90_000, busy.to_owned())]
            );
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));

            // A shorter own idle timeout moves the deadline, and the entry,
            // earlier.
            let mut live = tables.live(busy, t0 + 70_000, &policy).unwrap().unwrap();
            live.meta.idle = Some(5_000);
            live.meta.deadline = t0 + 75_000;
            tables.save(busy, &live).unwrap();
            assert_eq!(tables.meta(busy).unwrap().unwrap().filed, t0 + 75_000);
            assert_eq!(filed_by(&tables, t0 + 75_000).len(), 1);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
            assert_eq!(tables.sweep(t0 + 75_000, 10).unwrap(), 1);
            assert_eq!(tables.records.len().unwrap(), 0);
            assert_eq!(tables.expiry.len().unwrap(), 0);
        }
        tx.commit().unwrap();
    }

    /// A session slid past where its entry is filed leaves no entry behind
    /// when it is renamed or removed.
    #[test]
    fn sessions_filed_early_are_renamed_and_purged_by_their_entry() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let policy = ExpiryPolicy::idle(Duration::from_secs(60));
            let t0 = 1_000_000;
            let live = Tables::create(t0, &policy).unwrap();
            tables.save("t:from", &live).unwrap();
            let live = tables.live("t:from", t0 + 5_000, &policy).unwrap().unwrap();
            assert!(live.meta.filed < live.meta.deadline);
            tables.rename("t:from", "t:to", live).unwrap();
            let meta = tables.meta("t:to").unwrap().unwrap();
            assert_eq!(meta.filed, meta.deadline);
            assert_eq!(
                filed_by(&tables, u64::MAX - 1),
                [(meta.filed, "t:to".to_owned())]
            );

            let live = tables.live("t:to", t0 + 9_000, &policy).unwrap().unwrap();
            tables.save("t:to", &live).unwrap();
            let meta = tables.meta("t:to").unwrap().unwrap();
            assert!(meta.filed < meta.deadline);
            tables.purge("t:to", &meta).unwrap();
            assert_eq!(tables.expiry.len().unwrap(), 0);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
        }
        tx.commit().unwrap();
    }

    #[test]
    fn purge_and_rename_keep_the_indexes_in_step() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let policy = ExpiryPolicy::idle(Duration::from_secs(60));
            let from = session(&mut tables, Some("ada"));
            tables.insert(&from, "k", b"v").unwrap();
            let to = SessionId::generate("t:").as_str().to_owned();
            let live = tables.live(&from, now_ms() + 5, &policy).unwrap().unwrap();
            tables.rename(&from, &to, live).unwrap();
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
            assert_eq!(tables.owners.len().unwrap(), 1);
            assert_eq!(tables.activity.len().unwrap(), 1);
            assert_eq!(tables.value(&to, "k").unwrap().as_deref(), Some(&b"v"[..]));

            let meta = tables.meta(&to).unwrap().unwrap();
            tables.purge(&to, &meta).unwrap();
            for len in [
                tables.records.len().unwrap(),
                tables.expiry.len().unwrap(),
                tables.owners.len().unwrap(),
                tables.activity.len().unwrap(),
            ] {
                assert_eq!(len, 0);
            }
        }
        tx.commit().unwrap();
    }
}
