//! store-sled beyond the conformance suite: the cases it shares with
//! store-redb (data and lifetimes across a reopen, the sweeper, store-wide
//! access, `Debug`, atomic operations across a reopen; in
//! `session_core::testkit::embedded`), typed open errors and the upgrade of
//! an old database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use session_core::testkit::embedded::{EmbeddedStore, Options};
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_sled::{Durability, Error, SledStore};

/// store-sled, for the shared cases.
struct Sled;

impl EmbeddedStore for Sled {
    type Store = SledStore;
    const ID_PREFIX: &'static str = "sled:";
    type TempDir = tempfile::TempDir;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn path_in(dir: &Path) -> PathBuf {
        dir.to_path_buf()
    }

    fn open(path: &Path, options: &Options) -> SledStore {
        let mut builder = SledStore::builder().path(path);
        if options.manual_durability {
            builder = builder.durability(Durability::Manual);
        }
        if let Some(interval) = options.sweep_interval {
            builder = builder.sweep_interval(interval);
        }
        if let Some(batch) = options.sweep_batch {
            builder = builder.sweep_batch(batch);
        }
        if let Some(limits) = options.limits {
            builder = builder.limits(limits);
        }
        builder.open().unwrap()
    }

    async fn len_on_disk(store: &SledStore) -> session_core::Result<u64> {
        store.len_on_disk().await
    }

    fn ttl(store: &SledStore, id: &SessionId) -> session_core::Result<Option<Duration>> {
        store.ttl(id)
    }

    fn verify(store: &SledStore) -> session_core::Result<Vec<String>> {
        store.verify()
    }

    fn size_on_disk(store: &SledStore) -> session_core::Result<u64> {
        store.size_on_disk()
    }
}

session_core::embedded_store_tests!(Sled);

#[test]
fn open_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(dir.path()).unwrap();
    match SledStore::open(dir.path()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    // sled's I/O threads may hold the database a moment after the drop.
    let start = Instant::now();
    loop {
        match SledStore::open(dir.path()) {
            Ok(_) => break,
            Err(Error::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(error) => panic!("free again once the first is dropped: {error}"),
        }
    }

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    match SledStore::open(&file) {
        Err(error @ Error::Open { .. }) => assert!(error.to_string().contains("a-file"), "{error}"),
        other => panic!("expected Open, got {other:?}"),
    }
    assert!(matches!(
        SledStore::builder().path(dir.path()).sweep_batch(0).open(),
        Err(Error::Config(_))
    ));
}

/// An open failure converts to session-core's error as every store's does:
/// `Open`, with the store's error as its source and the driver's after it.
#[test]
fn open_errors_convert_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a database").unwrap();
    let error = match SledStore::open(&file) {
        Err(error @ Error::Open { .. }) => session_core::Error::from(error),
        other => panic!("expected Open, got {other:?}"),
    };
    assert!(matches!(error, session_core::Error::Open(_)), "{error:?}");
    assert!(!error.is_unavailable());
    let source = std::error::Error::source(&error).expect("the store error kept");
    assert!(source.is::<Error>(), "{source:?}");
    assert!(source.source().is_some(), "the driver error kept");
}

/// The `meta` value of a session as builds before owned sessions wrote it
/// (version 1, or 2 with an idle timeout of its own).
fn legacy_meta(created: u64, deadline: u64, idle: Option<u64>, keys: &[&str]) -> Vec<u8> {
    let mut out = vec![if idle.is_some() { 2 } else { 1 }];
    out.extend_from_slice(&created.to_be_bytes());
    out.extend_from_slice(&deadline.to_be_bytes());
    if let Some(idle) = idle {
        out.extend_from_slice(&idle.to_be_bytes());
    }
    for key in keys {
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
    }
    out
}

/// A database written before owned sessions opens: its sessions decode
/// with zero counters and no owner, keep their data, deadlines and own idle
/// timeouts, and join the activity index (once: the second open reads no
/// session).
#[tokio::test]
async fn a_database_from_before_owned_sessions_opens_and_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (plain, own) = (SessionId::generate("old:"), SessionId::generate("old:"));
    {
        let db = sled::open(dir.path()).unwrap();
        let (meta, data, expiry) = (
            db.open_tree("meta").unwrap(),
            db.open_tree("data").unwrap(),
            db.open_tree("expiry").unwrap(),
        );
        let created = now - 10_000;
        for (id, deadline, idle) in [
            (&plain, now + 60_000, None),
            (&own, now + 3_595_000, Some(3_600_000)),
        ] {
            meta.insert(id.as_str(), legacy_meta(created, deadline, idle, &["user"]))
                .unwrap();
            let mut key = (id.as_str().len() as u32).to_be_bytes().to_vec();
            key.extend_from_slice(id.as_str().as_bytes());
            key.extend_from_slice(b"user");
            data.insert(key, &b"ada"[..]).unwrap();
            let mut key = deadline.to_be_bytes().to_vec();
            key.extend_from_slice(id.as_str().as_bytes());
            expiry.insert(key, &[]).unwrap();
        }
        db.flush().unwrap();
    }

    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let reopen = || {
        let start = Instant::now();
        loop {
            match SledStore::open(dir.path()) {
                Ok(store) => return store,
                // sled's I/O threads may hold the database a moment after a drop.
                Err(Error::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(error) => panic!("reopen: {error}"),
            }
        }
    };
    {
        let store = reopen();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        assert_eq!(store.len().await.unwrap(), 2);
        let info = store.info(&plain).await.unwrap().expect("kept");
        assert_eq!((info.reads, info.writes, info.owner), (0, 0, None));
        assert_eq!(info.created_ms, now - 10_000);
        assert_eq!(
            info.last_active_ms, info.created_ms,
            "the latest time known"
        );
        let info = store.info(&own).await.unwrap().expect("kept");
        assert_eq!(
            info.last_active_ms,
            now - 5_000,
            "its deadline less its own idle timeout"
        );
        assert_eq!(
            store.count_active(Duration::from_secs(3600)).await.unwrap(),
            2
        );

        assert_eq!(
            store.get(&plain, "user", &policy).await.unwrap().as_deref(),
            Some(&b"ada"[..])
        );
        assert_eq!(store.info(&plain).await.unwrap().unwrap().reads, 1);
        // Its own idle timeout came along: an hour, not the policy's minute.
        assert!(store.extend(&own, &policy).await.unwrap());
        assert!(store.ttl(&own).unwrap().unwrap() > Duration::from_secs(3000));
        assert!(store.bind_owner(&own, "ada", None, &policy).await.unwrap());
        assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    }
    let store = reopen();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    assert_eq!(store.info(&plain).await.unwrap().unwrap().reads, 1);
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
}

/// Concurrent writes share transactions on the writer thread, yet each is
/// answered alone: one that would take the session over its size limit is
/// refused while the others land, and the reads counted in memory are folded
/// into the record once, however many of a batch's writes touch it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_are_answered_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let limits = session_core::Limits::default()
        .with_max_value_bytes(4096)
        .with_max_session_bytes(1000);
    let store = std::sync::Arc::new(
        SledStore::builder()
            .path(dir.path())
            .limits(limits)
            .open()
            .unwrap(),
    );
    let policy =
        ExpiryPolicy::idle(Duration::from_secs(600)).with_touch_after(Duration::from_secs(60));
    let id = SessionId::generate("sled:");
    let created = store
        .set(&id, "first", b"1", session_core::WriteMode::Create, &policy)
        .await
        .unwrap();
    assert_eq!(created, session_core::WriteOutcome::Applied);
    // Inside the granularity: counted in memory, not written.
    for _ in 0..5 {
        assert!(store.get(&id, "first", &policy).await.unwrap().is_some());
    }
    let writes: Vec<_> = (0..32)
        .map(|i| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let value = if i == 7 {
                    vec![b'x'; 2000]
                } else {
                    b"v".to_vec()
                };
                store
                    .set(
                        &id,
                        &format!("k{i}"),
                        &value,
                        session_core::WriteMode::Existing,
                        &policy,
                    )
                    .await
            })
        })
        .collect();
    for (i, write) in writes.into_iter().enumerate() {
        let outcome = write.await.unwrap();
        if i == 7 {
            let error = outcome.expect_err("over the session's size limit");
            assert!(error.is_invalid_input(), "{error:?}");
        } else {
            assert_eq!(outcome.unwrap(), session_core::WriteOutcome::Applied);
        }
    }
    let all = store.get_all(&id, &policy).await.unwrap();
    assert_eq!(all.len(), 32, "the first key and 31 of the 32");
    assert!(!all.contains_key("k7"));
    let info = store.info(&id).await.unwrap().unwrap();
    assert_eq!((info.reads, info.writes), (6, 32));
    drop(store);
    // From disk: the 5 reads before the writes were folded into the record
    // once; `get_all`'s, after the last write, as the store closed.
    let store = SledStore::builder().path(dir.path()).open().unwrap();
    let info = store.info(&id).await.unwrap().unwrap();
    assert_eq!((info.reads, info.writes), (6, 32));
}

/// Polls `future` on this thread until it is ready: no tokio runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn operations_and_flush_work_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let policy = ExpiryPolicy::idle(Duration::from_secs(600));
    let id = SessionId::generate("");
    let store = SledStore::builder()
        .path(dir.path().join("sled"))
        .durability(Durability::Manual)
        .open()
        .unwrap();
    let written = block_on(store.set(&id, "k", b"v", WriteMode::Create, &policy)).unwrap();
    assert_eq!(written, WriteOutcome::Applied);
    assert_eq!(
        block_on(store.get(&id, "k", &policy)).unwrap(),
        Some(b"v".to_vec())
    );
    // Off a runtime there is no timer: the flush must not reach for one
    // (it panicked here once).
    block_on(store.flush()).unwrap();
}
