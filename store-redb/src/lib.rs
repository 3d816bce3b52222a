//! # store-redb
//!
//! An embedded, persistent [`Store`](session_core::Store) on
//! [redb](https://docs.rs/redb/4), the example servers' default: for
//! single-machine deployments that want sessions to survive a restart or a
//! crash without running a server. redb is a pure-Rust, copy-on-write B-tree
//! database, maintained upstream, with ACID transactions and checksummed
//! commits.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::Store;
//! use store_redb::{Durability, RedbStore};
//!
//! # fn main() -> Result<(), store_redb::Error> {
//! let store: Arc<dyn Store> = Arc::new(
//!     RedbStore::builder()
//!         .path("/var/lib/myapp/sessions.redb")
//!         .durability(Durability::EveryWrite) // the default
//!         .open()?,
//! );
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! - Four tables (see the `layout` module's table): `records` holds each
//!   session's row, keyed by (session id, `""`), and beside it its data,
//!   one entry per user key, keyed by (session id, key), so that a
//!   session's row and values share a B-tree leaf and a write copies one
//!   page, not two. The row holds everything but the data: creation time,
//!   deadline, where it is filed in `expiry`, last activity and where it is
//!   marked in `activity`, read and write counters, its own idle timeout
//!   and its owner. `expiry` is an index ordered by deadline (each session
//!   filed at or before it); `owners` an index keyed by
//!   (owner, [handle](session_core::Handle)); `activity` an index keyed by
//!   (last activity to the second, handle). Every write reads and writes them in one
//!   transaction, so `set_many` is all or nothing, concurrent writers to one
//!   session are serialized, never lost, and the counters are counted inside
//!   the write itself. `take`,
//!   `compare_and_set` and `increment` read their key and write it in that
//!   one transaction, so concurrent ones on one key lose nothing.
//! - **Reads write nothing between refreshes.** `get`, `get_many` and
//!   `get_all` read a snapshot (a read transaction, which never waits for
//!   the writer and never sees half a write). Only when the read would move
//!   the session's deadline by the touch granularity
//!   ([`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity))
//!   or more is a refresh due, and even then the read does not wait: it
//!   leaves the refresh to the writer, which slides the rows of every
//!   refresh left in the last 500 ms in one transaction, in key order (one
//!   read that finds its stored deadline within 5 s waits for its refresh
//!   instead). Queries, [`RedbStore::flush`] and closing the store apply
//!   the refreshes left first. Reads are counted in memory
//!   ([`ReadTally`](session_core::ReadTally)) and folded into the row by
//!   the session's next transaction, or by [`RedbStore::flush`] or the
//!   store's drop, which write out every pending count; reports add what
//!   is pending.
//! - **Group commit.** redb runs one write transaction at a time. A writer
//!   thread owned by the store takes every operation waiting when it is
//!   free (up to [`RedbStoreBuilder::max_batch`]) into one transaction and
//!   one commit, and answers each once the commit is done. With
//!   [`Durability::EveryWrite`], 64 concurrent writers share one disk sync
//!   instead of queueing behind 64. Writes never wait for redb on an
//!   async worker, and the store-wide queries run on tokio's blocking pool;
//!   reads of one session run where they are called, as a lookup in memory
//!   while the file fits the page cache, and a read from disk when not.
//! - Expiry is checked on every access: a session past its idle timeout or
//!   absolute lifetime is removed in the same transaction and behaves as
//!   absent. Every operation but `del_all` slides the deadline and the last
//!   activity (and moves the session's `activity` entry, at most once a
//!   second). Deadlines are wall-clock times, so they hold across restarts.
//! - The writer thread also sweeps: every
//!   [`sweep_interval`](RedbStoreBuilder::sweep_interval) it walks the start
//!   of `expiry` in bounded batches (no full scan), after checking in a read
//!   transaction that anything is due, and removes the expired sessions
//!   from disk. A session's `expiry` entry is filed at its first deadline and
//!   stays there while operations slide the deadline later; the sweeper,
//!   reaching it, files a session still alive again at its deadline. So a
//!   write moves no expiry entry (one B-tree page fewer to copy and write:
//!   about a quarter of a write's time here, at 1,000 sessions as at a
//!   million), and a session in use moves its entry about once an idle
//!   timeout. An entry never lies after its session's deadline: a deadline
//!   moved earlier (a shorter idle timeout, say) takes it along at once.
//! - **Deadlines.** Every operation fails with
//!   [`session_core::Error::Timeout`] after
//!   [`timeout`](RedbStoreBuilder::timeout) (5 s by default), so a stalled
//!   disk gives errors (a 503 in the example servers), never requests that
//!   hang. The deadline uses tokio's timer, so a tokio runtime needs its
//!   time driver (`#[tokio::main]` and `enable_all()` have it; a runtime
//!   built without it makes tokio panic, as store-redis's timeouts do); off
//!   any tokio runtime, operations have no deadline.
//! - [`Durability`] says when commits reach the disk and what a crash can
//!   lose, with the same choices as store-sled; [`RedbStore::flush`] forces
//!   a sync, with what reads left in memory. Dropping the store does the
//!   same.
//! - Opening fails with a typed [`Error`]: [`Error::Locked`] when another
//!   store or process has the file open, [`Error::Open`] for a bad path or
//!   data. After a crash, redb repairs the file when it is opened.
//!
//! ## Owned sessions and their costs
//!
//! For n sessions in the store, k of them the owner's or in the window:
//!
//! | operation | what it does | cost |
//! |---|---|---|
//! | `get`, `set`, … (the hot path) | as before, plus the row's counters and last activity, in the same transaction; the `activity` entry moved at most once a second per session | one row read and written (as before); at most once a second, two index entries more |
//! | `bind_owner` | the row's owner and the `owners` entry; with a cap, the owner's range and the evicted sessions removed, in the same transaction | O(log n), with a cap O(k log n) |
//! | `info` | one row, on a snapshot | O(log n) |
//! | `owner_sessions` | the owner's range of `owners`, one row per session, on a snapshot | O(k log n) |
//! | `destroy_owner` | the same range, each session removed, in one transaction | O(k log n) |
//! | `revoke` | one `owners` entry, one session removed | O(log n) |
//! | `count_active` | the range of `activity` since now less *n*, on a snapshot | O(k), a row read only for entries in the second before the window |
//! | `active_page` | that range from the cursor, one row per session listed | O(log n + page log n) |
//! | `destroy_all` | every table emptied in one transaction | O(n) |
//!
//! **Active in the last *n* seconds** is the range of `activity` from now
//! less *n*: redb has no counted B-tree, so counting walks the k entries
//! of the window (their keys only, no lookup of each session), plus a
//! row lookup for each session marked in the second before it (below):
//! about 11 ms for 100,000 sessions here (release build), 30 µs for a
//! window with a handful. Each session's entry sits at its *mark*, its last
//! activity as of the last time the entry moved; it moves only once the
//! last activity is a second or more past it, so a session used many
//! times a second moves it once a second. (Moving it on every operation
//! cost about a fifth of the store's throughput with 32 concurrent
//! clients.) The row keeps the exact last activity and the mark is less
//! than a second behind it, so the count stays exact: entries marked in
//! the second before the window have their row checked. Sessions past
//! their deadline that the sweeper has not reached yet are still in the
//! index; the count leaves them out by walking the start of `expiry`
//! (the entries filed at or before now: the sessions expired since the
//! last sweep, and the live ones whose entry came due since, which the
//! next sweep files again) rather than checking every entry's session. A page checks each
//! session it lists. The page's cursor is the mark and handle of its last
//! session (`"1717171717171.Hk3…"`): it never contains an id, and a
//! session active throughout a walk is listed at least once (one whose
//! entry moves meanwhile goes to the end and may be listed again). A
//! cursor that is not one of ours gives an empty, last page.
//!
//! **How long an index entry outlives its session: never visibly.** Every
//! removal of a session (`del_all`, `destroy_owner`, `revoke`, a cap's
//! eviction, `destroy_all`, an expired session found by an operation, the
//! sweeper) removes its `owners` and `activity` entries in the same
//! transaction. A session that expires unnoticed keeps its entries until
//! the sweeper's next pass (every `sweep_interval`, 5 s by default), but
//! every query checks the deadline, so none lists or counts it meanwhile.
//! [`RedbStore::verify`] checks that the indexes and the rows agree.
//!
//! Under [`Durability::EveryWrite`], binding and destroying are synced
//! writes; reads' counts and last activity reach the disk with the expiry
//! slides, within about a second of a refresh, so a crash may lose the
//! counts of the reads since the last refresh and the refreshes of the
//! last second (their sessions keep their previous deadline), never data.
//!
//! **Files of earlier builds** open, and the first open brings them to the
//! current layout in one transaction (O(n) once); a build from before
//! would open an upgraded file as empty:
//!
//! - **Rows and data in tables of their own** (`sessions` and `data`): both
//!   move to `records`, and the two tables go.
//! - **From before early filing** (whose `sessions` rows do not say where
//!   the expiry entry is: at the deadline): every row is filed at its
//!   deadline, then moves.
//! - **From before owned sessions** (which kept sessions in the tables
//!   `meta` and `lifetimes`): every session moves to `records`, with zero
//!   counters, no owner and, as its last activity, the latest time known
//!   (its deadline less its own idle timeout, or its creation), and the old
//!   tables go.
//!
//! Store-wide access is the [`Store`](session_core::Store) trait's, as for
//! every store (`len`, `is_empty`, `count_active`, `active_page`,
//! `destroy_all`). Diagnostics of this store's own:
//! [`RedbStore::len_on_disk`] (expired sessions not yet swept included),
//! [`RedbStore::ttl`], [`RedbStore::size_on_disk`], and
//! [`RedbStore::verify`], which checks that the tables agree (after a
//! crash, say). The queries and `len_on_disk` read a snapshot (a read
//! transaction) on tokio's blocking pool. `len_on_disk` never waits for
//! the writer; the queries do only while reads have left refreshes for it,
//! which its next commit applies first (so they see every read before
//! them), and fail with [`session_core::Error::Timeout`] like any write
//! should it not answer in time.
#![warn(missing_docs)]

mod config;
mod error;
mod layout;
mod queries;
mod refresh;
mod store;
mod tables;
mod upgrade;
mod verify;
mod writer;

pub use crate::config::{Durability, RedbStoreBuilder, DEFAULT_CACHE_BYTES, DEFAULT_PATH};
pub use crate::error::Error;
pub use crate::store::RedbStore;
