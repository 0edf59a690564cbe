//! The HTTP front (`src/serve/`) byte for byte over TCP, like mini-redis's
//! `tests/server.rs`: pipelining, `100-continue`, the exact limits, `HEAD`,
//! HTTP/1.0, every framing refusal, the deadlines, the close watch, the
//! connection caps and a graceful stop. Most run against a small router of
//! their own (the loop knows nothing of chat); the poll-slot test runs the
//! chat app.

mod common;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use comet_chat::serve::{self, Limits};
use common::raw::{get as get_req, Conn, Server, PATIENCE};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

/// 1 MiB, the largest request body.
const MAX_BODY: usize = 1024 * 1024;
/// 16 KiB, the largest request head.
const MAX_HEAD: usize = 16 * 1024;

/// `/wait` says it has started on `entered`, then waits for `release`.
#[derive(Clone, Default)]
struct Gates {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

fn router(gates: Gates) -> Router {
    Router::new()
        .route("/echo/{n}", get(|Path(n): Path<String>| async move { n }))
        .route(
            "/body",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/big/{n}",
            get(|Path(n): Path<usize>| async move { vec![b'x'; n] }),
        )
        .route(
            "/stream",
            get(|| async {
                let pieces = ["one ", "two ", "three"]
                    .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())));
                Body::from_stream(futures::stream::iter(pieces))
            }),
        )
        .route(
            "/wait",
            get(move || async move {
                gates.entered.notify_one();
                gates.release.notified().await;
                "released"
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_BODY))
}

async fn start(limits: Limits) -> (Server, Gates) {
    let gates = Gates::default();
    (Server::start(router(gates.clone()), limits), gates)
}

async fn plain() -> Server {
    start(Limits::default()).await.0
}

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
    let server = plain().await;
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
    let (server, gates) = start(Limits::default()).await;
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
    let server = plain().await;
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
    let server = start(short_deadlines()).await.0;
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
    let server = plain().await;
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
    let server = plain().await;
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
    let server = plain().await;
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
    let server = plain().await;
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
    let server = plain().await;
    let mut conn = server.connect().await;
    conn.send(
        "GET /echo/a HTTP/1.1\r\nHost: t\r\nConnection: te\r\nConnection: foo, close\r\n\r\n",
    )
    .await;
    assert_eq!(conn.answer().await.header("connection"), Some("close"));
    assert!(conn.closed().await);
}

fn short_deadlines() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(600),
        min_body_rate: 10,
        write_timeout: Duration::from_millis(600),
        ..Limits::default()
    }
}

/// Writes `bytes` a byte every 100 ms until the server answers or closes;
/// what it answered.
async fn trickle(conn: &mut Conn, bytes: &[u8]) -> Vec<u8> {
    for byte in bytes.iter().cycle() {
        if conn.stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::select! {
            _ = conn.stream.readable() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    conn.rest().await
}

#[tokio::test]
async fn a_trickled_head_meets_one_deadline_for_the_whole_head() {
    let server = start(short_deadlines()).await.0;
    let mut conn = server.connect().await;
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        PATIENCE,
        trickle(&mut conn, b"GET /echo/a HTTP/1.1\r\nX-Long: "),
    )
    .await
    .expect("a slow head is cut off");
    assert!(answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test]
async fn a_trickled_body_meets_its_deadline() {
    let server = start(short_deadlines()).await.0;
    let mut conn = server.connect().await;
    // 600 ms for the head plus 20 bytes at 10 bytes/s: 2.6 s for the body;
    // a byte every 400 ms would need 8 s.
    conn.send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n")
        .await;
    let answer = tokio::time::timeout(PATIENCE, async {
        let mut sent = 0;
        loop {
            if sent < 19 && conn.stream.write_all(b"b").await.is_ok() {
                sent += 1;
            }
            tokio::select! {
                _ = conn.stream.readable() => break,
                _ = tokio::time::sleep(Duration::from_millis(400)) => {}
            }
        }
        conn.rest().await
    })
    .await
    .expect("a slow body is cut off");
    assert!(answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
}

/// Sends `request` from a socket with a tiny receive window that never
/// reads, and checks that the reply (at least `size` bytes) waits counted
/// in [`serve::pending_write_bytes`], then is freed and the connection
/// closed at the write deadline.
async fn stall(addr: std::net::SocketAddr, request: &str, size: usize) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = Conn::new(socket.connect(addr).await.unwrap());
    conn.send(request).await;
    let waited = tokio::time::timeout(PATIENCE, async {
        while serve::pending_write_bytes() < size {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the stalled reply is counted as pending");
    let freed = tokio::time::timeout(PATIENCE, async {
        while serve::pending_write_bytes() >= size {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "the reply's bytes are freed");
    let got = conn.rest().await;
    assert!(got.len() < size, "the reply was cut, not delivered");
}

/// One test for both paths: the pending count is per process, and two
/// stalled replies at once would blur which one was freed.
#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_at_the_write_deadline_and_its_reply_freed() {
    // A router reply.
    let server = start(short_deadlines()).await.0;
    let size = 16 * 1024 * 1024;
    stall(server.addr, &get_req(&format!("/big/{size}")), size).await;

    // A poll reply (the shortcut path): 60 messages of 100 000 characters
    // from an old cursor, more than the kernel's socket buffers take.
    let server = Server::chat(&[
        ("HTTP_WRITE_TIMEOUT", "600ms"),
        ("CHAT_MAX_MESSAGE_CHARS", "100000"),
        ("COMET_RETENTION_MESSAGES", "100"),
        ("CHAT_SEND_BURST", "100"),
    ])
    .await;
    let app = common::http::App {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    let long = "a".repeat(100_000);
    for _ in 0..60 {
        let sent = app.send(&s, &long).await;
        assert!(sent.status().is_success(), "{}", sent.status());
    }
    let request = poll_request(&s.token, &format!("\"{cursor}\""));
    stall(server.addr, &request, 5_000_000).await;
}

#[tokio::test]
async fn the_node_cap_refuses_at_accept_and_frees_a_place_on_close() {
    let server = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await
    .0;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    for conn in [&mut a, &mut b] {
        conn.send(get_req("/echo/in")).await;
        assert_eq!(conn.answer().await.status, 200);
    }
    let mut c = server.connect().await;
    let refused = c.rest().await;
    assert!(
        refused.is_empty() || refused.starts_with(b"HTTP/1.1 503"),
        "{refused:?}"
    );
    drop(a);
    // The server sees the close and gives the place back.
    let admitted = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut d = server.connect().await;
            let request = "GET /echo/again HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            // A refused connection may be reset under the write.
            let _ = d.stream.write_all(request.as_bytes()).await;
            if d.rest().await.starts_with(b"HTTP/1.1 200") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(admitted.is_ok(), "a closed connection frees its place");
}

#[tokio::test]
async fn the_address_cap_counts_each_client_address_apart() {
    let server = start(Limits {
        max_connections_per_addr: 1,
        ..Limits::default()
    })
    .await
    .0;
    let from = |ip: [u8; 4]| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        Conn::new(socket.connect(server.addr).await.unwrap())
    };
    let mut first = from([127, 0, 0, 1]).await;
    first.send(get_req("/echo/a")).await;
    assert_eq!(first.answer().await.status, 200);
    let mut second = from([127, 0, 0, 1]).await;
    let refused = second.rest().await;
    assert!(
        refused.is_empty() || refused.starts_with(b"HTTP/1.1 503"),
        "{refused:?}"
    );
    let mut other = from([127, 0, 0, 2]).await;
    other.send(get_req("/echo/b")).await;
    assert_eq!(other.answer().await.status, 200, "another address gets in");
}

#[tokio::test]
async fn a_graceful_stop_closes_idle_connections_and_answers_in_flight_with_close() {
    let (mut server, gates) = start(Limits {
        drain_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
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

/// A held poll, as raw bytes (`since` is JSON: `null` or a cursor).
fn poll_request(token: &str, since: &str) -> String {
    let body = format!("{{\"since\":{since}}}");
    format!(
        "POST /comet/chat HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Polls from `cursor` (where a message waits, so an admitted poll answers
/// at once) until it gets `want`, for at most [`PATIENCE`].
async fn poll_until(app: &common::http::App, s: &common::http::Session, cursor: &str, want: u16) {
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            let (status, _) = app.poll(s, Some(cursor)).await;
            if status.as_u16() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(result.is_ok(), "a poll never got {want}");
}

#[tokio::test]
async fn a_poll_whose_client_closed_its_socket_frees_its_slot_on_either_path() {
    let server = Server::chat(&[
        ("COMET_POLL_TIMEOUT", "20s"),
        ("COMET_IDLE_TIMEOUT", "30s"),
        ("COMET_MAX_POLLS_PER_CLIENT", "2"),
    ])
    .await;
    let app = common::http::App {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let s = app.login("ann").await;
    let cursor = app.cursor(&s).await;
    assert!(app.send(&s, "hi").await.status().is_success());
    // One poll through the shortcut, one through the router (an
    // early-acknowledged poll: its head is written, its body held).
    let mut plain = server.connect().await;
    plain.send(poll_request(&s.token, "null")).await;
    let mut early = server.connect().await;
    let request = poll_request(&s.token, "null").replacen("\r\n", "\r\nComet-Ack: early\r\n", 1);
    early.send(request).await;
    assert_eq!(early.head().await.0, 200, "the early acknowledgement");
    // Both slots taken: a third poll is refused while they are held ...
    poll_until(&app, &s, &cursor, 429).await;
    // ... and admitted as soon as one's client closes, long before the
    // 20 s poll timeout would have freed it: on the router path ...
    drop(early);
    poll_until(&app, &s, &cursor, 200).await;
    // ... and on the shortcut path.
    let mut again = server.connect().await;
    again.send(poll_request(&s.token, "null")).await;
    poll_until(&app, &s, &cursor, 429).await;
    drop(plain);
    poll_until(&app, &s, &cursor, 200).await;
    drop(again);
}

#[tokio::test]
async fn refused_and_open_connections_are_counted_in_metrics() {
    let server = Server::chat(&[("HTTP_MAX_CONNECTIONS", "1")]).await;
    let mut admitted = server.connect().await;
    admitted.send(get_req("/healthz")).await;
    assert_eq!(admitted.answer().await.status, 200);
    let mut refused = server.connect().await;
    let answer = refused.rest().await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
        "{answer:?}"
    );
    admitted.send(get_req("/metrics")).await;
    let metrics = admitted.answer().await.text();
    let refusals = metrics
        .lines()
        .find(|l| l.starts_with("http_connections_refused_total{reason=\"max_connections\"}"))
        .unwrap_or_else(|| panic!("no refusal count in:\n{metrics}"));
    let count: f64 = refusals.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{refusals}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_connections_open")),
        "no open-connection gauge in:\n{metrics}"
    );
}
