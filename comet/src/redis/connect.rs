//! Connecting to Redis: the connection manager's settings (no wait longer
//! than the provider timeout), the `connect*` constructors, and starting
//! the provider's tasks (the wake-up subscriber and the touch flusher).
//!
//! A URL that lists several comma-separated seeds
//! (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`) names a Redis Cluster;
//! so does a single URL whose server answers `INFO cluster` with
//! `cluster_enabled:1` (asked once, at connect). The cluster client gets
//! the same bounds as the connection manager: each connect attempt and each
//! request, retries and redirections included, within the provider timeout.

use super::client_cache::ClientCache;
use super::read_cache::ReadCache;
use super::shard_wakeups::follow_shards;
use super::store::Store;
use super::stored::unavailable;
use super::touches::{self, Touches};
use super::wakeups::subscribe;
use super::{script, RedisProvider, Scripts};
use crate::{CometError, Retention};
use redis::aio::ConnectionManagerConfig;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, RedisResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// The cluster client's settings for a provider timeout of `timeout`: each
/// connect attempt, and each request with its retries (after `MOVED`, a
/// lost node, a slot-map refresh), bounded by it.
fn cluster_config(seeds: &[String], timeout: Duration) -> ClusterClientBuilder {
    ClusterClient::builder(seeds.iter().map(String::as_str))
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .overall_response_timeout(Some(timeout))
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(timeout.min(Duration::from_millis(500)).as_millis() as u64)
}

/// What the URL names.
enum Seeds {
    Single(redis::Client),
    Cluster(Vec<String>),
}

impl Seeds {
    fn parse(url: &str) -> RedisResult<Self> {
        let seeds: Vec<String> = seeds(url).into_iter().map(str::to_owned).collect();
        if seeds.len() > 1 {
            // Checks every seed (and that they agree on credentials).
            ClusterClient::new(seeds.iter().map(String::as_str))?;
            Ok(Seeds::Cluster(seeds))
        } else {
            Ok(Seeds::Single(redis::Client::open(url)?))
        }
    }
}

/// The seeds a `COMET_REDIS_URL`-style text lists: split at each comma
/// that starts another URL (`,redis://`, `,rediss://`, `,unix://`), so a
/// comma inside a password does not split it. One URL: one seed.
pub fn seeds(url: &str) -> Vec<&str> {
    const SCHEMES: [&str; 3] = ["redis://", "rediss://", "unix://"];
    let mut seeds = Vec::new();
    let mut start = 0;
    for (at, _) in url.match_indices(',') {
        let rest = url[at + 1..].trim_start();
        if SCHEMES.iter().any(|scheme| rest.starts_with(scheme)) {
            seeds.push(url[start..at].trim());
            start = at + 1;
        }
    }
    seeds.push(url[start..].trim());
    seeds
}

/// How wake-ups reach this node.
enum Wakeups {
    /// One pattern subscription (`wakeups.rs`).
    Pattern(redis::Client),
    /// Shard channels, on a RESP3 cluster connection whose pushes arrive
    /// on the receiver (`shard_wakeups.rs`).
    Shards(ClusterConnection, mpsc::UnboundedReceiver<PushInfo>),
}

/// Connects the command store and the wake-up connection `url` asks for.
async fn open(seeds: &Seeds, url: &str, timeout: Duration) -> RedisResult<(Store, Wakeups)> {
    let cluster_seeds = match seeds {
        Seeds::Cluster(seeds) => seeds.clone(),
        Seeds::Single(client) => {
            let mut redis = client
                .get_connection_manager_with_config(connection_config(timeout))
                .await?;
            let info: RedisResult<String> = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut redis)
                .await;
            if !info.is_ok_and(|info| info.contains("cluster_enabled:1")) {
                return Ok((Store::Single(redis), Wakeups::Pattern(client.clone())));
            }
            vec![url.to_owned()]
        }
    };
    let commands = cluster_config(&cluster_seeds, timeout)
        .build()?
        .get_async_connection()
        .await?;
    let (pushes, received) = mpsc::unbounded_channel();
    let subscriber = cluster_config(&cluster_seeds, timeout)
        .use_protocol(ProtocolVersion::RESP3)
        .push_sender(pushes)
        .build()?
        .get_async_connection()
        .await?;
    Ok((
        Store::Cluster(commands),
        Wakeups::Shards(subscriber, received),
    ))
}

impl RedisProvider {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`, or a Redis
    /// Cluster: `redis://127.0.0.1:7000,redis://127.0.0.1:7001`) and starts
    /// the wake-up subscriber. Must be called inside a tokio runtime.
    pub async fn connect(url: &str, retention: Retention) -> Result<Self, CometError> {
        let seeds = Seeds::parse(url).map_err(unavailable)?;
        let (redis, wakeups) = open(&seeds, url, DEFAULT_TIMEOUT)
            .await
            .map_err(unavailable)?;
        Ok(Self::start(redis, wakeups, retention))
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
        let seeds = Seeds::parse(url).map_err(unavailable)?;
        let mut backoff = Duration::from_millis(200);
        loop {
            match open(&seeds, url, timeout).await {
                Ok((redis, wakeups)) => return Ok(Self::start(redis, wakeups, retention)),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot reach Redis; waiting for it");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn start(redis: Store, wakeups: Wakeups, retention: Retention) -> Self {
        let cluster = redis.is_cluster();
        let client_cache = Arc::new(ClientCache::default());
        let (channels, subscriber) = match wakeups {
            Wakeups::Pattern(client) => {
                let channels = Arc::new(ReadCache::new(redis.clone(), retention, None));
                let task = subscribe(client, channels.clone(), client_cache.clone());
                (channels, tokio::spawn(task))
            }
            Wakeups::Shards(subscriber, pushes) => {
                let (follow, followed) = mpsc::unbounded_channel();
                let channels = Arc::new(ReadCache::new(redis.clone(), retention, Some(follow)));
                let task = follow_shards(
                    subscriber,
                    pushes,
                    followed,
                    channels.clone(),
                    client_cache.clone(),
                );
                (channels, tokio::spawn(task))
            }
        };
        let scripts = Arc::new(Scripts {
            insert: script(include_str!("insert.lua"), cluster),
            touch: script(include_str!("touch.lua"), cluster),
            idle: script(include_str!("idle.lua"), cluster),
            remove: script(include_str!("remove.lua"), cluster),
            append: script(include_str!("append.lua"), cluster),
            read: script(include_str!("read.lua"), cluster),
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
            wait: None,
            scripts,
            channels,
            client_cache,
            touches,
            tasks: vec![subscriber, toucher],
        }
    }
}
