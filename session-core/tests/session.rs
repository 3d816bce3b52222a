//! The session cases whose outcome does not depend on the store (no cookie,
//! tampered cookies, key rotation, typed values...): `GenericSession`, its
//! cookie and its codec, over the reference store, and over no store crate.

use session_core::testkit::MapStore;
use session_core::Limits;

session_core::__core_conformance_tests!(
    |limits: Limits| async move { MapStore::with_limits(limits) }
);
