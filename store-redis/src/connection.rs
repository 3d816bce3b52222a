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

    /// The masters of a cluster, each with the slots it serves.
    #[cfg(feature = "cluster")]
    pub(crate) async fn slot_owners(
        &mut self,
    ) -> redis::RedisResult<Vec<(Node, Vec<std::ops::RangeInclusive<u16>>)>> {
        match self {
            Connection::Standalone(_) => Ok(vec![(Node::Standalone, vec![0..=16_383])]),
            Connection::Cluster(connection) => cluster_slot_owners(connection).await,
        }
    }

    /// Runs `pipeline` (not atomic) on `node`, whatever slots its keys are in:
    /// each command must be served by that node.
    #[cfg(feature = "cluster")]
    pub(crate) async fn pipeline_on(
        &mut self,
        node: &Node,
        pipeline: redis::Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        match (self, node) {
            (Connection::Cluster(connection), Node::Master { slot }) => {
                use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
                let count = pipeline.len();
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::new(*slot, SlotAddr::Master));
                connection.route_pipeline(pipeline, 0, count, route).await
            }
            (connection, _) => pipeline.query_async(connection).await,
        }
    }
}

/// Each master of a cluster, by one of its slots, with every slot range it
/// serves, from `CLUSTER SLOTS`.
#[cfg(feature = "cluster")]
async fn cluster_slot_owners(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> redis::RedisResult<Vec<(Node, Vec<std::ops::RangeInclusive<u16>>)>> {
    let ranges = cluster_ranges(connection).await?;
    let mut owners: Vec<(Vec<Value>, u16, Vec<std::ops::RangeInclusive<u16>>)> = Vec::new();
    for (first, last, identity) in ranges {
        match owners.iter_mut().find(|(known, _, _)| *known == identity) {
            Some((_, _, served)) => served.push(first..=last),
            None => owners.push((identity, first, vec![first..=last])),
        }
    }
    Ok(owners
        .into_iter()
        .map(|(_, slot, served)| (Node::Master { slot }, served))
        .collect())
}

/// The slot ranges of a cluster, each with its master's identity (its node
/// id, else its announced address), from `CLUSTER SLOTS` asked of any node.
#[cfg(feature = "cluster")]
async fn cluster_ranges(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> redis::RedisResult<Vec<(u16, u16, Vec<Value>)>> {
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
        .collect::<redis::RedisResult<Vec<_>>>()?;
    Ok(ranges
        .into_iter()
        .map(|(first, last, master)| {
            // A master is known by its node id, else by its announced address.
            let identity = if master.len() >= 3 {
                master[2..3].to_vec()
            } else {
                master
            };
            (first, last, identity)
        })
        .collect())
}

/// The masters of a cluster, one slot of each.
#[cfg(feature = "cluster")]
async fn cluster_masters(
    connection: &mut redis::cluster_async::ClusterConnection,
) -> redis::RedisResult<Vec<Node>> {
    Ok(cluster_slot_owners(connection)
        .await?
        .into_iter()
        .map(|(node, _)| node)
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
