//! Cursors and history: retention expires cursors (refused, never
//! skipped), junk is refused, and history and its cursor leave no gap.

use super::support::{collect, join, node, random_channel, say, settings, single, texts};
use super::Factory;
use crate::{CometError, Cursor, Retention};
use serde_json::json;
use std::time::Duration;

/// A cursor older than what retention keeps (by count) is refused with
/// `CursorExpired`, never silently skipped.
pub async fn expired_cursor_is_refused_not_skipped(factory: Factory) {
    let provider = factory
        .make(Retention {
            max_messages: 5,
            max_age: Duration::from_secs(3600),
        })
        .await;
    let (_comet, chat) = node(&provider, &random_channel(), settings());
    let (token, _, cursor) = join(&chat, "ann").await;
    for i in 0..10 {
        say(&chat, &i.to_string()).await;
    }
    let err = chat.poll(&token, Some(cursor)).await.unwrap_err();
    assert!(matches!(err, CometError::CursorExpired), "{err:?}");
    // What is still kept is still readable.
    let (kept, _) = chat.recent(&token, 100).await.unwrap();
    assert_eq!(texts(&kept), ["5", "6", "7", "8", "9"]);
}

/// Retention drops messages by age too, and a cursor among them expires.
pub async fn retention_drops_old_messages_by_age(factory: Factory) {
    let provider = factory
        .make(Retention {
            max_messages: 1000,
            max_age: Duration::from_millis(200),
        })
        .await;
    let (_comet, chat) = node(&provider, &random_channel(), settings());
    let (token, _, cursor) = join(&chat, "ann").await;
    say(&chat, "old").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    say(&chat, "fresh").await;
    let (kept, _) = chat.recent(&token, 100).await.unwrap();
    assert_eq!(texts(&kept), ["fresh"]);
    let polled = chat.poll(&token, Some(cursor)).await;
    assert!(
        matches!(polled, Err(CometError::CursorExpired)),
        "{polled:?}"
    );
}

/// A malformed cursor is refused; the history cursor is the newest id.
pub async fn malformed_cursor_is_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, _) = join(&chat, "ann").await;
    let newest = say(&chat, "x").await;
    let (_, head) = chat.recent(&token, 0).await.unwrap();
    assert_eq!(head, newest, "the history cursor is the newest id");
    for junk in ["", "nonsense", "zz-1"] {
        let err = chat
            .poll(&token, Some(Cursor(junk.into())))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CometError::InvalidCursor(_) | CometError::CursorExpired
            ),
            "{junk:?}: {err:?}"
        );
    }
}

/// What is sent between reading history and the first poll from its
/// cursor arrives.
pub async fn history_and_cursor_leave_no_gap(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, _) = join(&chat, "ann").await;
    for i in 0..3 {
        say(&chat, &format!("h{i}")).await;
    }
    let (history, cursor) = chat.recent(&token, 2).await.unwrap();
    assert_eq!(texts(&history), ["h1", "h2"]);
    // Sent between "page render" and the first poll.
    say(&chat, "in the gap").await;
    let (got, _) = collect(&chat, &token, cursor, 1).await;
    assert_eq!(texts(&got), ["in the gap"]);
}

/// History fills its limit with what the reader may see, past any number
/// of newer messages for others, and its cursor is still the newest id.
pub async fn history_skips_what_is_for_others(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (ann, _, _) = join(&chat, "ann").await;
    let (bob, bob_public, _) = join(&chat, "bob").await;
    for i in 0..3 {
        say(&chat, &format!("h{i}")).await;
    }
    let mut newest = None;
    for i in 0..7 {
        let id = chat
            .send_to(&[bob_public], "Text", &json!({ "m": format!("psst{i}") }))
            .await
            .unwrap();
        newest = Some(id);
    }
    let (history, cursor) = chat.recent(&ann, 2).await.unwrap();
    assert_eq!(texts(&history), ["h1", "h2"]);
    assert_eq!(Some(cursor), newest, "nothing to repeat on the first poll");
    let (history, _) = chat.recent(&bob, 2).await.unwrap();
    assert_eq!(texts(&history), ["psst5", "psst6"]);
}
