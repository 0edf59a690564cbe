//! Connecting to Redis: the connection manager's settings (no wait longer
//! than the provider timeout), the `connect*` constructors, and starting
//! the provider's tasks (the wake-up subscriber and the touch flusher).

use super::client_cache::ClientCache;
use super::read_cache::ReadCache;
use super::stored::unavailable;
use super::touches::{self, Touches};
use super::wakeups::subscribe;
use super::{script, RedisProvider, Scripts};
use crate::{CometError, Retention};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// The connection timeout and response timeout when none is given: the
/// default of [`Settings::provider_timeout`](crate::Settings).
pub const DEFAULT_TIMEOUT: Duration = crate::manager::settings::DEFAULT_PROVIDER_TIMEOUT;

/// The connection manager's settings for a provider timeout of `timeout`:
/// no connect attempt, response or reconnect back-off longer than it.
pub fn connection_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(timeout.min(Duration::from_millis(500)))
}

impl RedisProvider {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) and starts the
    /// wake-up subscriber. Must be called inside a tokio runtime.
    pub async fn connect(url: &str, retention: Retention) -> Result<Self, CometError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let redis = client
            .get_connection_manager_with_config(connection_config(DEFAULT_TIMEOUT))
            .await
            .map_err(unavailable)?;
        Ok(Self::start(client, redis, retention))
    }

    /// As [`connect`](Self::connect), but a Redis that cannot be reached
    /// yet is waited for (retrying with back-off up to 5 s, a warning each
    /// time), so nodes may start before Redis does. Only a URL that is not
    /// a Redis URL fails.
    pub async fn connect_waiting(url: &str, retention: Retention) -> Result<Self, CometError> {
        Self::connect_waiting_bounded(url, retention, DEFAULT_TIMEOUT).await
    }

    /// As [`connect_waiting`](Self::connect_waiting), with no connect
    /// attempt or response waited for longer than `timeout` (the
    /// provider timeout: see [`connection_config`]).
    pub async fn connect_waiting_bounded(
        url: &str,
        retention: Retention,
        timeout: Duration,
    ) -> Result<Self, CometError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let mut backoff = Duration::from_millis(200);
        loop {
            match client
                .get_connection_manager_with_config(connection_config(timeout))
                .await
            {
                Ok(redis) => return Ok(Self::start(client, redis, retention)),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot reach Redis; waiting for it");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn start(client: redis::Client, redis: ConnectionManager, retention: Retention) -> Self {
        let channels = Arc::new(ReadCache::new(redis.clone(), retention));
        let client_cache = Arc::new(ClientCache::default());
        let subscriber = tokio::spawn(subscribe(client, channels.clone(), client_cache.clone()));
        let scripts = Arc::new(Scripts {
            insert: script(include_str!("insert.lua")),
            touch: script(include_str!("touch.lua")),
            idle: script(include_str!("idle.lua")),
            remove: script(include_str!("remove.lua")),
            append: script(include_str!("append.lua")),
            read: script(include_str!("read.lua")),
        });
        let touches = Arc::new(Touches::default());
        let toucher = tokio::spawn(touches::flush_touches(
            redis.clone(),
            scripts.clone(),
            touches.clone(),
            client_cache.clone(),
        ));
        Self {
            redis,
            retention,
            scripts,
            channels,
            client_cache,
            touches,
            tasks: vec![subscriber, toucher],
        }
    }
}
