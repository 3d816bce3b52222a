//! store-redis's own promises beyond the conformance suite, on real servers:
//! the key layout, recovery from a server restart, store-wide access,
//! connection options, and typed errors for bad ones.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Commands;
use redis_test_server::RedisServer;
use session_core::{
    ExpiryPolicy, GenericSession, Handle, SessionConfig, SessionId, Store, WriteMode,
};
use store_redis::{RedisStore, CREATED_FIELD};

#[path = "common/owned.rs"]
mod owned;

#[path = "common/commandstats.rs"]
mod commandstats;
#[path = "common/lifetime.rs"]
mod lifetime;
use commandstats::calls;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .build()
        .await
        .expect("connect to the test server")
}

/// A new session holding `a = 1`.
async fn create(store: &RedisStore, policy: &ExpiryPolicy) -> SessionId {
    let id = SessionId::generate("session:");
    let outcome = store
        .set(&id, "a", b"1", WriteMode::Create, policy)
        .await
        .unwrap();
    assert_eq!(outcome, session_core::WriteOutcome::Applied);
    id
}

/// Every key in the server's current database, by SCAN.
fn all_keys(con: &mut redis::Connection) -> Vec<String> {
    con.scan::<String>()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every key has a TTL: none lives forever (-1), none is missing (-2).
fn assert_every_key_expires(con: &mut redis::Connection) {
    for key in all_keys(con) {
        let ttl: i64 = con.pttl(&key).unwrap();
        assert!(ttl > 0, "{key} has PTTL {ttl}");
    }
}

#[tokio::test]
async fn layout_is_one_readable_hash_per_session_with_a_ttl() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let config = Arc::new(
        SessionConfig::builder()
            .key(b"a layout test key of at least thirty-two bytes".to_vec())
            .build()
            .unwrap(),
    );
    let (session, _) = GenericSession::new(
        &http::HeaderMap::new(),
        Arc::new(store.clone()),
        config.clone(),
    );
    session.set("user", "ada").await.unwrap();
    session.set("cart", &vec![1, 2]).await.unwrap();
    let id = session.id().unwrap();

    let key = format!("session:{{{}}}", id.as_str());
    assert_eq!(store.key(&id), key);
    assert_eq!(all_keys(&mut con), vec![key.clone()]);
    let hash: Vec<(Vec<u8>, Vec<u8>)> = con.hgetall(&key).unwrap();
    let fields: HashSet<Vec<u8>> = hash.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(
        fields,
        HashSet::from([
            b"user".to_vec(),
            b"cart".to_vec(),
            CREATED_FIELD.to_vec(),
            b"\xffwrites".to_vec(),
            b"\xfflast".to_vec()
        ])
    );
    let writes: u64 = con.hget(&key, b"\xffwrites").unwrap();
    assert_eq!(writes, 2, "each write counted");
    let user: String = con.hget(&key, "user").unwrap();
    assert_eq!(user, "\"ada\"", "values are the codec's JSON, readable");
    let created: u64 = con.hget(&key, CREATED_FIELD).unwrap();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let server_now = seconds * 1000 + micros / 1000;
    assert!(
        created <= server_now && created + 60_000 > server_now,
        "created {created}, server time {server_now}"
    );
    let ttl: i64 = con.pttl(&key).unwrap();
    let idle = session_core::DEFAULT_IDLE_TIMEOUT.as_millis() as i64;
    assert!(
        ttl > idle - 60_000 && ttl <= idle,
        "TTL is the idle timeout: {ttl}"
    );

    // An absolute lifetime caps the TTL.
    let short = POLICY.with_absolute(Duration::from_secs(60));
    let capped = create(&store, &short).await;
    let ttl: i64 = con.pttl(store.key(&capped)).unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

    // Deleting every user key keeps the session (and its TTL); regenerating
    // moves it; destroying leaves nothing.
    session.del_many(&["user", "cart"]).await.unwrap();
    assert_every_key_expires(&mut con);
    session.regenerate().await.unwrap();
    let moved = session.id().unwrap();
    assert_ne!(moved, id);
    assert!(!con.exists::<_, bool>(&key).unwrap());
    assert_every_key_expires(&mut con);
    session.destroy().await.unwrap();
    store.del_all(&capped).await.unwrap();
    assert_eq!(
        all_keys(&mut con),
        Vec::<String>::new(),
        "destroy leaves nothing"
    );
}

#[tokio::test]
async fn strict_writes_and_expiry_leave_no_key_without_ttl() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let short = ExpiryPolicy::idle(Duration::from_millis(300));
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = create(&store, &short).await;
        ids.push(id);
    }
    for id in &ids {
        let changes = vec![("b".to_string(), Some(b"2".to_vec())), ("a".into(), None)];
        let _ = store
            .set_many(id, &changes, WriteMode::Existing, &short)
            .await
            .unwrap();
        store.del(id, "b", &short).await.unwrap();
        assert_every_key_expires(&mut con);
    }
    // Writes that must find a session never make a key, live or not.
    for _ in 0..20 {
        let outcome = store
            .set(
                &SessionId::generate("session:"),
                "a",
                b"1",
                WriteMode::Existing,
                &POLICY,
            )
            .await
            .unwrap();
        assert_eq!(outcome, session_core::WriteOutcome::NoSession);
    }
    assert_every_key_expires(&mut con);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(all_keys(&mut con), Vec::<String>::new(), "all expired");
}

#[tokio::test]
async fn changes_apply_in_order_and_huge_timeouts_are_capped() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let id = SessionId::generate("session:");
    let changes = vec![
        ("a".to_string(), None),
        ("a".to_string(), Some(b"1".to_vec())),
        ("b".to_string(), Some(b"2".to_vec())),
        ("b".to_string(), None),
    ];
    let _ = store
        .set_many(&id, &changes, WriteMode::Create, &POLICY)
        .await
        .unwrap();
    assert_eq!(
        store.get_many(&id, &["a", "b"], &POLICY).await.unwrap(),
        vec![Some(b"1".to_vec()), None],
        "the last change of each key wins"
    );

    // "Never idle out" still gives every key a TTL, and reads keep the session.
    let forever = ExpiryPolicy::idle(Duration::MAX).with_absolute(Duration::MAX);
    for policy in [ExpiryPolicy::idle(Duration::MAX), forever] {
        let id = create(&store, &policy).await;
        assert_eq!(
            store.get(&id, "a", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
        assert!(store.extend(&id, &policy).await.unwrap());
        assert!(store.del(&id, "zz", &policy).await.unwrap());
    }
    assert_every_key_expires(&mut con);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let mut server = RedisServer::start();
    let timeout = Duration::from_millis(500);
    let store = RedisStore::builder()
        .url(server.url())
        .response_timeout(timeout)
        .build()
        .await
        .unwrap();
    let id = create(&store, &POLICY).await;

    server.stop();
    let mut took_each = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        let error = if i % 2 == 0 {
            store.get(&id, "a", &POLICY).await.unwrap_err()
        } else {
            store
                .set(&id, "a", b"2", WriteMode::Existing, &POLICY)
                .await
                .unwrap_err()
        };
        let took = started.elapsed();
        assert!(error.is_unavailable(), "{error:?}");
        // "Within the response timeout": a hang would take seconds, not this.
        assert!(
            took < timeout + Duration::from_millis(500),
            "failed after {took:?}"
        );
        took_each.push(took);
    }

    server.restart();
    let restarted = Instant::now();
    let fresh = SessionId::generate("session:");
    let mut failures = 0;
    loop {
        match store
            .set(&fresh, "b", b"1", WriteMode::Create, &POLICY)
            .await
        {
            Ok(_) => break,
            Err(error) => {
                assert!(error.is_unavailable(), "{error:?}");
                failures += 1;
            }
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(2),
            "still failing {:?} after the restart",
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = restarted.elapsed();
    assert_eq!(
        store.get(&fresh, "b", &POLICY).await.unwrap(),
        Some(b"1".to_vec())
    );
    // The restarted server kept nothing (no persistence): the old session is gone, not revived.
    assert_eq!(store.get(&id, "a", &POLICY).await.unwrap(), None);
    eprintln!(
        "outage: failing operations took {took_each:?} (timeout {timeout:?}); \
         recovery: first success {recovered:?} after the restart, {failures} failures before it"
    );
}

/// Owned sessions: every key they write expires, and listing, revoking,
/// capping and logging out never run `SCAN` or `KEYS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_sessions_keep_every_key_expiring_and_never_scan() {
    for activity_index in [false, true] {
        let server = RedisServer::start();
        let store = RedisStore::builder()
            .url(server.url())
            .activity_index(activity_index)
            .build()
            .await
            .unwrap();
        owned::check(&store, &mut [server.connection()], activity_index).await;
    }
}

/// With the activity index, each session script keeps it, and it empties
/// itself as sessions end; clearing the store removes it.
#[tokio::test]
async fn the_activity_index_follows_the_sessions() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .activity_index(true)
        .build()
        .await
        .unwrap();
    let mut con = server.connection();
    let id = create(&store, &POLICY).await;
    let mut keys = all_keys(&mut con);
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "session:active".to_string(),
            "session:deadlines".to_string(),
            store.key(&id)
        ]
    );
    assert_every_key_expires(&mut con);
    store.del_all(&id).await.unwrap();
    assert_eq!(
        all_keys(&mut con),
        Vec::<String>::new(),
        "destroy leaves nothing"
    );
    let _ = create(&store, &POLICY).await;
    assert_eq!(store.destroy_all().await.unwrap(), 1);
    assert_eq!(all_keys(&mut con), Vec::<String>::new());
}

#[tokio::test]
async fn store_wide_access_scans_in_batches() {
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .scan_count(7)
        .build()
        .await
        .unwrap();
    let mut con = server.connection();
    let mut created = HashSet::new();
    for i in 0..120 {
        // Ids with and without an id prefix.
        let id = SessionId::generate(if i % 2 == 0 { "session:" } else { "" });
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
        created.insert(id);
    }
    // Keys that are not sessions of this store.
    let () = con.set("unrelated", "x").unwrap();
    let () = con.set("session:{not-a-session}", "x").unwrap();
    let () = con.set("session:plain", "x").unwrap();

    assert_eq!(store.len().await.unwrap(), 120);
    assert!(!store.is_empty().await.unwrap());
    // Listed by handle, never by id (the id walk itself, in `SCAN`
    // batches, is tested inside the crate: src/scan.rs).
    let mut seen = HashSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .active_page(Duration::MAX, cursor.as_deref(), 7)
            .await
            .unwrap();
        seen.extend(page.sessions.into_iter().map(|info| info.handle));
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let handles: HashSet<_> = created.iter().map(Handle::of).collect();
    assert_eq!(seen, handles);
    assert!(pages > 5, "listed in pages, not one sweep: {pages}");
    for id in &created {
        assert!(store.get(id, "n", &POLICY).await.unwrap().is_some());
    }

    // Another prefix is another store.
    let other = RedisStore::builder()
        .url(server.url())
        .prefix("other*app:")
        .build()
        .await
        .unwrap();
    let id = SessionId::generate("");
    let _ = other
        .set(&id, "k", b"v", WriteMode::Create, &POLICY)
        .await
        .unwrap();
    assert_eq!(other.len().await.unwrap(), 1);

    assert_eq!(store.destroy_all().await.unwrap(), 120);
    assert_eq!(store.len().await.unwrap(), 0);
    assert!(store.is_empty().await.unwrap());
    let mut left: Vec<String> = all_keys(&mut con);
    left.sort();
    assert_eq!(
        left,
        vec![
            format!("other*app:{{{}}}", id.as_str()),
            "session:plain".to_string(),
            "session:{not-a-session}".to_string(),
            "unrelated".to_string(),
        ]
    );
}

#[tokio::test]
async fn password_and_database_options_are_used() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let refused = RedisStore::builder().url(server.url()).build().await;
    assert!(
        matches!(refused, Err(store_redis::Error::Connect(_))),
        "{refused:?}"
    );
    let store = RedisStore::builder()
        .url(server.url())
        .password("s3cret")
        .database(3)
        .build()
        .await
        .unwrap();
    let id = create(&store, &POLICY).await;
    let mut con = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/3", server.port()))
        .unwrap()
        .get_connection()
        .unwrap();
    assert!(
        con.exists::<_, bool>(store.key(&id)).unwrap(),
        "in database 3"
    );
    let () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    assert_eq!(
        all_keys(&mut con),
        Vec::<String>::new(),
        "not in database 0"
    );
    // Host and port given apart override the URL's.
    let split = RedisStore::builder()
        .url("redis://:s3cret@example.invalid:1/3")
        .host("127.0.0.1")
        .port(server.port())
        .build()
        .await
        .unwrap();
    assert_eq!(
        split.get(&id, "a", &POLICY).await.unwrap(),
        Some(b"1".to_vec())
    );
}

#[tokio::test]
async fn acl_username_is_used() {
    let server = RedisServer::start_with(&["--user", "alice", "on", ">pw", "~*", "+@all"]);
    let wrong = RedisStore::builder()
        .url(server.url())
        .username("alice")
        .password("not-pw")
        .build()
        .await;
    assert!(
        matches!(wrong, Err(store_redis::Error::Connect(_))),
        "{wrong:?}"
    );
    let store = RedisStore::builder()
        .url(server.url())
        .username("alice")
        .password("pw")
        .build()
        .await
        .unwrap();
    create(&store, &POLICY).await;
    let mut con = server.connection();
    // The store's own connection is there, logged in as alice.
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(clients.contains("user=alice"), "{clients}");
}

/// A build failure converts to session-core's error as every store's does:
/// `Open`, with the store's error as its source.
#[tokio::test]
async fn build_errors_convert_with_their_source() {
    let error = RedisStore::builder()
        .url("ftp://127.0.0.1:6379")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, store_redis::Error::Config(_)), "{error:?}");
    let error = session_core::Error::from(error);
    assert!(matches!(error, session_core::Error::Open(_)), "{error:?}");
    assert!(!error.is_unavailable());
    assert_eq!(error.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let source = std::error::Error::source(&error).expect("the store error kept");
    assert!(source.is::<store_redis::Error>(), "{source:?}");
}

#[tokio::test]
async fn bad_options_are_typed_errors() {
    let config = |result: Result<RedisStore, store_redis::Error>| {
        matches!(result, Err(store_redis::Error::Config(_)))
    };
    assert!(config(RedisStore::builder().url("not a url").build().await));
    assert!(config(RedisStore::builder().prefix("a{b}").build().await));
    assert!(config(RedisStore::builder().scan_count(0).build().await));
    assert!(config(
        RedisStore::builder()
            .owned_lifetime(Duration::from_micros(999))
            .build()
            .await
    ));
    assert!(config(
        RedisStore::builder()
            .response_timeout(Duration::ZERO)
            .build()
            .await
    ));
    // Nothing listens on a port that was just free: refused at once, not hung.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let result = RedisStore::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .build()
        .await;
    assert!(
        matches!(result, Err(store_redis::Error::Connect(_))),
        "{result:?}"
    );
    let error: session_core::Error = result.unwrap_err().into();
    assert!(error.is_unavailable());
    // The store's error, whole, then the driver's.
    let source = std::error::Error::source(&error).expect("the store error kept");
    assert!(source.is::<store_redis::Error>(), "{source:?}");
    assert!(source.source().is_some(), "the driver error kept");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A password, in the URL or given apart, never shows: not in the store's
/// or the builder's `Debug`, not in the error for a wrong one.
#[tokio::test]
async fn passwords_never_show_in_debug_or_errors() {
    const SECRET: &str = "hunter2-redis-password";
    let server = RedisServer::start_with(&["--requirepass", SECRET]);
    let url = format!("redis://:{SECRET}@127.0.0.1:{}", server.port());
    let builder = RedisStore::builder().url(&url);
    let shown = format!("{builder:?}");
    let store = builder.build().await.unwrap();
    let policy = ExpiryPolicy::idle(Duration::from_secs(60));
    let id = SessionId::generate("s:");
    let changes = [("k".to_string(), Some(b"v".to_vec()))];
    let outcome = store
        .set_many(&id, &changes, WriteMode::Create, &policy)
        .await
        .unwrap();
    assert_eq!(outcome, session_core::WriteOutcome::Applied);
    let apart = RedisStore::builder()
        .url(format!("redis://127.0.0.1:{}", server.port()))
        .password(SECRET);
    let wrong = RedisStore::builder()
        .url(format!(
            "redis://:{SECRET}-wrong@127.0.0.1:{}",
            server.port()
        ))
        .build()
        .await
        .expect_err("a wrong password is refused");
    let texts = [
        shown,
        format!("{store:?}"),
        format!("{apart:?}"),
        format!("{wrong} {wrong:?}"),
    ];
    for text in texts {
        assert!(!text.contains(SECRET), "{text}");
    }
}

/// Take, compare-and-set and increment are one script call each, a single
/// round trip, whatever they find: never a read followed by a write.
#[tokio::test]
async fn atomic_operations_are_one_script_call_each() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let id = create(&store, &POLICY).await;
    // Load the scripts first: a NOSCRIPT answer costs one more call.
    store.take(&id, "t", &POLICY).await.unwrap();
    let _ = store
        .compare_and_set(&id, "c", None, None, WriteMode::Existing, &POLICY)
        .await
        .unwrap();
    store
        .increment(&id, "n", 0, WriteMode::Existing, &POLICY)
        .await
        .unwrap();
    let before = calls(&mut con, "evalsha");
    let hincrby = calls(&mut con, "hincrby");
    for round in 0..10 {
        store.take(&id, "a", &POLICY).await.unwrap();
        let _ = store
            .compare_and_set(&id, "c", None, Some(b"1"), WriteMode::Existing, &POLICY)
            .await
            .unwrap();
        assert_eq!(
            store
                .increment(&id, "n", 1, WriteMode::Existing, &POLICY)
                .await
                .unwrap(),
            Some(round + 1)
        );
    }
    assert_eq!(calls(&mut con, "evalsha") - before, 30);
    assert_eq!(
        calls(&mut con, "hincrby") - hincrby,
        10,
        "the sum is Redis's own"
    );
    for command in ["multi", "exec", "watch", "eval"] {
        assert_eq!(calls(&mut con, command), 0, "{command} ran");
    }
}

/// A server error inside the increment script (here: out of memory) is
/// the server's, never "not an integer", and changes nothing.
#[tokio::test]
async fn an_increment_refused_by_the_server_is_not_the_clients_fault() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let id = create(&store, &POLICY).await;
    let mut con = server.connection();
    let mut maxmemory = |bytes: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query(&mut con)
            .unwrap();
    };
    maxmemory("1");
    let refused = store
        .increment(&id, "a", 1, WriteMode::Existing, &POLICY)
        .await;
    maxmemory("0");
    let err = refused.unwrap_err();
    assert!(
        !err.is_invalid_input() && !matches!(err, session_core::Error::NotAnInteger),
        "{err:?}"
    );
    assert_eq!(
        store.get(&id, "a", &POLICY).await.unwrap(),
        Some(b"1".to_vec())
    );
}

/// Inside the touch granularity a read is one plain command, not a script.
/// Its count is in this process's `info` at once and in the hash within
/// about a second; a session destroyed elsewhere reads as gone; a new
/// lifetime, or `plain_reads(0)`, sends reads back to the script.
#[tokio::test]
async fn reads_inside_the_granularity_are_one_plain_command() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let id = create(&store, &policy).await;
    // The first read is the script, which answers that no refresh is due.
    assert_eq!(
        store.get(&id, "a", &policy).await.unwrap(),
        Some(b"1".to_vec())
    );
    let commands = ["evalsha", "hget", "hmget", "hgetall"];
    let before = commands.map(|command| calls(&mut con, command));
    for _ in 0..10 {
        assert_eq!(
            store.get(&id, "a", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            store.get_many(&id, &["a", "b"], &policy).await.unwrap(),
            vec![Some(b"1".to_vec()), None]
        );
        assert_eq!(store.get_all(&id, &policy).await.unwrap().len(), 1);
    }
    let after = commands.map(|command| calls(&mut con, command));
    let sent: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(sent, [0, 10, 10, 10], "{commands:?}");

    assert_eq!(store.info(&id).await.unwrap().unwrap().reads, 31);
    let stored_reads = |con: &mut redis::Connection| -> u64 {
        let reads: Option<u64> = con.hget(store.key(&id), b"\xffreads").unwrap();
        reads.unwrap_or(0)
    };
    let flushed_by = Instant::now() + Duration::from_secs(5);
    while stored_reads(&mut con) < 31 && Instant::now() < flushed_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_reads(&mut con), 31);
    assert_eq!(
        store.info(&id).await.unwrap().unwrap().reads,
        31,
        "flushed reads are not counted twice"
    );

    // A new lifetime: the next read asks the script again.
    store
        .set_lifetime(&id, Duration::from_secs(600), &policy)
        .await
        .unwrap();
    let evalsha = calls(&mut con, "evalsha");
    store.get(&id, "a", &policy).await.unwrap();
    assert_eq!(calls(&mut con, "evalsha") - evalsha, 1);

    // Destroyed by another process: the plain read finds nothing.
    let other = self::store(&server).await;
    other.del_all(&id).await.unwrap();
    let hget = calls(&mut con, "hget");
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert_eq!(calls(&mut con, "hget") - hget, 1);

    // Without the plain path every read is the script.
    let scripted = RedisStore::builder()
        .url(server.url())
        .plain_reads(0)
        .build()
        .await
        .unwrap();
    let id = create(&scripted, &policy).await;
    let evalsha = calls(&mut con, "evalsha");
    for _ in 0..5 {
        scripted.get(&id, "a", &policy).await.unwrap();
    }
    assert_eq!(calls(&mut con, "evalsha") - evalsha, 5);
    assert_eq!(scripted.info(&id).await.unwrap().unwrap().reads, 5);
}

/// A session whose own idle timeout another process shortens stays alive
/// while this one reads it: this one serves reads with a plain command,
/// sliding nothing, until the refresh its last read script said was due
/// (up to 4 s here, the touch granularity), so the shorter timeout leaves
/// the session that long once. Read by the script from then on, it ends
/// the new timeout after its last read.
#[tokio::test]
async fn a_timeout_shortened_elsewhere_outlasts_the_plain_reads_it_allowed() {
    let server = RedisServer::start();
    let (store, other) = (store(&server).await, store(&server).await);
    let policy = POLICY.with_touch_after(Duration::from_secs(4));
    let id = create(&store, &policy).await;
    // The script read: no refresh due for up to 4 s.
    store.get(&id, "a", &policy).await.unwrap();
    lifetime::outlasts_the_plain_reads(&store, &other, &id, &policy).await;
}

/// The time a shorter timeout leaves for other processes' plain reads is
/// `touch_after`, whatever the timeout was before (a second shortening
/// gets it too), and never more than the session had left, nor past its
/// absolute lifetime; a longer timeout gets none.
#[tokio::test]
async fn a_shorter_timeouts_grace_stays_within_the_sessions_limits() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let policy = POLICY.with_touch_after(Duration::from_secs(4));
    let id = create(&store, &policy).await;
    let lifetime = |idle| store.set_lifetime(&id, Duration::from_secs(idle), &policy);
    let ttl = lifetime(3).await.unwrap().expect("alive");
    assert!(
        ttl > Duration::from_secs(6) && ttl <= Duration::from_secs(7),
        "{ttl:?}"
    );
    let ttl = lifetime(2).await.unwrap().expect("alive");
    assert!(
        ttl > Duration::from_secs(5) && ttl <= Duration::from_secs(6),
        "again: {ttl:?}"
    );
    let ttl = lifetime(7200).await.unwrap().expect("alive");
    assert!(
        ttl > Duration::from_secs(7190) && ttl <= Duration::from_secs(7200),
        "longer: {ttl:?}"
    );

    let bounded = policy.with_absolute(Duration::from_secs(5));
    let id = create(&store, &bounded).await;
    let ttl = store
        .set_lifetime(&id, Duration::from_secs(3), &bounded)
        .await
        .unwrap()
        .expect("alive");
    assert!(
        ttl > Duration::from_secs(3) && ttl <= Duration::from_secs(5),
        "absolute: {ttl:?}"
    );
}

/// A hash whose expiry something else set past the session's absolute
/// lifetime (a Node app's touch on the connect-redis layout, or a store
/// whose absolute lifetime was shortened since) is cut to it by the next
/// read script: the plain reads that script allows find nothing once the
/// lifetime is over, as another process's script reads do.
#[tokio::test]
async fn a_hash_set_to_outlive_its_absolute_lifetime_ends_with_it() {
    let server = RedisServer::start();
    let (store, other) = (store(&server).await, store(&server).await);
    let mut con = server.connection();
    let policy = ExpiryPolicy::idle(Duration::from_secs(600))
        .with_absolute(Duration::from_secs(2))
        .with_touch_after(Duration::from_secs(60));
    let id = create(&store, &policy).await;
    let stretched: i64 = redis::cmd("PEXPIRE")
        .arg(store.key(&id))
        .arg(600_000)
        .query(&mut con)
        .unwrap();
    assert_eq!(stretched, 1);
    assert_eq!(
        store.get(&id, "a", &policy).await.unwrap(),
        Some(b"1".to_vec())
    );
    let ttl: i64 = con.pttl(store.key(&id)).unwrap();
    assert!(
        ttl > 0 && ttl <= 2000,
        "PTTL {ttl} past the absolute lifetime"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    assert_eq!(other.get(&id, "a", &policy).await.unwrap(), None);
}

/// `info` counts each read once while the background pass writes this
/// process's counts out: not twice (in the hash's counter and still
/// pending here), nor not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_counts_each_read_once_while_counts_go_out() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let id = create(&store, &policy).await;
    let mut reads = 0;
    // Five passes, about one a second (without the care, one run of three
    // of 3.5 s counted a second's reads twice).
    let until = Instant::now() + Duration::from_millis(5500);
    while Instant::now() < until {
        store.get(&id, "a", &policy).await.unwrap();
        reads += 1;
        let info = store.info(&id).await.unwrap().expect("alive");
        assert_eq!(info.reads, reads, "after {reads} reads");
    }
}

/// The reads of many sessions, each read once plainly, go out in a few
/// script calls, not one per session, and cost Redis two commands for each
/// session that has a count already (a read and a write); a session gone
/// meanwhile (expired, or deleted by hand) stays gone, and the others'
/// counts are exact.
#[tokio::test]
async fn pending_reads_of_many_sessions_go_out_in_batches() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let mut ids = Vec::new();
    for _ in 0..150 {
        let id = create(&store, &policy).await;
        // The script read: it counts one and says no refresh is due.
        store.get(&id, "a", &policy).await.unwrap();
        ids.push(id);
    }
    let flush_commands = ["hmget", "hset", "exists"];
    let before = flush_commands.map(|command| calls(&mut con, command));
    let evalsha = calls(&mut con, "evalsha");
    for id in &ids {
        assert_eq!(
            store.get(id, "a", &policy).await.unwrap(),
            Some(b"1".to_vec())
        );
    }
    let (gone, kept) = ids.split_at(10);
    for id in gone {
        let _: () = con.del(store.key(id)).unwrap();
    }
    let stored_reads = |con: &mut redis::Connection, id: &SessionId| -> u64 {
        let reads: Option<u64> = con.hget(store.key(id), b"\xffreads").unwrap();
        reads.unwrap_or(0)
    };
    let flushed_by = Instant::now() + Duration::from_secs(5);
    while (kept.iter().any(|id| stored_reads(&mut con, id) < 2)
        || calls(&mut con, "hset") - before[1] < kept.len() as u64)
        && Instant::now() < flushed_by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two passes at most met those reads, each in three calls of 64.
    let flushes = calls(&mut con, "evalsha") - evalsha;
    assert!(flushes <= 6, "{flushes} script calls flushed 150 sessions");
    // One HMGET and one HSET each. Only a session with no count is looked
    // for: a gone session, if the flush came after the deletes above.
    let [hmget, hset, exists] = flush_commands.map(|command| calls(&mut con, command));
    assert_eq!(hmget - before[0], 150);
    // Then an HSET, or for a gone session an EXISTS instead.
    assert_eq!((hset - before[1]) + (exists - before[2]), 150);
    assert!(
        exists - before[2] <= gone.len() as u64,
        "{} EXISTS",
        exists - before[2]
    );
    for id in kept {
        assert_eq!(stored_reads(&mut con, id), 2);
        assert_eq!(store.info(id).await.unwrap().unwrap().reads, 2);
    }
    for id in gone {
        let exists: bool = con.exists(store.key(id)).unwrap();
        assert!(!exists, "a flush brought back a destroyed session");
        assert!(store.info(id).await.unwrap().is_none());
    }
}

/// Reads served plainly under the old id count for the new one after a
/// regenerate, and a destroy forgets them.
#[tokio::test]
async fn plain_reads_follow_a_regenerate() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let id = create(&store, &policy).await;
    for _ in 0..4 {
        store.get(&id, "a", &policy).await.unwrap();
    }
    let to = SessionId::generate("session:");
    assert!(store.regenerate(&id, &to, &policy).await.unwrap());
    assert!(store.info(&id).await.unwrap().is_none());
    assert_eq!(store.info(&to).await.unwrap().unwrap().reads, 4);
    assert_eq!(store.get(&id, "a", &policy).await.unwrap(), None);
    store.del_all(&to).await.unwrap();
    assert!(store.info(&to).await.unwrap().is_none());
}

/// A read due a refresh while the session's deadline is far off is one
/// plain command: the background flush slides the expiry as of that read,
/// within about a second, and counts it; `info` sees the slide at once.
/// Near the deadline, or with the activity index, the read is the script.
#[tokio::test]
async fn a_read_due_a_refresh_far_from_the_deadline_leaves_it_to_the_flush() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let idle = Duration::from_secs(60);
    let policy = ExpiryPolicy::idle(idle).with_touch_after(Duration::from_secs(1));
    let id = create(&store, &policy).await;
    let pttl = |con: &mut redis::Connection| -> Duration {
        let ms: u64 = con.pttl(store.key(&id)).unwrap();
        Duration::from_millis(ms)
    };
    // The script read: no refresh due for a second.
    store.get(&id, "a", &policy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let hget = calls(&mut con, "hget");
    let read = Instant::now();
    assert_eq!(
        store.get(&id, "a", &policy).await.unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(calls(&mut con, "hget") - hget, 1, "a plain read");
    // Slid by the flush, as of the read: no sooner, and no later.
    let slid_by = Instant::now() + Duration::from_secs(5);
    while pttl(&mut con) + read.elapsed() + Duration::from_millis(500) < idle
        && Instant::now() < slid_by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (left, since) = (pttl(&mut con), read.elapsed());
    assert!(
        left + since + Duration::from_millis(500) >= idle,
        "not slid: {left:?} left {since:?} after the read"
    );
    assert!(left <= idle, "slid past the idle timeout: {left:?}");
    // Counted in the hash, by the same script.
    let reads: Option<u64> = con.hget(store.key(&id), b"\xffreads").unwrap();
    assert_eq!(reads, Some(2));

    // Once more, and `info` at once: it writes the refresh out first.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let hget = calls(&mut con, "hget");
    let read = Instant::now();
    store.get(&id, "a", &policy).await.unwrap();
    assert_eq!(calls(&mut con, "hget") - hget, 1, "a plain read");
    let info = store.info(&id).await.unwrap().unwrap();
    assert!(
        info.ttl + read.elapsed() + Duration::from_millis(500) >= idle,
        "info missed the slide: {:?} left",
        info.ttl
    );
    assert_eq!(info.reads, 3);

    // Near the deadline the read slides the session itself.
    let near = ExpiryPolicy::idle(Duration::from_secs(6)).with_touch_after(Duration::from_secs(1));
    let id = create(&store, &near).await;
    store.get(&id, "a", &near).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (hget, evalsha) = (calls(&mut con, "hget"), calls(&mut con, "evalsha"));
    store.get(&id, "a", &near).await.unwrap();
    assert_eq!(
        calls(&mut con, "hget") - hget,
        0,
        "the script, near the deadline"
    );
    assert!(calls(&mut con, "evalsha") > evalsha);

    // So does a store that keeps the activity index.
    let indexed = RedisStore::builder()
        .url(server.url())
        .activity_index(true)
        .build()
        .await
        .unwrap();
    let id = create(&indexed, &policy).await;
    indexed.get(&id, "a", &policy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let hget = calls(&mut con, "hget");
    indexed.get(&id, "a", &policy).await.unwrap();
    assert_eq!(
        calls(&mut con, "hget") - hget,
        0,
        "the script, with the index"
    );
}

/// `flush` writes out at once the refreshes reads left for later; a session
/// whose key stopped being a session's (Redis refuses the script) is
/// dropped alone, and the others of its batch are refreshed.
#[tokio::test]
async fn flush_writes_refreshes_out_and_one_refused_holds_up_no_other() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let idle = Duration::from_secs(60);
    let policy = ExpiryPolicy::idle(idle).with_touch_after(Duration::from_secs(1));
    let (good, bad) = (create(&store, &policy).await, create(&store, &policy).await);
    for id in [&good, &bad] {
        store.get(id, "a", &policy).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let hget = calls(&mut con, "hget");
    let read = Instant::now();
    for id in [&good, &bad] {
        store.get(id, "a", &policy).await.unwrap();
    }
    assert_eq!(calls(&mut con, "hget") - hget, 2, "plain reads");
    let _: () = con.set(store.key(&bad), "not a session").unwrap();
    // The trait's `flush`, which a server holding a `dyn Store` calls.
    session_core::Store::flush(&store).await.unwrap();
    // Whether the background pass or `flush` wrote it out, it is out now.
    let left: u64 = con.pttl(store.key(&good)).unwrap();
    let since = read.elapsed();
    assert!(
        Duration::from_millis(left) + since + Duration::from_millis(500) >= idle,
        "not slid by flush: {left} ms left {since:?} after the read"
    );
    let reads: Option<u64> = con.hget(store.key(&good), b"\xffreads").unwrap();
    assert_eq!(reads, Some(2));
    let kept: String = con.get(store.key(&bad)).unwrap();
    assert_eq!(kept, "not a session", "a refused refresh changes nothing");
    store.flush().await.unwrap();
}

/// A flush whose call got no answer in time, but which Redis ran after
/// all, is not counted twice when it goes out again: whether it is about
/// counts alone or refreshes too, and while Redis holds the calls back
/// several flushes long. Reads counted meanwhile go out with the next
/// `flush`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_whose_flush_got_no_answer_are_counted_once() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    // Counts alone: reads within the granularity. Refreshes: reads past it,
    // far from the deadline.
    let counted = POLICY.with_touch_after(Duration::from_secs(60));
    let refreshed =
        ExpiryPolicy::idle(Duration::from_secs(600)).with_touch_after(Duration::from_secs(1));
    let (a, b) = (
        create(&store, &counted).await,
        create(&store, &refreshed).await,
    );
    for (id, policy) in [(&a, &counted), (&b, &refreshed)] {
        // The script read: one counted, and the session known fresh.
        store.get(id, "a", policy).await.unwrap();
    }
    // A round of plain reads whose flush loads the scripts (else the call
    // that gets no answer below would be the script's loading, which
    // writes nothing).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (id, policy) in [(&a, &counted), (&b, &refreshed)] {
        store.get(id, "a", policy).await.unwrap();
    }
    store.flush().await.unwrap();
    let mut expected = 2;
    let mut tries = 0;
    let read = loop {
        // Past the granularity again, so that b's reads leave a refresh.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for (id, policy) in [(&a, &counted), (&b, &refreshed)] {
            for _ in 0..2 {
                store.get(id, "a", policy).await.unwrap();
            }
        }
        expected += 2;
        let read = Instant::now();
        // Scripts wait while clients are paused for writes (and so does all
        // that follows them on the store's one connection).
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(1500)
            .arg("WRITE")
            .query(&mut con)
            .unwrap();
        match store.flush().await {
            // One session's or both: a background pass may have sent the
            // other's just before the pause.
            Err(error) => {
                assert!(
                    error.to_string().contains("could not be written out"),
                    "{error}"
                );
                break read;
            }
            // The background pass wrote them out just before the pause:
            // once the pause is over, again.
            Ok(()) => {
                tries += 1;
                assert!(
                    tries < 3,
                    "the background pass beat the pause {tries} times"
                );
                tokio::time::sleep(Duration::from_millis(1600)).await;
            }
        }
    };
    let stored_reads = |con: &mut redis::Connection, id: &SessionId| -> u64 {
        let reads: Option<u64> = con.hget(store.key(id), b"\xffreads").unwrap();
        reads.unwrap_or(0)
    };
    // Once the pause is over, more reads, while the doubts may still be
    // there (unless a background pass settled them first): `flush` writes
    // them out too.
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(read.elapsed())).await;
    for _ in 0..2 {
        store.get(&a, "a", &counted).await.unwrap();
    }
    let settled_by = Instant::now() + Duration::from_secs(10);
    loop {
        // Background passes run meanwhile too, sending the same again.
        match store.flush().await {
            Ok(()) => break,
            Err(_) if Instant::now() < settled_by => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("still not written out: {error}"),
        }
    }
    assert_eq!(stored_reads(&mut con, &a), expected + 2, "each read once");
    assert_eq!(stored_reads(&mut con, &b), expected, "each read once");
    for (id, policy) in [(&a, &counted), (&b, &refreshed)] {
        let info = store.info(id).await.unwrap().unwrap();
        assert_eq!(info.reads, stored_reads(&mut con, id), "{policy:?}");
    }
    // The refresh landed, as of the last read: not the first read's
    // deadline, 1.1 s sooner.
    let left: u64 = con.pttl(store.key(&b)).unwrap();
    let since = read.elapsed();
    assert!(
        Duration::from_millis(left) + since + Duration::from_millis(500)
            >= Duration::from_secs(600),
        "{left} ms left {since:?} after the read"
    );
}

/// A count that one session's key refuses (it is no longer a hash) leaves
/// out that session alone: the others batched with it are counted once.
#[tokio::test]
async fn a_refused_count_holds_up_no_other_session() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut con = server.connection();
    let policy = POLICY.with_touch_after(Duration::from_secs(60));
    let ids = [
        create(&store, &policy).await,
        create(&store, &policy).await,
        create(&store, &policy).await,
    ];
    // The script read, then a plain one each: one count pending apiece.
    for id in &ids {
        store.get(id, "a", &policy).await.unwrap();
        store.get(id, "a", &policy).await.unwrap();
    }
    let _: () = con.set(store.key(&ids[1]), "not a session").unwrap();
    store.flush().await.unwrap();
    for id in [&ids[0], &ids[2]] {
        let reads: Option<u64> = con.hget(store.key(id), b"\xffreads").unwrap();
        assert_eq!(reads, Some(2), "counted once");
    }
    let kept: String = con.get(store.key(&ids[1])).unwrap();
    assert_eq!(kept, "not a session");
}
