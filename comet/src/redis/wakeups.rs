//! The wake-up task: one pattern subscription per node to every channel's
//! publications, turned into read-cache fetches and wake-ups (or, for a
//! removal notice, a forgotten client).

use super::client_cache::ClientCache;
use super::read_cache::ReadCache;
use crate::TokenDigest;
use std::sync::Arc;
use std::time::Duration;

/// Keeps one pattern subscription to every channel's wake-ups; each
/// publication makes the node's read cache fetch that channel once and
/// then wake its polls. After a lost connection every channel is refreshed
/// (publications may have been missed) and it reconnects with back-off.
pub(super) async fn subscribe(
    client: redis::Client,
    channels: Arc<ReadCache>,
    client_cache: Arc<ClientCache>,
) {
    use futures::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.psubscribe("comet:wake:*").await.is_ok() {
                    backoff = Duration::from_millis(100);
                    // Removal notices may have been missed while away.
                    client_cache.clear();
                    channels.notify_all();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let channel = message.get_channel_name().trim_start_matches("comet:wake:");
                        let payload: String = message.get_payload().unwrap_or_default();
                        announced(channel, &payload, &channels, &client_cache);
                    }
                }
                tracing::warn!("lost the Redis wake-up subscription; reconnecting");
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to Redis wake-ups"),
        }
        client_cache.clear();
        channels.notify_all();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What a publication on `channel`'s wake channel says: a new entry (the
/// read cache fetches it, then wakes the polls) or `gone:<token digest>`
/// (the client cache forgets that client; `gone:*`, the whole channel).
pub(super) fn announced(
    channel: &str,
    payload: &str,
    channels: &Arc<ReadCache>,
    client_cache: &ClientCache,
) {
    match payload.strip_prefix("gone:").map(TokenDigest::from_hex) {
        Some(Some(digest)) => client_cache.forget(channel, &digest),
        Some(None) => client_cache.forget_channel(channel),
        None => channels.notify(channel),
    }
}
