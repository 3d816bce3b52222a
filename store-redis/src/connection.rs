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
    /// The master serving this slot (one slot of each master is kept).
    #[cfg(feature = "cluster")]
    Master {
        slot: u16,
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
            (Connection::Cluster(connection), Node::Master { slot }) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                // By slot rather than by address: the client maps slots to the
                // connections it holds, whatever address a node announces.
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(*slot, SlotAddr::Master),
                ));
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

/// The masters of a cluster, one slot of each, from `CLUSTER SLOTS` asked of any node.
#[cfg(feature = "cluster")]
async fn cluster_masters(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> redis::RedisResult<Vec<Node>> {
    // Each entry: [first slot, last slot, [host, port, node id, ...], replicas...].
    let ranges: Vec<(u16, u16, Vec<Value>)> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Vec<Vec<Value>>>(connection)
        .await?
        .into_iter()
        .map(|range| {
            let mut parts = range.into_iter();
            let first: u16 = redis::from_redis_value(parts.next().unwrap_or(Value::Nil))?;
            let last: u16 = redis::from_redis_value(parts.next().unwrap_or(Value::Nil))?;
            let master: Vec<Value> = redis::from_redis_value(parts.next().unwrap_or(Value::Nil))?;
            Ok((first, last, master))
        })
        .collect::<redis::RedisResult<_>>()?;
    let mut masters: Vec<(Vec<Value>, u16)> = Vec::new();
    for (first, _, master) in ranges {
        // A master is known by its node id, else by its announced address.
        let identity = if master.len() >= 3 {
            master[2..3].to_vec()
        } else {
            master
        };
        if !masters.iter().any(|(known, _)| known == &identity) {
            masters.push((identity, first));
        }
    }
    Ok(masters
        .into_iter()
        .map(|(_, slot)| Node::Master { slot })
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
