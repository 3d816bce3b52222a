//! store-redis `get` and `set` beside the raw commands a hand-written client
//! would send (`HGET`, and `HSET` + `PEXPIRE` pipelined), measured in the same
//! run, on the same kind of connection (one multiplexed, auto-reconnecting
//! `ConnectionManager`) to a redis-server the bench starts itself, with 1 and
//! 50 concurrent tasks on a 2-worker runtime.
//!
//! The ratio `store / raw` (throughput) is what the store costs over the bare
//! commands: the atomic expiry refresh on reads (`MULTI`/`EXEC`), strict-mode
//! writes (a script), and key and argument building. `get (absolute)` reads a
//! session with an absolute lifetime, which goes through a script.
//!
//! Besides criterion's figures, each pair is also measured interleaved, in
//! short alternating rounds, and the median ratio printed: on a shared,
//! noisy machine that is steadier than two runs seconds apart.
//!
//! ```text
//! cargo bench -p store-redis --bench redis
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redis::aio::ConnectionManager;
use redis_test_server::RedisServer;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode};
use store_redis::RedisStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));
const ABSOLUTE: ExpiryPolicy = POLICY.with_absolute(Duration::from_secs(7200));
const VALUE: &[u8] = b"\"a short json string value\"";
const KEYS: usize = 10;

#[derive(Clone, Copy, Debug)]
enum Op {
    StoreGet,
    StoreGetAbsolute,
    RawHget,
    RawMultiHgetPexpire,
    StoreSet,
    RawHsetPexpire,
}

impl Op {
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Op::StoreGet => ("get", "store-redis"),
            Op::StoreGetAbsolute => ("get (absolute)", "store-redis"),
            Op::RawHget => ("get", "raw HGET"),
            Op::RawMultiHgetPexpire => ("get", "raw MULTI HGET+PEXPIRE"),
            Op::StoreSet => ("set", "store-redis"),
            Op::RawHsetPexpire => ("set", "raw HSET+PEXPIRE"),
        }
    }
}

/// Everything the operations work on: one warm session of 10 keys (and one
/// with an absolute lifetime), the store, and a raw connection to the same server.
struct Bench {
    store: RedisStore,
    raw: ConnectionManager,
    id: SessionId,
    absolute_id: SessionId,
    /// The session's Redis key, built in advance for the raw baseline.
    hash: String,
    keys: Vec<String>,
}

impl Bench {
    async fn op(&self, op: Op, n: u64) {
        let key = &self.keys[n as usize % KEYS];
        match op {
            Op::StoreGet => {
                assert!(self
                    .store
                    .get(&self.id, key, &POLICY)
                    .await
                    .unwrap()
                    .is_some())
            }
            Op::StoreGetAbsolute => assert!(self
                .store
                .get(&self.absolute_id, key, &ABSOLUTE)
                .await
                .unwrap()
                .is_some()),
            Op::RawHget => {
                let value: Option<Vec<u8>> = redis::cmd("HGET")
                    .arg(&self.hash)
                    .arg(key)
                    .query_async(&mut self.raw.clone())
                    .await
                    .unwrap();
                assert!(value.is_some());
            }
            Op::RawMultiHgetPexpire => {
                let (value,): (Option<Vec<u8>>,) = redis::pipe()
                    .atomic()
                    .cmd("HGET")
                    .arg(&self.hash)
                    .arg(key)
                    .cmd("PEXPIRE")
                    .arg(&self.hash)
                    .arg(3_600_000)
                    .ignore()
                    .query_async(&mut self.raw.clone())
                    .await
                    .unwrap();
                assert!(value.is_some());
            }
            Op::StoreSet => {
                let _ = self
                    .store
                    .set(&self.id, key, VALUE, WriteMode::Existing, &POLICY)
                    .await
                    .unwrap();
            }
            Op::RawHsetPexpire => {
                let () = redis::pipe()
                    .cmd("HSET")
                    .arg(&self.hash)
                    .arg(key)
                    .arg(VALUE)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(&self.hash)
                    .arg(3_600_000)
                    .ignore()
                    .query_async(&mut self.raw.clone())
                    .await
                    .unwrap();
            }
        }
    }
}

/// Runs `op` `iters` times in each of `tasks` tasks; returns the wall time.
async fn run(bench: &Arc<Bench>, op: Op, tasks: usize, iters: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let bench = bench.clone();
            tokio::spawn(async move {
                for i in 0..iters {
                    bench.op(op, i).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    start.elapsed()
}

/// Throughput of `store` over that of `raw`, from alternating rounds of each:
/// (median, lowest, highest) over the rounds.
async fn interleaved_ratio(
    bench: &Arc<Bench>,
    store: Op,
    raw: Op,
    tasks: usize,
) -> (f64, f64, f64) {
    let iters = if tasks == 1 { 400 } else { 40 };
    let mut ratios: Vec<f64> = Vec::new();
    for _ in 0..30 {
        let store_time = run(bench, store, tasks, iters).await;
        let raw_time = run(bench, raw, tasks, iters).await;
        ratios.push(raw_time.as_secs_f64() / store_time.as_secs_f64());
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    (
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    )
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = runtime.block_on(async {
        let store = RedisStore::builder()
            .url(server.url())
            .build()
            .await
            .unwrap();
        let raw = ConnectionManager::new(redis::Client::open(server.url()).unwrap())
            .await
            .unwrap();
        let (id, absolute_id) = (
            SessionId::generate("session:"),
            SessionId::generate("session:"),
        );
        let keys: Vec<String> = (0..KEYS).map(|i| format!("key{i}")).collect();
        for key in &keys {
            for (id, policy) in [(&id, &POLICY), (&absolute_id, &ABSOLUTE)] {
                let _ = store
                    .set(id, key, VALUE, WriteMode::Create, policy)
                    .await
                    .unwrap();
            }
        }
        let hash = store.key(&id);
        Arc::new(Bench {
            store,
            raw,
            id,
            absolute_id,
            hash,
            keys,
        })
    });

    let ops = [
        Op::StoreGet,
        Op::StoreGetAbsolute,
        Op::RawHget,
        Op::RawMultiHgetPexpire,
        Op::StoreSet,
        Op::RawHsetPexpire,
    ];
    for tasks in [1usize, 50] {
        let mut group = c.benchmark_group(format!("redis/{tasks}-tasks"));
        group.throughput(Throughput::Elements(tasks as u64));
        group.measurement_time(Duration::from_secs(5));
        for op in ops {
            let (function, parameter) = op.name();
            group.bench_function(BenchmarkId::new(function, parameter), |b| {
                b.to_async(&runtime)
                    .iter_custom(|iters| run(&bench, op, tasks, iters))
            });
        }
        group.finish();
    }

    println!(
        "\ninterleaved throughput ratios, store / raw (median [lowest, highest] of 30 rounds):"
    );
    for tasks in [1usize, 50] {
        for (store, raw) in [
            (Op::StoreGet, Op::RawHget),
            (Op::RawMultiHgetPexpire, Op::RawHget),
            (Op::StoreGet, Op::RawMultiHgetPexpire),
            (Op::StoreGetAbsolute, Op::RawHget),
            (Op::StoreSet, Op::RawHsetPexpire),
        ] {
            let (median, low, high) =
                runtime.block_on(interleaved_ratio(&bench, store, raw, tasks));
            println!(
                "  {tasks:>2} tasks  {:<30} vs {:<27} {median:.2} [{low:.2}, {high:.2}]",
                format!("{} {}", store.name().0, store.name().1),
                raw.name().1,
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
