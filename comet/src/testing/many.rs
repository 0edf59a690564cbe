//! One poll for several channels: each channel's messages once and in
//! order under its name, a channel's failure its own, any channel wakes it.

use super::support::{decode_bytes, join, random_channel, say, settings, texts};
use super::Factory;
use crate::{Comet, CometError, Cursor, PrivateToken};
use std::time::{Duration, Instant};

/// Two fixed channels and a client of both with one token, and its
/// cursors after its joins.
async fn two_channels(factory: &Factory) -> (Comet, [String; 2], PrivateToken, Vec<Cursor>) {
    two_channels_with(factory, settings()).await
}

async fn two_channels_with(
    factory: &Factory,
    settings: crate::Settings,
) -> (Comet, [String; 2], PrivateToken, Vec<Cursor>) {
    let provider = factory.make(Default::default()).await;
    let names = [random_channel(), random_channel()];
    let comet = Comet::new(provider, settings, &[&names[0], &names[1]]);
    let first = comet.channel(&names[0]).unwrap();
    let second = comet.channel(&names[1]).unwrap();
    let (token, _, cursor) = join(&first, "ann").await;
    second.join_with_token(&token, "ann").await.unwrap();
    second.flush_presence().await.unwrap();
    let (_, second_cursor) = second.recent(&token, 0).await.unwrap();
    (comet, names, token, vec![cursor, second_cursor])
}

/// The texts of one channel's part of an outcome.
fn part(outcome: &crate::ChannelsOutcome, channel: &str) -> Vec<String> {
    outcome
        .messages
        .iter()
        .filter(|(name, _)| name == channel)
        .flat_map(|(_, messages)| texts(&decode_bytes(messages)))
        .collect()
}

/// Messages of both channels come under their own names, once: polling
/// again from each channel's last id repeats nothing, and with nothing new
/// the poll times out.
pub async fn one_poll_follows_several_channels_each_exactly_once(factory: Factory) {
    let (comet, names, token, mut cursors) = two_channels(&factory).await;
    let (a, b) = (
        comet.channel(&names[0]).unwrap(),
        comet.channel(&names[1]).unwrap(),
    );
    say(&a, "a1").await;
    say(&b, "b1").await;
    say(&b, "b2").await;
    let mut got = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let asked = names
            .iter()
            .cloned()
            .zip(cursors.iter().cloned().map(Some))
            .collect();
        let outcome = comet.poll_channels(&token, asked).await.unwrap();
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        if outcome.is_timeout() {
            break;
        }
        got.0.extend(part(&outcome, &names[0]));
        got.1.extend(part(&outcome, &names[1]));
        for (name, messages) in &outcome.messages {
            let i = names.iter().position(|n| n == name).unwrap();
            let last = decode_bytes(messages).last().unwrap().id.clone();
            cursors[i] = last;
        }
    }
    assert_eq!(got.0, ["a1"]);
    assert_eq!(got.1, ["b1", "b2"]);
}

/// A held poll of several channels answers as soon as any of them has a
/// message for the client.
pub async fn a_held_poll_of_several_channels_wakes_on_any(factory: Factory) {
    let (comet, names, token, cursors) = two_channels(&factory).await;
    let asked: Vec<_> = names
        .iter()
        .cloned()
        .zip(cursors.into_iter().map(Some))
        .collect();
    let started = Instant::now();
    let held = {
        let (comet, token) = (comet.clone(), token.clone());
        tokio::spawn(async move { comet.poll_channels(&token, asked).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    say(&comet.channel(&names[1]).unwrap(), "late").await;
    let outcome = held.await.unwrap().unwrap();
    assert_eq!(part(&outcome, &names[1]), ["late"]);
    // Well before the connection timeout (300 ms in these settings).
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

/// A channel's failure is its own: an unknown channel and a channel the
/// client is not in are reported by name at once, beside a channel that
/// works; a client no channel knows fails the whole poll `UnknownClient`.
pub async fn a_channel_of_the_poll_fails_alone(factory: Factory) {
    let (comet, names, token, cursors) = two_channels(&factory).await;
    let stranger = random_channel();
    let outcome = comet
        .poll_channels(
            &token,
            vec![
                (names[0].clone(), Some(cursors[0].clone())),
                (stranger.clone(), None),
            ],
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome.errors.as_slice(),
            [(name, CometError::UnknownChannel(_))] if *name == stranger
        ),
        "{:?}",
        outcome.errors
    );
    let nobody = PrivateToken::generate();
    let all_unknown = names.iter().map(|n| (n.clone(), None)).collect();
    let whole = comet.poll_channels(&nobody, all_unknown).await.unwrap_err();
    assert!(matches!(whole, CometError::UnknownClient), "{whole:?}");
    let too_many = (0..65).map(|i| (format!("c{i}"), None)).collect();
    let refused = comet.poll_channels(&token, too_many).await.unwrap_err();
    assert!(
        matches!(refused, CometError::InvalidChannel(_)),
        "{refused:?}"
    );
}

/// A poll of several channels is one of the node's polls, not one per
/// channel: with room for one poll on the node, a poll of two channels is
/// held, a second poll meanwhile is refused, and the slot is free again
/// once the first answered.
pub async fn a_poll_of_several_channels_counts_once_on_the_node(factory: Factory) {
    let one_poll = crate::Settings {
        max_polls: 1,
        ..settings()
    };
    let (comet, names, token, mut cursors) = two_channels_with(&factory, one_poll).await;
    let first = comet.channel(&names[0]).unwrap();
    let (bob, _, bob_cursor) = join(&first, "bob").await;
    // After bob's join, which would answer the poll at once.
    cursors[0] = first.recent(&token, 0).await.unwrap().1;
    let asked: Vec<_> = names
        .iter()
        .cloned()
        .zip(cursors.into_iter().map(Some))
        .collect();
    let held = {
        let (comet, token) = (comet.clone(), token.clone());
        tokio::spawn(async move { comet.poll_channels(&token, asked).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = first
        .poll(&bob, Some(bob_cursor.clone()))
        .await
        .unwrap_err();
    assert!(matches!(refused, CometError::AtCapacity(_)), "{refused:?}");
    let outcome = held.await.unwrap().unwrap();
    assert!(outcome.is_timeout(), "{outcome:?}");
    first.poll(&bob, Some(bob_cursor)).await.unwrap();
}

/// A channel asked for from now on that another channel's messages
/// answered before it had any says where "now" was: a message sent to it
/// before the client's next poll is not missed.
pub async fn a_channel_followed_from_now_on_misses_nothing_between_polls(factory: Factory) {
    let (comet, names, token, cursors) = two_channels(&factory).await;
    let (a, b) = (
        comet.channel(&names[0]).unwrap(),
        comet.channel(&names[1]).unwrap(),
    );
    say(&a, "a1").await;
    let asked = vec![
        (names[0].clone(), Some(cursors[0].clone())),
        (names[1].clone(), None),
    ];
    let outcome = comet.poll_channels(&token, asked).await.unwrap();
    assert_eq!(part(&outcome, &names[0]), ["a1"]);
    let start = match outcome.cursors.as_slice() {
        [(name, start)] if *name == names[1] => start.clone(),
        other => panic!("expected where {} starts: {other:?}", names[1]),
    };
    // Between the two polls.
    say(&b, "b1").await;
    let outcome = comet
        .poll_channels(&token, vec![(names[1].clone(), Some(start))])
        .await
        .unwrap();
    assert_eq!(part(&outcome, &names[1]), ["b1"]);
    assert!(outcome.cursors.is_empty(), "{:?}", outcome.cursors);
}
