//! The conformance suite every [`Store`] must pass, run by each store crate in
//! its own tests (feature `testkit`).
//!
//! ```
//! // store-foo/tests/conformance.rs, with `FooStore::builder().limits(limits).build()`
//! // in place of session-core's reference store
//! session_core::store_conformance_tests!(|limits: session_core::Limits| async move {
//!     session_core::testkit::MapStore::with_limits(limits)
//! });
//! # fn main() {}
//! ```
//!
//! The factory receives the [`Limits`] the case wants (defaults, or small ones
//! for the size-limit case) and returns a store, or a [`WithGuard`] when the
//! store needs something kept alive beside it (a test server, a temporary
//! directory). Each case gets a fresh store and becomes one `#[tokio::test]`,
//! so a failure names the case. Store-level cases call the [`Store`] directly;
//! `session_*` cases drive a [`GenericSession`](crate::GenericSession) over it, with cookies.
//!
//! Timing cases use real, short timeouts (seconds) with wide margins, so that a
//! loaded 2-core machine does not make them flaky; they cost a few seconds of
//! wall time each but run in parallel.
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`store_conformance_tests!`](crate::store_conformance_tests) (`macros.rs`) | the macro, and the one list of cases it runs |
//! | [`cases`] | the cases: store-level ones, `GenericSession` ones, atomic operations, owners |
//! | [`MapStore`] (`reference.rs`) | the reference store: a map behind a mutex, the model of a new store |
//! | [`CountingStore`] (`counting.rs`) | a store wrapper that counts the operations reaching it |
//! | [`crash`], [`soak`] | the crash test and the soak test |
//! | [`embedded`] | the cases the embedded, persistent stores (redb, sled) share, and [`embedded_store_tests!`](crate::embedded_store_tests) |
//!
//! Session cases whose outcome does not depend on the store (no cookie, a
//! tampered cookie, key rotation, typed values...) run only in session-core's
//! own tests, over [`MapStore`]; every store runs the rest.

use std::any::Any;
use std::sync::Arc;

use crate::{Limits, Store};

pub mod cases;
mod counting;
pub mod crash;
pub mod embedded;
mod macros;
mod reference;
pub mod soak;

pub use counting::CountingStore;
pub use reference::MapStore;

#[doc(hidden)]
pub use tokio as __tokio;

/// A store for one test case, with anything that must outlive it.
pub struct TestStore {
    /// The store under test.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

/// A store plus a guard (a server process, a temporary directory) dropped after
/// the case has finished with the store.
pub struct WithGuard<S, G>(pub S, pub G);

/// What a testkit factory may return: a store, or a [`WithGuard`].
pub trait IntoTestStore {
    /// Converts into the store and its guard.
    fn into_test_store(self) -> TestStore;
}

impl<S: Store> IntoTestStore for S {
    fn into_test_store(self) -> TestStore {
        TestStore {
            store: Arc::new(self),
            _guard: Box::new(()),
        }
    }
}

impl<S: Store, G: Send + 'static> IntoTestStore for WithGuard<S, G> {
    fn into_test_store(self) -> TestStore {
        TestStore {
            store: Arc::new(self.0),
            _guard: Box::new(self.1),
        }
    }
}

/// The `name=value` pair a `Set-Cookie` line sets (what a client sends
/// back in `Cookie`), without its attributes. The one place tests, in this
/// crate and the others, take a cookie apart.
///
/// ```
/// assert_eq!(session_core::testkit::cookie_pair("s=abc; Path=/; HttpOnly"), "s=abc");
/// ```
pub fn cookie_pair(set_cookie: impl AsRef<[u8]>) -> String {
    let line = String::from_utf8_lossy(set_cookie.as_ref());
    line.split(';').next().unwrap_or_default().trim().to_owned()
}

/// The limits the size-limit case asks its factory for.
pub fn small_limits() -> Limits {
    Limits::default()
        .with_max_key_bytes(16)
        .with_max_value_bytes(1024)
}

/// The limits the per-session limit case asks its factory for: 4 keys and
/// 64 bytes a session.
pub fn session_limits() -> Limits {
    Limits::default()
        .with_max_keys(4)
        .with_max_session_bytes(64)
}

/// The limits the value-limit case of the atomic operations asks its
/// factory for: values of 2 bytes at most.
pub fn tiny_value_limits() -> Limits {
    Limits::default().with_max_value_bytes(2)
}
