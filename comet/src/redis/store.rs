//! Where the provider sends its commands: one Redis (through the
//! connection manager) or a Redis Cluster (through the cluster client,
//! which routes each command to the primary of its key's slot, follows
//! `MOVED`/`ASK` and refreshes its slot map after a failover). One type for
//! both, so the provider, its scripts and its caches keep one code path;
//! the single-Redis path costs one `match` more per command.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

#[derive(Clone)]
pub(super) enum Store {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Store {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Store::Cluster(_))
    }

    /// Runs `pipeline` on one connection: in a Cluster, the one to the
    /// primary of `key`'s slot, whatever its commands are (the cluster
    /// client would send a keyless command such as `WAIT` to every
    /// primary instead, where it waits for nothing this connection wrote).
    pub(super) async fn pipeline_at<T: FromRedisValue>(
        &mut self,
        pipeline: &Pipeline,
        key: &str,
    ) -> RedisResult<T> {
        match self {
            Store::Single(redis) => pipeline.query_async(redis).await,
            Store::Cluster(redis) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let replies = redis
                    .route_pipeline(
                        pipeline.clone(),
                        0,
                        pipeline.len(),
                        SingleNodeRoutingInfo::SpecificNode(route),
                    )
                    .await?
                    .into_iter()
                    .map(Value::extract_error)
                    .collect::<RedisResult<Vec<Value>>>()?;
                T::from_redis_value(Value::Array(replies)).map_err(Into::into)
            }
        }
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
