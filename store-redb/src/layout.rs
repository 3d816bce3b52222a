//! How sessions are laid out in redb's tables, and a session's metadata:
//! its row in `records`.
//!
//! | table | key | value |
//! |---|---|---|
//! | `records` | (session id, `""`) | the session's row: [`Meta`] encoded (creation, deadline, where it is filed in `expiry`, last activity, its mark in `activity`, reads, writes, own idle timeout, owner) |
//! | `records` | (session id, user key) | the encoded value |
//! | `expiry` | (filed: the deadline, or earlier; session id) | nothing |
//! | `owners` | (owner, handle) | session id |
//! | `activity` | (mark: the last activity, to the grain; handle) | session id |
//!
//! Times are ms since the Unix epoch. redb orders tuple keys element by
//! element, so one session's row and data are one range of `records`, the
//! row first (no user key is empty), the sessions that may have expired
//! are a range at the start of `expiry` (the sweeper scans nothing else),
//! one owner's sessions are one range of `owners`, and the sessions active
//! since some time are the range of `activity` from it. No user key can
//! reach into another session's range: the id is a whole element of the
//! key.
//!
//! Everything a hot-path operation needs of a session is its row and the
//! value it reads or writes, side by side in one leaf page of `records`
//! (unless a session's values fill pages of their own): a write copies
//! that one page, where a row and data kept in tables of their own cost a
//! page of each (and a third more time per write at a million sessions). The
//! indexes are keyed by [`Handle`], never by id, so that a listing's order
//! and a page's cursor name no id; their values hold the id, so that an
//! entry leads to its session with one lookup.
//!
//! A session's `expiry` entry is *filed* at its deadline when it is created
//! and stays there while the deadline slides later: an operation moves it
//! only when the deadline moves earlier than it (a shorter idle timeout or
//! absolute lifetime, or the wall clock stepping back). The sweeper, which walks the entries filed at or before now,
//! files a session still alive there again at its current deadline. So an
//! entry never lies later than its session's deadline (the sweeper misses
//! nothing), and a session in use moves it about once an idle timeout, not
//! on every operation: at a million sessions, moving it on every write
//! cost about a quarter of a write's time, one more page of the B-tree
//! copied and written for each.
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

use std::collections::HashMap;
use std::ops::Bound;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, TableDefinition};
use session_core::{ExpiryPolicy, Handle, SessionInfo};

/// How far a session's last activity may run ahead of its `activity`
/// entry before the entry moves.
pub(crate) const ACTIVITY_GRAIN_MS: u64 = 1000;

/// Rows and data: see the table above.
pub(crate) const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
pub(crate) const OWNERS: TableDefinition<(&str, &str), &str> = TableDefinition::new("owners");
pub(crate) const ACTIVITY: TableDefinition<(u64, &str), &str> = TableDefinition::new("activity");

/// A `records` table, as a transaction or a snapshot opens it.
pub(crate) trait Records:
    ReadableTable<(&'static str, &'static str), &'static [u8]>
{
}
impl<T: ReadableTable<(&'static str, &'static str), &'static [u8]>> Records for T {}

/// The user key under which `records` holds a session's row: no user key
/// is empty, so the row comes first in the session's range.
pub(crate) const ROW: &str = "";

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
/// `(id, "")..(range_end(id), "")` is exactly the keys of session `id` in
/// `records` (or of owner `id` in `owners`).
pub(crate) fn range_end(id: &str) -> String {
    let mut end = String::with_capacity(id.len() + 1);
    end.push_str(id);
    end.push('\0');
    end
}

/// The keys of session `id`'s data in `records`, its row left out; `end`
/// is [`range_end`]`(id)`.
pub(crate) fn data_of<'a>(id: &'a str, end: &'a str) -> (KeyBound<'a>, KeyBound<'a>) {
    (Bound::Excluded((id, ROW)), Bound::Excluded((end, ROW)))
}

/// One end of a range of `records`.
pub(crate) type KeyBound<'a> = Bound<(&'a str, &'a str)>;

/// A session's metadata: its row in `records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Creation time.
    pub(crate) created: u64,
    /// When the session expires: the idle timeout from the last operation,
    /// capped by the absolute lifetime.
    pub(crate) deadline: u64,
    /// Its key in `expiry`: at most `deadline`.
    pub(crate) filed: u64,
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

/// Bytes of a row's seven u64 fields.
const FIXED: usize = 7 * 8;

impl Meta {
    /// `policy` with the session's own idle timeout, if it has one.
    pub(crate) fn policy(&self, policy: &ExpiryPolicy) -> ExpiryPolicy {
        self.idle.map_or(*policy, |idle| {
            policy.with_idle(Duration::from_millis(idle))
        })
    }

    /// The row's bytes: `created`, `deadline`, `filed`, `last`, `mark`,
    /// `reads` and `writes` as little-endian u64s; then 0, or 1 and `idle`
    /// as one more; then 0, or 1 and the owner's UTF-8 to the end.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let owner = self.owner.as_deref().unwrap_or_default();
        let mut bytes = Vec::with_capacity(FIXED + 1 + 8 + 1 + owner.len());
        for field in [
            self.created,
            self.deadline,
            self.filed,
            self.last,
            self.mark,
            self.reads,
            self.writes,
        ] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        match self.idle {
            Some(idle) => {
                bytes.push(1);
                bytes.extend_from_slice(&idle.to_le_bytes());
            }
            None => bytes.push(0),
        }
        match &self.owner {
            Some(owner) => {
                bytes.push(1);
                bytes.extend_from_slice(owner.as_bytes());
            }
            None => bytes.push(0),
        }
        bytes
    }

    /// A row from [`to_bytes`](Self::to_bytes); `None` if `bytes` are not
    /// one (only a damaged file has such a row).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Meta> {
        let (fixed, rest) = bytes.split_at_checked(FIXED)?;
        let mut fields = [0; 7];
        for (field, bytes) in fields.iter_mut().zip(fixed.chunks_exact(8)) {
            *field = u64::from_le_bytes(bytes.try_into().ok()?);
        }
        let [created, deadline, filed, last, mark, reads, writes] = fields;
        let (idle, rest) = match rest.split_first()? {
            (0, rest) => (None, rest),
            (1, rest) => {
                let (idle, rest) = rest.split_at_checked(8)?;
                (Some(u64::from_le_bytes(idle.try_into().ok()?)), rest)
            }
            _ => return None,
        };
        let owner = match rest.split_first()? {
            (0, []) => None,
            (1, owner) => Some(std::str::from_utf8(owner).ok()?.to_owned()),
            _ => return None,
        };
        Some(Meta {
            created,
            deadline,
            filed,
            last,
            mark,
            reads,
            writes,
            idle,
            owner,
        })
    }

    /// Whether the session is alive at `now` (an expired one may still be
    /// on disk until it is touched or swept).
    pub(crate) fn alive(&self, now: u64) -> bool {
        self.deadline > now
    }

    /// Records activity at `now`: the last activity moves (never back,
    /// should the wall clock), and the mark with it once a grain behind.
    pub(crate) fn touch(&mut self, now: u64) {
        self.last = self.last.max(now);
        if self.last.saturating_sub(self.mark) >= ACTIVITY_GRAIN_MS {
            self.mark = self.last;
        }
    }

    /// Whether the session counts as active at or after `since`.
    pub(crate) fn active_since(&self, since: u64) -> bool {
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

/// The value of `key` in session `id`, in a `records` table.
pub(crate) fn value_in(records: &impl Records, id: &str, key: &str) -> TxResult<Option<Vec<u8>>> {
    Ok(records.get((id, key))?.map(|v| v.value().to_vec()))
}

/// Every key and value of session `id`, in a `records` table.
pub(crate) fn all_in(records: &impl Records, id: &str) -> TxResult<HashMap<String, Vec<u8>>> {
    let end = range_end(id);
    let mut all = HashMap::new();
    for entry in records.range(data_of(id, &end))? {
        let (key, value) = entry?;
        all.insert(key.value().1.to_owned(), value.value().to_vec());
    }
    Ok(all)
}

/// The metadata of `id` in a `records` table, expired or not.
pub(crate) fn meta_in(records: &impl Records, id: &str) -> TxResult<Option<Meta>> {
    match records.get((id, ROW))? {
        None => Ok(None),
        Some(row) => Meta::from_bytes(row.value()).map(Some).ok_or_else(damaged),
    }
}

/// A row that does not decode: what it holds is not shown.
fn damaged() -> redb::Error {
    redb::Error::Corrupted("store-redb: a session row that does not decode".to_owned())
}

/// The sessions `owners` names for `owner`, with their metadata, in handle
/// order: (handle, id, metadata). Entries whose session is gone or bound to
/// someone else (only a damaged file has them) are left out.
pub(crate) fn owned(
    owners: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    records: &impl Records,
    owner: &str,
) -> TxResult<Vec<(String, String, Meta)>> {
    let end = range_end(owner);
    let mut found = Vec::new();
    for entry in owners.range((owner, "")..(end.as_str(), ""))? {
        let (key, id) = entry?;
        let (handle, id) = (key.value().1, id.value());
        if let Some(meta) = meta_in(records, id)? {
            if meta.owner.as_deref() == Some(owner) {
                found.push((handle.to_owned(), id.to_owned(), meta));
            }
        }
    }
    Ok(found)
}
