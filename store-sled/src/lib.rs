//! # store-sled
//!
//! An embedded, persistent [`Store`](session_core::Store) on
//! [sled](https://docs.rs/sled/0.34.7): for single-machine deployments that
//! want sessions to survive a restart or a crash without running a server.
//! Unlike store-memory it is persistent; it is shared by everything in one
//! process (sled allows one process per database).
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::Store;
//! use store_sled::{Durability, SledStore};
//!
//! # fn main() -> Result<(), store_sled::Error> {
//! let store: Arc<dyn Store> = Arc::new(
//!     SledStore::builder()
//!         .path("/var/lib/myapp/sessions")
//!         .durability(Durability::EveryWrite) // the default
//!         .open()?,
//! );
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! - Five trees (see the `layout` module's table): `meta` holds each
//!   session's creation time, deadline, last activity, read and write
//!   counters, own idle timeout, owner and list of keys, in one value;
//!   `data` one entry per user key; `expiry` an index ordered by deadline;
//!   `owners` an index keyed by (owner, [handle](session_core::Handle));
//!   `activity` an index keyed by (last activity to the second, handle). Every write
//!   is one sled transaction over the five, so `set_many` is all or
//!   nothing, concurrent writers to one session are serialized (sled runs
//!   transactions under a process-wide lock), never lost, and the counters
//!   are counted inside the write itself.
//! - **Reads write nothing between refreshes.** `get`, `get_many` and
//!   `get_all` read the trees outside any transaction, so they wait for no
//!   disk sync; an answer from several values is checked against the
//!   session's `meta` read again after them, so it never mixes two writes.
//!   A read that would move the deadline by the touch granularity
//!   ([`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity))
//!   or more does not slide it itself while the stored deadline is more
//!   than 5 s off: it leaves the refresh
//!   ([`DeferredRefreshes`](session_core::DeferredRefreshes)) to a
//!   refresher thread owned by the store, which slides every session read
//!   so since its last pass, in order of id, 256 to a transaction, every
//!   500 ms. Nearer the deadline, a transaction slides it before the read
//!   answers. Queries (`info`, `owner_sessions`, `count_active`,
//!   `active_page`), [`SledStore::flush`] and closing the store apply the
//!   refreshes left first, and [`SledStore::ttl`] counts them; a crash
//!   loses those of the last 500 ms besides what was not yet flushed, so
//!   their sessions may expire sooner than an idle timeout after the lost
//!   read, never later, and no data is lost. Reads are counted in memory
//!   ([`ReadTally`](session_core::ReadTally)) and folded into `meta` by the
//!   session's next transaction, or by [`SledStore::flush`] or the store's
//!   drop, which write out every pending count; reports add what is
//!   pending. `take`, `compare_and_set` and `increment` read their key
//!   and write it in that one transaction, so concurrent ones on one key
//!   lose nothing.
//! - Expiry is checked on every access: a session past its idle timeout or
//!   absolute lifetime is removed in the same transaction and behaves as
//!   absent. Every operation but `del_all` slides the deadline and the last
//!   activity, and moves the session's `expiry` and `activity` entries at
//!   most once a second each (the expiry entry sits up to a second after
//!   the deadline, so the sweeper may remove a session up to a second
//!   late). Deadlines are wall-clock times, so they
//!   hold across restarts.
//! - A sweeper thread, owned by the store and stopped when it is dropped,
//!   removes expired sessions from disk in bounded batches, taking them from
//!   the start of `expiry` (no full scan).
//! - [`Durability`] says when writes reach the disk and what a crash can
//!   lose; [`SledStore::flush`] forces it. Dropping the store flushes.
//!   Writes waiting for the disk share one sync (group commit, on a thread
//!   owned by the store).
//! - Operations run on tokio's blocking pool (inline without a tokio
//!   runtime), at most [`max_concurrent`](SledStoreBuilder::max_concurrent)
//!   at a time, each within its [`timeout`](SledStoreBuilder::timeout). A transaction on cached pages takes microseconds, but sled's
//!   process-wide transaction lock waits for any flush in progress, so any
//!   operation can take as long as a disk sync; that wait must not hold an
//!   async worker. The hand-off costs a few microseconds per operation
//!   (see the `stores` bench in `examples`).
//! - Writes of keys (`set`, `set_many`) go instead to a writer thread owned
//!   by the store, which applies every write waiting in its queue in one
//!   transaction (up to 64), then answers each. Under the HTTP bench's
//!   `set:50,get:50` that doubled throughput (0.16 of store-memory's to
//!   0.34): a sled transaction's cost is mostly per transaction, in thread
//!   hand-offs and log I/O. While writes keep coming (its last batch had
//!   more than one), it waits up to 500 µs for more before it starts a
//!   transaction, which made batches about 2.5 times as large and requests
//!   15 % faster. A batch that aborts, such as one write over the size
//!   limits, is replayed one write at a time, so each write gets its own
//!   answer.
//! - Plain reads (those that write nothing: no refresh due, or one left to
//!   the refresher; the usual case) run on the
//!   caller's thread, one at a time, while none of the store's transactions
//!   is running or waiting for sled's lock: only a transaction (or sled's
//!   bug, below) can make a plain read wait. Otherwise they go to a reader thread owned by the store, for the same
//!   reason as writes: under the HTTP bench's `get:100` the blocking pool's
//!   hand-off cost more than the two lookups it ran (26 µs of server CPU
//!   per request, 13 µs with the lookups run on the workers themselves,
//!   which would let a hung sled hold them), and there the caller awaits
//!   the answer within its deadline. A transaction that begins during a
//!   read's lookups can still make them wait for it, and for a disk sync it
//!   waits for: that window is the lookups' few microseconds.
//! - Opening fails with a typed [`Error`]: [`Error::Locked`] when another
//!   process has the database, [`Error::Open`] for a bad path or data.
//!
//! ## Owned sessions and their costs
//!
//! For n sessions in the store, k of them the owner's or in the window:
//!
//! | operation | what it does | cost |
//! |---|---|---|
//! | `get`, `set`, … (the hot path) | as before, plus the counters and last activity in the same `meta` value, in the same transaction; the `activity` entry moved at most once a second per session | one `meta` read and write (as before); at most once a second, two index entries more |
//! | `bind_owner` | the owner in `meta` and the `owners` entry, in one transaction; with a cap, the owner's prefix read and each evicted session removed in a transaction of its own | O(log n), with a cap O(k log n) |
//! | `info` | one `meta` value | O(log n) |
//! | `owner_sessions` | the owner's prefix of `owners`, one `meta` per session | O(k log n) |
//! | `destroy_owner` | the same prefix, the sessions removed up to 256 per transaction | O(k log n) |
//! | `revoke` | one `owners` entry and the session, in one transaction | O(log n) |
//! | `count_active` | the range of `activity` since now less *n* | O(k), a `meta` read only for entries in the second before the window |
//! | `active_page` | that range from the cursor, one `meta` per session listed | O(log n + page log n) |
//! | `destroy_all` | every session removed, up to 256 per transaction, then the indexes checked for strays | O(n) |
//!
//! Before it reads, each of `info`, `owner_sessions`, `count_active` and
//! `active_page` applies the refreshes reads have left since the
//! refresher's last pass (at most 500 ms of them, 256 sessions to a
//! transaction), so that it sees every read before it.
//!
//! sled transactions cannot scan, so the queries walk an index outside a
//! transaction and read each session as they reach it; removals check the
//! session again inside their own transaction, so a write racing
//! `destroy_owner` or `destroy_all` either lands before the removal (and is
//! removed with it) or finds no session. A session bound to an owner while
//! `destroy_owner` walks that owner's prefix may survive it.
//!
//! **Active in the last *n* seconds** is the range of `activity` from now
//! less *n*: sled has no counted B-tree, so counting walks the k keys of
//! the window, without reading any session but those marked in the second
//! before it (below): about 110 ms for 100,000 sessions here (release
//! build), 25 µs for a window with a handful.
//! Each session's entry sits at its *mark*, its last activity as of the
//! last time the entry moved; it moves only once the last activity is a
//! second or more past it, so a session used many times a second moves it
//! once a second. `meta` keeps the exact last activity and the mark is
//! less than a second behind it, so the count stays exact: entries marked
//! in the second before the window have their session checked. Sessions
//! past their deadline that the sweeper has not reached yet are still in
//! the index; the count leaves them out by walking the start of `expiry`
//! (those sessions only, as many as one sweep interval lets accumulate).
//! sled has no snapshots: a session whose entry moves during the count
//! goes to the end of the window and may be met twice, so the count keeps
//! the handles it has seen (22 bytes each) and counts each once. A page
//! checks each session it lists and skips an entry its session has moved
//! on from. The page's cursor is the mark and handle of its last session
//! (`"1717171717171.Hk3…"`): it never contains an id, and a session
//! active throughout a walk is listed at least once (one whose entry
//! moves meanwhile goes to the end and may be listed again). A cursor
//! that is not one of ours gives an empty, last page.
//!
//! **How long an index entry outlives its session: never visibly.** Every
//! removal of a session (`del_all`, `destroy_owner`, `revoke`, a cap's
//! eviction, `destroy_all`, an expired session found by an operation, the
//! sweeper) removes its `owners` and `activity` entries in the same
//! transaction. A session that expires unnoticed keeps its entries until
//! the sweeper's next pass (every `sweep_interval`, 5 s by default), but
//! every query checks the deadline, so none lists or counts it meanwhile.
//! A session whose metadata no longer decodes (corruption) is removed by
//! the sweeper without it, so its index entries are found by walking both
//! indexes, on that path only. [`SledStore::verify`] checks that the
//! indexes and the metadata agree.
//!
//! Under [`Durability::EveryWrite`], binding and destroying wait for the
//! disk; reads' counts and last activity reach it with the expiry slides,
//! within a second of a refresh (500 ms for the refresher's pass, 500 ms
//! for the flush), so a crash may lose the counts of the reads since the
//! last refresh, never data.
//!
//! **Databases from before owned sessions** open: their `meta` values
//! (versions 1 and 2) decode with zero counters, no owner and, as the last
//! activity, the latest time known (the deadline less the session's own
//! idle timeout, or the creation). The first open writes each such session
//! again in the current version with its `activity` entry (O(n) once, one
//! transaction per session), then records the layout in sled's default
//! tree so that later opens skip it. A build from before reads the current
//! version as corrupt and drops those sessions: there is no way back.
//!
//! Store-wide access is the [`Store`](session_core::Store) trait's, as for
//! every store (`len`, `is_empty`, `count_active`, `active_page`,
//! `destroy_all`). Diagnostics of this store's own:
//! [`SledStore::len_on_disk`] (expired sessions not yet swept included),
//! [`SledStore::ttl`], [`SledStore::size_on_disk`], and
//! [`SledStore::verify`], which checks that the trees agree (after a crash,
//! say).
//!
//! ## What is known about sled
//!
//! sled 0.34 is the last stable release and is frozen upstream: no fix is
//! coming for what follows. **For a new deployment, prefer `store-redb`**,
//! the example servers' default, which passes the same tests and the soak.
//!
//! - **Deadlock under load (sled #1412).** Under load, sled can stop for
//!   good: a transaction's commit waits in `SegmentAccountant::next` for a
//!   new log segment that sled's I/O threads, all blocked in
//!   `IoBufs::write_to_log`, never provide. The example server hung this way
//!   here, on this crate's own HTTP load bench, within minutes. Running one
//!   transaction at a time did **not** prevent it (it hung that way too), so
//!   there is no fix on this side. What this crate does instead is make the
//!   hang visible and bounded: every operation has a deadline
//!   ([`SledStoreBuilder::timeout`], 5 s by default) and then fails with
//!   [`session_core::Error::Timeout`] (a 503 from the example servers); and at most
//!   [`max_concurrent`](SledStoreBuilder::max_concurrent) threads (64 by
//!   default), plus the writer, reader and refresher threads, can be stuck inside a hung sled, the
//!   rest wait their turn without a thread and time out. One more: the one
//!   plain read at a time that runs on its caller's thread (see above), if
//!   the hang catches it there, holds that async worker and its request for
//!   good; every read after it goes to the reader thread and times out. A deadlocked sled does not come back;
//!   only a restart of the process does.
//! - **Corruption after abrupt stops (#1527, #1533)** is reported upstream.
//!   This crate's crash test (kill -9 while writing, then reopen, check
//!   every acknowledged write and verify the trees) passes here.
//! - **Space amplification (#1124, #1333):** about 2.9× the data here.
#![warn(missing_docs)]

mod batch;
mod config;
mod error;
mod flusher;
mod layout;
mod queries;
mod reader;
mod refresh;
mod store;
mod sweeper;
mod trees;

pub use crate::config::{Durability, SledStoreBuilder, DEFAULT_CACHE_BYTES, DEFAULT_PATH};
pub use crate::error::Error;
pub use crate::store::SledStore;
