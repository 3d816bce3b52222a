//! store-redb under the shared soak: 64 tasks of mixed operations for
//! `SOAK_SECS` (default 120), every operation within its deadline.

use session_core::testkit::WithGuard;
use store_redb::RedbStore;

#[test]
fn soak() {
    session_core::testkit::soak::run_test("store-redb", || async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = RedbStore::open(dir.path().join("sessions.redb")).expect("open the store");
        WithGuard(store, dir)
    });
}
