//! Crash test (session-core's `testkit::crash`): a child process writes
//! sessions with `Durability::EveryWrite` and is killed with SIGKILL after
//! 400 acknowledged writes, three times; the reopened database (redb repairs
//! it on open) must hold every acknowledged write, no session half written,
//! and tables that agree.
//!
//! With `Durability::Every(10 s)` this test fails: SIGKILL loses the commits
//! not yet synced.

use session_core::testkit::crash;
use store_redb::{Durability, RedbStore};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let writes = crash::kill_rounds(dir.path());
    crash::runtime().block_on(async {
        let store =
            RedbStore::open(dir.path().join("sessions.redb")).expect("reopen after the crashes");
        assert_eq!(
            store.verify().expect("readable"),
            Vec::<String>::new(),
            "tables disagree"
        );
        crash::check(&store, &writes).await;
    });
}

/// The child of [`acknowledged_writes_survive_kill_9`]; does nothing when run
/// by hand without its environment.
#[test]
#[ignore = "the child process of acknowledged_writes_survive_kill_9"]
fn crash_child() {
    crash::child(|dir| {
        RedbStore::builder()
            .path(dir.join("sessions.redb"))
            .durability(Durability::EveryWrite)
            .open()
            .expect("open")
    });
}
