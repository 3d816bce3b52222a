//! The contract's routes served four ways, one module each. Every `serve`
//! takes a bound listener, a store and a config, and serves until the process
//! ends; the binaries and the tests share them.
//!
//! | module | stack | binary |
//! |---|---|---|
//! | [`hyper`] | raw hyper 1, [`GenericSession`](session_core::GenericSession) by hand | `server` |
//! | [`tower`] | hyper 1 through hyper-util, with [`SessionLayer`](session_adapters::SessionLayer) | `server-tower` |
//! | [`axum`] | axum's router, the layer and the [`Session`](session_adapters::Session) extractor | `server-axum` |
//! | [`actix`] | actix-web with [`SessionMiddleware`](session_adapters::SessionMiddleware) | `server-actix` |
//!
//! [`login`] is not the contract but a realistic app on axum: log in, a page
//! that needs a login, log out (binary `login`).

pub mod actix;
pub mod axum;
pub mod hyper;
pub mod login;
pub mod tower;
