//! Flat cost as the store grows: each store's `get` and `set` with 1,000 live
//! sessions beside the same store kind holding 100,000 and 1,000,000, in
//! alternating rounds (small, large, large, small, ...), so that the machine's
//! drift hits both alike. Prints the median ratio large / small of the
//! elapsed time per operation and of the machine's busy CPU time per
//! operation (1.0 is flat). The CPU time comes in 10 ms clock ticks, so it
//! only means something for timed runs of a second or more: not for the
//! in-memory stores at the default `SCALE_OPS`.
//!
//! ```text
//! cargo bench -p examples --bench scale
//! SCALE_STORES=sled SCALE_SIZES=100000,300000 cargo bench -p examples --bench scale
//! ```
//!
//! `SCALE_STORES` (default `moka,memory,raw-redis,redis,redis-scripted,redb,sled`) and `SCALE_SIZES`
//! (default `100000,1000000`) choose what runs, `SCALE_ROUNDS` (default 7)
//! how many rounds, `SCALE_OPS` (default 500) the operations of each task in
//! one timed run (a store whose background work runs every second, as
//! Redis's flush of read counts does, needs runs of a few seconds to show its
//! share: `SCALE_OPS=2000`), `SCALE_CACHE_MB` the page cache of redb and
//! sled (default 1024, their drivers' own default, as store-memory may hold
//! 4 GiB here: every store has room for all its sessions; 0 for each
//! store's own default, 64 MiB, which a million sessions outgrow). Reads use
//! the default touch granularity. Sessions hold one 64-byte value, written
//! then read once; 64 tasks read or write random sessions.
//! `redis` reads with a plain `HGET` where no refresh is due
//! ([`RedisStoreBuilder::plain_reads`](store_redis::RedisStoreBuilder::plain_reads),
//! sized to hold every session), `redis-scripted` with the read script. The embedded stores sync
//! every 500 ms while they are filled and measured (the figure is the
//! lookup's, not the disk's). Each Redis store has a `redis-server` of its
//! own, started here on a free loopback port. `moka` is the baseline for
//! `memory`: a bare moka cache from session id to value, with no session
//! work, timed the same way, so that what the memory hierarchy costs at a
//! size shows apart from what store-memory adds. `raw-redis` is the same for
//! `redis`: a bare `HGET` / `HSET` of one field of a hash per session (which
//! expires in an hour), so that what Redis itself costs at a size shows apart
//! from what store-redis adds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_test_server::RedisServer;
use session_core::testkit::soak::env_number;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome, DEFAULT_TOUCH_AFTER};
use store_memory::MemoryStore;
use store_redb::RedbStore;
use store_redis::RedisStore;
use store_sled::SledStore;

/// The defaults a `SessionConfig` gives: reads slide the expiry at most once
/// a minute, so they are reads, as in production.
const POLICY: ExpiryPolicy =
    ExpiryPolicy::idle(Duration::from_secs(3600)).with_touch_after(DEFAULT_TOUCH_AFTER);
const SMALL: usize = 1_000;
const TASKS: usize = 64;
const ROUNDS: u64 = 7;
/// Operations per task in one timed run, unless `SCALE_OPS` says otherwise.
const PER_TASK: u64 = 500;

/// A store with its live sessions, and what must outlive it.
struct Filled {
    store: Arc<dyn Store>,
    ids: Arc<Vec<SessionId>>,
    _keep: Box<dyn std::any::Any>,
}

fn open(kind: &str, runtime: &tokio::runtime::Runtime) -> (Arc<dyn Store>, Box<dyn std::any::Any>) {
    let every = Duration::from_millis(500);
    let cache_mb = env_number("SCALE_CACHE_MB", 1024);
    let cache_bytes = usize::try_from(cache_mb << 20).expect("SCALE_CACHE_MB");
    match kind {
        "memory" => (
            Arc::new(MemoryStore::builder().max_bytes(4 << 30).build()),
            Box::new(()),
        ),
        "redb" => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut builder = RedbStore::builder()
                .path(dir.path().join("sessions.redb"))
                .durability(store_redb::Durability::Every(every));
            if cache_bytes > 0 {
                builder = builder.cache_bytes(cache_bytes);
            }
            let store = builder.open().expect("open redb");
            (Arc::new(store), Box::new(dir))
        }
        "sled" => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut builder = SledStore::builder()
                .path(dir.path())
                .durability(store_sled::Durability::Every(every));
            if cache_bytes > 0 {
                builder = builder.cache_bytes(u64::try_from(cache_bytes).expect("cache size"));
            }
            let store = builder.open().expect("open sled");
            (Arc::new(store), Box::new(dir))
        }
        // "redis" serves reads inside the touch granularity with a plain
        // HGET, for every session here (they were all read once, just
        // after they were written); "redis-scripted" runs the read script
        // every time, as for a session not read in the last minute.
        "redis" | "redis-scripted" => {
            let server = RedisServer::start();
            let plain = if kind == "redis" { 4_000_000 } else { 0 };
            let builder = RedisStore::builder().url(server.url()).plain_reads(plain);
            let store = runtime.block_on(builder.build()).expect("connect to redis");
            (Arc::new(store), Box::new(server))
        }
        other => panic!("unknown store {other:?}: memory, redis, redis-scripted, redb or sled"),
    }
}

/// A `kind` store holding `sessions` live sessions, written by 64 tasks.
fn filled(kind: &str, sessions: usize, runtime: &tokio::runtime::Runtime) -> Filled {
    let (store, keep) = open(kind, runtime);
    let started = Instant::now();
    let writer = store.clone();
    let ids = fill(sessions, runtime, move |id| {
        let store = writer.clone();
        async move {
            let outcome =
                patiently(|| store.set(&id, "v", &[b'x'; 64], WriteMode::Create, &POLICY))
                    .await
                    .expect("fill");
            assert_eq!(outcome, WriteOutcome::Applied);
            // Every session live and recently read, as in production
            // within the touch granularity.
            let read = patiently(|| store.get(&id, "v", &POLICY))
                .await
                .expect("read");
            assert!(read.is_some());
        }
    });
    eprintln!(
        "  {kind}: {sessions} sessions written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Filled {
        store,
        ids,
        _keep: keep,
    }
}

/// `sessions` new session ids, each given to `op` once, by 64 tasks.
fn fill<F, Fut>(sessions: usize, runtime: &tokio::runtime::Runtime, op: F) -> Arc<Vec<SessionId>>
where
    F: Fn(SessionId) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let ids: Arc<Vec<SessionId>> = Arc::new(
        (0..sessions)
            .map(|_| SessionId::generate("session:"))
            .collect(),
    );
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (ids, op) = (ids.clone(), op.clone());
                tokio::spawn(async move {
                    for id in ids.iter().skip(task).step_by(TASKS) {
                        op(id.clone()).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("fill task");
        }
    });
    ids
}

/// `op`, again while the store is slow or reconnecting (it misses its
/// deadline, or the connection it was on broke), at most [`FILL_ATTEMPTS`]
/// times: filling a million sessions on a busy machine may meet a slow
/// moment, which is not what this bench measures. Both the fill's operations
/// may run twice: a create of a live session, a read.
async fn patiently<T, F, Fut>(op: F) -> session_core::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = session_core::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(error) if error.is_unavailable() && attempt < FILL_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done => return done,
        }
    }
}

/// Tries of one fill operation while the store is slow or reconnecting.
const FILL_ATTEMPTS: usize = 5;

/// Seconds per operation of 64 tasks doing `op` on random sessions of `filled`.
fn cost(filled: &Filled, op: &'static str, runtime: &tokio::runtime::Runtime, seed: u64) -> Cost {
    let store = filled.store.clone();
    timed(&filled.ids, runtime, seed, move |id| {
        let store = store.clone();
        async move {
            if op == "get" {
                let value = store.get(&id, "v", &POLICY).await.expect("get");
                assert!(value.is_some());
            } else {
                let _ = store
                    .set(&id, "v", &[b'y'; 64], WriteMode::Existing, &POLICY)
                    .await
                    .expect("set");
            }
        }
    })
}

/// What one operation cost in a timed run, in seconds.
#[derive(Clone, Copy)]
struct Cost {
    /// Elapsed time over operations.
    wall: f64,
    /// The machine's busy CPU time (every process: this bench and its
    /// `redis-server`) over operations. Time the machine was idle, or had
    /// its CPUs taken by the host (steal), is not in it, so it drifts less
    /// than `wall` on a shared machine.
    cpu: f64,
}

/// The machine's busy CPU time so far, in clock ticks (`/proc/stat`).
fn busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let cpu = stat.lines().next().expect("/proc/stat: the cpu line");
    // user nice system idle iowait irq softirq steal ...: busy is all but
    // idle, iowait and steal.
    cpu.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(field, _)| ![3, 4, 7].contains(field))
        .map(|(_, ticks)| ticks.parse::<u64>().expect("/proc/stat: ticks"))
        .sum()
}

/// Clock ticks a second, as `/proc/stat` counts them (USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;

/// The cost per operation of 64 tasks each running `op` on random ids of
/// `ids`: the same ids, in the same order, for every store and size given
/// the same `seed`.
fn timed<F, Fut>(
    ids: &Arc<Vec<SessionId>>,
    runtime: &tokio::runtime::Runtime,
    seed: u64,
    op: F,
) -> Cost
where
    F: Fn(SessionId) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per_task = usize::try_from(env_number("SCALE_OPS", PER_TASK)).expect("SCALE_OPS");
    let busy = busy_ticks();
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS as u64)
            .map(|task| {
                let (ids, op) = (ids.clone(), op.clone());
                tokio::spawn(async move {
                    // A small xorshift: random sessions, the same for both sizes' runs.
                    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (task + 1);
                    for _ in 0..per_task {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        op(ids[(x % ids.len() as u64) as usize].clone()).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
    let ops = (TASKS * per_task) as f64;
    Cost {
        wall: started.elapsed().as_secs_f64() / ops,
        cpu: (busy_ticks() - busy) as f64 / TICKS_PER_SEC / ops,
    }
}

/// The baseline: a bare moka cache from session id to a 64-byte value,
/// expiring after an hour idle, holding `sessions`.
struct Moka {
    cache: moka::future::Cache<SessionId, Arc<Vec<u8>>>,
    ids: Arc<Vec<SessionId>>,
}

impl Moka {
    fn filled(sessions: usize, runtime: &tokio::runtime::Runtime) -> Moka {
        let cache = moka::future::Cache::builder()
            .max_capacity(u64::MAX)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let ids: Arc<Vec<SessionId>> = Arc::new(
            (0..sessions)
                .map(|_| SessionId::generate("session:"))
                .collect(),
        );
        runtime.block_on(async {
            for id in ids.iter() {
                cache.insert(id.clone(), Arc::new(vec![b'x'; 64])).await;
            }
        });
        Moka { cache, ids }
    }

    fn cost(&self, op: &'static str, runtime: &tokio::runtime::Runtime, seed: u64) -> Cost {
        let cache = self.cache.clone();
        timed(&self.ids, runtime, seed, move |id| {
            let cache = cache.clone();
            async move {
                if op == "get" {
                    assert!(cache.get(&id).await.is_some());
                } else {
                    cache.insert(id, Arc::new(vec![b'y'; 64])).await;
                }
            }
        })
    }
}

/// The baseline for store-redis: a hash per session holding one 64-byte
/// field, read with `HGET` and written with `HSET`, with no session work.
struct RawRedis {
    connection: redis::aio::MultiplexedConnection,
    ids: Arc<Vec<SessionId>>,
    _server: RedisServer,
}

impl RawRedis {
    fn filled(sessions: usize, runtime: &tokio::runtime::Runtime) -> RawRedis {
        let server = RedisServer::start();
        let connection = runtime.block_on(async {
            let client = redis::Client::open(server.url()).expect("redis url");
            client
                .get_multiplexed_async_connection()
                .await
                .expect("connect to redis")
        });
        let writer = connection.clone();
        let ids = fill(sessions, runtime, move |id| {
            let mut connection = writer.clone();
            async move {
                let () = redis::pipe()
                    .hset(id.as_str(), "v", &[b'x'; 64])
                    .ignore()
                    .expire(id.as_str(), 3600)
                    .ignore()
                    .query_async(&mut connection)
                    .await
                    .expect("fill");
            }
        });
        RawRedis {
            connection,
            ids,
            _server: server,
        }
    }

    fn cost(&self, op: &'static str, runtime: &tokio::runtime::Runtime, seed: u64) -> Cost {
        let connection = self.connection.clone();
        timed(&self.ids, runtime, seed, move |id| {
            let mut connection = connection.clone();
            async move {
                if op == "get" {
                    let value: Option<Vec<u8>> = redis::cmd("HGET")
                        .arg(id.as_str())
                        .arg("v")
                        .query_async(&mut connection)
                        .await
                        .expect("HGET");
                    assert!(value.is_some());
                } else {
                    let _: i64 = redis::cmd("HSET")
                        .arg(id.as_str())
                        .arg("v")
                        .arg(&[b'y'; 64])
                        .query_async(&mut connection)
                        .await
                        .expect("HSET");
                }
            }
        })
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stores = std::env::var("SCALE_STORES")
        .unwrap_or_else(|_| "moka,memory,raw-redis,redis,redis-scripted,redb,sled".into());
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|size| size.trim().parse().expect("SCALE_SIZES: numbers"))
        .collect();
    let rounds = usize::try_from(env_number("SCALE_ROUNDS", ROUNDS)).expect("SCALE_ROUNDS");
    println!("cost per operation at n live sessions / at {SMALL}, by elapsed time and by the machine's busy CPU time (median [lowest, highest] of {rounds} interleaved rounds; 64 tasks):");
    for kind in stores.split(',').map(str::trim) {
        // What one timed run costs, per operation, at a size.
        type Run<'a> = Box<dyn Fn(&'static str, u64) -> Cost + 'a>;
        let runtime = &runtime;
        let open = |size: usize| -> Run<'_> {
            if kind == "moka" {
                let moka = Moka::filled(size, runtime);
                Box::new(move |op, seed| moka.cost(op, runtime, seed))
            } else if kind == "raw-redis" {
                let raw = RawRedis::filled(size, runtime);
                Box::new(move |op, seed| raw.cost(op, runtime, seed))
            } else {
                let filled = filled(kind, size, runtime);
                Box::new(move |op, seed| cost(&filled, op, runtime, seed))
            }
        };
        let small = open(SMALL);
        for &size in &sizes {
            let large = open(size);
            for op in ["get", "set"] {
                // Each round's large / small, by elapsed time and by CPU.
                let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..rounds)
                    .map(|round| {
                        let seed = round as u64 + 1;
                        let (s, l) = if round % 2 == 0 {
                            let s = small(op, seed);
                            (s, large(op, seed))
                        } else {
                            let l = large(op, seed);
                            (small(op, seed), l)
                        };
                        (l.wall / s.wall, l.cpu / s.cpu)
                    })
                    .unzip();
                let (at_small, at_large) = (small(op, 99), large(op, 99));
                println!(
                    "  {kind:<9} {op} n={size:<8} wall {}   cpu {}   (one more run, µs/op wall and CPU: {:.1}, {:.1} at {SMALL}; {:.1}, {:.1} at {size})",
                    spread(&mut wall),
                    spread(&mut cpu),
                    at_small.wall * 1e6,
                    at_small.cpu * 1e6,
                    at_large.wall * 1e6,
                    at_large.cpu * 1e6,
                );
            }
        }
    }
}

/// `median [lowest, highest]` of `ratios`.
fn spread(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    format!(
        "{:.2} [{:.2}, {:.2}]",
        ratios[n / 2],
        ratios[0],
        ratios[n - 1]
    )
}
