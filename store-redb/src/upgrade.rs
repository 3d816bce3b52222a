//! Files written before `sessions` existed keep each session's creation and
//! deadline in `meta`, and its own idle timeout in `lifetimes`; [`upgrade`]
//! moves them once, when the store is opened.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use crate::layout::{Meta, TxResult};
use crate::tables::{Live, Tables};

/// Before per-session metadata: (created, deadline) per session.
const LEGACY_META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");
/// Before per-session metadata: the few sessions' own idle timeouts.
const LEGACY_LIFETIMES: TableDefinition<&str, u64> = TableDefinition::new("lifetimes");

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
