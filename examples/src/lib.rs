//! Shared parts of the example servers: command-line options, store and config
//! set-up, and the route contract, so that every server binary behaves the same.
//!
//! Routes (the public contract of every example server):
//!
//! | route | answer |
//! |---|---|
//! | `GET /set/{key}/{value}` | stores the string `value` under `key`; answers it as JSON |
//! | `GET /get/{key}` | the JSON value of `key`, or `null` |
//! | `GET /del/{key}` | deletes `key`; answers `true` |
//! | `GET /destroy` | destroys the session and expires the cookie; answers `true` |
//! | `GET /regenerate` | moves the session to a new id; answers `true` |
//! | `GET /lifetime/{seconds}` | gives the session its own idle timeout and re-sends the cookie with that `Max-Age` (bounded by the absolute lifetime); answers `true`, or `false` without a session (creating none) |
//! | `GET /login/{user}` | regenerates the id (creating a session if there is none) and binds the session to owner `{user}` (a session of another owner starts empty); answers `true`, with the new cookie. `--max-sessions-per-user N` ends the user's least recently active sessions beyond N |
//! | `GET /sessions` | the live sessions of this session's owner, most recently active first: a JSON array of `{handle, current, created, last_active, reads, writes, idle_ms, ttl_ms}` (times in Unix ms), never a session id; 401 without an owner |
//! | `GET /sessions/revoke/{handle}` | ends that session of the same owner; answers `true`; 404 if the handle is not one of the owner's, 401 without an owner |
//! | `GET /logout-others` | ends every other session of the owner; answers how many; 401 without an owner |
//! | `GET /logout-everywhere` | ends every session of the owner, this one included, and expires the cookie; answers how many; 401 without an owner |
//! | `GET /active/{seconds}` | how many sessions of the store were active in the last `{seconds}` seconds |
//! | `GET /incr/{key}` | adds 1 to the integer in `key` (absent: 0) in one atomic step; answers the new value as a JSON number; creates the session if there is none; 400 if `key` holds anything but an integer |
//! | `GET /take/{key}` | the JSON value of `key`, or `null`, removed in the same step: of concurrent takes, one gets it |
//! | `GET /` | `ok`, touching no session |
//!
//! Errors answer `{"error": "..."}`: 400 for bad input (an oversized key or
//! value, an increment of a value that is not an integer), 401 for a user route without a logged-in session, 404 for an
//! unknown handle, 503 for a store that is down or slow, 500 for
//! the rest. An unknown path answers 404 `not found` as plain text, and
//! any method but GET 405, before a session is looked at. Paths are matched
//! as they come: a percent-encoded fixed part (`/%64estroy`) or digit
//! (`/active/%35`) names no route, on every server.
//!
//! The parts, one module each: the flags ([`Options`]), the store they name
//! ([`Options::store`]), the routes ([`Route`], [`precheck`]), running one
//! ([`handle`]), the answers ([`Reply`]), and serving ([`setup`]).

pub mod apps;

mod dispatch;
mod options;
mod reply;
mod routes;
mod serve;
mod stores;

pub use dispatch::{handle, handle_some};
pub use options::{Options, StoreKind};
pub use reply::Reply;
pub use routes::{precheck, precheck_routed, Route};
pub(crate) use serve::{accept_loop, http1_builder};
pub use serve::{
    connection_limits, flush_at_exit, init_tracing, setup, until_shutdown, ConnectionLimits,
    DRAIN_TIMEOUT,
};

/// README.md's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
