//! [`SledStore`]: the [`Store`] implementation and store-wide access.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use session_core::{
    Change, ExpiryPolicy, Limits, Result, SessionId, Store, WriteMode, WriteOutcome,
};

use crate::config::{Durability, SledStoreBuilder};
use crate::error::{backend, Error};
use crate::flusher::Flusher;
use crate::layout::{data_key, Meta};
use crate::sweeper::Sweeper;
use crate::trees::{now_ms, Live, Trees, Tx, TxResult};

/// Length of the random token at the end of every id (see [`SessionId`]).
const TOKEN_LEN: usize = 43;

/// An embedded, persistent session store on sled. See the [crate docs](crate).
///
/// Operations run sled's transactions on tokio's blocking pool (inline when
/// there is no tokio runtime): a transaction usually takes microseconds, but
/// sled makes every transaction in the process wait while a flush syncs the
/// disk, and that wait must not hold a runtime worker. Waiting for a write's
/// own flush happens on the store's flusher thread and is awaited.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    trees: Trees,
    durability: Durability,
    limits: Limits,
    path: PathBuf,
    flusher: Flusher,
    // An `Option` so that `Drop` stops it before the final flush.
    sweeper: Option<Sweeper>,
}

impl SledStore {
    /// A builder, to set the path, durability, sweeper and limits.
    pub fn builder() -> SledStoreBuilder {
        SledStoreBuilder::default()
    }

    /// Opens (or creates) the store in `path` with the default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, Error> {
        SledStore::builder().path(path.as_ref()).open()
    }

    pub(crate) fn open_with(options: SledStoreBuilder) -> Result<SledStore, Error> {
        let flush_every_ms = match options.durability {
            // Writes flush themselves; this persists the expiry slides of reads.
            Durability::EveryWrite => Some(500),
            Durability::Every(every) => Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX)),
            Durability::Manual => None,
        };
        let path = options.path;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(flush_every_ms)
            .open()
            .map_err(|error| Error::open(path.clone(), error))?;
        let trees = Trees::open(&db).map_err(|error| Error::open(path.clone(), error))?;
        let sweeper = Sweeper::start(trees.clone(), options.sweep_interval, options.sweep_batch)
            .map_err(Error::Thread)?;
        let flusher = Flusher::start(db.clone()).map_err(Error::Thread)?;
        tracing::debug!(path = %path.display(), recovered = db.was_recovered(), "store-sled opened");
        Ok(SledStore {
            db,
            trees,
            durability: options.durability,
            limits: options.limits,
            path,
            flusher,
            sweeper: Some(sweeper),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything so far to disk, whatever the [`Durability`].
    /// Concurrent calls (and writes under [`Durability::EveryWrite`]) share
    /// one disk sync.
    pub async fn flush(&self) -> Result<()> {
        self.flusher.flush().await
    }

    /// Flushes after a write if the durability says so.
    async fn persist(&self) -> Result<()> {
        match self.durability {
            Durability::EveryWrite => self.flush().await,
            Durability::Every(_) | Durability::Manual => Ok(()),
        }
    }

    /// The number of live sessions. Walks the metadata tree (no sessions'
    /// data): O(sessions).
    pub fn len(&self) -> Result<u64> {
        let now = now_ms();
        let mut live = 0;
        for entry in self.trees.meta.iter().values() {
            let meta = Meta::decode(&entry.map_err(backend)?)?;
            live += u64::from(meta.deadline > now);
        }
        Ok(live)
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sessions on disk, expired ones not yet swept included.
    pub fn len_on_disk(&self) -> u64 {
        self.trees.meta.len() as u64
    }

    /// The ids of the live sessions, in id order. The iterator reads the tree
    /// as it goes, so it sees sessions created or removed meanwhile, or not.
    pub fn ids(&self) -> impl Iterator<Item = Result<SessionId>> + '_ {
        let now = now_ms();
        self.trees.meta.iter().filter_map(move |entry| {
            let (id, meta) = match entry {
                Ok(entry) => entry,
                Err(error) => return Some(Err(backend(error))),
            };
            match Meta::decode(&meta) {
                Ok(meta) if meta.deadline <= now => None,
                Ok(_) => parse_id(&id).map(Ok),
                Err(error) => Some(Err(error)),
            }
        })
    }

    /// How long the session `id` has left, without sliding it; `None` if it
    /// is absent or expired.
    pub fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        let Some(bytes) = self.trees.meta.get(id.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        let meta = Meta::decode(&bytes)?;
        let now = now_ms();
        Ok((meta.deadline > now).then(|| Duration::from_millis(meta.deadline - now)))
    }

    /// Removes every session, each in its own transaction (so none is left
    /// half removed); returns how many it removed. Sessions created while it
    /// runs may survive it.
    pub async fn clear(&self) -> Result<u64> {
        let removed = self.run(|trees| trees.clear()).await?;
        self.persist().await?;
        Ok(removed)
    }

    /// Checks that the store's trees agree with each other (an fsck): every
    /// session has its one expiry entry and the data of the keys it lists, and
    /// nothing else is there. Returns the problems found, none for a sound
    /// store. It reads everything: for tests and for checking after a crash.
    pub fn verify(&self) -> Result<Vec<String>> {
        self.trees.verify()
    }

    /// Bytes the database takes on disk (sled's own figure).
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(backend)
    }

    /// Runs `op` on the trees off the async runtime: on tokio's blocking
    /// pool when called from a tokio runtime, inline otherwise. sled takes a
    /// process-wide lock for every transaction that waits while any flush is
    /// syncing the disk, so even a read can take as long as an fsync; on the
    /// blocking pool that wait holds a spare thread, not a runtime worker.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Trees) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let trees = self.trees.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || op(&trees))
                .await
                .map_err(|error| session_core::Error::Backend(Box::new(error)))?,
            Err(_) => op(&trees),
        }
    }

    /// Runs `step` on the live session `id`, saving its slid deadline; or
    /// gives `absent()` without it.
    async fn with_live<T: Send + 'static>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        absent: impl Fn() -> T + Send + 'static,
        step: impl Fn(&Tx<'_>, &str, &mut Live) -> TxResult<T> + Send + 'static,
    ) -> Result<T> {
        let (id, policy) = (id.as_str().to_owned(), *policy);
        self.run(move |trees| {
            let now = now_ms();
            trees.transaction(|tx| match tx.live(&id, now, &policy)? {
                Some(mut live) => {
                    let result = step(tx, &id, &mut live)?;
                    tx.save(&id, &live)?;
                    Ok(result)
                }
                None => Ok(absent()),
            })
        })
        .await
    }
}

/// A stored id back as a [`SessionId`]: its last 43 characters are the token.
fn parse_id(id: &[u8]) -> Option<SessionId> {
    let id = std::str::from_utf8(id).ok()?;
    let split = id.len().checked_sub(TOKEN_LEN)?;
    if !id.is_char_boundary(split) {
        return None;
    }
    SessionId::parse(&id[..split], &id[split..])
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Stop the sweeper first: it holds the trees.
        drop(self.sweeper.take());
        if let Err(error) = self.db.flush() {
            tracing::error!(%error, path = %self.path.display(), "store-sled: final flush failed");
        }
    }
}

#[async_trait]
impl Store for SledStore {
    async fn get(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        let key = key.to_owned();
        let value = move |tx: &Tx<'_>, id: &str, live: &mut Live| tx.value(id, live, &key);
        self.with_live(id, policy, || None, value).await
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let count = keys.len();
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let values = move |tx: &Tx<'_>, id: &str, live: &mut Live| {
            keys.iter().map(|key| tx.value(id, live, key)).collect()
        };
        self.with_live(id, policy, move || vec![None; count], values)
            .await
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        let all = |tx: &Tx<'_>, id: &str, live: &mut Live| {
            let mut all = HashMap::with_capacity(live.meta.keys.len());
            for key in &live.meta.keys {
                if let Some(value) = tx.data.get(data_key(id, key))? {
                    all.insert(key.clone(), value.to_vec());
                }
            }
            Ok(all)
        };
        self.with_live(id, policy, HashMap::new, all).await
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let (id, changes, policy) = (id.as_str().to_owned(), changes.to_vec(), *policy);
        let outcome = self
            .run(move |trees| {
                let now = now_ms();
                trees.transaction(|tx| {
                    let live = match (tx.live(&id, now, &policy)?, mode) {
                        (Some(live), _) => Some(live),
                        (None, WriteMode::Create) => Tx::create(now, &policy),
                        (None, WriteMode::Existing) => return Ok(WriteOutcome::NoSession),
                    };
                    // A zero absolute lifetime: the session would be born expired.
                    let Some(mut live) = live else {
                        return Ok(WriteOutcome::Applied);
                    };
                    for (key, value) in &changes {
                        match value {
                            Some(value) => {
                                tx.data.insert(data_key(&id, key), value.as_slice())?;
                                live.meta.keys.insert(key.clone());
                            }
                            None => {
                                tx.data.remove(data_key(&id, key))?;
                                live.meta.keys.remove(key);
                            }
                        }
                    }
                    tx.save(&id, &live)?;
                    Ok(WriteOutcome::Applied)
                })
            })
            .await?;
        if outcome == WriteOutcome::Applied {
            self.persist().await?;
        }
        Ok(outcome)
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let delete = move |tx: &Tx<'_>, id: &str, live: &mut Live| {
            for key in &keys {
                tx.data.remove(data_key(id, key))?;
                live.meta.keys.remove(key);
            }
            Ok(true)
        };
        let exists = self.with_live(id, policy, || false, delete).await?;
        if exists {
            self.persist().await?;
        }
        Ok(exists)
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        let id = id.as_str().to_owned();
        let removed = self
            .run(move |trees| {
                trees.transaction(|tx| match tx.meta(&id)? {
                    Some(meta) => {
                        tx.purge(&id, &meta)?;
                        Ok(true)
                    }
                    None => Ok(false),
                })
            })
            .await?;
        if removed {
            self.persist().await?;
        }
        Ok(())
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        self.with_live(id, policy, || false, |_, _, _| Ok(true))
            .await
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let (old, new, policy) = (from.as_str().to_owned(), to.as_str().to_owned(), *policy);
        let moved = self
            .run(move |trees| {
                let now = now_ms();
                trees.transaction(|tx| match tx.live(&old, now, &policy)? {
                    Some(live) => {
                        tx.rename(&old, &new, live)?;
                        Ok(true)
                    }
                    None => Ok(false),
                })
            })
            .await?;
        if moved {
            self.persist().await?;
        }
        Ok(moved)
    }
}
