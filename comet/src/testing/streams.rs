//! Server-side streams (`Manager::subscribe`): each message once and in
//! order across resubscribing, private messages, a removed client, what
//! was sent between polls, and "from now on".

use super::support::{
    join, next_item, next_message, next_text, node, random_channel, say, settings, single, texts,
};
use super::Factory;
use crate::wire::PRESENCE;
use crate::{CometError, Settings};
use serde_json::json;
use std::time::Duration;
use tokio_stream::StreamExt;

/// Messages come out of a subscription one at a time, each once and in
/// order, and dropping it anywhere (in the middle of a poll's batch, at
/// its end) and subscribing again from the last id it yielded repeats
/// nothing and loses nothing, also what was sent while none was open.
pub async fn a_stream_yields_each_message_once_in_order_across_resubscribing(factory: Factory) {
    let provider = factory.default_provider().await;
    let small_batches = Settings {
        batch_limit: 4,
        ..settings()
    };
    let (_comet, chat) = node(&provider, &random_channel(), small_batches);
    let (token, _, mut cursor) = join(&chat, "ann").await;
    let mut sent = 0;
    let mut got = Vec::new();
    for round in 0..12 {
        for _ in 0..round % 5 + 1 {
            say(&chat, &sent.to_string()).await;
            sent += 1;
        }
        let mut stream = chat.subscribe(token.clone(), Some(cursor.clone()));
        // Three at a time out of batches of four: most drops fall in the
        // middle of a batch, some at its end.
        for _ in 0..3.min(sent - got.len()) {
            got.push(next_message(&mut stream).await);
        }
        let last = got.last().expect("something was read").id.clone();
        assert_eq!(stream.cursor(), Some(&last), "the cursor is the last id");
        cursor = if round % 2 == 0 {
            last
        } else {
            stream.cursor().cloned().unwrap()
        };
    }
    let mut stream = chat.subscribe(token, Some(cursor));
    while got.len() < sent {
        got.push(next_message(&mut stream).await);
    }
    assert_eq!(
        texts(&got),
        (0..sent).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), sent, "only the texts, each once: {got:?}");
    // Nothing more, through more than one poll timing out.
    let more = tokio::time::timeout(Duration::from_millis(700), stream.next()).await;
    assert!(more.is_err(), "nothing more was sent: {more:?}");
}

/// A private message reaches only its target's stream.
pub async fn a_private_message_reaches_only_its_targets_stream(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (ann, _, _) = join(&chat, "ann").await;
    let (bob, bob_public, _) = join(&chat, "bob").await;
    let (cid, _, cursor) = join(&chat, "cid").await;
    let mut streams: Vec<_> = [ann, bob, cid]
        .into_iter()
        .map(|token| chat.subscribe(token, Some(cursor.clone())))
        .collect();
    chat.send_to(&[bob_public], "Text", &json!({ "m": "psst" }))
        .await
        .unwrap();
    say(&chat, "public").await;
    let [ann, bob, cid] = &mut streams[..] else {
        unreachable!()
    };
    assert_eq!(next_text(bob).await, "psst");
    assert_eq!(next_text(bob).await, "public");
    // Messages come in order: whoever gets "public" first never got "psst".
    assert_eq!(next_text(ann).await, "public");
    assert_eq!(next_text(cid).await, "public");
}

/// A client removed while its stream waits: the stream may still yield
/// what was sent before (its own "left"), then ends with `UnknownClient`.
pub async fn a_removed_clients_stream_ends_with_unknown_client(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, public, cursor) = join(&chat, "ann").await;
    let mut stream = chat.subscribe(token, Some(cursor));
    let reading = tokio::spawn(async move {
        let mut before = Vec::new();
        loop {
            match next_item(&mut stream).await {
                Some(Ok(message)) => before.push(message),
                Some(Err(error)) => return (before, error, stream),
                None => panic!("ended without saying why, after {before:?}"),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reading.is_finished(), "the stream waits for messages");
    assert!(chat.remove_client(&public).await.unwrap());
    let (before, error, mut stream) = reading.await.unwrap();
    assert!(matches!(error, CometError::UnknownClient), "{error:?}");
    assert!(
        before.iter().all(|m| m.name == PRESENCE),
        "only presence was sent: {before:?}"
    );
    assert!(next_item(&mut stream).await.is_none(), "the stream ended");
}

/// A stream polls only while it is read; whatever was sent while it was
/// between two polls is what it yields next.
pub async fn a_stream_sees_what_was_sent_between_its_polls(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let mut stream = chat.subscribe(token, Some(cursor));
    say(&chat, "first").await;
    assert_eq!(next_text(&mut stream).await, "first");
    assert_eq!(chat.waiting_polls(), 0, "no poll is held between reads");
    say(&chat, "second").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    say(&chat, "third").await;
    assert_eq!(next_text(&mut stream).await, "second");
    assert_eq!(next_text(&mut stream).await, "third");
}

/// Without a cursor a stream starts from the channel's head when first
/// read, and keeps that start through polls that time out: what is sent
/// after it is yielded even if no poll was open at that moment.
pub async fn a_stream_from_now_on_keeps_its_start_across_timeouts(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, head) = join(&chat, "ann").await;
    let mut stream = chat.subscribe(token, None);
    assert_eq!(stream.cursor(), None, "the head is not known before a read");
    // Two connection timeouts and then some, with nothing sent.
    let nothing = tokio::time::timeout(Duration::from_millis(700), stream.next()).await;
    assert!(nothing.is_err(), "nothing was sent: {nothing:?}");
    assert_eq!(stream.cursor(), Some(&head), "it starts from the head");
    // The poll the stream was holding times out while it is not read.
    tokio::time::sleep(Duration::from_millis(400)).await;
    say(&chat, "after").await;
    assert_eq!(next_text(&mut stream).await, "after");
}
