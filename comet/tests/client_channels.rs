//! The native client following several channels with one poll at a time
//! (`Client::channels`), against a real server on a loopback port.

use comet::client::{Auth, ChannelEvent, Client};
use comet::{Comet, MemoryProvider, Retention, Settings};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

async fn next(
    events: &mut (impl tokio_stream::Stream<Item = ChannelEvent> + Unpin),
) -> ChannelEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_follows_several_channels_and_lets_a_closed_one_go() {
    let settings = Settings {
        connection_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let provider = Arc::new(MemoryProvider::new(Retention::default()));
    let comet = Comet::new(provider, settings, &["news"]);
    let sport = comet.open("sport", None).await.unwrap();
    let news = comet.channel("news").unwrap();
    let (token, _) = news.initialize_client("ada").await.unwrap();
    sport.join_with_token(&token, "ada").await.unwrap();
    let (_, from_news) = news.recent(&token, 0).await.unwrap();
    let (_, from_sport) = sport.recent(&token, 0).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = comet.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let client = Client::new(&base, Auth::Bearer(token.expose().to_owned()))
        .poll_timeout(Duration::from_millis(300));
    let cursors = BTreeMap::from([
        ("news".to_owned(), Some(from_news)),
        ("sport".to_owned(), Some(from_sport)),
    ]);
    let mut events = client.channels(cursors);
    for (channel, text) in [("sport", "1-0"), ("news", "rain"), ("sport", "2-0")] {
        let manager = comet.channel(channel).unwrap();
        manager
            .send_to_all("Text", &json!({ "m": text }))
            .await
            .unwrap();
        match next(&mut events).await {
            ChannelEvent::Message {
                channel: got,
                message,
            } => {
                assert_eq!(
                    (got.as_str(), message.contents["m"].as_str()),
                    (channel, Some(text))
                );
            }
            other => panic!("expected {channel}'s {text}, got {other:?}"),
        }
    }
    // Closing a channel: the stream says so and follows the rest.
    comet.close("sport").await.unwrap();
    match next(&mut events).await {
        ChannelEvent::Left { channel, error } => {
            assert_eq!(channel, "sport");
            assert_eq!(error.error, "unknown_channel");
        }
        other => panic!("expected sport to be left, got {other:?}"),
    }
    news.send_to_all("Text", &json!({ "m": "still here" }))
        .await
        .unwrap();
    match next(&mut events).await {
        ChannelEvent::Message { channel, message } => {
            assert_eq!(channel, "news");
            assert_eq!(message.contents["m"], "still here");
        }
        other => panic!("expected news, got {other:?}"),
    }
    server.abort();
}
