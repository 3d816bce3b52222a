//! # store-redis
//!
//! A [`Store`](session_core::Store) on Redis, standalone or Redis Cluster
//! (feature `cluster`), on the [`redis`] crate's async, auto-reconnecting
//! connections. Each session is one Redis hash (or, in
//! [connect-redis's layout](#the-connect-redis-layout), one JSON string),
//! and each operation one atomic round trip, per key and strict.
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
//! session:active
//! session:deadlines
//! $ redis-cli HGETALL 'session:{session:q5XbJ0…}'
//! 1) "\xffcreated"
//! 2) "1795528800123"
//! 3) "\xffwrites"
//! 4) "1"
//! 5) "user"
//! 6) "\"ada\""
//! ```
//!
//! More metadata fields, all starting with 0xFF: `\xffreads` and
//! `\xffwrites` (counted by the scripts that read and write), `\xffpass`
//! (the latest token of each of the last three stores whose flush added
//! reads counted in memory, so that a call sent again is not counted
//! twice), `\xffidle`
//! (a session's own idle timeout), and for a session bound to an owner,
//! `\xffowner` and `\xffuntil` (its hard deadline, see
//! [`owned_lifetime`](RedisStoreBuilder::owned_lifetime)).
//!
//! Owned sessions add an index per owner, `PREFIXowner:OWNER` (a hash from
//! each session's [`Handle`](session_core::Handle) to its id), and every
//! session is tracked in two sorted sets by last activity and by deadline,
//! `PREFIXactive` and `PREFIXdeadlines` (on a cluster one pair per slot,
//! `PREFIXactive:{TAG}`, in the session's own slot), which answer "active in
//! the last *n* seconds" without a scan.
//!
//! The session's idle timeout is the hash's TTL, and every key always has
//! one: a session is created by a script that sets its TTL in the same step,
//! and every index lives at least as long as the sessions it names. A
//! destroyed session leaves nothing behind but, for an owned one, its entry
//! in the owner's index until the next lookup prunes it.
//!
//! ## One atomic round trip per operation
//!
//! | operation | command |
//! |---|---|
//! | `get`, `get_many`, `get_all` | plain HGET / HMGET / HGETALL while no refresh is due, or one is due far from the deadline, its slide left to a later pass (below); else script: the same + PEXPIRE, the read counter, the activity indexes |
//! | `del`, `del_many` | script |
//! | `extend`, `set_lifetime` | script |
//! | `set`, `set_many` | script |
//! | `take`, `compare_and_set` | script |
//! | `increment` | script (`HINCRBY`, with Redis's own integer rules) |
//! | `del_all` | script; an owned session's index entry is dropped in a second step |
//! | `regenerate` | script (RENAME + PEXPIRE); an owned session's index is updated in a second step |
//! | `bind_owner` | owner index first, then the session's script; with a cap, a listing and the evictions |
//! | `info` | script; first, if a read left the session a refresh, the refresh's script |
//! | `owner_sessions`, `destroy_owner` | `HGETALL` of the owner's index, then one script per session (64 at a time) |
//! | `revoke` | `HGET` of the owner's index, then one script |
//! | `count_active`, `active_page` | one script per activity index (1, or 16,384 on a cluster, pipelined by master) |
//!
//! What "active in the last *n* seconds" costs: every session script adds
//! two `ZADD`s, a `PTTL` and a bounded prune of expired entries to its
//! work, in the same round trip; counting is a `ZCOUNT` per index after the
//! expired entries are pruned.
//!
//! Reads that slide the expiry are scripts too, not `MULTI`: the TTL they
//! set depends on what the hash holds, its creation time and its own idle
//! timeout (the field `\xffidle`, set by
//! [`set_lifetime`](session_core::Store::set_lifetime); a shorter one leaves
//! the session up to `touch_after` longer, never past the deadline it had,
//! for the plain reads below that other processes may serve until then). A
//! read need not slide it when that would move the deadline by less than
//! the touch granularity ([`ExpiryPolicy::touch_granularity`](session_core::ExpiryPolicy::touch_granularity),
//! 60 s by default): each read script answers how long that holds, and until
//! then this process reads the session with the plain command alone, one
//! command per request. Those reads are counted in memory and added to the
//! session's `\xffreads` about once a second, up to 64 sessions in one script
//! call on a single server (one per session on a cluster, where a script's
//! keys share a slot); this process's own
//! [`info`](session_core::Store::info) adds what is pending, so its counters
//! stay exact, and other processes see them up to a second late. See
//! [`plain_reads`](RedisStoreBuilder::plain_reads).
//!
//! A read that is due a refresh is a plain command too while the session's
//! deadline, as the last script said, is more than 10 s off: the same pass
//! about once a second slides the expiry of each session so read, as of its
//! last such read, up to 64 sessions of one policy in one script call on a
//! single server (one per session on a cluster). With many sessions, each
//! read rarely within a minute of its last, most reads are due a refresh,
//! and a script per read cost Redis about twice what a plain read does. The
//! deadline is the read's, later only by the time the call takes to reach
//! Redis; `info`, the owner listings and the scans of `count_active` and
//! `active_page` write pending refreshes out first. A process that exits
//! without [`RedisStore::flush`] loses its last second's refreshes: those
//! sessions may end one idle timeout after an earlier read. A store with the
//! [activity index](RedisStoreBuilder::activity_index) refreshes in the
//! read's own script, which moves the session in the index too.
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
//! ## The connect-redis layout
//!
//! [`Layout::ConnectRedis`] keeps each session as connect-redis does, so
//! that an Express app on express-session and connect-redis and a Rust app
//! share live sessions: one JSON string at `PREFIXID` (prefix
//! [`CONNECT_REDIS_PREFIX`], `sess:`), the object express-session saves.
//! Give the Rust side [`CookieFormat::Express`](session_core::CookieFormat)
//! and the id prefix `""`
//! ([`id_prefix`](session_core::SessionConfigBuilder::id_prefix)), so that
//! its ids are express-session's, and the Express app's secrets.
//!
//! ```text
//! $ redis-cli GET sess:Qh7Zf3kJ2pX9wV1bN4mC8rT6yL0sD5aE
//! {"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},
//!  "cart":"apple","user":"ada",
//!  "__generic_session":{"created":"1796281089822","last":"1796281090114","writes":"2"}}
//! ```
//!
//! - Each user key is a member, its value the codec's bytes as JSON text,
//!   kept byte for byte. Bytes that are not one strict JSON value (from
//!   another codec), and values shaped like the wrapper itself, are kept as
//!   `{"$gs-bytes":"<hex>"}`, so the record always parses in Node. `cookie` is express-session's, and
//!   `__generic_session` holds this store's metadata (creation, counters,
//!   owner, the last flush's token); neither is a user key, and writing either is an error.
//! - A session the Node side created has none of this store's metadata:
//!   for this side it was created when this side first meets it, so its
//!   absolute lifetime counts from then.
//! - A session this side creates gets express-session's default `cookie`
//!   (a browser-session cookie). The time to live is the idle timeout, as
//!   connect-redis's `ttl` would set it (configure both the same); where the
//!   `cookie` has an `expires`, every refresh moves it to the new deadline,
//!   so that connect-redis computes the same TTL from it.
//! - Every operation is the same script as in the native layout, behind a
//!   shim (`lua/json_layout.lua`) that serves its hash commands from the
//!   decoded record and writes it back once: still one atomic round trip,
//!   so this side's writes never lose each other, and strict mode holds (a
//!   session the Node side made is an existing session).
//! - The Node side can still lose updates: express-session saves a session
//!   whole, so two Node requests on one session race each other, a Node
//!   request racing a Rust write can undo it, and one already under way when
//!   a destroy lands can save the session back.
//! - The owner and activity indexes go under [`CONNECT_REDIS_INDEX_PREFIX`]
//!   then the prefix, where connect-redis (which takes every key under its
//!   prefix for a session) never meets them. Not in this layout: Redis
//!   Cluster. Sessions whose ids Node minted are left out of `len`,
//!   `destroy_all` and the scans, which know ids by this library's shape.
//! - Reads between refreshes are one plain `GET` of the record, answered in
//!   this process (the plain read path, as in the native layout); writes
//!   rewrite the whole record, in their script.
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
//! The [`Store`](session_core::Store) trait's, as for every store: `len`,
//! `is_empty`, `count_active`, `active_page` and `destroy_all`. Without the
//! activity index, and for `destroy_all` always, they walk the prefix with
//! `SCAN` (batches of [`scan_count`](RedisStoreBuilder::scan_count)), over
//! every master on a cluster; never `KEYS` or `FLUSHDB`.
//!
//! ## Features
//!
//! - `cluster`: Redis Cluster via [`RedisStoreBuilder::cluster`].
//! - `tls`: `rediss://` URLs and [`RedisStoreBuilder::tls`], on rustls.

#![warn(missing_docs)]

mod config;
mod connection;
mod error;
mod owners;
mod reads;
mod record;
mod scan;
mod scripts;
mod store;

pub use crate::config::{
    redacted_url, Layout, RedisStoreBuilder, CONNECT_REDIS_INDEX_PREFIX, CONNECT_REDIS_PREFIX,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_OWNED_LIFETIME, DEFAULT_PLAIN_READS, DEFAULT_PREFIX,
    DEFAULT_RESPONSE_TIMEOUT, DEFAULT_SCAN_COUNT,
};
pub use crate::error::Error;
pub use crate::store::{RedisStore, CREATED_FIELD};
