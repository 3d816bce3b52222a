//! store-sled under the shared soak: 64 tasks of mixed operations for
//! `SOAK_SECS` (default 120), every operation answered within its deadline.
//!
//! sled 0.34 can deadlock under load (sled #1412), and no bound on its
//! concurrency prevented it here, so what store-sled promises is an answer
//! within its own timeout (3 s here), success or `Error::Timeout`, never a
//! hang: the soak tolerates (and counts) those timeouts, and fails only on
//! an operation that gets no answer within 5 s, or on a wrong one.

use std::time::Duration;

use session_core::testkit::soak::{run_test_with, Soak};
use session_core::testkit::WithGuard;
use store_sled::SledStore;

#[test]
fn soak() {
    let soak = Soak {
        tolerate_timeouts: true,
        ..Soak::from_env()
    };
    run_test_with("store-sled", soak, || async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SledStore::builder()
            .path(dir.path())
            .timeout(Duration::from_secs(3))
            .open()
            .expect("open the store");
        WithGuard(store, dir)
    });
}
