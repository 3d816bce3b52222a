//! Store-wide access outside a request (connect-redis-session's `access`):
//! count, list and clear sessions, by `SCAN` over the key prefix in batches,
//! never `KEYS` or `FLUSHDB`, and on a cluster over every master.

use session_core::{Result, SessionId};

use crate::connection::{Connection, Node};
use crate::RedisStore;

/// A walk over the ids of every session in a [`RedisStore`], one `SCAN` batch
/// at a time. Made by [`RedisStore::ids`].
///
/// As with `SCAN` itself, a session that lives for the whole walk is seen at
/// least once; one created or removed meanwhile may or may not be, and one may
/// (rarely) be seen twice.
#[derive(Debug)]
pub struct SessionIds {
    store: RedisStore,
    pattern: String,
    /// `None` until the first batch asks for the nodes.
    nodes: Option<Vec<Node>>,
    node: usize,
    cursor: u64,
}

impl RedisStore {
    /// Walks the ids of all sessions under this store's prefix.
    ///
    /// ```no_run
    /// # async fn walk(store: store_redis::RedisStore) -> session_core::Result<()> {
    /// let mut ids = store.ids();
    /// while let Some(batch) = ids.next_batch().await? {
    ///     for id in batch {
    ///         println!("{id}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn ids(&self) -> SessionIds {
        SessionIds {
            store: self.clone(),
            pattern: format!("{}{{*}}", glob_escape(&self.prefix)),
            nodes: None,
            node: 0,
            cursor: 0,
        }
    }

    /// A walk resumed at `position` (from [`SessionIds::position`]).
    pub(crate) fn ids_from(&self, (node, cursor): (usize, u64)) -> SessionIds {
        SessionIds {
            node,
            cursor,
            ..self.ids()
        }
    }

    /// Counts the sessions under this store's prefix (connect-redis-session's
    /// `length`), one `SCAN` batch at a time.
    pub async fn len(&self) -> Result<u64> {
        let mut ids = self.ids();
        let mut count = 0;
        while let Some(batch) = ids.next_batch().await? {
            count += batch.len() as u64;
        }
        Ok(count)
    }

    /// Whether no session is stored under this store's prefix.
    pub async fn is_empty(&self) -> Result<bool> {
        let mut ids = self.ids();
        while let Some(batch) = ids.next_batch().await? {
            if !batch.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes every session under this store's prefix (connect-redis-session's
    /// `clear`), `UNLINK`ing each `SCAN` batch, then the owner and activity
    /// indexes (`PREFIXowner:*`, `PREFIXactive*`, `PREFIXdeadlines*`).
    /// Returns how many sessions were removed. Other keys outside the
    /// prefix, or under it but not shaped like a session, are left alone.
    pub async fn clear(&self) -> Result<u64> {
        let mut ids = self.ids();
        let mut removed = 0;
        while let Some(batch) = ids.next_batch().await? {
            if batch.is_empty() {
                continue;
            }
            let keys: Vec<String> = batch.iter().map(|id| self.key(id)).collect();
            let count: u64 =
                self.run(|mut c| async move {
                    redis::cmd("UNLINK").arg(&keys).query_async(&mut c).await
                })
                .await?;
            removed += count;
        }
        let prefix = glob_escape(&self.prefix);
        for pattern in ["active*", "deadlines*", "owner:*"] {
            self.unlink_matching(&format!("{prefix}{pattern}")).await?;
        }
        Ok(removed)
    }
}

impl SessionIds {
    /// Where the walk stands: the node and `SCAN` cursor of the next batch,
    /// to resume it later with [`RedisStore::ids_from`].
    pub(crate) fn position(&self) -> (usize, u64) {
        (self.node, self.cursor)
    }

    /// The next batch of ids (possibly empty), or `None` when the walk is over.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<SessionId>>> {
        let nodes = match &self.nodes {
            Some(nodes) => nodes.clone(),
            None => {
                let nodes = self
                    .store
                    .run(|mut c| async move { c.scan_nodes().await })
                    .await?;
                self.nodes = Some(nodes.clone());
                nodes
            }
        };
        let Some(node) = nodes.get(self.node) else {
            return Ok(None);
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(self.store.scan_count);
        let (cursor, keys): (u64, Vec<Vec<u8>>) = self
            .store
            .run(|mut c: Connection| async move { c.query_on(node, scan).await })
            .await?;
        if cursor == 0 {
            self.node += 1;
        }
        self.cursor = cursor;
        Ok(Some(
            keys.iter().filter_map(|key| self.parse_key(key)).collect(),
        ))
    }

    /// The session id inside `PREFIX{ID}`, if the key is one of ours.
    fn parse_key(&self, key: &[u8]) -> Option<SessionId> {
        let key = std::str::from_utf8(key).ok()?;
        let id = key
            .strip_prefix(&*self.store.prefix)?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        SessionId::from_stored(id)
    }
}

impl RedisStore {
    /// `UNLINK`s every key matching `pattern`, one `SCAN` batch at a time,
    /// on every master. Returns how many.
    pub(crate) async fn unlink_matching(&self, pattern: &str) -> Result<u64> {
        let nodes = self
            .run(|mut c| async move { c.scan_nodes().await })
            .await?;
        let mut removed = 0;
        for node in &nodes {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(self.scan_count);
                let (next, keys): (u64, Vec<Vec<u8>>) = self
                    .run(|mut c: Connection| async move { c.query_on(node, scan).await })
                    .await?;
                if !keys.is_empty() {
                    let count: u64 = self
                        .run(|mut c| async move {
                            redis::cmd("UNLINK").arg(&keys).query_async(&mut c).await
                        })
                        .await?;
                    removed += count;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}

/// Escapes the characters `SCAN MATCH` treats as a glob.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
