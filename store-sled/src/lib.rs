//! # store-sled
//!
//! An embedded, persistent [`Store`](session_core::Store) on
//! [sled](https://docs.rs/sled/0.34.7): for single-machine deployments that
//! want sessions to survive a restart or a crash without running a server.
//! generic-session warns that its memory store is neither persistent nor
//! shared; this one is persistent, and shared by everything in one process
//! (sled allows one process per database).
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
//! - Three trees (see the `layout` module's table): `meta` holds each
//!   session's creation time, deadline and list of keys; `data` one entry per
//!   user key; `expiry` an index ordered by deadline. Every operation is one
//!   sled transaction over the three, so `set_many` is all or nothing, a
//!   reader never sees half of it, and concurrent writers to one session are
//!   serialized (sled runs transactions under a process-wide lock), never
//!   lost.
//! - Expiry is checked on every access: a session past its idle timeout or
//!   absolute lifetime is removed in the same transaction and behaves as
//!   absent. Every operation but `del_all` slides the deadline and moves the
//!   session's `expiry` entry. Deadlines are wall-clock times, so they hold
//!   across restarts.
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
//! - Opening fails with a typed [`Error`]: [`Error::Locked`] when another
//!   process has the database, [`Error::Open`] for a bad path or data.
//!
//! Store-wide access: [`SledStore::len`], [`SledStore::ids`],
//! [`SledStore::clear`], [`SledStore::ttl`], [`SledStore::size_on_disk`], and
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
//!   [`session_core::Error::Timeout`] (a 503 from the example servers), never
//!   a request that hangs; and at most
//!   [`max_concurrent`](SledStoreBuilder::max_concurrent) threads (64 by
//!   default) can be stuck inside a hung sled, the rest wait their turn
//!   without a thread and time out. A deadlocked sled does not come back;
//!   only a restart of the process does.
//! - **Corruption after abrupt stops (#1527, #1533)** is reported upstream.
//!   This crate's crash test (kill -9 while writing, then reopen, check
//!   every acknowledged write and verify the trees) passes here.
//! - **Space amplification (#1124, #1333):** about 2.9× the data here.
#![warn(missing_docs)]

mod config;
mod error;
mod flusher;
mod layout;
mod store;
mod sweeper;
mod trees;

pub use crate::config::{Durability, SledStoreBuilder, DEFAULT_PATH};
pub use crate::error::Error;
pub use crate::store::SledStore;
