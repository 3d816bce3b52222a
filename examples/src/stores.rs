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

    /// Builds (and for Redis, connects) the store the options name.
    pub async fn store(&self) -> Result<Arc<dyn Store>, Error> {
        let limits = self.limits();
        Ok(match self.store_kind() {
            StoreKind::Memory => Arc::new(MemoryStore::builder().limits(limits).build()),
            StoreKind::Redb => Arc::new(
                RedbStore::builder()
                    .path(&self.redb_path)
                    .durability(match self.sync_every() {
                        None => store_redb::Durability::EveryWrite,
                        Some(every) => store_redb::Durability::Every(every),
                    })
                    .limits(limits)
                    .open()?,
            ),
            StoreKind::Sled => Arc::new(
                SledStore::builder()
                    .path(&self.sled_path)
                    .durability(match self.sync_every() {
                        None => store_sled::Durability::EveryWrite,
                        Some(every) => store_sled::Durability::Every(every),
                    })
                    .limits(limits)
                    .open()?,
            ),
            StoreKind::Redis => {
                let builder = RedisStore::builder()
                    .url(&self.redis_url)
                    .limits(limits)
                    .activity_index(self.redis_activity_index)
                    .layout(self.redis_layout());
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
