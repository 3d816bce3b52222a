//! store-redis `get` and `set` beside the raw commands a hand-written client
//! would send (`HGET`, and `HSET` + `PEXPIRE` pipelined), measured in the same
//! run, on the same kind of connection (one multiplexed, auto-reconnecting
//! `ConnectionManager`) to a redis-server the bench starts itself, with 1 and
//! 50 concurrent tasks on a 2-worker runtime.
//!
//! The ratio `raw / store` is what the store costs over the bare commands:
//! the atomic expiry refresh on reads (`MULTI`/`EXEC`), strict-mode writes
//! (a script), and key and argument building. `get (absolute)` is a read
//! of a session with an absolute lifetime, which goes through a script.
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

/// Runs `op` `iters` times in each of `tasks` tasks; returns the wall time.
async fn run<F, Fut>(tasks: usize, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..iters {
                    op(i).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("key{i}")).collect());
    let (store, raw, id, absolute_id) = runtime.block_on(async {
        let store = RedisStore::builder()
            .url(server.url())
            .build()
            .await
            .unwrap();
        let raw = ConnectionManager::new(redis::Client::open(server.url()).unwrap())
            .await
            .unwrap();
        let id = SessionId::generate("session:");
        let absolute_id = SessionId::generate("session:");
        for key in keys.iter() {
            let _ = store
                .set(&id, key, VALUE, WriteMode::Create, &POLICY)
                .await
                .unwrap();
            let _ = store
                .set(&absolute_id, key, VALUE, WriteMode::Create, &ABSOLUTE)
                .await
                .unwrap();
        }
        (Arc::new(store), raw, Arc::new(id), Arc::new(absolute_id))
    });
    // The raw baseline works on the same hash, its key built in advance.
    let hash: Arc<str> = Arc::from(store.key(&id));

    for tasks in [1usize, 50] {
        let mut group = c.benchmark_group(format!("redis/{tasks}-tasks"));
        group.throughput(Throughput::Elements(tasks as u64));
        group.measurement_time(Duration::from_secs(5));

        let (s, i, k) = (store.clone(), id.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("get", "store-redis"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (s, i, k) = (s.clone(), i.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (s, i, k) = (s.clone(), i.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        assert!(s.get(&i, key, &POLICY).await.unwrap().is_some());
                    }
                })
            })
        });

        let (s, i, k) = (store.clone(), absolute_id.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("get (absolute)", "store-redis"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (s, i, k) = (s.clone(), i.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (s, i, k) = (s.clone(), i.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        assert!(s.get(&i, key, &ABSOLUTE).await.unwrap().is_some());
                    }
                })
            })
        });

        let (r, h, k) = (raw.clone(), hash.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("get", "raw HGET"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (r, h, k) = (r.clone(), h.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (mut r, h, k) = (r.clone(), h.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        let value: Option<Vec<u8>> = redis::cmd("HGET")
                            .arg(&*h)
                            .arg(key)
                            .query_async(&mut r)
                            .await
                            .unwrap();
                        assert!(value.is_some());
                    }
                })
            })
        });

        let (s, i, k) = (store.clone(), id.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("set", "store-redis"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (s, i, k) = (s.clone(), i.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (s, i, k) = (s.clone(), i.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        let _ = s
                            .set(&i, key, VALUE, WriteMode::Existing, &POLICY)
                            .await
                            .unwrap();
                    }
                })
            })
        });

        let (r, h, k) = (raw.clone(), hash.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("set", "raw HSET+PEXPIRE"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (r, h, k) = (r.clone(), h.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (mut r, h, k) = (r.clone(), h.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        let () = redis::pipe()
                            .cmd("HSET")
                            .arg(&*h)
                            .arg(key)
                            .arg(VALUE)
                            .ignore()
                            .cmd("PEXPIRE")
                            .arg(&*h)
                            .arg(3_600_000)
                            .ignore()
                            .query_async(&mut r)
                            .await
                            .unwrap();
                    }
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
