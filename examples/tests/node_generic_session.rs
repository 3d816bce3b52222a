//! Sessions shared live between a Rust example server and a Node app on
//! Node's generic-session (npm `generic-session`, Keygrip-signed `s` and
//! `s.sig` cookies) with `interop/node`'s store over store-redis's native
//! layout, both on one private redis-server. Needs `node` and `npm`: the
//! tests fail, saying so, without them.

mod common;

use common::node::{Jar, NodeApp};
use common::{join_all, Server, KEY, SERVERS};
use http::StatusCode;
use redis_test_server::RedisServer;
use serde_json::{json, Value};

/// The Rust server (`server-axum`) and the Node app, on one Redis.
struct Pair {
    rust: Server,
    node: NodeApp,
    redis: RedisServer,
}

fn start() -> Pair {
    let redis = RedisServer::start();
    let url = redis.url();
    let rust = Server::start(
        SERVERS[2].1,
        &[
            "--store",
            "redis",
            "--redis-url",
            &url,
            "--cookie-format",
            "keygrip",
            "--insecure-cookies",
        ],
    );
    let node = NodeApp::start(
        "generic-session-app.js",
        &[
            ("REDIS_URL", &url),
            ("SESSION_KEYS", KEY),
            ("IDLE_SECONDS", "1800"),
        ],
    );
    Pair { rust, node, redis }
}

impl Pair {
    /// Whether Redis holds the session the jar's `s` cookie names.
    fn holds(&self, jar_header: &str) -> bool {
        let token = jar_header
            .split("; ")
            .find_map(|pair| pair.strip_prefix("s="))
            .expect("an s cookie");
        let key = format!("session:{{session:{token}}}");
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query(&mut self.redis.connection())
            .expect("EXISTS");
        exists == 1
    }
}

async fn get(jar: &Jar, base: &str, path: &str) -> Value {
    let (status, body) = jar.get(base, path).await;
    assert_eq!(status, StatusCode::OK, "{base}{path}: {body}");
    body
}

/// A jar holding a copy of `jar`'s cookies: a second tab, or a request
/// already on its way.
fn copy(jar: &Jar) -> Jar {
    let copy = Jar::default();
    *copy.cookies.lock().unwrap() = jar.cookies.lock().unwrap().clone();
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_node_is_read_written_and_ended_in_rust() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(get(&jar, node, "/set/cart/apple").await, json!("apple"));
    assert!(
        jar.cookies.lock().unwrap().contains_key("s.sig"),
        "Keygrip's signature cookie"
    );
    // Node minted the id (40 characters of base64); Rust reads the session.
    assert_eq!(get(&jar, rust, "/get/cart").await, json!("apple"));
    assert_eq!(get(&jar, rust, "/set/user/ada").await, json!("ada"));
    assert_eq!(get(&jar, node, "/get/user").await, json!("ada"));

    // Eight concurrent writes from Rust to different keys all survive.
    let writes = (0..8).map(|i| {
        let jar = &jar;
        async move { get(jar, rust, &format!("/set/k{i}/v{i}")).await }
    });
    join_all(writes).await;
    for i in 0..8 {
        assert_eq!(
            get(&jar, node, &format!("/get/k{i}")).await,
            json!(format!("v{i}"))
        );
    }

    // A destroy in Rust ends it in Node, and writes racing it revive nothing.
    let late = copy(&jar);
    let header = jar.header();
    let destroy = get(&jar, rust, "/destroy");
    let racing = (0..8).map(|i| {
        let late = &late;
        async move { late.get(node, &format!("/set/r{i}/x")).await.0 }
    });
    let (_, statuses) = tokio::join!(destroy, join_all(racing));
    for status in statuses {
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "a racing write answers 200 (before the destroy) or 409: {status}"
        );
    }
    assert!(!pair.holds(&header), "the destroyed session came back");
    let stale = copy(&late);
    assert_eq!(get(&stale, node, "/get/cart").await, Value::Null);
    assert_eq!(
        stale.get(node, "/set/cart/pear").await.0,
        StatusCode::CONFLICT
    );
    assert!(!pair.holds(&header), "a stale write revived the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_rust_is_read_written_and_ended_in_node() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(get(&jar, rust, "/set/cart/apple").await, json!("apple"));
    assert!(
        jar.cookies.lock().unwrap().contains_key("s.sig"),
        "Keygrip's signature cookie"
    );
    assert_eq!(get(&jar, node, "/get/cart").await, json!("apple"));
    assert_eq!(get(&jar, node, "/set/user/ada").await, json!("ada"));
    assert_eq!(get(&jar, rust, "/get/user").await, json!("ada"));

    let writes = (0..8).map(|i| {
        let jar = &jar;
        async move { get(jar, rust, &format!("/set/k{i}/v{i}")).await }
    });
    join_all(writes).await;
    for i in 0..8 {
        assert_eq!(
            get(&jar, node, &format!("/get/k{i}")).await,
            json!(format!("v{i}"))
        );
    }

    // A destroy in Node ends it in Rust, and writes racing it revive nothing.
    let late = copy(&jar);
    let header = jar.header();
    let destroy = get(&jar, node, "/destroy");
    let racing = (0..8).map(|i| {
        let late = &late;
        async move { late.get(rust, &format!("/set/r{i}/x")).await.0 }
    });
    let (_, statuses) = tokio::join!(destroy, join_all(racing));
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(!pair.holds(&header), "the destroyed session came back");
    let stale = copy(&late);
    assert_eq!(get(&stale, rust, "/get/cart").await, Value::Null);
}

/// The Node package's own tests (`npm test` in `interop/node`), so that
/// `cargo test --workspace` runs them too. They start their own
/// redis-server.
#[test]
fn the_node_store_passes_its_own_tests() {
    common::node::setup();
    let output = std::process::Command::new("npm")
        .arg("test")
        .current_dir(common::node::package_dir())
        .output()
        .expect("run npm test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "npm test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{stdout}"
    );
}
