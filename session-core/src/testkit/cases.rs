//! The conformance cases. Each takes a fresh store.
//!
//! The cases are re-exported here from private modules, by the one list of
//! [`store_conformance_tests!`](crate::store_conformance_tests) (see
//! `macros.rs`): a case function left out of the list is dead code, which
//! these modules deny, so it cannot be forgotten silently.
//!
//! - store-level cases call the [`Store`] directly;
//! - `session_*` cases drive [`GenericSession`](crate::GenericSession)s over
//!   it, one a request, through a browser (private, `cases/browser.rs`) that
//!   carries the cookie from each response to the next request;
//! - the atomic operations and owned sessions have modules of their own,
//!   with both kinds of cases.

// A case that the list leaves out is never used: an error, not a warning.
#![deny(dead_code)]

use std::time::Duration;

use crate::{Change, ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};

mod atomic;
mod browser;
mod owners;
mod session;
mod store;
mod touch;

/// Re-exports every listed case: `pub use self::store::set_then_get_roundtrip;`...
macro_rules! reexport_cases {
    (() $($who:ident($limits:expr) [$($module:ident::$case:ident),* $(,)?])*) => {
        $($(pub use self::$module::$case;)*)*
    };
}

crate::__conformance_case_list!([reexport_cases]());

/// Long enough that nothing expires during a case.
const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The policy of cases that do not test expiry.
const LONG: ExpiryPolicy = ExpiryPolicy::idle(ONE_DAY);

fn new_id() -> SessionId {
    SessionId::generate("testkit:")
}

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A live session with the given keys, created with `WriteMode::Create`.
async fn create(store: &dyn Store, pairs: &[(&str, &str)], policy: &ExpiryPolicy) -> SessionId {
    let id = new_id();
    let changes: Vec<_> = pairs
        .iter()
        .map(|(k, val)| (k.to_string(), Some(v(val))))
        .collect();
    let outcome = store
        .set_many(&id, &changes, WriteMode::Create, policy)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied, "a Create write must apply");
    id
}

/// Whether the session exists (`extend`, which changes nothing else).
async fn exists(store: &dyn Store, id: &SessionId) -> bool {
    store.extend(id, &LONG).await.unwrap()
}

/// What an `Existing` write of one key did.
async fn write(
    store: &dyn Store,
    id: &SessionId,
    key: &str,
    value: &[u8],
    policy: &ExpiryPolicy,
) -> WriteOutcome {
    store
        .set(id, key, value, WriteMode::Existing, policy)
        .await
        .unwrap()
}

/// What an `Existing` write of several keys did.
async fn write_many(
    store: &dyn Store,
    id: &SessionId,
    changes: &[Change],
    policy: &ExpiryPolicy,
) -> WriteOutcome {
    store
        .set_many(id, changes, WriteMode::Existing, policy)
        .await
        .unwrap()
}

/// An `Existing` write of one key, which must apply.
async fn write_applied(
    store: &dyn Store,
    id: &SessionId,
    key: &str,
    value: &[u8],
    policy: &ExpiryPolicy,
) {
    assert_eq!(
        write(store, id, key, value, policy).await,
        WriteOutcome::Applied,
        "a write to a live session must apply"
    );
}
