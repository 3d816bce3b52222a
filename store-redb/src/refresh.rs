//! Refreshes that reads found due and left to the writer (in a
//! [`DeferredRefreshes`]), and when.
//!
//! A read whose refresh is due (it would slide the deadline by the touch
//! granularity or more) answers at once and leaves the refresh here; the
//! writer slides the rows of every refresh left since its last pass in one
//! transaction, every [`DeferredRefreshes::PASS_EVERY`], and a synced commit follows within the
//! durability's interval, as it follows any refresh.
//!
//! Why: with many more sessions than a commit's writes share pages, a
//! refresh in a small commit copies a leaf of `records` and the branches
//! above it for one row. Half a second of refreshes, applied in key order
//! in one transaction, share the branches and some of the leaves, and the
//! read no longer waits for a commit: at a million sessions, `server-axum`'s
//! CPU per `get:100` request, most of them refreshes, fell by about a fifth.
//!
//! What it costs: a crash loses the refreshes not yet applied, as it loses
//! those applied but not yet synced: their sessions keep the deadline of
//! their previous refresh, so they may expire sooner than an idle timeout
//! after the lost read, never later, and no data is lost. A read defers its
//! refresh only while the stored deadline is more than
//! [`DeferredRefreshes::MARGIN_MS`] off, so a pass runs long before the
//! session could be taken for expired; nearer the deadline, it waits for
//! the writer as before.
//!
//! Should a pass run later still (a disk that stalls for seconds, say), a
//! refresh left keeps its session alive wherever expiry is judged: in the
//! pass, the sweeper, every operation's transaction and a read past the
//! stored deadline (see [`deadline_for`]).

use session_core::{DeferredRefresh, DeferredRefreshes};

use crate::layout::Meta;

/// The deadline `refresh` gives the session whose row is `meta` at
/// `now` (see [`DeferredRefresh::deadline_for`], which says why a session
/// past its stored deadline may be alive).
pub(crate) fn deadline_for(refresh: &DeferredRefresh, meta: &Meta, now: u64) -> Option<u64> {
    let own = meta.policy(&refresh.policy);
    refresh.deadline_for(&own, meta.created, meta.last, meta.deadline, now)
}

/// Whether session `id`, whose row is `meta`, is alive at `now`: by its
/// stored deadline, or by a refresh left for it and not yet applied.
pub(crate) fn alive(refreshes: &DeferredRefreshes, id: &str, meta: &Meta, now: u64) -> bool {
    meta.alive(now)
        || refreshes
            .left_for(id, |left| deadline_for(left, meta, now))
            .is_some()
}
