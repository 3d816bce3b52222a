//! The [`Store`] trait and what its operations take: expiry policy, write
//! mode, limits. The crate docs explain strict mode.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::owners::{ActivePage, Handle, SessionInfo};
use crate::Swap;
use crate::{Error, Result, SessionId};

/// How long a session lives: an idle timeout slid by every operation, and an
/// optional absolute lifetime counted from creation that activity never extends.
///
/// A session past either limit must behave, in every store, exactly as if it did
/// not exist.
///
/// **Touch granularity.** Sliding the idle deadline is a write, and most
/// requests only read. So a read slides the deadline only when that moves it
/// by at least [`touch_granularity`](Self::touch_granularity): `touch_after`,
/// at most half the idle timeout. Between two refreshes a read writes
/// nothing, and a session then expires at most that granularity earlier than
/// "idle timeout after its last read" (writes always slide it exactly). The
/// absolute lifetime and the read counters stay exact. Zero, the default of
/// [`ExpiryPolicy::idle`], slides on every read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpiryPolicy {
    /// Time without any operation after which the session expires.
    pub idle: Duration,
    /// Time since creation after which the session expires, whatever its activity.
    pub absolute: Option<Duration>,
    /// How far a read must move the idle deadline before it is written (see
    /// above); capped at half of `idle`.
    pub touch_after: Duration,
}

impl ExpiryPolicy {
    /// A policy with only an idle timeout.
    pub const fn idle(idle: Duration) -> ExpiryPolicy {
        ExpiryPolicy {
            idle,
            absolute: None,
            touch_after: Duration::ZERO,
        }
    }

    /// The same policy with another idle timeout: a session's own, set by
    /// [`Store::set_lifetime`], in place of the configured one.
    pub const fn with_idle(self, idle: Duration) -> ExpiryPolicy {
        ExpiryPolicy { idle, ..self }
    }

    /// The same policy with an absolute lifetime.
    pub const fn with_absolute(self, absolute: Duration) -> ExpiryPolicy {
        ExpiryPolicy {
            absolute: Some(absolute),
            ..self
        }
    }

    /// The same policy with a touch granularity: reads slide the deadline
    /// only when it moves by at least this much (capped at half the idle
    /// timeout).
    pub const fn with_touch_after(self, touch_after: Duration) -> ExpiryPolicy {
        ExpiryPolicy {
            touch_after,
            ..self
        }
    }

    /// How far a read must move the idle deadline for the store to write it:
    /// `touch_after`, at most half the idle timeout, so that a session read
    /// more often than that never expires.
    pub fn touch_granularity(&self) -> Duration {
        self.touch_after.min(self.idle / 2)
    }

    /// Whether a read that would move a session's deadline from
    /// `deadline_ms` to `new_deadline_ms` (both ms since the Unix epoch, the
    /// new one from [`deadline_ms`](Self::deadline_ms)) must write it: when
    /// it moves by at least the [`touch_granularity`](Self::touch_granularity).
    /// Writes slide the deadline whatever this says.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::ExpiryPolicy;
    /// let policy = ExpiryPolicy::idle(Duration::from_secs(600)).with_touch_after(Duration::from_secs(60));
    /// assert!(!policy.refresh_due(700_000, 759_999));
    /// assert!(policy.refresh_due(700_000, 760_000));
    /// // Capped by the absolute lifetime, the deadline does not move at all.
    /// assert!(!policy.refresh_due(700_000, 700_000));
    /// // With no granularity, every read writes.
    /// assert!(ExpiryPolicy::idle(Duration::from_secs(600)).refresh_due(700_000, 700_000));
    /// ```
    pub fn refresh_due(&self, deadline_ms: u64, new_deadline_ms: u64) -> bool {
        let granularity = u64::try_from(self.touch_granularity().as_millis()).unwrap_or(u64::MAX);
        new_deadline_ms.saturating_sub(deadline_ms) >= granularity
    }

    /// How long a session created `age` ago may still live if touched now, or
    /// `None` if it is already past its absolute lifetime.
    ///
    /// Stores use this to compute the time-to-live they set on each operation.
    pub fn remaining(&self, age: Duration) -> Option<Duration> {
        match self.absolute {
            None => Some(self.idle),
            Some(absolute) => absolute
                .checked_sub(age)
                .filter(|left| !left.is_zero())
                .map(|left| left.min(self.idle)),
        }
    }

    /// For stores that keep deadlines as wall-clock times: the deadline, in
    /// ms since the Unix epoch, of a session created at `created_ms` and
    /// touched at `now_ms` (the idle timeout from now, capped by the absolute
    /// lifetime, at least 1 ms on), or `None` if it is past its absolute
    /// lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::ExpiryPolicy;
    /// let policy = ExpiryPolicy::idle(Duration::from_secs(60)).with_absolute(Duration::from_secs(90));
    /// assert_eq!(policy.deadline_ms(1_000, 2_000), Some(62_000));
    /// assert_eq!(policy.deadline_ms(1_000, 61_000), Some(91_000));
    /// assert_eq!(policy.deadline_ms(1_000, 91_000), None);
    /// ```
    pub fn deadline_ms(&self, created_ms: u64, now_ms: u64) -> Option<u64> {
        let age = Duration::from_millis(now_ms.saturating_sub(created_ms));
        let remaining = self.remaining(age)?;
        let remaining = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
        Some(now_ms.saturating_add(remaining.max(1)))
    }
}

/// Whether a write may create the session it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// The id was just minted by the server: create the session if it is absent
    /// (recording its creation time), update it otherwise.
    Create,
    /// The id came from a client: write only if the session exists and has not
    /// expired; otherwise change nothing and report [`WriteOutcome::NoSession`].
    Existing,
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum WriteOutcome {
    /// The changes were applied (and the session created, for [`WriteMode::Create`]).
    Applied,
    /// The session does not exist (never did, expired or destroyed) and the mode
    /// was [`WriteMode::Existing`]: nothing was written.
    NoSession,
}

/// One change of a multi-key write: a key and its new encoded value, or `None` to
/// delete the key.
pub type Change = (String, Option<Vec<u8>>);

/// Size limits a store enforces on keys, values and whole sessions, so that
/// one client cannot fill a store or a hash with megabytes of junk.
///
/// Each key and value is checked before anything is written; the session's
/// number of keys and its total bytes (keys plus values) are checked by the
/// store inside the write itself, atomically, on what the session would hold
/// after it. A refused write changes nothing.
///
/// ```
/// use session_core::Limits;
/// let limits = Limits::default().with_max_key_bytes(64).with_max_value_bytes(16 * 1024);
/// assert!(limits.check_key("user").is_ok());
/// assert!(limits.check_key("").is_err());
/// assert!(limits.check_value(&[0; 16 * 1024 + 1]).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    max_key_bytes: usize,
    max_value_bytes: usize,
    max_keys: usize,
    max_session_bytes: usize,
}

impl Default for Limits {
    /// Keys up to 256 bytes, values up to 4 MiB; sessions up to 1,024 keys
    /// and 16 MiB.
    fn default() -> Limits {
        Limits {
            max_key_bytes: 256,
            max_value_bytes: 4 * 1024 * 1024,
            max_keys: 1024,
            max_session_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a session holds, as [`Limits::check_session`] counts it: its user
/// keys, and their bytes plus their values' bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionSize {
    /// User keys.
    pub keys: usize,
    /// Bytes of the keys and their values.
    pub bytes: usize,
}

impl SessionSize {
    /// The size of a key-value pair.
    pub fn of(key: &str, value_len: usize) -> SessionSize {
        SessionSize {
            keys: 1,
            bytes: key.len() + value_len,
        }
    }

    /// Adds one key with a value of `value_len` bytes.
    pub fn add(&mut self, key: &str, value_len: usize) {
        self.keys += 1;
        self.bytes += key.len() + value_len;
    }

    /// Removes one key that had a value of `value_len` bytes.
    pub fn remove(&mut self, key: &str, value_len: usize) {
        self.keys = self.keys.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(key.len() + value_len);
    }
}

impl Limits {
    /// Sets the largest key accepted, in bytes of UTF-8.
    pub fn with_max_key_bytes(self, max_key_bytes: usize) -> Limits {
        Limits {
            max_key_bytes,
            ..self
        }
    }

    /// Sets the largest encoded value accepted, in bytes.
    pub fn with_max_value_bytes(self, max_value_bytes: usize) -> Limits {
        Limits {
            max_value_bytes,
            ..self
        }
    }

    /// Sets the most user keys one session may hold.
    pub fn with_max_keys(self, max_keys: usize) -> Limits {
        Limits { max_keys, ..self }
    }

    /// Sets the most bytes (keys plus values) one session may hold.
    pub fn with_max_session_bytes(self, max_session_bytes: usize) -> Limits {
        Limits {
            max_session_bytes,
            ..self
        }
    }

    /// The most user keys one session may hold.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The most bytes (keys plus values) one session may hold.
    pub fn max_session_bytes(&self) -> usize {
        self.max_session_bytes
    }

    /// Checks what a write would leave in a session, `after`, against what it
    /// held `before`: refused when over a limit and growing in that respect
    /// (so that a session over a limit lowered since can still shrink).
    ///
    /// ```
    /// use session_core::{Error, Limits, SessionSize};
    /// let limits = Limits::default().with_max_keys(2).with_max_session_bytes(10);
    /// let two = SessionSize { keys: 2, bytes: 4 };
    /// let three = SessionSize { keys: 3, bytes: 6 };
    /// assert!(limits.check_session(SessionSize::default(), two).is_ok());
    /// assert!(matches!(limits.check_session(two, three), Err(Error::TooManyKeys { keys: 3, max: 2 })));
    /// let big = SessionSize { keys: 1, bytes: 11 };
    /// assert!(matches!(limits.check_session(two, big), Err(Error::SessionTooLarge { .. })));
    /// assert!(limits.check_session(three, two).is_ok());
    /// ```
    pub fn check_session(&self, before: SessionSize, after: SessionSize) -> Result<()> {
        if after.keys > self.max_keys && after.keys > before.keys {
            Err(Error::TooManyKeys {
                keys: after.keys,
                max: self.max_keys,
            })
        } else if after.bytes > self.max_session_bytes && after.bytes > before.bytes {
            Err(Error::SessionTooLarge {
                bytes: after.bytes,
                max: self.max_session_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// The largest key accepted, in bytes.
    pub fn max_key_bytes(&self) -> usize {
        self.max_key_bytes
    }

    /// The largest encoded value accepted, in bytes.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// Checks one key: not empty, not over the limit.
    pub fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            Err(Error::EmptyKey)
        } else if key.len() > self.max_key_bytes {
            Err(Error::KeyTooLarge {
                len: key.len(),
                max: self.max_key_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Checks several keys.
    pub fn check_keys<K: AsRef<str>>(&self, keys: &[K]) -> Result<()> {
        keys.iter().try_for_each(|key| self.check_key(key.as_ref()))
    }

    /// Checks one encoded value.
    pub fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.max_value_bytes {
            Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.max_value_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// Checks every key and value of a multi-key write, before anything is written.
    pub fn check_changes(&self, changes: &[Change]) -> Result<()> {
        changes.iter().try_for_each(|(key, value)| {
            self.check_key(key)?;
            value.as_deref().map_or(Ok(()), |v| self.check_value(v))
        })
    }
}

/// A session backend: per-key operations on one session, async and strict.
///
/// - Reads: [`get`](Store::get), [`get_many`](Store::get_many),
///   [`get_all`](Store::get_all).
/// - Writes: [`set`](Store::set), [`set_many`](Store::set_many) (several
///   keys set or deleted in one step), [`del`](Store::del),
///   [`del_many`](Store::del_many), [`del_all`](Store::del_all).
/// - One key, atomically: [`take`](Store::take),
///   [`compare_and_set`](Store::compare_and_set),
///   [`increment`](Store::increment).
/// - The session's life: [`extend`](Store::extend),
///   [`set_lifetime`](Store::set_lifetime), [`regenerate`](Store::regenerate)
///   (moves it to a new id).
/// - Owned sessions: [`bind_owner`](Store::bind_owner), per-session metadata
///   ([`info`](Store::info)) and the store-wide queries (see
///   [owned sessions](crate#owned-sessions-named-by-handles)).
///
/// The README maps each operation to the Node libraries this API comes from.
///
/// # Contract
///
/// - Each call is atomic for its session: a reader never sees half of a
///   `set_many`, and concurrent writers to different keys of one session never
///   lose each other's writes. Writers of one key lose nothing either when
///   they use [`take`](Store::take), [`compare_and_set`](Store::compare_and_set)
///   or [`increment`](Store::increment), each one atomic step in the store
///   (never a read followed by a write).
/// - Each call except `del_all` slides the idle expiry of a live session to
///   `policy.remaining(age)`, with the session's own idle timeout in place of
///   `policy.idle` once [`set_lifetime`](Store::set_lifetime) gave it one.
///   Reads and deletes never create a session.
/// - A session past its idle timeout or absolute lifetime behaves as absent.
/// - The creation time is metadata that no user key can collide with and that
///   `get_all` never returns.
/// - Keys and values are checked against the store's [`Limits`] before anything
///   is written, and the session's key count and bytes inside the write
///   ([`Limits::check_session`]); an error then means nothing changed.
/// - Each session carries metadata ([`SessionInfo`]): owner, creation time,
///   last activity, and read and write counters, counted inside the read or
///   write itself, so that concurrent operations lose no count. Metadata
///   and the store-wide queries never slide a session's expiry, and never
///   count as reads.
/// - Store-wide queries never return a session id, only [`Handle`]s, and
///   never a session that has expired or been destroyed.
///
/// # Store-wide access
///
/// Defined here once, async, for every store: count the live sessions
/// ([`len`](Store::len), [`is_empty`](Store::is_empty), or
/// [`count_active`](Store::count_active) for a window of activity), list
/// them by [`Handle`] ([`active_page`](Store::active_page) with
/// `Duration::MAX` for all of them), and clear the store
/// ([`destroy_all`](Store::destroy_all)). A store's own diagnostics (such
/// as sessions on disk not yet swept) are its inherent methods.
///
/// The trait is object safe: [`GenericSession`](crate::GenericSession) holds an
/// `Arc<dyn Store>`. The `testkit` feature of this crate holds the conformance
/// suite every store must pass.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value of `key`, or `None` if the key or the session is absent.
    async fn get(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>>;

    /// The values of `keys`, in the same order, `None` for each absent one.
    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>>;

    /// Every user key of the session and its value; empty if the session is absent.
    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>>;

    /// Sets one key. The default delegates to [`set_many`](Store::set_many).
    async fn set(
        &self,
        id: &SessionId,
        key: &str,
        value: &[u8],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        let changes = [(key.to_owned(), Some(value.to_vec()))];
        self.set_many(id, &changes, mode, policy).await
    }

    /// Applies all `changes` as one atomic operation; a change to `None` deletes
    /// that key. With [`WriteMode::Existing`] nothing is written to an absent
    /// session.
    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome>;

    /// Deletes one key. Returns whether the session exists (it is never created).
    async fn del(&self, id: &SessionId, key: &str, policy: &ExpiryPolicy) -> Result<bool> {
        self.del_many(id, &[key], policy).await
    }

    /// Deletes several keys atomically. Returns whether the session exists.
    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool>;

    /// Removes `key` and returns the value it held, in one atomic step: of
    /// several concurrent takes of one value, exactly one gets it. `None`
    /// when the key or the session is absent; never creates a session.
    /// Counts a write.
    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>>;

    /// Sets `key` to `new` (`None`: deletes it) only if it still holds
    /// `expected` (`None`: only if it is absent), in one atomic step.
    ///
    /// - [`Swap::Applied`] when it did (counted as a write);
    /// - [`Swap::Mismatch`] with the value the key holds when it did not
    ///   (counted as a read); nothing is written;
    /// - [`Swap::NoSession`] for an absent session with
    ///   [`WriteMode::Existing`].
    ///
    /// With [`WriteMode::Create`] an absent session counts as empty: it is
    /// created when `expected` is `None` and `new` is not, and never
    /// otherwise. The new value is checked against the store's [`Limits`]
    /// like a [`set`](Store::set).
    async fn compare_and_set(
        &self,
        id: &SessionId,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Swap>;

    /// Adds `delta` to the integer in `key` ([`parse_integer`]'s format; an
    /// absent key counts as 0) and returns the new value, in one atomic
    /// step. Counts a write. `None`, changing nothing, for an absent session
    /// with [`WriteMode::Existing`]; with [`WriteMode::Create`] an absent
    /// session is created.
    ///
    /// # Errors
    ///
    /// [`Error::NotAnInteger`] when the key holds anything else, and
    /// [`Error::IntegerOverflow`] when the sum leaves `i64`: nothing is
    /// written. A new key counts against the [`Limits`] as a `set` would.
    ///
    /// [`parse_integer`]: crate::parse_integer
    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Option<i64>>;

    /// Removes the whole session, data and metadata (a destroy). Later `Existing` writes to this id find no session.
    async fn del_all(&self, id: &SessionId) -> Result<()>;

    /// Slides the idle expiry without touching data (a `touch`). Returns whether
    /// the session exists.
    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool>;

    /// Gives the live session `id` an idle timeout of its own ("remember me",
    /// or a shorter one for an admin), kept with the session: from now on
    /// every operation on it slides its expiry by `idle` instead of
    /// `policy.idle`, while `policy.absolute` still bounds it. Slides the
    /// expiry now. Returns the session's time to live after the change, or
    /// `None`, changing and creating nothing, if it does not exist.
    ///
    /// A store whose processes serve reads between refreshes without
    /// asking it may leave a session whose timeout shrinks up to
    /// `policy.touch_after` longer, never past the deadline it had nor its
    /// absolute lifetime, and answer that time to live (store-redis does:
    /// other processes may read it without sliding it until then).
    ///
    /// The setting moves with the session on [`regenerate`](Store::regenerate).
    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>>;

    /// Moves a live session to the fresh id `to`, keeping its data, creation
    /// time and own idle timeout (so regeneration never extends the absolute
    /// lifetime); `from` is gone afterwards. Returns `false`, changing
    /// nothing, if `from` does not exist.
    ///
    /// Its owner and counters move with it too, and the owner's index then
    /// names `to` in place of `from`.
    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool>;

    /// Binds the live session `id` to `owner` (replacing any owner it had)
    /// and slides its expiry. With a `cap`, the owner's least recently active
    /// other sessions are destroyed until at most `cap` remain, this one
    /// included; none if a racing bind of the same owner has ended this one
    /// (see [`beyond_cap`](crate::beyond_cap)), so that two binds racing
    /// leave one session, not none. Returns `false`, changing and creating nothing, if the
    /// session does not exist.
    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool>;

    /// The metadata of the live session `id`, or `None`.
    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>>;

    /// Every live session of `owner`, with its metadata, most recently active
    /// first. Costs O(k log n) for an owner with k sessions among n.
    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>>;

    /// Destroys every session of `owner`, except `keep` if given ("log out my
    /// other devices"). Returns how many were destroyed. A write racing it
    /// never brings a destroyed session back.
    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64>;

    /// Destroys the session of `owner` named by `handle`. Returns `false`,
    /// destroying nothing, when no live session of `owner` has that handle
    /// (so one user's handle never reaches another's session).
    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool>;

    /// How many live sessions had some activity within the last `within`.
    ///
    /// Activity is what moves a session's expiry: a write, `extend`, a
    /// bind, or a read that refreshes it. A read between two refreshes (see
    /// [`ExpiryPolicy`]'s touch granularity) writes nothing and is not
    /// counted here, so a window shorter than the granularity can miss a
    /// session only read within it. The embedded stores, which see every
    /// read, report such reads in [`SessionInfo::last_active_ms`] all the
    /// same.
    async fn count_active(&self, within: Duration) -> Result<u64>;

    /// The live sessions active within the last `within`, at most `limit` at
    /// a time, starting at `cursor` (`None` for the first page, then the
    /// previous page's [`ActivePage::next`]). As with Redis's `SCAN`, a
    /// session active throughout the walk is listed at least once; one
    /// active meanwhile may be listed again. Activity is as
    /// [`count_active`](Store::count_active) counts it.
    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage>;

    /// Destroys every session of the store, owners' and activity indexes
    /// included. Returns how many.
    async fn destroy_all(&self) -> Result<u64>;

    /// How many live sessions the store holds, whatever their last
    /// activity: [`count_active`](Store::count_active) over an unbounded
    /// window (every store saturates it), at the same cost. Never counts a
    /// session that has expired, even one its store has not swept yet.
    ///
    /// ```
    /// # use session_core::Store;
    /// # async fn show(store: &dyn Store) -> session_core::Result<()> {
    /// let sessions = store.len().await?;
    /// # Ok(()) }
    /// ```
    async fn len(&self) -> Result<u64> {
        self.count_active(Duration::MAX).await
    }

    /// Writes out what the store keeps in memory for later, and syncs to
    /// disk what it has not synced yet: call it before a graceful shutdown.
    /// A store whose reads leave their read counts and deadline refreshes
    /// in memory for a background pass (see
    /// [`ExpiryPolicy::touch_granularity`]) writes them out now, so that a
    /// restart loses none; one that keeps nothing for later answers at
    /// once, which is what this default does. A wrapper around another
    /// store must pass the call on.
    ///
    /// ```
    /// # use session_core::Store;
    /// # async fn show(store: &dyn Store) -> session_core::Result<()> {
    /// // The server has stopped taking requests:
    /// store.flush().await?;
    /// # Ok(()) }
    /// ```
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the store holds no live session: the first page of
    /// [`active_page`](Store::active_page) over an unbounded window, so
    /// usually cheaper than [`len`](Store::len).
    async fn is_empty(&self) -> Result<bool> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .active_page(Duration::MAX, cursor.as_deref(), 1)
                .await?;
            if !page.sessions.is_empty() {
                return Ok(false);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(true),
            }
        }
    }
}
