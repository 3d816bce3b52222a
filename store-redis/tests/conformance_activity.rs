//! store-redis against the shared conformance suite of session-core, on a
//! standalone redis-server per case, with the activity index on (one pair
//! of sorted sets kept by every session script).

use redis_test_server::RedisServer;
use session_core::testkit::WithGuard;
use session_core::Limits;
use store_redis::RedisStore;

session_core::store_conformance_tests!(|limits: Limits| async move {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .activity_index(true)
        .limits(limits)
        .build()
        .await
        .expect("connect to the test server");
    WithGuard(store, server)
});
