//! `comet::client` against the whole app on a loopback port: the stream
//! keeps its cursor across polls, ends when the client is gone, reports a
//! gap, and rides out refusals by waiting as long as it is told.

mod common;

use comet::client::{Auth, Client, ClientError, Event};
use comet::{Cursor, Message, Provider};
use common::flaky::Flaky;
use common::http::{start_on, start_with, test_config, App, Session};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::{Stream, StreamExt};

/// Longest wait for one event: several of the tests' 500 ms poll timeouts.
const PATIENCE: Duration = Duration::from_secs(10);

/// A comet client of `app` for `session`, its poll timeout the tests'.
fn client(app: &App, session: &Session) -> Client {
    Client::new(&app.base, Auth::Bearer(session.token.clone()))
        .poll_timeout(Duration::from_millis(500))
}

async fn next(events: &mut (impl Stream<Item = Event> + Unpin)) -> Event {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event within the patience")
        .expect("the stream has not ended")
}

/// The text of a chat message; `None` for other kinds (presence).
fn chat_text(message: &Message) -> Option<String> {
    (message.name == "ChatMessage").then(|| message.contents["m"].as_str().unwrap().to_owned())
}

/// The next chat message's text, passing over presence messages.
async fn next_chat(events: &mut (impl Stream<Item = Event> + Unpin)) -> String {
    loop {
        match next(events).await {
            Event::Message(m) => {
                if let Some(text) = chat_text(&m) {
                    return text;
                }
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn yields_every_message_once_in_order_across_polls() {
    let app = start_with(&[("COMET_RETENTION_MESSAGES", "100")]).await;
    let ann = app.login("ann").await;
    let cursor = Cursor(app.cursor(&ann).await);
    let mut events = client(&app, &ann).messages("chat", Some(cursor));
    let mut sent = Vec::new();
    for round in 0..3 {
        for i in 0..3 {
            let text = format!("{round}.{i}");
            assert!(app.send(&ann, &text).await.status().is_success());
            sent.push(text);
        }
        // Longer than a poll timeout: the stream polls again (timeout) in
        // between, and must resume from the last message it yielded.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(next_chat(&mut events).await);
    }
    assert_eq!(got, sent);
    // Nothing comes twice: the next polls bring nothing more.
    let more = tokio::time::timeout(Duration::from_millis(1200), next_chat(&mut events)).await;
    assert!(more.is_err(), "a message came again: {more:?}");
}

#[tokio::test]
async fn a_logged_out_client_gets_ended_and_the_stream_ends() {
    let app = start_with(&[]).await;
    let ann = app.login("ann").await;
    let cursor = Cursor(app.cursor(&ann).await);
    let mut events = client(&app, &ann).messages("chat", Some(cursor));
    assert!(app
        .server_fn(&ann, "logout", &[])
        .await
        .status()
        .is_success());
    loop {
        match next(&mut events).await {
            Event::Ended => break,
            Event::Message(_) => {}
            other => panic!("expected Ended, got {other:?}"),
        }
    }
    let after = tokio::time::timeout(PATIENCE, events.next()).await;
    assert!(matches!(after, Ok(None)), "{after:?}");
}

#[tokio::test]
async fn an_expired_cursor_gets_a_gap_then_goes_on_from_now() {
    // The tests' retention: 5 messages.
    let app = start_with(&[]).await;
    let ann = app.login("ann").await;
    let old = Cursor(app.cursor(&ann).await);
    for i in 0..8 {
        app.send(&ann, &i.to_string()).await;
    }
    let mut events = client(&app, &ann).messages("chat", Some(old));
    assert!(matches!(next(&mut events).await, Event::Gap));
    // Let the stream's "from now on" poll be taken before sending.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.send(&ann, "after").await;
    assert_eq!(next_chat(&mut events).await, "after");
}

#[tokio::test]
async fn an_unavailable_server_is_retried_after_its_retry_after() {
    let provider = Flaky::new();
    let shared: Arc<dyn Provider> = provider.clone();
    let app = start_on(&test_config(&[]), shared).await;
    let ann = app.login("ann").await;
    let cursor = Cursor(app.cursor(&ann).await);
    provider.refuse();
    let mut events = client(&app, &ann).messages("chat", Some(cursor));
    let (error, after) = match next(&mut events).await {
        Event::Retrying { error, after } => (error, after),
        other => panic!("expected Retrying, got {other:?}"),
    };
    let told = Instant::now();
    let ClientError::Status {
        status: 503,
        retry_after: Some(retry_after),
        ..
    } = error
    else {
        panic!("expected a 503 with Retry-After, got {error:?}");
    };
    assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
    assert!(after >= retry_after, "waits {after:?} < {retry_after:?}");
    provider.recover();
    assert!(app.send(&ann, "back").await.status().is_success());
    assert_eq!(next_chat(&mut events).await, "back");
    // It waited as told (the message was there all along), then came back
    // by itself.
    let waited = told.elapsed();
    assert!(
        waited + Duration::from_millis(50) >= after,
        "{waited:?} < {after:?}"
    );
    assert!(waited < after + Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn too_many_polls_are_reported_then_retried() {
    // The tests' limit: 2 polls per client at once.
    let app = start_with(&[]).await;
    let ann = app.login("ann").await;
    let cursor = app.cursor(&ann).await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/comet/chat"))
                .bearer_auth(&ann.token)
                .body(json!({ "since": cursor }).to_string());
            tokio::spawn(async move { request.send().await.unwrap().bytes().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut events = client(&app, &ann).messages("chat", Some(Cursor(cursor.clone())));
    match next(&mut events).await {
        Event::Retrying { error, .. } => assert_eq!(error.status(), Some(429), "{error}"),
        other => panic!("expected Retrying, got {other:?}"),
    }
    for poll in held {
        poll.await.unwrap().unwrap();
    }
    app.send(&ann, "through").await;
    let text = loop {
        match next(&mut events).await {
            Event::Message(m) => break chat_text(&m),
            Event::Retrying { error, .. } => assert_eq!(error.status(), Some(429)),
            other => panic!("expected a message, got {other:?}"),
        }
    };
    assert_eq!(text.as_deref(), Some("through"));
}

#[tokio::test]
async fn a_bad_request_is_a_failure_that_ends_the_stream() {
    let app = start_with(&[]).await;
    let ann = app.login("ann").await;
    let nonsense = Cursor("nonsense".into());
    let mut events = client(&app, &ann).messages("chat", Some(nonsense));
    match next(&mut events).await {
        Event::Failed(error) => assert_eq!(error.status(), Some(400), "{error}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let after = tokio::time::timeout(PATIENCE, events.next()).await;
    assert!(matches!(after, Ok(None)), "{after:?}");
}

#[tokio::test]
async fn a_poll_left_unanswered_is_given_up_past_the_poll_timeout_and_retried() {
    // A server that takes connections and never answers (hung, or a
    // proxy that lost its upstream).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hung = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = Client::new(format!("http://{addr}"), Auth::Bearer("t".into()))
        .poll_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let mut events = client.messages("chat", None);
    match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
        Ok(Some(Event::Retrying {
            error: ClientError::Connection(error),
            ..
        })) => assert!(error.is_timeout(), "{error}"),
        other => panic!("expected a timed-out poll, got {other:?}"),
    }
    // The poll timeout plus the client's 10 s for the way there and back.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(10_500) && took < Duration::from_secs(15),
        "{took:?}"
    );
    hung.abort();
}
