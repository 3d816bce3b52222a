//! Older files, brought to the current layout once, when the store is
//! opened ([`upgrade`]): files that keep sessions' rows in `sessions` and
//! their data in `data`, not both in `records`; among them, files whose
//! `sessions` rows have no `filed` (their expiry entries lie at the
//! deadline); and files written before `sessions` existed, which keep each
//! session's creation and deadline in `meta`, and its own idle timeout in
//! `lifetimes`.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use crate::layout::{Meta, TxResult, RECORDS, ROW};
use crate::tables::{Live, Tables};

/// Before `records`: a `sessions` row, (created, deadline, filed, last
/// activity, mark, reads, writes, own idle timeout in ms, owner).
type TupleRow = (
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    Option<u64>,
    Option<&'static str>,
);
/// Before `records`: sessions' rows.
const SESSIONS: TableDefinition<&str, TupleRow> = TableDefinition::new("sessions");
/// Before `records`: sessions' data.
const DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("data");

/// Before early filing: a `sessions` row without `filed`.
type UnfiledRow = (
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    Option<u64>,
    Option<&'static str>,
);
/// Before early filing, `sessions` as it was.
const UNFILED_SESSIONS: TableDefinition<&str, UnfiledRow> = TableDefinition::new("sessions");
/// The same table, renamed while its rows move.
const UNFILED_MOVING: TableDefinition<&str, UnfiledRow> = TableDefinition::new("sessions-unfiled");

/// Before per-session metadata: (created, deadline) per session.
const LEGACY_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
/// Before per-session metadata: the few sessions' own idle timeouts.
const LEGACY_LIFETIMES: TableDefinition<&str, u64> = TableDefinition::new("lifetimes");

/// Brings an older file to the current layout in the transaction that
/// opens the store, and creates the tables a new file lacks. Returns how
/// many sessions it moved; a current file costs nothing.
pub(crate) fn upgrade(tx: &WriteTransaction) -> TxResult<u64> {
    let tables: Vec<String> = tx
        .list_tables()?
        .map(|table| table.name().to_owned())
        .collect();
    let has = |name: &str| tables.iter().any(|table| table == name);
    let mut moved = 0;
    let (sessions, data) = (has(SESSIONS.name()), has(DATA.name()));
    if sessions {
        file_rows(tx)?;
    }
    if sessions || data {
        moved += into_records(tx, sessions, data)?;
    }
    if has(LEGACY_META.name()) || has(LEGACY_LIFETIMES.name()) {
        moved += from_legacy(tx)?;
    }
    Tables::open(tx)?;
    Ok(moved)
}

/// Gives the rows of a file from before early filing their `filed`: the
/// deadline, where their expiry entries are. Nothing if `sessions` has
/// them already.
fn file_rows(tx: &WriteTransaction) -> TxResult<()> {
    match tx.open_table(UNFILED_SESSIONS) {
        Ok(_) => {}
        Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    tx.rename_table(UNFILED_SESSIONS, UNFILED_MOVING)?;
    {
        let old = tx.open_table(UNFILED_MOVING)?;
        let mut sessions = tx.open_table(SESSIONS)?;
        for entry in old.iter()? {
            let (id, row) = entry?;
            let (created, deadline, last, mark, reads, writes, idle, owner) = row.value();
            let row = (
                created, deadline, deadline, last, mark, reads, writes, idle, owner,
            );
            sessions.insert(id.value(), row)?;
        }
    }
    tx.delete_table(UNFILED_MOVING)?;
    Ok(())
}

/// Moves the rows of `sessions` and the entries of `data` (whichever the
/// file has) into `records` and drops the two tables. Returns how many
/// rows it moved.
fn into_records(tx: &WriteTransaction, sessions: bool, data: bool) -> TxResult<u64> {
    let mut moved = 0;
    {
        let mut records = tx.open_table(RECORDS)?;
        if sessions {
            for entry in tx.open_table(SESSIONS)?.iter()? {
                let (id, row) = entry?;
                let (created, deadline, filed, last, mark, reads, writes, idle, owner) =
                    row.value();
                let meta = Meta {
                    created,
                    deadline,
                    filed,
                    last,
                    mark,
                    reads,
                    writes,
                    idle,
                    owner: owner.map(str::to_owned),
                };
                records.insert((id.value(), ROW), meta.to_bytes().as_slice())?;
                moved += 1;
            }
        }
        if data {
            for entry in tx.open_table(DATA)?.iter()? {
                let (key, value) = entry?;
                let (id, key) = key.value();
                // No user key is empty (session-core refuses one), so none
                // takes a row's place; should a damaged file hold one, it
                // is left behind.
                if key != ROW {
                    records.insert((id, key), value.value())?;
                }
            }
        }
    }
    if sessions {
        tx.delete_table(SESSIONS)?;
    }
    if data {
        tx.delete_table(DATA)?;
    }
    Ok(moved)
}

/// Moves the sessions of a file written before `sessions` existed into it
/// and drops the old tables. Their counters start at zero, with no owner,
/// and their last activity is the latest time known for it (the creation,
/// or the deadline less the session's own idle timeout), until their next
/// operation. Returns how many sessions it moved.
fn from_legacy(tx: &WriteTransaction) -> TxResult<u64> {
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
                    filed: deadline,
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
