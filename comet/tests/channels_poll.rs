//! `POST /comet`, one poll for several channels, over the router: the
//! reply groups messages by channel, reports a channel's failure by name,
//! and refuses malformed bodies with `400`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use comet::wire::{ChannelsReply, ChannelsRequest};
use comet::{Comet, Cursor, MemoryProvider, PrivateToken, Retention, Settings};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

async fn post(comet: &Comet, token: &PrivateToken, body: String) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/comet")
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = comet.router::<()>().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

#[tokio::test]
async fn one_http_poll_carries_several_channels() {
    let settings = Settings {
        connection_timeout: Duration::from_millis(200),
        ..Settings::default()
    };
    let provider = Arc::new(MemoryProvider::new(Retention::default()));
    let comet = Comet::new(provider, settings, &["news", "sport"]);
    let (news, sport) = (
        comet.channel("news").unwrap(),
        comet.channel("sport").unwrap(),
    );
    let (token, _) = news.initialize_client("ada").await.unwrap();
    sport.join_with_token(&token, "ada").await.unwrap();
    let (_, from_news) = news.recent(&token, 0).await.unwrap();
    let (_, from_sport) = sport.recent(&token, 0).await.unwrap();
    sport
        .send_to_all("Score", &json!({ "text": "1-0" }))
        .await
        .unwrap();

    let mut channels = std::collections::BTreeMap::<String, Option<Cursor>>::new();
    channels.insert("news".into(), Some(from_news));
    channels.insert("sport".into(), Some(from_sport));
    channels.insert("weather".into(), None);
    let body = serde_json::to_string(&ChannelsRequest { channels }).unwrap();
    let (status, reply) = post(&comet, &token, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let ChannelsReply::Messages { channels, errors } = serde_json::from_slice(&reply).unwrap()
    else {
        panic!("messages expected: {}", String::from_utf8_lossy(&reply));
    };
    assert_eq!(channels["sport"][0].contents["text"], "1-0");
    assert!(!channels.contains_key("news"));
    assert_eq!(errors["weather"].error, "unknown_channel");

    for bad in [
        "",
        "{}",
        r#"{"channels": {}}"#,
        r#"{"channels": {"news": 5}}"#,
        r#"{"chanels": {}}"#,
    ] {
        let (status, reply) = post(&comet, &token, bad.to_owned()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    // Past 8 × the one-channel body limit (4 096 bytes by default): 400.
    let padding = "x".repeat(8 * 4096);
    let oversized = json!({ "channels": { "news": null, padding: null } }).to_string();
    let (status, reply) = post(&comet, &token, oversized).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&reply).contains("larger than 32768 bytes"));
    let stranger = PrivateToken::generate();
    let (status, _) = post(
        &comet,
        &stranger,
        json!({ "channels": { "news": null } }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
