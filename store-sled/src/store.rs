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
use crate::trees::{now_ms, Trees, Tx};

/// Length of the random token at the end of every id (see [`SessionId`]).
const TOKEN_LEN: usize = 43;

/// An embedded, persistent session store on sled. See the [crate docs](crate).
///
/// Operations run sled's transactions inline on the calling task: they work
/// on sled's in-memory pages and take microseconds, less than handing them to
/// a blocking thread would. Waiting for the disk is the one slow part: it
/// happens on the store's flusher thread and is awaited, not blocked on.
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

    /// Removes every session; returns how many were on disk. Sessions written
    /// while it runs may survive it.
    pub async fn clear(&self) -> Result<u64> {
        let count = self.len_on_disk();
        for tree in [&self.trees.meta, &self.trees.data, &self.trees.expiry] {
            tree.clear().map_err(backend)?;
        }
        self.persist().await?;
        Ok(count)
    }

    /// Bytes the database takes on disk (sled's own figure).
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(backend)
    }

    /// Runs `step` on the live session `id`, saving its slid deadline; or
    /// `absent` without it.
    fn with_live<T>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        absent: impl Fn() -> T,
        step: impl Fn(&Tx<'_>, &mut crate::trees::Live) -> crate::trees::TxResult<T>,
    ) -> Result<T> {
        let now = now_ms();
        let id = id.as_str();
        self.trees
            .transaction(|tx| match tx.live(id, now, policy)? {
                Some(mut live) => {
                    let result = step(tx, &mut live)?;
                    tx.save(id, &live)?;
                    Ok(result)
                }
                None => Ok(absent()),
            })
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
        self.with_live(
            id,
            policy,
            || None,
            |tx, live| tx.value(id.as_str(), live, key),
        )
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        self.with_live(
            id,
            policy,
            || vec![None; keys.len()],
            |tx, live| {
                keys.iter()
                    .map(|key| tx.value(id.as_str(), live, key))
                    .collect()
            },
        )
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        self.with_live(id, policy, HashMap::new, |tx, live| {
            let mut all = HashMap::with_capacity(live.meta.keys.len());
            for key in &live.meta.keys {
                if let Some(value) = tx.data.get(data_key(id.as_str(), key))? {
                    all.insert(key.clone(), value.to_vec());
                }
            }
            Ok(all)
        })
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let now = now_ms();
        let name = id.as_str();
        let outcome = self.trees.transaction(|tx| {
            let live = match (tx.live(name, now, policy)?, mode) {
                (Some(live), _) => Some(live),
                (None, WriteMode::Create) => Tx::create(now, policy),
                (None, WriteMode::Existing) => return Ok(WriteOutcome::NoSession),
            };
            // A zero absolute lifetime: the session would be born expired.
            let Some(mut live) = live else {
                return Ok(WriteOutcome::Applied);
            };
            for (key, value) in changes {
                match value {
                    Some(value) => {
                        tx.data.insert(data_key(name, key), value.as_slice())?;
                        live.meta.keys.insert(key.clone());
                    }
                    None => {
                        tx.data.remove(data_key(name, key))?;
                        live.meta.keys.remove(key);
                    }
                }
            }
            tx.save(name, &live)?;
            Ok(WriteOutcome::Applied)
        })?;
        if outcome == WriteOutcome::Applied {
            self.persist().await?;
        }
        Ok(outcome)
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        let exists = self.with_live(
            id,
            policy,
            || false,
            |tx, live| {
                for key in keys {
                    tx.data.remove(data_key(id.as_str(), key))?;
                    live.meta.keys.remove(*key);
                }
                Ok(true)
            },
        )?;
        if exists {
            self.persist().await?;
        }
        Ok(exists)
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        let name = id.as_str();
        let removed = self.trees.transaction(|tx| match tx.meta(name)? {
            Some(meta) => {
                tx.purge(name, &meta)?;
                Ok(true)
            }
            None => Ok(false),
        })?;
        if removed {
            self.persist().await?;
        }
        Ok(())
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        self.with_live(id, policy, || false, |_, _| Ok(true))
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let now = now_ms();
        let (old, new) = (from.as_str(), to.as_str());
        let moved = self
            .trees
            .transaction(|tx| match tx.live(old, now, policy)? {
                Some(live) => {
                    tx.rename(old, new, live)?;
                    Ok(true)
                }
                None => Ok(false),
            })?;
        if moved {
            self.persist().await?;
        }
        Ok(moved)
    }
}
