//! The provider contract, as tests. Every provider runs this same suite:
//! `provider_suite!(factory)` expands to one `#[tokio::test]` per behaviour,
//! where `factory(retention)` is an async fn returning a fresh
//! `Arc<dyn Provider>` (for a shared store such as Redis, a fresh key space
//! is enough: every test also uses its own random channel name).
//!
//! The tests drive providers through the manager, as the app does, so they
//! prove the guarantees the crate docs and the README's "Wire protocol"
//! promise rather than one method at a time.

use comet::wire::{PresenceChange, PRESENCE};
use comet::{
    Comet, CometError, Cursor, Manager, Message, Poll, PollingClient, PrivateToken, Provider,
    PublicToken, Retention, Settings, Subscription,
};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

pub type ProviderFuture = Pin<Box<dyn Future<Output = Arc<dyn Provider>> + Send>>;

/// Builds providers for one test.
pub struct Factory(pub Box<dyn Fn(Retention) -> ProviderFuture + Send + Sync>);

impl Factory {
    pub async fn make(&self, retention: Retention) -> Arc<dyn Provider> {
        (self.0)(retention).await
    }
    async fn default_provider(&self) -> Arc<dyn Provider> {
        self.make(Retention::default()).await
    }
}

pub fn settings() -> Settings {
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

fn random_channel() -> String {
    format!("test-{}", PublicToken::generate())
}

/// A comet with one channel on `provider`, and that channel's manager.
fn node(provider: &Arc<dyn Provider>, channel: &str, settings: Settings) -> (Comet, Arc<Manager>) {
    let comet = Comet::new(provider.clone(), settings, &[channel]);
    let manager = comet.channel(channel).expect("channel exists");
    (comet, manager)
}

async fn single(factory: &Factory) -> (Comet, Arc<Manager>) {
    let provider = factory.default_provider().await;
    node(&provider, &random_channel(), settings())
}

fn decode(poll: Poll) -> Vec<Message> {
    match poll {
        Poll::Messages(list) => list
            .iter()
            .map(|bytes| serde_json::from_slice(bytes).expect("stored JSON is a wire message"))
            .collect(),
        Poll::Timeout => Vec::new(),
    }
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.name == "Text")
        .map(|m| m.contents["m"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn join(manager: &Manager, name: &str) -> (PrivateToken, PublicToken, Cursor) {
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

async fn say(manager: &Manager, text: &str) -> Cursor {
    manager
        .send_to_all("Text", &json!({ "m": text }))
        .await
        .expect("sent")
}

/// Polls from `cursor` until `count` text messages arrived (or a poll times out).
async fn collect(
    manager: &Arc<Manager>,
    token: &PrivateToken,
    cursor: Cursor,
    count: usize,
) -> (Vec<Message>, Cursor) {
    poll_until(manager, token, cursor, |got| texts(got).len() >= count).await
}

/// Polls from `cursor` until `done` holds for what arrived (or a poll
/// times out).
async fn poll_until(
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

pub async fn a_send_repeated_with_its_once_key_is_appended_once(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, ann, cursor) = join(&chat, "ann").await;
    let text = |m: &str| json!({ "m": m });
    let first = chat
        .send_to_all_once(Some("ann:1"), "Text", &text("one"))
        .await
        .unwrap();
    let again = chat
        .send_to_all_once(Some("ann:1"), "Text", &text("one"))
        .await
        .unwrap();
    assert_eq!(first, again, "the retry answers with the first send's id");
    chat.send_to_all_once(Some("ann:2"), "Text", &text("two"))
        .await
        .unwrap();
    chat.send_to_once(&[ann], Some("ann:3"), "Text", &text("three"))
        .await
        .unwrap();
    chat.send_to_once(&[ann], Some("ann:3"), "Text", &text("three"))
        .await
        .unwrap();
    say(&chat, "four").await;
    let (got, _) = collect(&chat, &token, cursor, 5).await;
    assert_eq!(texts(&got), ["one", "two", "three", "four"]);
}

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

pub async fn poll_times_out_when_nothing_arrives(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, _, cursor) = join(&chat, "ann").await;
    let started = std::time::Instant::now();
    let poll = chat.poll(&token, Some(cursor)).await.unwrap();
    assert!(matches!(poll, Poll::Timeout), "{poll:?}");
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(290),
        "answered after {held:?}, before the connection timeout"
    );
}

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

pub async fn private_message_to_unknown_client_fails(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let err = chat
        .send_to(&[PublicToken::generate()], "Text", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, CometError::UnknownRecipient), "{err:?}");
}

pub async fn duplicate_display_name_is_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    chat.initialize_client("Ann").await.unwrap();
    for taken in ["Ann", "ann", "ANN"] {
        let err = chat.initialize_client(taken).await.unwrap_err();
        assert!(
            matches!(err, CometError::ClientExists(comet::Taken::DisplayName)),
            "{err:?}"
        );
        assert!(err.to_string().contains("client already exists"));
    }
    assert_eq!(chat.clients().await.unwrap().len(), 1);
}

/// An app's name key (here: the chat's look-alike skeleton) is what the
/// provider keeps names unique by, so the rule holds on every node, and a
/// removed client frees its key.
pub async fn names_are_unique_by_the_key_the_app_gives(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let key = |name: &str| name.to_lowercase().replace('\u{430}', "a");
    let (_, ada) = chat
        .initialize_client_keyed("ada", key("ada"))
        .await
        .unwrap();
    // Cyrillic "а": a different name, the same key.
    let err = chat
        .initialize_client_keyed("\u{430}da", key("\u{430}da"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CometError::ClientExists(comet::Taken::DisplayName)),
        "{err:?}"
    );
    chat.remove_client(&ada.public).await.unwrap();
    chat.initialize_client_keyed("\u{430}da", key("\u{430}da"))
        .await
        .unwrap();
    assert_eq!(chat.clients().await.unwrap().len(), 1);
}

pub async fn invalid_display_names_are_refused(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    for bad in ["", " ann", "x".repeat(33).as_str(), "a\u{7}b"] {
        let err = chat.initialize_client(bad).await.unwrap_err();
        assert!(
            matches!(err, CometError::InvalidClient(_)),
            "{bad:?}: {err:?}"
        );
    }
    assert!(chat.clients().await.unwrap().is_empty());
}

pub async fn unknown_token_is_unknown_client(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let err = chat
        .poll(&PrivateToken::generate(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CometError::UnknownClient), "{err:?}");
}

/// The presence changes among `messages`.
fn presence(messages: &[Message]) -> Vec<PresenceChange> {
    messages
        .iter()
        .filter(|m| m.name == PRESENCE)
        .map(|m| serde_json::from_value(m.contents.clone()).expect("a presence change"))
        .collect()
}

fn names(members: &[comet::wire::Member]) -> Vec<&str> {
    members.iter().map(|m| m.name.as_str()).collect()
}

/// Polls from `cursor` until `count` presence changes arrived (or a poll
/// times out).
async fn collect_presence(
    manager: &Arc<Manager>,
    token: &PrivateToken,
    cursor: Cursor,
    count: usize,
) -> (Vec<PresenceChange>, Cursor) {
    let (got, cursor) =
        poll_until(manager, token, cursor, |got| presence(got).len() >= count).await;
    (presence(&got), cursor)
}

pub async fn joins_and_leaves_of_a_window_go_out_as_one_change(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (ann, _, cursor) = join(&chat, "ann").await;
    let (_, bob) = chat.initialize_client("bob").await.unwrap();
    let (_, _cy) = chat.initialize_client("cy").await.unwrap();
    let (_, dee) = chat.initialize_client("dee").await.unwrap();
    assert!(chat.remove_client(&dee.public).await.unwrap());
    assert!(
        !chat.remove_client(&dee.public).await.unwrap(),
        "a second removal must report nothing"
    );
    let (changes, cursor) = collect_presence(&chat, &ann, cursor, 1).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        names(&changes[0].joined),
        ["bob", "cy"],
        "dee came and went"
    );
    assert!(changes[0].left.is_empty());
    assert_eq!(changes[0].joined[0].public, bob.public.to_string());
    assert!(changes[0].is_complete());
    assert!(chat.remove_client(&bob.public).await.unwrap());
    let (changes, _) = collect_presence(&chat, &ann, cursor, 1).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].joined.is_empty());
    assert_eq!(
        (names(&changes[0].left), changes[0].left[0].public.as_str()),
        (vec!["bob"], bob.public.as_str())
    );
}

pub async fn a_crowd_arriving_makes_one_bounded_change(factory: Factory) {
    let provider = factory.default_provider().await;
    let long_window = Settings {
        // Long enough that 50 logins fall into one window on a slow machine.
        presence_window: Duration::from_secs(1),
        connection_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(5),
        presence_cap: 8,
        ..settings()
    };
    let (_comet, chat) = node(&provider, &random_channel(), long_window);
    let (watcher, _, cursor) = join(&chat, "watcher").await;
    for i in 0..50 {
        chat.initialize_client(&format!("user{i}")).await.unwrap();
    }
    let (changes, _) = collect_presence(&chat, &watcher, cursor, 1).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let crowd = &changes[0];
    assert_eq!(crowd.joined_count(), 50);
    assert_eq!(
        names(&crowd.joined),
        (0..8).map(|i| format!("user{i}")).collect::<Vec<_>>(),
        "the first to arrive are listed, the rest counted"
    );
    assert_eq!(crowd.more_joined, 42);
}

pub async fn a_join_is_not_announced_after_its_leave_from_another_node(factory: Factory) {
    let provider = factory.default_provider().await;
    let channel = random_channel();
    // Windows that never close by themselves: the test sends them.
    let manual = Settings {
        presence_window: Duration::from_secs(3600),
        ..settings()
    };
    let (_a, node_a) = node(&provider, &channel, manual.clone());
    let (_b, node_b) = node(&provider, &channel, manual);
    let (watcher, _, cursor) = join(&node_a, "watcher").await;
    // Eve logs in on A and out on B, and B's window closes first.
    let (_, eve) = node_a.initialize_client("eve").await.unwrap();
    assert!(node_b.remove_client(&eve.public).await.unwrap());
    node_b.flush_presence().await.unwrap();
    node_a.flush_presence().await.unwrap();
    node_a.initialize_client("zed").await.unwrap();
    node_a.flush_presence().await.unwrap();
    let (changes, _) = collect_presence(&node_a, &watcher, cursor, 2).await;
    let about_eve: Vec<_> = changes
        .iter()
        .filter(|c| c.joined.iter().chain(&c.left).any(|m| m.name == "eve"))
        .collect();
    assert_eq!(about_eve.len(), 1, "{changes:?}");
    assert_eq!(names(&about_eve[0].left), ["eve"], "eve ends as gone");
    assert!(about_eve[0].joined.is_empty());
    assert_eq!(names(&changes.last().unwrap().joined), ["zed"]);
}

pub async fn a_graceful_stop_sends_the_pending_window(factory: Factory) {
    let provider = factory.default_provider().await;
    let manual = Settings {
        presence_window: Duration::from_secs(3600),
        ..settings()
    };
    let (comet, chat) = node(&provider, &random_channel(), manual);
    let (token, _) = chat.initialize_client("ann").await.unwrap();
    let (before, _) = chat.recent(&token, 10).await.unwrap();
    assert!(presence(&before).is_empty(), "the window is still open");
    comet.shutdown();
    comet.flush_presence().await;
    let (after, _) = chat.recent(&token, 10).await.unwrap();
    let changes = presence(&after);
    assert_eq!(changes.len(), 1, "{after:?}");
    assert_eq!(names(&changes[0].joined), ["ann"]);
}

pub async fn removed_client_gets_unknown_client(factory: Factory) {
    let (_comet, chat) = single(&factory).await;
    let (token, public, _) = join(&chat, "ann").await;
    chat.remove_client(&public).await.unwrap();
    assert!(matches!(
        chat.poll(&token, None).await,
        Err(CometError::UnknownClient)
    ));
    // The name is free again.
    chat.initialize_client("ann").await.unwrap();
}

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
            Ok(Poll::Timeout)
        ));
    }
    assert!(chat.client(&token).await.unwrap().is_some());
}

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
        provider.idle_clients(&channel).await.unwrap().is_empty(),
        "a client whose poll started 0.8 s ago is not idle"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let idle: Vec<_> = provider
        .idle_clients(&channel)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.public)
        .collect();
    assert_eq!(idle, vec![public], "idle 1.9 s after its last poll started");
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
    let idle: Vec<_> = provider
        .idle_clients(&channel)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.public)
        .collect();
    assert_eq!(idle, vec![short.public], "only the 0.6 s client is idle");
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

pub async fn channels_of_one_provider_are_independent(factory: Factory) {
    let provider = factory.default_provider().await;
    let (a, b) = (random_channel(), random_channel());
    let comet = Comet::new(provider.clone(), settings(), &[a.as_str(), b.as_str()]);
    let chat_a = comet.channel(&a).expect("channel a");
    let chat_b = comet.channel(&b).expect("channel b");
    let (token_a, _, cursor_a) = join(&chat_a, "ann").await;
    // The same display name is free in another channel.
    let (token_b, _, cursor_b) = join(&chat_b, "ann").await;
    say(&chat_a, "only in a").await;
    assert!(
        matches!(
            chat_b.poll(&token_b, Some(cursor_b)).await,
            Ok(Poll::Timeout)
        ),
        "a message of one channel never reaches another"
    );
    let got = decode(chat_a.poll(&token_a, Some(cursor_a)).await.unwrap());
    assert_eq!(texts(&got), ["only in a"]);
    assert!(matches!(
        chat_b.poll(&token_a, None).await,
        Err(CometError::UnknownClient)
    ));
}

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

/// Waits (at most 2 s) until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
    assert!(matches!(timeout, Poll::Timeout));
    assert_eq!(chat.waiting_polls(), 0);
    assert!(!comet.is_answering());
}

/// What a subscription yields next, or a failure after 5 s: a stream
/// that never yields must fail its test, not hang it.
async fn next_item(stream: &mut Subscription) -> Option<Result<Message, CometError>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream yields within 5 s")
}

async fn next_message(stream: &mut Subscription) -> Message {
    match next_item(stream).await {
        Some(Ok(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next text message's text (presence changes are skipped).
async fn next_text(stream: &mut Subscription) -> String {
    loop {
        let message = next_message(stream).await;
        if message.name == "Text" {
            return texts(&[message]).remove(0);
        }
    }
}

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

/// One `#[tokio::test]` per behaviour above, for the provider built by
/// `$factory` (an async fn taking a `Retention`).
#[macro_export]
macro_rules! provider_suite {
    ($factory:path) => {
        $crate::provider_suite!(@tests $factory;
            ids_strictly_increase,
            a_send_repeated_with_its_once_key_is_appended_once,
            resumes_from_cursor_without_duplicates,
            replies_are_bounded_batches,
            poll_waits_then_receives,
            poll_times_out_when_nothing_arrives,
            null_cursor_means_from_now_on,
            broadcast_wakes_every_waiting_poll,
            private_message_reaches_only_its_target,
            private_message_to_unknown_client_fails,
            duplicate_display_name_is_refused,
            names_are_unique_by_the_key_the_app_gives,
            invalid_display_names_are_refused,
            unknown_token_is_unknown_client,
            joins_and_leaves_of_a_window_go_out_as_one_change,
            a_crowd_arriving_makes_one_bounded_change,
            a_join_is_not_announced_after_its_leave_from_another_node,
            a_graceful_stop_sends_the_pending_window,
            removed_client_gets_unknown_client,
            expired_cursor_is_refused_not_skipped,
            retention_drops_old_messages_by_age,
            malformed_cursor_is_refused,
            history_and_cursor_leave_no_gap,
            history_skips_what_is_for_others,
            two_polls_of_one_client_both_receive,
            too_many_concurrent_polls_are_refused,
            idle_client_is_removed_once_with_one_leave,
            held_poll_keeps_a_client_alive,
            a_poll_start_counts_as_activity,
            a_touch_uses_the_clients_own_idle_timeout,
            channels_of_one_provider_are_independent,
            shutdown_answers_every_poll_stopping,
            answering_a_wake_up_always_settles,
            a_stream_yields_each_message_once_in_order_across_resubscribing,
            a_private_message_reaches_only_its_targets_stream,
            a_removed_clients_stream_ends_with_unknown_client,
            a_stream_sees_what_was_sent_between_its_polls,
            a_stream_from_now_on_keeps_its_start_across_timeouts,
            shutdown_ends_a_stream_with_stopping,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory = $crate::common::provider_suite::Factory(Box::new(|retention| {
                    Box::pin($factory(retention))
                }));
                $crate::common::provider_suite::$name(factory).await;
            }
        )*
    };
}
