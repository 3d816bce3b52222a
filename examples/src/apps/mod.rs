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

use crate::Route;

/// How a path of [`PATHS`] becomes a [`Route`].
#[derive(Clone)]
pub(crate) enum Param {
    /// No parameter: always this route.
    None(Route),
    /// One path segment, as the framework decoded it.
    Key(fn(String) -> Option<Route>),
    /// One number, as it stands in the path.
    Number(fn(&str) -> Option<Route>),
}

/// The contract's paths of at most one parameter, in the `{name}` syntax
/// axum and actix-web share, so that both routers serve the same ones. `/`
/// (which takes no session) and `/set` (two parameters, the second in each
/// framework's own syntax) each router adds itself.
pub(crate) const PATHS: [(&str, Param); 13] = [
    ("/get/{key}", Param::Key(Route::get)),
    ("/del/{key}", Param::Key(Route::del)),
    ("/destroy", Param::None(Route::Destroy)),
    ("/regenerate", Param::None(Route::Regenerate)),
    ("/lifetime/{seconds}", Param::Number(Route::lifetime)),
    ("/login/{user}", Param::Key(Route::login)),
    ("/sessions", Param::None(Route::Sessions)),
    ("/sessions/revoke/{handle}", Param::Key(Route::revoke)),
    ("/logout-others", Param::None(Route::LogoutOthers)),
    ("/logout-everywhere", Param::None(Route::LogoutEverywhere)),
    ("/active/{seconds}", Param::Number(Route::active)),
    ("/incr/{key}", Param::Key(Route::incr)),
    ("/take/{key}", Param::Key(Route::take)),
];
