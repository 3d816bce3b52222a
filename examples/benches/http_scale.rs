//! Flat cost as the store grows, over HTTP: `server-axum` on a store holding
//! 1,000 live sessions beside `server-axum` on the same kind of store holding
//! 1,000,000, each a process of its own, under 64 keep-alive users who each
//! pick a random session of their server's for every request. Rounds
//! alternate (small, large, large, small, ...) so that the machine's drift
//! hits both alike. Prints, for `get:100` and `set:50,get:50`, the median
//! ratio large / small of what a request costs: the server's CPU time per
//! request (with `redis-server`'s for Redis), and elapsed time per request.
//! Each round's line gives the figures, `redis-server`'s share apart. CPU
//! is read 2 s after a round's users stop, so that it includes the work
//! their requests left for the stores' background passes; a read that finds
//! no value (a lost session) stops the bench.
//!
//! The sizes differ in more than the lookup. With 1,000 sessions each is
//! read many times within the touch granularity (60 s), so nearly every
//! read is plain; with a million, each is read about once a minute or less,
//! so most reads are refreshes, writes on every store. The ratio at a
//! million is thus also that of refreshing reads to plain ones, and it
//! grows over the rounds as more sessions pass the granularity (see
//! PERFORMANCE.md).
//!
//! ```text
//! cargo bench -p examples --bench http_scale
//! HTTP_SCALE_STORES=memory,redis HTTP_SCALE_SIZES=100000,1000000 cargo bench -p examples --bench http_scale
//! ```
//!
//! `HTTP_SCALE_STORES` (default `memory,redis,redb,sled`), `HTTP_SCALE_SIZES`
//! (default `1000000`; each compared with 1,000), `HTTP_SCALE_ROUNDS`
//! (default 4) and `HTTP_SCALE_SECS` (default 5) choose what runs. The scale
//! bench (`--bench scale`) times the same growth straight on the stores, where
//! nothing else dilutes it; this one shows what a request sees.
//! `HTTP_SCALE_ARGS` adds flags to every server: `HTTP_SCALE_ARGS="--touch-after 900"`,
//! say; `HTTP_SCALE_PLAIN_READS` sets the Redis servers' `--redis-plain-reads`
//! (default 4,000,000: every session). `HTTP_SCALE_SERVER` runs another
//! build of `server-axum` (its path), to set two builds side by side.
//! `HTTP_SCALE_VERSUS` (a path) adds, at each size, the same store on
//! another build, interleaved in the same rounds, and prints this build's
//! cost over that one's: an A/B at a million sessions. Its rounds start
//! once every session of both has been idle for `HTTP_SCALE_IDLE_SECS`
//! (default 65, past the default touch granularity), so neither starts
//! with more sessions due a refresh.
//!
//! Every server has room for all its sessions: store-memory may take 4 GiB,
//! the Redis servers remember every session for plain reads
//! (`--redis-plain-reads`), and the embedded stores have their drivers' own
//! default page cache, 1 GiB (`--page-cache-mb 1024`; `HTTP_SCALE_CACHE_MB`
//! sets another, 0 the stores' own 64 MiB). Each Redis server has a
//! `redis-server` of its own, started here on a free loopback port. The
//! embedded stores sync every 500 ms (`--sync-every-ms 500`), so the figure
//! is the lookup's and the tree's, not the disk's. Sessions hold one 64-byte
//! value, written then read once when filled; `HTTP_SCALE_VALUE_BYTES` sets
//! another length. (Redis keeps a hash whose values all fit in 64 bytes, by
//! default, as one compact listpack: the stored JSON string adds two quotes,
//! so 62 bytes is the longest value that stays compact, and 64 makes a hash
//! table.)

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Server;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use redis_test_server::RedisServer;
use session_core::testkit::cookie_pair;
use session_core::testkit::soak::env_number;

const SERVER: &str = env!("CARGO_BIN_EXE_server-axum");
const SMALL: usize = 1_000;
const USERS: usize = 64;
/// How long the value every session holds, and every `/set` writes, is by
/// default: 64 bytes (`HTTP_SCALE_VALUE_BYTES` says otherwise).
const VALUE_BYTES: u64 = 64;
/// How long after a round the CPU is read (see `round`).
const DRAIN: Duration = Duration::from_secs(2);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone, Copy)]
enum Mix {
    Get,
    SetGet,
}

impl Mix {
    fn name(self) -> &'static str {
        match self {
            Mix::Get => "get:100",
            Mix::SetGet => "set:50,get:50",
        }
    }
}

/// A server on `kind` holding `cookies.len()` sessions, with what must
/// outlive it.
struct Filled {
    server: Server,
    redis: Option<RedisServer>,
    cookies: Arc<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl Filled {
    fn start(
        kind: &str,
        sessions: usize,
        value_bytes: usize,
        client: &HttpClient,
        runtime: &tokio::runtime::Runtime,
    ) -> Filled {
        let binary = std::env::var("HTTP_SCALE_SERVER").unwrap_or_else(|_| SERVER.into());
        Filled::start_build(&binary, kind, sessions, value_bytes, client, runtime)
    }

    /// [`start`](Self::start) on the `server-axum` at `binary`.
    fn start_build(
        binary: &str,
        kind: &str,
        sessions: usize,
        value_bytes: usize,
        client: &HttpClient,
        runtime: &tokio::runtime::Runtime,
    ) -> Filled {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let redis = (kind == "redis").then(RedisServer::start);
        let mut args: Vec<String> = ["--store", kind, "--insecure-cookies"]
            .map(str::to_string)
            .into();
        match kind {
            "memory" => args.extend(["--memory-max-mb".into(), "4096".into()]),
            "redis" => args.extend([
                "--redis-url".into(),
                redis.as_ref().map(RedisServer::url).unwrap_or_default(),
                "--redis-plain-reads".into(),
                env_number("HTTP_SCALE_PLAIN_READS", 4_000_000).to_string(),
            ]),
            "redb" | "sled" => {
                args.extend([
                    format!("--{kind}-path"),
                    dir.path().join("data").display().to_string(),
                    "--sync-every-ms".into(),
                    "500".into(),
                ]);
                // 0: the store's own default.
                let cache_mb = env_number("HTTP_SCALE_CACHE_MB", 1024);
                if cache_mb > 0 {
                    args.extend(["--page-cache-mb".into(), cache_mb.to_string()]);
                }
            }
            other => panic!("unknown store {other:?}: memory, redis, redb or sled"),
        }
        if let Ok(extra) = std::env::var("HTTP_SCALE_ARGS") {
            args.extend(extra.split_whitespace().map(str::to_string));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start(binary, &args);
        let started = Instant::now();
        let cookies = runtime.block_on(fill(client, &server.url, sessions, value_bytes));
        println!(
            "{kind}: {sessions} sessions written over HTTP in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Filled {
            server,
            redis,
            cookies: Arc::new(cookies),
            _dir: dir,
        }
    }

    /// CPU time the server and its `redis-server` have used so far, each.
    fn cpu(&self) -> (Duration, Duration) {
        let server = process_cpu(self.server.pid());
        let redis = self.redis.as_ref().map_or(Duration::ZERO, redis_cpu);
        (server, redis)
    }
}

/// One GET of `path` with `cookie`; its status and the cookie it set.
async fn get(
    client: &HttpClient,
    url: &str,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Bytes) {
    let mut request = Request::get(format!("{url}{path}"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = request.body(Full::new(Bytes::new())).expect("a request");
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|v| cookie_pair(v.as_bytes()));
    let body = response.into_body().collect().await.expect("a body");
    (status, set_cookie, body.to_bytes())
}

/// Creates `sessions` sessions through the server's routes, 64 at a time,
/// each holding a value of `value_bytes` bytes: their cookies.
async fn fill(client: &HttpClient, url: &str, sessions: usize, value_bytes: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let set = format!("/set/v/{}", "x".repeat(value_bytes));
    let tasks: Vec<_> = (0..USERS)
        .map(|_| {
            let (client, url, next, set) =
                (client.clone(), url.to_string(), next.clone(), set.clone());
            tokio::spawn(async move {
                let mut cookies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < sessions {
                    let (status, cookie, _) = get(&client, &url, &set, None).await;
                    assert_eq!(status, StatusCode::OK, "a /set while filling");
                    let cookie = cookie.expect("a new session sets its cookie");
                    let (status, _, body) = get(&client, &url, "/get/v", Some(&cookie)).await;
                    assert_eq!(status, StatusCode::OK, "a /get while filling");
                    assert_ne!(&body[..], b"null", "a session lost while filling");
                    cookies.push(cookie);
                }
                cookies
            })
        })
        .collect();
    let mut cookies = Vec::with_capacity(sessions);
    for task in tasks {
        cookies.extend(task.await.expect("a filling task"));
    }
    cookies
}

/// A small, fast generator for picking sessions (splitmix64); the picks need
/// no more than spread.
struct Picker(u64);

impl Picker {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// What one timed run cost a request: CPU time (the server's and its
/// `redis-server`'s together, and the `redis-server`'s part) and elapsed time.
struct Cost {
    cpu: f64,
    redis: f64,
    elapsed: f64,
}

/// `mix` on `filled` for `length`, 64 users each picking a random session
/// for every request; writes are `value_bytes` long.
async fn round(
    client: &HttpClient,
    filled: &Filled,
    mix: Mix,
    value_bytes: usize,
    length: Duration,
    seed: u64,
) -> Cost {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = filled.cpu();
    let start = Instant::now();
    let tasks: Vec<_> = (0..USERS as u64)
        .map(|user| {
            let (client, url) = (client.clone(), filled.server.url.clone());
            let (cookies, done, stop) = (filled.cookies.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut picker = Picker(seed.wrapping_mul(1_000_003).wrapping_add(user));
                let mut n = user;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // A value that differs from the last, so every write is one.
                    let path = match mix {
                        Mix::SetGet if n % 2 == 0 => format!("/set/v/{n:0value_bytes$}"),
                        _ => "/get/v".to_string(),
                    };
                    let cookie = &cookies[picker.below(cookies.len())];
                    let (status, _, body) = get(&client, &url, &path, Some(cookie)).await;
                    assert_eq!(status, StatusCode::OK, "{path}");
                    // A lost session would answer `null`, having done less.
                    assert!(&body[..] != b"null", "{path}: a session lost");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a user");
    }
    let elapsed = start.elapsed();
    // The work the requests left for later is theirs: store-redis writes
    // out its plain reads' counts and refreshes every second (a pass at a
    // million sessions takes a good part of one), the embedded stores
    // apply refreshes and sync every 500 ms.
    tokio::time::sleep(DRAIN).await;
    let (server, redis) = filled.cpu();
    let (server, redis) = (server.saturating_sub(cpu.0), redis.saturating_sub(cpu.1));
    let requests = done.load(Ordering::Relaxed).max(1) as f64;
    Cost {
        cpu: (server + redis).as_secs_f64() / requests,
        redis: redis.as_secs_f64() / requests,
        elapsed: elapsed.as_secs_f64() / requests,
    }
}

/// User plus system time of process `pid`, its threads included, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks of 10 ms).
fn process_cpu(pid: u32) -> Duration {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields[11..13]
        .iter()
        .map(|f| f.parse::<u64>().expect("ticks"))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// CPU time `redis-server` has used, from `INFO cpu` (microsecond figures).
fn redis_cpu(server: &RedisServer) -> Duration {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut server.connection())
        .expect("INFO cpu");
    let seconds: f64 = info
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            matches!(name, "used_cpu_sys" | "used_cpu_user")
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum();
    Duration::from_secs_f64(seconds)
}

/// The median of `values` (the mean of the middle two for an even count)
/// and their range, as printed.
fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    format!("{median:.2} [{:.2}, {:.2}]", values[0], values[n - 1])
}

fn main() {
    let stores =
        std::env::var("HTTP_SCALE_STORES").unwrap_or_else(|_| "memory,redis,redb,sled".into());
    let sizes: Vec<usize> = std::env::var("HTTP_SCALE_SIZES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("HTTP_SCALE_SIZES: numbers"))
        .collect();
    let rounds = env_number("HTTP_SCALE_ROUNDS", 4) as usize;
    let length = Duration::from_secs(env_number("HTTP_SCALE_SECS", 5));
    let value_bytes = env_number("HTTP_SCALE_VALUE_BYTES", VALUE_BYTES) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Idle connections are dropped before the servers' 10 s header read
    // timeout closes them.
    let client: HttpClient = {
        let _guard = runtime.enter();
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build_http()
    };
    let versus = std::env::var("HTTP_SCALE_VERSUS").ok();
    for kind in stores.split(',').map(str::trim) {
        let small = Filled::start(kind, SMALL, value_bytes, &client, &runtime);
        for &size in &sizes {
            let large = Filled::start(kind, size, value_bytes, &client, &runtime);
            let other = versus.as_deref().map(|binary| {
                let other = Filled::start_build(binary, kind, size, value_bytes, &client, &runtime);
                std::thread::sleep(Duration::from_secs(env_number("HTTP_SCALE_IDLE_SECS", 65)));
                other
            });
            for mix in [Mix::Get, Mix::SetGet] {
                let (mut cpu, mut elapsed, mut against) = (Vec::new(), Vec::new(), Vec::new());
                let (mut small_us, mut large_us) = (Vec::new(), Vec::new());
                for r in 0..rounds {
                    // Each mix and round picks its own sessions: were the
                    // second mix to replay the first's picks, its reads at a
                    // million sessions would find them refreshed less than
                    // the touch granularity before, unlike any read there.
                    let seed = ((mix as u64) << 32) | r as u64;
                    let (s, l, o) = runtime.block_on(async {
                        let run = |filled| round(&client, filled, mix, value_bytes, length, seed);
                        // Small then large, then large then small: neither always
                        // goes first; the other build's large one goes in between.
                        if r % 2 == 0 {
                            let s = run(&small).await;
                            let o = match &other {
                                Some(other) => Some(run(other).await),
                                None => None,
                            };
                            (s, run(&large).await, o)
                        } else {
                            let l = run(&large).await;
                            let o = match &other {
                                Some(other) => Some(run(other).await),
                                None => None,
                            };
                            (run(&small).await, l, o)
                        }
                    });
                    println!(
                        "{kind} {} round {r}: {SMALL}: {:.1} µs CPU (redis-server {:.1}), {:.1} µs a request; {size}: {:.1} µs CPU (redis-server {:.1}), {:.1} µs a request",
                        mix.name(),
                        s.cpu * 1e6,
                        s.redis * 1e6,
                        s.elapsed * 1e6,
                        l.cpu * 1e6,
                        l.redis * 1e6,
                        l.elapsed * 1e6,
                    );
                    if let Some(o) = o {
                        println!(
                            "{kind} {} round {r}: {size} on the other build: {:.1} µs CPU (redis-server {:.1}), {:.1} µs a request",
                            mix.name(),
                            o.cpu * 1e6,
                            o.redis * 1e6,
                            o.elapsed * 1e6,
                        );
                        against.push(l.cpu / o.cpu);
                    }
                    small_us.push(s.cpu * 1e6);
                    large_us.push(l.cpu * 1e6);
                    cpu.push(l.cpu / s.cpu);
                    elapsed.push(l.elapsed / s.elapsed);
                }
                println!(
                    "{kind} {} over HTTP, {size} / {SMALL} sessions: CPU per request {}, time per request {} (median [range] of {rounds} rounds); µs CPU per request {SMALL}: {}, {size}: {}",
                    mix.name(),
                    summary(&mut cpu),
                    summary(&mut elapsed),
                    summary(&mut small_us),
                    summary(&mut large_us),
                );
                if !against.is_empty() {
                    println!(
                        "{kind} {} over HTTP at {size} sessions, this build / the other: CPU per request {} (median [range] of {rounds} rounds)",
                        mix.name(),
                        summary(&mut against),
                    );
                }
            }
        }
    }
}
