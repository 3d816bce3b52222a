//! [`MemoryStoreBuilder`]: the store's options and their defaults, and the
//! moka cache they build.

use std::sync::Arc;

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use session_core::Limits;

use crate::access::Turns;
use crate::owners::Owners;
use crate::record::{Record, SessionExpiry};
use crate::store::MemoryStore;

/// Default bound on the bytes held: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Configures a [`MemoryStore`].
///
/// | setting | default |
/// |---|---|
/// | [`max_bytes`](Self::max_bytes) | [`DEFAULT_MAX_BYTES`] (64 MiB) |
/// | [`limits`](Self::limits) | [`Limits::default`] (keys 256 B, values 4 MiB, sessions 1,024 keys and 16 MiB) |
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until it is built"]
pub struct MemoryStoreBuilder {
    max_bytes: u64,
    limits: Limits,
}

impl MemoryStoreBuilder {
    /// Bound on the bytes of keys and values held; least recently used sessions are
    /// evicted beyond it.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Size limits on keys and values.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let owners = Arc::new(Owners::default());
        let listener = owners.clone();
        let cache = Cache::builder()
            .name("store-memory")
            .max_capacity(self.max_bytes)
            // Plain LRU: moka's default (TinyLFU) may refuse to admit a new entry
            // when full, which would drop a session the moment it is created.
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|id: &String, record: &Arc<Record>| {
                u32::try_from(id.len() + record.bytes).unwrap_or(u32::MAX)
            })
            .expire_after(SessionExpiry)
            // A session that leaves the cache (expired, evicted, destroyed)
            // leaves its owner's index; a new version of it does not.
            .eviction_listener(move |id: Arc<String>, record: Arc<Record>, cause| {
                if cause != RemovalCause::Replaced {
                    if let Some(owner) = &record.owner {
                        listener.remove(owner, &id);
                    }
                }
            })
            .build();
        MemoryStore {
            cache,
            limits: self.limits,
            turns: Arc::new(Turns::new()),
            cap_turns: Arc::new(Turns::new()),
            owners,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store with the default settings.
    pub fn new() -> MemoryStore {
        MemoryStore::builder().build()
    }

    /// A builder with the default settings.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_bytes: DEFAULT_MAX_BYTES,
            limits: Limits::default(),
        }
    }
}
