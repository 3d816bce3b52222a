//! Crash test (session-core's `testkit::crash`): a child process writes
//! sessions with `Durability::EveryWrite` and is killed with SIGKILL after
//! 400 acknowledged writes, three times; the reopened database must hold
//! every acknowledged write, no session half written, and trees that agree.
//!
//! With `Durability::Every(10 s)` this test fails: SIGKILL loses sled's
//! unflushed buffers.

use session_core::testkit::crash;
use store_sled::{Durability, SledStore};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let writes = crash::kill_rounds(dir.path());
    crash::runtime().block_on(async {
        let store = SledStore::open(dir.path()).expect("reopen after the crashes");
        assert_eq!(
            store.verify().expect("readable"),
            Vec::<String>::new(),
            "trees disagree"
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
        SledStore::builder()
            .path(dir)
            .durability(Durability::EveryWrite)
            .open()
            .expect("open")
    });
}
