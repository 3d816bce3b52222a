//! store-memory under the shared soak: 64 tasks of mixed operations for
//! `SOAK_SECS` (default 120), every operation within its deadline. Also the
//! soak's own check: it fails, saying so, on a store that stops answering.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use session_core::testkit::soak::Soak;
use session_core::{
    ActivePage, Change, ExpiryPolicy, Handle, Result, SessionId, SessionInfo, Store, Swap,
    WriteMode, WriteOutcome,
};
use store_memory::MemoryStore;

/// This soak found a hang in store-memory: within seconds, a `set` on the
/// session that all 64 tasks write to waited for good (30 s and more) in
/// moka's `and_compute_with` while other operations went on at 88k/s. A
/// session's writers now take first-come, first-served turns first.
#[test]
fn soak() {
    session_core::testkit::soak::run_test("store-memory", || async { MemoryStore::new() });
}

/// store-memory, except that after `after` operations none ever ends: a
/// deadlock, as sled's.
struct Hangs {
    inner: MemoryStore,
    after: usize,
    calls: AtomicUsize,
}

impl Hangs {
    async fn gate(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.after {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Store for Hangs {
    async fn get(&self, id: &SessionId, key: &str, p: &ExpiryPolicy) -> Result<Option<Vec<u8>>> {
        self.gate().await;
        self.inner.get(id, key, p).await
    }
    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        p: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.gate().await;
        self.inner.get_many(id, keys, p).await
    }
    async fn get_all(&self, id: &SessionId, p: &ExpiryPolicy) -> Result<HashMap<String, Vec<u8>>> {
        self.gate().await;
        self.inner.get_all(id, p).await
    }
    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        p: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.gate().await;
        self.inner.set_many(id, changes, mode, p).await
    }
    async fn del_many(&self, id: &SessionId, keys: &[&str], p: &ExpiryPolicy) -> Result<bool> {
        self.gate().await;
        self.inner.del_many(id, keys, p).await
    }
    async fn take(&self, id: &SessionId, key: &str, p: &ExpiryPolicy) -> Result<Option<Vec<u8>>> {
        self.gate().await;
        self.inner.take(id, key, p).await
    }
    async fn compare_and_set(
        &self,
        id: &SessionId,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        mode: WriteMode,
        p: &ExpiryPolicy,
    ) -> Result<Swap> {
        self.gate().await;
        self.inner
            .compare_and_set(id, key, expected, new, mode, p)
            .await
    }
    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        p: &ExpiryPolicy,
    ) -> Result<Option<i64>> {
        self.gate().await;
        self.inner.increment(id, key, delta, mode, p).await
    }
    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.gate().await;
        self.inner.del_all(id).await
    }
    async fn extend(&self, id: &SessionId, p: &ExpiryPolicy) -> Result<bool> {
        self.gate().await;
        self.inner.extend(id, p).await
    }
    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        p: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        self.gate().await;
        self.inner.set_lifetime(id, idle, p).await
    }
    async fn regenerate(&self, from: &SessionId, to: &SessionId, p: &ExpiryPolicy) -> Result<bool> {
        self.gate().await;
        self.inner.regenerate(from, to, p).await
    }
    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        p: &ExpiryPolicy,
    ) -> Result<bool> {
        self.gate().await;
        self.inner.bind_owner(id, owner, cap, p).await
    }
    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        self.gate().await;
        self.inner.info(id).await
    }
    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        self.gate().await;
        self.inner.owner_sessions(owner).await
    }
    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        self.gate().await;
        self.inner.destroy_owner(owner, keep).await
    }
    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        self.gate().await;
        self.inner.revoke(owner, handle).await
    }
    async fn count_active(&self, within: Duration) -> Result<u64> {
        self.gate().await;
        self.inner.count_active(within).await
    }
    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        self.gate().await;
        self.inner.active_page(within, cursor, limit).await
    }
    async fn destroy_all(&self) -> Result<u64> {
        self.gate().await;
        self.inner.destroy_all().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_fails_on_a_store_that_stops_answering() {
    let store = Arc::new(Hangs {
        inner: MemoryStore::new(),
        after: 20_000,
        calls: AtomicUsize::new(0),
    });
    let soak = Soak {
        duration: Duration::from_secs(60),
        deadline: Duration::from_secs(2),
        report_every: Duration::from_secs(10),
        ..Soak::default()
    };
    let failure = soak
        .run("a store that hangs", store.clone())
        .await
        .expect_err("a store that stops answering must fail the soak");
    assert!(
        failure.contains("missed its 2s deadline") && failure.contains("the store hangs"),
        "{failure}"
    );
    assert!(store.calls.load(Ordering::SeqCst) > 20_000);
}
