//! One Redis, or a Redis Cluster: the store talks to either through one connection type.
//! Every script and pipeline keeps to one hash slot (see `keys`), so nothing else differs.
//!
//! A single Redis is reached through a self-reconnecting `ConnectionManager`; a cluster
//! through the `redis` crate's cluster client, which follows `MOVED` and reconnects to the
//! nodes it learns from the seed nodes.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a command may wait for its reply on the shared connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the store's connections go: one Redis, or the seed nodes of a cluster.
#[derive(Clone)]
pub(crate) enum Backend {
    /// Boxed: a client is ten times the size of the cluster's seed list.
    Single(Box<redis::Client>),
    /// The seed nodes; each connection's client is built from them with its own timeouts.
    Cluster(Vec<redis::ConnectionInfo>),
}

impl Backend {
    /// A backend for `urls`: the first is one Redis, unless `cluster`; a cluster takes
    /// one or more seed nodes.
    pub(crate) fn open(urls: &[String], cluster: bool) -> RedisResult<Self> {
        if cluster {
            let seeds = urls
                .iter()
                .map(|u| redis::IntoConnectionInfo::into_connection_info(u.as_str()))
                .collect::<RedisResult<Vec<_>>>()?;
            // Built once here so that a bad seed is an error now, not at the first command.
            cluster_client(&seeds, RESPONSE_TIMEOUT)?;
            return Ok(Self::Cluster(seeds));
        }
        let url = urls.first().map_or("", String::as_str);
        Ok(Self::Single(Box::new(redis::Client::open(url)?)))
    }

    /// The connection every clone of the store shares (commands are multiplexed on it).
    pub(crate) async fn shared(&self) -> RedisResult<Connection> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                let conn = ConnectionManager::new_with_config((**client).clone(), config).await?;
                Ok(Connection::Single(SingleConnection::Managed(conn)))
            }
            Self::Cluster(seeds) => {
                let client = cluster_client(seeds, RESPONSE_TIMEOUT)?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A connection of its own for blocking reads, whose replies may take `block` (plus
    /// the usual margin) to come.
    pub(crate) async fn blocking(&self, block: Duration) -> RedisResult<Connection> {
        let response = block + RESPONSE_TIMEOUT;
        match self {
            Self::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Connection::Single(SingleConnection::Plain(conn)))
            }
            Self::Cluster(seeds) => {
                let client = cluster_client(seeds, response)?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Whether different hash tags may live on different nodes: then one command may name
    /// the keys of one tag only.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

fn cluster_client(
    seeds: &[redis::ConnectionInfo],
    response_timeout: Duration,
) -> RedisResult<ClusterClient> {
    ClusterClientBuilder::new(seeds.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        .retries(2)
        .build()
}

/// A connection to one Redis.
#[derive(Clone)]
pub(crate) enum SingleConnection {
    /// Reconnects by itself: the store's shared connection.
    Managed(ConnectionManager),
    /// The feed's own, remade by the feed when it fails.
    Plain(redis::aio::MultiplexedConnection),
}

/// A connection to one Redis or to a cluster.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(SingleConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(SingleConnection::Managed(c)) => c.req_packed_command(cmd),
            Self::Single(SingleConnection::Plain(c)) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(SingleConnection::Managed(c)) => {
                c.req_packed_commands(pipeline, offset, count)
            }
            Self::Single(SingleConnection::Plain(c)) => {
                c.req_packed_commands(pipeline, offset, count)
            }
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(SingleConnection::Managed(c)) => c.get_db(),
            Self::Single(SingleConnection::Plain(c)) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
