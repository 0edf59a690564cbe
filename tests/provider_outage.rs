//! A provider that stops answering (Redis paused, a partition) must not
//! hold the requests that wait on it: every manager call a route or server
//! function awaits fails with `Unavailable` once the provider timeout
//! passes. The provider here is the in-process one behind a switch that,
//! once thrown, leaves every call pending forever, the way a stopped
//! Redis leaves a command without a reply.
//!
//! Time is paused (tokio's test clock): a call bounded by the timeout
//! ends when the clock reaches it; a call that is not bounded is caught
//! by the much longer outer limit, and the test fails naming it.

mod common;

use comet::{Comet, CometError, Settings};
use common::flaky::Flaky;
use serde_json::json;
use std::future::Future;
use std::time::Duration;
use tokio_stream::StreamExt;

/// Far beyond any provider timeout: reaching it means the call was held.
const HELD: Duration = Duration::from_secs(3600);

async fn refused<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, CometError>>,
) {
    match tokio::time::timeout(HELD, call).await {
        Err(_) => panic!("{what}: held while the provider does not answer"),
        Ok(Err(CometError::Unavailable(_))) => {}
        Ok(other) => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn every_manager_call_fails_unavailable_when_the_provider_stops_answering() {
    let provider = Flaky::new();
    let settings = Settings {
        provider_timeout: Duration::from_millis(800),
        ..Settings::default()
    };
    let comet = Comet::new(provider.clone(), settings, &["c"]);
    let chat = comet.channel("c").unwrap();
    let (token, ann) = chat.initialize_client("ann").await.unwrap();
    let (_, cursor) = chat.recent(&token, 10).await.unwrap();

    provider.stall();
    refused("ping (healthz)", chat.ping()).await;
    refused("login", chat.initialize_client("bob")).await;
    refused("client lookup", chat.client(&token)).await;
    refused("lookup by public token", chat.client_by_public(&ann.public)).await;
    refused("clients", chat.clients()).await;
    refused("recent", chat.recent(&token, 10)).await;
    refused("send", chat.send_to_all("Text", &json!({ "m": "hi" }))).await;
    refused(
        "private send",
        chat.send_to(&[ann.public], "Text", &json!({ "m": "hi" })),
    )
    .await;
    refused("remove", chat.remove_client(&ann.public)).await;
    refused("poll", chat.poll(&token, Some(cursor))).await;
    refused("poll from now", chat.poll(&token, None)).await;
    refused("reaping", chat.reap_idle()).await;
}

/// A server-side stream surfaces each failed try as an item, waits a
/// back-off that grows between tries, and once the provider answers again
/// goes on from its cursor: nothing is lost, nothing is hidden.
#[tokio::test(start_paused = true)]
async fn a_stream_yields_outages_backs_off_and_resumes() {
    let provider = Flaky::new();
    let comet = Comet::new(provider.clone(), Settings::default(), &["c"]);
    let chat = comet.channel("c").unwrap();
    let (token, _) = chat.initialize_client("ann").await.unwrap();
    let (_, cursor) = chat.recent(&token, 10).await.unwrap();
    chat.send_to_all("Text", &json!({ "m": "kept" }))
        .await
        .unwrap();
    let mut stream = chat.subscribe(token, Some(cursor.clone()));

    provider.refuse();
    let mut tries = Vec::new();
    for _ in 0..4 {
        let item = tokio::time::timeout(HELD, stream.next()).await.unwrap();
        assert!(
            matches!(item, Some(Err(CometError::Unavailable(_)))),
            "{item:?}"
        );
        tries.push(tokio::time::Instant::now());
    }
    let waits: Vec<_> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        waits.windows(2).all(|w| w[1] > w[0]) && waits[0] > Duration::ZERO,
        "the back-off grows: {waits:?}"
    );
    assert!(
        waits.iter().all(|&wait| wait <= Duration::from_secs(2)),
        "and stays short: {waits:?}"
    );
    assert_eq!(stream.cursor(), Some(&cursor), "the cursor did not move");

    provider.recover();
    let item = tokio::time::timeout(HELD, stream.next()).await.unwrap();
    match item {
        Some(Ok(message)) => assert_eq!(message.contents["m"], "kept"),
        other => panic!("expected the kept message, got {other:?}"),
    }
}
