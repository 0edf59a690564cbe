//! One connection: read a request, run it through the router, write the
//! response, and again while the client keeps the connection alive.
//!
//! Memory is the point (see `mod.rs`): an idle connection waits for
//! readability with no buffer at all, and the request buffer is released
//! before the handler runs, so a held poll costs its socket and the
//! handler's future. The response is assembled into one buffer and written
//! with one `write` when its length is known, which is one TCP segment per
//! poll reply.

use super::wire::{self, Framing, Refusal};
use super::{App, Reply};
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

/// An idle keep-alive connection (no request started) is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// A started request head or body must arrive within this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read at a time.
const READ_CHUNK: usize = 4096;

pub async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    app: App,
    stop: CancellationToken,
) {
    // Bytes received and not yet used: the next head, a body, or pipelined
    // requests. Empty (and unallocated) between requests.
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match serve_one(&mut stream, peer, &app, &stop, &mut buf).await {
            Ok(true) => continue,
            Ok(false) => return,
            Err(Failure::Refused(refusal)) => {
                let _ = stream.write_all(&wire::refusal_response(&refusal)).await;
                return;
            }
            Err(Failure::Io(error)) => {
                tracing::debug!(%error, "connection closed");
                return;
            }
        }
    }
}

enum Failure {
    Refused(Refusal),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Io(error)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

/// Serves one request; `Ok(false)` when the connection should close.
async fn serve_one(
    stream: &mut TcpStream,
    peer: SocketAddr,
    app: &App,
    stop: &CancellationToken,
    buf: &mut Vec<u8>,
) -> Result<bool, Failure> {
    let Some(head) = read_head(stream, stop, buf).await? else {
        return Ok(false);
    };
    buf.drain(..head.len);
    let length = wire::body_length(&head.headers)?;
    if buf.len() < length && wire::expects_continue(&head.headers) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    while buf.len() < length {
        if read_more(stream, buf, READ_TIMEOUT).await? == 0 {
            return Ok(false);
        }
    }
    let body = Bytes::copy_from_slice(&buf[..length]);
    buf.drain(..length);
    if buf.is_empty() {
        // Nothing pipelined: give the buffer back before the handler runs,
        // which for a poll may be a long wait.
        *buf = Vec::new();
    }
    let keep_alive = wire::client_keeps_alive(head.version, &head.headers);
    let is_head = head.method == Method::HEAD;
    // Every log line of this request carries its id. Only the handler's
    // future is instrumented (not this whole function), so a held poll's
    // state grows by the span alone.
    let span = tracing::info_span!(
        "request",
        id = next_request_id(),
        method = %head.method,
        path = %head.uri.path()
    );
    if let Some(shortcut) = &app.shortcut {
        if let Some(reply) = shortcut.take(&head.method, &head.uri, &head.headers, body.clone()) {
            drop(head);
            drop(body);
            let reply = reply.instrument(span).await;
            let keep_alive = write_reply(stream, reply, is_head, keep_alive).await?;
            if keep_alive {
                if let Some(wait) = shortcut.before_next_request() {
                    wait.await;
                }
            }
            return Ok(keep_alive);
        }
    }
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = head.method;
    *request.uri_mut() = head.uri;
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers;
    // The socket's address, for handlers that limit per address (axum's
    // `ConnectInfo` extractor reads it).
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = match app.router.clone().oneshot(request).instrument(span).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    write_response(stream, response, is_head, keep_alive).await
}

/// A number per request, unique in this process, for the logs. Each
/// thread takes a block of a million numbers at a time, so requests on
/// different threads do not all increment one shared counter.
fn next_request_id() -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    const BLOCK: u64 = 1 << 20;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    NEXT.with(|next| {
        let (mut id, mut end) = next.get();
        if id == end {
            id = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * BLOCK + 1;
            end = id + BLOCK - 1;
        }
        next.set((id + 1, end));
        id
    })
}

/// Waits for a whole request head; `None` when the client closed, went
/// idle too long, or the server is stopping between requests.
async fn read_head(
    stream: &mut TcpStream,
    stop: &CancellationToken,
    buf: &mut Vec<u8>,
) -> Result<Option<wire::RequestHead>, Failure> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = wire::parse_head(buf)? {
                return Ok(Some(head));
            }
        } else {
            // Idle: wait for bytes without holding a buffer, and give way to
            // a shutdown. Readability first: a request that is already
            // there never registers on the stop token (shared by every
            // connection).
            tokio::select! {
                biased;
                ready = tokio::time::timeout(IDLE_TIMEOUT, readable(stream)) => match ready {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(error.into()),
                    Err(_) => return Ok(None),
                },
                _ = stop.cancelled() => return Ok(None),
            }
        }
        if read_more(stream, buf, READ_TIMEOUT).await? == 0 {
            return Ok(None);
        }
    }
}

/// Waits until `stream` is readable, on the stream's own reader slot (a
/// connection has one reader): `TcpStream::readable()` queues on the
/// shared waiter list instead, and takes its lock again when it is dropped,
/// even when the bytes were already there.
async fn readable(stream: &TcpStream) -> io::Result<()> {
    std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await
}

/// Reads what is available into `buf`; 0 at end of stream. The bytes land
/// in a per-thread scratch buffer first and `buf` grows by exactly what
/// arrived: a request costs one small allocation (not a spare 4 KB one),
/// and still one `recv`.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<usize, Failure> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<[u8; READ_CHUNK]> =
            const { std::cell::RefCell::new([0; READ_CHUNK]) };
    }
    let read = async {
        loop {
            readable(stream).await?;
            let read = SCRATCH.with_borrow_mut(|scratch| {
                let n = stream.try_read(scratch)?;
                buf.extend_from_slice(&scratch[..n]);
                Ok::<_, io::Error>(n)
            });
            match read {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            reason: "request not received in time",
        }
        .into()),
    }
}

/// A shortcut's reply: head and body in one write.
async fn write_reply(
    stream: &mut TcpStream,
    reply: Reply,
    is_head: bool,
    keep_alive: bool,
) -> Result<bool, Failure> {
    let mut out = Vec::with_capacity(256 + reply.body.len());
    let length = reply.body.len() as u64;
    wire::write_head(
        &mut out,
        reply.status,
        reply.headers.iter().map(|(name, value)| (name, value)),
        Framing::Length(length),
        keep_alive,
    );
    if !is_head {
        out.extend_from_slice(&reply.body);
    }
    stream.write_all(&out).await?;
    Ok(keep_alive)
}

async fn write_response(
    stream: &mut TcpStream,
    response: Response<Body>,
    is_head: bool,
    keep_alive: bool,
) -> Result<bool, Failure> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let no_body = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut out = Vec::with_capacity(512);
    if no_body {
        wire::write_head(&mut out, status, &parts.headers, Framing::None, keep_alive);
        stream.write_all(&out).await?;
        return Ok(keep_alive);
    }
    let body_error = |e: axum::Error| Failure::Io(io::Error::other(e));
    if let Some(length) = body.size_hint().exact() {
        // Known length (every poll reply, server functions, files): head and
        // body in one write.
        wire::write_head(
            &mut out,
            status,
            &parts.headers,
            Framing::Length(length),
            keep_alive,
        );
        out.reserve(length as usize);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(body_error)?.into_data() {
                out.extend_from_slice(&data);
            }
        }
        stream.write_all(&out).await?;
        return Ok(keep_alive);
    }
    // Streamed (server-rendered pages, early-ack polls): the head now, then
    // each piece as a chunk as it comes.
    wire::write_head(
        &mut out,
        status,
        &parts.headers,
        Framing::Chunked,
        keep_alive,
    );
    stream.write_all(&out).await?;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(body_error)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        out.clear();
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\r\n");
        if body.is_end_stream() {
            out.extend_from_slice(b"0\r\n\r\n");
            stream.write_all(&out).await?;
            return Ok(keep_alive);
        }
        stream.write_all(&out).await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    Ok(keep_alive)
}
