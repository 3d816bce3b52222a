//! [`RedisStore`]: the [`Store`] trait on one Redis hash per session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisResult, Script};
use session_core::parse_integer;
use session_core::{
    ActivePage, Change, ExpiryPolicy, Handle, Limits, Result, SessionId, SessionInfo, Store, Swap,
    WriteMode, WriteOutcome,
};

use crate::connection::Connection;
use crate::error::to_core;
use crate::reads::{self, Plan, Reads};
use crate::record;
#[cfg(feature = "cluster")]
use crate::scripts;
use crate::scripts::Scripts;
use crate::{Layout, RedisStoreBuilder};

/// Nothing after the policy, for scripts that take no more arguments.
const NO_ARGS: &[&str] = &[];

/// The hash field holding a session's creation time (server clock, Unix
/// milliseconds). It starts with byte 0xFF, which never occurs in UTF-8, so no
/// user key (a `&str`) can collide with it.
pub const CREATED_FIELD: &[u8] = b"\xffcreated";

/// A session store on Redis: one hash per session, every operation one atomic
/// round trip. Cheap to clone: clones share the connection.
///
/// See the [crate documentation](crate) for the layout and the guarantees.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) connection: Connection,
    pub(crate) layout: Layout,
    pub(crate) prefix: Arc<str>,
    /// Where the owner and activity indexes go: the prefix, or in the
    /// connect-redis layout a prefix of their own.
    pub(crate) index_prefix: Arc<str>,
    /// The scripts of the layout.
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) scan_count: usize,
    pub(crate) timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) owned_lifetime: Duration,
    pub(crate) activity_index: bool,
    /// Sessions readable with a plain command, and the reads that were.
    pub(crate) reads: Arc<Reads>,
    /// One owner's cap steps at a time, through this store and its clones.
    pub(crate) cap_turns: Arc<crate::owners::CapTurns>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.connection.is_cluster())
            .field("layout", &self.layout)
            .field("prefix", &self.prefix)
            .field("scan_count", &self.scan_count)
            .field("response_timeout", &self.timeout)
            .field("limits", &self.limits)
            .field("owned_lifetime", &self.owned_lifetime)
            .field("activity_index", &self.activity_index)
            .field("reads", &self.reads)
            .finish()
    }
}

/// The longest duration sent to Redis, about 35,000 years: `PEXPIRE` refuses
/// what overflows the server's clock, and Lua numbers are exact only to 2^53.
pub(crate) const MAX_MILLIS: u64 = 1 << 50;

/// An [`ExpiryPolicy`] in the milliseconds the scripts take: the idle timeout,
/// and the absolute lifetime or 0 for none. Never 0 for a real duration, since
/// `PEXPIRE key 0` would delete the session, and never over [`MAX_MILLIS`].
fn millis(policy: &ExpiryPolicy) -> (u64, u64) {
    let ms = |d: Duration| {
        u64::try_from(d.as_millis())
            .unwrap_or(MAX_MILLIS)
            .clamp(1, MAX_MILLIS)
    };
    (ms(policy.idle), policy.absolute.map_or(0, ms))
}

/// The policy's `touch_after` in ms, as the scripts take it (they cap it at
/// half the session's idle timeout, which may be its own).
fn touch_after_ms(policy: &ExpiryPolicy) -> u64 {
    u64::try_from(policy.touch_after.as_millis()).map_or(MAX_MILLIS, |ms| ms.min(MAX_MILLIS))
}

impl RedisStore {
    /// A builder with the default settings (`redis://127.0.0.1:6379`).
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// The Redis key of a session: `PREFIX{ID}`, the id in a hash tag so that
    /// everything of one session lands in one cluster slot; `PREFIXID` in
    /// the connect-redis layout, as connect-redis names it.
    pub fn key(&self, id: &SessionId) -> String {
        let id = id.as_str();
        let mut key = String::with_capacity(self.prefix.len() + id.len() + 2);
        key.push_str(&self.prefix);
        match self.layout {
            Layout::Native => {
                key.push('{');
                key.push_str(id);
                key.push('}');
            }
            Layout::ConnectRedis => key.push_str(id),
        }
        key
    }

    /// Runs one operation on a clone of the shared connection, bounded by the
    /// response timeout (waiting for a reconnection included), with driver
    /// errors mapped onto the core's.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, op(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                tracing::debug!(%error, "redis operation failed");
                Err(to_core(error, self.timeout))
            }
            Err(_) => Err(session_core::Error::Timeout(self.timeout)),
        }
    }

    /// Runs a session script on `key` (and its bucket's activity indexes)
    /// with the policy as ARGV[1..2] and `args` after it.
    pub(crate) async fn script<T, A>(
        &self,
        script: &Script,
        key: &str,
        policy: &ExpiryPolicy,
        args: A,
    ) -> Result<T>
    where
        T: redis::FromRedisValue,
        A: redis::ToRedisArgs,
    {
        let (idle, absolute) = millis(policy);
        let mut invocation = script.key(key);
        if self.activity_index {
            invocation.key(self.index_keys(key));
        }
        invocation.arg(idle).arg(absolute).arg(args);
        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    /// A read of `fields` of session `hash`: `command` (`HGET`, `HMGET` or
    /// `HGETALL`) alone while this process knows no refresh is due (see
    /// [`Reads`]), counted here; otherwise `script`, which does the same,
    /// counts the read and, when a refresh is due under the policy's touch
    /// granularity, slides the idle expiry, in one atomic step. That is a
    /// script because the TTL depends on the session's own idle timeout, if
    /// it has one, and on its age, both stored in the hash.
    ///
    /// A read due a refresh is a plain command too while the session's
    /// deadline is far enough off: it leaves the refresh to the background
    /// flush (see [`Reads`]).
    async fn read<T: redis::FromRedisValue + Send>(
        &self,
        hash: &str,
        (command, script): (&str, &Script),
        fields: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<T> {
        let granularity = touch_after_ms(policy);
        if !policy.touch_granularity().is_zero() {
            let at = std::time::Instant::now();
            let plan = self.reads.plan_at(hash, at);
            if plan != Plan::Script {
                if let Some(value) = self.plain_read(hash, command, fields).await? {
                    if plan == Plan::Defer {
                        let (idle, absolute) = millis(policy);
                        let policy = reads::Policy {
                            idle,
                            absolute,
                            granularity,
                        };
                        self.reads.defer(hash, at, policy);
                    } else {
                        self.reads.count(hash);
                    }
                    return Ok(value);
                }
            }
        }
        let sent = std::time::Instant::now();
        let (due, value, left): (u64, T, u64) = self
            .script(script, hash, policy, (granularity, fields))
            .await?;
        self.reads.note(hash, sent, due, left);
        Ok(value)
    }

    /// Writes out the refresh a read of `hash` left for later, or its reads
    /// in doubt, if there are any, with its pending reads; or with `None`
    /// every session's: for a query
    /// that reports deadlines or last activity. Answers how many sessions'
    /// stayed owed (Redis did not answer).
    pub(crate) async fn write_out_refreshes(&self, hash: Option<&str>) -> usize {
        if hash.is_some_and(|hash| !self.reads.must_write_out(hash)) {
            return 0;
        }
        reads::write_out_now(
            Arc::clone(&self.reads),
            self.connection.clone(),
            Arc::clone(&self.scripts),
            self.timeout,
            hash.map(str::to_owned),
        )
        .await
    }

    /// Writes out now what this store's plain reads left for its
    /// background pass, about once a second: their read counts and the
    /// refreshes of reads due one (see the [crate docs](crate)). Call it
    /// before a graceful shutdown, so that no session read in the last
    /// second ends an idle timeout after an earlier read. An error says how
    /// many sessions' stayed unwritten: Redis did not answer.
    pub async fn flush(&self) -> Result<()> {
        match self.write_out_refreshes(None).await {
            0 => Ok(()),
            stayed => Err(session_core::Error::Backend(
                format!("the pending reads of {stayed} sessions could not be written out").into(),
            )),
        }
    }

    /// A read with `command` alone, no script; in the connect-redis
    /// layout, a `GET` of the record answered as `command` would be. `None`
    /// when the record does not parse: the script then says why.
    async fn plain_read<T: redis::FromRedisValue + Send>(
        &self,
        hash: &str,
        command: &str,
        fields: &[&str],
    ) -> Result<Option<T>> {
        let reply = match self.layout {
            Layout::Native => {
                let mut plain = redis::cmd(command);
                plain.arg(hash).arg(fields);
                return self
                    .run(|mut c| async move { plain.query_async(&mut c).await })
                    .await
                    .map(Some);
            }
            Layout::ConnectRedis => {
                let record: Option<Vec<u8>> =
                    self.run(|mut c| async move {
                        redis::cmd("GET").arg(hash).query_async(&mut c).await
                    })
                    .await?;
                record::plain_reply(command, record.as_deref(), fields)
            }
        };
        reply
            .map(|reply| T::from_redis_value(reply).map_err(|e| to_core(e.into(), self.timeout)))
            .transpose()
    }

    #[cfg(feature = "cluster")]
    async fn regenerate_across_slots(
        &self,
        from: &str,
        to: &str,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        // The ids hash to different slots, so no one script can see both. Seal
        // the old hash and copy it, then delete it if it still holds what was
        // copied (it would not only if the seal ran out meanwhile: then copy
        // again). Sealed, it refuses writes, as a moved session would. If this
        // is cancelled midway, the old session is intact once the seal runs
        // out, and the copy expires.
        let failure = match self.copy_across_slots(from, to, policy).await {
            Ok(moved) => return Ok(moved),
            Err(failure) => failure,
        };
        // A step failed, or only its reply was lost: the final delete of the
        // old hash may have run. So the copy is dropped only when one script
        // finds the old hash still there (and unseals it, giving it back its
        // writes); when the old one is gone, the copy is the session.
        let marker = moved_marker(from);
        let unsealed: Result<u8> = self
            .run(|mut c| {
                let mut invocation = scripts::UNSEAL.key(from);
                invocation.key(&marker);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await;
        match unsealed {
            // The old one is there: it stays the session.
            Ok(1) => {
                let _ = self.destroy_hash(to, None).await;
                Err(failure)
            }
            // The final delete ran: the copy is the session.
            Ok(0) => match self.exists(to).await {
                Ok(true) => {
                    tracing::debug!(%failure, "regenerate's last reply was lost; the session moved");
                    Ok(true)
                }
                _ => Err(failure),
            },
            // Destroyed (or expired) meanwhile: so is its copy.
            Ok(_) => {
                let _ = self.destroy_hash(to, None).await;
                Ok(false)
            }
            // Not known: keep both. The seal and the copy's TTL end by themselves.
            Err(_) => Err(failure),
        }
    }

    /// After a cluster regenerate: adds to the copy `to` the reads the old
    /// session took while it was sealed (`reads` at its end, against what
    /// `exported` held), so that no read goes uncounted.
    #[cfg(feature = "cluster")]
    async fn catch_up_reads(&self, to: &str, exported: &[Vec<u8>], reads: &str) -> Result<()> {
        let before: i64 = exported
            .chunks(2)
            .find(|pair| pair[0] == b"\xffreads")
            .and_then(|pair| std::str::from_utf8(pair.get(1)?).ok()?.parse().ok())
            .unwrap_or(0);
        let missed = reads.parse::<i64>().unwrap_or(0) - before;
        if missed > 0 {
            self.run(|mut c| {
                let mut invocation = self.scripts.add_reads.key(to);
                // No token: these reads go out once, not in a flush.
                invocation.arg(missed).arg("");
                async move { invocation.invoke_async::<Vec<i64>>(&mut c).await }
            })
            .await?;
        }
        Ok(())
    }

    /// The owner of the session at `hash`, if it has one.
    pub(crate) async fn owner_of(&self, hash: &str) -> Result<Option<String>> {
        // A script, not a bare HGET, so that it reads either layout.
        self.run(|mut c| {
            let invocation = self.scripts.owner.key(hash);
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
    }

    /// Moves the session at hash `from` to the fresh hash `to`: one script
    /// on a server, a copy across slots on a cluster. `None` if there was
    /// no live session to move; else the moved session's owner, as it
    /// stood when it moved.
    async fn move_session(
        &self,
        from: &str,
        to: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Option<String>>> {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            if !self.regenerate_across_slots(from, to, policy).await? {
                return Ok(None);
            }
            // The copy carried the owner; the reply did not. The move is
            // done: a failure to read it is no failure of the move.
            let owner = self.owner_of(to).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "a regenerated session's owner could not be read");
                None
            });
            return Ok(Some(owner));
        }
        let (idle, absolute) = millis(policy);
        let indexes = self.index_keys(from);
        let reply: Vec<String> = self
            .run(|mut c| {
                let mut invocation = self.scripts.regenerate.key(from);
                invocation.key(to).key(&indexes).arg(idle).arg(absolute);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(match reply.as_slice() {
            [moved, rest @ ..] if moved == "1" => {
                Some(rest.first().filter(|owner| !owner.is_empty()).cloned())
            }
            _ => None,
        })
    }

    /// Whether `key` exists.
    #[cfg(feature = "cluster")]
    async fn exists(&self, key: &str) -> Result<bool> {
        self.run(|mut c| async move { redis::cmd("EXISTS").arg(key).query_async(&mut c).await })
            .await
    }

    #[cfg(feature = "cluster")]
    async fn copy_across_slots(&self, from: &str, to: &str, policy: &ExpiryPolicy) -> Result<bool> {
        const ATTEMPTS: usize = 8;
        let seal = millis(&ExpiryPolicy::idle(self.timeout.saturating_mul(3))).0;
        for _ in 0..ATTEMPTS {
            let exported: Vec<Vec<u8>> = self.script(&scripts::EXPORT, from, policy, seal).await?;
            if exported.is_empty() {
                self.destroy_hash(to, None).await?;
                return Ok(false);
            }
            let imported: bool = self.script(&scripts::IMPORT, to, policy, &exported).await?;
            #[cfg(test)]
            if faults::take_destroy(from, faults::Step::Import) {
                self.destroy_hash(from, None).await?;
            }
            #[cfg(test)]
            faults::lose_reply(from, faults::Step::Import, self.timeout)?;
            if !imported {
                return Ok(false);
            }
            let marker = moved_marker(from);
            let indexes = self.index_keys(from);
            let forgot: Vec<String> = self
                .run(|mut c| {
                    let mut invocation = scripts::FORGET.key(from);
                    invocation
                        .key(&marker)
                        .key(&indexes)
                        .arg(seal)
                        .arg(&exported);
                    async move { invocation.invoke_async(&mut c).await }
                })
                .await?;
            #[cfg(test)]
            faults::lose_reply(from, faults::Step::Forget, self.timeout)?;
            if let [done, reads] = forgot.as_slice() {
                if done == "1" {
                    self.catch_up_reads(to, &exported, reads).await?;
                    return Ok(true);
                }
            }
        }
        Err(session_core::Error::Backend(
            format!("the session kept changing during {ATTEMPTS} attempts to regenerate it").into(),
        ))
    }
}

/// A value that may be absent, as two script arguments: `1` and the value,
/// or `0` and nothing.
fn flag(value: Option<&[u8]>) -> (u8, &[u8]) {
    (u8::from(value.is_some()), value.unwrap_or_default())
}

impl RedisStore {
    /// The error a writing script's reply stands for: a limit refused
    /// ({-1, keys} or {-2, bytes}), or a reply no script gives.
    fn refusal(&self, reply: &[redis::Value], script: &str) -> session_core::Error {
        match reply {
            [redis::Value::Int(-1), redis::Value::Int(keys)] => session_core::Error::TooManyKeys {
                keys: usize::try_from(*keys).unwrap_or(usize::MAX),
                max: self.limits.max_keys(),
            },
            [redis::Value::Int(-2), redis::Value::Int(bytes)] => {
                session_core::Error::SessionTooLarge {
                    bytes: usize::try_from(*bytes).unwrap_or(usize::MAX),
                    max: self.limits.max_session_bytes(),
                }
            }
            // Not the reply itself: it may hold session data.
            _ => session_core::Error::Backend(
                format!("unexpected {script} reply of {} items", reply.len()).into(),
            ),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        self.read(&self.key(id), ("HGET", &self.scripts.get), &[key], policy)
            .await
    }

    async fn get_many(
        &self,
        id: &SessionId,
        keys: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.limits.check_keys(keys)?;
        if keys.is_empty() {
            self.extend(id, policy).await?;
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .read(
                &self.key(id),
                ("HMGET", &self.scripts.get_many),
                keys,
                policy,
            )
            .await?;
        // An absent session answers an empty list.
        Ok(if values.len() == keys.len() {
            values
        } else {
            vec![None; keys.len()]
        })
    }

    async fn get_all(
        &self,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<HashMap<String, Vec<u8>>> {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self
            .read(
                &self.key(id),
                ("HGETALL", &self.scripts.get_all),
                NO_ARGS,
                policy,
            )
            .await?;
        // Metadata fields are not UTF-8, user keys always are.
        Ok(fields
            .into_iter()
            .filter_map(|(field, value)| String::from_utf8(field).ok().map(|key| (key, value)))
            .collect())
    }

    async fn set_many(
        &self,
        id: &SessionId,
        changes: &[Change],
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<WriteOutcome> {
        self.limits.check_changes(changes)?;
        let hash = self.key(id);
        let create = u8::from(mode == WriteMode::Create);
        // The script sets, then deletes: keep only each key's last change, so
        // that the changes apply as if in order.
        let last: HashMap<&str, Option<&[u8]>> = changes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
            .collect();
        let set: Vec<(&str, &[u8])> = last
            .iter()
            .filter_map(|(key, value)| value.map(|v| (*key, v)))
            .collect();
        let deleted: Vec<&str> = last
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| *key)
            .collect();
        let (max_keys, max_bytes) = (self.limits.max_keys(), self.limits.max_session_bytes());
        let reply: Vec<i64> = self
            .script(
                &self.scripts.set_many,
                &hash,
                policy,
                (create, max_keys, max_bytes, set.len(), set, deleted),
            )
            .await?;
        let count = usize::try_from(reply.get(1).copied().unwrap_or(0)).unwrap_or(usize::MAX);
        match reply.first() {
            Some(1) => Ok(WriteOutcome::Applied),
            Some(0) => Ok(WriteOutcome::NoSession),
            Some(-1) => Err(session_core::Error::TooManyKeys {
                keys: count,
                max: max_keys,
            }),
            Some(-2) => Err(session_core::Error::SessionTooLarge {
                bytes: count,
                max: max_bytes,
            }),
            _ => Err(session_core::Error::Backend(
                format!("unexpected set_many reply {reply:?}").into(),
            )),
        }
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        if keys.is_empty() {
            return self.extend(id, policy).await;
        }
        // Always a script: a cluster regenerate may have sealed the session.
        self.script(&self.scripts.del_many, &self.key(id), policy, keys)
            .await
    }

    async fn take(
        &self,
        id: &SessionId,
        key: &str,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Vec<u8>>> {
        self.limits.check_key(key)?;
        self.script(&self.scripts.take, &self.key(id), policy, key)
            .await
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
        let reply: Vec<redis::Value> = self
            .script(
                &self.scripts.compare_and_set,
                &self.key(id),
                policy,
                (
                    u8::from(mode == WriteMode::Create),
                    self.limits.max_keys(),
                    self.limits.max_session_bytes(),
                    key,
                    flag(expected),
                    flag(new),
                ),
            )
            .await?;
        match reply.as_slice() {
            [redis::Value::Int(1)] => Ok(Swap::Applied),
            [redis::Value::Int(0)] => Ok(Swap::NoSession),
            [redis::Value::Int(2)] => Ok(Swap::Mismatch(None)),
            [redis::Value::Int(2), redis::Value::Nil] => Ok(Swap::Mismatch(None)),
            [redis::Value::Int(2), redis::Value::BulkString(current)] => {
                Ok(Swap::Mismatch(Some(current.clone())))
            }
            _ => Err(self.refusal(&reply, "compare_and_set")),
        }
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        delta: i64,
        mode: WriteMode,
        policy: &ExpiryPolicy,
    ) -> Result<Option<i64>> {
        self.limits.check_key(key)?;
        let reply: Vec<redis::Value> = self
            .script(
                &self.scripts.increment,
                &self.key(id),
                policy,
                (
                    u8::from(mode == WriteMode::Create),
                    self.limits.max_keys(),
                    self.limits.max_session_bytes(),
                    key,
                    delta,
                    self.limits.max_value_bytes(),
                ),
            )
            .await?;
        match reply.as_slice() {
            [redis::Value::Int(1), redis::Value::BulkString(value)] => parse_integer(value)
                .map(Some)
                .ok_or_else(|| self.refusal(&reply, "increment")),
            [redis::Value::Int(0)] => Ok(None),
            [redis::Value::Int(-3)] => Err(session_core::Error::NotAnInteger),
            [redis::Value::Int(-4)] => Err(session_core::Error::IntegerOverflow),
            [redis::Value::Int(-5), redis::Value::Int(len)] => {
                Err(session_core::Error::ValueTooLarge {
                    len: usize::try_from(*len).unwrap_or(usize::MAX),
                    max: self.limits.max_value_bytes(),
                })
            }
            _ => Err(self.refusal(&reply, "increment")),
        }
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.destroy(id).await
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        // A script, not a bare PEXPIRE: the session may have its own timeout.
        self.script(&self.scripts.extend, &self.key(id), policy, NO_ARGS)
            .await
    }

    async fn set_lifetime(
        &self,
        id: &SessionId,
        idle: Duration,
        policy: &ExpiryPolicy,
    ) -> Result<Option<Duration>> {
        let own = millis(&policy.with_idle(idle)).0;
        let granularity = touch_after_ms(policy);
        let hash = self.key(id);
        // A shorter timeout shortens the granularity: the next read asks.
        // Other processes' reads ask once the refresh their last script
        // said was due comes: the script leaves the session that long.
        self.reads.forget_fresh(&hash);
        let ttl: i64 = self
            .script(
                &self.scripts.set_lifetime,
                &hash,
                policy,
                (own, granularity),
            )
            .await?;
        Ok(u64::try_from(ttl).ok().map(Duration::from_millis))
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let (from_id, to_id) = (from, to);
        let (from, to) = (self.key(from_id), self.key(to_id));
        // An owned session's new id joins its owner's index before the move,
        // so that no listing or log-out misses it whatever fails later; the
        // id that is gone leaves the index after (or is pruned later).
        let owner = self.owner_of(&from).await?;
        if let Some(owner) = &owner {
            self.index(owner, to_id, policy).await?;
        }
        let moved = {
            // Reads counted here under the old id move with it, never
            // between a flush pass's reading and settling them.
            let _gate = self.reads.gate.read().await;
            let moved = self.move_session(&from, &to, policy).await;
            if matches!(moved, Ok(Some(_))) {
                self.reads.moved(&from, &to);
            }
            moved
        };
        // Indexed again under the owner it moved with: a bind of the old id
        // that landed between the owner's reading above and the move gave
        // it another; and a listing that looked for the new id before the
        // move found nothing and may have dropped the entry (it looks
        // again after dropping, see `owned`).
        if let Ok(Some(Some(moved_owner))) = &moved {
            if let Err(error) = self.index(moved_owner, to_id, policy).await {
                tracing::warn!(%error, "a regenerated session may be missing from its owner's index");
            }
        }
        let moved = moved.map(|moved| moved.is_some());
        // After a failure the move may or may not have happened: both
        // entries stay, for a lookup to prune the one that names nothing.
        if let (Some(owner), Ok(moved)) = (&owner, &moved) {
            let gone = if *moved { from_id } else { to_id };
            if let Err(error) = self.unindex(owner, &[Handle::of(gone)]).await {
                tracing::debug!(%error, "an owner's index entry is left for the next lookup to prune");
            }
        }
        moved
    }

    async fn bind_owner(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        self.bind_owner_impl(id, owner, cap, policy).await
    }

    async fn info(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        self.info_impl(id).await
    }

    async fn owner_sessions(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        self.owner_sessions_impl(owner).await
    }

    async fn destroy_owner(&self, owner: &str, keep: Option<&SessionId>) -> Result<u64> {
        self.destroy_owner_impl(owner, keep).await
    }

    async fn revoke(&self, owner: &str, handle: &Handle) -> Result<bool> {
        self.revoke_impl(owner, handle).await
    }

    async fn count_active(&self, within: Duration) -> Result<u64> {
        self.count_active_impl(within).await
    }

    async fn active_page(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        self.active_page_impl(within, cursor, limit).await
    }

    async fn destroy_all(&self) -> Result<u64> {
        self.destroy_all_impl().await
    }

    async fn flush(&self) -> Result<()> {
        RedisStore::flush(self).await
    }
}

/// The key a cluster regenerate leaves for a while when it has deleted the
/// old hash `from`: in its slot (the same hash tag), and never taken for a
/// session by a store-wide scan (which wants `PREFIX{ID}` exactly).
#[cfg(feature = "cluster")]
fn moved_marker(from: &str) -> String {
    format!("{from}:moved")
}

/// Injected faults for the cluster regenerate's tests: the reply of one step
/// lost after the step ran, for one session key.
#[cfg(all(test, feature = "cluster"))]
pub(crate) mod faults {
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Step {
        Import,
        Forget,
    }

    static LOST: Mutex<Vec<(String, Step)>> = Mutex::new(Vec::new());
    static DESTROYED: Mutex<Vec<(String, Step)>> = Mutex::new(Vec::new());

    /// Right after `step`, the session at `key` is destroyed (once), as by
    /// a logout racing the regenerate.
    pub(crate) fn destroy_after(key: &str, step: Step) {
        DESTROYED.lock().unwrap().push((key.to_owned(), step));
    }

    /// Whether a destroy was asked for `key` after `step` (and forgets it).
    pub(crate) fn take_destroy(key: &str, step: Step) -> bool {
        let mut destroyed = DESTROYED.lock().unwrap();
        match destroyed.iter().position(|(k, s)| k == key && *s == step) {
            Some(index) => {
                destroyed.remove(index);
                true
            }
            None => false,
        }
    }

    /// From now on, `step`'s reply for `key` is lost (once).
    pub(crate) fn inject(key: &str, step: Step) {
        LOST.lock().unwrap().push((key.to_owned(), step));
    }

    /// A timeout if a fault was injected for `key` at `step`.
    pub(crate) fn lose_reply(key: &str, step: Step, timeout: Duration) -> session_core::Result<()> {
        let mut lost = LOST.lock().unwrap();
        match lost.iter().position(|(k, s)| k == key && *s == step) {
            Some(index) => {
                lost.remove(index);
                Err(session_core::Error::Timeout(timeout))
            }
            None => Ok(()),
        }
    }
}

#[cfg(all(test, feature = "cluster"))]
mod tests {
    use std::time::Duration;

    use redis_test_server::RedisCluster;
    use session_core::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};

    use super::faults::{inject, Step};
    use super::RedisStore;

    const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

    async fn cluster_store() -> (RedisStore, RedisCluster) {
        let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
            .await
            .unwrap();
        let store = RedisStore::builder()
            .cluster(cluster.urls())
            .build()
            .await
            .unwrap();
        (store, cluster)
    }

    /// Two ids whose keys live in different slots, the first with a session.
    async fn session(store: &RedisStore) -> (SessionId, SessionId) {
        let from = SessionId::generate("s:");
        let changes = [("cart".to_string(), Some(b"3 books".to_vec()))];
        let outcome = store
            .set_many(&from, &changes, WriteMode::Create, &POLICY)
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied);
        (from, SessionId::generate("s:"))
    }

    /// The final delete ran but its reply was lost: the copy is kept, and
    /// the move reported done, never both copies dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_reply_of_the_final_delete_keeps_the_new_copy() {
        let (store, _cluster) = cluster_store().await;
        let (from, to) = session(&store).await;
        inject(&store.key(&from), Step::Forget);
        assert!(store.regenerate(&from, &to, &POLICY).await.unwrap());
        assert_eq!(
            store.get(&to, "cart", &POLICY).await.unwrap(),
            Some(b"3 books".to_vec())
        );
        assert_eq!(store.get(&from, "cart", &POLICY).await.unwrap(), None);
    }

    /// The copy was written but its reply was lost: the old session stays,
    /// writable at once (unsealed), and the copy is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_reply_of_the_copy_keeps_the_old_session() {
        let (store, _cluster) = cluster_store().await;
        let (from, to) = session(&store).await;
        inject(&store.key(&from), Step::Import);
        let error = store.regenerate(&from, &to, &POLICY).await.unwrap_err();
        assert!(error.is_unavailable(), "{error}");
        assert_eq!(
            store.get(&from, "cart", &POLICY).await.unwrap(),
            Some(b"3 books".to_vec())
        );
        assert_eq!(
            store
                .set(&from, "more", b"1", WriteMode::Existing, &POLICY)
                .await
                .unwrap(),
            WriteOutcome::Applied,
            "the old session takes writes again"
        );
        assert_eq!(store.get(&to, "cart", &POLICY).await.unwrap(), None);
    }

    /// The copy's reply was lost and the session was destroyed meanwhile (a
    /// logout): the copy goes too, and regenerate says there was no session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_destroyed_during_a_failed_regenerate_stays_destroyed() {
        let (store, _cluster) = cluster_store().await;
        let (from, to) = session(&store).await;
        inject(&store.key(&from), Step::Import);
        super::faults::destroy_after(&store.key(&from), Step::Import);
        assert!(!store.regenerate(&from, &to, &POLICY).await.unwrap());
        assert_eq!(store.get(&to, "cart", &POLICY).await.unwrap(), None);
        assert_eq!(store.get(&from, "cart", &POLICY).await.unwrap(), None);
    }
}
