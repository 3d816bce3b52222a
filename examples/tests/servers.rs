//! The shared HTTP-level suite, run against every example server binary as a
//! separate process, on every store: all of them must behave identically.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{check_routes, Browser, Server, SERVERS};
use http::StatusCode;
use redis_test_server::{RedisCluster, RedisServer};

#[test]
fn seed_client_talks_to_every_server() {
    for (name, binary) in SERVERS {
        let server = Server::start(binary, &["--insecure-cookies"]);
        let output = Command::new(env!("CARGO_BIN_EXE_client"))
            .args(["--url", &server.url])
            .output()
            .expect("run the client binary");
        assert!(
            output.status.success(),
            "{name}: client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "Set foo = bar\nFetched foo = bar\n",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_memory() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let server = Server::start(binary, &["--store", "memory", "--insecure-cookies"]);
        check_routes(&server.url, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_redb() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db").join("sessions.redb");
        let path = file.to_str().unwrap();
        let args = ["--store", "redb", "--redb-path", path, "--insecure-cookies"];
        let server = Server::start(binary, &args);
        check_routes(&server.url, None).await;
        assert!(
            file.exists(),
            "{name}: the database is where --redb-path says"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_sled() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let args = ["--store", "sled", "--sled-path", path, "--insecure-cookies"];
        let server = Server::start(binary, &args);
        check_routes(&server.url, None).await;
    }
}

/// On the embedded stores (redb, the default, in
/// `./session-data/sessions.redb`; and sled), sessions outlive the server,
/// even one killed with SIGKILL: every write was on disk before it was
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_sessions_across_a_kill_and_restart() {
    for store in [None, Some("sled")] {
        let mut args = vec!["--insecure-cookies"];
        args.extend(store.map(|store| ["--store", store]).into_iter().flatten());
        for (name, binary) in SERVERS {
            let mut server = Server::start(binary, &args);
            let browser = Browser::new(&server.url);
            browser.get("/set/user/ada").await;
            let cookie = browser.jar();
            server.restart(&args);
            let browser = Browser::with_jar(&server.url, cookie);
            let after = browser.get("/get/user").await;
            let store = store.unwrap_or("the default store");
            assert_eq!(
                after.body, "\"ada\"",
                "{name} on {store}: the session did not survive a restart"
            );
            assert_eq!(
                after.set_cookie, None,
                "{name} on {store}: the same cookie still works"
            );
        }
        if store.is_none() {
            // The default really is redb, in its default file.
            let server = Server::start(SERVERS[0].1, &args);
            assert!(server.cwd().join(store_redb::DEFAULT_PATH).exists());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_redis() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let mut redis = RedisServer::start();
        let url = redis.url();
        let args = [
            "--store",
            "redis",
            "--redis-url",
            &url,
            "--insecure-cookies",
        ];
        let server = Server::start(binary, &args);
        check_routes(&server.url, None).await;

        // With Redis down, session routes answer 503 and `/` still works.
        let browser = Browser::new(&server.url);
        browser.get("/set/foo/bar").await;
        redis.stop();
        let down = browser.get("/get/foo").await;
        assert_eq!(
            down.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            down.body
        );
        assert!(down.body.contains("unavailable"), "{name}: {}", down.body);
        assert_eq!(browser.get("/").await.status, StatusCode::OK, "{name}");
    }
}

/// The cluster is a store matter, not a framework one: one binary is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_a_redis_cluster() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .unwrap();
    let nodes = cluster.urls().join(",");
    let server = Server::start(
        SERVERS[0].1,
        &["--redis-cluster", &nodes, "--insecure-cookies"],
    );
    check_routes(&server.url, None).await;
}

/// Every server takes the timeout flags, and they work. The servers run side
/// by side, so this takes one idle timeout, not four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_expires_sessions_by_its_flags() {
    let idle: Vec<_> = SERVERS
        .iter()
        .map(|(_, binary)| Server::start(binary, &["--insecure-cookies", "--idle-timeout", "3"]))
        .collect();
    let absolute: Vec<_> = SERVERS
        .iter()
        .map(|(_, binary)| {
            Server::start(binary, &["--insecure-cookies", "--absolute-timeout", "2"])
        })
        .collect();
    let idle: Vec<_> = idle.iter().map(|s| Browser::new(&s.url)).collect();
    let absolute: Vec<_> = absolute.iter().map(|s| Browser::new(&s.url)).collect();
    for browser in idle.iter().chain(&absolute) {
        browser.get("/set/foo/bar").await;
        assert_eq!(browser.get("/get/foo").await.body, "\"bar\"");
    }
    // The absolute sessions stay in use, every 300 ms, past their 2 s; the
    // idle ones are left alone.
    let start = std::time::Instant::now();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for ((name, _), browser) in SERVERS.iter().zip(&absolute) {
            let body = browser.get("/get/foo").await.body;
            if start.elapsed() < Duration::from_millis(1200) {
                assert_eq!(
                    body, "\"bar\"",
                    "{name}: alive within its absolute lifetime"
                );
            }
        }
    }
    // At once after the last use: only the absolute lifetime can have ended it.
    for ((name, _), browser) in SERVERS.iter().zip(&absolute) {
        assert_eq!(
            browser.get("/get/foo").await.body,
            "null",
            "{name}: activity must not extend the absolute lifetime"
        );
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for ((name, _), browser) in SERVERS.iter().zip(&idle) {
        assert_eq!(
            browser.get("/get/foo").await.body,
            "null",
            "{name}: idle timeout"
        );
    }
}
