//! What the suite's tests share: the settings of their nodes, a node on a
//! fresh channel, sending, and polling or reading a stream until enough
//! arrived.

use super::Factory;
use crate::wire::{PresenceChange, PRESENCE};
use crate::{
    Comet, CometError, Cursor, Manager, Message, PollOutcome, PrivateToken, Provider, PublicToken,
    Settings, Subscription,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

/// Short timeouts, so idle and timeout behaviour shows within a test.
pub(super) fn settings() -> Settings {
    Settings {
        connection_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(800),
        reap_interval: Duration::from_millis(50),
        max_polls_per_client: 3,
        batch_limit: 500,
        presence_window: Duration::from_millis(100),
        ..Settings::default()
    }
}

pub(super) fn random_channel() -> String {
    format!("test-{}", PublicToken::generate())
}

/// A comet with one channel on `provider`, and that channel's manager.
pub(super) fn node(
    provider: &Arc<dyn Provider>,
    channel: &str,
    settings: Settings,
) -> (Comet, Arc<Manager>) {
    let comet = Comet::new(provider.clone(), settings, &[channel]);
    let manager = comet.channel(channel).expect("channel exists");
    (comet, manager)
}

pub(super) async fn single(factory: &Factory) -> (Comet, Arc<Manager>) {
    let provider = factory.default_provider().await;
    node(&provider, &random_channel(), settings())
}

pub(super) fn decode(poll: PollOutcome) -> Vec<Message> {
    match poll {
        PollOutcome::Messages(list) => list
            .iter()
            .map(|bytes| serde_json::from_slice(bytes).expect("stored JSON is a wire message"))
            .collect(),
        PollOutcome::Timeout => Vec::new(),
    }
}

/// Stored wire JSON, decoded.
pub(super) fn decode_bytes(messages: &[bytes::Bytes]) -> Vec<Message> {
    decode(PollOutcome::Messages(messages.to_vec()))
}

pub(super) fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.name == "Text")
        .map(|m| m.contents["m"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) async fn join(manager: &Manager, name: &str) -> (PrivateToken, PublicToken, Cursor) {
    let (token, record) = manager
        .initialize_client(name)
        .await
        .expect("client created");
    // Start after our own join message, like a page that renders history
    // (sent now, not at the end of its window).
    manager.flush_presence().await.expect("presence sent");
    let (_, cursor) = manager.recent(&token, 0).await.expect("history");
    (token, record.public, cursor)
}

pub(super) async fn say(manager: &Manager, text: &str) -> Cursor {
    manager
        .send_to_all("Text", &json!({ "m": text }))
        .await
        .expect("sent")
}

/// Polls from `cursor` until `count` text messages arrived (or a poll times out).
pub(super) async fn collect(
    manager: &Arc<Manager>,
    token: &PrivateToken,
    cursor: Cursor,
    count: usize,
) -> (Vec<Message>, Cursor) {
    poll_until(manager, token, cursor, |got| texts(got).len() >= count).await
}

/// Polls from `cursor` until `done` holds for what arrived (or a poll
/// times out).
pub(super) async fn poll_until(
    manager: &Arc<Manager>,
    token: &PrivateToken,
    mut cursor: Cursor,
    done: impl Fn(&[Message]) -> bool,
) -> (Vec<Message>, Cursor) {
    let mut got = Vec::new();
    while !done(&got) {
        let batch = decode(
            manager
                .poll(token, Some(cursor.clone()))
                .await
                .expect("poll"),
        );
        let Some(last) = batch.last() else {
            break;
        };
        cursor = last.id.clone();
        got.extend(batch);
    }
    (got, cursor)
}

/// The presence changes among `messages`.
pub(super) fn presence(messages: &[Message]) -> Vec<PresenceChange> {
    messages
        .iter()
        .filter(|m| m.name == PRESENCE)
        .map(|m| serde_json::from_value(m.contents.clone()).expect("a presence change"))
        .collect()
}

pub(super) fn names(members: &[crate::wire::Member]) -> Vec<&str> {
    members.iter().map(|m| m.name.as_str()).collect()
}

/// Polls from `cursor` until `count` presence changes arrived (or a poll
/// times out).
pub(super) async fn collect_presence(
    manager: &Arc<Manager>,
    token: &PrivateToken,
    cursor: Cursor,
    count: usize,
) -> (Vec<PresenceChange>, Cursor) {
    let (got, cursor) =
        poll_until(manager, token, cursor, |got| presence(got).len() >= count).await;
    (presence(&got), cursor)
}

/// Waits (at most 2 s) until `check` holds.
pub(super) async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a subscription yields next, or a failure after 5 s: a stream
/// that never yields must fail its test, not hang it.
pub(super) async fn next_item(stream: &mut Subscription) -> Option<Result<Message, CometError>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream yields within 5 s")
}

pub(super) async fn next_message(stream: &mut Subscription) -> Message {
    match next_item(stream).await {
        Some(Ok(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next text message's text (presence changes are skipped).
pub(super) async fn next_text(stream: &mut Subscription) -> String {
    loop {
        let message = next_message(stream).await;
        if message.name == "Text" {
            return texts(&[message]).remove(0);
        }
    }
}
