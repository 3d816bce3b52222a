//! # session-core
//!
//! HTTP sessions for any Rust framework, per key, on plain [`http`] types.
//!
//! This crate holds the parts every backend and every framework adapter share:
//!
//! - [`Store`]: an async, object-safe trait of per-key operations on one
//!   session (get, get_all, set, del, del_all, extend, and their multi-key
//!   forms), each applied atomically and each sliding the session's idle
//!   expiry, with [strict](#strict-mode) creation. Stores live in their own
//!   crates (`store-memory`, `store-redis`, `store-redb`, `store-sled`).
//! - [`GenericSession`]: the session of one request. It finds the id in an
//!   HMAC-SHA256-signed cookie, reads and writes single keys through the store
//!   (no load-all, save-all: concurrent requests writing different keys never
//!   lose each other's writes), and creates the session lazily on the first
//!   write. Its [`ResponseCookie`] half emits `Set-Cookie` only when the
//!   cookie changed.
//! - [`SessionConfig`]: keys (with rotation), cookie attributes, id prefix, idle
//!   and absolute timeouts, and the value [`Codec`].
//! - `testkit` (feature `testkit`): the conformance suite every store runs,
//!   and the soak test (`testkit::soak`) that catches a store that hangs.
//!
//! Every public type lives at the crate root; the modules behind them are
//! private, one idea each (`store`, `atomic`, `owners`, `session`,
//! `response`, `state`, `cookie`, `signer`, `config`, `id`, `codec`, `error`).
//!
//! ## Strict mode
//!
//! Only the server mints session ids. A write therefore says whether it may
//! create the session ([`WriteMode::Create`], for an id the server has just
//! minted) or must find it alive ([`WriteMode::Existing`], for an id that came
//! back in a cookie). A store never creates a session for an `Existing` write:
//! it reports [`WriteOutcome::NoSession`] instead, in the same round trip, and
//! [`GenericSession`] starts a fresh session.
//!
//! ## Atomic operations on one key
//!
//! Writes to different keys of one session never lose each other, because
//! each write names only its keys. Writes to the *same* key still race when
//! a handler reads a value, changes it and writes it back: two requests that
//! both read 3 both write 4. [`Store::take`], [`Store::compare_and_set`] and
//! [`Store::increment`] close that gap: each is one atomic step in the store
//! (one round trip on Redis). Their outcomes are [`Swap`] (and [`Cas`] for
//! the typed [`GenericSession::compare_and_set`]); a store decides what each
//! does to the key with an [`Edit`]; increments read and write one integer
//! format ([`parse_integer`], [`add_to`]): decimal ASCII, as Redis's
//! `HINCRBY` reads it, which is also how [`JsonCodec`] writes an integer.
//!
//! ## Owned sessions, named by handles
//!
//! A session may be *bound* to an owner, a user id string, usually at login
//! ([`GenericSession::login`]). Every store then keeps an index from owners to
//! their sessions, so that one user's sessions can be listed and ended
//! without looking at anybody else's, and an index by last activity, so that
//! "active in the last *n* seconds" is counted without a scan (store-memory,
//! which keeps everything in one process, scans).
//!
//! A session id is a bearer token: whoever holds it *is* the user. A page that
//! lists a user's devices must therefore never show one. Listings name each
//! session by its [`Handle`] instead, a one-way hash of the id that is stable
//! for the session's whole life, reveals nothing about the id, and can only
//! be used to revoke a session *within its owner* ([`Store::revoke`]).
#![warn(missing_docs)]

mod atomic;
mod codec;
mod config;
mod cookie;
mod error;
mod formats;
mod id;
mod owners;
mod refreshes;
mod response;
mod session;
mod signer;
mod state;
mod store;
mod tally;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::atomic::{add_to, parse_integer, Cas, Edit, KeyChange, Swap};
pub use crate::codec::{Codec, JsonCodec};
pub use crate::config::{
    SessionConfig, SessionConfigBuilder, DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TOUCH_AFTER, DEFAULT_UPDATE_ATTEMPTS,
};
pub use crate::error::{BoxError, Error, Result};
pub use crate::formats::{CookieFormat, KeygripDigest};
pub use crate::id::SessionId;
pub use crate::owners::{
    beyond_cap, check_owner, ActivePage, Handle, SessionInfo, MAX_OWNER_BYTES,
};
pub use crate::refreshes::{DeferredRefresh, DeferredRefreshes};
pub use crate::response::ResponseCookie;
pub use crate::session::GenericSession;
pub use crate::store::{Change, ExpiryPolicy, Limits, SessionSize, Store, WriteMode, WriteOutcome};
pub use crate::tally::{PendingReads, ReadTally};
pub use ::cookie::SameSite;
