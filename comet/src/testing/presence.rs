//! Presence: joins and leaves of a window go out as one change, a crowd
//! as one bounded change, a leave on another node wins, and a graceful
//! stop sends the pending window.

use super::support::{
    collect_presence, join, names, node, presence, random_channel, settings, single,
};
use super::Factory;
use crate::Settings;
use std::time::Duration;

/// Joins and leaves within one presence window go out as one change (a
/// client that came and went is not in it).
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

/// A crowd arriving makes one change that lists the first
/// `Settings::presence_cap` and counts the rest.
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

/// A join is not announced after its leave, when the leave's window (on
/// another node) closes first.
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

/// A graceful stop (`shutdown`, then `flush_presence`) sends the pending
/// presence window.
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
