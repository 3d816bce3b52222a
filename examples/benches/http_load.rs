//! The HTTP load bench: `server-axum` on store-redb (the default) against
//! `server-axum` on store-memory, each a process of its own, under 64
//! keep-alive users with a session each. Two mixes, `set:50,get:50` and
//! `get:100`, in alternating rounds (memory, redb, redb, memory, …) so that
//! the machine's drift hits both alike; prints each round's requests per
//! second and the median ratio redb / memory.
//!
//! ```text
//! cargo bench -p examples --bench http_load
//! HTTP_LOAD_SECS=5 HTTP_LOAD_ROUNDS=6 HTTP_LOAD_STORES=redb,sled cargo bench -p examples --bench http_load
//! ```
//!
//! `HTTP_LOAD_STORES` names the stores to compare with memory (default
//! `redb`); each round lasts `HTTP_LOAD_SECS` (default 10) and there are
//! `HTTP_LOAD_ROUNDS` per store and mix (default 6). `HTTP_LOAD_SERVER`
//! runs another server binary for the stores (an older commit's, say), and
//! `HTTP_LOAD_BASE_SERVER` another one for the memory baseline: with both,
//! and `HTTP_LOAD_STORES=memory`, the bench compares two builds on memory.
//!
//! ```text
//! HTTP_LOAD_STORES=memory HTTP_LOAD_BASE_SERVER=old/server HTTP_LOAD_SERVER=target/release/server \
//!     cargo bench -p examples --bench http_load
//! ```
//!
//! `HTTP_LOAD_BASE_STORE` (default `memory`) runs the baseline on another
//! store, so that one store can be compared across two builds:
//! `HTTP_LOAD_BASE_STORE=redis HTTP_LOAD_STORES=redis` with both server
//! variables. For `redis`, the bench starts its own `redis-server` on a
//! free loopback port, shared by both servers (only one is loaded at a time).
//! `HTTP_LOAD_ARGS` adds flags to the compared servers (not the baseline):
//! `HTTP_LOAD_ARGS=--redis-activity-index`, say.
//!
//! `HTTP_LOAD_INCR=1` measures instead what the atomic `/incr` costs against
//! `/set` on each store of `HTTP_LOAD_STORES`: one server per store, rounds
//! of `set:50,get:50` and `incr:50,get:50` alternating on it, and the median
//! ratio incr / set.
//!
//! ```text
//! HTTP_LOAD_INCR=1 HTTP_LOAD_STORES=memory,redb,sled,redis cargo bench -p examples --bench http_load
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Browser, Server};
use http::StatusCode;
use redis_test_server::RedisServer;
use session_core::testkit::soak::env_number;

const SERVER: &str = env!("CARGO_BIN_EXE_server-axum");
const USERS: usize = 64;

#[derive(Clone, Copy)]
enum Mix {
    /// Half `/set`, half `/get`.
    SetGet,
    /// Only `/get`.
    Get,
    /// Half `/incr`, half `/get`.
    IncrGet,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::SetGet => "set:50,get:50",
            Mix::Get => "get:100",
            Mix::IncrGet => "incr:50,get:50",
        }
    }
}

/// 64 users, each with a session holding `k0`…`k9`.
async fn users(url: &str) -> Vec<Arc<Browser>> {
    let mut users = Vec::with_capacity(USERS);
    for _ in 0..USERS {
        let browser = Browser::new(url);
        for key in 0..10 {
            let answer = browser.get(&format!("/set/k{key}/initial")).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
        users.push(Arc::new(browser));
    }
    users
}

/// Requests per second of `users` doing `mix` for `length`; answers other
/// than 200 (a 503 from a store past its deadline, say) are counted apart,
/// and reported.
async fn round(users: &[Arc<Browser>], mix: Mix, length: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(user, browser)| {
            let (browser, done, stop) = (browser.clone(), done.clone(), stop.clone());
            let failed = failed.clone();
            tokio::spawn(async move {
                let mut n = user;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = n % 10;
                    let path = match mix {
                        Mix::SetGet if n % 2 == 0 => format!("/set/k{key}/v{n}"),
                        Mix::IncrGet if n % 2 == 0 => format!("/incr/n{key}"),
                        _ => format!("/get/k{key}"),
                    };
                    let answer = browser.get(&path).await;
                    if answer.status == StatusCode::OK {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    for task in tasks {
        task.await.expect("a user");
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        println!("  {failed} requests answered with an error in this round");
    }
    counted as f64 / elapsed.as_secs_f64()
}

fn main() {
    let length = Duration::from_secs(env_number("HTTP_LOAD_SECS", 10));
    let rounds = env_number("HTTP_LOAD_ROUNDS", 6) as usize;
    let stores = std::env::var("HTTP_LOAD_STORES").unwrap_or_else(|_| "redb".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("HTTP_LOAD_INCR").is_ok_and(|v| v == "1") {
        return incr_against_set(&runtime, &stores, length, rounds);
    }
    let base = std::env::var("HTTP_LOAD_BASE_SERVER").unwrap_or_else(|_| SERVER.into());
    let base_store = std::env::var("HTTP_LOAD_BASE_STORE").unwrap_or_else(|_| "memory".into());
    let needs_redis = base_store == "redis" || stores.split(',').any(|s| s.trim() == "redis");
    let redis = needs_redis.then(RedisServer::start);
    let args = |store: &str| {
        let mut args = vec!["--store".to_string(), store.to_string()];
        args.push("--insecure-cookies".into());
        if let (Some(redis), "redis") = (&redis, store) {
            args.extend(["--redis-url".to_string(), redis.url()]);
        }
        args
    };
    let memory_args = args(&base_store);
    let memory_args: Vec<&str> = memory_args.iter().map(String::as_str).collect();
    let memory = Server::start(&base, &memory_args);
    runtime.block_on(async {
        let baseline = users(&memory.url).await;
        for store in stores.split(',').map(str::trim) {
            let binary = std::env::var("HTTP_LOAD_SERVER").unwrap_or_else(|_| SERVER.into());
            let mut store_args = args(store);
            if let Ok(extra) = std::env::var("HTTP_LOAD_ARGS") {
                store_args.extend(extra.split_whitespace().map(str::to_string));
            }
            let store_args: Vec<&str> = store_args.iter().map(String::as_str).collect();
            let server = Server::start(&binary, &store_args);
            let subject = users(&server.url).await;
            for mix in [Mix::SetGet, Mix::Get] {
                let mut ratios = Vec::with_capacity(rounds);
                for r in 0..rounds {
                    // A B, then B A: neither always goes first.
                    let (m, s) = if r % 2 == 0 {
                        let m = round(&baseline, mix, length).await;
                        (m, round(&subject, mix, length).await)
                    } else {
                        let s = round(&subject, mix, length).await;
                        (round(&baseline, mix, length).await, s)
                    };
                    println!(
                        "{} round {r}: {base_store} {m:.0} req/s, {store} {s:.0} req/s, ratio {:.2}",
                        mix.name(),
                        s / m
                    );
                    ratios.push(s / m);
                }
                ratios.sort_by(f64::total_cmp);
                println!(
                    "{} {store} / {base_store} over HTTP, {USERS} users: median {:.2} [{:.2}, {:.2}] of {rounds} rounds",
                    mix.name(),
                    ratios[rounds / 2],
                    ratios[0],
                    ratios[rounds - 1]
                );
            }
        }
    });
}

/// Median of `ratios` and its range, as printed.
fn summary(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    format!(
        "median {:.2} [{:.2}, {:.2}] of {n} rounds",
        ratios[n / 2],
        ratios[0],
        ratios[n - 1]
    )
}

/// `HTTP_LOAD_INCR=1`: `incr:50,get:50` against `set:50,get:50` on one
/// server per store, in alternating rounds.
fn incr_against_set(
    runtime: &tokio::runtime::Runtime,
    stores: &str,
    length: Duration,
    rounds: usize,
) {
    let redis = stores
        .split(',')
        .any(|s| s.trim() == "redis")
        .then(RedisServer::start);
    for store in stores.split(',').map(str::trim) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("data");
        let mut args = vec![
            "--store".to_string(),
            store.to_string(),
            "--insecure-cookies".into(),
        ];
        match (store, &redis) {
            ("redis", Some(redis)) => args.extend(["--redis-url".to_string(), redis.url()]),
            ("redb", _) => args.extend(["--redb-path".to_string(), path.display().to_string()]),
            ("sled", _) => args.extend(["--sled-path".to_string(), path.display().to_string()]),
            _ => {}
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start(SERVER, &args);
        runtime.block_on(async {
            let users = users(&server.url).await;
            let mut ratios = Vec::with_capacity(rounds);
            for r in 0..rounds {
                let (set, incr) = if r % 2 == 0 {
                    let set = round(&users, Mix::SetGet, length).await;
                    (set, round(&users, Mix::IncrGet, length).await)
                } else {
                    let incr = round(&users, Mix::IncrGet, length).await;
                    (round(&users, Mix::SetGet, length).await, incr)
                };
                println!(
                    "{store} round {r}: set:50,get:50 {set:.0} req/s, incr:50,get:50 {incr:.0} req/s, ratio {:.2}",
                    incr / set
                );
                ratios.push(incr / set);
            }
            println!(
                "{store}: incr:50,get:50 / set:50,get:50 over HTTP, {USERS} users: {}",
                summary(&mut ratios)
            );
        });
    }
}
