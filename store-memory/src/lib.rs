//! # store-memory
//!
//! A bounded, in-memory [`Store`](session_core::Store) on [moka](https://docs.rs/moka). It is fast
//! and needs no server, but it is neither persistent nor shared between
//! processes, so use it for development,
//! tests and single-process deployments that can afford to lose sessions on
//! restart.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::Store;
//! use store_memory::MemoryStore;
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::builder().max_bytes(16 * 1024 * 1024).build());
//! ```
//!
//! ## How it works
//!
//! - One cache entry per session: a record of its fields and creation time
//!   behind an `Arc`. Before any write, a writer takes its turn on a
//!   first-come, first-served lock (one of 1024, picked by the session id):
//!   moka does not queue the callers of one key, and under many concurrent
//!   writers to one session the soak test saw one of them lose every race,
//!   for good. A write of one key that leaves the session no heavier than
//!   the cache weighed it (such as a value replaced by one no longer)
//!   changes the record's fields in place, under a short lock, as
//!   fast as a bare moka `insert`; it then reads the entry once more, which
//!   slides its expiry from the write. Any other write goes through moka's
//!   per-key `and_compute_with` and replaces the record with a copy (O(number
//!   of keys); values themselves are shared, not copied), so that the cache
//!   weighs it again. Either way readers never see half a write.
//! - The cache is bounded by bytes (a weigher counts keys and values plus a
//!   fixed overhead per field and per session) and evicts the least recently used
//!   sessions first when full (moka's LRU policy: a new session is always
//!   admitted). An evicted session behaves like an expired one.
//! - Each entry's time-to-live is computed by moka's `Expiry` from the session's
//!   [`ExpiryPolicy`](session_core::ExpiryPolicy): reads and writes slide it to the idle timeout, never past
//!   the absolute lifetime. The policy recorded is the one of the latest write;
//!   reads slide by it.
//! - Owned sessions: each record carries its owner, and an index maps each
//!   owner to its session ids, updated at bind time, and pruned when moka
//!   removes a session (its eviction listener runs during moka's
//!   maintenance, within a few operations) or when a listing finds one dead.
//!   Reads, writes and last activity are counted in atomics that every
//!   version of a record shares, so concurrent operations lose no count.
//! - "Active in the last *n* seconds" is a scan over every session: this
//!   store keeps no index by activity, so [`count_active`](session_core::Store::count_active)
//!   and [`active_page`](session_core::Store::active_page) cost O(n) for n sessions held
//!   (about 10 ms for 100,000 here).

#![warn(missing_docs)]

mod access;
mod builder;
mod owners;
mod record;
mod store;

pub use crate::builder::{MemoryStoreBuilder, DEFAULT_MAX_BYTES};
pub use crate::store::MemoryStore;
