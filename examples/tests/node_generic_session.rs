//! Sessions shared live between a Rust example server and a Node app on
//! Node's generic-session (npm `generic-session`, Keygrip-signed `s` and
//! `s.sig` cookies) with `interop/node`'s store over store-redis's native
//! layout, both on one private redis-server. Needs `node` and `npm`: the
//! tests fail, saying so, without them.

mod common;

use common::node::{destroy_raced_by_writes, eight_writes_survive, Jar, Pair};
use http::StatusCode;
use serde_json::{json, Value};

/// `server-axum` with Keygrip cookies and the generic-session app, on one Redis.
fn start() -> Pair {
    Pair::start("generic-session-app.js", &["--cookie-format", "keygrip"])
}

/// Whether Redis holds the session of token `token` (the `s` cookie).
fn holds(pair: &Pair, token: &str) -> bool {
    let key = format!("session:{{session:{token}}}");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query(&mut pair.redis.connection())
        .expect("EXISTS");
    exists == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_node_is_read_written_and_ended_in_rust() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(jar.ok(node, "/set/cart/apple").await, json!("apple"));
    assert!(
        jar.cookies.lock().unwrap().contains_key("s.sig"),
        "Keygrip's signature cookie"
    );
    // Node minted the id (40 characters of base64); Rust reads the session.
    assert_eq!(jar.ok(rust, "/get/cart").await, json!("apple"));
    assert_eq!(jar.ok(rust, "/set/user/ada").await, json!("ada"));
    assert_eq!(jar.ok(node, "/get/user").await, json!("ada"));

    // Eight concurrent writes from Rust to different keys all survive.
    eight_writes_survive(&jar, rust, node).await;

    // A destroy in Rust ends it in Node, and writes racing it revive nothing.
    let token = jar.cookie("s").expect("an s cookie");
    let (statuses, late) = destroy_raced_by_writes(&jar, rust, node).await;
    for status in statuses {
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "a racing write answers 200 (before the destroy) or 409: {status}"
        );
    }
    assert!(!holds(&pair, &token), "the destroyed session came back");
    let stale = late.copy();
    assert_eq!(stale.ok(node, "/get/cart").await, Value::Null);
    assert_eq!(
        stale.get(node, "/set/cart/pear").await.0,
        StatusCode::CONFLICT
    );
    assert!(!holds(&pair, &token), "a stale write revived the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_rust_is_read_written_and_ended_in_node() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(jar.ok(rust, "/set/cart/apple").await, json!("apple"));
    assert!(
        jar.cookies.lock().unwrap().contains_key("s.sig"),
        "Keygrip's signature cookie"
    );
    assert_eq!(jar.ok(node, "/get/cart").await, json!("apple"));
    assert_eq!(jar.ok(node, "/set/user/ada").await, json!("ada"));
    assert_eq!(jar.ok(rust, "/get/user").await, json!("ada"));

    eight_writes_survive(&jar, rust, node).await;

    // A destroy in Node ends it in Rust, and writes racing it revive nothing.
    let token = jar.cookie("s").expect("an s cookie");
    let (statuses, late) = destroy_raced_by_writes(&jar, node, rust).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(!holds(&pair, &token), "the destroyed session came back");
    let stale = late.copy();
    assert_eq!(stale.ok(rust, "/get/cart").await, Value::Null);
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
