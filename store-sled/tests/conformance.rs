//! store-sled against the shared conformance suite of session-core, each case
//! on a fresh database in its own temporary directory.

use session_core::testkit::WithGuard;
use session_core::Limits;
use store_sled::SledStore;

session_core::store_conformance_tests!(|limits: Limits| async move {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SledStore::builder()
        .path(dir.path())
        .limits(limits)
        .open()
        .expect("open the store");
    // The store is dropped before the directory (fields drop in order).
    WithGuard(store, dir)
});
