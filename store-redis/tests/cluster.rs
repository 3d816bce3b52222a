//! store-redis on a real local Redis Cluster of three masters: sessions spread
//! over every master, store-wide access visits them all, and regenerate (the
//! one operation that spans two slots) loses no write that raced it.

#![cfg(feature = "cluster")]

use std::sync::Arc;
use std::time::Duration;

use redis_test_server::{RedisCluster, RedisServer};
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_redis::RedisStore;

#[path = "common/owned.rs"]
mod owned;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

async fn cluster() -> (RedisCluster, RedisStore) {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .unwrap();
    let store = RedisStore::builder()
        .cluster(cluster.urls())
        .scan_count(5)
        .build()
        .await
        .unwrap();
    (cluster, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_wide_access_visits_every_master() {
    let (cluster, store) = cluster().await;
    for i in 0..60 {
        let id = SessionId::generate("session:");
        let _ = store
            .set(
                &id,
                "n",
                i.to_string().as_bytes(),
                WriteMode::Create,
                &POLICY,
            )
            .await
            .unwrap();
    }
    let per_node: Vec<usize> = cluster
        .nodes()
        .iter()
        .map(|node| {
            // Sessions only: each slot's activity indexes sit beside them.
            let mut con = node.connection();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("session:{*")
                .query(&mut con)
                .unwrap();
            keys.len()
        })
        .collect();
    assert!(
        per_node.iter().all(|&n| n > 0),
        "sessions spread over all masters: {per_node:?}"
    );
    assert_eq!(per_node.iter().sum::<usize>(), 60);
    assert_eq!(store.len().await.unwrap(), 60);
    assert_eq!(store.destroy_all().await.unwrap(), 60);
    assert!(store.is_empty().await.unwrap());
}

/// Owned sessions on a cluster: the owner indexes live in their own slots,
/// the activity indexes in each session's; every key expires, and no
/// listing path runs `SCAN` or `KEYS` on any master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_sessions_on_a_cluster_keep_every_key_expiring_and_never_scan() {
    let (cluster, store) = cluster().await;
    let mut nodes: Vec<redis::Connection> = cluster
        .nodes()
        .iter()
        .map(|node| node.connection())
        .collect();
    owned::check(&store, &mut nodes, false).await;
    let indexed = RedisStore::builder()
        .cluster(cluster.urls())
        .prefix("indexed:")
        .activity_index(true)
        .build()
        .await
        .unwrap();
    owned::check(&indexed, &mut nodes, true).await;
}

#[tokio::test]
async fn host_and_port_do_not_apply_to_a_cluster() {
    let result = RedisStore::builder()
        .cluster(["redis://127.0.0.1:7000"])
        .port(7001)
        .build()
        .await;
    assert!(
        matches!(result, Err(store_redis::Error::Config(_))),
        "{result:?}"
    );
}

/// Writers hammer a session while it is regenerated: every write the store
/// acknowledged is in the new session, and the old one is gone.
async fn regenerate_keeps_racing_writes(store: Arc<RedisStore>) {
    for _round in 0..10 {
        let old = SessionId::generate("session:");
        let _ = store
            .set(&old, "seed", b"0", WriteMode::Create, &POLICY)
            .await
            .unwrap();
        let mut writers = Vec::new();
        for t in 0..4 {
            let (store, old) = (store.clone(), old.clone());
            writers.push(tokio::spawn(async move {
                let mut applied = Vec::new();
                for i in 0..30 {
                    let key = format!("w{t}-{i}");
                    let outcome = store
                        .set(&old, &key, b"x", WriteMode::Existing, &POLICY)
                        .await
                        .unwrap();
                    if outcome == WriteOutcome::Applied {
                        applied.push(key);
                    }
                }
                applied
            }));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let new = SessionId::generate("session:");
        assert!(store.regenerate(&old, &new, &POLICY).await.unwrap());
        let all = store.get_all(&new, &POLICY).await.unwrap();
        for writer in writers {
            for key in writer.await.unwrap() {
                assert!(all.contains_key(&key), "acknowledged write {key} was lost");
            }
        }
        assert!(!store.extend(&old, &POLICY).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_on_a_cluster_keeps_racing_writes() {
    let (_cluster, store) = cluster().await;
    regenerate_keeps_racing_writes(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_on_one_server_keeps_racing_writes() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .build()
        .await
        .unwrap();
    regenerate_keeps_racing_writes(Arc::new(store)).await;
}
