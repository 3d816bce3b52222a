//! # store-redis
//!
//! A [`Store`](session_core::Store) on Redis, standalone or Redis Cluster
//! (feature `cluster`), on the [`redis`] crate's async, auto-reconnecting
//! connections. It is what the Node seeds (circumflex-session,
//! connect-redis-session, redis-sessions) did, per key and strict.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::Store;
//! use store_redis::RedisStore;
//!
//! # async fn connect() -> Result<(), store_redis::Error> {
//! let store: Arc<dyn Store> = Arc::new(
//!     RedisStore::builder().url("redis://127.0.0.1:6379").build().await?,
//! );
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! One hash per session, under `PREFIX{ID}` (prefix `session:` by default):
//! the id sits in a hash tag, so all of a session lands in one cluster slot.
//! Each user key is a hash field holding the codec's bytes, so with the
//! default JSON codec `redis-cli HGETALL` shows readable values. Beside them,
//! the field [`CREATED_FIELD`] (`\xffcreated`) holds the creation time in
//! Unix milliseconds of the server's clock; it starts with byte 0xFF, which no
//! UTF-8 key can, so it never collides with a user key.
//!
//! ```text
//! $ redis-cli --scan --pattern 'session:*'
//! session:{session:q5XbJ0…}
//! $ redis-cli HGETALL 'session:{session:q5XbJ0…}'
//! 1) "\xffcreated"
//! 2) "1795528800123"
//! 3) "user"
//! 4) "\"ada\""
//! ```
//!
//! The session's idle timeout is the hash's TTL, and every key always has
//! one: a session is created by a script that sets its TTL in the same step.
//! A destroyed session leaves nothing behind.
//!
//! ## One atomic round trip per operation
//!
//! | operation | command |
//! |---|---|
//! | `get`, `get_many`, `get_all` | script: HGET / HMGET / HGETALL + PEXPIRE |
//! | `del`, `del_many` | script |
//! | `extend`, `set_lifetime` | script |
//! | `set`, `set_many` | script |
//! | `del_all` | DEL |
//! | `regenerate` | script (RENAME + PEXPIRE) |
//!
//! Reads are scripts too, not `MULTI`: the TTL they set depends on what the
//! hash holds, its creation time and its own idle timeout (the field
//! `\xffidle`, set by [`set_lifetime`](session_core::Store::set_lifetime)).
//!
//! Scripts go by `EVALSHA` and are loaded again on `NOSCRIPT`. A write with
//! [`WriteMode::Existing`](session_core::WriteMode) to a missing session
//! changes nothing and says so, in the same script; a session past its
//! absolute lifetime is treated as missing by every script, and every TTL set
//! is capped at that lifetime. On a cluster, `regenerate` is the one exception
//! to "one round trip": the two ids live in different slots, so it copies the
//! session, then removes the old hash only if no write raced the copy (and
//! copies again if one did).
//!
//! ## Failures
//!
//! The connection reconnects by itself. While Redis is down every operation
//! fails within the response timeout with
//! [`Unavailable`](session_core::Error::Unavailable) or
//! [`Timeout`](session_core::Error::Timeout) (both
//! [`is_unavailable`](session_core::Error::is_unavailable)); it never hangs
//! and never panics, and once Redis is back operations succeed again without a
//! restart of the process. As with any network call, a write that timed out
//! may or may not have been applied.
//!
//! ## Store-wide access
//!
//! [`RedisStore::len`], [`RedisStore::ids`] and [`RedisStore::clear`] walk the
//! prefix with `SCAN` (batches of [`scan_count`](RedisStoreBuilder::scan_count)),
//! over every master on a cluster.
//!
//! ## Features
//!
//! - `cluster`: Redis Cluster via [`RedisStoreBuilder::cluster`].
//! - `tls`: `rediss://` URLs and [`RedisStoreBuilder::tls`], on rustls.

#![warn(missing_docs)]

mod config;
mod connection;
mod error;
mod scan;
mod scripts;
mod store;

pub use crate::config::{
    redacted_url, RedisStoreBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX,
    DEFAULT_RESPONSE_TIMEOUT, DEFAULT_SCAN_COUNT,
};
pub use crate::error::Error;
pub use crate::scan::SessionIds;
pub use crate::store::{RedisStore, CREATED_FIELD};
