//! store-memory `get`/`set` beside raw moka `get`/`insert`, measured in the same
//! run, with 1 and 2 concurrent tasks on a 2-worker runtime.
//!
//! Every iteration is one operation per task on a warm session of 10 keys, so
//! the ratio `raw moka / store-memory` is the cost of per-session records,
//! expiry and strict writes over a bare cache operation.
//!
//! After criterion's figures, the same operations run in alternating rounds
//! (store, raw, raw, store, ...), and the median ratio store / raw of their
//! throughputs is printed: the figure to quote on a shared machine, where
//! separate benchmarks minutes apart are not comparable.
//!
//! ```text
//! cargo bench -p store-memory --bench memory
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use moka::future::Cache;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode};
use store_memory::MemoryStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("key{i}")).collect());

    let store = Arc::new(MemoryStore::new());
    let id = Arc::new(SessionId::generate("session:"));
    // The baseline keys one moka entry per session field, keys built in advance,
    // so it pays for nothing but the cache operation itself.
    let raw: Cache<String, Arc<[u8]>> = Cache::builder().max_capacity(1 << 20).build();
    let raw_keys: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|key| format!("{}:{key}", id.as_str()))
            .collect(),
    );
    runtime.block_on(async {
        for (key, raw_key) in keys.iter().zip(raw_keys.iter()) {
            let _ = store
                .set(&id, key, VALUE, WriteMode::Create, &POLICY)
                .await
                .unwrap();
            raw.insert(raw_key.clone(), Arc::from(VALUE)).await;
        }
    });

    for tasks in [1usize, 2] {
        let mut group = c.benchmark_group(format!("memory/{tasks}-tasks"));
        group.throughput(Throughput::Elements(tasks as u64));
        group.measurement_time(Duration::from_secs(4));

        let (s, i, k) = (store.clone(), id.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("get", "store-memory"), |b| {
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

        let (r, k) = (raw.clone(), raw_keys.clone());
        group.bench_function(BenchmarkId::new("get", "raw-moka"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (r, k) = (r.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (r, k) = (r.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        assert!(r.get(key).await.map(|v| v.to_vec()).is_some());
                    }
                })
            })
        });

        let (s, i, k) = (store.clone(), id.clone(), keys.clone());
        group.bench_function(BenchmarkId::new("set", "store-memory"), |b| {
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

        let (r, k) = (raw.clone(), raw_keys.clone());
        group.bench_function(BenchmarkId::new("set", "raw-moka"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (r, k) = (r.clone(), k.clone());
                run(tasks, iters, move |n| {
                    let (r, k) = (r.clone(), k.clone());
                    async move {
                        r.insert(k[n as usize % KEYS].clone(), Arc::from(VALUE))
                            .await;
                    }
                })
            })
        });
        group.finish();
    }
}

/// Operations per second of `tasks` tasks doing `per_task` operations each.
fn rate<F, Fut>(runtime: &tokio::runtime::Runtime, tasks: usize, per_task: u64, op: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let took = runtime.block_on(run(tasks, per_task, op));
    (tasks as u64 * per_task) as f64 / took.as_secs_f64()
}

fn interleaved(_c: &mut Criterion) {
    const ROUNDS: usize = 21;
    const PER_TASK: u64 = 50_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let id = Arc::new(SessionId::generate("session:"));
    let raw: Cache<String, Arc<[u8]>> = Cache::builder().max_capacity(1 << 20).build();
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("key{i}")).collect());
    let raw_keys: Arc<Vec<String>> = Arc::new(
        keys.iter()
            .map(|key| format!("{}:{key}", id.as_str()))
            .collect(),
    );
    runtime.block_on(async {
        for (key, raw_key) in keys.iter().zip(raw_keys.iter()) {
            let _ = store
                .set(&id, key, VALUE, WriteMode::Create, &POLICY)
                .await
                .unwrap();
            raw.insert(raw_key.clone(), Arc::from(VALUE)).await;
        }
    });
    println!("\ninterleaved throughput ratios, store-memory / raw moka (median [lowest, highest] of {ROUNDS} rounds):");
    for tasks in [1usize, 2] {
        for op in ["get", "set"] {
            let store_rate = || {
                let (s, i, k) = (store.clone(), id.clone(), keys.clone());
                rate(&runtime, tasks, PER_TASK, move |n| {
                    let (s, i, k) = (s.clone(), i.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        if op == "get" {
                            assert!(s.get(&i, key, &POLICY).await.unwrap().is_some());
                        } else {
                            let _ = s
                                .set(&i, key, VALUE, WriteMode::Existing, &POLICY)
                                .await
                                .unwrap();
                        }
                    }
                })
            };
            let raw_rate = || {
                let (r, k) = (raw.clone(), raw_keys.clone());
                rate(&runtime, tasks, PER_TASK, move |n| {
                    let (r, k) = (r.clone(), k.clone());
                    async move {
                        let key = &k[n as usize % KEYS];
                        if op == "get" {
                            assert!(r.get(key).await.map(|v| v.to_vec()).is_some());
                        } else {
                            r.insert(key.clone(), Arc::from(VALUE)).await;
                        }
                    }
                })
            };
            let mut ratios: Vec<f64> = (0..ROUNDS)
                .map(|round| {
                    let (s, r) = if round % 2 == 0 {
                        let s = store_rate();
                        (s, raw_rate())
                    } else {
                        let r = raw_rate();
                        (store_rate(), r)
                    };
                    s / r
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {op} {tasks} task(s): {:.3} [{:.3}, {:.3}]",
                ratios[ROUNDS / 2],
                ratios[0],
                ratios[ROUNDS - 1]
            );
        }
    }
}

criterion_group!(benches, bench, interleaved);
criterion_main!(benches);
