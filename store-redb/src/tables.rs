//! The three tables of a store and what an operation does to them inside a
//! write transaction.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | session id | (creation time, deadline), ms since the Unix epoch |
//! | `data` | (session id, user key) | the encoded value |
//! | `expiry` | (deadline, session id) | nothing |
//! | `lifetimes` | session id | its own idle timeout in ms, for the few sessions given one |
//!
//! redb orders tuple keys element by element, so one session's data is one
//! range of `data` (`get_all` and `del_all` need no key list) and the expired
//! sessions are a range at the start of `expiry` (the sweeper scans nothing
//! else). No user key can reach into another session's range: the id is a
//! whole element of the key.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, ReadableTableMetadata, Table, TableDefinition, WriteTransaction};
use session_core::{ExpiryPolicy, SessionId, SessionSize};

pub(crate) const META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
pub(crate) const DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("data");
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
/// Apart from `meta`, so that files written before it still open, and most
/// sessions, which have no idle timeout of their own, cost nothing in it.
pub(crate) const LIFETIMES: TableDefinition<&str, u64> = TableDefinition::new("lifetimes");

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
/// `(id, "")..(range_end(id), "")` is exactly the keys of session `id`.
fn range_end(id: &str) -> String {
    let mut end = String::with_capacity(id.len() + 1);
    end.push_str(id);
    end.push('\0');
    end
}

/// A session's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Creation time.
    pub(crate) created: u64,
    /// When the session expires: the idle timeout from the last operation,
    /// capped by the absolute lifetime.
    pub(crate) deadline: u64,
    /// The session's own idle timeout in ms, used in place of the policy's.
    pub(crate) idle: Option<u64>,
}

impl Meta {
    /// `policy` with the session's own idle timeout, if it has one.
    pub(crate) fn policy(&self, policy: &ExpiryPolicy) -> ExpiryPolicy {
        self.idle.map_or(*policy, |idle| {
            policy.with_idle(std::time::Duration::from_millis(idle))
        })
    }
}

/// A live session found in a transaction, its deadline already slid.
pub(crate) struct Live {
    pub(crate) meta: Meta,
    /// Its deadline as stored, `None` for a session being created.
    old_deadline: Option<u64>,
    /// Its own idle timeout changed: `save` writes it.
    pub(crate) idle_changed: bool,
}

/// The tables, open in one write transaction.
pub(crate) struct Tables<'t> {
    meta: Table<'t, &'static str, (u64, u64)>,
    data: Table<'t, (&'static str, &'static str), &'static [u8]>,
    expiry: Table<'t, (u64, &'static str), ()>,
    lifetimes: Table<'t, &'static str, u64>,
}

impl<'t> Tables<'t> {
    pub(crate) fn open(tx: &'t WriteTransaction) -> TxResult<Tables<'t>> {
        Ok(Tables {
            meta: tx.open_table(META)?,
            data: tx.open_table(DATA)?,
            expiry: tx.open_table(EXPIRY)?,
            lifetimes: tx.open_table(LIFETIMES)?,
        })
    }

    /// The stored metadata of `id`, expired or not.
    pub(crate) fn meta(&self, id: &str) -> TxResult<Option<Meta>> {
        let Some((created, deadline)) = self.meta.get(id)?.map(|guard| guard.value()) else {
            return Ok(None);
        };
        let idle = self.lifetimes.get(id)?.map(|guard| guard.value());
        Ok(Some(Meta {
            created,
            deadline,
            idle,
        }))
    }

    /// The session `id` if it is alive at `now` under `policy`, with its
    /// deadline slid to what `policy` gives now (not yet saved). An expired
    /// session is removed on the spot and reported absent.
    pub(crate) fn live(
        &mut self,
        id: &str,
        now: u64,
        policy: &ExpiryPolicy,
    ) -> TxResult<Option<Live>> {
        let Some(meta) = self.meta(id)? else {
            return Ok(None);
        };
        let deadline = (meta.deadline > now)
            .then(|| meta.policy(policy).deadline_ms(meta.created, now))
            .flatten();
        match deadline {
            Some(deadline) => Ok(Some(Live {
                meta: Meta { deadline, ..meta },
                old_deadline: Some(meta.deadline),
                idle_changed: false,
            })),
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
                idle: None,
            },
            old_deadline: None,
            idle_changed: false,
        })
    }

    /// Writes `live`'s metadata and moves its expiry entry.
    pub(crate) fn save(&mut self, id: &str, live: &Live) -> TxResult<()> {
        let Meta {
            created,
            deadline,
            idle,
        } = live.meta;
        // A new entry (created, or moved by `rename`) or a changed timeout.
        if live.idle_changed || (live.old_deadline.is_none() && idle.is_some()) {
            match idle {
                Some(idle) => self.lifetimes.insert(id, idle)?,
                None => self.lifetimes.remove(id)?,
            };
        }
        if live.old_deadline != Some(deadline) {
            if let Some(old) = live.old_deadline {
                self.expiry.remove((old, id))?;
            }
            self.expiry.insert((deadline, id), ())?;
            self.meta.insert(id, (created, deadline))?;
        }
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

    /// Removes everything of the session `id`.
    pub(crate) fn purge(&mut self, id: &str, meta: &Meta) -> TxResult<()> {
        self.take_data(id)?;
        self.meta.remove(id)?;
        if meta.idle.is_some() {
            self.lifetimes.remove(id)?;
        }
        self.expiry.remove((meta.deadline, id))?;
        Ok(())
    }

    /// Moves the live session `old` to the fresh id `new`: its data, its
    /// creation time and its (slid) deadline.
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
        self.meta.remove(old)?;
        if live.meta.idle.is_some() {
            self.lifetimes.remove(old)?;
        }
        if let Some(deadline) = live.old_deadline {
            self.expiry.remove((deadline, old))?;
        }
        let moved = Live {
            meta: live.meta,
            old_deadline: None,
            idle_changed: false,
        };
        self.save(new, &moved)
    }

    /// Removes sessions whose deadline is at or before `now`, at most
    /// `batch`, oldest first. Returns how many expiry entries it handled.
    pub(crate) fn sweep(&mut self, now: u64, batch: usize) -> TxResult<usize> {
        let mut due = Vec::with_capacity(batch.min(1024));
        for entry in self
            .expiry
            .range(..(now.saturating_add(1), ""))?
            .take(batch)
        {
            let (key, ()) = entry.map(|(k, _)| (k, ()))?;
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

    /// Removes every session; returns how many there were (expired ones not
    /// yet swept included).
    pub(crate) fn clear(&mut self) -> TxResult<u64> {
        let sessions = self.meta.len()?;
        self.meta.retain(|_, _| false)?;
        self.data.retain(|_, _| false)?;
        self.expiry.retain(|_, _| false)?;
        self.lifetimes.retain(|_, _| false)?;
        Ok(sessions)
    }
}

/// Checks that the tables agree: every session has exactly one expiry
/// entry, at its deadline; every expiry and data entry belongs to a session.
/// Returns the problems found.
pub(crate) fn verify(
    meta: &impl ReadableTable<&'static str, (u64, u64)>,
    data: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    expiry: &impl ReadableTable<(u64, &'static str), ()>,
) -> TxResult<Vec<String>> {
    let mut problems = Vec::new();
    let mut deadlines = HashMap::new();
    for entry in meta.iter()? {
        let (id, value) = entry?;
        let (_, deadline) = value.value();
        deadlines.insert(id.value().to_owned(), deadline);
    }
    let mut indexed = HashSet::new();
    for entry in expiry.iter()? {
        let (key, _) = entry?;
        let (deadline, id) = key.value();
        if deadlines.get(id) == Some(&deadline) {
            indexed.insert(id.to_owned());
        } else {
            problems.push(format!(
                "stray expiry entry at {deadline} for {}",
                short(id)
            ));
        }
    }
    for id in deadlines.keys() {
        if !indexed.contains(id) {
            problems.push(format!(
                "session {}: no expiry entry at its deadline",
                short(id)
            ));
        }
    }
    for entry in data.iter()? {
        let (key, _) = entry?;
        let (id, _) = key.value();
        if !deadlines.contains_key(id) {
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

    #[test]
    fn verify_reports_tables_that_disagree() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            tables.meta.insert("s1", (1, 2)).unwrap();
            tables.expiry.insert((3, "s1"), ()).unwrap();
            tables.insert("s2", "orphan", b"x").unwrap();
            let problems = verify(&tables.meta, &tables.data, &tables.expiry).unwrap();
            // No entry at s1's deadline, a stray one at 3, orphaned data of s2.
            assert_eq!(problems.len(), 3, "{problems:?}");
            assert!(
                problems.iter().all(|p| !p.contains("orphan")),
                "user keys stay out of reports"
            );
        }
        tx.commit().unwrap();
    }
}
