//! store-sled beyond the shared suite: data and lifetimes across a reopen,
//! the sweeper, store-wide access, and typed open errors.

use std::time::{Duration, Instant};

use session_core::{ExpiryPolicy, Handle, Limits, SessionId, Store, Swap, WriteMode, WriteOutcome};
use store_sled::{Durability, Error, SledStore};

const HOUR: Duration = Duration::from_secs(3600);

/// Every live session's handle, by the store-wide listing (ids are never
/// listed), paged.
async fn all_handles(store: &dyn Store) -> Vec<Handle> {
    let mut handles = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .active_page(Duration::MAX, cursor.as_deref(), 7)
            .await
            .unwrap();
        handles.extend(page.sessions.into_iter().map(|info| info.handle));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return handles,
        }
    }
}

async fn create(store: &SledStore, pairs: &[(&str, &str)], policy: &ExpiryPolicy) -> SessionId {
    let id = SessionId::generate("sled:");
    let changes: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
        .collect();
    let outcome = store
        .set_many(&id, &changes, WriteMode::Create, policy)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);
    id
}

#[tokio::test]
async fn data_and_remaining_lifetimes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let idle = ExpiryPolicy::idle(Duration::from_secs(60));
    let absolute = ExpiryPolicy::idle(HOUR).with_absolute(Duration::from_secs(30));
    let (plain, capped) = {
        let store = SledStore::open(dir.path()).unwrap();
        let plain = create(&store, &[("user", "ada"), ("cart", "3 apples")], &idle).await;
        let capped = create(&store, &[("user", "grace")], &absolute).await;
        (plain, capped)
    }; // dropped: flushed and closed

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let store = SledStore::open(dir.path()).unwrap();
    let ttl = store.ttl(&plain).unwrap().expect("still alive");
    assert!(
        ttl <= Duration::from_secs(59) && ttl > Duration::from_secs(50),
        "the idle deadline was kept, not restarted: {ttl:?}"
    );
    let ttl = store.ttl(&capped).unwrap().expect("still alive");
    assert!(ttl <= Duration::from_secs(29), "{ttl:?}");

    let all = store.get_all(&plain, &idle).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["cart"], b"3 apples");
    // The read slid the idle deadline; the absolute one cannot move.
    assert!(store.ttl(&plain).unwrap().unwrap() > Duration::from_secs(59));
    assert_eq!(
        store
            .get(&capped, "user", &absolute)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"grace"[..])
    );
    assert!(store.ttl(&capped).unwrap().unwrap() <= Duration::from_secs(29));
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn the_sweeper_empties_the_disk_of_expired_sessions_without_any_access() {
    let dir = tempfile::tempdir().unwrap();
    // No disk sync per write, so that all 501 exist before the first expires.
    let store = SledStore::builder()
        .path(dir.path())
        .durability(Durability::Manual)
        .sweep_interval(Duration::from_millis(50))
        .sweep_batch(64)
        .open()
        .unwrap();
    // Long enough that all 501 exist before the first expires, on a loaded machine.
    let short = ExpiryPolicy::idle(Duration::from_secs(5));
    for i in 0..500 {
        create(
            &store,
            &[("n", &i.to_string()), ("payload", &"x".repeat(100))],
            &short,
        )
        .await;
    }
    let keeper = create(&store, &[("user", "ada")], &ExpiryPolicy::idle(HOUR)).await;
    assert_eq!(store.len_on_disk().await.unwrap(), 501);

    let start = Instant::now();
    while store.len_on_disk().await.unwrap() > 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} sessions still on disk",
            store.len_on_disk().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.len().await.unwrap(), 1);
    assert_eq!(
        store.verify().unwrap(),
        Vec::<String>::new(),
        "data and index entries swept too"
    );
    assert_eq!(all_handles(&store).await, vec![Handle::of(&keeper)]);
    assert_eq!(
        store
            .get(&keeper, "user", &ExpiryPolicy::idle(HOUR))
            .await
            .unwrap(),
        Some(b"ada".to_vec()),
        "a live session is never swept"
    );
}

#[tokio::test]
async fn store_wide_count_iterate_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    // The sweeper stays out of the way: `destroy_all` must remove the
    // expired one too.
    let store = SledStore::builder()
        .path(dir.path())
        .sweep_interval(HOUR)
        .open()
        .unwrap();
    let policy = ExpiryPolicy::idle(HOUR);
    let mut made = Vec::new();
    for i in 0..20 {
        made.push(create(&store, &[("n", &i.to_string())], &policy).await);
    }
    // An expired session is not counted, even before the sweeper sees it.
    create(
        &store,
        &[("n", "gone")],
        &ExpiryPolicy::idle(Duration::from_millis(1)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.len().await.unwrap(), 20);
    let mut handles = all_handles(&store).await;
    handles.sort();
    let mut made_handles: Vec<_> = made.iter().map(Handle::of).collect();
    made_handles.sort();
    assert_eq!(handles, made_handles);
    assert!(store.size_on_disk().unwrap() > 0);

    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    // All 21 go, the expired one too; the 20 live ones are counted.
    assert_eq!(store.len_on_disk().await.unwrap(), 21);
    assert_eq!(store.destroy_all().await.unwrap(), 20);
    assert!(store.is_empty().await.unwrap());
    assert_eq!(store.len_on_disk().await.unwrap(), 0);
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    assert_eq!(store.get(&made[0], "n", &policy).await.unwrap(), None);
}

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

/// `Debug` shows where and how, never what: no key, value or full id.
#[tokio::test]
async fn debug_never_shows_session_data_or_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("db")).unwrap();
    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let id = create(&store, &[("card-key", "card-4111111111111111")], &policy).await;
    let shown = format!("{store:?}");
    for secret in ["card-key", "4111111111111111", id.token()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
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

/// Expired owned sessions leave every index with the sweeper, without any
/// access; until then, queries skip them.
#[tokio::test]
async fn the_sweeper_takes_expired_sessions_out_of_the_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::builder()
        .path(dir.path())
        .sweep_interval(Duration::from_millis(50))
        .open()
        .unwrap();
    let short = ExpiryPolicy::idle(Duration::from_millis(300));
    for _ in 0..20 {
        let id = create(&store, &[("k", "v")], &short).await;
        assert!(store.bind_owner(&id, "ada", None, &short).await.unwrap());
    }
    let keeper = create(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
    assert!(store
        .bind_owner(&keeper, "ada", None, &ExpiryPolicy::idle(HOUR))
        .await
        .unwrap());
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 21);
    assert_eq!(store.count_active(HOUR).await.unwrap(), 21);

    let start = Instant::now();
    while store.len_on_disk().await.unwrap() > 1 {
        assert!(start.elapsed() < Duration::from_secs(30), "not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    let listed = store.owner_sessions("ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, session_core::Handle::of(&keeper));
    assert_eq!(store.count_active(HOUR).await.unwrap(), 1);
    let page = store.active_page(HOUR, None, 100).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
}

/// Expired sessions the sweeper has not reached yet are neither counted,
/// listed nor paged; a cursor that is not one of ours ends the walk.
#[tokio::test]
async fn queries_skip_expired_sessions_before_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::builder()
        .path(dir.path())
        .sweep_interval(HOUR)
        .open()
        .unwrap();
    let brief = ExpiryPolicy::idle(Duration::from_millis(1));
    for _ in 0..3 {
        let id = create(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
        assert!(store.bind_owner(&id, "ada", None, &brief).await.unwrap());
    }
    let lasting = create(&store, &[("k", "v")], &ExpiryPolicy::idle(HOUR)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.len_on_disk().await.unwrap(), 4, "not swept");
    assert!(store.owner_sessions("ada").await.unwrap().is_empty());
    assert_eq!(store.count_active(HOUR).await.unwrap(), 1);
    let page = store.active_page(HOUR, None, 10).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].handle, session_core::Handle::of(&lasting));
    let page = store.active_page(HOUR, Some("garbage"), 10).await.unwrap();
    assert!(page.sessions.is_empty() && page.next.is_none());
    assert_eq!(store.destroy_owner("ada", None).await.unwrap(), 0);
    assert_eq!(
        store.len_on_disk().await.unwrap(),
        1,
        "expired ones removed, uncounted"
    );
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
}

/// Take, compare-and-set and increment keep the tables in step (a session
/// created by an increment, a refused write, a session emptied by a take),
/// and what they wrote survives a reopen.
#[tokio::test]
async fn atomic_operations_keep_the_store_sound_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let open = || {
        SledStore::builder()
            .path(path.clone())
            .limits(Limits::default().with_max_keys(2))
            .open()
            .unwrap()
    };
    let policy = ExpiryPolicy::idle(HOUR);
    let (counted, emptied) = {
        let store = open();
        let counted = SessionId::generate("sled:");
        let n = store.increment(&counted, "n", 2, WriteMode::Create, &policy);
        assert_eq!(n.await.unwrap(), Some(2));
        assert!(store
            .bind_owner(&counted, "ada", None, &policy)
            .await
            .unwrap());
        let swap = store.compare_and_set(
            &counted,
            "f",
            None,
            Some(b"1"),
            WriteMode::Existing,
            &policy,
        );
        assert_eq!(swap.await.unwrap(), Swap::Applied);
        let third = store.increment(&counted, "third", 1, WriteMode::Existing, &policy);
        assert!(matches!(
            third.await,
            Err(session_core::Error::TooManyKeys { .. })
        ));
        assert_eq!(
            store.take(&counted, "f", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
        let emptied = create(&store, &[("only", "x")], &policy).await;
        assert_eq!(
            store.take(&emptied, "only", &policy).await.unwrap(),
            Some(b"x".to_vec())
        );
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        (counted, emptied)
    };
    let store = open();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    let info = store.info(&counted).await.unwrap().expect("alive");
    assert_eq!(
        (info.reads, info.writes),
        (0, 3),
        "the refusal is not counted"
    );
    let all = store.get_all(&counted, &policy).await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [("n".to_string(), b"2".to_vec())]
    );
    assert!(
        store.extend(&emptied, &policy).await.unwrap(),
        "emptied, not ended"
    );
    assert_eq!(store.get_all(&emptied, &policy).await.unwrap().len(), 0);
}
