//! The HTTP front (`src/serve/`) byte for byte over TCP, like mini-redis's
//! `tests/server.rs`: pipelining, `100-continue`, the exact limits, `HEAD`,
//! HTTP/1.0, every framing refusal and a graceful stop, against a small
//! router of their own (the loop knows nothing of chat). The deadlines,
//! connection caps and poll slots are in `http_front_limits.rs`.

mod common;

use comet::serve::Limits;
use common::front::{plain, short_deadlines, start, MAX_BODY, MAX_HEAD};
use common::raw::{get as get_req, PATIENCE};
use std::time::Duration;

/// A head of exactly `len` bytes (through its blank line).
fn head_of_len(len: usize) -> String {
    let fixed = "GET /echo/h HTTP/1.1\r\nHost: t\r\nX: \r\n\r\n".len();
    format!(
        "GET /echo/h HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "a".repeat(len - fixed)
    )
}

#[tokio::test]
async fn a_hundred_pipelined_requests_in_one_write_get_a_hundred_answers_in_order() {
    let server = plain();
    let mut conn = server.connect().await;
    let all: String = (0..100).map(|i| get_req(&format!("/echo/{i}"))).collect();
    conn.send(all).await;
    for i in 0..100 {
        let answer = conn.answer().await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), i.to_string());
    }
}

#[tokio::test]
async fn requests_pipelined_behind_a_held_one_are_kept_not_taken_for_a_close() {
    let (server, gates) = start(Limits::default());
    let mut conn = server.connect().await;
    conn.send(get_req("/wait")).await;
    gates.entered.notified().await;
    // Arrives while the handler runs: the close watch reads it.
    conn.send(format!("{}{}", get_req("/echo/b"), get_req("/echo/c")))
        .await;
    // Give the watch time to read them before the handler ends (correct
    // code passes however long this is; it only lets a watch that took
    // them for a close be caught).
    tokio::time::sleep(Duration::from_millis(100)).await;
    gates.release.notify_one();
    assert_eq!(conn.answer().await.text(), "released");
    assert_eq!(conn.answer().await.text(), "b");
    assert_eq!(conn.answer().await.text(), "c");
}

#[tokio::test]
async fn expect_100_continue_is_answered_to_http_1_1_only() {
    let server = plain();
    let mut conn = server.connect().await;
    conn.send(
        "POST /body HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    )
    .await;
    let (status, _) = conn.head().await;
    assert_eq!(status, 100, "1.1 is told to go on before it sends the body");
    conn.send("abc").await;
    let answer = conn.answer().await;
    assert_eq!((answer.status, answer.text().as_str()), (200, "3"));

    // A 1.0 client that waits for a 100 Continue before its body gets
    // none: the server waits for the body until its deadline, and its first
    // (and only) answer is the 408.
    let server = start(short_deadlines()).0;
    let mut old = server.connect().await;
    old.send("POST /body HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .await;
    let all = old.rest().await;
    assert!(
        all.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&all)
    );
}

#[tokio::test]
async fn the_body_and_head_limits_are_exact() {
    let server = plain();
    let mut conn = server.connect().await;
    conn.send(format!(
        "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: {MAX_BODY}\r\n\r\n"
    ))
    .await;
    conn.send(vec![b'b'; MAX_BODY]).await;
    let answer = conn.answer().await;
    assert_eq!((answer.status, answer.text()), (200, MAX_BODY.to_string()));

    let mut conn = server.connect().await;
    conn.send(format!(
        "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    ))
    .await;
    assert_eq!(conn.answer().await.status, 413);

    let mut conn = server.connect().await;
    conn.send("POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    assert_eq!(conn.answer().await.status, 411);

    let mut conn = server.connect().await;
    conn.send(head_of_len(MAX_HEAD)).await;
    assert_eq!(conn.answer().await.status, 200, "a 16 KiB head passes");
    conn.send(head_of_len(MAX_HEAD + 1)).await;
    assert_eq!(conn.answer().await.status, 431, "16 KiB + 1 does not");
    assert!(conn.closed().await);
}

#[tokio::test]
async fn head_answers_carry_the_length_and_no_body() {
    let server = plain();
    let mut conn = server.connect().await;
    conn.send("HEAD /big/1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let answer = conn.answer_to(true).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-length"), Some("1000"));
    // No body bytes came: the next answer on the connection starts at once.
    conn.send(get_req("/echo/next")).await;
    assert_eq!(conn.answer().await.text(), "next");
}

#[tokio::test]
async fn http_1_0_closes_unless_kept_alive_and_never_gets_chunked() {
    let server = plain();
    let mut conn = server.connect().await;
    conn.send("GET /echo/a HTTP/1.0\r\n\r\n").await;
    let answer = conn.answer().await;
    assert_eq!((answer.status, answer.text().as_str()), (200, "a"));
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(conn.closed().await);

    let mut conn = server.connect().await;
    conn.send("GET /echo/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert_eq!(conn.answer().await.header("connection"), Some("keep-alive"));
    conn.send("GET /echo/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert_eq!(conn.answer().await.text(), "b");

    // A streamed body: chunked to 1.1, the bare body then close to 1.0.
    let mut conn = server.connect().await;
    conn.send(get_req("/stream")).await;
    let answer = conn.answer().await;
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
    assert_eq!(answer.text(), "one two three");
    let mut conn = server.connect().await;
    conn.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let answer = conn.answer().await;
    assert_eq!(answer.header("transfer-encoding"), None);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.text(), "one two three");
}

#[tokio::test]
async fn framing_a_proxy_might_read_differently_is_refused_with_400() {
    let server = plain();
    for (what, request) in [
        (
            "a signed length",
            "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
        ),
        (
            "a length with a space inside",
            "POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 1 2\r\n\r\nabc",
        ),
        ("a bare LF", "GET /echo/a HTTP/1.1\nHost: t\n\n"),
        ("no Host on 1.1", "GET /echo/a HTTP/1.1\r\n\r\n"),
        (
            "two Hosts",
            "GET /echo/a HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n",
        ),
    ] {
        let mut conn = server.connect().await;
        conn.send(request).await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.text());
        assert!(conn.closed().await, "{what}: the connection closes");
    }
}

#[tokio::test]
async fn connection_close_is_found_in_any_connection_header_line() {
    let server = plain();
    let mut conn = server.connect().await;
    conn.send(
        "GET /echo/a HTTP/1.1\r\nHost: t\r\nConnection: te\r\nConnection: foo, close\r\n\r\n",
    )
    .await;
    assert_eq!(conn.answer().await.header("connection"), Some("close"));
    assert!(conn.closed().await);
}

#[tokio::test]
async fn a_graceful_stop_closes_idle_connections_and_answers_in_flight_with_close() {
    let (mut server, gates) = start(Limits {
        drain_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let mut idle = server.connect().await;
    idle.send(get_req("/echo/a")).await;
    assert_eq!(idle.answer().await.status, 200);
    let mut busy = server.connect().await;
    busy.send(get_req("/wait")).await;
    gates.entered.notified().await;
    server.stop();
    assert!(idle.closed().await, "an idle connection closes at once");
    gates.release.notify_one();
    let answer = busy.answer().await;
    assert_eq!(answer.text(), "released");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(busy.closed().await);
    tokio::time::timeout(PATIENCE, &mut server.done)
        .await
        .expect("serve returns with its last connection, not after the drain bound")
        .unwrap();
}
