//! store-redb beyond the shared suite: data and lifetimes across a reopen,
//! the sweeper, store-wide access, and typed open errors.

use std::time::{Duration, Instant};

use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_redb::{Durability, Error, RedbStore};

const HOUR: Duration = Duration::from_secs(3600);

async fn create(store: &RedbStore, pairs: &[(&str, &str)], policy: &ExpiryPolicy) -> SessionId {
    let id = SessionId::generate("redb:");
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
        let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
        let plain = create(&store, &[("user", "ada"), ("cart", "3 apples")], &idle).await;
        let capped = create(&store, &[("user", "grace")], &absolute).await;
        (plain, capped)
    }; // dropped: flushed and closed

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
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
    let store = RedbStore::builder()
        .path(dir.path().join("s.redb"))
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
    assert_eq!(store.len_on_disk().unwrap(), 501);

    let start = Instant::now();
    while store.len_on_disk().unwrap() > 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} sessions still on disk",
            store.len_on_disk().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.len().unwrap(), 1);
    assert_eq!(
        store.verify().unwrap(),
        Vec::<String>::new(),
        "data and index entries swept too"
    );
    let ids = store.ids().unwrap();
    assert_eq!(ids, vec![keeper.clone()]);
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
    // The sweeper stays out of the way: `clear` must count the expired one.
    let store = RedbStore::builder()
        .path(dir.path().join("s.redb"))
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
    assert_eq!(store.len().unwrap(), 20);
    let mut ids = store.ids().unwrap();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    made.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(ids, made);
    assert!(store.size_on_disk().unwrap() > 0);

    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    assert_eq!(store.clear().await.unwrap(), 21);
    assert!(store.is_empty().unwrap());
    assert_eq!(store.len_on_disk().unwrap(), 0);
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    assert_eq!(store.get(&made[0], "n", &policy).await.unwrap(), None);
}

#[test]
fn open_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let first = RedbStore::open(dir.path().join("s.redb")).unwrap();
    match RedbStore::open(dir.path().join("s.redb")) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path().join("s.redb")),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    // The writer thread has closed the database when the drop returns.
    RedbStore::open(dir.path().join("s.redb")).expect("free again once the first is dropped");

    // Not a redb file, and a path under a plain file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a redb database, not empty either").unwrap();
    for path in [file.clone(), file.join("sessions.redb")] {
        match RedbStore::open(&path) {
            Err(error @ Error::Open { .. }) => {
                assert!(error.to_string().contains("a-file"), "{error}")
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }
    assert!(matches!(
        RedbStore::builder()
            .path(dir.path().join("s.redb"))
            .sweep_batch(0)
            .open(),
        Err(Error::Config(_))
    ));
}

/// `Debug` shows where and how, never what: no key, value or full id.
#[tokio::test]
async fn debug_never_shows_session_data_or_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("db")).unwrap();
    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let id = create(&store, &[("card-key", "card-4111111111111111")], &policy).await;
    let shown = format!("{store:?}");
    for secret in ["card-key", "4111111111111111", id.token()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
