//! A session's own idle timeout shortened by another process, for the
//! per-layout tests.

use std::time::Duration;

use session_core::{ExpiryPolicy, SessionId, Store};
use store_redis::RedisStore;

/// `other` shortens the own idle timeout of session `id` (holding `a` =
/// `1`, just read by `store`'s script under `policy`, whose touch
/// granularity is 4 s) to 3 s. `store`, which may serve reads with a plain
/// command until the refresh its script said was due, reads it every 500
/// ms for 6 s and always finds it; quiet for longer than 3 s, it is gone.
pub async fn outlasts_the_plain_reads(
    store: &RedisStore,
    other: &RedisStore,
    id: &SessionId,
    policy: &ExpiryPolicy,
) {
    let ttl = other
        .set_lifetime(id, Duration::from_secs(3), policy)
        .await
        .unwrap()
        .expect("alive");
    // The new timeout, and the policy's `touch_after` (4 s) once more.
    assert!(
        ttl > Duration::from_secs(6) && ttl <= Duration::from_secs(7),
        "{ttl:?}"
    );
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            store.get(id, "a", policy).await.unwrap(),
            Some(b"1".to_vec()),
            "expired while read every 500 ms"
        );
    }
    // Quiet for longer than the new timeout: gone.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(store.get(id, "a", policy).await.unwrap(), None);
}
