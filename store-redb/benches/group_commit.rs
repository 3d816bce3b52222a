//! Group commit, measured: 64 tasks writing at once under
//! `Durability::EveryWrite` (each write waits for a synced commit), with
//! group commit (the default `max_batch`, 256) and without it
//! (`max_batch(1)`: one commit and one disk sync per write), in alternating
//! rounds; prints each round's throughput and the median ratio.
//!
//! ```text
//! cargo bench -p store-redb --bench group_commit
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};
use store_redb::RedbStore;

const TASKS: usize = 64;
const WRITES_PER_TASK: usize = 20;
const ROUNDS: usize = 10;
const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

/// Writes per second of 64 tasks × 20 `set`s, each on its own session.
async fn rate(store: &Arc<RedbStore>) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = SessionId::generate("");
                for i in 0..WRITES_PER_TASK {
                    let mode = if i == 0 {
                        WriteMode::Create
                    } else {
                        WriteMode::Existing
                    };
                    let outcome = store
                        .set(&id, "k", &[b'x'; 256], mode, &POLICY)
                        .await
                        .expect("write");
                    assert_eq!(outcome, WriteOutcome::Applied);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer");
    }
    (TASKS * WRITES_PER_TASK) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let open = |name: &str, max_batch: usize| {
        Arc::new(
            RedbStore::builder()
                .path(dir.path().join(name))
                .max_batch(max_batch)
                .open()
                .expect("open"),
        )
    };
    let (grouped, single) = (open("grouped.redb", 256), open("single.redb", 1));
    let mut ratios = Vec::new();
    runtime.block_on(async {
        for round in 0..ROUNDS {
            // A B, then B A: neither always goes first.
            let (g, s) = if round % 2 == 0 {
                let g = rate(&grouped).await;
                (g, rate(&single).await)
            } else {
                let s = rate(&single).await;
                (rate(&grouped).await, s)
            };
            println!("round {round}: group commit {g:.0} writes/s, one commit per write {s:.0} writes/s, ratio {:.1}", g / s);
            ratios.push(g / s);
        }
    });
    ratios.sort_by(f64::total_cmp);
    println!(
        "group commit / one commit per write, {TASKS} concurrent writers, EveryWrite: median {:.1} [{:.1}, {:.1}] of {ROUNDS} rounds",
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1]
    );
}
