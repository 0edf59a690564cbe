//! Idle clients: removed once (one leave, however many nodes reap), kept
//! alive by polls (a poll's start counts), each by its own idle timeout.

use super::support::{decode, join, node, presence, random_channel, settings};
use super::Factory;
use crate::{CometError, PollOutcome, PollingClient, Provider, PublicToken, Settings};
use std::sync::Arc;
use std::time::Duration;

/// An idle client is removed once, with one leave, though two nodes reap;
/// a polling client is not idle.
pub async fn idle_client_is_removed_once_with_one_leave(factory: Factory) {
    let provider = factory.default_provider().await;
    let channel = random_channel();
    // Two nodes on one provider, both reaping.
    let (_a, node_a) = node(&provider, &channel, settings());
    let (_b, node_b) = node(&provider, &channel, settings());
    let (watcher, _, cursor) = join(&node_a, "watcher").await;
    let (idle, _) = node_b.initialize_client("sleepy").await.unwrap();
    // The watcher keeps polling; the sleepy client never does.
    let mut cursor = cursor;
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let batch = decode(node_a.poll(&watcher, Some(cursor.clone())).await.unwrap());
        if let Some(last) = batch.last() {
            cursor = last.id.clone();
        }
        got.extend(batch);
    }
    let left: Vec<_> = presence(&got)
        .into_iter()
        .flat_map(|c| c.left)
        .filter(|m| m.name == "sleepy")
        .collect();
    assert_eq!(left.len(), 1, "one leave, got {got:?}");
    assert!(matches!(
        node_b.poll(&idle, None).await,
        Err(CometError::UnknownClient)
    ));
    assert!(
        node_a.client(&watcher).await.unwrap().is_some(),
        "a polling client is not idle"
    );
}

/// A client whose polls are held back to back is not idle.
pub async fn held_poll_keeps_a_client_alive(factory: Factory) {
    let provider = factory.default_provider().await;
    let long_polls = Settings {
        connection_timeout: Duration::from_millis(1500),
        idle_timeout: Duration::from_millis(1600),
        ..settings()
    };
    let (_comet, chat) = node(&provider, &random_channel(), long_polls);
    let (token, _, cursor) = join(&chat, "ann").await;
    // Two back-to-back polls of 1.5 s: the client never goes 1.6 s without
    // a poll end, and it has a poll in progress all the time.
    for _ in 0..2 {
        assert!(matches!(
            chat.poll(&token, Some(cursor.clone())).await,
            Ok(PollOutcome::Timeout)
        ));
    }
    assert!(chat.client(&token).await.unwrap().is_some());
}

/// The start of a poll counts as activity, not only its end.
pub async fn a_poll_start_counts_as_activity(factory: Factory) {
    let provider = factory.default_provider().await;
    let channel = random_channel();
    let quick = Settings {
        idle_timeout: Duration::from_millis(1200),
        // Nothing reaped during the test: it asks the provider directly.
        reap_interval: Duration::from_secs(60),
        ..settings()
    };
    let (_comet, chat) = node(&provider, &channel, quick);
    let (token, public, cursor) = join(&chat, "ann").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Only the start of a poll: it is dropped before it ends (the end of a
    // poll is a second, separate touch).
    drop(
        chat.open_poll(&token, Some(cursor))
            .await
            .expect("poll opened"),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    // 1.5 s after joining, 0.8 s after the poll started.
    assert!(
        idle_publics(&provider, &channel).await.is_empty(),
        "a client whose poll started 0.8 s ago is not idle"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        idle_publics(&provider, &channel).await,
        [public],
        "idle 1.9 s after its last poll started"
    );
}

/// The idle deadline a touch sets is the client's own (clients of one
/// channel may have different idle timeouts), and a touch that arrives
/// after the client was removed does not bring it back.
pub async fn a_touch_uses_the_clients_own_idle_timeout(factory: Factory) {
    let provider = factory.default_provider().await;
    let channel = random_channel();
    let unreaped = Settings {
        reap_interval: Duration::from_secs(60),
        ..settings()
    };
    let (_comet, chat) = node(&provider, &channel, unreaped);
    let (_, short) = chat
        .initialize_client_with(
            "short",
            Duration::from_millis(300),
            Duration::from_millis(600),
        )
        .await
        .unwrap();
    let (_, long) = chat
        .initialize_client_with("long", Duration::from_millis(300), Duration::from_secs(5))
        .await
        .unwrap();
    let (_, gone) = chat
        .initialize_client_with("gone", Duration::from_millis(300), Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(provider
        .remove_client(&channel, &gone.public)
        .await
        .unwrap()
        .is_some());
    for client in [&short, &long, &gone] {
        provider
            .touch(&channel, &PollingClient::from(client))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        idle_publics(&provider, &channel).await,
        [short.public],
        "only the 0.6 s client is idle"
    );
    assert!(
        provider
            .client_by_public(&channel, &gone.public)
            .await
            .unwrap()
            .is_none(),
        "a touch after the removal leaves it removed"
    );
    assert_eq!(provider.client_count(&channel).await.unwrap(), 2);
}

/// The public tokens of the channel's idle clients, as the provider says.
async fn idle_publics(provider: &Arc<dyn Provider>, channel: &str) -> Vec<PublicToken> {
    let idle = provider.idle_clients(channel).await.expect("idle clients");
    idle.into_iter().map(|client| client.public).collect()
}
