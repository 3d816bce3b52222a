//! The crash test for persistent stores: a child process writes sessions and
//! reports each acknowledged write; it is killed with SIGKILL mid-stream.
//! Reopening the store must find every acknowledged write and no session
//! half written, and list (by handle, through the store-wide queries) no
//! session that a child did not write. Three rounds on the same database, so recovery is followed
//! by more writes and another crash.
//!
//! The child is the same test binary, run again with `--exact crash_child
//! --ignored`, so a store's test file holds both halves:
//!
//! ```ignore
//! // store-foo/tests/crash.rs
//! use session_core::testkit::crash;
//!
//! #[test]
//! fn acknowledged_writes_survive_kill_9() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let writes = crash::kill_rounds(dir.path());
//!     crash::runtime().block_on(async {
//!         let store = FooStore::open(dir.path()).unwrap();
//!         crash::check(&store, &writes).await;
//!     });
//! }
//!
//! #[test]
//! #[ignore = "the child process of acknowledged_writes_survive_kill_9"]
//! fn crash_child() {
//!     crash::child(|dir| FooStore::open(dir).unwrap());
//! }
//! ```
//!
//! SIGKILL loses what the process held in memory, not what the kernel held:
//! power loss additionally relies on the store's `fsync`, which a test
//! cannot pull the plug on.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::{Change, ExpiryPolicy, Handle, SessionId, Store, WriteMode, WriteOutcome};

const DIR_VAR: &str = "TESTKIT_CRASH_DIR";
const ROUND_VAR: &str = "TESTKIT_CRASH_ROUND";
const ROUNDS: u64 = 3;
/// Acknowledged writes to wait for before the kill, per round.
const ACKS_BEFORE_KILL: usize = 400;
const WRITERS: u64 = 4;
const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

/// The session the child writes for number `n`: three keys, one of 1 KiB,
/// each derived from `n`, written in one `set_many`.
pub fn session(n: u64) -> Vec<Change> {
    let payload: Vec<u8> = (0..1024u64)
        .map(|i| (n.wrapping_mul(31) + i) as u8)
        .collect();
    vec![
        ("n".into(), Some(n.to_string().into_bytes())),
        ("payload".into(), Some(payload)),
        ("check".into(), Some(format!("{n}:done").into_bytes())),
    ]
}

/// What `get_all` must read back of session `n`.
pub fn expected(n: u64) -> HashMap<String, Vec<u8>> {
    session(n)
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// A tokio runtime with timers, for the checks after the rounds.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// What the children of [`kill_rounds`] did, each write as (session id,
/// number).
#[derive(Clone, Debug, Default)]
pub struct Writes {
    /// Every write a child began, acknowledged or cut off by a kill.
    pub begun: Vec<(String, u64)>,
    /// Every write a child saw acknowledged.
    pub acked: Vec<(String, u64)>,
}

/// Runs the child (the test `crash_child` of this binary) three times on
/// `dir`, killing it with SIGKILL after 400 acknowledged writes each time.
/// Returns every write begun and every write acknowledged.
///
/// # Panics
///
/// If a child stops before its 400th acknowledgement.
pub fn kill_rounds(dir: &Path) -> Writes {
    let mut writes = Writes::default();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir)
            .env(ROUND_VAR, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let mut this_round = 0;
        let stdout = child.stdout.take().expect("the child's stdout");
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("read the child's output");
            if let Some(begun) = parse_write(&line, "begin ") {
                writes.begun.push(begun);
                continue;
            }
            let Some(acked) = parse_write(&line, "ack ") else {
                continue;
            };
            writes.acked.push(acked);
            this_round += 1;
            if this_round == ACKS_BEFORE_KILL {
                // SIGKILL, while the other writers are mid-write.
                child.kill().expect("kill the child");
                break;
            }
        }
        // The writes begun before the kill whose lines were not read yet.
        for line in lines.map_while(std::result::Result::ok) {
            writes.begun.extend(parse_write(&line, "begin "));
        }
        let status = child.wait().expect("reap the child");
        assert!(
            this_round == ACKS_BEFORE_KILL,
            "round {round}: the child stopped after {this_round} acks ({status})"
        );
    }
    writes
}

/// A child's line `PREFIX ID N`, after whatever the test harness printed
/// on the same line (its first line follows `test crash_child ... `).
fn parse_write(line: &str, prefix: &str) -> Option<(String, u64)> {
    let (_, write) = line.split_once(prefix)?;
    let (id, n) = write.split_once(' ')?;
    Some((id.to_string(), n.parse().expect("a number")))
}

/// Every live session's handle, by the store-wide listing.
async fn all_handles(store: &dyn Store) -> Vec<Handle> {
    let mut handles = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .active_page(Duration::MAX, cursor.as_deref(), 100)
            .await
            .expect("listable");
        handles.extend(page.sessions.into_iter().map(|info| info.handle));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return handles,
        }
    }
}

/// Checks the reopened `store`: every acknowledged session is there, whole,
/// and so is every session the store lists (all it holds, by handle),
/// acknowledged or cut off by a kill: each is one a child began, and none
/// is half written.
pub async fn check(store: &dyn Store, writes: &Writes) {
    let acked = &writes.acked;
    for (id, n) in acked {
        let id = SessionId::parse("", id).expect("an id the child made");
        let all = store.get_all(&id, &POLICY).await.expect("readable");
        assert_eq!(
            all,
            expected(*n),
            "acknowledged session {n} lost or damaged"
        );
    }
    // The store names its sessions by handle only: each must be the
    // handle of a write a child began, so that its id is known.
    let mut begun: HashMap<Handle, (SessionId, u64)> = HashMap::new();
    for (id, n) in &writes.begun {
        let id = SessionId::parse("", id).expect("an id the child made");
        begun.insert(Handle::of(&id), (id, *n));
    }
    let listed = all_handles(store).await;
    assert!(listed.len() >= acked.len());
    for (id, _) in acked {
        let id = SessionId::parse("", id).expect("an id the child made");
        assert!(
            listed.contains(&Handle::of(&id)),
            "an acknowledged session is not listed"
        );
    }
    for handle in &listed {
        let (id, n) = begun
            .get(handle)
            .unwrap_or_else(|| panic!("a session no child began: {}", handle.as_str()));
        let all = store.get_all(id, &POLICY).await.expect("readable");
        assert!(
            all.contains_key("n"),
            "a session without its number: {all:?}"
        );
        assert_eq!(all, expected(*n), "session {n} is half written");
    }
    eprintln!(
        "{} acknowledged writes over {ROUNDS} kills, {} sessions on disk, all whole",
        acked.len(),
        listed.len()
    );
}

/// The child: opens the store with `open` in the directory the parent
/// names, and writes sessions from 4 concurrent writers until killed,
/// printing `begin ID N` before each write and `ack ID N` after it returns. Does nothing when run by
/// hand without the parent's environment.
pub fn child<S: Store>(open: impl FnOnce(&Path) -> S) {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_VAR)
        .ok()
        .and_then(|round| round.parse().ok())
        .expect("the round number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let store = Arc::new(open(Path::new(&dir)));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Numbers never repeat across writers and rounds.
                    for i in 0.. {
                        let n = (round << 40) | (writer << 32) | i;
                        let id = SessionId::generate("");
                        // Before the write can touch the store, so that
                        // the parent knows every session on disk.
                        println!("begin {} {n}", id.as_str());
                        let outcome = store
                            .set_many(&id, &session(n), WriteMode::Create, &POLICY)
                            .await
                            .expect("write");
                        assert_eq!(outcome, WriteOutcome::Applied);
                        // Only now is it acknowledged.
                        println!("ack {} {n}", id.as_str());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("a writer");
        }
    });
}
