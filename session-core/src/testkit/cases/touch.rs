//! Touch granularity: reads that would slide the idle deadline by less than
//! [`ExpiryPolicy::touch_granularity`] leave it where it is, while the idle
//! timeout still holds within that granularity, the absolute lifetime stays
//! exact and every read is still counted.
//!
//! Timing: each case asserts a timing bound only when the machine kept the
//! pace the bound needs, so a stalled test machine cannot fail it, and a
//! store that ignores the granularity (or slides past it) still does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{create, new_id, v, write_applied};
use crate::{ExpiryPolicy, Store};

/// Slack for the stores' millisecond clocks and rounding.
const SLACK: Duration = Duration::from_millis(30);

/// The session's time to live, as its metadata reports it (a query that
/// slides nothing), and the instant just before the query.
async fn ttl(store: &dyn Store, id: &crate::SessionId) -> (Duration, Instant) {
    let asked = Instant::now();
    let info = store.info(id).await.unwrap().expect("the session is live");
    (info.ttl, asked)
}

/// Reads inside the granularity leave the deadline where the last refresh
/// put it; the first read past it slides the deadline again.
pub async fn reads_within_the_touch_granularity_leave_the_deadline(store: Arc<dyn Store>) {
    let idle = Duration::from_secs(6);
    let granularity = Duration::from_millis(1500);
    let policy = ExpiryPolicy::idle(idle).with_touch_after(granularity);
    assert_eq!(policy.touch_granularity(), granularity);
    let id = create(&*store, &[("a", "1")], &policy).await;
    let created = Instant::now();

    tokio::time::sleep(Duration::from_millis(600)).await;
    let reading = Instant::now();
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), Some(v("1")));
    assert_eq!(
        store.get_many(&id, &["a"], &policy).await.unwrap(),
        vec![Some(v("1"))]
    );
    assert_eq!(store.get_all(&id, &policy).await.unwrap().len(), 1);
    let (left, asked) = ttl(&*store, &id).await;
    // The deadline the creating write set is at most `created + idle`; a
    // slide by these reads would have put it at `reading + idle` or later.
    if reading.duration_since(created) + SLACK < granularity {
        let unmoved = (created + idle).saturating_duration_since(asked);
        assert!(
            left <= unmoved + SLACK,
            "a read inside the granularity moved the deadline: {left:?} left, at most {unmoved:?} expected"
        );
    }

    tokio::time::sleep_until((created + granularity + Duration::from_millis(200)).into()).await;
    let reading = Instant::now();
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), Some(v("1")));
    let (left, _) = ttl(&*store, &id).await;
    let moved = (reading + idle).saturating_duration_since(Instant::now());
    assert!(
        left + SLACK >= moved,
        "a read past the granularity did not slide the deadline: {left:?} left, at least {moved:?} expected"
    );
}

/// A session read more often than its granularity never expires; left
/// alone, it lives at least the idle timeout less the granularity after its
/// last read, and is gone once the idle timeout has passed. A granularity
/// longer than the idle timeout is capped at half of it.
pub async fn idle_timeout_holds_within_the_touch_granularity(store: Arc<dyn Store>) {
    let idle = Duration::from_millis(1000);
    let policy = ExpiryPolicy::idle(idle).with_touch_after(Duration::from_secs(10));
    let granularity = policy.touch_granularity();
    assert_eq!(granularity, idle / 2);
    let id = create(&*store, &[("a", "1")], &policy).await;
    let started = Instant::now();
    let mut last_read = Instant::now();
    while started.elapsed() < idle * 3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let asked = Instant::now();
        let value = store.get(&id, "a", &policy).await.unwrap();
        // Reads at most 300 ms apart keep it alive; a stall longer than the
        // idle timeout less the granularity may legally end it.
        if asked.duration_since(last_read) + SLACK < idle - granularity {
            assert_eq!(value, Some(v("1")), "a session read every 150 ms expired");
        }
        if value.is_none() {
            return;
        }
        last_read = asked;
    }
    let last_read = Instant::now();
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), Some(v("1")));

    tokio::time::sleep(idle - granularity - Duration::from_millis(200)).await;
    let alive = store.info(&id).await.unwrap().is_some();
    if last_read.elapsed() + SLACK < idle - granularity {
        assert!(
            alive,
            "the session ended sooner than the idle timeout less the granularity"
        );
    }
    tokio::time::sleep_until((last_read + idle + Duration::from_millis(300)).into()).await;
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert!(store.info(&id).await.unwrap().is_none());
}

/// A write slides the idle deadline in full whatever the granularity, even
/// when nothing reads the session afterwards: the session outlives the
/// deadline the write found, and ends one idle timeout after the write.
pub async fn writes_slide_the_deadline_under_the_touch_granularity(store: Arc<dyn Store>) {
    let idle = Duration::from_millis(2000);
    let policy = ExpiryPolicy::idle(idle).with_touch_after(Duration::from_millis(1000));
    let id = create(&*store, &[("a", "1")], &policy).await;
    let created = Instant::now();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let written = Instant::now();
    // Inside the granularity of the creating write, and the same size: a
    // store may well change it where it lies.
    write_applied(&*store, &id, "a", b"2", &policy).await;
    // Past the deadline the creation set; no query in between, which could
    // slide or restore it by itself.
    tokio::time::sleep_until((created + idle + Duration::from_millis(400)).into()).await;
    let value = store.get(&id, "a", &policy).await.unwrap();
    if written.elapsed() + SLACK < idle {
        assert_eq!(
            value,
            Some(v("2")),
            "the session ended at the deadline its creation set, not the write's"
        );
    }
    tokio::time::sleep_until((Instant::now() + idle + Duration::from_millis(300)).into()).await;
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
}

/// Throttled reads neither shorten nor lengthen the absolute lifetime.
pub async fn absolute_lifetime_is_exact_under_throttled_reads(store: Arc<dyn Store>) {
    let lifetime = Duration::from_millis(1500);
    let policy = ExpiryPolicy::idle(Duration::from_secs(3600))
        .with_absolute(lifetime)
        .with_touch_after(Duration::from_secs(600));
    let before = Instant::now();
    let id = create(&*store, &[("a", "1")], &policy).await;
    let after = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let value = store.get(&id, "a", &policy).await.unwrap();
        let answered = Instant::now();
        if answered + SLACK < before + lifetime {
            assert_eq!(
                value,
                Some(v("1")),
                "the session ended before its absolute lifetime"
            );
        }
        if asked > after + lifetime + SLACK {
            assert_eq!(
                value, None,
                "throttled reads extended the absolute lifetime"
            );
            break;
        }
    }
    assert!(store.info(&id).await.unwrap().is_none());
}

/// Reads that write nothing are counted all the same, alone, among writes
/// and across a regenerate, from several tasks at once.
pub async fn read_counters_are_exact_under_throttled_reads(store: Arc<dyn Store>) {
    let policy =
        ExpiryPolicy::idle(Duration::from_secs(3600)).with_touch_after(Duration::from_secs(600));
    let id = create(&*store, &[("a", "1")], &policy).await;
    let reads = |store: Arc<dyn Store>, id: crate::SessionId| async move {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    for _ in 0..5 {
                        store.get(&id, "a", &policy).await.unwrap();
                    }
                    store.get_many(&id, &["a", "b"], &policy).await.unwrap();
                    store.get_all(&id, &policy).await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    };
    let counts = |info: Option<crate::SessionInfo>| {
        let info = info.expect("the session is live");
        (info.reads, info.writes)
    };

    reads(store.clone(), id.clone()).await;
    assert_eq!(counts(store.info(&id).await.unwrap()), (28, 1));
    write_applied(&*store, &id, "b", b"2", &policy).await;
    assert_eq!(counts(store.info(&id).await.unwrap()), (28, 2));
    reads(store.clone(), id.clone()).await;
    assert_eq!(counts(store.info(&id).await.unwrap()), (56, 2));

    let to = new_id();
    assert!(store.regenerate(&id, &to, &policy).await.unwrap());
    assert_eq!(counts(store.info(&to).await.unwrap()), (56, 2));
    reads(store.clone(), to.clone()).await;
    assert_eq!(counts(store.info(&to).await.unwrap()), (84, 2));
    assert!(store.info(&id).await.unwrap().is_none());
}
