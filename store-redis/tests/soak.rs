//! store-redis under the shared soak, on a redis-server of its own: 64 tasks
//! of mixed operations for `SOAK_SECS` (default 120), every operation within
//! its deadline.

use redis_test_server::RedisServer;
use session_core::testkit::WithGuard;
use store_redis::RedisStore;

#[test]
fn soak() {
    session_core::testkit::soak::run_test("store-redis", || async {
        let server = RedisServer::start();
        let store = RedisStore::builder()
            .url(server.url())
            .build()
            .await
            .expect("connect to the test server");
        WithGuard(store, server)
    });
}
