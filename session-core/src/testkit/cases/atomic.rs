//! Atomic operations on one key: take, compare-and-set and increment, and
//! what `GenericSession` builds on them (update, flash, CSRF) (issue 13).
//! Each store passes these unchanged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::browser::{sent_cookie, Browser, KEY_NEW};
use super::{create, exists, new_id, v, write_applied, LONG};
use crate::{Cas, Error, ExpiryPolicy, SessionConfig, SessionId, Store, Swap, WriteMode};

/// An `Existing` increment of `key` in session `id`.
async fn incr(
    store: &dyn Store,
    id: &SessionId,
    key: &str,
    delta: i64,
) -> crate::Result<Option<i64>> {
    store
        .increment(id, key, delta, WriteMode::Existing, &LONG)
        .await
}

/// A live session's value of `key`.
async fn value(store: &dyn Store, id: &SessionId, key: &str) -> Option<Vec<u8>> {
    store.get(id, key, &LONG).await.unwrap()
}

/// 8 tasks × 50 increments of one key end at exactly 400: no increment is
/// lost, and each task saw its own results rise.
pub async fn increments_from_eight_tasks_are_exact(store: Arc<dyn Store>) {
    let id = create(&*store, &[("other", "1")], &LONG).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..50 {
                    let n = store
                        .increment(&id, "n", 1, WriteMode::Existing, &LONG)
                        .await
                        .unwrap()
                        .expect("the session exists");
                    seen.push(n);
                }
                seen
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        let seen = task.await.unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        for n in seen {
            assert!(all.insert(n), "two increments both answered {n}");
        }
    }
    assert_eq!(all, (1..=400).collect::<HashSet<i64>>());
    assert_eq!(value(&*store, &id, "n").await, Some(v("400")));
    assert_eq!(
        store
            .increment(&id, "n", -401, WriteMode::Existing, &LONG)
            .await
            .unwrap(),
        Some(-1)
    );
    assert_eq!(value(&*store, &id, "other").await, Some(v("1")));
}

/// 8 requests of one session racing `update` on one key (a read, a change
/// and a compare-and-set, retried) lose none of their updates, in ten
/// rounds. Each request updates once, as a handler would: a task that
/// loops updates can starve the others for longer than any bound.
pub async fn updates_racing_on_one_key_lose_none(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    browser.start("seen", &Vec::<u32>::new()).await;
    for round in 0..10u32 {
        let tasks: Vec<_> = (0..8u32)
            .map(|t| {
                let session = browser.request();
                tokio::spawn(async move {
                    let mine = round * 100 + t;
                    let written = session
                        .update("seen", |seen: Option<Vec<u32>>| {
                            let mut seen = seen.unwrap_or_default();
                            seen.push(mine);
                            Some(seen)
                        })
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(written.contains(&mine));
                    sent_cookie(&session).is_none()
                })
            })
            .collect();
        for task in tasks {
            assert!(
                task.await.unwrap(),
                "updates of a live session send no cookie"
            );
        }
    }
    let check = browser.request();
    let seen: Vec<u32> = check.get("seen").await.unwrap().unwrap();
    let unique: HashSet<u32> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 80, "lost {} of 80 updates", 80 - seen.len());
    assert_eq!(unique.len(), 80);
}

/// Of 16 concurrent takes of one value, exactly one gets it, and the key is
/// gone afterwards; other keys stay. Ten rounds, to give a race its chance.
pub async fn concurrent_takes_give_the_value_once(store: Arc<dyn Store>) {
    let id = create(&*store, &[("kept", "1")], &LONG).await;
    for round in 0..10 {
        let token = format!("\"token-{round}\"");
        write_applied(&*store, &id, "once", token.as_bytes(), &LONG).await;
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.take(&id, "once", &LONG).await.unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for task in tasks {
            got.extend(task.await.unwrap());
        }
        assert_eq!(
            got,
            vec![v(&token)],
            "round {round}: exactly one take gets it"
        );
        assert_eq!(value(&*store, &id, "once").await, None);
    }
    assert_eq!(store.take(&id, "once", &LONG).await.unwrap(), None);
    assert_eq!(value(&*store, &id, "kept").await, Some(v("1")));
    assert!(store.get_all(&id, &LONG).await.unwrap().len() == 1);
}

/// Compare-and-set with every combination of absent and present expected
/// and new values, on a live session, on no session in either mode, and
/// racing from 8 tasks (exactly one wins, the others see its value).
pub async fn compare_and_set_with_absent_values(store: Arc<dyn Store>) {
    let id = create(&*store, &[("other", "1")], &LONG).await;
    let cas = |expected: Option<&'static str>, new: Option<&'static str>| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            store
                .compare_and_set(
                    &id,
                    "k",
                    expected.map(str::as_bytes),
                    new.map(str::as_bytes),
                    WriteMode::Existing,
                    &LONG,
                )
                .await
                .unwrap()
        }
    };
    // Absent: only an absent expectation matches.
    assert_eq!(cas(Some("a"), Some("b")).await, Swap::Mismatch(None));
    assert_eq!(cas(Some("a"), None).await, Swap::Mismatch(None));
    assert_eq!(cas(None, None).await, Swap::Applied);
    assert_eq!(value(&*store, &id, "k").await, None);
    assert_eq!(cas(None, Some("a")).await, Swap::Applied);
    assert_eq!(value(&*store, &id, "k").await, Some(v("a")));
    // Present: only the same bytes match.
    assert_eq!(cas(None, Some("b")).await, Swap::Mismatch(Some(v("a"))));
    assert_eq!(cas(None, None).await, Swap::Mismatch(Some(v("a"))));
    assert_eq!(
        cas(Some("b"), Some("c")).await,
        Swap::Mismatch(Some(v("a")))
    );
    assert_eq!(
        cas(Some("a "), Some("c")).await,
        Swap::Mismatch(Some(v("a")))
    );
    assert_eq!(value(&*store, &id, "k").await, Some(v("a")));
    assert_eq!(cas(Some("a"), Some("b")).await, Swap::Applied);
    assert_eq!(cas(Some("b"), Some("b")).await, Swap::Applied);
    assert_eq!(value(&*store, &id, "k").await, Some(v("b")));
    // To absent: a delete.
    assert_eq!(cas(Some("b"), None).await, Swap::Applied);
    assert_eq!(value(&*store, &id, "k").await, None);
    assert_eq!(value(&*store, &id, "other").await, Some(v("1")));

    // No session, `Existing`: nothing, and nothing created.
    let unknown = new_id();
    let existing = store
        .compare_and_set(&unknown, "k", None, Some(b"a"), WriteMode::Existing, &LONG)
        .await
        .unwrap();
    assert_eq!(existing, Swap::NoSession);
    assert!(!exists(&*store, &unknown).await);
    // No session, `Create`: an empty session, created only to set a key
    // expected absent.
    let fresh = new_id();
    let create_cas = |expected: Option<&'static [u8]>, new: Option<&'static [u8]>| {
        let (store, fresh) = (store.clone(), fresh.clone());
        async move {
            store
                .compare_and_set(&fresh, "k", expected, new, WriteMode::Create, &LONG)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        create_cas(Some(b"a"), Some(b"b")).await,
        Swap::Mismatch(None)
    );
    assert!(!exists(&*store, &fresh).await, "a mismatch creates nothing");
    assert_eq!(create_cas(None, None).await, Swap::Applied);
    assert!(
        !exists(&*store, &fresh).await,
        "nothing to write, nothing created"
    );
    assert_eq!(create_cas(None, Some(b"a")).await, Swap::Applied);
    assert_eq!(value(&*store, &fresh, "k").await, Some(v("a")));

    // Racing: of 8 tasks setting the absent key, exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mine = format!("{t}");
                let swap = store
                    .compare_and_set(
                        &id,
                        "race",
                        None,
                        Some(mine.as_bytes()),
                        WriteMode::Existing,
                        &LONG,
                    )
                    .await
                    .unwrap();
                (mine, swap)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (mine, Swap::Applied) => winners.push(v(&mine)),
            (_, Swap::Mismatch(Some(theirs))) => seen.push(theirs),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one compare-and-set wins");
    assert!(seen.iter().all(|theirs| *theirs == winners[0]));
    assert_eq!(value(&*store, &id, "race").await, Some(winners[0].clone()));
}

/// Incrementing a value that is not an integer fails with a typed error and
/// changes nothing; absent keys count as 0; integers as JSON writes them
/// (and only those) count.
pub async fn non_integer_increment_fails_and_changes_nothing(store: Arc<dyn Store>) {
    let id = create(&*store, &[("s", "\"x\"")], &LONG).await;
    for junk in [
        "\"x\"", "1.5", " 1", "1 ", "+1", "01", "-0", "", "1e3", "\"1\"", "x1",
    ] {
        write_applied(&*store, &id, "s", junk.as_bytes(), &LONG).await;
        let err = incr(&*store, &id, "s", 1).await.unwrap_err();
        assert!(matches!(err, Error::NotAnInteger), "{junk:?}: {err:?}");
        assert!(err.is_invalid_input());
        assert_eq!(
            value(&*store, &id, "s").await,
            Some(v(junk)),
            "{junk:?} unchanged"
        );
    }
    assert_eq!(incr(&*store, &id, "n", 5).await.unwrap(), Some(5));
    assert_eq!(incr(&*store, &id, "n", -12).await.unwrap(), Some(-7));
    assert_eq!(incr(&*store, &id, "n", 0).await.unwrap(), Some(-7));
    assert_eq!(value(&*store, &id, "n").await, Some(v("-7")));
    write_applied(&*store, &id, "j", b"41", &LONG).await;
    assert_eq!(incr(&*store, &id, "j", 1).await.unwrap(), Some(42));
    assert_eq!(store.get_all(&id, &LONG).await.unwrap().len(), 3);
}

/// An increment past either end of `i64` is a typed error and changes
/// nothing; the ends themselves are reachable.
pub async fn increment_overflow_is_an_error(store: Arc<dyn Store>) {
    let id = create(&*store, &[], &LONG).await;
    assert_eq!(
        incr(&*store, &id, "n", i64::MAX).await.unwrap(),
        Some(i64::MAX)
    );
    let err = incr(&*store, &id, "n", 1).await.unwrap_err();
    assert!(matches!(err, Error::IntegerOverflow), "{err:?}");
    assert!(err.is_invalid_input());
    assert_eq!(
        value(&*store, &id, "n").await,
        Some(v(&i64::MAX.to_string()))
    );
    assert_eq!(incr(&*store, &id, "n", i64::MIN).await.unwrap(), Some(-1));
    assert_eq!(
        incr(&*store, &id, "n", i64::MIN + 1).await.unwrap(),
        Some(i64::MIN)
    );
    let err = incr(&*store, &id, "n", -1).await.unwrap_err();
    assert!(matches!(err, Error::IntegerOverflow), "{err:?}");
    assert_eq!(
        value(&*store, &id, "n").await,
        Some(v(&i64::MIN.to_string()))
    );
    assert_eq!(incr(&*store, &id, "n", i64::MAX).await.unwrap(), Some(-1));
}

/// Strict mode: on an unknown, a destroyed or an expired id, take answers
/// nothing, and `Existing` compare-and-sets and increments report no
/// session; none of them creates one.
pub async fn atomic_operations_are_strict(store: Arc<dyn Store>) {
    let short = ExpiryPolicy::idle(Duration::from_millis(300));
    let destroyed = create(&*store, &[("k", "1")], &LONG).await;
    store.del_all(&destroyed).await.unwrap();
    let expired = create(&*store, &[("k", "1")], &short).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for id in [new_id(), destroyed, expired] {
        assert_eq!(store.take(&id, "k", &LONG).await.unwrap(), None);
        let swap = store
            .compare_and_set(&id, "k", None, Some(b"2"), WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(swap, Swap::NoSession);
        let swap = store
            .compare_and_set(&id, "k", Some(b"1"), Some(b"2"), WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(swap, Swap::NoSession);
        let counted = store
            .increment(&id, "k", 1, WriteMode::Existing, &LONG)
            .await
            .unwrap();
        assert_eq!(counted, None);
        assert!(
            !exists(&*store, &id).await,
            "nothing may create the session"
        );
        assert!(store.get_all(&id, &LONG).await.unwrap().is_empty());
    }
    // `Create` on a fresh id creates it, as a `set` would.
    let fresh = new_id();
    let counted = store
        .increment(&fresh, "n", 3, WriteMode::Create, &LONG)
        .await
        .unwrap();
    assert_eq!(counted, Some(3));
    assert_eq!(value(&*store, &fresh, "n").await, Some(v("3")));
}

/// Each new operation slides the idle expiry on its own: four sessions,
/// each touched only by one kind of operation, more often than its idle
/// timeout, outlive that timeout more than twice over; left alone, a
/// session expires.
pub async fn atomic_operations_slide_expiry(store: Arc<dyn Store>) {
    let policy = ExpiryPolicy::idle(Duration::from_millis(1500));
    let kinds: Vec<_> = (0..4)
        .map(|kind| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = create(&*store, &[("a", "1")], &policy).await;
                let started = Instant::now();
                while started.elapsed() < Duration::from_millis(3500) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let alive = match kind {
                        0 => store
                            .increment(&id, "n", 1, WriteMode::Existing, &policy)
                            .await
                            .unwrap()
                            .is_some(),
                        // A take that finds nothing still touches the session.
                        1 => {
                            let taken = store.take(&id, "absent", &policy).await.unwrap();
                            assert_eq!(taken, None);
                            true
                        }
                        // A compare-and-set that does not apply is a read,
                        // and slides too.
                        2 => matches!(
                            store
                                .compare_and_set(
                                    &id,
                                    "a",
                                    Some(b"x"),
                                    Some(b"y"),
                                    WriteMode::Existing,
                                    &policy
                                )
                                .await
                                .unwrap(),
                            Swap::Mismatch(Some(_))
                        ),
                        _ => {
                            let swap = store
                                .compare_and_set(
                                    &id,
                                    "a",
                                    Some(b"1"),
                                    Some(b"1"),
                                    WriteMode::Existing,
                                    &policy,
                                )
                                .await
                                .unwrap();
                            swap == Swap::Applied
                        }
                    };
                    assert!(alive, "operation {kind}: the session must still be alive");
                }
                (kind, id)
            })
        })
        .collect();
    for task in kinds {
        let (kind, id) = task.await.unwrap();
        let read = store.get(&id, "a", &LONG).await.unwrap();
        assert_eq!(
            read,
            Some(v("1")),
            "operation {kind} did not slide the expiry"
        );
    }
    let quiet = ExpiryPolicy::idle(Duration::from_millis(400));
    let other = create(&*store, &[("a", "1")], &quiet).await;
    store
        .increment(&other, "n", 1, WriteMode::Existing, &quiet)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(!exists(&*store, &other).await, "left alone, it expires");
}

/// The new operations count in the session's metadata like the others: a
/// take, an increment and an applied compare-and-set are writes, one that
/// did not apply is a read.
pub async fn atomic_operations_are_counted(store: Arc<dyn Store>) {
    let id = create(&*store, &[("a", "1")], &LONG).await;
    store
        .increment(&id, "n", 1, WriteMode::Existing, &LONG)
        .await
        .unwrap();
    store.take(&id, "a", &LONG).await.unwrap();
    let applied = store
        .compare_and_set(&id, "c", None, Some(b"1"), WriteMode::Existing, &LONG)
        .await
        .unwrap();
    assert_eq!(applied, Swap::Applied);
    let mismatch = store
        .compare_and_set(&id, "c", None, Some(b"2"), WriteMode::Existing, &LONG)
        .await
        .unwrap();
    assert_eq!(mismatch, Swap::Mismatch(Some(v("1"))));
    let info = store.info(&id).await.unwrap().unwrap();
    assert_eq!((info.reads, info.writes), (1, 4), "{info:?}");
}

/// The new writes are held to the store's limits like a `set` (4 keys and
/// 64 bytes a session here): a refused one changes nothing.
pub async fn atomic_operations_respect_limits(store: Arc<dyn Store>) {
    let id = create(
        &*store,
        &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")],
        &LONG,
    )
    .await;
    let all = store.get_all(&id, &LONG).await.unwrap();
    let err = store
        .increment(&id, "e", 1, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyKeys { keys: 5, max: 4 }),
        "{err:?}"
    );
    let err = store
        .compare_and_set(&id, "e", None, Some(b"5"), WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManyKeys { .. }), "{err:?}");
    // Existing keys can still count, swap and be taken.
    assert_eq!(
        store
            .increment(&id, "a", 9, WriteMode::Existing, &LONG)
            .await
            .unwrap(),
        Some(10)
    );
    let err = store
        .compare_and_set(
            &id,
            "b",
            Some(b"2"),
            Some(&[b'x'; 60]),
            WriteMode::Existing,
            &LONG,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionTooLarge { .. }), "{err:?}");
    let mut expected = all.clone();
    expected.insert("a".into(), v("10"));
    assert_eq!(
        store.get_all(&id, &LONG).await.unwrap(),
        expected,
        "refusals changed nothing"
    );
    // 9 bytes of keys and values, then 55 more: 64, the limit; one more
    // digit is not within.
    let swap = store
        .compare_and_set(
            &id,
            "b",
            Some(b"2"),
            Some(&[b'7'; 56]),
            WriteMode::Existing,
            &LONG,
        )
        .await
        .unwrap();
    assert_eq!(swap, Swap::Applied);
    let err = store
        .increment(&id, "a", 90, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SessionTooLarge { .. }), "{err:?}");
    assert_eq!(value(&*store, &id, "a").await, Some(v("10")));
    assert_eq!(
        store.take(&id, "b", &LONG).await.unwrap(),
        Some(vec![b'7'; 56])
    );
    assert_eq!(
        store
            .increment(&id, "e", 1, WriteMode::Existing, &LONG)
            .await
            .unwrap(),
        Some(1)
    );
    // Keys are checked first, on every operation.
    let err = store.take(&id, "", &LONG).await.unwrap_err();
    assert!(matches!(err, Error::EmptyKey), "{err:?}");
    let long = "k".repeat(300);
    let err = store
        .increment(&id, &long, 1, WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyTooLarge { .. }), "{err:?}");
    let err = store
        .compare_and_set(&id, &long, None, Some(b"1"), WriteMode::Existing, &LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyTooLarge { .. }), "{err:?}");
}

/// An increment whose sum is longer than the largest value accepted (2
/// bytes here) is refused like a `set`, and changes nothing; nor does a
/// compare-and-set of a value too large.
pub async fn an_increment_past_the_value_limit_is_refused(store: Arc<dyn Store>) {
    let id = create(&*store, &[("n", "98")], &LONG).await;
    assert_eq!(incr(&*store, &id, "n", 1).await.unwrap(), Some(99));
    let err = incr(&*store, &id, "n", 1).await.unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { len: 3, max: 2 }),
        "{err:?}"
    );
    let err = incr(&*store, &id, "m", 100).await.unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    let err = store
        .compare_and_set(
            &id,
            "n",
            Some(b"99"),
            Some(b"100"),
            WriteMode::Existing,
            &LONG,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    assert_eq!(value(&*store, &id, "n").await, Some(v("99")));
    assert_eq!(value(&*store, &id, "m").await, None);
    assert_eq!(store.get_all(&id, &LONG).await.unwrap().len(), 1);
}

/// Through `GenericSession`: `incr` creates the session and its cookie;
/// typed compare-and-set; a flash message is taken once; the CSRF token is
/// made once, even by two first requests racing, verified, and rotated by
/// `regenerate`.
pub async fn session_incr_flash_and_csrf(store: Arc<dyn Store>) {
    let mut browser = Browser::with_key(&store);
    let first = browser.request();
    assert_eq!(first.take::<u32>("n").await.unwrap(), None);
    assert_eq!(first.id(), None, "a take creates nothing");
    assert_eq!(first.incr("n", 2).await.unwrap(), 2);
    assert!(
        browser.respond(&first),
        "the first increment creates the session"
    );

    let second = browser.request();
    assert_eq!(second.incr("n", 1).await.unwrap(), 3);
    assert_eq!(second.get::<i64>("n").await.unwrap(), Some(3));
    assert_eq!(
        second
            .compare_and_set("n", Some(&2i64), Some(&5))
            .await
            .unwrap(),
        Cas::Mismatch(Some(3))
    );
    assert!(second
        .compare_and_set("n", Some(&3i64), Some(&5))
        .await
        .unwrap()
        .is_applied());
    assert_eq!(
        second
            .update("n", |n: Option<i64>| n.map(|n| n * 2))
            .await
            .unwrap(),
        Some(10)
    );
    assert_eq!(second.take::<i64>("n").await.unwrap(), Some(10));
    assert_eq!(second.take::<i64>("n").await.unwrap(), None);
    second.flash("notice", "saved").await.unwrap();
    assert!(
        !browser.respond(&second),
        "a live session needs no new cookie"
    );

    let (a, b) = (browser.request(), browser.request());
    let (one, two) = tokio::join!(
        a.take_flash::<String>("notice"),
        b.take_flash::<String>("notice")
    );
    let mut got: Vec<_> = [one.unwrap(), two.unwrap()].into_iter().flatten().collect();
    assert_eq!(got.pop().as_deref(), Some("saved"));
    assert!(got.is_empty(), "a flash message is taken once");

    // CSRF: two first requests of one session agree on one token.
    let (c, d) = (browser.request(), browser.request());
    let (t1, t2) = tokio::join!(c.csrf_token(), d.csrf_token());
    let token = t1.unwrap();
    assert_eq!(
        token,
        t2.unwrap(),
        "racing first requests agree on one token"
    );
    assert_eq!(token.len(), 43);
    let e = browser.request();
    assert_eq!(e.csrf_token().await.unwrap(), token, "the token is stable");
    assert!(e.verify_csrf(&token).await.unwrap());
    let mut forged = token.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    assert!(!e
        .verify_csrf(std::str::from_utf8(&forged).unwrap())
        .await
        .unwrap());
    assert!(!e.verify_csrf("").await.unwrap());
    assert!(!e.verify_csrf(&token[..42]).await.unwrap());

    let f = browser.request();
    f.regenerate().await.unwrap();
    assert!(browser.respond(&f));
    let g = browser.request();
    assert!(
        !g.verify_csrf(&token).await.unwrap(),
        "regenerate rotates the token"
    );
    let rotated = g.csrf_token().await.unwrap();
    assert_ne!(rotated, token);
    assert!(g.verify_csrf(&rotated).await.unwrap());

    // Without a session, verifying creates nothing.
    let anonymous = Browser::with_key(&store).request();
    assert!(!anonymous.verify_csrf(&token).await.unwrap());
    assert_eq!(anonymous.id(), None);
    // A session of its own gets a token of its own, which is not this one.
    let theirs = anonymous.csrf_token().await.unwrap();
    assert_ne!(theirs, rotated);
    assert!(!anonymous.verify_csrf(&rotated).await.unwrap());
    assert!(!g.verify_csrf(&theirs).await.unwrap());
}

/// `update` gives up with a typed error when another writer changes its
/// key before every one of its attempts, and writes nothing then.
pub async fn session_update_gives_up_with_a_typed_error(store: Arc<dyn Store>) {
    let config = Arc::new(
        SessionConfig::builder()
            .key(KEY_NEW.to_vec())
            .secure(false)
            .max_update_attempts(3)
            .build()
            .unwrap(),
    );
    let mut browser = Browser::new(&store, &config);
    let id = browser.start("n", &0).await.id().unwrap();
    let session = browser.request();
    let mut calls = 0;
    let runtime = tokio::runtime::Handle::current();
    let err = session
        .update("n", |n: Option<i64>| {
            calls += 1;
            // Another request's increment lands between this read and its
            // compare-and-set.
            let interloper = || store.increment(&id, "n", 1, WriteMode::Existing, &LONG);
            tokio::task::block_in_place(|| runtime.block_on(interloper())).unwrap();
            Some(n.unwrap_or(0) + 100)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UpdateConflict { attempts: 3 }),
        "{err:?}"
    );
    assert_eq!(err.status(), http::StatusCode::CONFLICT);
    assert_eq!(calls, 3);
    assert_eq!(
        session.get::<i64>("n").await.unwrap(),
        Some(3),
        "only the interloper's writes"
    );
}
