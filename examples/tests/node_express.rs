//! Sessions shared live between a Rust example server on store-redis's
//! connect-redis layout (`--redis-layout connect-redis --cookie-format
//! express`) and an Express app on express-session with connect-redis, both
//! on one private redis-server. Needs `node` and `npm`: the tests fail,
//! saying so, without them.
//!
//! What the Node side can still lose is express-session's: it saves a
//! session whole, so two Node requests on one session race, and a Node
//! request already under way when a destroy lands can save the session
//! back. The Rust side's writes are atomic per key, whoever races them.

mod common;

use common::node::{destroy_raced_by_writes, eight_writes_survive, Jar, Pair};
use http::StatusCode;
use serde_json::{json, Value};

/// `server-axum` on the connect-redis layout with express-session cookies,
/// and the Express app, on one Redis.
fn start() -> Pair {
    Pair::start(
        "express-app.js",
        &[
            "--redis-layout",
            "connect-redis",
            "--cookie-format",
            "express",
        ],
    )
}

/// The express-session id the jar's `connect.sid` carries.
fn sid(jar: &Jar) -> String {
    let value = jar.cookie("connect.sid").expect("a connect.sid cookie");
    let value = percent_encoding::percent_decode_str(&value)
        .decode_utf8()
        .unwrap()
        .into_owned();
    let (id, _) = value.strip_prefix("s:").unwrap().rsplit_once('.').unwrap();
    id.to_owned()
}

/// What Redis holds at connect-redis's key for `sid`, and its time to live.
fn stored(pair: &Pair, sid: &str) -> (Option<Value>, i64) {
    let mut redis = pair.redis.connection();
    let key = format!("sess:{sid}");
    let text: Option<String> = redis::cmd("GET").arg(&key).query(&mut redis).unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap();
    let record = text.map(|text| serde_json::from_str(&text).expect("the record is JSON"));
    (record, ttl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_express_is_read_written_and_ended_in_rust() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(jar.ok(node, "/set/cart/apple").await, json!("apple"));
    let id = sid(&jar);
    assert_eq!(id.len(), 32, "express-session's own id");

    // A session Node made is an existing session to Rust (strict mode):
    // Rust writes into it, and keeps its cookie.
    assert_eq!(jar.ok(rust, "/get/cart").await, json!("apple"));
    assert_eq!(jar.ok(rust, "/set/user/ada").await, json!("ada"));
    assert_eq!(sid(&jar), id, "the same session");
    assert_eq!(jar.ok(node, "/get/user").await, json!("ada"));
    assert_eq!(jar.ok(node, "/get/cart").await, json!("apple"));

    // Eight concurrent writes from Rust to different keys all survive.
    eight_writes_survive(&jar, rust, node).await;
    let (record, ttl) = stored(&pair, &id);
    let record = record.expect("the session");
    assert_eq!(record["cart"], json!("apple"));
    assert_eq!(record["k7"], json!("v7"));
    assert!(
        record["cookie"].is_object(),
        "express-session's cookie: {record}"
    );
    assert!(
        ttl > 1_700_000 && ttl <= 1_800_000,
        "connect-redis's ttl: {ttl}"
    );

    // A destroy in Rust ends it for Express: a request after it finds no
    // session, and a write then starts another, reviving nothing.
    let stale = jar.copy();
    assert_eq!(jar.ok(rust, "/destroy").await, json!(true));
    assert_eq!(stored(&pair, &id).0, None);
    assert_eq!(stale.ok(node, "/get/cart").await, Value::Null);
    assert_eq!(stale.ok(node, "/set/cart/pear").await, json!("pear"));
    assert_ne!(sid(&stale), id, "a new session");
    assert_eq!(
        stored(&pair, &id).0,
        None,
        "the destroyed session came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_in_rust_is_read_written_and_ended_in_express() {
    let pair = start();
    let (rust, node) = (&pair.rust.url, &pair.node.url);
    let jar = Jar::default();
    assert_eq!(jar.ok(rust, "/set/cart/apple").await, json!("apple"));
    let id = sid(&jar);
    let (record, ttl) = stored(&pair, &id);
    let record = record.expect("the session, at connect-redis's key");
    assert_eq!(record["cart"], json!("apple"));
    assert!(record["cookie"].is_object(), "{record}");
    assert!(
        ttl > 1_700_000 && ttl <= 1_800_000,
        "the idle timeout: {ttl}"
    );

    assert_eq!(jar.ok(node, "/get/cart").await, json!("apple"));
    assert_eq!(jar.ok(node, "/set/user/ada").await, json!("ada"));
    assert_eq!(sid(&jar), id, "the same session");
    assert_eq!(jar.ok(rust, "/get/user").await, json!("ada"));
    assert_eq!(jar.ok(rust, "/get/cart").await, json!("apple"));

    eight_writes_survive(&jar, rust, node).await;

    // A destroy in Express ends it in Rust, and Rust writes racing it
    // revive nothing: each finds the session gone and starts a new one.
    let (statuses, late) = destroy_raced_by_writes(&jar, node, rust).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        stored(&pair, &id).0,
        None,
        "the destroyed session came back"
    );
    let stale = late.copy();
    assert_eq!(stale.ok(rust, "/get/cart").await, Value::Null);
}
