//! The soak over HTTP: `server-axum` (the server the load test that found
//! sled's deadlock used) as a process, on each embedded store, under 64
//! keep-alive users doing every route, each request within a deadline.
//! A server that stops answering fails the test with the request that hung;
//! every answer is checked against what that user wrote.
//!
//! The load comes in 50 s rounds, opening as the load tests that found the
//! deadlock did: 10 s of half reads and half writes on a session's ten keys,
//! 10 s of reads only, then 10 s of every route, 10 s in which every user
//! sends bursts of 8 concurrent writes to its session, then 10 s of quiet,
//! after which all users come back at once (the bench that caught sled's
//! deadlock left its server idle between rounds). One user in four keeps no
//! cookies (a load tool, a crawler) and others now and then come back as new
//! visitors; the sessions they leave behind expire after 30 s idle and the
//! store sweeps them, so the database is rewritten without end while it
//! stays small (the state in which sled deadlocked).
//!
//! Knobs, as for the store-level soak: `SOAK_SECS` (default 120),
//! `SOAK_TASKS` (default 64), `SOAK_DEADLINE_SECS` (default 5); also
//! `SOAK_STACKS=FILE`, where gdb writes a hung server's stacks, and
//! `SOAK_SERVER=BINARY`, which soaks another build of `server-axum` (an
//! older commit's, say) on sled.
//!
//! After a missed deadline the test waits 30 s and tries the server once
//! more, and says whether it was overloaded or hung for good.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{join_all, Answer, Browser, Server};
use http::StatusCode;
use session_core::testkit::soak::{Progress, Soak};

const SERVER: &str = env!("CARGO_BIN_EXE_server-axum");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_soak_on_redb() {
    soak("redb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_soak_on_sled() {
    soak("sled").await;
}

/// sled can deadlock (sled #1412): what the server promises on it is an
/// answer within its store's 5 s timeout, a 503 if need be, never a hang.
/// So on sled 503s are tolerated (and counted), and the deadline for an
/// answer is 10 s.
async fn soak(store: &str) {
    let mut soak = Soak::from_env();
    if store == "sled" {
        soak.tolerate_timeouts = true;
        soak.deadline = soak.deadline.max(Duration::from_secs(10));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let path_flag = format!("--{store}-path");
    let args = [
        "--store",
        store,
        &path_flag,
        path.to_str().unwrap(),
        "--insecure-cookies",
        // Active users never idle this long (the quiet phase is 10 s).
        "--idle-timeout",
        "30",
    ];
    let binary = std::env::var("SOAK_SERVER").unwrap_or_else(|_| SERVER.into());
    let server = Server::start(&binary, &args);
    let name = format!("server-axum on {store}");
    eprintln!(
        "soak {name}: {} users for {} s, each request within {:?}",
        soak.tasks,
        soak.duration.as_secs(),
        soak.deadline
    );
    let shared = Progress::new(soak.deadline, soak.tolerate_timeouts);
    let users: Vec<_> = (0..soak.tasks)
        .map(|user| tokio::spawn(run_user(user, server.url.clone(), shared.clone())))
        .collect();

    let intervals = shared.report(&name, "requests", &soak).await;
    for user in users {
        if let Err(panic) = user.await {
            shared.fail(format!("a user task panicked: {panic}"));
        }
    }
    if let Some(failure) = shared.failure() {
        let verdict = after_failure(&server).await;
        panic!("soak {name} failed: {failure}\n{verdict}");
    }
    eprintln!(
        "soak {name}: passed: {}",
        shared.summary(&soak, "requests", intervals)
    );
    // The server still answers a fresh user after the soak (on sled, a 503
    // is an answer).
    let probe = Browser::new(&server.url);
    let answer = tokio::time::timeout(soak.deadline, probe.get("/set/probe/ok"))
        .await
        .unwrap_or_else(|_| panic!("soak {name}: the server stopped answering after the soak"));
    if !(soak.tolerate_timeouts && answer.status == StatusCode::SERVICE_UNAVAILABLE) {
        assert_eq!(answer.body, "\"ok\"");
        assert_eq!(probe.get("/get/probe").await.body, "\"ok\"");
    }
}

/// Tells a hang from a passing overload: waits 30 s, then asks the server
/// for one write. With `SOAK_STACKS=FILE`, a server that still does not
/// answer has its threads' stacks written to FILE by gdb.
async fn after_failure(server: &Server) -> String {
    tokio::time::sleep(Duration::from_secs(30)).await;
    let probe = Browser::new(&server.url);
    let answered = tokio::time::timeout(Duration::from_secs(10), probe.get("/set/probe/ok")).await;
    if let Ok(answer) = answered {
        return format!(
            "30 s later the server answered a new request ({} {}): overloaded, not hung for good",
            answer.status, answer.body
        );
    }
    let mut verdict =
        "30 s later it still did not answer a new request within 10 s: it is hung for good"
            .to_string();
    if let Ok(file) = std::env::var("SOAK_STACKS") {
        let dump = std::process::Command::new("gdb")
            .args([
                "-p",
                &server.pid().to_string(),
                "-batch",
                "-ex",
                "thread apply all bt",
            ])
            .output();
        match dump {
            Ok(dump) => {
                std::fs::write(&file, &dump.stdout).expect("write the stacks");
                verdict.push_str(&format!("; its stacks are in {file}"));
            }
            Err(error) => verdict.push_str(&format!("; gdb failed: {error}")),
        }
    }
    verdict
}

/// One user: a cookie jar, and a model of what its session holds.
async fn run_user(user: usize, url: String, shared: Arc<Progress>) {
    let browser = Browser::new(&url);
    let mut model: HashMap<String, String> = HashMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (user as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut next = move |below: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    };
    let mut counter = 0u64;
    // One user in four keeps no cookies, as a load tool or a crawler: each
    // of its writes starts a session that stays behind.
    let cookieless = user % 4 == 3;
    while !shared.stopped() {
        if cookieless {
            *browser.jar.lock().unwrap() = None;
            model.clear();
        }
        let key = match next(3) {
            0 => format!("w{}", next(8)),
            _ => format!("k{}", next(10)),
        };
        // Each round opens as the load test that found the deadlock did: set/get
        // (phase 2), then reads only (1); then every route (0), bursts (3)
        // and quiet (4).
        const ORDER: [u64; 5] = [2, 1, 0, 3, 4];
        let phase = ORDER[(shared.seconds() as u64 / 10 % 5) as usize];
        // Quiet: every user pauses, then all come back at once. In the
        // reads-only and set/get phases the users without cookies pause too,
        // so that the load on sessions is as high as the client can make it
        // (the load under which sled deadlocked: reads that slide expiry are
        // writes to it).
        if phase == 4 || (cookieless && matches!(phase, 1 | 2)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let roll = match phase {
            // In the read and set/get phases a user without a session
            // starts one first.
            1 | 2 if browser.jar().is_none() => 95,
            0 => next(100),
            // Reads only.
            1 => next(40),
            // Half reads, half writes.
            2 => next(70),
            // Bursts (for a user with a session), else a first write.
            _ => 95 + next(5),
        };
        if roll >= 95 && browser.jar().is_none() {
            counter += 1;
            let value = format!("u{user}-{counter}");
            let path = format!("/set/{key}/{value}");
            let Some(answer) = timeout(&shared, user, &path, browser.get(&path)).await else {
                return;
            };
            match check(&shared, user, &path, &answer, &format!("\"{value}\"")) {
                None => return,
                Some(true) => {
                    model.insert(key, value);
                }
                Some(false) => restart(&browser, &mut model),
            }
            continue;
        }
        if roll >= 95 {
            // A burst: 8 concurrent writes to 8 keys of this user's session.
            counter += 1;
            let writes = (0..8).map(|i| {
                let (browser, shared) = (&browser, &shared);
                let (key, value) = (format!("w{i}"), format!("u{user}-{counter}-w{i}"));
                async move {
                    let path = format!("/set/{key}/{value}");
                    let answer = timeout(shared, user, &path, browser.get(&path)).await?;
                    let right = check(shared, user, &path, &answer, &format!("\"{value}\""))?;
                    Some(right.then_some((key, value)))
                }
            });
            let written = join_all(writes).await;
            if written.iter().any(Option::is_none) {
                return;
            }
            if written.iter().any(|w| matches!(w, Some(None))) {
                restart(&browser, &mut model);
                continue;
            }
            model.extend(written.into_iter().flatten().flatten());
            continue;
        }
        let (path, expected) = match roll {
            0..=39 => {
                let expected = model
                    .get(&key)
                    .map_or("null".to_string(), |v| format!("\"{v}\""));
                (format!("/get/{key}"), expected)
            }
            40..=69 => {
                counter += 1;
                let value = format!("u{user}-{counter}-{}", "x".repeat(next(200) as usize));
                model.insert(key.clone(), value.clone());
                (format!("/set/{key}/{value}"), format!("\"{value}\""))
            }
            70..=79 => {
                model.remove(&key);
                (format!("/del/{key}"), "true".to_string())
            }
            80..=84 => ("/regenerate".to_string(), "true".to_string()),
            85..=87 => {
                model.clear();
                ("/destroy".to_string(), "true".to_string())
            }
            88..=89 => {
                // A new visitor: the old session stays behind on the server.
                *browser.jar.lock().unwrap() = None;
                model.clear();
                ("/".to_string(), "ok".to_string())
            }
            _ => ("/".to_string(), "ok".to_string()),
        };
        let Some(answer) = timeout(&shared, user, &path, browser.get(&path)).await else {
            return;
        };
        match check(&shared, user, &path, &answer, &expected) {
            None => return,
            Some(true) => {}
            Some(false) => restart(&browser, &mut model),
        }
    }
}

/// After a tolerated 503, what the request did is unknown: the user starts
/// over as a new visitor.
fn restart(browser: &Browser, model: &mut HashMap<String, String>) {
    *browser.jar.lock().unwrap() = None;
    model.clear();
}

/// Awaits one request within the deadline; `None`, and the soak failed, if
/// no answer came.
async fn timeout(
    shared: &Progress,
    user: usize,
    path: &str,
    request: impl std::future::Future<Output = Answer>,
) -> Option<Answer> {
    let answer = shared.within(request).await;
    if answer.is_none() {
        shared.fail(format!(
            "user {user}: GET {} got no answer within {:?}, {:.1} s into the soak, after {} requests in all: the server hangs",
            route_of(path),
            shared.deadline(),
            shared.seconds(),
            shared.done()
        ));
    }
    answer
}

/// `Some(true)` if `answer` is 200 with `expected`; `Some(false)` for a 503
/// that the soak tolerates (the store's own deadline passed; see
/// `Soak::tolerate_timeouts`); `None`, and the soak failed, otherwise.
fn check(
    shared: &Progress,
    user: usize,
    path: &str,
    answer: &Answer,
    expected: &str,
) -> Option<bool> {
    if answer.status == StatusCode::OK && answer.body == expected {
        return Some(true);
    }
    if answer.status == StatusCode::SERVICE_UNAVAILABLE && shared.timed_out() {
        return Some(false);
    }
    shared.fail(format!(
        "user {user}: GET {} answered {} {:?}, expected {expected:?} ({:.1} s into the soak)",
        route_of(path),
        answer.status,
        answer.body.chars().take(80).collect::<String>(),
        shared.seconds()
    ));
    None
}

/// The route of a path, without the user's values.
fn route_of(path: &str) -> &str {
    path.match_indices('/')
        .nth(1)
        .map_or(path, |(index, _)| &path[..index])
}
