//! The tables of a store and what an operation does to them inside a write
//! transaction.
//!
//! | table | key | value |
//! |---|---|---|
//! | `sessions` | session id | [`Meta`]: creation, deadline, last activity, its mark in `activity`, reads, writes, own idle timeout, owner |
//! | `data` | (session id, user key) | the encoded value |
//! | `expiry` | (deadline, session id) | nothing |
//! | `owners` | (owner, handle) | session id |
//! | `activity` | (mark: the last activity, to the grain; handle) | session id |
//!
//! Times are ms since the Unix epoch. redb orders tuple keys element by
//! element, so one session's data is one range of `data` (`get_all` and
//! `del_all` need no key list), the expired sessions are a range at the
//! start of `expiry` (the sweeper scans nothing else), one owner's sessions
//! are one range of `owners`, and the sessions active since some time are
//! the range of `activity` from it. No user key can reach into another
//! session's range: the id is a whole element of the key.
//!
//! Everything a hot-path operation needs of a session is one row of
//! `sessions`, read once and written once per operation. The indexes are
//! keyed by [`Handle`], never by id, so that a listing's order and a page's
//! cursor name no id; their values hold the id, so that an entry leads to
//! its session with one lookup.
//!
//! A session's `activity` entry sits at its *mark*: its last activity as of
//! the last time the entry moved, which is only when the last activity has
//! moved [`ACTIVITY_GRAIN_MS`] or more past it. A session busy many times a
//! second therefore moves its entry once a second, not on every operation
//! (moving it on every one cost a fifth of the store's throughput under
//! load). The row keeps the exact last activity, and the mark is never
//! more than the grain behind it, so a query for "active since t" takes
//! the entries marked at or after t as they are and checks the row of
//! those marked in the grain before t: the answer stays exact.
//!
//! Files written before `sessions` existed keep each session's creation and
//! deadline in `meta`, and its own idle timeout in `lifetimes`; [`upgrade`]
//! moves them once, when the store is opened.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    TableHandle, WriteTransaction,
};
use session_core::{ActivePage, ExpiryPolicy, Handle, Limits, SessionId, SessionInfo, SessionSize};

/// A `sessions` row: (created, deadline, last activity, mark, reads,
/// writes, own idle timeout in ms, owner).
pub(crate) type Row = (
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    Option<u64>,
    Option<&'static str>,
);

/// How far a session's last activity may run ahead of its `activity`
/// entry before the entry moves.
pub(crate) const ACTIVITY_GRAIN_MS: u64 = 1000;

pub(crate) const SESSIONS: TableDefinition<&str, Row> = TableDefinition::new("sessions");
pub(crate) const DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("data");
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
pub(crate) const OWNERS: TableDefinition<(&str, &str), &str> = TableDefinition::new("owners");
pub(crate) const ACTIVITY: TableDefinition<(u64, &str), &str> = TableDefinition::new("activity");

/// Before per-session metadata: (created, deadline) per session.
const LEGACY_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
/// Before per-session metadata: the few sessions' own idle timeouts.
const LEGACY_LIFETIMES: TableDefinition<&str, u64> = TableDefinition::new("lifetimes");

/// What a step inside a transaction returns.
pub(crate) type TxResult<T> = Result<T, redb::Error>;

/// Now, in ms since the Unix epoch: deadlines outlive the process, so they
/// are wall-clock times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The string right after `id` in order (`id` followed by NUL), so that
/// `(id, "")..(range_end(id), "")` is exactly the keys of session `id`
/// (or of owner `id` in `owners`).
fn range_end(id: &str) -> String {
    let mut end = String::with_capacity(id.len() + 1);
    end.push_str(id);
    end.push('\0');
    end
}

/// A session's metadata: one `sessions` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Creation time.
    pub(crate) created: u64,
    /// When the session expires: the idle timeout from the last operation,
    /// capped by the absolute lifetime.
    pub(crate) deadline: u64,
    /// The last operation that slid the session.
    pub(crate) last: u64,
    /// Its key in `activity`: at most `last`, less than the grain behind.
    pub(crate) mark: u64,
    /// Reads of the live session.
    pub(crate) reads: u64,
    /// Applied writes.
    pub(crate) writes: u64,
    /// The session's own idle timeout in ms, used in place of the policy's.
    pub(crate) idle: Option<u64>,
    /// The user the session is bound to (its key in `owners`).
    pub(crate) owner: Option<String>,
}

impl Meta {
    /// `policy` with the session's own idle timeout, if it has one.
    pub(crate) fn policy(&self, policy: &ExpiryPolicy) -> ExpiryPolicy {
        self.idle.map_or(*policy, |idle| {
            policy.with_idle(Duration::from_millis(idle))
        })
    }

    fn from_row(row: (u64, u64, u64, u64, u64, u64, Option<u64>, Option<&str>)) -> Meta {
        let (created, deadline, last, mark, reads, writes, idle, owner) = row;
        Meta {
            created,
            deadline,
            last,
            mark,
            reads,
            writes,
            idle,
            owner: owner.map(str::to_owned),
        }
    }

    fn row(&self) -> (u64, u64, u64, u64, u64, u64, Option<u64>, Option<&str>) {
        (
            self.created,
            self.deadline,
            self.last,
            self.mark,
            self.reads,
            self.writes,
            self.idle,
            self.owner.as_deref(),
        )
    }

    /// Whether the session is alive at `now` (an expired one may still be
    /// on disk until it is touched or swept).
    pub(crate) fn alive(&self, now: u64) -> bool {
        self.deadline > now
    }

    /// Records activity at `now`: the last activity moves (never back,
    /// should the wall clock), and the mark with it once a grain behind.
    fn touch(&mut self, now: u64) {
        self.last = self.last.max(now);
        if self.last.saturating_sub(self.mark) >= ACTIVITY_GRAIN_MS {
            self.mark = self.last;
        }
    }

    /// Whether the session counts as active at or after `since`.
    fn active_since(&self, since: u64) -> bool {
        self.last >= since
    }

    /// What a listing shows of the session `id`, as of `now`.
    pub(crate) fn info(&self, id: &str, now: u64) -> SessionInfo {
        SessionInfo {
            handle: Handle::of_stored(id),
            owner: self.owner.clone(),
            created_ms: self.created,
            last_active_ms: self.last,
            reads: self.reads,
            writes: self.writes,
            idle: Duration::from_millis(now.saturating_sub(self.last)),
            ttl: Duration::from_millis(self.deadline.saturating_sub(now)),
        }
    }
}

/// The metadata of `id` in a `sessions` table, expired or not.
fn meta_in(sessions: &impl ReadableTable<&'static str, Row>, id: &str) -> TxResult<Option<Meta>> {
    Ok(sessions.get(id)?.map(|row| Meta::from_row(row.value())))
}

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
/// already slid.
pub(crate) struct Live {
    pub(crate) meta: Meta,
    /// Its row as stored, `None` for a session being created (or moved to
    /// a new id): what `save` moves the index entries from.
    stored: Option<Meta>,
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
    sessions: Table<'t, &'static str, Row>,
    data: Table<'t, (&'static str, &'static str), &'static [u8]>,
    expiry: Table<'t, (u64, &'static str), ()>,
    owners: Table<'t, (&'static str, &'static str), &'static str>,
    activity: Table<'t, (u64, &'static str), &'static str>,
}

impl<'t> Tables<'t> {
    pub(crate) fn open(tx: &'t WriteTransaction) -> TxResult<Tables<'t>> {
        Ok(Tables {
            sessions: tx.open_table(SESSIONS)?,
            data: tx.open_table(DATA)?,
            expiry: tx.open_table(EXPIRY)?,
            owners: tx.open_table(OWNERS)?,
            activity: tx.open_table(ACTIVITY)?,
        })
    }

    /// The stored metadata of `id`, expired or not.
    pub(crate) fn meta(&self, id: &str) -> TxResult<Option<Meta>> {
        meta_in(&self.sessions, id)
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
        let deadline = meta
            .alive(now)
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
        Some(Live {
            meta: Meta {
                created: now,
                deadline: policy.deadline_ms(now, now)?,
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

    /// Writes `live`'s row and moves its index entries to match it.
    pub(crate) fn save(&mut self, id: &str, live: &Live) -> TxResult<()> {
        let new = &live.meta;
        let old = live.stored.as_ref();
        if old == Some(new) {
            return Ok(());
        }
        // The handle (a hash) only when an index keyed by it moves.
        let old_owner = old.and_then(|old| old.owner.as_deref());
        let owner_moved = old.is_none() || old_owner != new.owner.as_deref();
        let mark_moved = old.map(|old| old.mark) != Some(new.mark);
        let handle = (owner_moved || mark_moved).then(|| Handle::of_stored(id));
        let handle = handle.as_ref().map_or("", Handle::as_str);
        if old.map(|old| old.deadline) != Some(new.deadline) {
            if let Some(old) = old {
                self.expiry.remove((old.deadline, id))?;
            }
            self.expiry.insert((new.deadline, id), ())?;
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
        self.sessions.insert(id, new.row())?;
        Ok(())
    }

    /// The value of `key` in session `id`.
    pub(crate) fn value(&self, id: &str, key: &str) -> TxResult<Option<Vec<u8>>> {
        Ok(self.data.get((id, key))?.map(|v| v.value().to_vec()))
    }

    /// What session `id` holds, as `Limits::check_session` counts it.
    pub(crate) fn size(&self, id: &str) -> TxResult<SessionSize> {
        let end = range_end(id);
        let mut size = SessionSize::default();
        for entry in self.data.range((id, "")..(end.as_str(), ""))? {
            let (key, value) = entry?;
            size.add(key.value().1, value.value().len());
        }
        Ok(size)
    }

    /// The length of the value of `key` in session `id`.
    pub(crate) fn value_len(&self, id: &str, key: &str) -> TxResult<Option<usize>> {
        Ok(self.data.get((id, key))?.map(|v| v.value().len()))
    }

    /// Every key and value of session `id`.
    pub(crate) fn all(&self, id: &str) -> TxResult<HashMap<String, Vec<u8>>> {
        let end = range_end(id);
        let mut all = HashMap::new();
        for entry in self.data.range((id, "")..(end.as_str(), ""))? {
            let (key, value) = entry?;
            all.insert(key.value().1.to_owned(), value.value().to_vec());
        }
        Ok(all)
    }

    pub(crate) fn insert(&mut self, id: &str, key: &str, value: &[u8]) -> TxResult<()> {
        self.data.insert((id, key), value)?;
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
        self.data.remove((id, key))?;
        Ok(())
    }

    /// Removes every data entry of session `id`; returns what they held.
    fn take_data(&mut self, id: &str) -> TxResult<Vec<(String, Vec<u8>)>> {
        let end = range_end(id);
        let mut taken = Vec::new();
        for entry in self
            .data
            .extract_from_if((id, "")..(end.as_str(), ""), |_, _| true)?
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
        self.sessions.remove(id)?;
        self.expiry.remove((meta.deadline, id))?;
        self.activity.remove((meta.mark, handle.as_str()))?;
        if let Some(owner) = meta.owner.as_deref() {
            self.owners.remove((owner, handle.as_str()))?;
        }
        Ok(())
    }

    /// Removes everything of the session `id`, its index entries included.
    pub(crate) fn purge(&mut self, id: &str, meta: &Meta) -> TxResult<()> {
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
            self.data.insert((new, key.as_str()), value.as_slice())?;
        }
        if let Some(stored) = &live.stored {
            self.unindex(old, stored)?;
        }
        let moved = Live {
            meta: live.meta,
            stored: None,
        };
        self.save(new, &moved)
    }

    /// Removes sessions whose deadline is at or before `now`, at most
    /// `batch`, oldest first, with their index entries. Returns how many
    /// expiry entries it handled.
    pub(crate) fn sweep(&mut self, now: u64, batch: usize) -> TxResult<usize> {
        let mut due = Vec::with_capacity(batch.min(1024));
        for entry in self
            .expiry
            .range(..(now.saturating_add(1), ""))?
            .take(batch)
        {
            let (key, _) = entry?;
            let (deadline, id) = key.value();
            due.push((deadline, id.to_owned()));
        }
        for (deadline, id) in &due {
            match self.meta(id)? {
                Some(meta) if meta.deadline <= now => {
                    self.purge(id, &meta)?;
                    // A stale entry of the same session goes too.
                    self.expiry.remove((*deadline, id.as_str()))?;
                }
                // Moved meanwhile: only this entry is stale.
                Some(meta) if meta.deadline != *deadline => {
                    self.expiry.remove((*deadline, id.as_str()))?;
                }
                Some(_) => {}
                None => {
                    self.expiry.remove((*deadline, id.as_str()))?;
                }
            }
        }
        Ok(due.len())
    }

    /// Removes every session and every index entry; returns how many
    /// sessions there were, expired ones not yet swept included, and how
    /// many of them were alive at `now`.
    pub(crate) fn clear(&mut self, now: u64) -> TxResult<(u64, u64)> {
        let sessions = self.sessions.len()?;
        let mut live = 0;
        for entry in self.sessions.iter()? {
            let (_, row) = entry?;
            live += u64::from(Meta::from_row(row.value()).alive(now));
        }
        self.sessions.retain(|_, _| false)?;
        self.data.retain(|_, _| false)?;
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
        for (_, other, meta) in owned(&self.owners, &self.sessions, owner)? {
            if meta.alive(now) {
                sessions.push((other, meta.last));
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
        for (_, id, meta) in owned(&self.owners, &self.sessions, owner)? {
            if keep == Some(id.as_str()) {
                continue;
            }
            destroyed += u64::from(meta.alive(now));
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
                self.purge(&id, &meta)?;
                Ok(meta.alive(now))
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

/// The sessions `owners` names for `owner`, with their metadata, in handle
/// order: (handle, id, metadata). Entries whose session is gone or bound to
/// someone else (only a damaged file has them) are left out.
fn owned(
    owners: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    sessions: &impl ReadableTable<&'static str, Row>,
    owner: &str,
) -> TxResult<Vec<(String, String, Meta)>> {
    let end = range_end(owner);
    let mut found = Vec::new();
    for entry in owners.range((owner, "")..(end.as_str(), ""))? {
        let (key, id) = entry?;
        let (handle, id) = (key.value().1, id.value());
        if let Some(meta) = meta_in(sessions, id)? {
            if meta.owner.as_deref() == Some(owner) {
                found.push((handle.to_owned(), id.to_owned(), meta));
            }
        }
    }
    Ok(found)
}

/// Moves the sessions of a file written before `sessions` existed into it,
/// in the transaction that opens the store, and drops the old tables.
/// Their counters start at zero, with no owner, and their last activity
/// is the latest time known for it (the creation, or the deadline less the
/// session's own idle timeout), until their next operation. Returns how
/// many sessions it moved; a file without the old tables costs nothing.
pub(crate) fn upgrade(tx: &WriteTransaction) -> TxResult<u64> {
    let legacy: Vec<String> = tx
        .list_tables()?
        .map(|table| table.name().to_owned())
        .collect();
    let has = |name: &str| legacy.iter().any(|table| table == name);
    if !has(LEGACY_META.name()) && !has(LEGACY_LIFETIMES.name()) {
        return Ok(0);
    }
    let mut moved = 0;
    {
        let old_meta = tx.open_table(LEGACY_META)?;
        let lifetimes = tx.open_table(LEGACY_LIFETIMES)?;
        let mut tables = Tables::open(tx)?;
        for entry in old_meta.iter()? {
            let (id, value) = entry?;
            let (id, (created, deadline)) = (id.value(), value.value());
            // Written by this version meanwhile (a downgrade and back): kept.
            if tables.meta(id)?.is_some() {
                continue;
            }
            let idle = lifetimes.get(id)?.map(|v| v.value());
            let last = idle.map_or(created, |idle| deadline.saturating_sub(idle).max(created));
            let live = Live {
                meta: Meta {
                    created,
                    deadline,
                    last,
                    mark: last,
                    reads: 0,
                    writes: 0,
                    idle,
                    owner: None,
                },
                stored: None,
            };
            // Its expiry entry is already there: `save` writes the same key.
            tables.save(id, &live)?;
            moved += 1;
        }
    }
    tx.delete_table(LEGACY_META)?;
    tx.delete_table(LEGACY_LIFETIMES)?;
    Ok(moved)
}

/// The tables open in one read transaction: a snapshot, for the store-wide
/// queries, which never wait for the writer.
pub(crate) struct Snapshot {
    sessions: ReadOnlyTable<&'static str, Row>,
    expiry: ReadOnlyTable<(u64, &'static str), ()>,
    owners: ReadOnlyTable<(&'static str, &'static str), &'static str>,
    activity: ReadOnlyTable<(u64, &'static str), &'static str>,
}

impl Snapshot {
    pub(crate) fn open(tx: &ReadTransaction) -> Result<Snapshot, redb::TableError> {
        Ok(Snapshot {
            sessions: tx.open_table(SESSIONS)?,
            expiry: tx.open_table(EXPIRY)?,
            owners: tx.open_table(OWNERS)?,
            activity: tx.open_table(ACTIVITY)?,
        })
    }

    /// Sessions in the table, expired ones not yet swept included.
    pub(crate) fn len_on_disk(&self) -> TxResult<u64> {
        Ok(self.sessions.len()?)
    }

    /// The metadata of the live session `id`.
    pub(crate) fn info(&self, id: &str, now: u64) -> TxResult<Option<SessionInfo>> {
        Ok(meta_in(&self.sessions, id)?
            .filter(|meta| meta.alive(now))
            .map(|meta| meta.info(id, now)))
    }

    /// The live sessions of `owner`, most recently active first: one range
    /// of `owners` and a lookup per session, O(k log n).
    pub(crate) fn owner_sessions(&self, owner: &str, now: u64) -> TxResult<Vec<SessionInfo>> {
        let mut sessions: Vec<SessionInfo> = owned(&self.owners, &self.sessions, owner)?
            .into_iter()
            .filter(|(_, _, meta)| meta.alive(now))
            .map(|(_, id, meta)| meta.info(&id, now))
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
            if let Some(meta) = meta_in(&self.sessions, id)? {
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
                meta_in(&self.sessions, id.value())?
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
            let Some(meta) = meta_in(&self.sessions, id)? else {
                continue;
            };
            if !meta.alive(now) || meta.mark != mark || !meta.active_since(since) {
                continue;
            }
            page.sessions.push(meta.info(id, now));
            if page.sessions.len() == limit {
                page.next = Some(cursor_text(mark, handle));
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

/// A page's cursor: the mark and handle of its last session. It names no
/// id, and orders the same whatever the sessions do meanwhile.
fn cursor_text(mark: u64, handle: &str) -> String {
    format!("{mark}.{handle}")
}

/// The position a cursor names, if it is one of ours.
pub(crate) fn parse_cursor(cursor: &str) -> Option<(u64, Handle)> {
    let (mark, handle) = cursor.split_once('.')?;
    Some((mark.parse().ok()?, Handle::parse(handle)?))
}

/// Checks that the tables agree: every session has exactly one expiry
/// entry, at its deadline, one activity entry, at its mark, and,
/// if it has an owner, one owner entry; every index and data entry belongs
/// to a session that places it there. Returns the problems found, naming
/// sessions by the few characters of their id that session-core shows and
/// never showing an owner.
pub(crate) fn verify(
    sessions: &impl ReadableTable<&'static str, Row>,
    data: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    expiry: &impl ReadableTable<(u64, &'static str), ()>,
    owners: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    activity: &impl ReadableTable<(u64, &'static str), &'static str>,
) -> TxResult<Vec<String>> {
    let mut problems = Vec::new();
    let mut metas = HashMap::new();
    for entry in sessions.iter()? {
        let (id, row) = entry?;
        metas.insert(id.value().to_owned(), Meta::from_row(row.value()));
    }
    let mut indexed = HashSet::new();
    for entry in expiry.iter()? {
        let (key, _) = entry?;
        let (deadline, id) = key.value();
        if metas.get(id).map(|meta| meta.deadline) == Some(deadline) {
            indexed.insert(id.to_owned());
        } else {
            problems.push(format!(
                "stray expiry entry at {deadline} for {}",
                short(id)
            ));
        }
    }
    let mut active = HashSet::new();
    for entry in activity.iter()? {
        let (key, id) = entry?;
        let ((mark, handle), id) = (key.value(), id.value());
        let sound = Handle::of_stored(id).as_str() == handle
            && metas.get(id).map(|meta| meta.mark) == Some(mark);
        if sound && active.insert(id.to_owned()) {
            continue;
        }
        problems.push(format!("stray activity entry at {mark} for {}", short(id)));
    }
    let mut bound = HashSet::new();
    for entry in owners.iter()? {
        let (key, id) = entry?;
        let ((owner, handle), id) = (key.value(), id.value());
        let sound = Handle::of_stored(id).as_str() == handle
            && metas.get(id).and_then(|meta| meta.owner.as_deref()) == Some(owner);
        if sound && bound.insert(id.to_owned()) {
            continue;
        }
        problems.push(format!("stray owner entry for {}", short(id)));
    }
    for (id, meta) in &metas {
        if !indexed.contains(id) {
            problems.push(format!(
                "session {}: no expiry entry at its deadline",
                short(id)
            ));
        }
        if !active.contains(id) {
            problems.push(format!(
                "session {}: no activity entry at its mark",
                short(id)
            ));
        }
        if meta.owner.is_some() && !bound.contains(id) {
            problems.push(format!("session {}: no entry for its owner", short(id)));
        }
        if meta.last < meta.created {
            problems.push(format!(
                "session {}: last activity before its creation",
                short(id)
            ));
        }
        // Queries find a session by its mark only this close to its last
        // activity.
        if meta.mark > meta.last || meta.last - meta.mark >= ACTIVITY_GRAIN_MS {
            problems.push(format!(
                "session {}: its mark is not within the grain of its last activity",
                short(id)
            ));
        }
    }
    for entry in data.iter()? {
        let (key, _) = entry?;
        let (id, _) = key.value();
        if !metas.contains_key(id) {
            problems.push(format!("stray data entry of {}", short(id)));
        }
    }
    Ok(problems)
}

/// An id as session-core shows it (a few characters of the token, too few
/// to use as a credential), or `?` for one that does not parse.
fn short(id: &str) -> String {
    SessionId::from_stored(id).map_or_else(|| "?".to_string(), |id| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn database() -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        (dir, db)
    }

    #[test]
    fn one_sessions_range_holds_its_keys_only() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            for (id, key) in [
                ("ab", "c"),
                ("a", "bc"),
                ("a", "x"),
                ("a\0", "y"),
                ("a", ""),
            ] {
                tables.insert(id, key, id.as_bytes()).unwrap();
            }
            let mut keys: Vec<_> = tables.all("a").unwrap().into_keys().collect();
            keys.sort();
            assert_eq!(keys, ["", "bc", "x"]);
            let taken = tables.take_data("a").unwrap();
            assert_eq!(taken.len(), 3);
            assert_eq!(tables.all("ab").unwrap().len(), 1);
            assert_eq!(tables.all("a\0").unwrap().len(), 1);
        }
        tx.commit().unwrap();
    }

    fn problems(tables: &Tables<'_>) -> Vec<String> {
        verify(
            &tables.sessions,
            &tables.data,
            &tables.expiry,
            &tables.owners,
            &tables.activity,
        )
        .unwrap()
    }

    /// A live session of `owner`, saved as the store saves one.
    fn session(tables: &mut Tables<'_>, owner: Option<&str>) -> String {
        let id = SessionId::generate("t:").as_str().to_owned();
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        let mut live = Tables::create(now_ms(), &policy).unwrap();
        live.meta.owner = owner.map(str::to_owned);
        tables.save(&id, &live).unwrap();
        id
    }

    #[test]
    fn verify_reports_tables_that_disagree() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let id = session(&mut tables, None);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
            let deadline = tables.meta(&id).unwrap().unwrap().deadline;
            tables.expiry.remove((deadline, id.as_str())).unwrap();
            tables.expiry.insert((3, id.as_str()), ()).unwrap();
            tables.insert("s2", "orphan", b"x").unwrap();
            let problems = problems(&tables);
            // No entry at the deadline, a stray one at 3, orphaned data of s2.
            assert_eq!(problems.len(), 3, "{problems:?}");
            assert!(
                problems.iter().all(|p| !p.contains("orphan")),
                "user keys stay out of reports"
            );
        }
        tx.commit().unwrap();
    }

    #[test]
    fn verify_reports_index_entries_that_disagree() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let ada = session(&mut tables, Some("ada-secret-owner"));
            let plain = session(&mut tables, None);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));

            let (ada_handle, plain_handle) = (Handle::of_stored(&ada), Handle::of_stored(&plain));
            // Ada's owner entry gone, an owner entry for a session with no
            // owner, an activity entry at the wrong time, another naming a
            // session that does not exist.
            tables
                .owners
                .remove(("ada-secret-owner", ada_handle.as_str()))
                .unwrap();
            tables
                .owners
                .insert(("ada-secret-owner", plain_handle.as_str()), plain.as_str())
                .unwrap();
            let last = tables.meta(&plain).unwrap().unwrap().mark;
            tables
                .activity
                .remove((last, plain_handle.as_str()))
                .unwrap();
            tables
                .activity
                .insert((last + 1, plain_handle.as_str()), plain.as_str())
                .unwrap();
            let ghost = SessionId::generate("t:");
            tables
                .activity
                .insert((last, Handle::of(&ghost).as_str()), ghost.as_str())
                .unwrap();
            let problems = problems(&tables);
            // Ada: no owner entry. Plain: a stray owner entry, a stray
            // activity entry and none at its time. The ghost's entry.
            assert_eq!(problems.len(), 5, "{problems:?}");
            for problem in &problems {
                assert!(
                    !problem.contains("ada-secret"),
                    "owners stay out: {problem}"
                );
                for id in [&ada, &plain, &ghost.as_str().to_owned()] {
                    let token = &id[id.len() - 20..];
                    assert!(!problem.contains(token), "ids stay out: {problem}");
                }
            }
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
                tables.sessions.len().unwrap(),
                tables.data.len().unwrap(),
                tables.expiry.len().unwrap(),
                tables.owners.len().unwrap(),
                tables.activity.len().unwrap(),
            ] {
                assert_eq!(len, 0);
            }
        }
        tx.commit().unwrap();
    }

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

    #[test]
    fn cursors_name_no_id_and_refuse_garbage() {
        let handle = Handle::of(&SessionId::generate("t:"));
        let text = cursor_text(1_700_000_000_000, handle.as_str());
        assert_eq!(parse_cursor(&text), Some((1_700_000_000_000, handle)));
        for bad in ["", "12", "x.y", "12.short", "-1.aaaaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
