//! Owned sessions on Redis: the owner indexes, the activity indexes, and the
//! store-wide queries built on them.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `PREFIX{ID}` | hash | the session, with `\xffowner`, `\xffuntil`, `\xffreads`, `\xffwrites`, `\xffpass` | the session's |
//! | `PREFIXowner:OWNER` | hash | handle → id, for each session bound to the owner | at least its longest-lived session's hard deadline |
//! | `PREFIXactive` (`PREFIXactive:{TAG}` on a cluster) | sorted set | session keys by last activity (µs) | at least its longest-lived member's |
//! | `PREFIXdeadlines` (`…:{TAG}`) | sorted set | session keys by deadline (ms) | the same |
//!
//! On a cluster the two activity indexes are kept per slot: `TAG` is a short
//! text that hashes to the session's own slot, so every session script
//! updates them in the same atomic round trip as the session. Counting then
//! asks each of the 16,384 slots' indexes (in concurrent batches).
//!
//! The owner index lives in its own slot, so on a cluster it can't share a
//! transaction with the sessions. It is therefore written at bind time only
//! (before the session, so that an owned session is never missing from
//! it), and pruned lazily: a listing, a bind with a cap or a log-out drops
//! the entries of sessions that have ended. An entry of an ended session
//! never shows (each lookup checks the session), and lives at most until the
//! owner's next listing or log-out, or the index key's TTL.

use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use session_core::{beyond_cap, check_owner};
use session_core::{ActivePage, ExpiryPolicy, Handle, Result, SessionId, SessionInfo};

use crate::RedisStore;

/// A store's cap steps (a bind's listing of its owner's sessions and the
/// ends of those beyond the cap), one at a time for each owner, so that two
/// binds of one owner racing through one `RedisStore` (or its clones)
/// cannot each end the other's session (see [`beyond_cap`]). Striped by
/// the owner's hash: two owners rarely share a stripe, and then only wait.
/// Binds through two stores (two processes) whose steps overlap can still
/// each end the other's.
pub(crate) struct CapTurns {
    stripes: Box<[tokio::sync::Mutex<()>]>,
    hasher: foldhash::fast::RandomState,
}

impl CapTurns {
    const STRIPES: usize = 64;

    pub(crate) fn new() -> CapTurns {
        CapTurns {
            stripes: (0..Self::STRIPES).map(|_| Default::default()).collect(),
            hasher: Default::default(),
        }
    }

    /// Waits for `owner`'s turn.
    async fn take(&self, owner: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        let stripe = self.hasher.hash_one(owner) as usize % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

/// How many buckets' indexes one step of a listing asks at once.
const BATCH: usize = 2048;

/// The most sessions one page of `active_page` lists.
const MAX_PAGE: usize = 10_000;

/// How many sessions of one owner are looked up at once: enough to fill the
/// connection's pipeline, few enough that each answers within the response
/// timeout.
const CONCURRENT: usize = 64;

/// Extra time an owner's index lives beyond its sessions' longest lifetime,
/// for clocks that differ between app servers and Redis.
const INDEX_MARGIN: Duration = Duration::from_secs(60);

/// The cluster's slot of a key, by the cluster's rule: the CRC16 of the text
/// between the first `{` and the next `}` if that is not empty, else of the
/// whole key.
#[cfg(feature = "cluster")]
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS as u16
}

#[cfg(feature = "cluster")]
const SLOTS: usize = 16_384;

/// For each slot, a short text that hashes to it: the hash tag of that slot's
/// activity indexes. Found once, by trying base-36 numbers in order.
#[cfg(feature = "cluster")]
static TAGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut tags = vec![String::new(); SLOTS];
    let mut missing = SLOTS;
    let mut n: u64 = 0;
    while missing > 0 {
        let tag = base36(n);
        let slot = usize::from(crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes())) % SLOTS;
        if tags[slot].is_empty() {
            tags[slot] = tag;
            missing -= 1;
        }
        n += 1;
    }
    tags
});

#[cfg(feature = "cluster")]
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Milliseconds as the scripts take them.
fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A [`SessionInfo`] from a script's row, `[owner, created, reads, writes,
/// last, ttl]`, for session `id` as of `now` (server ms).
fn info_from_row(id: &str, row: &[String], now: u64) -> Option<SessionInfo> {
    let [owner, created, reads, writes, last, ttl] = row else {
        return None;
    };
    let last: u64 = last.parse().ok()?;
    Some(SessionInfo {
        handle: Handle::of_stored(id),
        owner: (!owner.is_empty()).then(|| owner.clone()),
        created_ms: created.parse().ok()?,
        last_active_ms: last,
        reads: reads.parse().ok()?,
        writes: writes.parse().ok()?,
        idle: Duration::from_millis(now.saturating_sub(last)),
        ttl: Duration::from_millis(ttl.parse().ok()?),
    })
}

/// One bucket's page: its live sessions with their scores, the last score
/// fetched, and whether the bucket has nothing after it.
type BucketPage = (Vec<(String, SessionInfo)>, Option<String>, bool);

/// What the destroy script did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Destroyed {
    /// It ended the session, which had this owner (`""`: none).
    Yes(String),
    /// There was no session.
    Absent,
    /// The session belongs to another owner: left alone.
    NotOwners,
}

impl RedisStore {
    /// How many activity buckets there are: one per slot on a cluster.
    fn buckets(&self) -> usize {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            return SLOTS;
        }
        1
    }

    /// The bucket of a session's hash: its slot on a cluster.
    fn bucket_of(&self, _hash: &str) -> usize {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            return usize::from(slot(_hash.as_bytes()));
        }
        0
    }

    /// The activity and deadline indexes of a bucket.
    fn bucket_keys(&self, _bucket: usize) -> (String, String) {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            let tag = &TAGS[_bucket];
            return (
                format!("{}active:{{{tag}}}", self.index_prefix),
                format!("{}deadlines:{{{tag}}}", self.index_prefix),
            );
        }
        (
            format!("{}active", self.index_prefix),
            format!("{}deadlines", self.index_prefix),
        )
    }

    /// The activity and deadline indexes of the session at `hash`, as the
    /// keys a script takes after the session's: none when the store keeps
    /// no activity index.
    pub(crate) fn index_keys(&self, hash: &str) -> Vec<String> {
        if self.activity_index {
            let (activity, deadlines) = self.bucket_keys(self.bucket_of(hash));
            vec![activity, deadlines]
        } else {
            Vec::new()
        }
    }

    /// The key of an owner's index.
    pub fn owner_key(&self, owner: &str) -> String {
        format!("{}owner:{owner}", self.index_prefix)
    }

    /// The id inside a session's key `PREFIX{ID}` (`PREFIXID` in the
    /// connect-redis layout): the one parser of the key layout (the id
    /// itself is then session-core's [`SessionId::from_stored`]).
    pub(crate) fn id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(&*self.prefix)?;
        match self.layout {
            crate::Layout::Native => rest.strip_prefix('{')?.strip_suffix('}'),
            crate::Layout::ConnectRedis => Some(rest),
        }
    }

    /// Runs the destroy script on `hash`, only if `owner`'s when given.
    pub(crate) async fn destroy_hash(&self, hash: &str, owner: Option<&str>) -> Result<Destroyed> {
        let indexes = self.index_keys(hash);
        let mut invocation = self.scripts.destroy.key(hash);
        invocation.key(&indexes).arg(owner.unwrap_or(""));
        let reply: Vec<String> = self
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        if matches!(reply.first().map(String::as_str), Some("1")) {
            self.reads.forget(hash);
        }
        Ok(match reply.as_slice() {
            [done, owner] if done == "1" => Destroyed::Yes(owner.clone()),
            [done] if done == "-1" => Destroyed::NotOwners,
            _ => Destroyed::Absent,
        })
    }

    /// Destroys a session, and takes it out of its owner's index.
    pub(crate) async fn destroy(&self, id: &SessionId) -> Result<()> {
        if let Destroyed::Yes(owner) = self.destroy_hash(&self.key(id), None).await? {
            if !owner.is_empty() {
                self.unindex(&owner, &[Handle::of(id)]).await?;
            }
        }
        Ok(())
    }

    /// Adds `id` to `owner`'s index, which then lives long enough for it.
    pub(crate) async fn index(
        &self,
        owner: &str,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<()> {
        let keep = policy.absolute.unwrap_or_default();
        self.index_for(owner, id, keep).await
    }

    /// Adds `id` to `owner`'s index, which then lives at least `keep`, or
    /// as long as a bound session may, if that is longer.
    async fn index_for(&self, owner: &str, id: &SessionId, keep: Duration) -> Result<()> {
        let keep = keep.max(self.owned_lifetime).saturating_add(INDEX_MARGIN);
        let key = self.owner_key(owner);
        let mut invocation = self.scripts.owner_add.key(&key);
        invocation
            .arg(Handle::of(id).as_str())
            .arg(id.as_str())
            .arg(ms(keep).min(crate::store::MAX_MILLIS));
        self.run(|mut c| async move { invocation.invoke_async::<i64>(&mut c).await })
            .await?;
        Ok(())
    }

    /// Drops `handles` from `owner`'s index.
    pub(crate) async fn unindex(&self, owner: &str, handles: &[Handle]) -> Result<()> {
        if handles.is_empty() {
            return Ok(());
        }
        let key = self.owner_key(owner);
        let fields: Vec<&str> = handles.iter().map(Handle::as_str).collect();
        self.run(|mut c| async move {
            redis::cmd("HDEL")
                .arg(&key)
                .arg(&fields)
                .query_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    /// Drops `id` from `owner`'s index, unless the session is `owner`'s
    /// again by then. The index and the session are separate keys (in
    /// separate slots, on a cluster), so this is two steps, as a bind is:
    /// a bind back to `owner` racing this removal has indexed the session
    /// before its script and again after it, and whichever of those this
    /// removal undid, the session names `owner` when this looks.
    async fn unindex_unless_owned(
        &self,
        owner: &str,
        id: &SessionId,
        policy: &ExpiryPolicy,
    ) -> Result<()> {
        self.unindex(owner, &[Handle::of(id)]).await?;
        if self.owner_of(&self.key(id)).await?.as_deref() == Some(owner) {
            self.index(owner, id, policy).await?;
        }
        Ok(())
    }

    /// `owner`'s index: handle → id.
    async fn indexed(&self, owner: &str) -> Result<Vec<(String, String)>> {
        let key = self.owner_key(owner);
        self.run(|mut c| async move { redis::cmd("HGETALL").arg(&key).query_async(&mut c).await })
            .await
    }

    /// The metadata of the session at `hash`, or `None` if it is gone.
    async fn info_of(&self, hash: &str) -> Result<Option<SessionInfo>> {
        let Some(id) = self.id_of(hash) else {
            return Ok(None);
        };
        let invocation = self.scripts.info.key(hash);
        // Not while a pass writes counts out: between its script and its
        // settling, a read would be in the hash's counter and still pending
        // here (or, the other way round, in neither).
        let _gate = self.reads.gate.read().await;
        let row: Vec<String> = self
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let Some((now, row)) = row.split_first() else {
            return Ok(None);
        };
        let now = now.parse().unwrap_or(0);
        Ok(info_from_row(id, row, now).map(|mut info| {
            // Reads served here with a plain command, not yet flushed.
            info.reads += self.reads.pending(hash);
            info
        }))
    }

    /// [`info_of`](Self::info_of) by id, `None` for an id that is not one.
    async fn info_of_id(&self, id: Option<&SessionId>) -> Result<Option<SessionInfo>> {
        match id {
            Some(id) => self.info_of(&self.key(id)).await,
            None => Ok(None),
        }
    }

    /// [`destroy_hash`](Self::destroy_hash) by id, if `owner`'s.
    async fn destroy_id(&self, id: &SessionId, owner: &str) -> Result<Destroyed> {
        self.destroy_hash(&self.key(id), Some(owner)).await
    }

    /// The metadata of a live session.
    pub(crate) async fn info_impl(&self, id: &SessionId) -> Result<Option<SessionInfo>> {
        let hash = self.key(id);
        // What it reports of the deadline and last activity includes the
        // refresh a read left for later.
        self.write_out_refreshes(Some(&hash)).await;
        self.info_of(&hash).await
    }

    /// `owner`'s live sessions, with their ids; drops index entries of
    /// sessions that have ended.
    async fn owned(&self, owner: &str) -> Result<Vec<(SessionId, SessionInfo)>> {
        // Listed with the refreshes reads left for later.
        self.write_out_refreshes(None).await;
        let entries = self.indexed(owner).await?;
        let ids: Vec<(String, Option<SessionId>)> = entries
            .into_iter()
            .map(|(handle, id)| (handle, SessionId::from_stored(&id)))
            .collect();
        let lookups: Vec<_> = ids
            .iter()
            .map(|(_, id)| self.info_of_id(id.as_ref()))
            .collect();
        let infos: Vec<Option<SessionInfo>> = stream::iter(lookups)
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        let mut live = Vec::new();
        let mut ended = Vec::new();
        let mut ended_ids = Vec::new();
        for ((handle, id), info) in ids.into_iter().zip(infos) {
            match (id, info) {
                (Some(id), Some(info)) => {
                    // Bound to someone else since: theirs now, and their
                    // bind dropped this entry, or will.
                    if info.owner.as_deref() == Some(owner) {
                        live.push((id, info));
                    }
                }
                (id, _) => {
                    ended.extend(Handle::parse(&handle));
                    ended_ids.extend(id);
                }
            }
        }
        self.unindex(owner, &ended).await?;
        // Dropped, then looked at again: a regenerate indexes its new id
        // before the session is there (it was not, above), and again after
        // the move; if this drop came in between, the session is here now.
        let again: Vec<_> = ended_ids
            .iter()
            .map(|id| self.info_of_id(Some(id)))
            .collect();
        let again: Vec<Option<SessionInfo>> = stream::iter(again)
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        for (id, info) in ended_ids.into_iter().zip(again) {
            if let Some(info) = info.filter(|info| info.owner.as_deref() == Some(owner)) {
                self.index_for(owner, &id, info.ttl).await?;
                live.push((id, info));
            }
        }
        Ok(live)
    }

    pub(crate) async fn bind_owner_impl(
        &self,
        id: &SessionId,
        owner: &str,
        cap: Option<usize>,
        policy: &ExpiryPolicy,
    ) -> Result<bool> {
        check_owner(owner)?;
        // The index first: an owned session must never be missing from it,
        // whatever fails between the two steps.
        self.index(owner, id, policy).await?;
        let reply: Vec<String> = self
            .script(
                &self.scripts.bind,
                &self.key(id),
                policy,
                (owner, ms(self.owned_lifetime).min(crate::store::MAX_MILLIS)),
            )
            .await?;
        // The index steps that follow the script only mend the index: the
        // bind itself is done (or refused), and its answer stands whatever
        // Redis says to them. (A cap that cannot be applied is an error.)
        let previous = match reply.as_slice() {
            [bound, previous] if bound == "1" => previous,
            _ => {
                let unindexed = self.unindex_unless_owned(owner, id, policy).await;
                mended(
                    unindexed,
                    "a refused bind's index entry is left for a listing to hide",
                );
                return Ok(false);
            }
        };
        // Again after the script: a bind racing this one, that took the
        // session from `owner` before this script ran, may have dropped
        // the entry since (it takes its previous owner out of the index).
        let indexed = self.index(owner, id, policy).await;
        mended(
            indexed,
            "a racing bind may have left a bound session out of its owner's index",
        );
        if !previous.is_empty() && previous != owner {
            let unindexed = self.unindex_unless_owned(previous, id, policy).await;
            mended(
                unindexed,
                "a previous owner's index entry is left for a listing to hide",
            );
        }
        if let Some(cap) = cap {
            let _turn = self.cap_turns.take(owner).await;
            let sessions = self.owned(owner).await?;
            let last: Vec<(&str, u64)> = sessions
                .iter()
                .map(|(id, info)| (id.as_str(), info.last_active_ms))
                .collect();
            let evicted: Vec<SessionId> = beyond_cap(&last, cap, id.as_str())
                .into_iter()
                .filter_map(SessionId::from_stored)
                .collect();
            self.destroy_owned(owner, &evicted).await?;
        }
        Ok(true)
    }

    /// Destroys those of `ids` that are `owner`'s, concurrently; drops their
    /// index entries, and those of sessions already gone. Returns how many
    /// it destroyed.
    async fn destroy_owned(&self, owner: &str, ids: &[SessionId]) -> Result<u64> {
        let destroys: Vec<_> = ids.iter().map(|id| self.destroy_id(id, owner)).collect();
        let results: Vec<Destroyed> = stream::iter(destroys)
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        let mut destroyed = 0;
        let mut drop = Vec::new();
        let mut absent = Vec::new();
        for (id, result) in ids.iter().zip(results) {
            match result {
                Destroyed::Yes(_) => {
                    destroyed += 1;
                    drop.push(Handle::of(id));
                }
                Destroyed::Absent => {
                    drop.push(Handle::of(id));
                    absent.push(id);
                }
                Destroyed::NotOwners => {}
            }
        }
        self.unindex(owner, &drop).await?;
        // Dropped, then tried again: a regenerate indexes its new id before
        // the session is there, and again after the move; if this drop came
        // in between, the session is here now, and ends.
        let again: Vec<_> = absent.iter().map(|id| self.destroy_id(id, owner)).collect();
        let again: Vec<Destroyed> = stream::iter(again)
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        destroyed += again
            .iter()
            .filter(|result| matches!(result, Destroyed::Yes(_)))
            .count() as u64;
        Ok(destroyed)
    }

    pub(crate) async fn owner_sessions_impl(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        let mut sessions: Vec<SessionInfo> = self
            .owned(owner)
            .await?
            .into_iter()
            .map(|(_, info)| info)
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_active_ms));
        Ok(sessions)
    }

    pub(crate) async fn destroy_owner_impl(
        &self,
        owner: &str,
        keep: Option<&SessionId>,
    ) -> Result<u64> {
        let ids: Vec<SessionId> = self
            .indexed(owner)
            .await?
            .into_iter()
            .filter_map(|(_, id)| SessionId::from_stored(&id))
            .filter(|id| Some(id) != keep)
            .collect();
        self.destroy_owned(owner, &ids).await
    }

    pub(crate) async fn revoke_impl(&self, owner: &str, handle: &Handle) -> Result<bool> {
        let key = self.owner_key(owner);
        let field = handle.as_str().to_owned();
        let id: Option<String> = self
            .run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg(&field)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(id) = id.as_deref().and_then(SessionId::from_stored) else {
            return Ok(false);
        };
        // The index is ours to trust only as far as the id hashes to the
        // handle asked for.
        if Handle::of(&id) != *handle {
            return Ok(false);
        }
        Ok(self.destroy_owned(owner, &[id]).await? == 1)
    }

    /// Runs a bucket script (KEYS: a bucket's activity and deadline
    /// indexes; ARGV: a dummy policy, then `args`) on each bucket of
    /// `buckets`, answers in order. On a cluster, as one pipeline that the
    /// client splits by master, after loading the script on every master:
    /// 16,384 scripts then cost about as much as a few round trips.
    async fn eval_buckets<T>(
        &self,
        script: &redis::Script,
        _source: &str,
        buckets: std::ops::Range<usize>,
        args: &[String],
    ) -> Result<Vec<T>>
    where
        T: redis::FromRedisValue + Send,
    {
        #[cfg(feature = "cluster")]
        if self.connection.is_cluster() {
            let owners = self
                .run(|mut c| async move { c.slot_owners().await })
                .await?;
            let mut answers: Vec<Option<redis::Value>> = vec![None; buckets.len()];
            for (node, served) in &owners {
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(_source);
                self.run(|mut c| async move { c.query_on::<String>(node, load).await })
                    .await?;
                let mine: Vec<usize> = buckets
                    .clone()
                    .filter(|&b| served.iter().any(|range| range.contains(&(b as u16))))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let mut pipe = redis::pipe();
                for &bucket in &mine {
                    let (activity, deadlines) = self.bucket_keys(bucket);
                    pipe.cmd("EVALSHA")
                        .arg(script.get_hash())
                        .arg(2)
                        .arg(activity)
                        .arg(deadlines)
                        .arg(1)
                        .arg(0)
                        .arg(args);
                }
                let values = self
                    .run(|mut c| async move { c.pipeline_on(node, pipe).await })
                    .await?;
                for (bucket, value) in mine.into_iter().zip(values) {
                    answers[bucket - buckets.start] = Some(value);
                }
            }
            return answers
                .into_iter()
                .map(|value| {
                    let value = value.ok_or_else(|| {
                        session_core::Error::Backend("a slot has no master".into())
                    })?;
                    redis::from_redis_value(value)
                        .map_err(|error| session_core::Error::Backend(error.into()))
                })
                .collect();
        }
        let mut answers = Vec::new();
        for bucket in buckets {
            let (activity, deadlines) = self.bucket_keys(bucket);
            let mut invocation = script.key(&activity);
            invocation.key(&deadlines).arg(1).arg(0).arg(args);
            answers.push(
                self.run(|mut c| async move { invocation.invoke_async::<T>(&mut c).await })
                    .await?,
            );
        }
        Ok(answers)
    }

    /// The metadata of a batch of sessions, 64 lookups at a time, in order;
    /// only those active within `within`.
    async fn active_of(&self, ids: &[SessionId], within: Duration) -> Result<Vec<SessionInfo>> {
        let lookups: Vec<_> = ids.iter().map(|id| self.info_of_id(Some(id))).collect();
        let infos: Vec<Option<SessionInfo>> = stream::iter(lookups)
            .buffered(CONCURRENT)
            .try_collect()
            .await?;
        Ok(infos
            .into_iter()
            .flatten()
            .filter(|info| info.idle <= within)
            .collect())
    }

    /// Without an activity index: every session, by `SCAN`.
    async fn count_active_by_scan(&self, within: Duration) -> Result<u64> {
        // Counted with the refreshes reads left for later.
        self.write_out_refreshes(None).await;
        let mut ids = self.ids();
        let mut count = 0;
        while let Some(batch) = ids.next_batch().await? {
            count += self.active_of(&batch, within).await?.len() as u64;
        }
        Ok(count)
    }

    /// Without an activity index: a page of a `SCAN` walk. The cursor is
    /// `scan:NODE:CURSOR:HANDLE`: a `SCAN` position, and the last handle
    /// listed from that batch (each batch is listed in handle order, so
    /// sessions that go idle or come meanwhile shift nothing).
    async fn active_page_by_scan(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        let parsed = cursor.and_then(|cursor| {
            let mut parts = cursor.strip_prefix("scan:")?.splitn(3, ':');
            let node = parts.next()?.parse().ok()?;
            let scan = parts.next()?.parse().ok()?;
            let after = Handle::parse(parts.next()?);
            Some(((node, scan), after))
        });
        let (position, mut after) = parsed.unwrap_or(((0, 0), None));
        // Listed with the refreshes reads left for later.
        self.write_out_refreshes(None).await;
        let mut ids = self.ids_from(position);
        let mut sessions = Vec::new();
        loop {
            let (node, scan) = ids.position();
            let Some(batch) = ids.next_batch().await? else {
                return Ok(ActivePage {
                    sessions,
                    next: None,
                });
            };
            let mut active = self.active_of(&batch, within).await?;
            active.sort_by(|a, b| a.handle.cmp(&b.handle));
            // The last handle listed from this batch: where a next page
            // resumes it ("" for its start).
            let mut resume = String::new();
            for info in active {
                if after.as_ref().is_some_and(|after| info.handle <= *after) {
                    continue;
                }
                if sessions.len() == limit {
                    return Ok(ActivePage {
                        sessions,
                        next: Some(format!("scan:{node}:{scan}:{resume}")),
                    });
                }
                resume = info.handle.to_string();
                sessions.push(info);
            }
            after = None;
        }
    }

    pub(crate) async fn count_active_impl(&self, within: Duration) -> Result<u64> {
        if !self.activity_index {
            return self.count_active_by_scan(within).await;
        }
        let window = ms(within).min(crate::store::MAX_MILLIS).to_string();
        let counts: Vec<u64> = self
            .eval_buckets(
                &self.scripts.count_active,
                &self.scripts.count_active_source,
                0..self.buckets(),
                &[window],
            )
            .await?;
        Ok(counts.iter().sum())
    }

    /// Pages of the buckets `buckets` from `low` (a score, exclusive, for
    /// the first bucket only; `None` for the window's start): per bucket,
    /// the sessions with their scores, the last score it fetched, and
    /// whether the bucket has nothing after it.
    async fn bucket_pages(
        &self,
        buckets: std::ops::Range<usize>,
        window: u64,
        low: Option<&str>,
        want: usize,
    ) -> Result<Vec<BucketPage>> {
        let first = buckets.start;
        let args = [window.to_string(), String::new(), want.max(1).to_string()];
        let mut replies: Vec<Vec<String>> = Vec::new();
        if let Some(low) = low {
            // The first bucket resumes where the cursor says; the rest start
            // at the window.
            let args = [args[0].clone(), format!("({low}"), args[2].clone()];
            replies.extend(
                self.eval_buckets::<Vec<String>>(
                    &self.scripts.active_page,
                    &self.scripts.active_page_source,
                    first..first + 1,
                    &args,
                )
                .await?,
            );
        }
        let rest = first + replies.len()..buckets.end;
        replies.extend(
            self.eval_buckets::<Vec<String>>(
                &self.scripts.active_page,
                &self.scripts.active_page_source,
                rest,
                &args,
            )
            .await?,
        );
        Ok(replies.iter().map(|reply| self.parse_page(reply)).collect())
    }

    /// One bucket's page, from the script's reply.
    fn parse_page(&self, reply: &[String]) -> BucketPage {
        let [now, last, exhausted, rows @ ..] = reply else {
            return (Vec::new(), None, true);
        };
        let now = now.parse().unwrap_or(0);
        let sessions = rows
            .chunks(8)
            .filter_map(|row| {
                let (key, score) = (&row[0], row.get(1)?);
                let id = self.id_of(key)?;
                Some((score.clone(), info_from_row(id, row.get(2..)?, now)?))
            })
            .collect();
        let last = (!last.is_empty()).then(|| last.clone());
        (sessions, last, exhausted == "1")
    }

    pub(crate) async fn active_page_impl(
        &self,
        within: Duration,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ActivePage> {
        if !self.activity_index {
            return self
                .active_page_by_scan(within, cursor, limit.clamp(1, MAX_PAGE))
                .await;
        }
        // A page asks each bucket for up to `limit` rows: keep that sane.
        let limit = limit.clamp(1, MAX_PAGE);
        let window = ms(within).min(crate::store::MAX_MILLIS);
        // The cursor is `bucket:score`: where the last page stopped. It names
        // no session.
        let (mut bucket, mut low) = match cursor.and_then(|c| c.split_once(':')) {
            Some((bucket, score)) => (
                bucket.parse::<usize>().unwrap_or(usize::MAX),
                (!score.is_empty()).then(|| score.to_owned()),
            ),
            None => (0, None),
        };
        let mut sessions = Vec::new();
        while bucket < self.buckets() {
            // Ask a batch of buckets at once; use them in order.
            let last_bucket = (bucket + BATCH).min(self.buckets());
            let low_first = low.take();
            let pages = self
                .bucket_pages(bucket..last_bucket, window, low_first.as_deref(), limit)
                .await?;
            for (b, page) in (bucket..last_bucket).zip(pages) {
                let (rows, fetched_last, exhausted) = page;
                let room = limit - sessions.len();
                if rows.len() > room && !sessions.is_empty() {
                    // It does not fit: the next page starts with this bucket.
                    let low = if b == bucket { low_first.clone() } else { None };
                    return Ok(ActivePage {
                        sessions,
                        next: Some(format!("{b}:{}", low.unwrap_or_default())),
                    });
                }
                if rows.len() > room {
                    // Only on an empty page: more sessions of one instant than
                    // a page holds, or more than `room` from this bucket. Take
                    // whole groups of equal scores up to the room, at least one.
                    let mut cut = rows.len();
                    while cut > room && cut > 0 {
                        let score = &rows[cut - 1].0;
                        let start = rows[..cut].iter().rposition(|(s, _)| s != score);
                        cut = start.map_or(0, |i| i + 1);
                    }
                    if cut == 0 {
                        cut = rows.iter().take_while(|(s, _)| *s == rows[0].0).count();
                    }
                    let resume = rows[cut - 1].0.clone();
                    sessions.extend(rows.into_iter().take(cut).map(|(_, info)| info));
                    return Ok(ActivePage {
                        sessions,
                        next: Some(format!("{b}:{resume}")),
                    });
                }
                sessions.extend(rows.into_iter().map(|(_, info)| info));
                if !exhausted {
                    return Ok(ActivePage {
                        sessions,
                        next: Some(format!("{b}:{}", fetched_last.unwrap_or_default())),
                    });
                }
                if sessions.len() == limit {
                    let next = b + 1;
                    return Ok(ActivePage {
                        sessions,
                        next: (next < self.buckets()).then(|| format!("{next}:")),
                    });
                }
            }
            bucket = last_bucket;
        }
        Ok(ActivePage {
            sessions,
            next: None,
        })
    }

    pub(crate) async fn destroy_all_impl(&self) -> Result<u64> {
        let cleared = self.clear().await;
        self.reads.clear();
        cleared
    }
}

#[cfg(all(test, feature = "cluster"))]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_rule() {
        // Known values from the Redis cluster specification's examples.
        // CRC16-XMODEM of "123456789" is 0x31C3, the spec's check value.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag: the whole key is hashed.
        let whole = crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % 16_384;
        assert_eq!(slot(b"foo{}{bar}"), whole);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn every_slot_has_a_tag_that_hashes_to_it() {
        for (slot_number, tag) in TAGS.iter().enumerate() {
            assert_eq!(usize::from(slot(tag.as_bytes())), slot_number);
            assert!(tag.len() <= 4, "{tag}");
        }
    }
}

/// Logs a step that mends an owner's index after the session's own step
/// is done, and failed: the operation's answer stands. A stale entry is
/// harmless (listings check the session's owner); a missing one needed a
/// racing operation and this failure together.
fn mended(result: Result<()>, what: &str) {
    if let Err(error) = result {
        tracing::warn!(%error, "{what}");
    }
}
