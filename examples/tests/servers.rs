//! The shared HTTP-level suite, run against every example server binary as a
//! separate process, on every store: all of them must behave identically.

mod common;

use std::process::Command;
use std::time::Duration;

use common::node::Jar;
use common::{check_routes, lost_updates, Browser, Server, SERVERS};
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

/// `--cookie-name` names the cookie; a `__Host-` name with
/// `--insecure-cookies` breaks the prefix's rule, and the server refuses to
/// start and says which rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_takes_a_cookie_name_and_refuses_a_broken_prefix() {
    for (name, binary) in SERVERS {
        let output = Command::new(binary)
            .args([
                "--store",
                "memory",
                "--cookie-name",
                "__Host-s",
                "--insecure-cookies",
            ])
            .env("PORT", "0")
            .output()
            .expect("run the server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} started: {stderr}");
        assert!(
            stderr.contains("__Host-") && stderr.contains("Secure"),
            "{name}: {stderr}"
        );

        let server = Server::start(
            binary,
            &[
                "--store",
                "memory",
                "--insecure-cookies",
                "--cookie-name",
                "sid",
            ],
        );
        let browser = Browser::new(&server.url);
        let set = browser.get("/set/foo/bar").await;
        let cookie = set.set_cookie.expect("a cookie");
        assert!(cookie.starts_with("sid="), "{name}: {cookie}");
        assert_eq!(browser.get("/get/foo").await.body, "\"bar\"", "{name}");
    }
}

/// `--cookie-format keygrip|express` and `--allow-short-keys`, for sharing
/// sessions with Node apps (the cookies themselves are checked against the
/// npm packages in `node_cookies.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_takes_the_node_cookie_formats_and_short_keys_on_request() {
    for (name, binary) in SERVERS {
        let output = Command::new(binary)
            .args(["--store", "memory", "--insecure-cookies"])
            .env("PORT", "0")
            .env("SESSION_KEYS", "keyboard cat")
            .output()
            .expect("run the server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} started with a short key");
        assert!(stderr.contains("32"), "{name}: {stderr}");

        let keygrip = [
            "--store",
            "memory",
            "--insecure-cookies",
            "--cookie-format",
            "keygrip",
        ];
        let server = Server::start_with_keys(
            binary,
            &[&keygrip[..], &["--allow-short-keys"]].concat(),
            "keyboard cat",
        );
        let jar = Jar::default();
        let (status, _) = jar.get(&server.url, "/set/foo/bar").await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let names: Vec<String> = jar.cookies.lock().unwrap().keys().cloned().collect();
        assert_eq!(names, ["s", "s.sig"], "{name}");
        assert_eq!(jar.get(&server.url, "/get/foo").await.1, "bar", "{name}");
        jar.cookies.lock().unwrap().remove("s.sig");
        assert_eq!(
            jar.get(&server.url, "/get/foo").await.1,
            serde_json::Value::Null,
            "{name}: no signature, no session"
        );

        let server = Server::start(
            binary,
            &[
                "--store",
                "memory",
                "--insecure-cookies",
                "--cookie-format",
                "express",
            ],
        );
        let jar = Jar::default();
        jar.get(&server.url, "/set/foo/bar").await;
        let value = jar.cookies.lock().unwrap().get("connect.sid").cloned();
        assert!(value.is_some_and(|v| v.starts_with("s%3A")), "{name}");
        assert_eq!(jar.get(&server.url, "/get/foo").await.1, "bar", "{name}");
    }
}

/// `--redis-layout connect-redis`: each session one JSON string at
/// `sess:ID`, with bare ids, on every server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_takes_the_connect_redis_layout() {
    let redis = RedisServer::start();
    let url = redis.url();
    for (name, binary) in SERVERS {
        let server = Server::start(
            binary,
            &[
                "--store",
                "redis",
                "--redis-url",
                &url,
                "--redis-layout",
                "connect-redis",
                "--cookie-format",
                "express",
                "--insecure-cookies",
            ],
        );
        let jar = Jar::default();
        assert_eq!(
            jar.ok(&server.url, "/set/cart/apple").await,
            "apple",
            "{name}"
        );
        assert_eq!(jar.ok(&server.url, "/get/cart").await, "apple", "{name}");
        let cookie = jar.cookie("connect.sid").expect("a connect.sid cookie");
        let id = cookie
            .strip_prefix("s%3A")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(id, _)| id.to_owned())
            .expect("s:<id>.<signature>");
        let record: Option<String> = redis::cmd("GET")
            .arg(format!("sess:{id}"))
            .query(&mut redis.connection())
            .unwrap();
        let record: serde_json::Value =
            serde_json::from_str(&record.expect("the session at sess:<id>")).unwrap();
        assert_eq!(record["cart"], "apple", "{name}: {record}");
        assert_eq!(jar.ok(&server.url, "/destroy").await, true, "{name}");
        let gone: bool = redis::cmd("EXISTS")
            .arg(format!("sess:{id}"))
            .query(&mut redis.connection())
            .unwrap();
        assert!(!gone, "{name}");
    }
}

/// Slow-loris clients: a connection that does not finish its headers within
/// `--header-read-timeout` is closed, and at most `--max-connections` are
/// served at once, so a request waits while two silent clients hold both
/// slots and is answered once they are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_drops_slow_clients_and_caps_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let args = [
        "--store",
        "memory",
        "--insecure-cookies",
        "--header-read-timeout",
        "1",
        "--max-connections",
        "2",
    ];
    let servers: Vec<_> = SERVERS
        .iter()
        .map(|(name, binary)| (name, Server::start(binary, &args)))
        .collect();
    for (name, server) in &servers {
        let address = server.url.trim_start_matches("http://").to_string();
        let mut silent = Vec::new();
        for _ in 0..2 {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            silent.push(stream);
        }
        // Give the server a moment to take both into its two slots.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let browser = Browser::new(&server.url);
        let mut request = Box::pin(browser.get("/set/foo/bar"));
        let early = tokio::time::timeout(Duration::from_millis(300), &mut request).await;
        assert!(
            early.is_err(),
            "{name}: served a third connection while two held both slots"
        );
        // The silent ones are closed once the header timeout passes.
        for mut stream in silent {
            let mut buffer = [0u8; 1024];
            let closed = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => continue,
                    }
                }
            })
            .await;
            assert!(
                closed.is_ok(),
                "{name}: a client that never finished its headers was kept"
            );
        }
        let answer = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .unwrap_or_else(|_| panic!("{name}: the waiting request was never served"));
        assert_eq!(answer.body, "\"bar\"", "{name}");
    }
}

/// `--max-sessions-per-user 2`: a third login of one user ends that user's
/// least recently active session, and no one else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_caps_a_users_sessions_by_its_flag() {
    for (name, binary) in SERVERS {
        let args = [
            "--store",
            "memory",
            "--insecure-cookies",
            "--max-sessions-per-user",
            "2",
        ];
        let server = Server::start(binary, &args);
        let devices: Vec<Browser> = (0..3).map(|_| Browser::new(&server.url)).collect();
        let bob = Browser::new(&server.url);
        assert_eq!(bob.get("/login/bob").await.body, "true", "{name}");
        for device in &devices {
            assert_eq!(device.get("/login/ada").await.body, "true", "{name}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            devices[0].get("/sessions").await.status,
            StatusCode::UNAUTHORIZED,
            "{name}: the least recently active session ended"
        );
        let listed = common::sessions_of(&devices[2]).await;
        assert_eq!(listed.len(), 2, "{name}: {listed:?}");
        assert_eq!(common::sessions_of(&devices[1]).await.len(), 2, "{name}");
        assert_eq!(common::sessions_of(&bob).await.len(), 1, "{name}");
    }
}

/// `--max-keys-per-session` and `--max-session-bytes`: a write past either
/// answers 400 and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_caps_sessions_by_its_flags() {
    for (name, binary) in SERVERS {
        let args = [
            "--store",
            "memory",
            "--insecure-cookies",
            "--max-keys-per-session",
            "3",
            "--max-session-bytes",
            "100",
        ];
        let server = Server::start(binary, &args);
        let browser = Browser::new(&server.url);
        for key in ["a", "b", "c"] {
            assert_eq!(
                browser.get(&format!("/set/{key}/1")).await.status,
                StatusCode::OK,
                "{name}"
            );
        }
        let fourth = browser.get("/set/d/1").await;
        assert_eq!(
            fourth.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            fourth.body
        );
        assert!(fourth.body.contains("keys"), "{name}: {}", fourth.body);
        assert_eq!(browser.get("/get/d").await.body, "null", "{name}");
        // Within the key limit, past the bytes: refused, the old value kept.
        let big = browser.get(&format!("/set/a/{}", "x".repeat(120))).await;
        assert_eq!(big.status, StatusCode::BAD_REQUEST, "{name}: {}", big.body);
        assert_eq!(browser.get("/get/a").await.body, "\"1\"", "{name}");
        // Overwrites and deletes still work.
        assert_eq!(browser.get("/set/a/2").await.body, "\"2\"", "{name}");
        assert_eq!(browser.get("/del/c").await.body, "true", "{name}");
        assert_eq!(
            browser.get("/set/d/4").await.status,
            StatusCode::OK,
            "{name}"
        );
    }
}

/// `--memory-max-mb 1`: once the sessions hold more than 1 MiB, the least
/// recently used go; under the default bound (64 MiB) the same writes keep
/// every session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_bounds_store_memory_by_its_flag() {
    const SESSIONS: usize = 1_500;
    let value = "v".repeat(1_000);
    for (name, binary) in SERVERS {
        for bound in [Some("1"), None] {
            let mut args = vec!["--store", "memory", "--insecure-cookies"];
            args.extend(
                bound
                    .map(|mb| ["--memory-max-mb", mb])
                    .into_iter()
                    .flatten(),
            );
            let server = Server::start(binary, &args);
            // One client: each write starts a session of its own.
            let writer = Browser::new(&server.url);
            let mut cookies = Vec::with_capacity(SESSIONS);
            for _ in 0..SESSIONS {
                *writer.jar.lock().unwrap() = None;
                let set = writer.get(&format!("/set/k/{value}")).await;
                assert_eq!(set.status, StatusCode::OK, "{name}: {}", set.body);
                cookies.push(writer.jar().expect("a new session's cookie"));
            }
            let mut kept = 0;
            for cookie in cookies.iter().take(100) {
                let reader = Browser::with_jar(&server.url, Some(cookie.clone()));
                kept += usize::from(reader.get("/get/k").await.body != "null");
            }
            match bound {
                // About 1.5 MiB written: the oldest third or more is gone.
                Some(_) => assert!(
                    kept < 50,
                    "{name}: {kept} of the first 100 sessions kept under 1 MiB"
                ),
                None => assert_eq!(kept, 100, "{name}: sessions lost under the default bound"),
            }
        }
    }
}

/// `--redis-plain-reads 0`: every read runs the read script; by default,
/// reads of a session known to need no refresh are one plain `HGET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_takes_redis_plain_reads_by_its_flag() {
    for (name, binary) in SERVERS {
        for plain in [None, Some("0")] {
            let redis = RedisServer::start();
            let url = redis.url();
            let mut args = vec![
                "--store",
                "redis",
                "--redis-url",
                &url,
                "--insecure-cookies",
            ];
            args.extend(
                plain
                    .map(|n| ["--redis-plain-reads", n])
                    .into_iter()
                    .flatten(),
            );
            let server = Server::start(binary, &args);
            let browser = Browser::new(&server.url);
            assert_eq!(browser.get("/set/k/v").await.body, "\"v\"", "{name}");
            let mut connection = redis.connection();
            let () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(&mut connection)
                .unwrap();
            for _ in 0..5 {
                assert_eq!(browser.get("/get/k").await.body, "\"v\"", "{name}");
            }
            let stats: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut connection)
                .unwrap();
            let calls = |command: &str| -> u64 {
                stats
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
                    .and_then(|rest| rest.split(',').next())
                    .map_or(0, |n| n.parse().unwrap())
            };
            match plain {
                // The first read learns that no refresh is due.
                None => assert!(calls("hget") >= 4, "{name}: {stats}"),
                Some(_) => {
                    assert_eq!(calls("hget"), 0, "{name}: {stats}");
                    assert!(calls("evalsha") >= 5, "{name}: {stats}");
                }
            }
        }
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

/// On sled with a page cache of 1 MiB (`--page-cache-mb`, which every
/// server takes): a cache far smaller than the default changes no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_sled() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let args = [
            "--store",
            "sled",
            "--sled-path",
            path,
            "--page-cache-mb",
            "1",
            "--insecure-cookies",
        ];
        let server = Server::start(binary, &args);
        check_routes(&server.url, None).await;
    }
}

/// On the embedded stores (redb, the default, in
/// `./session-data/sessions.redb`; and sled), sessions outlive the server,
/// even one killed with SIGKILL: every write was on disk before it was
/// answered. With `--sync-every-ms 50`, a write is on disk 50 ms later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_sessions_across_a_kill_and_restart() {
    for (store, sync) in [None, Some("sled")]
        .into_iter()
        .flat_map(|store| [(store, None), (store, Some("50"))])
    {
        let mut args = vec!["--insecure-cookies"];
        args.extend(store.map(|store| ["--store", store]).into_iter().flatten());
        args.extend(sync.map(|ms| ["--sync-every-ms", ms]).into_iter().flatten());
        for (name, binary) in SERVERS {
            let mut server = Server::start(binary, &args);
            let browser = Browser::new(&server.url);
            browser.get("/set/user/ada").await;
            if sync.is_some() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
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
        if store.is_none() && sync.is_none() {
            // The default really is redb, in its default file.
            let server = Server::start(SERVERS[0].1, &args);
            assert!(server.cwd().join(store_redb::DEFAULT_PATH).exists());
        }
    }
}

/// SIGTERM and Ctrl-C (SIGINT) stop every server gracefully: it exits
/// promptly although a keep-alive connection is open, and flushes its
/// store, so that the reads it counted in memory (reads not due a refresh
/// write nothing) are in the store when it has exited, on the embedded
/// stores and on Redis alike. `/sessions` reports a session's read count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_flushes_its_store_on_sigterm_and_ctrl_c() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    for (store, signal) in [("redb", "INT"), ("sled", "TERM"), ("redis", "TERM")] {
        let mut args = vec!["--insecure-cookies", "--store", store];
        if store == "redis" {
            args.extend(["--redis-url", &redis_url]);
        }
        for (name, binary) in SERVERS {
            let mut server = Server::start(binary, &args);
            let browser = Browser::new(&server.url);
            let user = common::unique_user("term");
            let login = browser.get(&format!("/login/{user}")).await;
            assert_eq!(login.status, StatusCode::OK, "{name} on {store}");
            let reads = |sessions: Vec<serde_json::Value>| {
                sessions[0]["reads"].as_u64().expect("a read count")
            };
            // What `/sessions` itself adds (store-redis writes out pending
            // reads for it; the embedded stores report theirs).
            let first = reads(common::sessions_of(&browser).await);
            let before = reads(common::sessions_of(&browser).await);
            let own = before - first;
            for _ in 0..3 {
                let got = browser.get("/get/user").await;
                assert_eq!(got.status, StatusCode::OK, "{name} on {store}");
            }
            let status = server.terminate(signal);
            assert!(status.success(), "{name} on {store} exited with {status}");
            server.start_again(&args);
            let browser = Browser::with_jar(&server.url, browser.jar());
            let after = reads(common::sessions_of(&browser).await);
            assert_eq!(
                after,
                before + own + 3,
                "{name} on {store}: reads counted before SIG{signal} were lost"
            );
        }
    }
}

/// A second signal cuts the drain short: with a request half sent (its
/// client has a minute to finish the headers), the hyper-based servers
/// wait for it after the first signal, and exit promptly, and cleanly,
/// after the second. actix-web's graceful stop closes a connection whose
/// request has not all arrived (within a second, its workers' poll): there,
/// only a clean exit after the first signal is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_every_server_without_waiting_for_connections() {
    use std::io::Write;
    let args = ["--insecure-cookies", "--header-read-timeout", "60"];
    for (name, binary) in SERVERS {
        let mut server = Server::start(binary, &args);
        let address = server.url.trim_start_matches("http://").to_owned();
        // The connection's first request: hyper closes a keep-alive one
        // between requests at once, whatever it has read of the next.
        let mut stalled = std::net::TcpStream::connect(&address).unwrap();
        stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // Time for the server to accept it, and read what came.
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.signal("TERM");
        let status = if name == "server-actix" {
            server.exited_within(Duration::from_secs(15))
        } else {
            let early = server.exited_within(Duration::from_millis(1500));
            assert_eq!(early, None, "{name} did not wait for the request in flight");
            server.signal("INT");
            server.exited_within(Duration::from_secs(10))
        };
        let status = status.unwrap_or_else(|| panic!("{name} did not exit"));
        assert!(status.success(), "{name} exited with {status}");
        drop(stalled);
    }
}

/// `binary` on a `redis-server` of its own.
fn on_redis(binary: &str) -> (RedisServer, Server) {
    let redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--insecure-cookies",
    ];
    let server = Server::start(binary, &args);
    (redis, server)
}

/// A signal while a server flushes its store at exit ends the process at
/// once, with status 130, rather than after the flush. Here the flush has
/// reads counted in memory to write out to a Redis whose writes are
/// paused: it waits for the store's response timeout (500 ms) and fails,
/// which would exit with status 1. Signals come every 100 ms from the
/// first, so some land during the drain (which one skips) and the rest
/// during the flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_the_flush_at_exit_ends_every_server_at_once() {
    for (name, binary) in SERVERS {
        let (redis, mut server) = on_redis(binary);
        let browser = Browser::new(&server.url);
        browser.get("/set/foo/bar").await;
        // A script read, then the session is known fresh: the next is a
        // plain read, counted in memory.
        for _ in 0..2 {
            assert_eq!(
                browser.get("/get/foo").await.status,
                StatusCode::OK,
                "{name}"
            );
        }
        // Time for the background pass (every second) to write the count
        // out: one that found a count to send once writes are paused
        // would hold up the store's connection, and the read below with it.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut con = redis.connection();
        let () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(20_000)
            .arg("WRITE")
            .query(&mut con)
            .unwrap();
        // A plain read, which a pause of writes lets through: the flush
        // at exit has its count to write out.
        assert_eq!(
            browser.get("/get/foo").await.status,
            StatusCode::OK,
            "{name}"
        );
        let started = std::time::Instant::now();
        let status = loop {
            server.signal("TERM");
            if let Some(status) = server.exited_within(Duration::from_millis(100)) {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{name} did not exit within 15 s"
            );
        };
        assert_eq!(status.code(), Some(130), "{name} exited with {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_keeps_the_contract_on_redis() {
    for (name, binary) in SERVERS {
        eprintln!("{name}");
        let (mut redis, server) = on_redis(binary);
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

/// Zero lost updates on one key, over HTTP, on every server and store: 200
/// users each send 8 concurrent `/incr/k` on their own session and every
/// counter ends at 8. The same load as a read and then a `/set` loses
/// updates (printed), which is the loss `/incr` avoids; the check that it
/// does shows that the load really races.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_loses_no_increment_on_every_store() {
    const USERS: usize = 200;
    let redis = RedisServer::start();
    let redis_url = redis.url();
    for store in ["memory", "redb", "sled", "redis"] {
        for (name, binary) in SERVERS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data");
            let path = path.to_str().unwrap();
            let mut args = vec!["--store", store, "--insecure-cookies"];
            match store {
                "redb" => args.extend(["--redb-path", path]),
                "sled" => args.extend(["--sled-path", path]),
                "redis" => args.extend(["--redis-url", &redis_url]),
                _ => {}
            }
            let server = Server::start(binary, &args);
            let (incr, read_then_set) = lost_updates(&server.url, USERS).await;
            eprintln!(
                "{name} on {store}: /incr lost {incr} of {}, read-then-/set lost {read_then_set}",
                USERS * 8
            );
            assert_eq!(incr, 0, "{name} on {store}: /incr lost updates");
            assert!(
                read_then_set > 0,
                "{name} on {store}: read-then-set lost nothing, so the load did not race"
            );
        }
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
    let (incr, read_then_set) = lost_updates(&server.url, 200).await;
    eprintln!(
        "server on a cluster: /incr lost {incr} of 1600, read-then-/set lost {read_then_set}"
    );
    assert_eq!(incr, 0, "/incr lost updates on a cluster");
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
    // On the idle servers, a session given its own 60 s by `/lifetime`.
    let remembered: Vec<_> = SERVERS
        .iter()
        .zip(&idle)
        .map(|(_, browser)| Browser::new(&browser.base))
        .collect();
    for ((name, _), browser) in SERVERS.iter().zip(&remembered) {
        browser.get("/set/foo/kept").await;
        let answer = browser.get("/lifetime/60").await;
        assert_eq!(answer.body, "true", "{name}");
        assert!(answer.set_cookie.unwrap().contains("Max-Age=60"), "{name}");
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
    assert_foo_on_each(
        &absolute,
        "null",
        "activity must not extend the absolute lifetime",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_foo_on_each(&idle, "null", "idle timeout").await;
    assert_foo_on_each(
        &remembered,
        "\"kept\"",
        "the session's own idle timeout, kept by the store",
    )
    .await;
}

/// Every server on every store takes `--touch-after`: with 10 s, a read a
/// second after the last write leaves the session's deadline where that
/// write put it (`/sessions` reports its time to live); with 0, every read
/// slides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_throttles_touches_by_its_flag() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    for store in ["memory", "redb", "sled", "redis"] {
        let dir = tempfile::tempdir().unwrap();
        let mut running = Vec::new();
        for (touch, (name, binary)) in ["10", "0"]
            .into_iter()
            .flat_map(|t| SERVERS.map(|s| (t, s)))
        {
            let path = dir.path().join(format!("{name}-{touch}"));
            let path = path.to_str().unwrap();
            let mut args = vec!["--store", store, "--insecure-cookies"];
            args.extend(["--idle-timeout", "60", "--touch-after", touch]);
            match store {
                "redb" => args.extend(["--redb-path", path]),
                "sled" => args.extend(["--sled-path", path]),
                "redis" => args.extend(["--redis-url", &redis_url]),
                _ => {}
            }
            let server = Server::start(binary, &args);
            let browser = Browser::new(&server.url);
            assert_eq!(
                browser
                    .get(&format!("/login/{}", common::unique_user("ada")))
                    .await
                    .body,
                "true"
            );
            running.push((name, touch, server, browser, std::time::Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for (name, touch, _server, browser, logged_in) in &running {
            browser.get("/get/foo").await;
            let listed = common::sessions_of(browser).await;
            let ttl = listed[0]["ttl_ms"].as_u64().unwrap();
            let since_login = u64::try_from(logged_in.elapsed().as_millis()).unwrap();
            if *touch == "0" {
                assert!(
                    ttl >= 59_000,
                    "{name} on {store}: a read did not slide the session ({ttl} ms left)"
                );
            } else {
                assert!(
                    ttl <= 60_000 - 1_000 && ttl + since_login >= 59_000,
                    "{name} on {store}: a read inside the granularity slid the session ({ttl} ms left, {since_login} ms after login)"
                );
            }
        }
    }
}

/// Asserts that `/get/foo` answers `expected` through each server's browser
/// (in [`SERVERS`]' order), naming the server and `why` if not.
async fn assert_foo_on_each(browsers: &[Browser], expected: &str, why: &str) {
    for ((name, _), browser) in SERVERS.iter().zip(browsers) {
        assert_eq!(
            browser.get("/get/foo").await.body,
            expected,
            "{name}: {why}"
        );
    }
}
