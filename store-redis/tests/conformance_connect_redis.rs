//! store-redis against the shared conformance suite of session-core, on a
//! standalone redis-server per case, in the connect-redis layout (one JSON
//! string per session, as connect-redis keeps it), with the activity index
//! on so that the indexes' own prefix is exercised too.

use redis_test_server::RedisServer;
use session_core::testkit::WithGuard;
use session_core::Limits;
use store_redis::{Layout, RedisStore};

session_core::store_conformance_tests!(|limits: Limits| async move {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .layout(Layout::ConnectRedis)
        .activity_index(true)
        .limits(limits)
        .build()
        .await
        .expect("connect to the test server");
    WithGuard(store, server)
});
