//! Appending, with or without waiting for replicas.
//!
//! Redis replicates asynchronously: a primary answers an append before any
//! replica has it, so a primary that dies right then (its replica promoted
//! in its place, in a Cluster or under Sentinel) takes an acknowledged
//! message with it. With [`RedisProvider::wait_for_replicas`], the append
//! is followed by `WAIT <replicas> <timeout>` in the same pipeline, on the
//! same connection (`WAIT` counts that connection's writes; the cluster
//! client routes the pipeline by the script's key), and the send counts as
//! sent only if that many replicas acknowledged it in time. Otherwise the
//! send fails ([`CometError::Unavailable`], `503`) although the message
//! may still be delivered: retried with its idempotency key, it is not
//! appended twice.

use super::stored::unavailable;
use super::RedisProvider;
use crate::CometError;
use redis::{Cmd, ErrorKind, ServerErrorKind};
use std::time::Duration;

/// How many replicas an append waits for, and for how long.
#[derive(Clone, Copy, Debug)]
pub(super) struct Wait {
    replicas: usize,
    timeout: Duration,
}

impl RedisProvider {
    /// Makes every append wait until `replicas` replicas of its primary
    /// have it (at most `timeout`, which should be well below the provider
    /// timeout); an append they do not all acknowledge in time fails with
    /// [`CometError::Unavailable`]. `0`: no waiting (the default).
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some(Wait { replicas, timeout });
        self
    }

    /// Runs `append` (an `EVALSHA` of the append script, its first key
    /// `key`), then `WAIT` if asked, on the same connection; loads the script where Redis does not have it yet (a new or
    /// restarted server, a promoted replica).
    pub(super) async fn appended(&self, append: &Cmd, key: &str) -> Result<String, CometError> {
        let mut redis = self.redis.clone();
        let mut loaded = false;
        loop {
            let result = match self.wait {
                None => append.query_async::<String>(&mut redis).await,
                Some(wait) => redis
                    .pipeline_at::<(String, usize)>(
                        redis::pipe()
                            .add_command(append.clone())
                            .cmd("WAIT")
                            .arg(wait.replicas)
                            .arg(wait.timeout.as_millis() as u64),
                        key,
                    )
                    .await
                    .and_then(|(id, acknowledged)| {
                        if acknowledged >= wait.replicas {
                            Ok(id)
                        } else {
                            Err((
                                ErrorKind::Io,
                                "appended, but not replicated in time",
                                format!(
                                    "{acknowledged} of {} replicas acknowledged within {:?}",
                                    wait.replicas, wait.timeout
                                ),
                            )
                                .into())
                        }
                    }),
            };
            match result {
                Err(error)
                    if !loaded && error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
                {
                    self.scripts
                        .append
                        .prepare_invoke()
                        .load_async(&mut redis)
                        .await
                        .map_err(unavailable)?;
                    loaded = true;
                }
                result => return result.map_err(unavailable),
            }
        }
    }
}

/// An `EVALSHA` of `script` with `keys`, its arguments to follow.
pub(super) fn evalsha(script: &redis::Script, keys: &[String]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}
