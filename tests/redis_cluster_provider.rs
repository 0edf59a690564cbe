//! The provider suite (comet's, feature `testing`) against the Redis
//! provider on a Redis Cluster (three primaries, three replicas) these
//! tests start themselves, and what a Cluster adds: channels spread over
//! the shards, wake-ups by sharded pub/sub.

mod common;

use comet::{Provider, RedisProvider, Retention};
use std::sync::Arc;

async fn cluster(retention: Retention) -> Arc<dyn Provider> {
    let url = common::redis_cluster::shared_url();
    Arc::new(
        RedisProvider::connect(url, retention)
            .await
            .expect("connects to the test cluster"),
    )
}

mod suite {
    comet::provider_suite!(super::cluster);
}
