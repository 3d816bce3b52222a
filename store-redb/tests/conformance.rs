//! store-redb against the shared conformance suite of session-core, each case
//! on a fresh database in its own temporary directory.

use session_core::testkit::WithGuard;
use session_core::Limits;
use store_redb::RedbStore;

session_core::store_conformance_tests!(|limits: Limits| async move {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = RedbStore::builder()
        .path(dir.path().join("sessions.redb"))
        .limits(limits)
        .open()
        .expect("open the store");
    // The store is dropped before the directory (fields drop in order).
    WithGuard(store, dir)
});
