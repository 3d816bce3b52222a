//! # session-core
//!
//! HTTP sessions for any Rust framework, per key, on plain [`http`] types.
//!
//! This crate holds the parts every backend and every framework adapter share:
//!
//! - [`Store`]: generic-session's Store API (get, get_all, set, del, del_all,
//!   extend) as an async, object-safe trait, plus multi-key reads and writes and
//!   [strict](store#strict-mode) creation semantics. Stores live in their own
//!   crates (`store-memory`, `store-redis`, `store-redb`, `store-sled`).
//! - [`GenericSession`]: the session of one request. It finds the id in an
//!   HMAC-SHA256-signed cookie, reads and writes single keys through the store
//!   (no load-all, save-all: concurrent requests writing different keys never
//!   lose each other's writes), creates the session lazily on the first write,
//!   and emits `Set-Cookie` only when the cookie changed.
//! - [`SessionConfig`]: keys (with rotation), cookie attributes, id prefix, idle
//!   and absolute timeouts, and the value [`Codec`].
//! - `testkit` (feature `testkit`): the conformance suite every store runs,
//!   and the soak test (`testkit::soak`) that catches a store that hangs.
//!
//! ## Modules, one idea each
//!
//! | module | holds |
//! |---|---|
//! | [`store`] | the [`Store`] trait, [`ExpiryPolicy`], [`WriteMode`], [`Limits`] |
//! | [`atomic`] | take, compare-and-set and increment on one key: [`Swap`] |
//! | [`session`] | [`GenericSession`] |
//! | [`config`] | [`SessionConfig`] and its builder |
//! | [`signer`] | HMAC-SHA256 signing with a rotating key list |
//! | `cookie` (private) | reading and writing the session cookie |
//! | [`id`] | [`SessionId`]: minting and validating ids |
//! | [`owners`] | owned sessions: [`Handle`], [`SessionInfo`], [`ActivePage`] |
//! | [`codec`] | [`Codec`] and [`JsonCodec`] |
//! | [`error`] | [`Error`] |
#![warn(missing_docs)]

pub mod atomic;
pub mod codec;
pub mod config;
mod cookie;
pub mod error;
pub mod id;
pub mod owners;
pub mod session;
pub mod signer;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::atomic::{Cas, Swap};
pub use crate::codec::{Codec, JsonCodec};
pub use crate::config::{
    SessionConfig, SessionConfigBuilder, DEFAULT_ABSOLUTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_UPDATE_ATTEMPTS,
};
pub use crate::error::{BoxError, Error, Result};
pub use crate::id::SessionId;
pub use crate::owners::{ActivePage, Handle, SessionInfo};
pub use crate::session::GenericSession;
pub use crate::store::{Change, ExpiryPolicy, Limits, SessionSize, Store, WriteMode, WriteOutcome};
pub use ::cookie::SameSite;
