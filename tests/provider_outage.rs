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
