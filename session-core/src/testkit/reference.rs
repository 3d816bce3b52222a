//! [`MapStore`], the reference store: every session in one `HashMap` behind
//! one `Mutex`. Simple enough to be obviously right, so it is both what
//! session-core's own tests run `GenericSession` over and the model for
//! writing a new store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::atomic::{Edit, KeyChange};
use crate::owners::{beyond_cap, check_owner};
use crate::{
    ActivePage, Change, ExpiryPolicy, Handle, Limits, Result, SessionId, SessionInfo, SessionSize,
    Store, Swap, WriteMode, WriteOutcome,
};

/// The reference [`Store`]: every session in one `HashMap` behind one
/// `Mutex`, for tests, and as the model of a new store. It passes the whole
/// conformance suite; it is neither persistent nor shared between
/// processes, every operation takes the one lock, and an expired session
/// stays in memory until something looks at it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> session_core::Result<()> {
/// use std::sync::Arc;
/// use http::HeaderMap;
/// use session_core::testkit::MapStore;
/// use session_core::{GenericSession, SessionConfig};
///
/// let config = Arc::new(SessionConfig::builder().key(vec![7; 32]).build()?);
/// let (session, _cookie) = GenericSession::new(&HeaderMap::new(), Arc::new(MapStore::new()), config);
/// session.set("user", "ada").await?;
/// assert_eq!(session.get::<String>("user").await?.as_deref(), Some("ada"));
/// # Ok(())
/// # }
/// ```
///
/// # Writing a store
///
/// Read this store's source beside the [`Store`] contract; each step below
/// is one part of it.
///
/// 1. **Keep a session as one record**: its keys and values, when it was
///    created, when it expires, its own idle timeout
///    ([`set_lifetime`](Store::set_lifetime)), its owner and its read and
///    write counters. A record past its deadline is treated as absent by
///    every operation (here `live`).
/// 2. **Make each operation one atomic step** on its session: here the
///    mutex; in Redis a script, in an embedded database a transaction.
///    Never a read followed by a separate write.
/// 3. **Slide the expiry on every operation** but `del_all` and the
///    metadata reads: the deadline becomes now plus
///    [`ExpiryPolicy::remaining`] of the session's age, with the session's
///    own idle timeout in place of the policy's
///    ([`ExpiryPolicy::with_idle`]). The absolute lifetime is counted from
///    the creation time, which [`regenerate`](Store::regenerate) keeps.
///    A read slides it only when it would move by at least
///    [`ExpiryPolicy::touch_granularity`]: between refreshes a read writes
///    nothing but its count (here `Session::read`).
/// 4. **Be strict**: a write with [`WriteMode::Existing`] never creates a
///    session, and reads, deletes, `extend`, `set_lifetime` and
///    `bind_owner` never do.
/// 5. **Check [`Limits`]** on keys and values before anything is written,
///    and the session's size ([`Limits::check_session`]) on what the write
///    would leave, inside the atomic step. A refused write changes nothing:
///    here every write builds a changed copy of the record and stores it
///    only once it is accepted.
/// 6. **Decide atomic operations with [`Edit`]**: read the key, let
///    [`Edit::take`], [`Edit::swap`] or [`Edit::increment`] decide, apply
///    its [`KeyChange`], count a write or a read as it says.
/// 7. **Count and index owners**: reads and writes are counted inside the
///    operation; listings name sessions by [`Handle`], never by id. This
///    store scans all sessions for the store-wide queries; a real one keeps
///    an index by owner and one by last activity.
/// 8. **Run the conformance suite** in your crate's tests:
///
/// ```
/// // tests/conformance.rs of a store crate, with its own store in place of MapStore
/// session_core::store_conformance_tests!(|limits: session_core::Limits| async move {
///     session_core::testkit::MapStore::with_limits(limits)
/// });
/// # fn main() {}
/// ```
#[derive(Default)]
pub struct MapStore {
    limits: Limits,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for MapStore {
    // Never the sessions: their ids and data are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapStore")
            .field("sessions", &self.lock().len())
            .field("limits", &self.limits)
            .finish()
    }
}

/// One session's record.
#[derive(Clone)]
struct Session {
    data: HashMap<String, Vec<u8>>,
    /// For the absolute lifetime.
    created: Instant,
    /// The same moment on the wall clock, for [`SessionInfo`].
    created_ms: u64,
    /// When the session expires, unless an operation slides it.
    deadline: Instant,
    /// The session's own idle timeout, from `set_lifetime`.
    idle: Option<Duration>,
    owner: Option<String>,
    last_active_ms: u64,
    reads: u64,
    writes: u64,
}

/// Now on the wall clock, in ms since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl Session {
    /// An empty session, created `now`; the first write slides its deadline.
    fn new(now: Instant) -> Session {
        let created_ms = now_ms();
        Session {
            data: HashMap::new(),
            created: now,
            created_ms,
            deadline: now,
            idle: None,
            owner: None,
            last_active_ms: created_ms,
            reads: 0,
            writes: 0,
        }
    }

    fn alive(&self, now: Instant) -> bool {
        now < self.deadline
    }

    /// Activity: slides the deadline by `policy`, with the session's own
    /// idle timeout if it has one.
    fn touch(&mut self, policy: &ExpiryPolicy, now: Instant) {
        let policy = self.idle.map_or(*policy, |idle| policy.with_idle(idle));
        let age = now.saturating_duration_since(self.created);
        self.deadline = policy.remaining(age).map_or(now, |left| now + left);
        self.last_active_ms = self.last_active_ms.max(now_ms());
    }

    /// A read: counted, and the deadline slid only if it would move by the
    /// touch granularity or more (with the last activity, so that both
    /// move together).
    fn read(&mut self, policy: &ExpiryPolicy, now: Instant) {
        self.reads += 1;
        let policy = self.idle.map_or(*policy, |idle| policy.with_idle(idle));
        let age = now.saturating_duration_since(self.created);
        let deadline = policy.remaining(age).map_or(now, |left| now + left);
        if deadline.saturating_duration_since(self.deadline) >= policy.touch_granularity() {
            self.touch(&policy, now);
        }
    }

    /// Activity that counts as a read (`false`) or a write (`true`).
    fn count(&mut self, writes: bool, policy: &ExpiryPolicy, now: Instant) {
        if writes {
            self.writes += 1;
        } else {
            self.reads += 1;
        }
        self.touch(policy, now);
    }

    fn size(&self) -> SessionSize {
        let mut size = SessionSize::default();
        for (key, value) in &self.data {
            size.add(key, value.len());
        }
        size
    }

    fn info(&self, id: &str, now: Instant) -> SessionInfo {
        SessionInfo {
            handle: Handle::of_stored(id),
            owner: self.owner.clone(),
            created_ms: self.created_ms,
            last_active_ms: self.last_active_ms,
            reads: self.reads,
            writes: self.writes,
            idle: Duration::from_millis(now_ms().saturating_sub(self.last_active_ms)),
            ttl: self.deadline.saturating_duration_since(now),
        }
    }
}

type Sessions = HashMap<String, Session>;

/// The live session `id`, forgetting it if it has expired.
fn live<'a>(sessions: &'a mut Sessions, id: &SessionId, now: Instant) -> Option<&'a mut Session> {
    if sessions.get(id.as_str()).is_some_and(|s| !s.alive(now)) {
        sessions.remove(id.as_str());
    }
    sessions.get_mut(id.as_str())
}

/// Forgets every expired session, before a query over all of them.
fn sweep(sessions: &mut Sessions, now: Instant) {
    sessions.retain(|_, session| session.alive(now));
}

impl MapStore {
    /// An empty store with the default [`Limits`].
    pub fn new() -> MapStore {
        MapStore::default()
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: Limits) -> MapStore {
        MapStore {
            limits,
            ..MapStore::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // Every change is built on a copy and stored whole, so a panic
        // while the lock is held leaves no half-written session.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A read of the live session `id`: `answer` of it, counted as a read,
    /// or `None` if there is no such session.
    fn read<T>(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
        answer: impl FnOnce(&Session) -> T,
    ) -> Option<T> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = live(&mut sessions, id, now)?;
        session.read(policy, now);
        Some(answer(session))
    }

    /// A write: `change` applied to a copy of the live session `id` (or of
    /// a new, empty one, for `Create`), stored if the result is within the
    /// limits. Returns whether the session existed or was created.
    fn write(
        &self,
        id: &SessionId,
        mode: WriteMode,
        policy: &ExpiryPolicy,
        change: impl FnOnce(&mut Session),
    ) -> Result<bool> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let (before, mut session) = match (live(&mut sessions, id, now), mode) {
            (Some(current), _) => (current.size(), current.clone()),
            (None, WriteMode::Create) => (SessionSize::default(), Session::new(now)),
            (None, WriteMode::Existing) => return Ok(false),
        };
        change(&mut session);
        self.limits.check_session(before, session.size())?;
        session.count(true, policy, now);
        sessions.insert(id.as_str().to_owned(), session);
        Ok(true)
    }

    /// An atomic operation on `key`: `decide` sees its value, and the
    /// [`Edit`] it returns is applied as a write would be. `None` when there
    /// is no session and the mode is `Existing`; with `Create` an absent
    /// session counts as empty and is created only if a value is put.
    fn edit<T>(
        &self,
        id: &SessionId,
        key: &str,
        mode: WriteMode,
        policy: &ExpiryPolicy,
        decide: impl FnOnce(Option<&[u8]>) -> Result<Edit<T>>,
    ) -> Result<Option<T>> {
        self.limits.check_key(key)?;
        let now = Instant::now();
        let mut sessions = self.lock();
        let current = live(&mut sessions, id, now);
        if current.is_none() && mode == WriteMode::Existing {
            return Ok(None);
        }
        let edit = decide(
            current
                .as_ref()
                .and_then(|s| s.data.get(key))
                .map(Vec::as_slice),
        )?;
        let (before, mut session) = match current {
            Some(current) => (current.size(), current.clone()),
            // Nothing to write: nothing to create.
            None if !matches!(edit.change, KeyChange::Put(_)) => return Ok(Some(edit.answer)),
            None => (SessionSize::default(), Session::new(now)),
        };
        match edit.change {
            KeyChange::Keep => {}
            KeyChange::Delete => {
                session.data.remove(key);
            }
            KeyChange::Put(value) => {
                self.limits.check_value(&value)?;
                session.data.insert(key.to_owned(), value);
            }
        }
        self.limits.check_session(before, session.size())?;
        session.count(edit.writes, policy, now);
        sessions.insert(id.as_str().to_owned(), session);
        Ok(Some(edit.answer))
    }

    /// Removes the live sessions `matching` picks; returns how many.
    fn remove_where(&self, matching: impl Fn(&str, &Session) -> bool) -> u64 {
        let mut sessions = self.lock();
        sweep(&mut sessions, Instant::now());
        let before = sessions.len();
        sessions.retain(|id, session| !matching(id, session));
        (before - sessions.len()) as u64
    }

    /// The metadata of every live session `matching` picks.
    fn infos(&self, matching: impl Fn(&Session) -> bool) -> Vec<SessionInfo> {
        let now = Instant::now();
        let mut sessions = self.lock();
        sweep(&mut sessions, now);
        sessions
            .iter()
            .filter(|(_, session)| matching(session))
            .map(|(id, session)| session.info(id, now))
            .collect()
    }
}

#[async_trait]
impl Store for MapStore {
    async fn get(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        Ok(self
            .read(id, policy, |session| session.data.get(key).cloned())
            .flatten())
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        let values = self.read(id, policy, |session| {
            keys.iter()
                .map(|key| session.data.get(*key).cloned())
                .collect()
        });
        Ok(values.unwrap_or_else(|| vec![None; keys.len()]))
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        Ok(self
            .read(id, policy, |session| session.data.clone())
            .unwrap_or_default())
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let written = self.write(id, mode, policy, |session| {
            for (key, value) in changes {
                match value {
                    Some(value) => session.data.insert(key.clone(), value.clone()),
                    None => session.data.remove(key),
                };
            }
        })?;
        Ok(if written {
            WriteOutcome::Applied
        } else {
            WriteOutcome::NoSession
        })
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        self.write(id, WriteMode::Existing, policy, |session| {
            for key in keys {
                session.data.remove(*key);
            }
        })
    }

    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        let taken = self.edit(id, key, WriteMode::Existing, policy, |current| {
            Ok(Edit::take(current))
        })?;
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
        if let Some(new) = new {
            self.limits.check_value(new)?;
        }
        let swap = self.edit(id, key, mode, policy, |current| {
            Ok(Edit::swap(current, expected, new))
        })?;
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
        self.edit(id, key, mode, policy, |current| {
            Edit::increment(current, delta)
        })
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.lock().remove(id.as_str());
        Ok(())
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = live(&mut sessions, id, now);
        Ok(session.map(|session| session.touch(policy, now)).is_some())
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let now = Instant::now();
        let mut sessions = self.lock();
        Ok(live(&mut sessions, id, now).map(|session| {
            session.idle = Some(idle);
            session.touch(policy, now);
            session.deadline.saturating_duration_since(now)
        }))
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut sessions = self.lock();
        if live(&mut sessions, from, now).is_none() {
            return Ok(false);
        }
        let Some(mut session) = sessions.remove(from.as_str()) else {
            return Ok(false);
        };
        // Data, creation time, own idle timeout, owner and counters move.
        session.touch(policy, now);
        sessions.insert(to.as_str().to_owned(), session);
        Ok(true)
    }

    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        check_owner(owner)?;
        let now = Instant::now();
        let mut sessions = self.lock();
        let Some(session) = live(&mut sessions, id, now) else {
            return Ok(false);
        };
        session.owner = Some(owner.to_owned());
        session.touch(policy, now);
        if let Some(cap) = cap {
            sweep(&mut sessions, now);
            let owned: Vec<(&str, u64)> = sessions
                .iter()
                .filter(|(_, s)| s.owner.as_deref() == Some(owner))
                .map(|(id, s)| (id.as_str(), s.last_active_ms))
                .collect();
            let evicted: Vec<String> = beyond_cap(&owned, cap, id.as_str())
                .into_iter()
                .map(str::to_owned)
                .collect();
            for evicted in evicted {
                sessions.remove(&evicted);
            }
        }
        Ok(true)
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        let now = Instant::now();
        let mut sessions = self.lock();
        Ok(live(&mut sessions, id, now).map(|session| session.info(id.as_str(), now)))
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let mut listed = self.infos(|session| session.owner.as_deref() == Some(owner));
        listed.sort_by_key(|info| std::cmp::Reverse(info.last_active_ms));
        Ok(listed)
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        Ok(self.remove_where(|id, session| {
            session.owner.as_deref() == Some(owner) && keep.is_none_or(|keep| keep.as_str() != id)
        }))
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let removed = self.remove_where(|id, session| {
            session.owner.as_deref() == Some(owner) && Handle::of_stored(id) == *handle
        });
        Ok(removed > 0)
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        let since = now_ms().saturating_sub(u64::try_from(within.as_millis()).unwrap_or(u64::MAX));
        Ok(self.infos(|session| session.last_active_ms >= since).len() as u64)
    }

    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        // Ordered by handle, which never changes: the cursor is the last
        // handle shown, and stays valid whatever the sessions do meanwhile.
        let since = now_ms().saturating_sub(u64::try_from(within.as_millis()).unwrap_or(u64::MAX));
        let mut active = self.infos(|session| session.last_active_ms >= since);
        active.sort_by(|a, b| a.handle.cmp(&b.handle));
        let start = cursor.map_or(0, |after| {
            active.partition_point(|info| info.handle.as_str() <= after)
        });
        let limit = limit.max(1);
        let sessions: Vec<SessionInfo> = active.into_iter().skip(start).take(limit).collect();
        let next = (sessions.len() == limit)
            .then(|| sessions.last().map(|info| info.handle.to_string()))
            .flatten();
        Ok(ActivePage { sessions, next })
    }

    async fn destroy_all(&self) -> Result<u64> {
        Ok(self.remove_where(|_, _| true))
    }
}
