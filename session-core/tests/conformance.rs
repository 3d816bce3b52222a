//! The reference store, `testkit::MapStore`, against the conformance suite
//! every store runs: it must pass it as they do.

use session_core::testkit::MapStore;
use session_core::Limits;

session_core::store_conformance_tests!(
    |limits: Limits| async move { MapStore::with_limits(limits) }
);
