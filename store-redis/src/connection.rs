//! One shared, multiplexed connection that reconnects by itself: the redis
//! crate's `ConnectionManager` on a standalone server, or its async cluster
//! client on a Redis Cluster. Both are cheap to clone; every operation clones
//! the handle, so concurrent requests share one socket per node.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The connection a [`RedisStore`](crate::RedisStore) talks through.
#[derive(Clone)]
pub(crate) enum Connection {
    Standalone(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

/// Where one SCAN runs: the standalone server, or one master of a cluster.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Standalone,
    #[cfg(feature = "cluster")]
    Master {
        host: String,
        port: u16,
    },
}

impl Connection {
    /// Whether per-session operations may touch two keys in one script
    /// (never on a cluster, where two ids live in different slots).
    pub(crate) fn is_cluster(&self) -> bool {
        !matches!(self, Connection::Standalone(_))
    }

    /// The nodes a store-wide SCAN must visit: every master of a cluster.
    pub(crate) async fn scan_nodes(&mut self) -> redis::RedisResult<Vec<Node>> {
        match self {
            Connection::Standalone(_) => Ok(vec![Node::Standalone]),
            #[cfg(feature = "cluster")]
            Connection::Cluster(connection) => cluster_masters(connection).await,
        }
    }

    /// Runs `cmd` on `node`.
    pub(crate) async fn query_on<T: redis::FromRedisValue>(
        &mut self,
        node: &Node,
        cmd: Cmd,
    ) -> redis::RedisResult<T> {
        match (self, node) {
            (Connection::Standalone(connection), _) => cmd.query_async(connection).await,
            #[cfg(feature = "cluster")]
            (Connection::Cluster(connection), Node::Master { host, port }) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = connection.route_command(cmd, routing).await?;
                Ok(redis::from_redis_value(value)?)
            }
            #[cfg(feature = "cluster")]
            (Connection::Cluster(connection), Node::Standalone) => {
                cmd.query_async(connection).await
            }
        }
    }
}

/// The masters of a cluster, from `CLUSTER SLOTS` asked of any node.
#[cfg(feature = "cluster")]
async fn cluster_masters(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> redis::RedisResult<Vec<Node>> {
    // Each entry: [first slot, last slot, [host, port, node id, ...], replicas...].
    let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in slots {
        let Some(master) = range.into_iter().nth(2) else {
            continue;
        };
        let (host, port): (String, u16) = match redis::from_redis_value::<Vec<Value>>(master) {
            Ok(fields) if fields.len() >= 2 => {
                let mut fields = fields.into_iter();
                let host = fields.next().map(redis::from_redis_value).transpose()?;
                let port = fields.next().map(redis::from_redis_value).transpose()?;
                match (host, port) {
                    (Some(host), Some(port)) => (host, port),
                    _ => continue,
                }
            }
            _ => continue,
        };
        if !masters.contains(&(host.clone(), port)) {
            masters.push((host, port));
        }
    }
    Ok(masters
        .into_iter()
        .map(|(host, port)| Node::Master { host, port })
        .collect())
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Standalone(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Standalone(connection) => {
                connection.req_packed_commands(cmd, offset, count)
            }
            #[cfg(feature = "cluster")]
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Standalone(connection) => connection.get_db(),
            #[cfg(feature = "cluster")]
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}
