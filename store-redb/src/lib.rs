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
//! - Three tables (see the `tables` module's table): `meta` holds each
//!   session's creation time and deadline; `data` one entry per user key,
//!   keyed by (session id, key); `expiry` an index ordered by deadline.
//!   Every operation reads and writes all three in one transaction, so
//!   `set_many` is all or nothing, a reader never sees half of it, and
//!   concurrent writers to one session are serialized, never lost.
//! - **Group commit.** redb runs one write transaction at a time. A writer
//!   thread owned by the store takes every operation waiting when it is
//!   free (up to [`RedbStoreBuilder::max_batch`]) into one transaction and
//!   one commit, and answers each once the commit is done. With
//!   [`Durability::EveryWrite`], 64 concurrent writers share one disk sync
//!   instead of queueing behind 64. Operations never block an async worker
//!   on redb (the store-wide reads below do, briefly, on a snapshot).
//! - Expiry is checked on every access: a session past its idle timeout or
//!   absolute lifetime is removed in the same transaction and behaves as
//!   absent. Every operation but `del_all` slides the deadline and moves the
//!   session's `expiry` entry. Deadlines are wall-clock times, so they hold
//!   across restarts.
//! - The writer thread also sweeps: every
//!   [`sweep_interval`](RedbStoreBuilder::sweep_interval) it removes expired
//!   sessions from disk in bounded batches from the start of `expiry` (no
//!   full scan), after checking in a read transaction that anything is due.
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
//!   a sync. Dropping the store syncs.
//! - Opening fails with a typed [`Error`]: [`Error::Locked`] when another
//!   store or process has the file open, [`Error::Open`] for a bad path or
//!   data. After a crash, redb repairs the file when it is opened.
//!
//! Store-wide access: [`RedbStore::len`], [`RedbStore::ids`],
//! [`RedbStore::clear`], [`RedbStore::ttl`], [`RedbStore::size_on_disk`],
//! and [`RedbStore::verify`], which checks that the tables agree (after a
//! crash, say). All but `clear` read a snapshot (a read transaction),
//! synchronously, and never wait for the writer.
#![warn(missing_docs)]

mod config;
mod error;
mod store;
mod tables;
mod writer;

pub use crate::config::{Durability, RedbStoreBuilder, DEFAULT_PATH};
pub use crate::error::Error;
pub use crate::store::RedbStore;
