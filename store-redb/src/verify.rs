//! [`verify`]: an fsck, checking that the tables agree with each other.

use std::collections::{HashMap, HashSet};

use redb::ReadableTable;
use session_core::{Handle, SessionId};

use crate::layout::{Meta, Records, TxResult, ACTIVITY_GRAIN_MS, ROW};

/// Checks that the tables agree: every row decodes; every session has
/// exactly one expiry entry, where its row says it is filed (at or before its deadline), one
/// activity entry, at its mark, and,
/// if it has an owner, one owner entry; every index and data entry belongs
/// to a session that places it there. Returns the problems found, naming
/// sessions by the few characters of their id that session-core shows and
/// never showing an owner.
pub(crate) fn verify(
    records: &impl Records,
    expiry: &impl ReadableTable<(u64, &'static str), ()>,
    owners: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    activity: &impl ReadableTable<(u64, &'static str), &'static str>,
) -> TxResult<Vec<String>> {
    let mut problems = Vec::new();
    let mut metas = HashMap::new();
    // A session's row comes before its data: data with no row before it
    // belongs to none.
    let mut undecoded = HashSet::new();
    for entry in records.iter()? {
        let (key, value) = entry?;
        let (id, key) = key.value();
        if key == ROW {
            match Meta::from_bytes(value.value()) {
                Some(meta) => {
                    metas.insert(id.to_owned(), meta);
                }
                None => {
                    problems.push(format!("session {}: its row does not decode", short(id)));
                    undecoded.insert(id.to_owned());
                }
            }
        } else if !metas.contains_key(id) && !undecoded.contains(id) {
            problems.push(format!("stray data entry of {}", short(id)));
        }
    }
    let mut indexed = HashSet::new();
    for entry in expiry.iter()? {
        let (key, _) = entry?;
        let (filed, id) = key.value();
        if metas.get(id).map(|meta| meta.filed) == Some(filed) {
            indexed.insert(id.to_owned());
        } else {
            problems.push(format!("stray expiry entry at {filed} for {}", short(id)));
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
                "session {}: no expiry entry where it is filed",
                short(id)
            ));
        }
        // The sweeper finds a session by its entry: never after its deadline.
        if meta.filed > meta.deadline {
            problems.push(format!(
                "session {}: filed for expiry after its deadline",
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
    Ok(problems)
}

/// An id as session-core shows it (a few characters of the token, too few
/// to use as a credential), or `?` for one that does not parse.
pub(crate) fn short(id: &str) -> String {
    SessionId::from_stored(id).map_or_else(|| "?".to_string(), |id| id.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tables::tests::{database, session};
    use crate::tables::Tables;

    pub(crate) fn problems(tables: &Tables<'_>) -> Vec<String> {
        verify(
            &tables.records,
            &tables.expiry,
            &tables.owners,
            &tables.activity,
        )
        .unwrap()
    }

    #[test]
    fn verify_reports_tables_that_disagree() {
        let (_dir, db) = database();
        let tx = db.begin_write().unwrap();
        {
            let mut tables = Tables::open(&tx).unwrap();
            let id = session(&mut tables, None);
            assert!(problems(&tables).is_empty(), "{:?}", problems(&tables));
            let filed = tables.meta(&id).unwrap().unwrap().filed;
            tables.expiry.remove((filed, id.as_str())).unwrap();
            tables.expiry.insert((3, id.as_str()), ()).unwrap();
            tables.insert("s2", "orphan", b"x").unwrap();
            // A second session filed past its deadline (its entry moved
            // with its row, so only the order is wrong).
            let late = session(&mut tables, None);
            let mut meta = tables.meta(&late).unwrap().unwrap();
            tables.expiry.remove((meta.filed, late.as_str())).unwrap();
            meta.filed = meta.deadline + 1;
            tables
                .expiry
                .insert((meta.filed, late.as_str()), ())
                .unwrap();
            tables
                .records
                .insert((late.as_str(), ROW), meta.to_bytes().as_slice())
                .unwrap();
            // A row that does not decode, and its data.
            tables.records.insert(("s3", ROW), &b"x"[..]).unwrap();
            tables.insert("s3", "k", b"x").unwrap();
            let problems = problems(&tables);
            // No entry where it is filed, a stray one at 3, orphaned data
            // of s2; the second session filed late; s3's row.
            assert_eq!(problems.len(), 5, "{problems:?}");
            assert_eq!(
                problems
                    .iter()
                    .filter(|p| p.contains("does not decode"))
                    .count(),
                1,
                "{problems:?}"
            );
            assert_eq!(
                problems
                    .iter()
                    .filter(|p| p.contains("after its deadline"))
                    .count(),
                1,
                "{problems:?}"
            );
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
}
