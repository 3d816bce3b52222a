//! [`CountingStore`]: a store wrapped to count the operations reaching it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    ActivePage, Change, ExpiryPolicy, Handle, Result, SessionId, SessionInfo, Store, Swap,
    WriteMode, WriteOutcome,
};

/// A real store wrapped to count the operations that reach it, for tests that
/// must show a code path does no store I/O.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use session_core::testkit::{CountingStore, MapStore};
/// use session_core::{ExpiryPolicy, SessionId, Store};
///
/// let store = CountingStore::new(Arc::new(MapStore::new()));
/// let policy = ExpiryPolicy::idle(std::time::Duration::from_secs(60));
/// store.get(&SessionId::generate("s:"), "key", &policy).await.unwrap();
/// assert_eq!(store.calls(), 1);
/// # }
/// ```
pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> CountingStore {
        CountingStore {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    /// Operations so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// Implements [`Store`] for [`CountingStore`]: each method counts, then
/// hands its arguments to the wrapped store's method of the same name.
macro_rules! counted {
    ($(fn $method:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)+) => {
        #[async_trait]
        impl Store for CountingStore {
            $(
                async fn $method(&self $(, $arg: $ty)*) -> Result<$ret> {
                    self.count();
                    self.inner.$method($($arg),*).await
                }
            )+
        }
    };
}

counted! {
    fn get(&self, id: &SessionId, key: &str, policy: &ExpiryPolicy) -> Option<Vec<u8>>;
    fn get_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Vec<Option<Vec<u8>>>;
    fn get_all(&self, id: &SessionId, policy: &ExpiryPolicy) -> HashMap<String, Vec<u8>>;
    fn set(&self, id: &SessionId, key: &str, value: &[u8], mode: WriteMode, policy: &ExpiryPolicy) -> WriteOutcome;
    fn set_many(&self, id: &SessionId, changes: &[Change], mode: WriteMode, policy: &ExpiryPolicy) -> WriteOutcome;
    fn del(&self, id: &SessionId, key: &str, policy: &ExpiryPolicy) -> bool;
    fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> bool;
    fn take(&self, id: &SessionId, key: &str, policy: &ExpiryPolicy) -> Option<Vec<u8>>;
    fn compare_and_set(&self, id: &SessionId, key: &str, expected: Option<&[u8]>, new: Option<&[u8]>, mode: WriteMode, policy: &ExpiryPolicy) -> Swap;
    fn increment(&self, id: &SessionId, key: &str, delta: i64, mode: WriteMode, policy: &ExpiryPolicy) -> Option<i64>;
    fn del_all(&self, id: &SessionId) -> ();
    fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> bool;
    fn set_lifetime(&self, id: &SessionId, idle: Duration, policy: &ExpiryPolicy) -> Option<Duration>;
    fn regenerate(&self, from: &SessionId, to: &SessionId, policy: &ExpiryPolicy) -> bool;
    fn bind_owner(&self, id: &SessionId, owner: &str, cap: Option<usize>, policy: &ExpiryPolicy) -> bool;
    fn info(&self, id: &SessionId) -> Option<SessionInfo>;
    fn owner_sessions(&self, owner: &str) -> Vec<SessionInfo>;
    fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> u64;
    fn revoke(&self, owner: &str, handle: &Handle) -> bool;
    fn count_active(&self, within: Duration) -> u64;
    fn active_page(&self, within: Duration, cursor: Option<&str>, limit: usize) -> ActivePage;
    fn destroy_all(&self) -> u64;
    fn flush(&self) -> ();
}
