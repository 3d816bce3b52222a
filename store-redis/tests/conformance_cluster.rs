//! store-redis against the shared conformance suite of session-core, on a real
//! local Redis Cluster of three masters started per case, with the activity
//! index (without it, `conformance.rs` covers the same code on one server).

#![cfg(feature = "cluster")]

use redis_test_server::RedisCluster;
use session_core::testkit::WithGuard;
use session_core::Limits;
use store_redis::RedisStore;

session_core::store_conformance_tests!(|limits: Limits| async move {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .expect("start the test cluster");
    // With the activity index: one per slot, kept by every session script.
    let store = RedisStore::builder()
        .cluster(cluster.urls())
        .activity_index(true)
        .limits(limits)
        .build()
        .await
        .expect("connect to the test cluster");
    WithGuard(store, cluster)
});
