//! The HTTP front's bounds over raw TCP: the head, body, write and
//! keep-alive deadlines, the connection caps (per node and per address), and a poll
//! slot freed when its client closes, on either path. Framing is in
//! `http_front.rs`.

mod common;

use comet::serve::{self, Limits};
use common::front::{short_deadlines, start};
use common::http::{App, Session};
use common::raw::{get as get_req, Conn, Server, PATIENCE};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let server = start(short_deadlines()).0;
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
    let server = start(short_deadlines()).0;
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

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_keepalive_timeout() {
    let limits = Limits {
        keepalive_timeout: Duration::from_millis(300),
        ..short_deadlines()
    };
    let server = start(limits).0;
    let mut conn = server.connect().await;
    conn.send(get_req("/echo/a")).await;
    assert_eq!(conn.answer().await.status, 200);
    let started = std::time::Instant::now();
    let rest = tokio::time::timeout(PATIENCE, conn.rest())
        .await
        .expect("an idle connection is closed");
    assert!(rest.is_empty(), "closed with nothing more said: {rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// Sends `request` from a socket with a tiny receive window that never
/// reads, and checks that the reply (at least `size` bytes) waits counted
/// in [`serve::pending_write_bytes`], then is freed and the connection
/// reset at the write deadline.
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
    // Reset, not closed: a plain close would leave the unsent rest of the
    // reply in the server kernel's send buffer for as long as this end
    // stays open.
    let mut got = 0;
    let end = tokio::time::timeout(PATIENCE, async {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            match conn.stream.read(&mut chunk).await {
                Ok(0) => return None,
                Ok(n) => got += n,
                Err(error) => return Some(error.kind()),
            }
        }
    })
    .await
    .expect("the connection ends");
    assert_eq!(end, Some(std::io::ErrorKind::ConnectionReset));
    assert!(got < size, "the reply was cut, not delivered");
}

/// One test for both paths: the pending count is per process, and two
/// stalled replies at once would blur which one was freed.
#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_at_the_write_deadline_and_its_reply_freed() {
    // A router reply.
    let server = start(short_deadlines()).0;
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
    let app = App::at(server.addr);
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
    .0;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    for conn in [&mut a, &mut b] {
        conn.send(get_req("/echo/in")).await;
        assert_eq!(conn.answer().await.status, 200);
    }
    let mut c = server.connect().await;
    refused_at_accept(&mut c).await;
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
    refused_at_accept(&mut second).await;
    let mut other = from([127, 0, 0, 2]).await;
    other.send(get_req("/echo/b")).await;
    assert_eq!(other.answer().await.status, 200, "another address gets in");
}

/// Asserts that `conn` was refused at accept: closed with nothing read,
/// or with a bare `503`.
async fn refused_at_accept(conn: &mut Conn) {
    let answer = conn.rest().await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
        "{answer:?}"
    );
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
async fn poll_until(app: &App, s: &Session, cursor: &str, want: u16) {
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
    let app = App::at(server.addr);
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
    refused_at_accept(&mut refused).await;
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
