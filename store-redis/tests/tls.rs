//! store-redis over TLS (feature `tls`), against a redis-server with a TLS
//! port and a certificate from a throwaway CA in `tests/tls/`.

#![cfg(feature = "tls")]

use std::time::Duration;

use redis_test_server::RedisServer;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode};
use store_redis::RedisStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(60));
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls");

#[tokio::test]
async fn tls_connects_and_checks_the_certificate() {
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let file = |name: &str| format!("{FIXTURES}/{name}");
    let _server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &file("server.crt"),
        "--tls-key-file",
        &file("server.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let ca = std::fs::read(file("ca.crt")).unwrap();

    let id = SessionId::generate("session:");
    let store = RedisStore::builder()
        .url(format!("rediss://localhost:{tls_port}"))
        .root_certificate(ca.clone())
        .build()
        .await
        .expect("connect over TLS");
    let _ = store
        .set(&id, "a", b"1", WriteMode::Create, &POLICY)
        .await
        .unwrap();

    // `tls(true)` turns a redis:// URL into a TLS connection.
    let switched = RedisStore::builder()
        .url(format!("redis://localhost:{tls_port}"))
        .tls(true)
        .root_certificate(ca)
        .build()
        .await
        .expect("connect over TLS");
    assert_eq!(
        switched.get(&id, "a", &POLICY).await.unwrap(),
        Some(b"1".to_vec())
    );

    // A certificate the client does not trust is refused.
    let untrusted = RedisStore::builder()
        .url(format!("rediss://localhost:{tls_port}"))
        .build()
        .await;
    assert!(
        matches!(untrusted, Err(store_redis::Error::Connect(_))),
        "{untrusted:?}"
    );
}
