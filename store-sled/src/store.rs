//! [`SledStore`]: the [`Store`] implementation and store-wide access.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use session_core::check_owner;
use session_core::{
    ActivePage, Change, DeferredRefresh, DeferredRefreshes, ExpiryPolicy, Handle, Limits, Result,
    SessionId, SessionInfo, Store, Swap, WriteMode, WriteOutcome,
};
use session_core::{Edit, KeyChange};

use crate::batch::{self, Write, Writer};
use crate::config::{Durability, SledStoreBuilder};
use crate::error::{backend, Error};
use crate::flusher::Flusher;
use crate::layout::{data_key, Meta};
use crate::reader::{Inline, Reader};
use crate::refresh::{self, Refresher};
use crate::sweeper::Sweeper;
use crate::trees::{abort, now_ms, Count, Live, Trees, Tx, TxResult, WRITE_OUT_CHUNK};

/// An embedded, persistent session store on sled. See the [crate docs](crate).
///
/// Operations run sled's transactions on tokio's blocking pool (inline when
/// there is no tokio runtime): a transaction usually takes microseconds, but
/// sled makes every transaction in the process wait while a flush syncs the
/// disk, and that wait must not hold a runtime worker. Writes of keys go
/// instead to a thread of the store's own, and plain reads run on the
/// caller's thread while no transaction is running, else on another (see
/// the crate docs). Waiting for a write's own flush happens on the store's
/// flusher thread and is awaited.
pub struct SledStore {
    db: sled::Db,
    trees: Trees,
    durability: Durability,
    limits: Limits,
    path: PathBuf,
    flusher: Flusher,
    // An `Option` so that `Drop` stops it before the final flush.
    sweeper: Option<Sweeper>,
    /// Runs concurrent `set_many`s in shared transactions; an `Option` for
    /// the same reason.
    writer: Option<Writer>,
    /// Runs the plain reads; an `Option` for the same reason.
    reader: Option<Reader>,
    /// Applies the refreshes reads left for later; an `Option` for the
    /// same reason.
    refresher: Option<Refresher>,
    /// Lets one read at a time run on its caller's thread (see `reader`).
    inline: Inline,
    /// Bounds the transactions running at once (see `max_concurrent`).
    gate: Arc<Semaphore>,
    timeout: Duration,
}

impl std::fmt::Debug for SledStore {
    /// The path and settings; never the database's contents (sled's own
    /// `Debug` prints every key and value).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
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
            // sled asserts (panics) below its least.
            .cache_capacity(options.cache_bytes.max(crate::config::MIN_CACHE_BYTES))
            .flush_every_ms(flush_every_ms)
            .open()
            .map_err(|error| Error::open(path.clone(), error))?;
        let trees = Trees::open(&db).map_err(|error| Error::open(path.clone(), error))?;
        // Before the sweeper starts: a database from before owned sessions
        // gets its activity index.
        let upgraded = trees.upgrade(&db).map_err(|source| Error::Upgrade {
            path: path.clone(),
            source,
        })?;
        if upgraded > 0 {
            tracing::info!(path = %path.display(), sessions = upgraded, "store-sled: upgraded the sessions of an older database to the current layout");
        }
        let sweeper = Sweeper::start(trees.clone(), options.sweep_interval, options.sweep_batch)
            .map_err(Error::Thread)?;
        let flusher = Flusher::start(db.clone()).map_err(Error::Thread)?;
        let writer = Writer::start(trees.clone(), options.limits).map_err(Error::Thread)?;
        let reader = Reader::start(trees.clone()).map_err(Error::Thread)?;
        let refresher =
            Refresher::start(trees.clone(), options.refresh_every).map_err(Error::Thread)?;
        tracing::debug!(path = %path.display(), recovered = db.was_recovered(), "store-sled opened");
        Ok(SledStore {
            db,
            trees,
            durability: options.durability,
            limits: options.limits,
            path,
            flusher,
            sweeper: Some(sweeper),
            writer: Some(writer),
            reader: Some(reader),
            refresher: Some(refresher),
            inline: Inline::default(),
            gate: Arc::new(Semaphore::new(options.max_concurrent)),
            timeout: options.timeout,
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes everything so far to disk, whatever the [`Durability`], with
    /// what reads left in memory: the refreshes left for later, and the
    /// counts and last activity of reads not due one. Concurrent calls (and
    /// writes under [`Durability::EveryWrite`]) share one disk sync. Call
    /// it before a graceful shutdown; dropping the store does the same.
    pub async fn flush(&self) -> Result<()> {
        // A deadline per chunk, not for them all: a million sessions' counts
        // take seconds.
        for chunk in self.trees.tally.sessions().chunks(WRITE_OUT_CHUNK) {
            let chunk = chunk.to_vec();
            self.run(move |trees| trees.write_out_reads(&chunk), never)
                .await?;
        }
        self.run(|trees| Ok(trees.apply_refreshes()), never).await?;
        // Off a runtime there is no timer for a deadline (as in `run`).
        if tokio::runtime::Handle::try_current().is_err() {
            return self.flusher.flush().await;
        }
        deadline(self.timeout, self.flusher.flush()).await
    }

    /// Flushes after a write if the durability says so.
    async fn persist(&self) -> Result<()> {
        match self.durability {
            Durability::EveryWrite => self.flusher.flush().await,
            Durability::Every(_) | Durability::Manual => Ok(()),
        }
    }

    /// Sessions on disk, expired ones not yet swept included: a diagnostic
    /// of the sweeper's. It walks the metadata tree, O(sessions), off the
    /// async runtime as every operation does.
    ///
    /// Counting, listing and clearing the live sessions is the [`Store`]
    /// trait's, as for every store: [`Store::len`], [`Store::is_empty`],
    /// [`Store::active_page`] and [`Store::destroy_all`].
    pub async fn len_on_disk(&self) -> Result<u64> {
        self.run(|trees| Ok(trees.meta.len() as u64), never).await
    }

    /// How long the session `id` has left, without sliding it; `None` if it
    /// is absent or expired.
    pub fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        // The refresh first: a pass applying it between the two reads
        // then leaves it in the metadata, not in neither.
        let left = self.trees.refreshes.get(id.as_str());
        let Some(bytes) = self.trees.meta.get(id.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        let meta = Meta::decode(&bytes)?;
        let now = now_ms();
        // With the refresh a read left for later, as it will apply.
        let deadline = left
            .and_then(|left| refresh::deadline_for(&left, &meta, now))
            .unwrap_or(meta.deadline);
        Ok((deadline > now).then(|| Duration::from_millis(deadline - now)))
    }

    /// Checks that the store's trees agree with each other (an fsck): every
    /// session has its one expiry entry, its one activity entry, its owner
    /// entry if it has an owner, and the data of the keys it lists, and
    /// nothing else is there. Returns the problems found, none for a sound
    /// store; they name sessions by a few characters of their id and never
    /// show an owner, a key or data. It reads everything: for tests and for
    /// checking after a crash.
    pub fn verify(&self) -> Result<Vec<String>> {
        self.trees.verify()
    }

    /// Bytes the database takes on disk (sled's own figure).
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(backend)
    }

    /// Runs `op` on the trees off the async runtime, then syncs the disk if
    /// `persist` says the result needs it under the durability; all within
    /// the deadline, and at most `max_concurrent` transactions at a time.
    ///
    /// On tokio's blocking pool when called from a tokio runtime, inline
    /// otherwise (with no deadline: there is no timer). sled takes a
    /// process-wide lock for every transaction that waits while any flush is
    /// syncing the disk, so even a read can take as long as an fsync; on the
    /// blocking pool that wait holds a spare thread, not a runtime worker.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Trees) -> Result<T> + Send + 'static,
        persist: impl FnOnce(&T) -> bool,
    ) -> Result<T> {
        let trees = self.trees.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let result = op(&trees)?;
            if persist(&result) {
                self.persist().await?;
            }
            return Ok(result);
        };
        let gate = self.gate.clone();
        deadline(self.timeout, async move {
            let permit = gate
                .acquire_owned()
                .await
                .map_err(|error| session_core::Error::Unavailable(Box::new(error)))?;
            // The permit goes with the transaction, not with this future: an
            // operation past its deadline keeps its place until sled returns,
            // so a stuck sled never has more than `max_concurrent` threads in
            // it, and the operations queued behind fail at their deadlines.
            let result = runtime
                .spawn_blocking(move || {
                    let _permit = permit;
                    op(&trees)
                })
                .await
                .map_err(|error| session_core::Error::Backend(Box::new(error)))??;
            if persist(&result) {
                self.persist().await?;
            }
            Ok(result)
        })
        .await
    }

    /// Runs `step` on the live session `id`, saving its slid deadline and
    /// last activity and counting `count`, all in the step's transaction;
    /// or gives `absent()` without it. `persist` as for [`SledStore::run`].
    async fn with_live<T: Send + 'static>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        count: Count,
        absent: impl Fn() -> T + Send + 'static,
        step: impl Fn(&Tx<'_>, &str, &mut Live) -> TxResult<T> + Send + 'static,
        persist: impl FnOnce(&T) -> bool,
    ) -> Result<T> {
        let (id, policy) = (id.as_str().to_owned(), *policy);
        // The time inside the transaction, as everywhere a transaction
        // judges a session alive: taken before sled's lock, which may wait
        // behind a disk sync, it could take a session that expired
        // meanwhile for alive, and slide it back to life.
        let op = move |trees: &Trees| {
            trees.transaction(|tx| match tx.live(&id, now_ms(), &policy)? {
                Some(mut live) => {
                    let result = step(tx, &id, &mut live)?;
                    live.count(count);
                    tx.save(&id, &live)?;
                    Ok(result)
                }
                None => Ok(absent()),
            })
        };
        self.run(op, persist).await
    }

    /// A read of the live session `id`: `answer` of its record.
    ///
    /// Plain reads of the trees, outside any transaction, so a read waits
    /// for no other session's transaction and no disk sync. The read is
    /// counted in the tally, and a refresh due under the touch granularity
    /// is left for the refresher (the `refresh` module); only when the
    /// stored deadline is near ([`DeferredRefreshes::may_defer`]) does one
    /// transaction slide the session and count the read. So does a session
    /// past its stored deadline, since only a transaction can tell whether
    /// a refresh no pass has applied yet keeps it alive (and it removes the
    /// session if not); past its absolute lifetime, it reads as absent and
    /// is left to the sweeper.
    ///
    /// An answer from several values must not mix two writes: then the
    /// record is read again after them, and the answer stands only if no
    /// transaction changed it meanwhile (every write changes the record, if
    /// only its write count). After a few such collisions the caller falls
    /// back to a read transaction ([`Quick::Contended`]).
    ///
    /// Where the read runs: see [`SledStore::read_where`].
    async fn read<T: Send + 'static>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        several: bool,
        answer: impl Fn(&Trees, &str, &Meta) -> Result<T> + Send + 'static,
    ) -> Result<Quick<T>> {
        const ATTEMPTS: usize = 3;
        let (id, policy) = (id.as_str().to_owned(), *policy);
        // `may_write`: whether the read may run the refresh's transaction
        // itself; if not, and one is due, it answers `None` and writes
        // nothing.
        let op = move |trees: &Trees, may_write: bool| {
            for _ in 0..ATTEMPTS {
                let now = now_ms();
                let Some(bytes) = trees.meta.get(&id).map_err(backend)? else {
                    return Ok(Some(Quick::Absent));
                };
                let meta = Meta::decode(&bytes)?;
                let own = meta.policy(&policy);
                let Some(deadline) = own.deadline_ms(meta.created, now) else {
                    return Ok(Some(Quick::Absent));
                };
                let expired = !meta.alive(now);
                let due = expired || own.refresh_due(meta.deadline, deadline);
                // Far from the deadline, a refresh due is left for the
                // refresher (see `refresh`); near it, the read slides the
                // session itself.
                let defer = due && DeferredRefreshes::may_defer(meta.deadline, now);
                let slide = due && !defer;
                if slide && !may_write {
                    return Ok(None);
                }
                let answer = answer(trees, &id, &meta)?;
                if several && trees.meta.get(&id).map_err(backend)?.as_ref() != Some(&bytes) {
                    continue;
                }
                if slide {
                    // Past sled's lock, a time of its own (see `with_live`).
                    let alive =
                        trees.transaction(|tx| match tx.live(&id, now_ms(), &policy)? {
                            Some(mut live) => {
                                live.count(Count::Read);
                                tx.save(&id, &live).map(|()| true)
                            }
                            None => Ok(false),
                        })?;
                    if !alive {
                        return Ok(Some(Quick::Absent));
                    }
                } else {
                    // The refresh before the count: a write-out that sees
                    // the count (and takes its time as the last activity)
                    // sees the refresh.
                    if defer {
                        let left = DeferredRefresh { at_ms: now, policy };
                        trees.refreshes.defer(&id, left);
                    }
                    trees.tally.add(&id, now);
                }
                return Ok(Some(Quick::Served(answer)));
            }
            Ok(Some(Quick::Contended))
        };
        self.read_where(op).await
    }

    /// Runs the read `op` (see [`SledStore::read`]) where it costs least
    /// and still cannot hold a runtime worker for long.
    ///
    /// With no transaction of the store's running or waiting, nothing but
    /// a bug of sled's can make a plain read wait, so it runs right here,
    /// on the caller's thread, as store-redb's reads do: a hand-off to
    /// another thread and back costs more than the two lookups. One read at
    /// a time, so that a sled hung by its bug holds one runtime worker, not
    /// all. A transaction that begins during the lookups can make them wait
    /// for it, and for the disk sync it may itself wait for: that window is
    /// the lookups' few microseconds. Otherwise, and when a refresh is due
    /// near the deadline (a transaction), the read goes to the reader thread (see `reader`)
    /// and is awaited under the deadline, so a hung sled holds that one
    /// thread, not the runtime's workers. Off a runtime it runs as every
    /// other operation.
    async fn read_where<T: Send + 'static>(
        &self,
        op: impl Fn(&Trees, bool) -> Result<Option<Quick<T>>> + Send + 'static,
    ) -> Result<Quick<T>> {
        let on_runtime = tokio::runtime::Handle::try_current().is_ok();
        let reader = self.reader.as_ref().filter(|_| on_runtime);
        if reader.is_some() && self.trees.quiet() {
            if let Some(_place) = self.inline.claim() {
                if let Some(quick) = op(&self.trees, false)? {
                    return Ok(quick);
                }
            }
        }
        // Allowed to write, a read always answers; were it not to, reading
        // in a transaction is right for any read.
        let writing = move |trees: &Trees| Ok(op(trees, true)?.unwrap_or(Quick::Contended));
        let Some(reader) = reader else {
            return self.run(writing, never).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        deadline(self.timeout, async {
            let job = Box::new(move |trees: &Trees| {
                let _ = reply.send(writing(trees));
            });
            if !reader.send(job) {
                return Err(session_core::Error::Unavailable(
                    "the store is closing".into(),
                ));
            }
            answer
                .await
                .map_err(|error| session_core::Error::Backend(Box::new(error)))?
        })
        .await
    }

    /// Reads `key` of session `id` and applies what `decide` makes of its
    /// value, in one transaction: the atomic operations' read-modify-write.
    /// An absent session is `None` with [`WriteMode::Existing`]; with
    /// [`WriteMode::Create`] it counts as empty, and is created only if the
    /// edit puts a value. An error of `decide` or a refusal of the limits
    /// aborts the transaction. Waits for the disk when the key changed.
    async fn edit<T: Send + 'static>(
        &self,
        id: &SessionId,
        key: &str,
        mode: WriteMode,
        policy: &ExpiryPolicy,
        decide: impl Fn(Option<&[u8]>) -> Result<Edit<T>> + Send + 'static,
    ) -> Result<Option<T>> {
        self.limits.check_key(key)?;
        let (id, key, policy) = (id.as_str().to_owned(), key.to_owned(), *policy);
        let limits = self.limits;
        let op = move |trees: &Trees| {
            trees.transaction(|tx| {
                let now = now_ms();
                let found = tx.live(&id, now, &policy)?;
                let current = match &found {
                    Some(live) => tx.value(&id, live, &key)?,
                    None if mode == WriteMode::Existing => return Ok((None, false)),
                    None => None,
                };
                let edit = match decide(current.as_deref()) {
                    Ok(edit) => edit,
                    Err(error) => return abort(error),
                };
                let mut live = match (found, &edit.change) {
                    (Some(live), _) => live,
                    // Born expired (a zero absolute lifetime): kept nowhere,
                    // as with `set_many`.
                    (None, KeyChange::Put(_)) => match Tx::create(now, &policy) {
                        Some(live) => live,
                        None => return Ok((Some(edit.answer), false)),
                    },
                    // Nothing to write: nothing to create.
                    (None, _) => return Ok((Some(edit.answer), false)),
                };
                let changed = match &edit.change {
                    KeyChange::Keep => false,
                    KeyChange::Delete => {
                        let listed = live.meta.keys.remove(&key);
                        if listed {
                            tx.data.remove(data_key(&id, &key))?;
                        }
                        listed
                    }
                    KeyChange::Put(value) => {
                        let old_len = current.as_ref().map(Vec::len);
                        tx.put_within(&id, &mut live, &key, value, old_len, &limits)?;
                        true
                    }
                };
                live.count(if edit.writes {
                    Count::Write
                } else {
                    Count::Read
                });
                tx.save(&id, &live)?;
                Ok((Some(edit.answer), changed))
            })
        };
        let (answer, _) = self.run(op, |(_, changed)| *changed).await?;
        Ok(answer)
    }
}

/// For reads and `extend`: they never wait for the disk.
/// What a read outside a transaction found.
enum Quick<T> {
    /// The answer, the read counted.
    Served(T),
    /// No live session.
    Absent,
    /// Writes kept changing the session between its reads: read it in a
    /// transaction instead.
    Contended,
}

fn never<T>(_: &T) -> bool {
    false
}

/// Awaits `operation` for at most `limit`, on tokio's timer.
async fn deadline<T>(limit: Duration, operation: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(?limit, "store-sled: an operation missed its deadline");
            Err(session_core::Error::Timeout(limit))
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Stop the sweeper, the writer and the reader first: they hold the
        // trees. The refresher last, after its last pass.
        drop(self.sweeper.take());
        drop(self.writer.take());
        drop(self.reader.take());
        drop(self.refresher.take());
        if let Err(error) = self.trees.write_out_reads(&self.trees.tally.sessions()) {
            tracing::error!(%error, "store-sled: writing out read counts at close failed; they are lost");
        }
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
        let value = move |trees: &Trees, id: &str, meta: &Meta| trees.value(id, meta, &key);
        // One value: nothing to mix, so never contended.
        Ok(match self.read(id, policy, false, value).await? {
            Quick::Served(value) => value,
            Quick::Absent | Quick::Contended => None,
        })
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let count = keys.len();
        let keys: Arc<[String]> = keys.iter().map(|k| k.to_string()).collect();
        let plain = keys.clone();
        let values = move |trees: &Trees, id: &str, meta: &Meta| {
            plain.iter().map(|key| trees.value(id, meta, key)).collect()
        };
        match self.read(id, policy, true, values).await? {
            Quick::Served(values) => Ok(values),
            Quick::Absent => Ok(vec![None; count]),
            Quick::Contended => {
                let values = move |tx: &Tx<'_>, id: &str, live: &mut Live| {
                    keys.iter().map(|key| tx.value(id, live, key)).collect()
                };
                let absent = move || vec![None; count];
                self.with_live(id, policy, Count::Read, absent, values, never)
                    .await
            }
        }
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        let plain = |trees: &Trees, id: &str, meta: &Meta| {
            let mut all = HashMap::with_capacity(meta.keys.len());
            for key in &meta.keys {
                if let Some(value) = trees.value(id, meta, key)? {
                    all.insert(key.clone(), value);
                }
            }
            Ok(all)
        };
        match self.read(id, policy, true, plain).await? {
            Quick::Served(all) => Ok(all),
            Quick::Absent => Ok(HashMap::new()),
            Quick::Contended => {
                let all = |tx: &Tx<'_>, id: &str, live: &mut Live| {
                    let mut all = HashMap::with_capacity(live.meta.keys.len());
                    for key in &live.meta.keys {
                        if let Some(value) = tx.data.get(data_key(id, key))? {
                            all.insert(key.clone(), value.to_vec());
                        }
                    }
                    Ok(all)
                };
                self.with_live(id, policy, Count::Read, HashMap::new, all, never)
                    .await
            }
        }
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
        // On a runtime, through the writer, which shares one transaction
        // among the writes waiting for it; then the disk, if the durability
        // says so.
        if let (Ok(_), Some(writer)) = (tokio::runtime::Handle::try_current(), &self.writer) {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let write = Write {
                id,
                changes,
                mode,
                policy,
                reply,
            };
            return deadline(self.timeout, async {
                if !writer.send(write) {
                    return Err(session_core::Error::Unavailable(
                        "the store is closing".into(),
                    ));
                }
                let outcome = answer
                    .await
                    .map_err(|error| session_core::Error::Backend(Box::new(error)))??;
                if outcome == WriteOutcome::Applied {
                    self.persist().await?;
                }
                Ok(outcome)
            })
            .await;
        }
        let limits = self.limits;
        let applied = |outcome: &WriteOutcome| *outcome == WriteOutcome::Applied;
        self.run(
            move |trees| {
                trees.transaction(|tx| {
                    batch::set_many(tx, &id, &changes, mode, &policy, now_ms(), &limits)
                })
            },
            applied,
        )
        .await
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
        self.with_live(id, policy, Count::Write, || false, delete, |exists| *exists)
            .await
    }

    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        let taken = self
            .edit(id, key, WriteMode::Existing, policy, |current| {
                Ok(Edit::take(current))
            })
            .await?;
        Ok(taken.flatten())
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Swap> {
        self.limits.check_key(key)?;
        if let Some(new) = new {
            self.limits.check_value(new)?;
        }
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
        let swap = self
            .edit(id, key, mode, policy, move |current| {
                Ok(Edit::swap(current, expected.as_deref(), new.as_deref()))
            })
            .await?;
        Ok(swap.unwrap_or(Swap::NoSession))
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Option<i64>> {
        self.edit(id, key, mode, policy, move |current| {
            Edit::increment(current, delta)
        })
        .await
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        let id = id.as_str().to_owned();
        let purge = move |trees: &Trees| {
            trees.transaction(|tx| match tx.meta(&id)? {
                Some(meta) => {
                    tx.purge(&id, &meta)?;
                    Ok(true)
                }
                None => Ok(false),
            })
        };
        self.run(purge, |removed| *removed).await.map(drop)
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        let extend = |_: &Tx<'_>, _: &str, _: &mut Live| Ok(true);
        self.with_live(id, policy, Count::Neither, || false, extend, never)
            .await
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let own = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        let policy_now = *policy;
        self.with_live(
            id,
            policy,
            Count::Neither,
            || None,
            move |_, _, live| {
                let now = now_ms();
                live.meta.idle = Some(own);
                // Alive, so within its absolute lifetime: a deadline exists.
                let deadline = live
                    .meta
                    .policy(&policy_now)
                    .deadline_ms(live.meta.created, now);
                live.meta.deadline = deadline.unwrap_or(live.meta.deadline);
                Ok(Some(Duration::from_millis(
                    live.meta.deadline.saturating_sub(now),
                )))
            },
            Option::is_some,
        )
        .await
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let (old, new, policy) = (from.as_str().to_owned(), to.as_str().to_owned(), *policy);
        let rename = move |trees: &Trees| {
            trees.transaction(|tx| match tx.live(&old, now_ms(), &policy)? {
                Some(live) => {
                    tx.rename(&old, &new, live)?;
                    Ok(true)
                }
                None => Ok(false),
            })
        };
        self.run(rename, |moved| *moved).await
    }

    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        check_owner(owner)?;
        let (id, owner, policy) = (id.as_str().to_owned(), owner.to_owned(), *policy);
        let bind = move |trees: &Trees| trees.bind_owner(&id, &owner, cap, &policy);
        self.run(bind, |bound| *bound).await
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        let id = id.as_str().to_owned();
        self.run(move |trees| trees.settled().info(&id, now_ms()), never)
            .await
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let owner = owner.to_owned();
        let sessions = move |trees: &Trees| trees.settled().owner_sessions(&owner, now_ms());
        self.run(sessions, never).await
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        let owner = owner.to_owned();
        let keep = keep.map(|id| id.as_str().to_owned());
        let destroy = move |trees: &Trees| trees.destroy_owner(&owner, keep.as_deref());
        self.run(destroy, |destroyed| *destroyed > 0).await
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let (owner, handle) = (owner.to_owned(), handle.clone());
        let revoke =
            move |trees: &Trees| trees.transaction(|tx| tx.revoke(&owner, &handle, now_ms()));
        self.run(revoke, |revoked| *revoked).await
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        let within = millis(within);
        let count = move |trees: &Trees| {
            let trees = trees.settled();
            let now = now_ms();
            trees.count_active(now, now.saturating_sub(within))
        };
        self.run(count, never).await
    }

    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        let cursor = match cursor {
            None => None,
            Some(text) => match ActivePage::parse_mark_cursor(text) {
                Some(cursor) => Some(cursor),
                // Not one of ours: there is nothing after it.
                None => return Ok(ActivePage::default()),
            },
        };
        let within = millis(within);
        let page = move |trees: &Trees| {
            let trees = trees.settled();
            let now = now_ms();
            let cursor = cursor
                .as_ref()
                .map(|(last, handle)| (*last, handle.as_str()));
            trees.active_page(now, now.saturating_sub(within), cursor, limit)
        };
        self.run(page, never).await
    }

    async fn destroy_all(&self) -> Result<u64> {
        let destroy = |trees: &Trees| trees.clear(now_ms()).map(|(_, live)| live);
        self.run(destroy, |_| true).await
    }

    async fn flush(&self) -> Result<()> {
        SledStore::flush(self).await
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::EXPIRY_GRAIN_MS;

    #[tokio::test]
    async fn an_operation_that_never_ends_times_out() {
        let limit = Duration::from_millis(20);
        let result: Result<()> = deadline(limit, std::future::pending()).await;
        assert!(matches!(result, Err(session_core::Error::Timeout(d)) if d == limit));
        assert_eq!(deadline(limit, async { Ok(7) }).await.unwrap(), 7);
    }

    /// A page cache below sled's least (which sled asserts, panicking)
    /// opens with the least, and works.
    #[tokio::test]
    async fn a_cache_below_sleds_least_opens() {
        for bytes in [0, 255] {
            let (_dir, store, id) = session_in(|builder| builder.cache_bytes(bytes)).await;
            let read = store.get(&id, "k", &policy()).await.unwrap();
            assert_eq!(read.as_deref(), Some(&b"v"[..]));
        }
    }

    /// A store with one session whose `k` is `v`.
    async fn one_session(limit: Duration) -> (tempfile::TempDir, SledStore, SessionId) {
        session_in(|builder| builder.timeout(limit)).await
    }

    /// A store that `configure` sets up, with one session whose `k` is `v`.
    async fn session_in(
        configure: impl FnOnce(SledStoreBuilder) -> SledStoreBuilder,
    ) -> (tempfile::TempDir, SledStore, SessionId) {
        let dir = tempfile::tempdir().unwrap();
        let store = configure(SledStore::builder().path(dir.path()))
            .open()
            .unwrap();
        let id = SessionId::generate("session:");
        let written = store
            .set(&id, "k", b"v", WriteMode::Create, &policy())
            .await;
        assert_eq!(written.unwrap(), WriteOutcome::Applied);
        (dir, store, id)
    }

    /// Reads between refreshes write nothing: they are the plain ones.
    fn policy() -> ExpiryPolicy {
        ExpiryPolicy::idle(Duration::from_secs(60)).with_touch_after(Duration::from_secs(10))
    }

    /// The deadline in the session's metadata as stored, refreshes left
    /// for later not included.
    fn stored_deadline(store: &SledStore, id: &SessionId) -> u64 {
        let bytes = store.trees.meta.get(id.as_str()).unwrap().unwrap();
        Meta::decode(&bytes).unwrap().deadline
    }

    /// A new session of `store` under `policy`, a little while ago: a read
    /// now has a refresh due (the policy's granularity is 0).
    async fn created(store: &SledStore, policy: &ExpiryPolicy) -> SessionId {
        let id = SessionId::generate("t:");
        let outcome = store.set(&id, "k", b"v", WriteMode::Create, policy);
        assert_eq!(outcome.await.unwrap(), WriteOutcome::Applied);
        tokio::time::sleep(Duration::from_millis(20)).await;
        id
    }

    /// A store whose refresher applies what reads left only when asked (by
    /// a query, `flush` or closing), so that a test sees them left.
    fn store_at(path: &Path) -> SledStore {
        let mut options = SledStore::builder().path(path);
        options.refresh_every = Duration::from_secs(3600);
        options.open().unwrap()
    }

    /// A read whose refresh is due answers without a transaction while the
    /// deadline is far, and reports count the refresh; the next pass
    /// slides the session. Near the deadline, the read slides it itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_far_from_the_deadline_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(dir.path());
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let id = created(&store, &policy).await;
        let before = stored_deadline(&store, &id);
        let read_at = now_ms();
        let value = store.get(&id, "k", &policy).await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        let left = store.trees.refreshes.get(id.as_str()).expect("left");
        assert!(left.at_ms >= read_at);
        assert_eq!(stored_deadline(&store, &id), before, "the read wrote");
        let ttl = store.ttl(&id).unwrap().unwrap();
        assert!(ttl > Duration::from_millis(before - now_ms()), "{ttl:?}");
        store.flush().await.unwrap();
        assert!(store.trees.refreshes.is_empty());
        assert_eq!(stored_deadline(&store, &id), left.at_ms + 3_600_000);
        let info = store.info(&id).await.unwrap().unwrap();
        assert_eq!((info.reads, info.writes), (1, 1));
        assert_eq!(info.last_active_ms, left.at_ms);

        let brief = ExpiryPolicy::idle(Duration::from_millis(DeferredRefreshes::MARGIN_MS));
        let near = created(&store, &brief).await;
        let before = stored_deadline(&store, &near);
        let value = store.get(&near, "k", &brief).await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        assert_eq!(store.trees.refreshes.get(near.as_str()), None);
        assert!(
            stored_deadline(&store, &near) > before,
            "the read did not slide"
        );
    }

    /// The refresher applies what reads left on its own, every pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_refresher_applies_refreshes_left_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let id = created(&store, &policy).await;
        let read_at = now_ms();
        store.get(&id, "k", &policy).await.unwrap();
        // Applied, then taken out once committed: wait for both.
        let start = std::time::Instant::now();
        while stored_deadline(&store, &id) < read_at + 3_600_000
            || !store.trees.refreshes.is_empty()
        {
            assert!(start.elapsed() < Duration::from_secs(10), "never applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A session of `store` past its stored deadline, whose refresh a read
    /// left for a pass that has not run: with its stored deadline and the
    /// refresh. Takes about 9 s: a read leaves its refresh only while the
    /// stored deadline is [`DeferredRefreshes::MARGIN_MS`] off, and the
    /// sweeper meets a session up to `EXPIRY_GRAIN_MS` after its deadline.
    async fn lagging(
        store: &SledStore,
        policy: &ExpiryPolicy,
    ) -> (SessionId, u64, DeferredRefresh) {
        let id = created(store, policy).await;
        tokio::time::sleep(Duration::from_millis(2 * EXPIRY_GRAIN_MS)).await;
        assert_eq!(
            store.get(&id, "k", policy).await.unwrap(),
            Some(b"v".to_vec())
        );
        let left = store.trees.refreshes.get(id.as_str());
        let left = left.expect("not left: a slow machine?");
        let stored = stored_deadline(store, &id);
        let slid = left.at_ms + 8_000;
        // Halfway between the stored deadline and the refresh's.
        let wake = stored + (slid - stored) / 2;
        tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now_ms()))).await;
        let now = now_ms();
        assert!(
            stored < now && now < slid,
            "woke outside {stored}..{slid}: {now}"
        );
        (id, stored, left)
    }

    /// A refresh left for a pass that runs late (past the session's stored
    /// deadline) keeps its session alive: a read finds it, and the sweeper
    /// slides it instead of removing it. A session with none is expired.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_left_keeps_its_session_alive_when_the_pass_is_late() {
        let policy = ExpiryPolicy::idle(Duration::from_secs(8));
        let (read_dir, swept_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let open = |dir: &tempfile::TempDir, sweep: Duration| {
            let mut options = SledStore::builder().path(dir.path()).sweep_interval(sweep);
            options.refresh_every = Duration::from_secs(3600);
            options.open().unwrap()
        };
        let read = open(&read_dir, Duration::from_secs(3600));
        let swept = open(&swept_dir, Duration::from_millis(50));
        let unread = created(&read, &policy).await;
        let ((id, stored, _), (swept_id, _, swept_left)) =
            tokio::join!(lagging(&read, &policy), lagging(&swept, &policy));

        assert_eq!(read.get(&unread, "k", &policy).await.unwrap(), None);
        let value = read.get(&id, "k", &policy).await.unwrap();
        assert_eq!(value, Some(b"v".to_vec()), "the read took it for expired");
        assert!(
            stored_deadline(&read, &id) > now_ms(),
            "the read did not slide it"
        );
        assert!(stored_deadline(&read, &id) > stored);
        let info = read.info(&id).await.unwrap().unwrap();
        assert_eq!((info.reads, info.writes), (2, 1));
        assert!(read.verify().unwrap().is_empty());

        // The sweeper meets the session's entry before the refresh's
        // deadline: its slot is less than a grain after the stored one.
        let slid = swept_left.at_ms + 8_000;
        // It takes the refresh out once its transaction commits.
        while stored_deadline(&swept, &swept_id) != slid
            || swept.trees.refreshes.get(swept_id.as_str()).is_some()
        {
            assert!(now_ms() < slid, "the sweeper did not slide it");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(swept.ttl(&swept_id).unwrap().is_some());
        assert!(swept.verify().unwrap().is_empty());
    }

    /// Queries and a closing store apply what reads left, so neither a
    /// report nor a clean restart misses a read's refresh; one left for a
    /// session destroyed since is dropped with its read count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_and_closing_apply_refreshes_left() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let store = store_at(dir.path());
        let (queried, closed, gone) = (
            created(&store, &policy).await,
            created(&store, &policy).await,
            created(&store, &policy).await,
        );
        store.get(&queried, "k", &policy).await.unwrap();
        let read_at = store.trees.refreshes.get(queried.as_str()).unwrap().at_ms;
        let active = store.count_active(Duration::from_secs(60)).await.unwrap();
        assert_eq!(active, 3);
        assert_eq!(store.trees.refreshes.get(queried.as_str()), None);
        let info = store.info(&queried).await.unwrap().unwrap();
        assert_eq!(info.last_active_ms, read_at);

        store.get(&gone, "k", &policy).await.unwrap();
        assert!(store.del_all(&gone).await.is_ok());
        store.get(&closed, "k", &policy).await.unwrap();
        let left = store.trees.refreshes.get(closed.as_str()).unwrap();
        drop(store);
        let store = store_at(dir.path());
        assert_eq!(stored_deadline(&store, &closed), left.at_ms + 3_600_000);
        assert!(store.trees.meta.get(gone.as_str()).unwrap().is_none());
    }

    /// Keeps the store's reader thread busy until the returned sender
    /// sends (or drops).
    fn hold_reader(store: &SledStore) -> std::sync::mpsc::Sender<()> {
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let reader = store.reader.as_ref().unwrap();
        assert!(reader.send(Box::new(move |_: &Trees| {
            let _ = stuck.recv();
        })));
        release
    }

    /// With no transaction running, a plain read runs on the caller's
    /// thread: it is served while the reader thread is stuck.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_read_with_no_transaction_running_needs_no_reader() {
        let (_dir, store, id) = one_session(Duration::from_millis(200)).await;
        let release = hold_reader(&store);
        let value = store.get(&id, "k", &policy()).await.unwrap();
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        release.send(()).unwrap();
    }

    /// While one read runs on a caller's thread (here, as if hung in sled),
    /// the next goes to the reader thread: stuck too, it fails at its
    /// deadline rather than take another worker.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_one_read_at_a_time_runs_on_a_callers_thread() {
        let limit = Duration::from_millis(200);
        let (_dir, store, id) = one_session(limit).await;
        let release = hold_reader(&store);
        let place = store.inline.claim().expect("no read holds the place yet");
        let result = store.get(&id, "k", &policy()).await;
        assert!(
            matches!(result, Err(session_core::Error::Timeout(d)) if d == limit),
            "{result:?}"
        );
        drop(place);
        release.send(()).unwrap();
        assert_eq!(
            store.get(&id, "k", &policy()).await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }

    /// While a transaction is stuck in sled, holding its lock, a read goes
    /// to the reader thread and fails at its deadline; it holds no runtime
    /// worker, and reads go on once sled is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_while_a_transaction_is_stuck_times_out() {
        let limit = Duration::from_millis(200);
        let (_dir, store, id) = one_session(limit).await;
        let store = Arc::new(store);
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = std::sync::mpsc::channel::<()>();
        let trees = store.trees.clone();
        let holder = std::thread::spawn(move || {
            trees.transaction(|_| {
                let _ = entered.send(());
                let _ = stuck.recv();
                Ok(())
            })
        });
        inside.recv().unwrap();
        let reading = {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.get(&id, "k", &policy()).await })
        };
        // Were the read to wait for sled on a worker, its deadline could
        // not fire: give it ten times the deadline, then free sled.
        let result = tokio::time::timeout(limit * 10, reading).await;
        release.send(()).unwrap();
        holder.join().unwrap().unwrap();
        let result = result.expect("the read held a runtime worker past its deadline");
        assert!(
            matches!(result, Ok(Err(session_core::Error::Timeout(d))) if d == limit),
            "{result:?}"
        );
        assert_eq!(
            store.get(&id, "k", &policy()).await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
