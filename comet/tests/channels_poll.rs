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
    let ChannelsReply::Messages {
        channels, errors, ..
    } = serde_json::from_slice(&reply).unwrap()
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

/// Writes one `POST /comet` with `Comet-Ack: early` over a raw socket;
/// gives the socket once the response's head is in, with the head.
async fn early_poll(
    addr: std::net::SocketAddr,
    token: &PrivateToken,
    body: &str,
) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /comet HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nComet-Ack: early\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        token.expose(),
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "the head ends");
        head.push(byte[0]);
    }
    (socket, String::from_utf8(head).unwrap())
}

/// The rest of the response, de-chunked the lazy way: the JSON object in it.
async fn rest_json(mut socket: tokio::net::TcpStream) -> serde_json::Value {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    socket.read_to_end(&mut rest).await.unwrap();
    let text = String::from_utf8(rest).unwrap();
    let json = &text[text.find('{').unwrap()..=text.rfind('}').unwrap()];
    serde_json::from_str(json).unwrap()
}

/// `Comet-Ack: early` on `POST /comet`, over HTTP on a front: the head
/// comes as soon as the poll is accepted, the body when a channel has
/// something, or at the connection timeout.
async fn early_ack_over(front: &str, serve: impl FnOnce(tokio::net::TcpListener, Comet)) {
    let settings = Settings {
        connection_timeout: Duration::from_millis(900),
        presence_window: Duration::from_millis(20),
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
    // Presence windows pass (ada's join is a message), then cursors.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, from_news) = news.recent(&token, 0).await.unwrap();
    let (_, from_sport) = sport.recent(&token, 0).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener, comet.clone());

    // Nothing arrives: the head at once, the timeout later.
    let body = json!({ "channels": { "news": from_news, "sport": from_sport } }).to_string();
    let started = tokio::time::Instant::now();
    let (socket, head) = early_poll(addr, &token, &body).await;
    let head_after = started.elapsed();
    assert!(head.starts_with("HTTP/1.1 200"), "{front}: {head}");
    let reply = rest_json(socket).await;
    let body_after = started.elapsed();
    assert_eq!(reply, json!({ "status": "timeout" }), "{front}");
    assert!(
        head_after < Duration::from_millis(500) && body_after >= Duration::from_millis(850),
        "{front}: head after {head_after:?}, body after {body_after:?}"
    );

    // A message after the head: it is the body.
    let (socket, head) = early_poll(addr, &token, &body).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{front}: {head}");
    sport
        .send_to_all("Score", &json!({ "text": "1-0" }))
        .await
        .unwrap();
    let reply: ChannelsReply = serde_json::from_value(rest_json(socket).await).unwrap();
    let ChannelsReply::Messages { channels, .. } = reply else {
        panic!("{front}: messages expected");
    };
    assert_eq!(channels["sport"][0].contents["text"], "1-0", "{front}");
}

#[tokio::test]
async fn early_ack_answers_the_head_before_the_body_on_axum_serve() {
    early_ack_over("axum::serve", |listener, comet| {
        tokio::spawn(async move { axum::serve(listener, comet.router()).await });
    })
    .await;
}

#[tokio::test]
async fn early_ack_answers_the_head_before_the_body_on_the_lean_front() {
    early_ack_over("comet::serve", |listener, comet| {
        let limits = comet::serve::Limits::default();
        tokio::spawn(comet::serve::serve(
            listener,
            comet.router::<()>(),
            limits,
            std::future::pending(),
        ));
    })
    .await;
}
