//! Where the provider sends its commands: one Redis (through the
//! connection manager) or a Redis Cluster (through the cluster client,
//! which routes each command to the primary of its key's slot, follows
//! `MOVED`/`ASK` and refreshes its slot map after a failover). One type for
//! both, so the provider, its scripts and its caches keep one code path;
//! the single-Redis path costs one `match` more per command.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub(super) enum Store {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Store {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Store::Cluster(_))
    }
}

impl ConnectionLike for Store {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Store::Single(redis) => redis.req_packed_command(cmd),
            Store::Cluster(redis) => redis.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Store::Single(redis) => redis.req_packed_commands(pipeline, offset, count),
            Store::Cluster(redis) => redis.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Store::Single(redis) => redis.get_db(),
            Store::Cluster(redis) => redis.get_db(),
        }
    }
}
