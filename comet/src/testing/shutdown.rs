//! Stopping and waking: a shutdown answers held polls and ends streams
//! with `Stopping`, and the "answering a wake-up" state always settles.

use super::support::{
    decode, eventually, join, next_item, node, random_channel, say, settings, single, texts,
};
use super::Factory;
use crate::{CometError, Cursor, PollOutcome, PrivateToken, PublicToken, Settings};
use serde_json::json;
use std::time::Duration;

/// A shutdown answers every held poll with `Stopping`, and refuses later
/// polls alike.
pub async fn shutdown_answers_every_poll_stopping(factory: Factory) {
    let provider = factory.default_provider().await;
    let slow = Settings {
        connection_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(30),
        ..settings()
    };
    let (comet, chat) = node(&provider, &random_channel(), slow);
    let (token, _, cursor) = join(&chat, "ann").await;
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    comet.shutdown();
    let answered = tokio::time::timeout(Duration::from_secs(1), waiting).await;
    assert!(
        matches!(answered, Ok(Ok(Err(CometError::Stopping)))),
        "a held poll is told the node is stopping (503), not timeout: {answered:?}"
    );
    let (token, _, cursor) = join(&chat, "bob").await;
    assert!(
        matches!(
            chat.poll(&token, Some(cursor)).await,
            Err(CometError::Stopping)
        ),
        "a poll that arrives after the shutdown began is refused alike"
    );
}

/// The node's "answering a wake-up" state (which holds back reading new
/// polls) must always settle: after a broadcast, a private message that
/// wakes polls with nothing for them, a poll dropped while waiting and a
/// poll that times out, nothing is left counted as waiting or woken.
pub async fn answering_a_wake_up_always_settles(factory: Factory) {
    let (comet, chat) = single(&factory).await;
    let mut clients = Vec::new();
    for i in 0..12 {
        clients.push(join(&chat, &format!("user{i}")).await);
    }
    let (_, cursor) = chat.recent(&clients[0].0, 0).await.unwrap();
    let spawn_polls = |clients: &[(PrivateToken, PublicToken, Cursor)], cursor: &Cursor| {
        clients
            .iter()
            .map(|(token, _, _)| {
                let (chat, token, cursor) = (chat.clone(), token.clone(), cursor.clone());
                tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
            })
            .collect::<Vec<_>>()
    };
    let polls = spawn_polls(&clients, &cursor);
    eventually("12 polls wait", || chat.waiting_polls() == 12).await;
    assert!(!comet.is_answering(), "nothing was sent yet");

    // A poll dropped while it waits (its client went away).
    polls[11].abort();
    eventually("the dropped poll stops waiting", || {
        chat.waiting_polls() == 11
    })
    .await;

    // A private message: two polls answer, the rest wake, find nothing
    // for them and wait again.
    chat.send_to(
        &[clients[0].1, clients[1].1],
        "Text",
        &json!({ "m": "psst" }),
    )
    .await
    .unwrap();
    let mut polls = polls.into_iter();
    for poll in polls.by_ref().take(2) {
        assert_eq!(texts(&decode(poll.await.unwrap().unwrap())), ["psst"]);
    }
    eventually("the others wait again", || chat.waiting_polls() == 9).await;
    eventually("the private message is answered", || !comet.is_answering()).await;

    // A broadcast answers everyone still waiting.
    say(&chat, "to all").await;
    for poll in polls.by_ref().take(9) {
        assert_eq!(texts(&decode(poll.await.unwrap().unwrap())), ["to all"]);
    }
    eventually("no poll waits", || chat.waiting_polls() == 0).await;
    tokio::time::timeout(Duration::from_secs(1), comet.answered())
        .await
        .expect("answered() resolves once every woken poll answered");

    // A poll that times out.
    let last = say(&chat, "last").await;
    let timeout = chat.poll(&clients[0].0, Some(last)).await.unwrap();
    assert!(matches!(timeout, PollOutcome::Timeout));
    assert_eq!(chat.waiting_polls(), 0);
    assert!(!comet.is_answering());
}

/// A node shutting down ends its streams, saying so.
pub async fn shutdown_ends_a_stream_with_stopping(factory: Factory) {
    let (comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let mut stream = chat.subscribe(token, Some(cursor));
    let reading = tokio::spawn(async move {
        let item = next_item(&mut stream).await;
        (item, stream)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    comet.shutdown();
    let (item, mut stream) = reading.await.unwrap();
    assert!(matches!(item, Some(Err(CometError::Stopping))), "{item:?}");
    assert!(next_item(&mut stream).await.is_none(), "the stream ended");
}
