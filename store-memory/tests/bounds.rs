//! store-memory's own promises beyond the conformance suite: a byte bound with
//! least-recently-used eviction.

use std::time::Duration;

use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_memory::MemoryStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

#[tokio::test]
async fn stays_within_max_bytes_and_evicts_least_recently_used() {
    let max_bytes = 256 * 1024;
    let store = MemoryStore::builder().max_bytes(max_bytes).build();
    let value = vec![b'x'; 10 * 1024];
    let mut ids = Vec::new();
    for _ in 0..100 {
        let id = SessionId::generate("session:");
        let outcome = store
            .set(&id, "v", &value, WriteMode::Create, &POLICY)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);
        // Keep the first session in use, so LRU must spare it. moka applies
        // recorded reads during maintenance, which `weighted_size` runs.
        if let Some(first) = ids.first() {
            assert!(
                store.extend(first, &POLICY).await.unwrap(),
                "the busy session was evicted"
            );
            store.weighted_size().await;
        }
        ids.push(id);
    }
    let bytes = store.weighted_size().await;
    assert!(
        bytes <= max_bytes,
        "{bytes} bytes held, over the bound of {max_bytes}"
    );
    let sessions = store.len().await.unwrap();
    assert!((10..100).contains(&sessions), "{sessions} sessions held");
    // The newest and the busy oldest are kept; the idle second one was evicted.
    assert!(store
        .get(ids.last().unwrap(), "v", &POLICY)
        .await
        .unwrap()
        .is_some());
    assert!(store.get(&ids[0], "v", &POLICY).await.unwrap().is_some());
    assert!(store.get(&ids[1], "v", &POLICY).await.unwrap().is_none());

    store.destroy_all().await.unwrap();
    assert!(store.is_empty().await.unwrap());
}
