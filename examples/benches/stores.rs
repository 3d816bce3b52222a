//! The embedded stores' `get` and `set` (store-redb, store-sled) next to
//! store-memory's, measured in the same run, and the disk space 100,000
//! sessions of 1 KiB take in each.
//!
//! - criterion: `get` of a warm 10-key session and `set` of one key, through
//!   the `Store` trait, one task, for store-memory, and store-redb and
//!   store-sled each with `Durability::EveryWrite` (the default: every write
//!   waits for the disk) and with `Durability::Every(500 ms)`.
//! - interleaved: the same operations in alternating rounds, the median ratio
//!   store / memory (throughput) printed, steadier than figures from separate
//!   benches on a shared machine.
//! - disk: 100,000 sessions with one 1 KiB value each, synced, then the
//!   size on disk.
//!
//! ```text
//! cargo bench -p examples --bench stores
//! ```
//!
//! It lives in `examples` because that crate already depends on every store;
//! no store crate depends on another.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_memory::MemoryStore;
use store_redb::RedbStore;
use store_sled::{Durability, SledStore};

const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));
const VALUE: &[u8] = b"\"a short json string value\"";

struct Subject {
    name: &'static str,
    store: Arc<dyn Store>,
    id: SessionId,
    _dir: Option<tempfile::TempDir>,
}

fn subjects(runtime: &tokio::runtime::Runtime) -> Vec<Subject> {
    let sled = |name, durability| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SledStore::builder()
            .path(dir.path())
            .durability(durability)
            .open()
            .expect("open sled");
        (name, Arc::new(store) as Arc<dyn Store>, Some(dir))
    };
    let redb = |name, durability| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = RedbStore::builder()
            .path(dir.path().join("sessions.redb"))
            .durability(redb_durability(durability))
            .open()
            .expect("open redb");
        (name, Arc::new(store) as Arc<dyn Store>, Some(dir))
    };
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let every = Durability::Every(Duration::from_millis(500));
    [
        ("memory", memory, None),
        redb("redb, every write", Durability::EveryWrite),
        redb("redb, every 500 ms", every),
        sled("sled, every write", Durability::EveryWrite),
        sled("sled, every 500 ms", every),
    ]
    .into_iter()
    .map(|(name, store, dir)| {
        let id = SessionId::generate("");
        let changes: Vec<_> = (0..10)
            .map(|i| (format!("key{i}"), Some(VALUE.to_vec())))
            .collect();
        let outcome = runtime
            .block_on(store.set_many(&id, &changes, WriteMode::Create, &POLICY))
            .expect("create the session");
        assert_eq!(outcome, WriteOutcome::Applied);
        Subject {
            name,
            store,
            id,
            _dir: dir,
        }
    })
    .collect()
}

/// The same durability in store-redb's terms (the stores share no types).
fn redb_durability(durability: Durability) -> store_redb::Durability {
    match durability {
        Durability::EveryWrite => store_redb::Durability::EveryWrite,
        Durability::Every(every) => store_redb::Durability::Every(every),
        Durability::Manual => store_redb::Durability::Manual,
    }
}

async fn get(subject: &Subject) {
    let value = subject.store.get(&subject.id, "key3", &POLICY).await;
    debug_assert!(value.is_ok_and(|v| v.is_some()));
}

async fn set(subject: &Subject) {
    let outcome = subject
        .store
        .set(&subject.id, "key3", VALUE, WriteMode::Existing, &POLICY)
        .await;
    debug_assert!(outcome.is_ok());
}

fn criterion_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let subjects = subjects(&runtime);
    let mut group = c.benchmark_group("stores");
    for subject in &subjects {
        group.bench_function(format!("get/{}", subject.name), |b| {
            b.to_async(&runtime).iter(|| get(subject))
        });
        group.bench_function(format!("set/{}", subject.name), |b| {
            b.to_async(&runtime).iter(|| set(subject))
        });
    }
    group.finish();
}

/// Operations per second of `op` ("get" or "set") on `subject` over `count` calls.
async fn rate(subject: &Subject, op: &str, count: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        if op == "get" {
            get(subject).await
        } else {
            set(subject).await
        }
    }
    f64::from(count) / start.elapsed().as_secs_f64()
}

fn interleaved(_c: &mut Criterion) {
    const ROUNDS: usize = 21;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let subjects = subjects(&runtime);
    let (memory, embedded) = subjects.split_first().expect("memory first");
    println!("\ninterleaved throughput ratios, store / memory (median [lowest, highest] of {ROUNDS} rounds):");
    for sled in embedded {
        for (op, count) in [("get", 20_000u32), ("set", 2_000)] {
            let mut ratios: Vec<f64> = runtime.block_on(async {
                let mut ratios = Vec::new();
                for round in 0..ROUNDS {
                    let (m, s) = if round % 2 == 0 {
                        let m = rate(memory, op, count).await;
                        (m, rate(sled, op, count).await)
                    } else {
                        let s = rate(sled, op, count).await;
                        (rate(memory, op, count).await, s)
                    };
                    ratios.push(s / m);
                }
                ratios
            });
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {op} {:<20} {:.3} [{:.3}, {:.3}]",
                sled.name,
                ratios[ROUNDS / 2],
                ratios[0],
                ratios[ROUNDS - 1]
            );
        }
    }
}

fn directory_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .expect("read the directory")
        .map(|entry| {
            let entry = entry.expect("an entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                directory_size(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Writes 100,000 sessions of 1 KiB to `store`, syncs with `flush`, and
/// prints the size of `dir` beside the data's.
fn fill(name: &str, store: &dyn Store, flush: impl std::future::Future<Output = ()>, dir: &Path) {
    const SESSIONS: usize = 100_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let value = vec![b'x'; 1024];
    let start = Instant::now();
    runtime.block_on(async {
        for _ in 0..SESSIONS {
            let id = SessionId::generate("");
            let outcome = store
                .set(&id, "data", &value, WriteMode::Create, &POLICY)
                .await
                .expect("write");
            assert_eq!(outcome, WriteOutcome::Applied);
        }
        flush.await;
    });
    let elapsed = start.elapsed();
    let on_disk = directory_size(dir);
    let user_bytes = (SESSIONS * (value.len() + 43 + 4)) as f64;
    println!(
        "\ndisk, {name}: {SESSIONS} sessions of 1 KiB written in {:.1} s; {:.1} MiB on disk, \
         {:.2}x the {:.1} MiB of ids, keys and values",
        elapsed.as_secs_f64(),
        on_disk as f64 / 1048576.0,
        on_disk as f64 / user_bytes,
        user_bytes / 1048576.0
    );
}

fn disk_size(_c: &mut Criterion) {
    let every = Duration::from_millis(500);
    let dir = tempfile::tempdir().expect("temporary directory");
    let redb = RedbStore::builder()
        .path(dir.path().join("sessions.redb"))
        .durability(store_redb::Durability::Every(every))
        .open()
        .expect("open redb");
    let flush = async { redb.flush().await.expect("flush") };
    fill("redb", &redb, flush, dir.path());

    let dir = tempfile::tempdir().expect("temporary directory");
    let sled = SledStore::builder()
        .path(dir.path())
        .durability(Durability::Every(every))
        .open()
        .expect("open sled");
    let flush = async { sled.flush().await.expect("flush") };
    fill("sled", &sled, flush, dir.path());
}

criterion_group!(benches, criterion_benches, interleaved, disk_size);
criterion_main!(benches);
