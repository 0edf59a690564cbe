//! The channels opened at run time, in Redis: one set, `comet:channels`,
//! of their names. It is one key (one Cluster slot) for every channel, read
//! when a node meets a channel it has not served yet and written when one
//! opens or closes: rare next to polls and sends, which touch only their
//! channel's own keys.

use super::stored::{key, unavailable, wake_channel};
use super::RedisProvider;
use crate::channels::at_channel_limit;
use crate::CometError;

/// The set of open channel names.
const OPEN: &str = "comet:channels";

/// Adds the name unless it is there (0) or the set is full (-1); 1: added.
const OPEN_SCRIPT: &str = r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
";

impl RedisProvider {
    pub(super) async fn open_in_redis(
        &self,
        channel: &str,
        max_channels: usize,
    ) -> Result<bool, CometError> {
        let opened: i64 = redis::Script::new(OPEN_SCRIPT)
            .key(OPEN)
            .arg(channel)
            .arg(max_channels)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        match opened {
            -1 => Err(at_channel_limit(max_channels)),
            n => Ok(n == 1),
        }
    }

    pub(super) async fn is_open_in_redis(&self, channel: &str) -> Result<bool, CometError> {
        redis::cmd("SISMEMBER")
            .arg(OPEN)
            .arg(channel)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)
    }

    pub(super) async fn open_in_redis_names(&self) -> Result<Vec<String>, CometError> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(OPEN)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        names.sort();
        Ok(names)
    }

    /// Removes the name first (no node finds the channel from then on),
    /// then the channel's keys, then tells every node to forget its cached
    /// clients and wakes its polls. The name and the keys live in different
    /// slots of a Cluster, hence two steps: a crash between them leaves
    /// keys no open channel names, which a later open of the name reuses
    /// as they are (their clients and messages come back).
    pub(super) async fn close_in_redis(&self, channel: &str) -> Result<bool, CometError> {
        let mut redis = self.redis.clone();
        let removed: i64 = redis::cmd("SREM")
            .arg(OPEN)
            .arg(channel)
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        if removed == 0 {
            return Ok(false);
        }
        let keys: Vec<String> = ["log", "trimmed", "clients", "digests", "names", "deadlines"]
            .iter()
            .map(|what| key(channel, what))
            .collect();
        let () = redis::pipe()
            .cmd("DEL")
            .arg(&keys)
            .ignore()
            // Not a token digest: every node forgets the channel's clients.
            .cmd(if redis.is_cluster() {
                "SPUBLISH"
            } else {
                "PUBLISH"
            })
            .arg(wake_channel(channel, redis.is_cluster()))
            .arg("gone:*")
            .ignore()
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        self.client_cache.forget_channel(channel);
        self.channels.notify(channel);
        Ok(true)
    }
}
