//! The walks behind the store-wide queries when they cannot use an index:
//! every session of the store, by
//! `SCAN` over the key prefix in batches, never `KEYS` or `FLUSHDB`, and on
//! a cluster over every master. They stay inside the crate: the store-wide
//! queries of the [`Store`](session_core::Store) trait never hand out an id.

use session_core::{Result, SessionId};

use crate::connection::{Connection, Node};
use crate::RedisStore;

/// A walk over the ids of every session in a [`RedisStore`], one `SCAN` batch
/// at a time. Made by `RedisStore::ids`.
///
/// As with `SCAN` itself, a session that lives for the whole walk is seen at
/// least once; one created or removed meanwhile may or may not be, and one may
/// (rarely) be seen twice.
#[derive(Debug)]
pub(crate) struct SessionIds {
    store: RedisStore,
    pattern: String,
    /// `None` until the first batch asks for the nodes.
    nodes: Option<Vec<Node>>,
    node: usize,
    cursor: u64,
}

impl RedisStore {
    /// Walks the ids of all sessions under this store's prefix.
    pub(crate) fn ids(&self) -> SessionIds {
        SessionIds {
            store: self.clone(),
            pattern: match self.layout {
                crate::Layout::Native => format!("{}{{*}}", glob_escape(&self.prefix)),
                crate::Layout::ConnectRedis => format!("{}*", glob_escape(&self.prefix)),
            },
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

    /// [`Store::destroy_all`](session_core::Store::destroy_all): removes
    /// every session under this store's prefix, `UNLINK`ing each `SCAN` batch, then the owner and activity
    /// indexes (`PREFIXowner:*`, `PREFIXactive*`, `PREFIXdeadlines*`).
    /// Returns how many sessions were removed. Other keys outside the
    /// prefix, or under it but not shaped like a session, are left alone.
    pub(crate) async fn clear(&self) -> Result<u64> {
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
        let prefix = glob_escape(&self.index_prefix);
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
    pub(crate) async fn next_batch(&mut self) -> Result<Option<Vec<SessionId>>> {
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
        SessionId::from_stored(self.store.id_of(key)?)
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use redis::Commands;
    use redis_test_server::RedisServer;
    use session_core::{ExpiryPolicy, SessionId, Store, WriteMode};

    use crate::RedisStore;

    const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));

    /// The walk behind `destroy_all` and the index-less queries: every
    /// session once, in `SCAN` batches, and nothing that is not a session
    /// of this store.
    #[tokio::test]
    async fn the_id_walk_scans_in_batches() {
        let server = RedisServer::start();
        let store = RedisStore::builder()
            .url(server.url())
            .scan_count(7)
            .build()
            .await
            .unwrap();
        let mut con = server.connection();
        let mut created = HashSet::new();
        for i in 0..120 {
            // Ids with and without an id prefix.
            let id = SessionId::generate(if i % 2 == 0 { "session:" } else { "" });
            let _ = store
                .set(
                    &id,
                    "n",
                    i.to_string().as_bytes(),
                    WriteMode::Create,
                    &POLICY,
                )
                .await
                .unwrap();
            created.insert(id);
        }
        // Keys that are not sessions of this store.
        let () = con.set("unrelated", "x").unwrap();
        let () = con.set("session:{not-a-session}", "x").unwrap();
        let () = con.set("session:plain", "x").unwrap();

        let mut seen = HashSet::new();
        let mut ids = store.ids();
        let mut batches = 0;
        while let Some(batch) = ids.next_batch().await.unwrap() {
            seen.extend(batch);
            batches += 1;
        }
        assert_eq!(seen, created);
        assert!(batches > 5, "SCAN in batches, not one sweep: {batches}");
        for id in &seen {
            assert!(store.get(id, "n", &POLICY).await.unwrap().is_some());
        }
    }
}
