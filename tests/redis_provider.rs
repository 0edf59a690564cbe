//! The provider suite (comet's, feature `testing`) against the Redis
//! provider, on a redis-server these tests start themselves (loopback, free
//! port) and stop when they end.

mod common;

use comet::{Provider, RedisProvider, Retention};
use std::sync::Arc;

async fn redis(retention: Retention) -> Arc<dyn Provider> {
    let url = common::redis_server::url();
    Arc::new(
        RedisProvider::connect(url, retention)
            .await
            .expect("connects to the test redis-server"),
    )
}

comet::provider_suite!(redis);
