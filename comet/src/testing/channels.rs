//! Channels opened at run time: served like fixed ones, found by every
//! node, closed everywhere, and held to the app's rules.

use super::support::{decode, join, say, settings, texts};
use super::Factory;
use crate::channels::{is_plain_name, ChannelPolicy};
use crate::{ClientRecord, Comet, CometError, PublicToken};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh channel name the default policy takes.
fn random_room() -> String {
    let token = PublicToken::generate();
    let tail: String = token
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("room-{tail}")
}

/// A node with no fixed channel.
fn bare_node(provider: &Arc<dyn crate::Provider>) -> Comet {
    Comet::new(provider.clone(), settings(), &[])
}

/// A channel opened at run time carries messages like a fixed one, and is
/// listed; opening it again finds the same channel.
pub async fn a_channel_opened_at_run_time_is_served_and_listed(factory: Factory) {
    let provider = factory.make(Default::default()).await;
    let comet = bare_node(&provider);
    let room = random_room();
    assert!(is_plain_name(&room));
    assert!(comet.channel(&room).is_none());
    let manager = comet.open(&room, None).await.expect("opened");
    let again = comet.open(&room, None).await.expect("open already");
    assert!(Arc::ptr_eq(&manager, &again));
    let (token, _, cursor) = join(&manager, "ann").await;
    say(&manager, "hello").await;
    let got = decode(manager.poll(&token, Some(cursor)).await.expect("poll"));
    assert_eq!(texts(&got), ["hello"]);
    assert!(comet.channel_names().await.unwrap().contains(&room));
}

/// A second node sharing the provider finds a channel the first opened,
/// and serves its clients: no sticky sessions for run-time channels
/// either.
pub async fn a_channel_opened_on_one_node_is_found_on_another(factory: Factory) {
    let provider = factory.make(Default::default()).await;
    let (a, b) = (bare_node(&provider), bare_node(&provider));
    let room = random_room();
    let on_a = a.open(&room, None).await.unwrap();
    assert!(b.channel(&room).is_none(), "not met on b yet");
    let on_b = b
        .find(&room)
        .await
        .expect("b finds it through the provider");
    let (token, _, cursor) = join(&on_a, "ann").await;
    say(&on_a, "from a").await;
    let got = decode(on_b.poll(&token, Some(cursor)).await.expect("poll on b"));
    assert_eq!(texts(&got), ["from a"]);
    let unknown = b.find(&random_room()).await.unwrap_err();
    assert!(
        matches!(unknown, CometError::UnknownChannel(_)),
        "{unknown:?}"
    );
    let invalid = b.find("Not A Name").await.unwrap_err();
    assert!(
        matches!(invalid, CometError::UnknownChannel(_)),
        "{invalid:?}"
    );
}

/// Closing answers the channel's waiting polls `UnknownChannel` at once,
/// unlists it, lets go of it on the other nodes, and a channel opened
/// later under the same name starts empty: the old clients are gone.
pub async fn a_closed_channel_ends_its_polls_everywhere(factory: Factory) {
    let provider = factory.make(Default::default()).await;
    let (a, b) = (bare_node(&provider), bare_node(&provider));
    let room = random_room();
    let on_a = a.open(&room, None).await.unwrap();
    b.find(&room).await.unwrap();
    let (token, _, cursor) = join(&on_a, "ann").await;
    let waiting = {
        let (on_a, token) = (on_a.clone(), token.clone());
        tokio::spawn(async move { on_a.poll(&token, Some(cursor)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(a.close(&room).await.unwrap(), "it was open");
    let answer = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the waiting poll answers at once")
        .unwrap();
    assert!(
        matches!(answer, Err(CometError::UnknownChannel(_))),
        "{answer:?}"
    );
    assert!(!a.close(&room).await.unwrap(), "closed already");
    assert!(!a.channel_names().await.unwrap().contains(&room));
    assert!(matches!(
        a.find(&room).await,
        Err(CometError::UnknownChannel(_))
    ));
    // B lets go of it within its reap interval (50 ms in these settings).
    let deadline = Instant::now() + Duration::from_secs(3);
    while b.channel(&room).is_some() {
        assert!(
            Instant::now() < deadline,
            "b still serves the closed channel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reopened = b.open(&room, None).await.expect("opened again");
    let gone = reopened.poll(&token, None).await.unwrap_err();
    assert!(matches!(gone, CometError::UnknownClient), "{gone:?}");
    assert!(reopened.clients().await.unwrap().is_empty());
}

/// Rules of a test app: names start `ok-`; clients may open channels but
/// not one named `ok-admin`; `mallory` joins nothing; one member each, at
/// most `max_channels` channels.
struct Rules {
    max_channels: usize,
}

impl ChannelPolicy for Rules {
    fn valid_name(&self, name: &str) -> bool {
        is_plain_name(name) && name.starts_with("ok-")
    }

    fn may_open(&self, name: &str, _by: Option<&ClientRecord>) -> bool {
        name != "ok-admin"
    }

    fn may_join(&self, _name: &str, display_name: &str) -> bool {
        display_name != "mallory"
    }

    fn max_channels(&self) -> usize {
        self.max_channels
    }

    fn max_members(&self, _name: &str) -> usize {
        1
    }
}

/// The app's policy decides names, who opens, who joins and how many; a
/// fixed channel cannot be closed.
pub async fn channels_follow_the_apps_rules(factory: Factory) {
    let provider = factory.make(Default::default()).await;
    let rules = |max_channels| Arc::new(Rules { max_channels });
    let fixed = format!("ok-fixed{}", &random_room()[5..]);
    let comet = Comet::with_policy(provider.clone(), settings(), &[&fixed], rules(usize::MAX));
    let invalid = comet.open("room-1", None).await.unwrap_err();
    assert!(
        matches!(invalid, CometError::InvalidChannel(_)),
        "{invalid:?}"
    );
    let refused = comet.open("ok-admin", None).await.unwrap_err();
    assert!(matches!(refused, CometError::Refused(_)), "{refused:?}");
    let room = format!("ok-{}", &random_room()[5..]);
    let manager = comet.open(&room, None).await.unwrap();
    let mallory = manager.initialize_client("mallory").await.unwrap_err();
    assert!(matches!(mallory, CometError::Refused(_)), "{mallory:?}");
    manager.initialize_client("ann").await.unwrap();
    let full = manager.initialize_client("bob").await.unwrap_err();
    assert!(matches!(full, CometError::AtCapacity(_)), "{full:?}");
    let fixed_close = comet.close(&fixed).await.unwrap_err();
    assert!(
        matches!(fixed_close, CometError::Refused(_)),
        "{fixed_close:?}"
    );
    assert!(comet.channel_names().await.unwrap().contains(&fixed));
    // No room left: refused, yet an open channel is still found open.
    let at_limit = Comet::with_policy(provider, settings(), &[], rules(0));
    let other = format!("ok-{}", &random_room()[5..]);
    let none_left = at_limit.open(&other, None).await.unwrap_err();
    assert!(
        matches!(none_left, CometError::AtCapacity(_)),
        "{none_left:?}"
    );
    at_limit.open(&room, None).await.expect("open already");
    comet.close(&room).await.unwrap();
}
