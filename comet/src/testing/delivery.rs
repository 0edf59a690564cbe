//! Delivery: ids in order, idempotency keys, resuming from a cursor, bounded
//! batches, held polls that wake or time out, broadcast and private sends,
//! several polls of one client.

use super::support::{collect, decode, join, node, random_channel, say, settings, single, texts};
use super::Factory;
use crate::{CometError, PollOutcome, PublicToken, Settings};
use serde_json::json;
use std::time::Duration;

/// Ids strictly increase: resuming from each id yields exactly the messages
/// after it.
pub async fn ids_strictly_increase(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    for i in 0..20 {
        say(&chat, &i.to_string()).await;
    }
    let (got, _) = collect(&chat, &token, cursor, 20).await;
    assert_eq!(
        texts(&got),
        (0..20).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    // Ids are opaque, but every later message must be reachable from every
    // earlier id, and only later ones: check that resuming from each id
    // yields exactly the messages after it.
    for (i, message) in got.iter().enumerate() {
        let (rest, _) = collect(&chat, &token, message.id.clone(), 19 - i).await;
        assert_eq!(texts(&rest), texts(&got[i + 1..]), "after message {i}");
    }
}

/// A send repeated with its idempotency key is appended once, and the retry
/// answers with the first send's id.
pub async fn a_send_repeated_with_its_idempotency_key_is_appended_once(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, ann, cursor) = join(&chat, "ann").await;
    let text = |m: &str| json!({ "m": m });
    let first = chat
        .send_to_all_idempotent(Some("ann:1"), "Text", &text("one"))
        .await
        .unwrap();
    let again = chat
        .send_to_all_idempotent(Some("ann:1"), "Text", &text("one"))
        .await
        .unwrap();
    assert_eq!(first, again, "the retry answers with the first send's id");
    chat.send_to_all_idempotent(Some("ann:2"), "Text", &text("two"))
        .await
        .unwrap();
    chat.send_to_idempotent(&[ann], Some("ann:3"), "Text", &text("three"))
        .await
        .unwrap();
    chat.send_to_idempotent(&[ann], Some("ann:3"), "Text", &text("three"))
        .await
        .unwrap();
    say(&chat, "four").await;
    let (got, _) = collect(&chat, &token, cursor, 5).await;
    assert_eq!(texts(&got), ["one", "two", "three", "four"]);
}

/// Polling again from the last id repeats nothing, and what was sent while
/// the client was away arrives once, in order.
pub async fn resumes_from_cursor_without_duplicates(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, start) = join(&chat, "ann").await;
    for i in 0..5 {
        say(&chat, &format!("a{i}")).await;
    }
    let (first, cursor) = collect(&chat, &token, start, 5).await;
    assert_eq!(texts(&first), ["a0", "a1", "a2", "a3", "a4"]);
    // Nothing is repeated when polling again from the last id...
    assert!(decode(chat.poll(&token, Some(cursor.clone())).await.unwrap()).is_empty());
    // ...and what was sent while the client was away arrives once, in order.
    for i in 5..8 {
        say(&chat, &format!("a{i}")).await;
    }
    let (second, _) = collect(&chat, &token, cursor, 3).await;
    assert_eq!(texts(&second), ["a5", "a6", "a7"]);
}

/// A poll answers at most `Settings::batch_limit` messages; the rest come
/// with the next polls.
pub async fn replies_are_bounded_batches(factory: Factory) {
    let provider = factory.default_provider().await;
    let (_comet, chat) = node(
        &provider,
        &random_channel(),
        Settings {
            batch_limit: 4,
            ..settings()
        },
    );
    let (token, _, cursor) = join(&chat, "ann").await;
    for i in 0..10 {
        say(&chat, &i.to_string()).await;
    }
    let first = decode(chat.poll(&token, Some(cursor.clone())).await.unwrap());
    assert_eq!(first.len(), 4);
    let (all, _) = collect(&chat, &token, cursor, 10).await;
    assert_eq!(
        texts(&all),
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
}

/// A poll with nothing new is held, and answered by the next send.
pub async fn poll_waits_then_receives(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "the poll should be held while there is nothing new"
    );
    say(&chat, "hello").await;
    let got = decode(waiting.await.unwrap().unwrap());
    assert_eq!(texts(&got), ["hello"]);
}

/// A poll with nothing new answers `Timeout` after the connection timeout,
/// not before.
pub async fn poll_times_out_when_nothing_arrives(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let started = std::time::Instant::now();
    let poll = chat.poll(&token, Some(cursor)).await.unwrap();
    assert!(matches!(poll, PollOutcome::Timeout), "{poll:?}");
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(290),
        "answered after {held:?}, before the connection timeout"
    );
}

/// A poll without a cursor gets only what is sent after it began.
pub async fn null_cursor_means_from_now_on(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, _) = join(&chat, "ann").await;
    say(&chat, "old").await;
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move { chat.poll(&token, None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    say(&chat, "new").await;
    assert_eq!(texts(&decode(waiting.await.unwrap().unwrap())), ["new"]);
}

/// A broadcast wakes and answers every waiting poll.
pub async fn broadcast_wakes_every_waiting_poll(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let mut tokens = Vec::new();
    for i in 0..40 {
        tokens.push(join(&chat, &format!("user{i}")).await.0);
    }
    let mut waiting = Vec::new();
    for token in tokens {
        // After everyone's join messages.
        let (_, cursor) = chat.recent(&token, 0).await.unwrap();
        let chat = chat.clone();
        waiting.push(tokio::spawn(async move {
            chat.poll(&token, Some(cursor)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    say(&chat, "to all").await;
    for poll in waiting {
        assert_eq!(texts(&decode(poll.await.unwrap().unwrap())), ["to all"]);
    }
}

/// A private message reaches its targets only, in order with the rest,
/// and never shows in others' history.
pub async fn private_message_reaches_only_its_target(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (ann, ann_public, _) = join(&chat, "ann").await;
    let (bob, bob_public, _) = join(&chat, "bob").await;
    let (cid, _, cid_cursor) = join(&chat, "cid").await;
    // Everyone starts after the last join.
    let (ann_cursor, bob_cursor) = (cid_cursor.clone(), cid_cursor.clone());
    chat.send_to(&[bob_public, ann_public], "Text", &json!({ "m": "psst" }))
        .await
        .unwrap();
    say(&chat, "public").await;
    let (for_bob, _) = collect(&chat, &bob, bob_cursor, 2).await;
    let (for_ann, _) = collect(&chat, &ann, ann_cursor, 2).await;
    let (for_cid, _) = collect(&chat, &cid, cid_cursor, 1).await;
    assert_eq!(texts(&for_bob), ["psst", "public"]);
    assert_eq!(texts(&for_ann), ["psst", "public"]);
    assert_eq!(texts(&for_cid), ["public"]);
    let (history, _) = chat.recent(&cid, 10).await.unwrap();
    assert!(
        !texts(&history).contains(&"psst".to_owned()),
        "history leaks a private message"
    );
}

/// A private message to an unknown client is refused (`UnknownRecipient`).
pub async fn private_message_to_unknown_client_fails(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let err = chat
        .send_to(&[PublicToken::generate()], "Text", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, CometError::UnknownRecipient), "{err:?}");
}

/// Two polls of one client (two tabs) both receive a message.
pub async fn two_polls_of_one_client_both_receive(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let tabs: Vec<_> = (0..2)
        .map(|_| {
            let (chat, token, cursor) = (chat.clone(), token.clone(), cursor.clone());
            tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    say(&chat, "both tabs").await;
    for tab in tabs {
        assert_eq!(texts(&decode(tab.await.unwrap().unwrap())), ["both tabs"]);
    }
}

/// A poll past `Settings::max_polls_per_client` is refused, and the slots
/// are given back when the polls end.
pub async fn too_many_concurrent_polls_are_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let held: Vec<_> = (0..3)
        .map(|_| {
            let (chat, token, cursor) = (chat.clone(), token.clone(), cursor.clone());
            tokio::spawn(async move { chat.poll(&token, Some(cursor)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = chat.poll(&token, Some(cursor.clone())).await.unwrap_err();
    assert!(matches!(err, CometError::TooManyPolls(3)), "{err:?}");
    for poll in held {
        poll.await.unwrap().unwrap();
    }
    // The slots are given back when the polls end.
    assert!(chat.poll(&token, Some(cursor)).await.is_ok());
}
