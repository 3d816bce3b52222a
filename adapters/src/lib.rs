//! # session-adapters
//!
//! Session middleware for Rust web frameworks: it attaches
//! the session of each request to the request, and after the handler writes the
//! `Set-Cookie` header the response needs (none when the session was not
//! touched or its cookie did not change).
//!
//! Each framework is a cargo feature, so a user of one compiles none of the
//! others:
//!
//! | feature | gives |
//! |---|---|
//! | `tower` | [`SessionLayer`]: a tower layer for hyper 1 (through hyper-util), axum, tonic, or any tower stack |
//! | `axum` | `tower`, plus [`Session`] as an axum extractor |
//! | `actix` | [`SessionMiddleware`] for actix-web, and [`Session`] as an actix-web extractor |
//!
//! Without a framework, use [`session_core::GenericSession`] directly (the
//! `server` example does, on raw hyper).
//!
//! ## The handle
//!
//! Handlers get a [`Session`]: a cheap-to-clone handle that dereferences to
//! [`GenericSession`](session_core::GenericSession), so the whole per-key API is there (`get`, `set`, `del`,
//! `get_many`, `set_many`, `del_many`, `get_all`, `destroy`, `regenerate`, …,
//! typed through serde). Building it finds the cookie and nothing more: the
//! signature is verified on first use, the store is only called by the
//! handle's methods, one operation per call, and no lock is held while the
//! handler runs. So concurrent requests of one session run concurrently, and
//! writes to different keys never overwrite each other. Writes to the same
//! key lose nothing either through the atomic operations (`incr`, `take`,
//! `compare_and_set`, `update`): a `get` then a `set`, as in a hand-made
//! counter, would lose increments to a concurrent request of the session.
//!
//! The cookie is the middleware's alone: it keeps the session's
//! [`ResponseCookie`](session_core::ResponseCookie) and writes it once the
//! handler's response is ready, and nothing reachable from a [`Session`]
//! can write it, so no handler can send it twice.
//!
//! ## axum
//!
//! ```
//! # #[cfg(not(feature = "axum"))] fn main() {}
//! # #[cfg(feature = "axum")]
//! # mod doc {
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use session_adapters::{Error, Session, SessionLayer};
//! use session_core::SessionConfig;
//! use store_memory::MemoryStore;
//!
//! async fn visits(session: Session) -> Result<String, Error> {
//!     let visits = session.incr("visits", 1).await?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! # pub fn main() -> Result<(), session_core::Error> {
//! let config = SessionConfig::builder()
//!     .key(b"a signing key of at least 32 bytes, from a secret store".to_vec())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(Arc::new(MemoryStore::new()), config));
//! # Ok(()) }
//! # }
//! # #[cfg(feature = "axum")]
//! # fn main() { doc::main().unwrap() }
//! ```
//!
//! `Router::layer` wraps each route on its own, which boxes one more service
//! and future per request; on a hot path, `SessionLayer::new(..).layer(router)`
//! wraps the whole router once instead (a [`SessionService`] around it, served
//! as any tower service), and handlers find the session just the same.
//!
//! [`Error`] is the handlers' error type: `?` converts session-core's errors,
//! which answer 400 for bad input (an oversized key, say), 503 when the store
//! is down or slow, and 500 otherwise.
//!
//! ## actix-web
//!
//! ```
//! # #[cfg(not(feature = "actix"))] fn main() {}
//! # #[cfg(feature = "actix")]
//! # mod doc {
//! use std::sync::Arc;
//! use actix_web::{web, App};
//! use session_adapters::{Error, Session, SessionMiddleware};
//! use session_core::SessionConfig;
//! use store_memory::MemoryStore;
//!
//! async fn visits(session: Session) -> Result<String, Error> {
//!     let visits = session.incr("visits", 1).await?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! # pub fn main() -> Result<(), session_core::Error> {
//! let config = SessionConfig::builder()
//!     .key(b"a signing key of at least 32 bytes, from a secret store".to_vec())
//!     .build()?;
//! let sessions = SessionMiddleware::new(Arc::new(MemoryStore::new()), config);
//! // In `HttpServer::new(move || ...)`, once per worker:
//! let app = App::new()
//!     .wrap(sessions.clone())
//!     .route("/", web::get().to(visits));
//! # Ok(()) }
//! # }
//! # #[cfg(feature = "actix")]
//! # fn main() { doc::main().unwrap() }
//! ```
#![warn(missing_docs)]

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
mod axum;
mod error;
mod session;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "actix")]
pub use crate::actix::{SessionMiddleware, SessionMiddlewareFuture, SessionMiddlewareService};
pub use crate::error::Error;
pub use crate::session::Session;
#[cfg(feature = "tower")]
pub use crate::tower::{ResponseFuture, SessionLayer, SessionService};
