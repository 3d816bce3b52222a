//! Owned sessions on a real server or cluster, for the per-layout tests:
//! every key they write expires, and no listing path runs `SCAN` or `KEYS`.

use std::time::Duration;

use redis::Commands;
use session_core::{ExpiryPolicy, Handle, SessionId, Store, WriteMode, WriteOutcome};
use store_redis::RedisStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

async fn session(store: &RedisStore) -> SessionId {
    let id = SessionId::generate("session:");
    let outcome = store
        .set(&id, "cart", b"3", WriteMode::Create, &POLICY)
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Applied);
    id
}

/// Binds, lists, regenerates, revokes, caps and logs out on `store`, after
/// resetting the command statistics of `nodes`; then checks that no `SCAN`
/// or `KEYS` ran (nor for counting active sessions, with an activity index)
/// and that every key of every node has a TTL.
pub async fn check(store: &RedisStore, nodes: &mut [redis::Connection], activity_index: bool) {
    for node in nodes.iter_mut() {
        let () = redis::cmd("CONFIG").arg("RESETSTAT").query(node).unwrap();
    }
    let mut ada = Vec::new();
    for _ in 0..4 {
        let id = session(store).await;
        assert!(store.bind_owner(&id, "ada", None, &POLICY).await.unwrap());
        ada.push(id);
    }
    let bob = session(store).await;
    assert!(store.bind_owner(&bob, "bob", None, &POLICY).await.unwrap());
    let _plain = session(store).await;
    store.get(&ada[0], "cart", &POLICY).await.unwrap();

    let moved = SessionId::generate("session:");
    assert!(store.regenerate(&ada[3], &moved, &POLICY).await.unwrap());
    ada[3] = moved;
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 4);
    assert!(store.revoke("ada", &Handle::of(&ada[1])).await.unwrap());
    if activity_index {
        let active = store.count_active(Duration::from_secs(60)).await.unwrap();
        assert_eq!(active, 5);
        let page = store
            .active_page(Duration::from_secs(60), None, 100)
            .await
            .unwrap();
        assert_eq!(page.sessions.len(), 5);
    }
    let capped = session(store).await;
    assert!(store
        .bind_owner(&capped, "ada", Some(3), &POLICY)
        .await
        .unwrap());
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 3);
    assert_eq!(store.destroy_owner("ada", Some(&capped)).await.unwrap(), 2);
    assert_eq!(store.owner_sessions("ada").await.unwrap().len(), 1);
    assert!(store.info(&ada[0]).await.unwrap().is_none());

    let mut keys = 0;
    for node in nodes.iter_mut() {
        let stats: String = redis::cmd("INFO").arg("commandstats").query(node).unwrap();
        for command in ["cmdstat_scan:", "cmdstat_keys:"] {
            assert!(!stats.contains(command), "{command} ran: {stats}");
        }
        let all: Vec<String> = node.scan().unwrap().collect::<Result<_, _>>().unwrap();
        for key in all {
            let ttl: i64 = node.pttl(&key).unwrap();
            assert!(ttl > 0, "{key} has PTTL {ttl}");
            keys += 1;
        }
    }
    // The sessions (bob's, the plain one, ada's last), two owner indexes,
    // and with the activity index, at least one bucket's two.
    let indexes = if activity_index { 2 } else { 0 };
    assert!(keys >= 3 + 2 + indexes, "{keys} keys");
}
