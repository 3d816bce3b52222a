//! The store factory: the store the flags name, built (and for Redis,
//! connected).

use std::sync::Arc;

use session_core::{Error, Store};
use store_memory::MemoryStore;
use store_redb::RedbStore;
use store_redis::RedisStore;
use store_sled::SledStore;

use crate::{Options, StoreKind};

// A second `impl` block, so that building stores stays apart from parsing
// flags while callers keep writing `options.store()`.
impl Options {
    /// The embedded stores' sync interval; `None` to sync every write.
    fn sync_every(&self) -> Option<std::time::Duration> {
        (self.sync_every_ms > 0).then(|| std::time::Duration::from_millis(self.sync_every_ms))
    }

    /// The embedded stores' page cache, in bytes: `--page-cache-mb`.
    fn page_cache_bytes(&self) -> u64 {
        self.page_cache_mb.saturating_mul(1 << 20)
    }

    /// The store-memory the options configure: `--memory-max-mb` and the
    /// size limits.
    fn memory_store(&self) -> MemoryStore {
        MemoryStore::builder()
            .max_bytes(self.memory_max_mb.saturating_mul(1 << 20))
            .limits(self.limits())
            .build()
    }

    /// The store-redb builder the options configure: `--redb-path`,
    /// `--sync-every-ms`, `--page-cache-mb` and the size limits.
    fn redb_builder(&self) -> store_redb::RedbStoreBuilder {
        RedbStore::builder()
            .path(&self.redb_path)
            .durability(match self.sync_every() {
                None => store_redb::Durability::EveryWrite,
                Some(every) => store_redb::Durability::Every(every),
            })
            .cache_bytes(usize::try_from(self.page_cache_bytes()).unwrap_or(usize::MAX))
            .limits(self.limits())
    }

    /// The store-sled builder the options configure: `--sled-path`,
    /// `--sync-every-ms`, `--page-cache-mb` and the size limits.
    fn sled_builder(&self) -> store_sled::SledStoreBuilder {
        SledStore::builder()
            .path(&self.sled_path)
            .durability(match self.sync_every() {
                None => store_sled::Durability::EveryWrite,
                Some(every) => store_sled::Durability::Every(every),
            })
            .cache_bytes(self.page_cache_bytes())
            .limits(self.limits())
    }

    /// The store-redis builder the options configure, on `--redis-url`.
    fn redis_builder(&self) -> store_redis::RedisStoreBuilder {
        RedisStore::builder()
            .url(&self.redis_url)
            .limits(self.limits())
            .activity_index(self.redis_activity_index)
            .plain_reads(self.redis_plain_reads)
            .layout(self.redis_layout())
    }

    /// Builds (and for Redis, connects) the store the options name.
    pub async fn store(&self) -> Result<Arc<dyn Store>, Error> {
        Ok(match self.store_kind() {
            StoreKind::Memory => Arc::new(self.memory_store()),
            StoreKind::Redb => Arc::new(self.redb_builder().open()?),
            StoreKind::Sled => Arc::new(self.sled_builder().open()?),
            StoreKind::Redis => {
                let builder = self.redis_builder();
                #[cfg(feature = "cluster")]
                let builder = if self.redis_cluster.is_empty() {
                    builder
                } else {
                    builder.cluster(self.redis_cluster.iter().cloned())
                };
                #[cfg(not(feature = "cluster"))]
                if !self.redis_cluster.is_empty() {
                    return Err(Error::Config(
                        "--redis-cluster needs the examples' `cluster` feature".into(),
                    ));
                }
                Arc::new(builder.build().await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};

    use crate::Options;

    /// Writes 3,000 sessions of 1,000 bytes (about 3 MiB) to the
    /// store-memory that `args` configure; what it holds then, in bytes.
    async fn held_after_3_mib(args: &[&str]) -> u64 {
        let options = Options::parse_from(["server", "--store", "memory"].iter().chain(args));
        let store = options.memory_store();
        let policy = ExpiryPolicy::idle(Duration::from_secs(60));
        for _ in 0..3_000 {
            let id = SessionId::generate("session:");
            let outcome = store
                .set(&id, "k", &[7; 1_000], WriteMode::Create, &policy)
                .await
                .expect("a write");
            assert_eq!(outcome, WriteOutcome::Applied);
        }
        store.weighted_size().await
    }

    #[tokio::test]
    async fn memory_max_mb_bounds_store_memory() {
        let bounded = held_after_3_mib(&["--memory-max-mb", "1"]).await;
        assert!(
            bounded <= 1 << 20,
            "held {bounded} bytes past a 1 MiB bound"
        );
        let default = held_after_3_mib(&[]).await;
        assert!(
            default > 2 << 20,
            "held only {default} bytes under the 64 MiB default"
        );
    }

    #[test]
    fn redis_plain_reads_reaches_store_redis() {
        let shown = |args: &[&str]| {
            let options = Options::parse_from(["server", "--store", "redis"].iter().chain(args));
            format!("{:?}", options.redis_builder())
        };
        let default = store_redis::DEFAULT_PLAIN_READS;
        assert!(
            shown(&[]).contains(&format!("plain_reads: {default}")),
            "{}",
            shown(&[])
        );
        let none = shown(&["--redis-plain-reads", "0"]);
        assert!(none.contains("plain_reads: 0"), "{none}");
    }

    #[test]
    fn page_cache_mb_reaches_the_embedded_stores() {
        let shown = |args: &[&str]| {
            let options = Options::parse_from(["server"].iter().chain(args));
            (
                format!("{:?}", options.redb_builder()),
                format!("{:?}", options.sled_builder()),
            )
        };
        // The flag's one default is each store's own.
        assert_eq!(
            store_redb::DEFAULT_CACHE_BYTES as u64,
            store_sled::DEFAULT_CACHE_BYTES
        );
        let (redb, sled) = shown(&[]);
        let default = format!("cache_bytes: {}", store_sled::DEFAULT_CACHE_BYTES);
        assert!(redb.contains(&default), "{redb}");
        assert!(sled.contains(&default), "{sled}");
        let (redb, sled) = shown(&["--page-cache-mb", "1024"]);
        assert!(redb.contains("cache_bytes: 1073741824"), "{redb}");
        assert!(sled.contains("cache_bytes: 1073741824"), "{sled}");
        // Past what a byte count holds, the most it can.
        let (_, sled) = shown(&["--page-cache-mb", &u64::MAX.to_string()]);
        assert!(
            sled.contains(&format!("cache_bytes: {}", u64::MAX)),
            "{sled}"
        );
    }
}
