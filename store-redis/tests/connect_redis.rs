//! The connect-redis layout's own promises beyond the conformance suite
//! (which it passes unchanged, in `conformance_connect_redis.rs`): records
//! connect-redis wrote are read and written in place, what the Node side
//! stored survives byte for byte, and the `cookie` follows the deadline.

use std::time::Duration;

use redis::Commands;
use redis_test_server::RedisServer;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_redis::{Layout, RedisStore};

#[path = "common/commandstats.rs"]
mod commandstats;
#[path = "common/lifetime.rs"]
mod lifetime;
use commandstats::calls;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(600));

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .layout(Layout::ConnectRedis)
        .build()
        .await
        .expect("connect to the test server")
}

/// What express-session and connect-redis would have saved: members of
/// every JSON kind, some that a JSON library would write differently.
const NODE_RECORD: &str = concat!(
    r#"{"cookie":{"originalMaxAge":3600000,"expires":"2030-01-01T00:00:00.000Z","#,
    r#""secure":false,"httpOnly":true,"path":"/"},"#,
    r#""cart":[],"nested":{"a":[1,2,{"b":null}],"s":"x\"y\\z\u00e9\/"},"#,
    r#""big":12345678901234567890,"float":1.0,"user":"ada","flag":true}"#
);

fn id() -> SessionId {
    SessionId::generate("")
}

#[tokio::test]
async fn a_record_node_wrote_is_read_and_written_in_place() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut redis = server.connection();
    let id = id();
    let key = format!("sess:{}", id.as_str());
    assert_eq!(store.key(&id), key, "connect-redis's key");
    let _: () = redis.set_ex(&key, NODE_RECORD, 3600).unwrap();

    assert_eq!(
        store.get(&id, "user", &POLICY).await.unwrap(),
        Some(b"\"ada\"".to_vec())
    );
    assert_eq!(
        store.get(&id, "big", &POLICY).await.unwrap(),
        Some(b"12345678901234567890".to_vec()),
        "numbers as Node wrote them"
    );
    let all = store.get_all(&id, &POLICY).await.unwrap();
    let mut keys: Vec<&str> = all.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["big", "cart", "flag", "float", "nested", "user"]);

    // A write from an id the cookie gave is strict: the session exists.
    let outcome = store
        .set(&id, "user", b"\"grace\"", WriteMode::Existing, &POLICY)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);
    let text: String = redis.get(&key).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
    assert_eq!(record["user"], "grace");
    // Every other member byte for byte, in its place.
    for member in [
        r#""cart":[]"#,
        r#""nested":{"a":[1,2,{"b":null}],"s":"x\"y\\z\u00e9\/"}"#,
        r#""big":12345678901234567890"#,
        r#""float":1.0"#,
        r#""flag":true"#,
    ] {
        assert!(text.contains(member), "{member} in {text}");
    }
    assert!(text.starts_with(r#"{"cookie":"#), "{text}");
    // The cookie's `expires` follows the new deadline, and so does the TTL.
    let ttl: i64 = redis.pttl(&key).unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "the idle timeout: {ttl}");
    let expires = record["cookie"]["expires"].as_str().unwrap();
    assert!(!expires.starts_with("2030"), "moved: {expires}");
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");
    assert_eq!(record["cookie"]["originalMaxAge"], 3_600_000);
}

#[tokio::test]
async fn a_session_made_here_is_one_express_session_can_load() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut redis = server.connection();
    let id = id();
    for (key, value, mode) in [
        ("cart", &b"[\"apple\"]"[..], WriteMode::Create),
        ("raw", b"not json", WriteMode::Existing),
    ] {
        let outcome = store.set(&id, key, value, mode, &POLICY).await.unwrap();
        assert_eq!(outcome, WriteOutcome::Applied, "{key}");
    }
    let text: String = redis.get(store.key(&id)).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(record["cart"], serde_json::json!(["apple"]));
    assert_eq!(
        record["cookie"],
        serde_json::json!({"originalMaxAge": null, "expires": null, "httpOnly": true, "path": "/"}),
        "express-session's default cookie"
    );
    assert!(record["__generic_session"]["created"].is_string(), "{text}");
    assert_eq!(
        store.get(&id, "raw", &POLICY).await.unwrap(),
        Some(b"not json".to_vec()),
        "bytes that are not JSON come back as they went"
    );
    let ttl: i64 = redis.pttl(store.key(&id)).unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "{ttl}");
}

#[tokio::test]
async fn cookie_and_metadata_are_not_user_keys() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let id = id();
    let outcome = store.set(&id, "a", b"1", WriteMode::Create, &POLICY).await;
    assert_eq!(outcome.unwrap(), WriteOutcome::Applied);
    for key in ["cookie", "__generic_session"] {
        let refused = store
            .set(&id, key, b"1", WriteMode::Existing, &POLICY)
            .await;
        assert!(refused.is_err(), "{key}: {refused:?}");
        assert_eq!(store.get(&id, key, &POLICY).await.unwrap(), None, "{key}");
    }
    assert_eq!(
        store.get(&id, "a", &POLICY).await.unwrap(),
        Some(b"1".to_vec()),
        "the refused writes changed nothing"
    );
}

#[tokio::test]
async fn an_empty_prefix_is_refused() {
    let server = RedisServer::start();
    let empty = RedisStore::builder()
        .url(server.url())
        .layout(Layout::ConnectRedis)
        .prefix("")
        .build()
        .await;
    assert!(
        matches!(empty, Err(store_redis::Error::Config(_))),
        "{empty:?}"
    );
}

/// A new session holding `a` = `1`, read once: by the script, which
/// answers that no refresh is due under `policy`, so reads after it are
/// plain.
async fn read_once(store: &RedisStore, policy: &ExpiryPolicy) -> SessionId {
    let id = id();
    let outcome = store.set(&id, "a", b"1", WriteMode::Create, policy).await;
    assert_eq!(outcome.unwrap(), WriteOutcome::Applied);
    assert_eq!(
        store.get(&id, "a", policy).await.unwrap(),
        Some(b"1".to_vec())
    );
    id
}

/// Reads between refreshes are one plain `GET` of the record each, answered
/// here, and their counts reach the record as in the native layout.
#[tokio::test]
async fn reads_inside_the_granularity_are_one_plain_get() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let id = read_once(&store, &policy).await;
    let before = ["evalsha", "get"].map(|command| calls(&mut con, command));
    for _ in 0..10 {
        assert_eq!(
            store.get(&id, "a", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            store.get_many(&id, &["a", "b"], &policy).await.unwrap(),
            vec![Some(b"1".to_vec()), None]
        );
        let all = store.get_all(&id, &policy).await.unwrap();
        assert_eq!(all.get("a"), Some(&b"1".to_vec()));
        assert_eq!(all.len(), 1, "{all:?}");
    }
    let [evalsha, get] = ["evalsha", "get"].map(|command| calls(&mut con, command));
    // A background flush of the counts (a script, with its own GET) may
    // fall inside the loop.
    let scripts = evalsha - before[0];
    assert!(scripts <= 1, "{scripts} scripts");
    assert_eq!(get - before[1] - scripts, 30, "one GET per read");
    assert_eq!(store.info(&id).await.unwrap().unwrap().reads, 31);
    let stored_reads = |con: &mut redis::Connection| -> u64 {
        let text: String = con.get(store.key(&id)).unwrap();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        record["__generic_session"]["reads"]
            .as_str()
            .map_or(0, |reads| reads.parse().unwrap())
    };
    let flushed_by = std::time::Instant::now() + Duration::from_secs(5);
    while stored_reads(&mut con) < 31 && std::time::Instant::now() < flushed_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_reads(&mut con), 31);

    // Destroyed by another process: the plain read finds nothing.
    let other = self::store(&server).await;
    other.del_all(&id).await.unwrap();
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
}

/// As in the native layout: a timeout another process shortens leaves the
/// session for the plain reads this one may serve under what its last read
/// script said, then holds.
#[tokio::test]
async fn a_timeout_shortened_elsewhere_outlasts_the_plain_reads_it_allowed() {
    let server = RedisServer::start();
    let (store, other) = (store(&server).await, store(&server).await);
    let policy = POLICY.with_touch_after(Duration::from_secs(4));
    let id = read_once(&store, &policy).await;
    lifetime::outlasts_the_plain_reads(&store, &other, &id, &policy).await;
}

/// Reads counted for a record that is deleted before their flush bring
/// nothing back: the flush finds no record, and the record stays gone.
#[tokio::test]
async fn a_flush_brings_back_no_deleted_record() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let id = read_once(&store, &policy).await;
    // A plain read, whose count waits for the flush; then the record goes.
    assert!(store.get(&id, "a", &policy).await.unwrap().is_some());
    let _: () = con.del(store.key(&id)).unwrap();
    // Written out, by a background pass or by this.
    store.flush().await.unwrap();
    let exists: bool = con.exists(store.key(&id)).unwrap();
    assert!(!exists, "a flush brought back a deleted record");
}

/// Values that are not one strict JSON value (a NUL, a bare dot, a raw tab
/// in a string) or that look like the wrapper are wrapped: they come back
/// byte for byte, plant no member, and the record stays JSON for Node.
#[tokio::test]
async fn no_value_can_break_the_record_or_plant_a_member() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut redis = server.connection();
    let id = id();
    let values: [&[u8]; 9] = [
        b"11\0,\"role\":\"admin\"",
        b"x\0,\"__generic_session\":{\"created\":\"1\",\"owner\":\"victim\"}",
        b".5",
        b"1.",
        b"\"a\tb\"",
        b"01",
        b"{\"$gs-bytes\":\"6869\"}",
        b"\"\xff\"",
        b"{\"a\":[1,{\"b\":\"}\"}]}",
    ];
    for (i, value) in values.iter().enumerate() {
        let mode = if i == 0 {
            WriteMode::Create
        } else {
            WriteMode::Existing
        };
        let outcome = store.set(&id, &format!("v{i}"), value, mode, &POLICY).await;
        assert_eq!(outcome.unwrap(), WriteOutcome::Applied, "{i}");
    }
    // Twice: once by script, once by the plain read path.
    for _ in 0..2 {
        for (i, value) in values.iter().enumerate() {
            let read = store.get(&id, &format!("v{i}"), &POLICY).await.unwrap();
            assert_eq!(read.as_deref(), Some(*value), "v{i}");
        }
        assert_eq!(store.get(&id, "role", &POLICY).await.unwrap(), None);
        assert_eq!(
            store.get_all(&id, &POLICY).await.unwrap().len(),
            values.len()
        );
    }
    let text: Vec<u8> = redis.get(store.key(&id)).unwrap();
    let record: serde_json::Value = serde_json::from_slice(&text).expect("the record is JSON");
    assert!(record.get("role").is_none(), "{record}");
    assert_eq!(record["v8"]["a"][1]["b"], "}", "JSON values stay JSON");
    let info = store.info(&id).await.unwrap().unwrap();
    assert_eq!(info.owner, None, "no planted owner");
}

#[tokio::test]
async fn a_prefix_that_would_take_in_the_indexes_is_refused() {
    let server = RedisServer::start();
    for prefix in ["g", "generic-session:"] {
        let refused = RedisStore::builder()
            .url(server.url())
            .layout(Layout::ConnectRedis)
            .prefix(prefix)
            .build()
            .await;
        assert!(
            matches!(refused, Err(store_redis::Error::Config(_))),
            "{prefix}"
        );
    }
}

/// A read due a refresh, far from the deadline, is one plain `GET`; the
/// flush slides the record's TTL as of that read, counts the read in the
/// record, and brings back no record deleted meanwhile.
#[tokio::test]
async fn a_refresh_left_by_a_plain_read_slides_the_record() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(1));
    let idle = policy.idle;
    let id = read_once(&store, &policy).await;
    let gone = read_once(&store, &policy).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let (evalsha, get) = (calls(&mut con, "evalsha"), calls(&mut con, "get"));
    let read = std::time::Instant::now();
    assert_eq!(
        store.get(&id, "a", &policy).await.unwrap(),
        Some(b"1".to_vec())
    );
    assert!(store.get(&gone, "a", &policy).await.unwrap().is_some());
    let _: () = con.del(store.key(&gone)).unwrap();
    let scripts = calls(&mut con, "evalsha") - evalsha;
    // Two plain GETs; a flush that fell between them reads its records too.
    assert!(
        calls(&mut con, "get") - get >= 2 && scripts <= 1,
        "{scripts} scripts"
    );
    let pttl = |con: &mut redis::Connection| -> Duration {
        let ms: u64 = con.pttl(store.key(&id)).unwrap();
        Duration::from_millis(ms)
    };
    let slid_by = std::time::Instant::now() + Duration::from_secs(5);
    while pttl(&mut con) + read.elapsed() + Duration::from_millis(500) < idle
        && std::time::Instant::now() < slid_by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (left, since) = (pttl(&mut con), read.elapsed());
    assert!(
        left + since + Duration::from_millis(500) >= idle && left <= idle,
        "{left:?} left {since:?} after the read"
    );
    // Counted in the record, by the same script.
    let text: String = con.get(store.key(&id)).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["__generic_session"]["reads"].as_str(), Some("2"));
    let exists: bool = con.exists(store.key(&gone)).unwrap();
    assert!(!exists, "a refresh brought back a deleted record");
}
