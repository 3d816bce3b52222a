//! The Store trait alone: reads, writes, deletes, strict mode, expiry,
//! lifetimes, regeneration, limits and concurrency.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{create, exists, new_id, v, write, write_applied, write_many, LONG, ONE_DAY};
use crate::{Error, ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};

/// Reads on an id the store never saw answer "nothing".
pub async fn get_on_unknown_session_is_empty(store: Arc<dyn Store>) {
    let id = new_id();
    assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
    assert_eq!(
        store.get_many(&id, &["a", "b"], &LONG).await.unwrap(),
        vec![None, None]
    );
    assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
}

/// What `set` wrote, `get` reads.
pub async fn set_then_get_roundtrip(store: Arc<dyn Store>) {
    let id = new_id();
    assert_eq!(
        store
            .set(&id, "name", b"\"ada\"", WriteMode::Create, &LONG)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    assert_eq!(
        store.get(&id, "name", &LONG).await.unwrap(),
        Some(v("\"ada\""))
    );
    assert_eq!(store.get(&id, "other", &LONG).await.unwrap(), None);
}

/// A second `set` replaces the value.
pub async fn set_overwrites_value(store: Arc<dyn Store>) {
    let id = create(&*store, &[("k", "1")], &LONG).await;
    write_applied(&*store, &id, "k", b"2", &LONG).await;
    assert_eq!(store.get(&id, "k", &LONG).await.unwrap(), Some(v("2")));
}

/// `get_many` answers in the order asked, `None` for absent keys, repeats allowed.
pub async fn get_many_answers_in_order(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
    let got = store
        .get_many(&id, &["c", "missing", "a", "c"], &LONG)
        .await
        .unwrap();
    assert_eq!(got, vec![Some(v("3")), None, Some(v("1")), Some(v("3"))]);
    assert!(store.get_many(&id, &[], &LONG).await.unwrap().is_empty());
}

/// `get_all` returns every user key and nothing else (no metadata).
pub async fn get_all_returns_user_keys_only(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1"), ("b", "2")], &LONG).await;
    let all = store.get_all(&id, &LONG).await.unwrap();
    let expected: HashMap<String, Vec<u8>> =
        [("a".to_string(), v("1")), ("b".to_string(), v("2"))].into();
    assert_eq!(all, expected);
}

/// `set_many` sets every `Some` and deletes every `None`, leaving other keys alone.
pub async fn set_many_applies_all_and_none_deletes(store: Arc<dyn Store>) {
    let id = create(
        &*store,
        &[("keep", "k"), ("drop", "d"), ("change", "c")],
        &LONG,
    )
    .await;
    let changes = vec![
        ("drop".to_string(), None),
        ("change".to_string(), Some(v("C"))),
        ("new".to_string(), Some(v("n"))),
        ("never-there".to_string(), None),
    ];
    assert_eq!(
        write_many(&*store, &id, &changes, &LONG).await,
        WriteOutcome::Applied
    );
    let all = store.get_all(&id, &LONG).await.unwrap();
    let expected: HashMap<String, Vec<u8>> = [
        ("keep".to_string(), v("k")),
        ("change".to_string(), v("C")),
        ("new".to_string(), v("n")),
    ]
    .into();
    assert_eq!(all, expected);
}

/// Readers never see half of a `set_many`: two keys always written together
/// always read equal.
pub async fn set_many_is_atomic_for_readers(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "0"), ("b", "0")], &LONG).await;
    let writer = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            for i in 1..=200 {
                let n = v(&i.to_string());
                let changes = vec![
                    ("a".to_string(), Some(n.clone())),
                    ("b".to_string(), Some(n)),
                ];
                assert_eq!(
                    write_many(&*store, &id, &changes, &LONG).await,
                    WriteOutcome::Applied
                );
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 10 {
        let got = store.get_many(&id, &["a", "b"], &LONG).await.unwrap();
        assert_eq!(got[0], got[1], "get_many saw a half-applied set_many");
        let all = store.get_all(&id, &LONG).await.unwrap();
        assert_eq!(
            all.get("a"),
            all.get("b"),
            "get_all saw a half-applied set_many"
        );
        reads += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), Some(v("200")));
}

/// `get_many` answers every key from one state of the session: a write
/// between two of its keys (here while it copies a large value between
/// them) does not show in the one and not the other.
pub async fn get_many_reads_one_state_of_the_session(store: Arc<dyn Store>) {
    let big = vec![b'x'; 256 * 1024];
    let id = create(&*store, &[("a", "0")], &LONG).await;
    assert_eq!(
        store
            .set(&id, "big", &big, WriteMode::Existing, &LONG)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    let writer = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            for i in 1..=200 {
                let n = v(&i.to_string());
                assert_eq!(
                    store
                        .set(&id, "a", &n, WriteMode::Existing, &LONG)
                        .await
                        .unwrap(),
                    WriteOutcome::Applied
                );
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 10 {
        let got = store
            .get_many(&id, &["a", "big", "a"], &LONG)
            .await
            .unwrap();
        assert_eq!(got[1].as_deref(), Some(&big[..]));
        assert_eq!(got[0], got[2], "get_many mixed two states of the session");
        reads += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
}

/// A `Create` write to a live session updates it and keeps its other keys.
pub async fn create_write_on_live_session_updates_it(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1")], &LONG).await;
    let outcome = store
        .set(&id, "b", b"2", WriteMode::Create, &LONG)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(
        store.get_many(&id, &["a", "b"], &LONG).await.unwrap(),
        vec![Some(v("1")), Some(v("2"))]
    );
}

/// `del` removes one key and reports that the session exists.
pub async fn del_removes_one_key(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1"), ("b", "2")], &LONG).await;
    assert!(store.del(&id, "a", &LONG).await.unwrap());
    assert!(store.del(&id, "not-there", &LONG).await.unwrap());
    assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
    assert_eq!(store.get(&id, "b", &LONG).await.unwrap(), Some(v("2")));
}

/// `del_many` removes every named key at once.
pub async fn del_many_removes_keys(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
    assert!(store
        .del_many(&id, &["a", "c", "zzz"], &LONG)
        .await
        .unwrap());
    let all = store.get_all(&id, &LONG).await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), vec!["b"]);
}

/// `del_all` removes the session: data gone, `extend` finds nothing.
pub async fn del_all_removes_session(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1")], &LONG).await;
    let other = create(&*store, &[("a", "x")], &LONG).await;
    store.del_all(&id).await.unwrap();
    assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
    assert!(!exists(&*store, &id).await);
    // Destroying twice is fine, and other sessions are untouched.
    store.del_all(&id).await.unwrap();
    assert_eq!(store.get(&other, "a", &LONG).await.unwrap(), Some(v("x")));
}

/// `extend` answers whether the session exists.
pub async fn extend_reports_existence(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1")], &LONG).await;
    assert!(store.extend(&id, &LONG).await.unwrap());
    assert!(!store.extend(&new_id(), &LONG).await.unwrap());
    assert_eq!(
        store.get(&id, "a", &LONG).await.unwrap(),
        Some(v("1")),
        "extend must not touch data"
    );
}

/// Strict mode: an `Existing` write to an id never created does not create it.
pub async fn existing_write_to_unknown_id_creates_nothing(store: Arc<dyn Store>) {
    let id = new_id();
    assert_eq!(
        write(&*store, &id, "a", b"1", &LONG).await,
        WriteOutcome::NoSession
    );
    let changes = vec![("a".to_string(), Some(v("1"))), ("b".to_string(), None)];
    assert_eq!(
        write_many(&*store, &id, &changes, &LONG).await,
        WriteOutcome::NoSession
    );
    assert!(!exists(&*store, &id).await);
    assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
}

/// Strict mode: a destroyed id stays destroyed.
pub async fn existing_write_to_destroyed_id_creates_nothing(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1")], &LONG).await;
    store.del_all(&id).await.unwrap();
    assert_eq!(
        write(&*store, &id, "a", b"2", &LONG).await,
        WriteOutcome::NoSession
    );
    assert!(!exists(&*store, &id).await);
}

/// Strict mode: an expired id stays expired.
pub async fn existing_write_to_expired_id_creates_nothing(store: Arc<dyn Store>) {
    let short = ExpiryPolicy::idle(Duration::from_millis(300));
    let id = create(&*store, &[("a", "1")], &short).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        write(&*store, &id, "a", b"2", &LONG).await,
        WriteOutcome::NoSession
    );
    assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), None);
    assert!(!exists(&*store, &id).await);
}

/// Reads, deletes and `extend` of an unknown id leave it unknown.
pub async fn reads_deletes_and_extend_never_create(store: Arc<dyn Store>) {
    let id = new_id();
    store.get(&id, "a", &LONG).await.unwrap();
    store.get_many(&id, &["a"], &LONG).await.unwrap();
    store.get_all(&id, &LONG).await.unwrap();
    assert!(!store.del(&id, "a", &LONG).await.unwrap());
    assert!(!store.del_many(&id, &["a", "b"], &LONG).await.unwrap());
    assert!(!store.extend(&id, &LONG).await.unwrap());
    store.del_all(&id).await.unwrap();
    assert_eq!(
        write(&*store, &id, "a", b"1", &LONG).await,
        WriteOutcome::NoSession
    );
}

/// Every kind of operation slides the idle expiry: a session touched more often
/// than its idle timeout outlives that timeout several times over.
pub async fn idle_expiry_slides_with_activity(store: Arc<dyn Store>) {
    let policy = ExpiryPolicy::idle(Duration::from_secs(3));
    let id = create(&*store, &[("a", "1")], &policy).await;
    let started = Instant::now();
    let mut step = 0u32;
    while started.elapsed() < Duration::from_secs(7) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match step % 6 {
            0 => assert!(store.get(&id, "a", &policy).await.unwrap().is_some()),
            1 => assert!(store.extend(&id, &policy).await.unwrap()),
            2 => write_applied(&*store, &id, "b", b"2", &policy).await,
            3 => assert!(!store.get_all(&id, &policy).await.unwrap().is_empty()),
            4 => assert!(store.del(&id, "b", &policy).await.unwrap()),
            _ => assert!(store.get_many(&id, &["a"], &policy).await.unwrap()[0].is_some()),
        }
        step += 1;
    }
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), Some(v("1")));
}

/// A session left alone past its idle timeout is gone.
pub async fn idle_expiry_expires_quiet_sessions(store: Arc<dyn Store>) {
    let policy = ExpiryPolicy::idle(Duration::from_millis(400));
    let id = create(&*store, &[("a", "1")], &policy).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert!(store.get_all(&id, &policy).await.unwrap().is_empty());
    assert!(!store.extend(&id, &policy).await.unwrap());
}

/// Activity never extends the absolute lifetime.
pub async fn absolute_lifetime_is_not_extended(store: Arc<dyn Store>) {
    let lifetime = Duration::from_secs(2);
    let policy = ExpiryPolicy::idle(ONE_DAY).with_absolute(lifetime);
    let created = Instant::now();
    let id = create(&*store, &[("a", "1")], &policy).await;
    let first = store.get(&id, "a", &policy).await.unwrap();
    // Only meaningful if the machine was not stalled for the whole lifetime.
    if created.elapsed() < lifetime / 2 {
        assert_eq!(first, Some(v("1")), "a fresh session must be readable");
    }
    while created.elapsed() < lifetime + Duration::from_millis(1200) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = store.extend(&id, &policy).await.unwrap();
        let _ = write(&*store, &id, "b", b"2", &policy).await;
    }
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert!(!store.extend(&id, &policy).await.unwrap());
    assert_eq!(
        write(&*store, &id, "a", b"3", &policy).await,
        WriteOutcome::NoSession
    );
}

/// A session's key count and bytes are capped inside each write (run
/// with [`session_limits`](crate::testkit::session_limits): 4 keys, 64 bytes): a
/// write past a limit is a typed error and changes nothing, a write that
/// stays within (an overwrite, a delete with an add) applies, and of
/// concurrent writers adding keys exactly as many as fit succeed.
pub async fn session_limits_are_enforced_atomically(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1"), ("b", "2"), ("c", "3")], &LONG).await;
    let all = |store: Arc<dyn Store>, id: SessionId| async move {
        store.get_all(&id, &LONG).await.unwrap()
    };
    // A fourth key fits; a fifth does not, alone or in a batch.
    write_applied(&*store, &id, "d", b"4", &LONG).await;
    let err = store
        .set(&id, "e", b"5", WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyKeys { keys: 5, max: 4 }),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
    let batch = vec![
        ("a".to_string(), Some(v("9"))),
        ("f".to_string(), Some(v("6"))),
    ];
    let err = store
        .set_many(&id, &batch, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyKeys { .. }), "{err:?}");
    let expected: HashMap<String, Vec<u8>> = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]
        .into_iter()
        .map(|(k, val)| (k.to_string(), v(val)))
        .collect();
    assert_eq!(
        all(store.clone(), id.clone()).await,
        expected,
        "a refused write changes nothing"
    );
    // Overwriting, and deleting one key while adding another, stay within.
    write_applied(&*store, &id, "a", b"10", &LONG).await;
    let swap = vec![("d".to_string(), None), ("e".to_string(), Some(v("5")))];
    assert_eq!(
        write_many(&*store, &id, &swap, &LONG).await,
        WriteOutcome::Applied
    );
    // Bytes: 4 keys of 1 byte and values of 1 or 2 bytes so far (10);
    // a value that takes the session past 64 bytes is refused.
    let err = store
        .set(&id, "a", &[b'x'; 60], WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SessionTooLarge { max: 64, .. }),
        "{err:?}"
    );
    assert_eq!(store.get(&id, "a", &LONG).await.unwrap(), Some(v("10")));
    write_applied(&*store, &id, "a", &[b'x'; 50], &LONG).await;
    // 57 bytes now. What counts is what a write adds beside what it
    // replaces: an overwrite of the same size plus 9 more bytes elsewhere
    // (66) is refused; a value shrunk by 10 beside one grown by 9 (56)
    // applies; up to exactly 64 applies; a byte past it is refused; an
    // overwrite of the same size at the limit applies.
    let grows = vec![
        ("b".to_string(), Some(v("9"))),
        ("c".to_string(), Some(vec![b'x'; 10])),
    ];
    let err = store
        .set_many(&id, &grows, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionTooLarge { .. }), "{err:?}");
    assert_eq!(store.get(&id, "b", &LONG).await.unwrap(), Some(v("2")));
    let shrinks = vec![
        ("a".to_string(), Some(vec![b'x'; 40])),
        ("c".to_string(), Some(vec![b'x'; 10])),
    ];
    assert_eq!(
        write_many(&*store, &id, &shrinks, &LONG).await,
        WriteOutcome::Applied
    );
    write_applied(&*store, &id, "a", &[b'x'; 48], &LONG).await;
    let err = store
        .set(&id, "b", b"99", WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SessionTooLarge { bytes: 65, max: 64 }),
        "{err:?}"
    );
    write_applied(&*store, &id, "b", b"9", &LONG).await;
    // At both limits (4 keys, 64 bytes), a key with an empty value is still
    // a key: giving it its byte back applies, and so does deleting it
    // beside adding another.
    write_applied(&*store, &id, "e", b"", &LONG).await;
    write_applied(&*store, &id, "e", b"5", &LONG).await;
    write_applied(&*store, &id, "e", b"", &LONG).await;
    let replace = vec![("e".to_string(), None), ("f".to_string(), Some(v("6")))];
    assert_eq!(
        write_many(&*store, &id, &replace, &LONG).await,
        WriteOutcome::Applied
    );
    // A new session whose first write is too big is not created.
    let fresh = new_id();
    let err = store
        .set(&fresh, "k", &[b'x'; 100], WriteMode::Create, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionTooLarge { .. }), "{err:?}");
    assert!(
        !exists(&*store, &fresh).await,
        "a refused write must not create a session"
    );

    // Sixteen writers race to add a key each to a session with one key:
    // exactly three fit.
    let racing = create(&*store, &[("k0", "0")], &LONG).await;
    let writers: Vec<_> = (1..=16)
        .map(|i| {
            let (store, id) = (store.clone(), racing.clone());
            tokio::spawn(async move {
                store
                    .set(&id, &format!("k{i}"), b"v", WriteMode::Existing, &LONG)
                    .await
            })
        })
        .collect();
    let mut applied = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(WriteOutcome::Applied) => applied += 1,
            Err(Error::TooManyKeys { .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(applied, 3, "exactly as many writers as fit");
    assert_eq!(store.get_all(&racing, &LONG).await.unwrap().len(), 4);
}

/// A session given a short idle timeout of its own expires when quiet
/// for that long, while every operation names a long one; its neighbour
/// keeps the configured one.
pub async fn lifetime_of_one_session_shortens_its_idle_timeout(store: Arc<dyn Store>) {
    let short = create(&*store, &[("a", "1")], &LONG).await;
    let other = create(&*store, &[("a", "1")], &LONG).await;
    let ttl = store
        .set_lifetime(&short, Duration::from_millis(1500), &LONG)
        .await
        .unwrap()
        .expect("a live session takes a lifetime");
    assert!(
        ttl <= Duration::from_millis(1500) && ttl > Duration::ZERO,
        "{ttl:?}"
    );
    // Touched well within its own timeout by every kind of operation,
    // each passing the long policy, it stays.
    for step in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        match step % 3 {
            0 => assert!(store.get(&short, "a", &LONG).await.unwrap().is_some()),
            1 => write_applied(&*store, &short, "b", b"2", &LONG).await,
            _ => assert!(store.extend(&short, &LONG).await.unwrap()),
        }
    }
    // Quiet for longer than its own timeout: gone; the other stays.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(store.get(&short, "a", &LONG).await.unwrap(), None);
    assert_eq!(
        write(&*store, &short, "a", b"x", &LONG).await,
        WriteOutcome::NoSession
    );
    assert_eq!(store.get(&other, "a", &LONG).await.unwrap(), Some(v("1")));
}

/// "Remember me": a session given a long idle timeout of its own
/// outlives the configured one, which still ends its neighbour.
pub async fn lifetime_of_one_session_lengthens_its_idle_timeout(store: Arc<dyn Store>) {
    let policy = ExpiryPolicy::idle(Duration::from_millis(400));
    let remembered = create(&*store, &[("a", "1")], &policy).await;
    let other = create(&*store, &[("a", "1")], &policy).await;
    let ttl = store
        .set_lifetime(&remembered, ONE_DAY, &policy)
        .await
        .unwrap()
        .expect("a live session takes a lifetime");
    assert!(ttl > Duration::from_secs(3600), "{ttl:?}");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.get(&other, "a", &policy).await.unwrap(), None);
    assert_eq!(
        store.get(&remembered, "a", &policy).await.unwrap(),
        Some(v("1"))
    );
    // Writes and reads after it keep the long timeout.
    write_applied(&*store, &remembered, "b", b"2", &policy).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        store.get(&remembered, "b", &policy).await.unwrap(),
        Some(v("2"))
    );
}

/// The absolute lifetime still bounds a session's own idle timeout.
pub async fn lifetime_is_bounded_by_the_absolute_lifetime(store: Arc<dyn Store>) {
    let lifetime = Duration::from_secs(2);
    let policy = ExpiryPolicy::idle(Duration::from_millis(500)).with_absolute(lifetime);
    let created = Instant::now();
    let id = create(&*store, &[("a", "1")], &policy).await;
    let ttl = store.set_lifetime(&id, ONE_DAY, &policy).await.unwrap();
    if let Some(ttl) = ttl {
        assert!(ttl <= lifetime, "{ttl:?} is past the absolute lifetime");
    }
    tokio::time::sleep(lifetime + Duration::from_millis(1200) - created.elapsed().min(lifetime))
        .await;
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert!(!store.extend(&id, &policy).await.unwrap());
}

/// A session's own idle timeout moves with it to its new id.
pub async fn lifetime_moves_with_regenerate(store: Arc<dyn Store>) {
    let policy = ExpiryPolicy::idle(Duration::from_millis(400));
    let old = create(&*store, &[("a", "1")], &policy).await;
    assert!(store
        .set_lifetime(&old, ONE_DAY, &policy)
        .await
        .unwrap()
        .is_some());
    let new = new_id();
    assert!(store.regenerate(&old, &new, &policy).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.get(&new, "a", &policy).await.unwrap(), Some(v("1")));
    assert_eq!(store.get(&old, "a", &policy).await.unwrap(), None);
}

/// Without a live session, `set_lifetime` answers `None` and creates
/// nothing, also for a destroyed one.
pub async fn lifetime_of_unknown_session_creates_nothing(store: Arc<dyn Store>) {
    let unknown = new_id();
    assert_eq!(
        store.set_lifetime(&unknown, ONE_DAY, &LONG).await.unwrap(),
        None
    );
    assert!(!exists(&*store, &unknown).await);
    let destroyed = create(&*store, &[("a", "1")], &LONG).await;
    store.del_all(&destroyed).await.unwrap();
    assert_eq!(
        store
            .set_lifetime(&destroyed, ONE_DAY, &LONG)
            .await
            .unwrap(),
        None
    );
    assert!(!exists(&*store, &destroyed).await);
}

/// `regenerate` moves the data to the new id, kills the old one, and keeps the
/// creation time, so the absolute lifetime is not reset.
pub async fn regenerate_moves_data_and_keeps_lifetime(store: Arc<dyn Store>) {
    let lifetime = Duration::from_secs(2);
    let policy = ExpiryPolicy::idle(ONE_DAY).with_absolute(lifetime);
    let created = Instant::now();
    let old = create(&*store, &[("a", "1"), ("b", "2")], &policy).await;
    let new = new_id();
    assert!(store.regenerate(&old, &new, &policy).await.unwrap());
    let all = store.get_all(&new, &policy).await.unwrap();
    if created.elapsed() < lifetime / 2 {
        let expected: HashMap<String, Vec<u8>> =
            [("a".to_string(), v("1")), ("b".to_string(), v("2"))].into();
        assert_eq!(all, expected, "regenerated session must keep its data");
    }
    assert!(store.get_all(&old, &policy).await.unwrap().is_empty());
    assert!(!exists(&*store, &old).await);
    assert_eq!(
        write(&*store, &old, "a", b"x", &policy).await,
        WriteOutcome::NoSession
    );
    // Keep the new id busy, so only the absolute lifetime can end it.
    while created.elapsed() < lifetime + Duration::from_millis(1200) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = store.extend(&new, &policy).await.unwrap();
    }
    assert!(
        !store.extend(&new, &policy).await.unwrap(),
        "regenerate must not reset the absolute lifetime"
    );
}

/// `regenerate` of an id the store does not hold changes nothing.
pub async fn regenerate_of_unknown_id_is_false(store: Arc<dyn Store>) {
    let (from, to) = (new_id(), new_id());
    assert!(!store.regenerate(&from, &to, &LONG).await.unwrap());
    assert!(!exists(&*store, &to).await);
    assert!(!exists(&*store, &from).await);
}

/// Writes racing a destroy never bring the session back: a write that
/// upserts would, and strict writes do not.
pub async fn destroy_racing_writes_never_revives(store: Arc<dyn Store>) {
    for _round in 0..5 {
        let id = create(&*store, &[("a", "1")], &LONG).await;
        let mut writers = Vec::new();
        for t in 0..8 {
            let (store, id) = (store.clone(), id.clone());
            writers.push(tokio::spawn(async move {
                for i in 0..20 {
                    let key = format!("k{t}-{i}");
                    let _ = write(&*store, &id, &key, b"x", &LONG).await;
                }
            }));
        }
        tokio::task::yield_now().await;
        store.del_all(&id).await.unwrap();
        for writer in writers {
            writer.await.unwrap();
        }
        assert!(
            !exists(&*store, &id).await,
            "a write after destroy revived the session"
        );
        assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
    }
}

/// 8 tasks × 50 keys written concurrently to one session: all 400 are there.
pub async fn concurrent_writers_to_different_keys_lose_nothing(store: Arc<dyn Store>) {
    let id = create(&*store, &[("seed", "0")], &LONG).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                write_applied(
                    &*store,
                    &id,
                    &format!("t{t}:k{i}"),
                    format!("{t}-{i}").as_bytes(),
                    &LONG,
                )
                .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.get_all(&id, &LONG).await.unwrap();
    assert_eq!(
        all.len(),
        401,
        "lost {} of 400 concurrent writes",
        401 - all.len()
    );
    for t in 0..8 {
        for i in 0..50 {
            assert_eq!(
                all.get(&format!("t{t}:k{i}")),
                Some(&v(&format!("{t}-{i}")))
            );
        }
    }
}

/// Concurrent writers to one key: the key ends holding one of the values written.
pub async fn concurrent_writers_to_one_key_end_with_a_written_value(store: Arc<dyn Store>) {
    let id = create(&*store, &[("k", "initial")], &LONG).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let _ = write(&*store, &id, "k", format!("{t}-{i}").as_bytes(), &LONG).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let written: HashSet<Vec<u8>> = (0..8)
        .flat_map(|t| (0..25).map(move |i| v(&format!("{t}-{i}"))))
        .collect();
    let last = store
        .get(&id, "k", &LONG)
        .await
        .unwrap()
        .expect("key must exist");
    assert!(
        written.contains(&last),
        "final value {last:?} was never written"
    );
}

/// Keys with unicode, separators, spaces and brackets are plain keys.
pub async fn awkward_keys_roundtrip(store: Arc<dyn Store>) {
    let keys = [
        "ünïcødé ключ 鍵 🍪",
        "a:b:c",
        ":",
        "with space",
        " leading and trailing ",
        "{braces}",
        "__proto__",
        "*",
        "line\nbreak",
        "quote\"'",
    ];
    let id = new_id();
    let changes: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), Some(v(&i.to_string()))))
        .collect();
    assert_eq!(
        store
            .set_many(&id, &changes, WriteMode::Create, &LONG)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(&id, key, &LONG).await.unwrap(),
            Some(v(&i.to_string())),
            "key {key:?}"
        );
    }
    let all = store.get_all(&id, &LONG).await.unwrap();
    assert_eq!(all.len(), keys.len());
    assert!(store.del(&id, "a:b:c", &LONG).await.unwrap());
    assert_eq!(store.get(&id, "a:b:c", &LONG).await.unwrap(), None);
    assert_eq!(store.get(&id, ":", &LONG).await.unwrap(), Some(v("2")));
}

/// Empty values are values (not deletions), and 1 MiB values survive intact.
pub async fn empty_and_large_values_roundtrip(store: Arc<dyn Store>) {
    let large: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let id = new_id();
    assert_eq!(
        store
            .set(&id, "empty", b"", WriteMode::Create, &LONG)
            .await
            .unwrap(),
        WriteOutcome::Applied
    );
    write_applied(&*store, &id, "large", &large, &LONG).await;
    assert_eq!(
        store.get(&id, "empty", &LONG).await.unwrap(),
        Some(Vec::new())
    );
    assert_eq!(
        store.get(&id, "large", &LONG).await.unwrap().as_deref(),
        Some(&large[..])
    );
    let binary = vec![0u8, 255, 0, 13, 10];
    let _ = write(&*store, &id, "binary", &binary, &LONG).await;
    assert_eq!(store.get(&id, "binary", &LONG).await.unwrap(), Some(binary));
}

/// Two sessions never see each other's keys.
pub async fn sessions_are_isolated(store: Arc<dyn Store>) {
    let a = create(&*store, &[("k", "a")], &LONG).await;
    let b = create(&*store, &[("k", "b")], &LONG).await;
    assert_eq!(store.get(&a, "k", &LONG).await.unwrap(), Some(v("a")));
    assert_eq!(store.get(&b, "k", &LONG).await.unwrap(), Some(v("b")));
    assert!(store.del(&a, "k", &LONG).await.unwrap());
    assert_eq!(store.get(&b, "k", &LONG).await.unwrap(), Some(v("b")));
}

/// Keys and values over the store's limits, and empty keys, are typed errors
/// and change nothing (run with [`small_limits`](crate::testkit::small_limits)).
pub async fn size_limits_are_enforced(store: Arc<dyn Store>) {
    let id = create(&*store, &[("k", "kept")], &LONG).await;
    let long_key = "k".repeat(17);
    let err = store
        .set(&id, &long_key, b"1", WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyTooLarge { len: 17, max: 16 }),
        "{err:?}"
    );
    let err = store
        .set(&id, "k", &[0; 1025], WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ValueTooLarge {
                len: 1025,
                max: 1024
            }
        ),
        "{err:?}"
    );
    let err = store
        .set(&id, "", b"1", WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EmptyKey), "{err:?}");
    // One bad change refuses the whole multi-key write.
    let changes = vec![
        ("ok".to_string(), Some(v("1"))),
        ("k".to_string(), Some(vec![0; 1025])),
    ];
    let err = store
        .set_many(&id, &changes, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    let fresh = new_id();
    let err = store
        .set(&fresh, &long_key, b"1", WriteMode::Create, &LONG)
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    assert!(
        !exists(&*store, &fresh).await,
        "a refused write must not create a session"
    );
    // Reads and deletes check keys too.
    assert!(store
        .get(&id, &long_key, &LONG)
        .await
        .unwrap_err()
        .is_invalid_input());
    assert!(store
        .get_many(&id, &["k", ""], &LONG)
        .await
        .unwrap_err()
        .is_invalid_input());
    assert!(store
        .del_many(&id, &[long_key.as_str()], &LONG)
        .await
        .unwrap_err()
        .is_invalid_input());
    // Exactly at the limits is fine, and nothing above was lost.
    let at_limit = "k".repeat(16);
    let _ = write(&*store, &id, &at_limit, &[7; 1024], &LONG).await;
    assert_eq!(
        store.get(&id, &at_limit, &LONG).await.unwrap(),
        Some(vec![7; 1024])
    );
    assert_eq!(store.get_all(&id, &LONG).await.unwrap().len(), 2);
    assert_eq!(store.get(&id, "k", &LONG).await.unwrap(), Some(v("kept")));
}
