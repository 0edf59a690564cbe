//! The wake-up task in a Redis Cluster: each node subscribes (`SSUBSCRIBE`)
//! to the shard channel `comet:{c}:wake` of every channel `c` it follows,
//! so a publication (`SPUBLISH`, from the append and remove scripts) is
//! handled by the channel's own shard and reaches only the nodes that
//! follow the channel, instead of every node of every shard.
//!
//! The subscriptions live on one RESP3 cluster connection; the cluster
//! client routes each to the primary of the channel's slot and, after a
//! lost node or a slot-map refresh (a failover, a slot moved), subscribes
//! again where the slot now lives. Publications may be missed meanwhile,
//! so whenever this node hears of such a moment it refreshes:
//!
//! - a (re)subscription confirmed (`ssubscribe`): the channel is fetched
//!   again and the client cache emptied (removal notices may have been
//!   missed; the cache's generation keeps look-ups under way from
//!   refilling it);
//! - a connection lost (the client's `Disconnection` push): every channel,
//!   and the client cache;
//! - the server dropping a subscription (`sunsubscribe`, sent when a slot
//!   leaves a primary): the channel is subscribed again, wherever its slot
//!   now is.

use super::client_cache::ClientCache;
use super::read_cache::ReadCache;
use super::stored::{channel_of_shard_wake, key};
use super::wakeups::announced;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Follows the channels this node serves: subscribes to each channel the
/// read cache reports (`followed`) and turns the pushes of the
/// subscription connection into wake-ups, removal notices and refreshes.
pub(super) async fn follow_shards(
    redis: ClusterConnection,
    mut pushes: UnboundedReceiver<PushInfo>,
    mut followed: UnboundedReceiver<String>,
    channels: Arc<ReadCache>,
    client_cache: Arc<ClientCache>,
) {
    loop {
        tokio::select! {
            Some(channel) = followed.recv() => subscribe(redis.clone(), channel),
            push = pushes.recv() => {
                let Some(push) = push else { return };
                match push.kind {
                    PushKind::SMessage => {
                        if let (Some(channel), Some(payload)) =
                            (shard_channel(&push, 0), text(&push, 1))
                        {
                            announced(&channel, &payload, &channels, &client_cache);
                        }
                    }
                    PushKind::SSubscribe => {
                        if let Some(channel) = shard_channel(&push, 0) {
                            client_cache.clear();
                            channels.notify(&channel);
                        }
                    }
                    PushKind::SUnsubscribe => {
                        if let Some(channel) = shard_channel(&push, 0) {
                            tracing::info!(channel, "Redis dropped a wake-up subscription; subscribing again");
                            client_cache.clear();
                            channels.notify(&channel);
                            subscribe(redis.clone(), channel);
                        }
                    }
                    PushKind::Disconnection => {
                        tracing::warn!("lost a Redis Cluster wake-up connection; refreshing every channel");
                        client_cache.clear();
                        channels.notify_all();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Subscribes to `channel`'s shard channel, retrying with back-off until
/// the cluster takes it.
fn subscribe(mut redis: ClusterConnection, channel: String) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        while let Err(error) = redis.ssubscribe(key(&channel, "wake")).await {
            tracing::warn!(%error, channel, retry_in = ?backoff, "cannot subscribe to a channel's wake-ups");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

fn text(push: &PushInfo, at: usize) -> Option<String> {
    match push.data.get(at)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The comet channel a push's shard channel (at `at`) belongs to.
fn shard_channel(push: &PushInfo, at: usize) -> Option<String> {
    channel_of_shard_wake(&text(push, at)?).map(str::to_owned)
}
