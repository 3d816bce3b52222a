//! Owned sessions on every store, with 100,000 sessions in the store: the
//! time to list one owner's 10 sessions, to log that owner out everywhere,
//! and to count the sessions active in the last minute.
//!
//! ```text
//! cargo bench -p examples --bench owners
//! OWNERS_SESSIONS=10000 OWNERS_STORES=memory,redis cargo bench -p examples --bench owners
//! ```
//!
//! Stores (`OWNERS_STORES`, default all): `memory`, `redb` and `sled` (each
//! with `Durability::Every(500 ms)`, so that filling it takes seconds; reads
//! and listings do not wait for the disk either way), `redis` (a
//! `redis-server` the bench starts on a free loopback port) and
//! `redis-cluster` (a local cluster of three masters), each also with its
//! activity index (`redis-indexed`, `redis-cluster-indexed`).
//! `OWNERS_SESSIONS` sets the store's size (default 100,000).
//!
//! Each figure is criterion's estimate; the hot path's cost (get and set
//! against the build before owned sessions) is the HTTP load bench's job.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use redis_test_server::{RedisCluster, RedisServer};
use session_core::testkit::soak::env_number;
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_memory::MemoryStore;
use store_redb::RedbStore;
use store_redis::RedisStore;
use store_sled::SledStore;

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

/// A store under test and what must outlive it.
struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any>,
}

fn subjects(runtime: &tokio::runtime::Runtime) -> Vec<Subject> {
    let wanted = std::env::var("OWNERS_STORES").unwrap_or_else(|_| {
        "memory,redb,sled,redis,redis-indexed,redis-cluster,redis-cluster-indexed".into()
    });
    let every = Duration::from_millis(500);
    let mut subjects = Vec::new();
    for name in wanted.split(',').map(str::trim) {
        let (name, store, guard): (&'static str, Arc<dyn Store>, Box<dyn std::any::Any>) =
            match name {
                "memory" => (
                    "memory",
                    Arc::new(MemoryStore::builder().max_bytes(1 << 30).build()),
                    Box::new(()),
                ),
                "redb" => {
                    let dir = tempfile::tempdir().expect("temporary directory");
                    let store = RedbStore::builder()
                        .path(dir.path().join("sessions.redb"))
                        .durability(store_redb::Durability::Every(every))
                        .open()
                        .expect("open redb");
                    ("redb", Arc::new(store), Box::new(dir))
                }
                "sled" => {
                    let dir = tempfile::tempdir().expect("temporary directory");
                    let store = SledStore::builder()
                        .path(dir.path())
                        .durability(store_sled::Durability::Every(every))
                        .open()
                        .expect("open sled");
                    ("sled", Arc::new(store), Box::new(dir))
                }
                "redis" | "redis-indexed" => {
                    let server = RedisServer::start();
                    let indexed = name == "redis-indexed";
                    let builder = RedisStore::builder()
                        .url(server.url())
                        .activity_index(indexed);
                    let store = runtime.block_on(builder.build()).expect("connect to redis");
                    let name = if indexed { "redis-indexed" } else { "redis" };
                    (name, Arc::new(store), Box::new(server))
                }
                "redis-cluster" | "redis-cluster-indexed" => {
                    let cluster = RedisCluster::start(3);
                    let indexed = name == "redis-cluster-indexed";
                    let builder = RedisStore::builder()
                        .cluster(cluster.urls())
                        .activity_index(indexed);
                    let store = runtime
                        .block_on(builder.build())
                        .expect("connect to the cluster");
                    let name = if indexed {
                        "redis-cluster-indexed"
                    } else {
                        "redis-cluster"
                    };
                    (name, Arc::new(store), Box::new(cluster))
                }
                other => panic!("OWNERS_STORES: unknown store {other}"),
            };
        subjects.push(Subject {
            name,
            store,
            _guard: guard,
        });
    }
    subjects
}

/// A session bound to `owner` (or none).
async fn session(store: &dyn Store, owner: Option<&str>) -> SessionId {
    let id = SessionId::generate("session:");
    let changes = [("k".to_string(), Some(b"\"v\"".to_vec()))];
    let outcome = store
        .set_many(&id, &changes, WriteMode::Create, &POLICY)
        .await
        .expect("create");
    assert_eq!(outcome, WriteOutcome::Applied);
    if let Some(owner) = owner {
        assert!(store
            .bind_owner(&id, owner, None, &POLICY)
            .await
            .expect("bind"));
    }
    id
}

/// Fills the store with `count` sessions, one in ten owned (by owners of
/// ten sessions each), 64 at a time.
async fn fill(store: &Arc<dyn Store>, count: usize) {
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (task..count).step_by(64) {
                    let owner = (i % 10 == 0).then(|| format!("filler-{}", i / 100));
                    session(&*store, owner.as_deref()).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a filler");
    }
}

fn owners(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let count = env_number("OWNERS_SESSIONS", 100_000) as usize;
    for subject in subjects(&runtime) {
        let store = &subject.store;
        let started = std::time::Instant::now();
        runtime.block_on(fill(store, count));
        println!(
            "{}: {count} sessions stored in {:.1} s",
            subject.name,
            started.elapsed().as_secs_f64()
        );
        runtime.block_on(async {
            for _ in 0..10 {
                session(&**store, Some("ada")).await;
            }
        });
        let mut group = c.benchmark_group(format!("owners/{}", subject.name));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(5));
        group.bench_function("list an owner's 10 sessions", |b| {
            b.iter(|| {
                let listed = runtime.block_on(store.owner_sessions("ada")).expect("list");
                assert_eq!(listed.len(), 10);
            })
        });
        let mut round = 0;
        group.bench_function("log out everywhere (10 sessions)", |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let owner = format!("leaver-{round}");
                    runtime.block_on(async {
                        for _ in 0..10 {
                            session(&**store, Some(&owner)).await;
                        }
                    });
                    owner
                },
                |owner| {
                    let ended = runtime
                        .block_on(store.destroy_owner(&owner, None))
                        .expect("log out");
                    assert_eq!(ended, 10);
                },
                BatchSize::PerIteration,
            )
        });
        group.sample_size(10);
        group.bench_function(format!("count active in the last minute ({count})"), |b| {
            b.iter(|| {
                let active = runtime
                    .block_on(store.count_active(Duration::from_secs(60)))
                    .expect("count");
                assert!(active >= count as u64, "{active}");
            })
        });
        group.finish();
    }
}

criterion_group!(benches, owners);
criterion_main!(benches);
