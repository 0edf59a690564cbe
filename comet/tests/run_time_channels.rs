//! A channel opened at run time, over the channel route: both ways a poll
//! is answered (the axum router and `Comet::answer`, what the HTTP front's
//! shortcut calls) find it, and answer `404` once it is closed or before
//! it is opened.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use comet::{Comet, MemoryProvider, PrivateToken, Retention, Settings};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// One poll through the router: its status and JSON body.
async fn via_router(
    comet: &Comet,
    channel: &str,
    token: &PrivateToken,
    since: Value,
) -> (StatusCode, Value) {
    let request = Request::post(format!("/comet/{channel}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "since": since }).to_string()))
        .unwrap();
    let response = comet.router::<()>().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The same poll through `Comet::answer`.
async fn via_answer(
    comet: &Comet,
    channel: &str,
    token: &PrivateToken,
    since: Value,
) -> (StatusCode, Value) {
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {}", token.expose());
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&bearer).unwrap(),
    );
    let body = json!({ "since": since }).to_string();
    let response = comet.answer(channel, &headers, body.as_bytes()).await;
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap(),
    )
}

#[tokio::test]
async fn both_poll_paths_find_a_run_time_channel_and_lose_it_when_closed() {
    let provider = Arc::new(MemoryProvider::new(Retention::default()));
    let settings = Settings {
        connection_timeout: std::time::Duration::from_millis(200),
        ..Settings::default()
    };
    // Nodes on one provider: `opener` opens the channel, each `other`
    // meets it first through a poll.
    let opener = Comet::new(provider.clone(), settings.clone(), &[]);
    let stranger = PrivateToken::generate();
    let (status, body) = via_router(&opener, "news", &stranger, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_channel");
    let news = opener.open("news", None).await.unwrap();
    let (token, _) = news.initialize_client("ada").await.unwrap();
    let (_, cursor) = news.recent(&token, 0).await.unwrap();
    news.send_to_all("Headline", &json!({ "text": "hello" }))
        .await
        .unwrap();
    for (path, poll) in [("router", 0), ("answer", 1)] {
        let other = Comet::new(provider.clone(), settings.clone(), &[]);
        let since = json!(cursor);
        let (status, body) = if poll == 0 {
            via_router(&other, "news", &token, since).await
        } else {
            via_answer(&other, "news", &token, since).await
        };
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["messages"][0]["c"]["text"], "hello", "{path}: {body}");
        assert!(
            other.channel("news").is_some(),
            "{path}: served from now on"
        );
    }
    assert!(opener.close("news").await.unwrap());
    let (status, body) = via_router(&opener, "news", &token, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let fresh = Comet::new(provider, settings, &[]);
    let (status, body) = via_answer(&fresh, "news", &token, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Not a name under the default rules: unknown, the provider not asked.
    let (status, _) = via_answer(&fresh, "News!", &token, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
