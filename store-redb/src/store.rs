//! [`RedbStore`]: the [`Store`] implementation and store-wide access.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase};
use session_core::check_owner;
use session_core::{
    ActivePage, Change, Error as CoreError, ExpiryPolicy, Handle, Limits, ReadTally, Result,
    SessionId, SessionInfo, SessionSize, Store, Swap, WriteMode, WriteOutcome,
};
use session_core::{DeferredRefresh, DeferredRefreshes, Edit, KeyChange};

use crate::config::{Durability, RedbStoreBuilder};
use crate::error::{backend, Error};
use crate::layout::{meta_in, now_ms, TxResult, ACTIVITY, EXPIRY, OWNERS, RECORDS};
use crate::queries::Snapshot;
use crate::refresh;
use crate::tables::{Count, Live, Tables, WRITE_OUT_CHUNK};
use crate::upgrade::upgrade;
use crate::verify::verify;
use crate::writer::{Settings, Writer};

/// An embedded, persistent session store on redb. See the [crate docs](crate).
///
/// Every write is one step of a write transaction run by the store's writer
/// thread, which groups concurrent operations into one commit; reads use
/// snapshots, and the writer only when a refresh is due. Each
/// operation has a deadline ([`RedbStoreBuilder::timeout`]) and fails with
/// [`session_core::Error::Timeout`] past it.
pub struct RedbStore {
    db: Arc<Database>,
    // Holds the database too: dropping it ends with a last synced commit.
    writer: Writer,
    sync_writes: bool,
    timeout: Duration,
    limits: Limits,
    path: PathBuf,
    /// Reads served from snapshots, not yet in their rows.
    tally: Arc<ReadTally>,
    /// Refreshes reads left for the writer.
    refreshes: Arc<DeferredRefreshes>,
}

impl std::fmt::Debug for RedbStore {
    /// The path and settings; never the database's contents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("sync_writes", &self.sync_writes)
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// A builder, to set the path, durability, batching, deadline, sweeper
    /// and limits.
    pub fn builder() -> RedbStoreBuilder {
        RedbStoreBuilder::default()
    }

    /// Opens (or creates) the store in the file `path` with the default
    /// settings.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, Error> {
        RedbStore::builder().path(path.as_ref()).open()
    }

    pub(crate) fn open_with(options: RedbStoreBuilder) -> Result<RedbStore, Error> {
        let path = options.path;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|error| Error::open(path.clone(), redb::StorageError::Io(error)))?;
        }
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|error| Error::open(path.clone(), error))?;
        // Create the tables now, so that readers find them from the start,
        // and move an older file's sessions into them.
        let created = (|| -> TxResult<u64> {
            let tx = db.begin_write()?;
            let moved = upgrade(&tx)?;
            tx.commit()?;
            Ok(moved)
        })();
        let upgraded = created.map_err(|error| Error::open(path.clone(), error))?;
        if upgraded > 0 {
            tracing::info!(path = %path.display(), sessions = upgraded, "store-redb: moved the sessions of an older file to the current layout");
        }
        let db = Arc::new(db);
        let settings = Settings {
            durability: options.durability,
            max_batch: options.max_batch,
            sweep_interval: options.sweep_interval,
            sweep_batch: options.sweep_batch,
            tally: Arc::new(ReadTally::new()),
            refreshes: Arc::new(DeferredRefreshes::new()),
            refresh_every: options.refresh_every,
        };
        let (tally, refreshes) = (settings.tally.clone(), settings.refreshes.clone());
        let writer = Writer::start(db.clone(), settings).map_err(Error::Thread)?;
        tracing::debug!(path = %path.display(), "store-redb opened");
        Ok(RedbStore {
            db,
            writer,
            sync_writes: options.durability == Durability::EveryWrite,
            timeout: options.timeout,
            limits: options.limits,
            path,
            tally,
            refreshes,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs everything so far to disk, whatever the [`Durability`], with
    /// what reads left in memory: the refreshes left for the writer, and the
    /// counts and last activity of reads not due one, written out in
    /// transactions of up to 131,072 sessions (a million took 14 s here),
    /// each under the store's [`timeout`](RedbStoreBuilder::timeout). The
    /// closing sync is one commit that concurrent calls (and writes under
    /// [`Durability::EveryWrite`]) share. Call it before a graceful
    /// shutdown; dropping the store does the same.
    pub async fn flush(&self) -> Result<()> {
        for chunk in self.tally.sessions().chunks(WRITE_OUT_CHUNK) {
            let chunk = chunk.to_vec();
            self.write(false, move |tables, now| {
                tables.write_out_reads(&chunk, now).map(drop)
            })
            .await?;
        }
        self.write(true, |tables, now| tables.apply_refreshes(now).map(drop))
            .await
    }

    /// Applies the refreshes reads left for the writer, if any, before a
    /// query reports deadlines or activity: so that it sees every read
    /// before it, as it would had each read waited for its refresh.
    async fn apply_refreshes(&self) -> Result<()> {
        if self.refreshes.is_empty() {
            return Ok(());
        }
        self.write(false, |tables, now| tables.apply_refreshes(now).map(drop))
            .await
    }

    /// Sessions on disk, expired ones not yet swept included: a diagnostic
    /// of the sweeper's, read from a snapshot on tokio's blocking pool.
    ///
    /// Counting, listing and clearing the live sessions is the [`Store`]
    /// trait's, as for every store: [`Store::len`], [`Store::is_empty`],
    /// [`Store::active_page`] and [`Store::destroy_all`].
    pub async fn len_on_disk(&self) -> Result<u64> {
        self.snapshot(|snapshot, _| snapshot.len_on_disk()).await
    }

    /// How long the session `id` has left, without sliding it; `None` if it
    /// is absent or expired.
    pub fn ttl(&self, id: &SessionId) -> Result<Option<Duration>> {
        // The refresh first: a pass applying it between the two reads then
        // leaves it in the snapshot, not in neither.
        let left = self.refreshes.get(id.as_str());
        let tx = self.db.begin_read().map_err(backend)?;
        let records = open_read(&tx, RECORDS)?;
        let Some(meta) = meta_in(&records, id.as_str()).map_err(backend)? else {
            return Ok(None);
        };
        let now = now_ms();
        // With the refresh a read left for the writer, as it will apply.
        let deadline = left
            .and_then(|left| refresh::deadline_for(&left, &meta, now))
            .unwrap_or(meta.deadline);
        Ok((deadline > now).then(|| Duration::from_millis(deadline - now)))
    }

    /// Checks that the tables agree with each other (an fsck): every session
    /// has its one expiry entry, its one activity entry and, if it has an
    /// owner, its one owner entry; and every index and data entry belongs to
    /// a session that places it there. Returns the problems found, none for
    /// a sound store; they name sessions by a few characters of their id and
    /// never show an owner or data. It reads everything: for tests and for
    /// checking after a crash.
    pub fn verify(&self) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(backend)?;
        verify(
            &open_read(&tx, RECORDS)?,
            &open_read(&tx, EXPIRY)?,
            &open_read(&tx, OWNERS)?,
            &open_read(&tx, ACTIVITY)?,
        )
        .map_err(backend)
    }

    /// Bytes the database file takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|error| CoreError::Backend(Box::new(error)))
    }

    /// Runs `query` on a snapshot (a read transaction) at `now`, on tokio's
    /// blocking pool within the deadline when there is a runtime (a range
    /// of an index may take milliseconds), inline otherwise. It never waits
    /// for the writer.
    async fn snapshot<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Snapshot, u64) -> TxResult<T> + Send + 'static,
    ) -> Result<T> {
        let (db, tally) = (self.db.clone(), self.tally.clone());
        let read = move || look(&db, tally, query);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return read();
        };
        deadline(self.timeout, async move {
            runtime
                .spawn_blocking(read)
                .await
                .map_err(|error| CoreError::Backend(Box::new(error)))?
        })
        .await
    }

    /// Runs `step` in the writer's next commit, within the deadline.
    fn write<T: Send + 'static>(
        &self,
        sync: bool,
        step: impl Fn(&mut Tables<'_>, u64) -> TxResult<T> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + '_ {
        deadline(self.timeout, self.writer.submit(sync, step))
    }

    /// Runs `step` on the live session `id`, saving its slid deadline and
    /// last activity and counting `count`, all in the step's transaction;
    /// or gives `absent()` without it. `sync` as for [`RedbStore::write`].
    async fn with_live<T: Send + 'static>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        sync: bool,
        count: Count,
        absent: impl Fn() -> T + Send + 'static,
        step: impl Fn(&mut Tables<'_>, &str) -> TxResult<T> + Send + 'static,
    ) -> Result<T> {
        let (id, policy) = (id.as_str().to_owned(), *policy);
        self.write(sync, move |tables, now| {
            match tables.live(&id, now, &policy)? {
                Some(mut live) => {
                    let result = step(tables, &id)?;
                    live.count(count);
                    tables.save(&id, &live)?;
                    Ok(result)
                }
                None => Ok(absent()),
            }
        })
        .await
    }

    /// A read of the live session `id`: `answer` of a snapshot of it, or
    /// `None`, counted in the tally. It never waits for the writer unless a
    /// refresh is due under the touch granularity and the stored deadline
    /// is near ([`DeferredRefreshes::may_defer`]): then the writer's next commit
    /// slides the session and counts the read. A refresh due further off is
    /// left for the writer's next pass (the `refresh` module). A session
    /// past its stored deadline goes to the writer too, which alone can
    /// tell whether a refresh no pass has applied yet keeps it alive, and
    /// removes it if not; past its absolute lifetime it reads as absent and
    /// is left to the sweeper.
    async fn read<T>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        answer: impl FnOnce(&Snapshot, &str) -> TxResult<T>,
    ) -> Result<Option<T>> {
        let key = id.as_str();
        // A point read of a snapshot takes microseconds and never waits for
        // the writer: on this thread, without the blocking pool's hand-off.
        let found = look(&self.db, self.tally.clone(), |snapshot, now| {
            let Some(meta) = snapshot.meta(key)? else {
                return Ok(None);
            };
            let own = meta.policy(policy);
            let Some(deadline) = own.deadline_ms(meta.created, now) else {
                return Ok(None);
            };
            let answer = answer(snapshot, key)?;
            if !meta.alive(now) {
                // A pass may apply its refresh between this snapshot and a
                // look at those left: the writer's transaction sees both.
                return Ok(Some((answer, true)));
            }
            let due = own.refresh_due(meta.deadline, deadline);
            let defer = due && DeferredRefreshes::may_defer(meta.deadline, now);
            // The refresh before the count: a write-out that sees the count
            // (and takes its time as the last activity) sees the refresh.
            if defer {
                let refresh = DeferredRefresh {
                    at_ms: now,
                    policy: *policy,
                };
                self.refreshes.defer(key, refresh);
            }
            if !due || defer {
                self.tally.add(key, now);
            }
            Ok(Some((answer, due && !defer)))
        })?;
        match found {
            Some((answer, true)) => {
                let alive = self
                    .with_live(id, policy, false, Count::Read, || false, |_, _| Ok(true))
                    .await?;
                Ok(alive.then_some(answer))
            }
            found => Ok(found.map(|(answer, _)| answer)),
        }
    }

    /// Reads `key` of session `id` and applies what `decide` makes of its
    /// value, in one step of a write transaction: the atomic operations'
    /// read-modify-write. An absent session is `None` with
    /// [`WriteMode::Existing`]; with [`WriteMode::Create`] it counts as
    /// empty, and is created only if the edit puts a value. An error of
    /// `decide` or a refusal of the limits changes nothing.
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
        self.write(self.sync_writes, move |tables, now| {
            let found = tables.live(&id, now, &policy)?;
            let current = match found {
                Some(_) => tables.value(&id, &key)?,
                None if mode == WriteMode::Existing => return Ok(Ok(None)),
                None => None,
            };
            let edit = match decide(current.as_deref()) {
                Ok(edit) => edit,
                Err(error) => return Ok(Err(error)),
            };
            let mut live = match (found, &edit.change) {
                (Some(live), _) => live,
                // Born expired (a zero absolute lifetime): kept nowhere, as
                // with `set_many`.
                (None, KeyChange::Put(_)) => match Tables::create(now, &policy) {
                    Some(live) => live,
                    None => return Ok(Ok(Some(edit.answer))),
                },
                // Nothing to write: nothing to create.
                (None, _) => return Ok(Ok(Some(edit.answer))),
            };
            match &edit.change {
                KeyChange::Keep => {}
                KeyChange::Delete if current.is_some() => tables.remove(&id, &key)?,
                KeyChange::Delete => {}
                KeyChange::Put(value) => {
                    let old_len = current.as_ref().map(Vec::len);
                    if let Err(error) = tables.put_within(&id, &key, value, old_len, &limits)? {
                        return Ok(Err(error));
                    }
                }
            }
            live.count(if edit.writes {
                Count::Write
            } else {
                Count::Read
            });
            tables.save(&id, &live)?;
            Ok(Ok(Some(edit.answer)))
        })
        .await?
    }
}

/// A table opened for reading. The store creates every table at open, so
/// a missing one is a [`Backend`](CoreError::Backend) error, with redb's as
/// its source.
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<redb::ReadOnlyTable<K, V>> {
    tx.open_table(table).map_err(backend)
}

/// Awaits `operation` for at most `limit` (when a tokio runtime with timers
/// is running it; without one, there is nothing to measure time with).
async fn deadline<T>(limit: Duration, operation: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return operation.await;
    }
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(?limit, "store-redb: an operation missed its deadline");
            Err(CoreError::Timeout(limit))
        }
    }
}

/// Runs `query` on a snapshot (a read transaction) of `db` at now, with the
/// store's pending reads for its reports.
fn look<T>(
    db: &Database,
    tally: Arc<ReadTally>,
    query: impl FnOnce(&Snapshot, u64) -> TxResult<T>,
) -> Result<T> {
    let tx = db.begin_read().map_err(backend)?;
    let mut snapshot = Snapshot::open(&tx).map_err(backend)?;
    snapshot.tally = Some(tally);
    query(&snapshot, now_ms()).map_err(backend)
}

#[async_trait]
impl Store for RedbStore {
    async fn get(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        let key = key.to_owned();
        let value = move |snapshot: &Snapshot, id: &str| snapshot.value(id, &key);
        Ok(self.read(id, policy, value).await?.flatten())
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
        let values = move |snapshot: &Snapshot, id: &str| {
            keys.iter().map(|key| snapshot.value(id, key)).collect()
        };
        Ok(self
            .read(id, policy, values)
            .await?
            .unwrap_or_else(|| vec![None; count]))
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        let all = |snapshot: &Snapshot, id: &str| snapshot.all(id);
        Ok(self.read(id, policy, all).await?.unwrap_or_default())
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
        let limits = self.limits;
        self.write(self.sync_writes, move |tables, now| {
            let live = match (tables.live(&id, now, &policy)?, mode) {
                (Some(live), _) => Some(live),
                (None, WriteMode::Create) => Tables::create(now, &policy),
                (None, WriteMode::Existing) => return Ok(Ok(WriteOutcome::NoSession)),
            };
            // A zero absolute lifetime: the session would be born expired.
            let Some(mut live): Option<Live> = live else {
                return Ok(Ok(WriteOutcome::Applied));
            };
            // What the changes add and take away (the last change of a key
            // wins), checked before any is written. Only a session that
            // grows can cross a limit, so only then is its size read.
            let (mut added, mut removed) = (SessionSize::default(), SessionSize::default());
            let last: HashMap<&str, Option<usize>> = changes
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_ref().map(Vec::len)))
                .collect();
            for (key, new_len) in last {
                if let Some(old_len) = tables.value_len(&id, key)? {
                    removed.add(key, old_len);
                }
                if let Some(new_len) = new_len {
                    added.add(key, new_len);
                }
            }
            if added.keys > removed.keys || added.bytes > removed.bytes {
                let before = tables.size(&id)?;
                let after = SessionSize {
                    keys: (before.keys + added.keys).saturating_sub(removed.keys),
                    bytes: (before.bytes + added.bytes).saturating_sub(removed.bytes),
                };
                if let Err(error) = limits.check_session(before, after) {
                    return Ok(Err(error));
                }
            }
            for (key, value) in &changes {
                match value {
                    Some(value) => tables.insert(&id, key, value)?,
                    None => tables.remove(&id, key)?,
                }
            }
            live.count(Count::Write);
            tables.save(&id, &live)?;
            Ok(Ok(WriteOutcome::Applied))
        })
        .await?
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let delete = move |tables: &mut Tables<'_>, id: &str| {
            for key in &keys {
                tables.remove(id, key)?;
            }
            Ok(true)
        };
        self.with_live(id, policy, self.sync_writes, Count::Write, || false, delete)
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
        self.write(self.sync_writes, move |tables, _| {
            if let Some(meta) = tables.meta(&id)? {
                tables.purge(&id, &meta)?;
            }
            Ok(())
        })
        .await
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        self.with_live(id, policy, false, Count::Neither, || false, |_, _| Ok(true))
            .await
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let own = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        let (id, policy) = (id.as_str().to_owned(), *policy);
        self.write(self.sync_writes, move |tables, now| {
            let Some(mut live) = tables.live(&id, now, &policy)? else {
                return Ok(None);
            };
            live.meta.idle = Some(own);
            // Alive, so within its absolute lifetime: a deadline exists.
            if let Some(deadline) = live
                .meta
                .policy(&policy)
                .deadline_ms(live.meta.created, now)
            {
                live.meta.deadline = deadline;
            }
            tables.save(&id, &live)?;
            Ok(Some(Duration::from_millis(
                live.meta.deadline.saturating_sub(now),
            )))
        })
        .await
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let (old, new, policy) = (from.as_str().to_owned(), to.as_str().to_owned(), *policy);
        self.write(self.sync_writes, move |tables, now| {
            match tables.live(&old, now, &policy)? {
                Some(live) => {
                    tables.rename(&old, &new, live)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
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
        self.write(self.sync_writes, move |tables, now| {
            tables.bind(&id, &owner, cap, now, &policy)
        })
        .await
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        let id = id.as_str().to_owned();
        self.apply_refreshes().await?;
        self.snapshot(move |snapshot, now| snapshot.info(&id, now))
            .await
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let owner = owner.to_owned();
        self.apply_refreshes().await?;
        self.snapshot(move |snapshot, now| snapshot.owner_sessions(&owner, now))
            .await
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        let owner = owner.to_owned();
        let keep = keep.map(|id| id.as_str().to_owned());
        self.write(self.sync_writes, move |tables, now| {
            tables.destroy_owner(&owner, keep.as_deref(), now)
        })
        .await
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let (owner, handle) = (owner.to_owned(), handle.clone());
        self.write(self.sync_writes, move |tables, now| {
            tables.revoke(&owner, &handle, now)
        })
        .await
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        let within = millis(within);
        self.apply_refreshes().await?;
        self.snapshot(move |snapshot, now| snapshot.count_active(now, now.saturating_sub(within)))
            .await
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
        self.apply_refreshes().await?;
        self.snapshot(move |snapshot, now| {
            let cursor = cursor
                .as_ref()
                .map(|(last, handle)| (*last, handle.as_str()));
            snapshot.active_page(now, now.saturating_sub(within), cursor, limit)
        })
        .await
    }

    async fn destroy_all(&self) -> Result<u64> {
        self.write(self.sync_writes, |tables, now| {
            tables.clear(now).map(|(_, live)| live)
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        RedbStore::flush(self).await
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_that_never_ends_times_out() {
        let limit = Duration::from_millis(20);
        let result: Result<()> = deadline(limit, std::future::pending()).await;
        assert!(matches!(result, Err(CoreError::Timeout(d)) if d == limit));
        assert_eq!(deadline(limit, async { Ok(7) }).await.unwrap(), 7);
    }

    /// The deadline in the session's row as committed, refreshes left for
    /// the writer not included.
    fn stored_deadline(store: &RedbStore, id: &SessionId) -> u64 {
        let tx = store.db.begin_read().unwrap();
        let records = open_read(&tx, RECORDS).unwrap();
        meta_in(&records, id.as_str()).unwrap().unwrap().deadline
    }

    async fn created(store: &RedbStore, policy: &ExpiryPolicy) -> SessionId {
        let id = SessionId::generate("t:");
        let outcome = store.set(&id, "k", b"v", WriteMode::Create, policy);
        assert_eq!(outcome.await.unwrap(), WriteOutcome::Applied);
        // A read a few ms on has a refresh due (the policy's granularity is 0).
        tokio::time::sleep(Duration::from_millis(20)).await;
        id
    }

    /// A store whose writer applies refreshes left only when asked (by a
    /// query, `flush` or closing), so that a test sees them left.
    fn store_at(path: &Path) -> RedbStore {
        let mut options = RedbStore::builder().path(path);
        options.refresh_every = Duration::from_secs(3600);
        options.open().unwrap()
    }

    /// A read whose refresh is due answers without a write while the
    /// deadline is far, and reports count the refresh; the next pass slides
    /// the row. Near the deadline, the read waits for its refresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_far_from_the_deadline_is_left_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_at(&dir.path().join("s.redb"));
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let id = created(&store, &policy).await;
        let before = stored_deadline(&store, &id);
        let read_at = now_ms();
        let value = store.get(&id, "k", &policy).await.unwrap();
        assert_eq!(value, Some(b"v".to_vec()));
        let left = store
            .refreshes
            .get(id.as_str())
            .expect("left for the writer");
        assert!(left.at_ms >= read_at);
        assert_eq!(stored_deadline(&store, &id), before, "the read wrote");
        // The policy's idle timeout from the read.
        let slid = left.at_ms + 3_600_000;
        let ttl = store.ttl(&id).unwrap().unwrap();
        assert!(ttl > Duration::from_millis(before - now_ms()), "{ttl:?}");
        store.flush().await.unwrap();
        assert!(store.refreshes.is_empty());
        assert_eq!(stored_deadline(&store, &id), slid);
        let info = store.info(&id).await.unwrap().unwrap();
        assert_eq!((info.reads, info.writes), (1, 1));

        let brief = ExpiryPolicy::idle(Duration::from_millis(DeferredRefreshes::MARGIN_MS));
        let near = created(&store, &brief).await;
        let before = stored_deadline(&store, &near);
        let value = store.get(&near, "k", &brief).await.unwrap();
        assert_eq!(value, Some(b"v".to_vec()));
        assert_eq!(store.refreshes.get(near.as_str()), None);
        assert!(
            stored_deadline(&store, &near) > before,
            "the read did not slide"
        );
    }

    /// The writer applies what reads left on its own, every pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_applies_refreshes_left_every_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("s.redb")).unwrap();
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let id = created(&store, &policy).await;
        let read_at = now_ms();
        store.get(&id, "k", &policy).await.unwrap();
        // Applied, then taken out once committed: wait for both.
        let start = std::time::Instant::now();
        while stored_deadline(&store, &id) < read_at + 3_600_000 || !store.refreshes.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "never applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A session of `store` past its stored deadline, whose refresh a read
    /// left for a pass that has not run: with its stored deadline and the
    /// refresh, under an idle timeout of 8 s. Takes about 9 s: a read leaves
    /// its refresh only while the stored deadline is
    /// [`DeferredRefreshes::MARGIN_MS`] off, and reads 2 s after the write,
    /// so that the test has a second either side of waking.
    async fn lagging(
        store: &RedbStore,
        policy: &ExpiryPolicy,
    ) -> (SessionId, u64, DeferredRefresh) {
        let id = created(store, policy).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            store.get(&id, "k", policy).await.unwrap(),
            Some(b"v".to_vec())
        );
        let left = store
            .refreshes
            .get(id.as_str())
            .expect("not left: a slow machine?");
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
            let mut options = RedbStore::builder()
                .path(dir.path().join("s.redb"))
                .sweep_interval(sweep);
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

        // The sweeper meets the session's entry every 50 ms from its stored
        // deadline on, and takes the refresh out once it commits.
        let slid = swept_left.at_ms + 8_000;
        while stored_deadline(&swept, &swept_id) != slid
            || swept.refreshes.get(swept_id.as_str()).is_some()
        {
            assert!(now_ms() < slid, "the sweeper did not slide it");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(swept.ttl(&swept_id).unwrap().is_some());
        assert!(swept.verify().unwrap().is_empty());
    }

    /// Queries and a closing store apply what reads left, so neither a
    /// report nor a clean restart misses a read's refresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_and_closing_apply_refreshes_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let policy = ExpiryPolicy::idle(Duration::from_secs(3600));
        let store = store_at(&path);
        let (queried, closed) = (
            created(&store, &policy).await,
            created(&store, &policy).await,
        );
        store.get(&queried, "k", &policy).await.unwrap();
        let read_at = store.refreshes.get(queried.as_str()).unwrap().at_ms;
        let info = store.info(&queried).await.unwrap().unwrap();
        assert_eq!(info.last_active_ms, read_at);
        assert_eq!(store.refreshes.get(queried.as_str()), None, "info left it");

        store.get(&closed, "k", &policy).await.unwrap();
        let left = store.refreshes.get(closed.as_str()).unwrap();
        drop(store);
        let store = store_at(&path);
        assert_eq!(stored_deadline(&store, &closed), left.at_ms + 3_600_000);
    }
}
