//! [`RedisStore`]: the [`Store`] trait on one Redis hash per session.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisResult, Script};
use session_core::{
    Change, ExpiryPolicy, Limits, Result, SessionId, Store, WriteMode, WriteOutcome,
};

use crate::connection::Connection;
use crate::error::to_core;
use crate::{scripts, RedisStoreBuilder};

/// The hash field set while a cluster regenerate copies the session (see `lua/export.lua`).
#[cfg(feature = "cluster")]
const SEALED_FIELD: &[u8] = b"\xffsealed";

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
    pub(crate) prefix: Arc<str>,
    pub(crate) scan_count: usize,
    pub(crate) timeout: Duration,
    pub(crate) limits: Limits,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.connection.is_cluster())
            .field("prefix", &self.prefix)
            .field("scan_count", &self.scan_count)
            .field("response_timeout", &self.timeout)
            .field("limits", &self.limits)
            .finish()
    }
}

/// The longest duration sent to Redis, about 35,000 years: `PEXPIRE` refuses
/// what overflows the server's clock, and Lua numbers are exact only to 2^53.
const MAX_MILLIS: u64 = 1 << 50;

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

impl RedisStore {
    /// A builder with the default settings (`redis://127.0.0.1:6379`).
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// The Redis key of a session: `PREFIX{ID}`, the id in a hash tag so that
    /// everything of one session lands in one cluster slot.
    pub fn key(&self, id: &SessionId) -> String {
        let id = id.as_str();
        let mut key = String::with_capacity(self.prefix.len() + id.len() + 2);
        key.push_str(&self.prefix);
        key.push('{');
        key.push_str(id);
        key.push('}');
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

    /// Runs a session script on `key` with the policy as ARGV[1..2] and `args` after it.
    async fn script<T, A>(
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
        invocation.arg(idle).arg(absolute).arg(args);
        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    /// Deletes one key.
    async fn delete(&self, key: &str) -> Result<()> {
        self.run(|mut c| async move { redis::cmd("DEL").arg(key).exec_async(&mut c).await })
            .await
    }

    /// A read (`HGET`, `HMGET` or `HGETALL` of `fields`) that slides the idle
    /// expiry in the same atomic step. With only an idle timeout, Redis' own TTL
    /// enforces it and a `MULTI` transaction is enough (and cheaper than a
    /// script); with an absolute lifetime, `script` also checks the session's age.
    async fn read<T: redis::FromRedisValue + Send>(
        &self,
        hash: &str,
        command: &str,
        script: &Script,
        fields: &[&str],
        policy: &ExpiryPolicy,
    ) -> Result<T> {
        if policy.absolute.is_some() {
            return self.script(script, hash, policy, fields).await;
        }
        let idle = millis(policy).0;
        let mut read = redis::cmd(command);
        read.arg(hash).arg(fields);
        self.run(|mut c| async move {
            let (value,): (T,) = redis::pipe()
                .atomic()
                .add_command(read)
                .pexpire(hash, idle as i64)
                .ignore()
                .query_async(&mut c)
                .await?;
            Ok(value)
        })
        .await
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
        let moved = self.copy_across_slots(from, to, policy).await;
        if moved.is_err() {
            // Best effort: give the old session back its writes at once, and
            // drop the copy (both also end by themselves: the seal and the TTL).
            let _ = self
                .run(|mut c| async move {
                    redis::cmd("HDEL")
                        .arg(from)
                        .arg(SEALED_FIELD)
                        .exec_async(&mut c)
                        .await
                })
                .await;
            let _ = self.delete(to).await;
        }
        moved
    }

    #[cfg(feature = "cluster")]
    async fn copy_across_slots(&self, from: &str, to: &str, policy: &ExpiryPolicy) -> Result<bool> {
        const ATTEMPTS: usize = 8;
        let seal = millis(&ExpiryPolicy::idle(self.timeout.saturating_mul(3))).0;
        for _ in 0..ATTEMPTS {
            let exported: Vec<Vec<u8>> = self.script(&scripts::EXPORT, from, policy, seal).await?;
            if exported.is_empty() {
                self.delete(to).await?;
                return Ok(false);
            }
            let imported: bool = self.script(&scripts::IMPORT, to, policy, &exported).await?;
            if !imported {
                return Ok(false);
            }
            let forgot: bool = self
                .run(|mut c| {
                    let mut invocation = scripts::FORGET.key(from);
                    invocation.arg(&exported);
                    async move { invocation.invoke_async(&mut c).await }
                })
                .await?;
            if forgot {
                return Ok(true);
            }
        }
        Err(session_core::Error::Backend(
            format!("the session kept changing during {ATTEMPTS} attempts to regenerate it").into(),
        ))
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
        self.read(&self.key(id), "HGET", &scripts::GET, &[key], policy)
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
            .read(&self.key(id), "HMGET", &scripts::GET_MANY, keys, policy)
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
            .read(&self.key(id), "HGETALL", &scripts::GET_ALL, NO_ARGS, policy)
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
        let applied: bool = self
            .script(
                &scripts::SET_MANY,
                &hash,
                policy,
                (create, set.len(), set, deleted),
            )
            .await?;
        Ok(if applied {
            WriteOutcome::Applied
        } else {
            WriteOutcome::NoSession
        })
    }

    async fn del_many(&self, id: &SessionId, keys: &[&str], policy: &ExpiryPolicy) -> Result<bool> {
        self.limits.check_keys(keys)?;
        if keys.is_empty() {
            return self.extend(id, policy).await;
        }
        // Always a script: a cluster regenerate may have sealed the session.
        self.script(&scripts::DEL_MANY, &self.key(id), policy, keys)
            .await
    }

    async fn del_all(&self, id: &SessionId) -> Result<()> {
        self.delete(&self.key(id)).await
    }

    async fn extend(&self, id: &SessionId, policy: &ExpiryPolicy) -> Result<bool> {
        let hash = self.key(id);
        match policy.absolute {
            // One PEXPIRE: it never creates a key and answers whether it exists.
            None => {
                let idle = millis(policy).0;
                self.run(|mut c| async move {
                    redis::cmd("PEXPIRE")
                        .arg(&hash)
                        .arg(idle)
                        .query_async(&mut c)
                        .await
                })
                .await
            }
            Some(_) => self.script(&scripts::EXTEND, &hash, policy, NO_ARGS).await,
        }
    }

    async fn regenerate(
        &self,
        from: &SessionId,
        to: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        let (from, to) = (self.key(from), self.key(to));
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            return self.regenerate_across_slots(&from, &to, policy).await;
        }
        let (idle, absolute) = millis(policy);
        self.run(|mut c| {
            let mut invocation = scripts::REGENERATE.key(&from);
            invocation.key(&to).arg(idle).arg(absolute);
            async move { invocation.invoke_async(&mut c).await }
        })
        .await
    }
}
