//! One connection: read a request, run it through the router, write the
//! response, and again while the client keeps the connection alive.
//!
//! Memory is the point (see `mod.rs`): an idle connection waits for
//! readability with no buffer at all, and the request buffer is released
//! before the handler runs, so a held poll costs its socket and the
//! handler's future.
//!
//! Deadlines ([`Limits`]) are one timer per phase, never one per read: the
//! keep-alive wait, the whole head (from its first byte), the whole body
//! (from the end of the head), each write (`write.rs`). A deadline whose
//! work is already done on its first poll starts no timer at all
//! (`deadline.rs`), so a poll whose head and body arrive in one segment
//! pays for no timer but the keep-alive wait.
//!
//! While a handler runs the socket is watched ([`unless_closed`]): a client
//! that closes (or resets) its socket has its handler dropped at once,
//! which for a held poll frees its poll slot.

use super::deadline::within;
use super::wire::{self, HeadScan, Refusal};
use super::write::{write_bytes, write_reply, write_response};
use super::{Limits, Reply, Shared, Shortcut};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response, StatusCode, Version};
use bytes::Bytes;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt;
use tracing::Instrument;

/// Bytes read at a time.
const READ_CHUNK: usize = 4096;
/// Pipelined bytes read (and kept) while a handler runs; past this the
/// socket is no longer watched for a close until the handler is done.
const PIPELINE_CAP: usize = 64 * 1024;

pub async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    ticket: super::accept::Ticket,
) {
    // Bytes received and not yet used: the next head, a body, or pipelined
    // requests. Empty (and unallocated) between requests.
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match serve_one(&mut stream, peer, &shared, &mut buf).await {
            Ok(true) => continue,
            Ok(false) => break,
            Err(Failure::Refused(refusal)) => {
                let answer = wire::refusal_response(&refusal);
                let _ = write_bytes(&stream, [&answer, &[]], shared.limits.write_timeout).await;
                break;
            }
            Err(Failure::Io(error)) => {
                tracing::debug!(%error, "connection closed");
                break;
            }
        }
    }
    // The connection's place under the caps is given back only once its
    // socket is closed.
    drop(stream);
    drop(ticket);
}

pub enum Failure {
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

fn too_slow(reason: &'static str) -> Failure {
    Failure::Refused(Refusal {
        status: StatusCode::REQUEST_TIMEOUT,
        reason,
    })
}

/// Serves one request; `Ok(false)` when the connection should close.
///
/// Shaped for size: a connection's task is as large as its largest state
/// for its whole life, a held poll's included, and a local that is
/// borrowed keeps its place in every state until its scope ends, even
/// once moved. So the request's head and body are read in their own
/// future ([`read_request`]) and consumed by a plain function ([`route`]);
/// what is left to wait on is a boxed handler or a shortcut's reply, and
/// three flags.
async fn serve_one(
    stream: &mut TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    buf: &mut Vec<u8>,
) -> Result<bool, Failure> {
    let Some((head, body)) = read_request(stream, shared, buf).await? else {
        return Ok(false);
    };
    match route(shared, head, body, peer) {
        Route::Shortcut(shortcut, reply, served) => {
            serve_shortcut(stream, buf, shared, shortcut, reply, served).await
        }
        Route::Router(handler, served) => serve_routed(stream, buf, shared, handler, served).await,
    }
}

/// What the answer's writing needs to know of the request.
#[derive(Clone, Copy)]
struct Served {
    keep_alive: bool,
    is_head: bool,
    version: Version,
}

type ShortcutReply = tracing::instrument::Instrumented<Pin<Box<dyn Future<Output = Reply> + Send>>>;
type Handler = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Who answers a request.
enum Route<'a> {
    Shortcut(&'a Arc<dyn Shortcut>, ShortcutReply, Served),
    /// Boxed: the router's request and its route future would otherwise be
    /// the largest state of every connection. The box lives only until
    /// the router answers: an early-acknowledged poll is held afterwards,
    /// in the response's body.
    Router(Handler, Served),
}

fn route(shared: &Shared, head: wire::RequestHead, body: Bytes, peer: SocketAddr) -> Route<'_> {
    let served = Served {
        keep_alive: wire::client_keeps_alive(head.version, &head.headers),
        is_head: head.method == Method::HEAD,
        version: head.version,
    };
    // Every log line of this request carries its id. Only the handler's
    // future is instrumented (not the connection), so a held poll's state
    // grows by the span alone.
    let span = tracing::info_span!(
        "request",
        id = next_request_id(),
        method = %head.method,
        path = %head.uri.path()
    );
    if let Some(shortcut) = &shared.app.shortcut {
        if let Some(reply) = shortcut.take(&head.method, &head.uri, &head.headers, body.clone()) {
            return Route::Shortcut(shortcut, reply.instrument(span), served);
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
    let handler = shared.app.router.clone().oneshot(request).instrument(span);
    Route::Router(Box::pin(handler), served)
}

async fn serve_shortcut(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    shortcut: &Arc<dyn Shortcut>,
    reply: ShortcutReply,
    served: Served,
) -> Result<bool, Failure> {
    let Some(reply) = unless_closed(stream, buf, reply).await else {
        return Ok(false);
    };
    // A stopping server answers what is in flight, then closes.
    let keep_alive = served.keep_alive && !shared.is_stopping();
    write_reply(stream, reply, served.is_head, keep_alive, &shared.limits).await?;
    if keep_alive {
        if let Some(wait) = shortcut.before_next_request() {
            wait.await;
        }
    }
    Ok(keep_alive)
}

async fn serve_routed(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    handler: Handler,
    served: Served,
) -> Result<bool, Failure> {
    let response = match unless_closed(stream, buf, handler).await {
        Some(Ok(response)) => response,
        Some(Err(never)) => match never {},
        None => return Ok(false),
    };
    let keep_alive = served.keep_alive && !shared.is_stopping();
    let limits = &shared.limits;
    write_response(
        stream,
        buf,
        response,
        served.is_head,
        served.version,
        keep_alive,
        limits,
    )
    .await
}

/// Reads a request's head and body; `None` when the connection should
/// close instead.
async fn read_request(
    stream: &mut TcpStream,
    shared: &Shared,
    buf: &mut Vec<u8>,
) -> Result<Option<(wire::RequestHead, Bytes)>, Failure> {
    let limits = &shared.limits;
    let Some(head) = read_head(stream, shared, buf).await? else {
        return Ok(None);
    };
    buf.drain(..head.len);
    let length = wire::body_length(&head.headers)?;
    if buf.len() < length {
        if wire::expects_continue(head.version, &head.headers) {
            write_bytes(
                stream,
                [b"HTTP/1.1 100 Continue\r\n\r\n", &[]],
                limits.write_timeout,
            )
            .await?;
        }
        let body = async {
            while buf.len() < length {
                if read_more(stream, buf).await? == 0 {
                    return Ok(false);
                }
            }
            Ok::<_, Failure>(true)
        };
        match within(limits.body_timeout(length), body).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(None),
            Ok(Err(failure)) => return Err(failure),
            Err(_) => return Err(too_slow("request body not received in time")),
        }
    }
    let body = Bytes::copy_from_slice(&buf[..length]);
    buf.drain(..length);
    if buf.is_empty() {
        // Nothing pipelined: give the buffer back before the handler runs,
        // which for a poll may be a long wait.
        *buf = Vec::new();
    }
    Ok(Some((head, body)))
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
    shared: &Shared,
    buf: &mut Vec<u8>,
) -> Result<Option<wire::RequestHead>, Failure> {
    let limits: &Limits = &shared.limits;
    let mut scan = HeadScan::default();
    if buf.is_empty() {
        if shared.is_stopping() {
            return Ok(None);
        }
        // Idle: wait for bytes without holding a buffer, and give way to
        // a shutdown. Readability first: a request that is already there
        // never registers on the stop token (shared by every connection).
        tokio::select! {
            biased;
            ready = within(limits.keepalive_timeout, readable(stream)) => match ready {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => return Ok(None),
            },
            _ = shared.stop.cancelled() => return Ok(None),
        }
    } else if let Some(head) = wire::parse_head(buf, &mut scan)? {
        // Pipelined: already here.
        return Ok(Some(head));
    }
    // One deadline for the whole head, from its first byte: a head
    // trickled a byte at a time cannot outlast it.
    let head = async {
        loop {
            if read_more(stream, buf).await? == 0 {
                return Ok(None);
            }
            if let Some(head) = wire::parse_head(buf, &mut scan)? {
                return Ok(Some(head));
            }
        }
    };
    match within(limits.head_timeout, head).await {
        Ok(result) => result,
        Err(_) => Err(too_slow("request head not received in time")),
    }
}

/// Waits until `stream` is readable, on the stream's own reader slot (a
/// connection has one reader): `TcpStream::readable()` queues on the
/// shared waiter list instead, and takes its lock again when it is dropped,
/// even when the bytes were already there.
async fn readable(stream: &TcpStream) -> io::Result<()> {
    std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await
}

thread_local! {
    static SCRATCH: std::cell::RefCell<[u8; READ_CHUNK]> =
        const { std::cell::RefCell::new([0; READ_CHUNK]) };
}

/// One `recv` into `buf` if bytes (or the end) are there; `Pending` if not.
/// The bytes land in a per-thread scratch buffer first and `buf` grows by
/// exactly what arrived: a request costs one small allocation, not a spare
/// 4 KB one. Through `poll_read` rather than `try_read`: a short read
/// clears the socket's readiness (the kernel's queue is empty), so the
/// close watch that follows a request registers its interest without a
/// second, empty `recv`.
fn poll_read_into(
    stream: &mut TcpStream,
    cx: &mut std::task::Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    SCRATCH.with_borrow_mut(|scratch| {
        let mut read = ReadBuf::new(scratch);
        match Pin::new(&mut *stream).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                buf.extend_from_slice(read.filled());
                Poll::Ready(Ok(read.filled().len()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// Reads what is available into `buf`; 0 at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    Ok(std::future::poll_fn(|cx| poll_read_into(stream, cx, buf)).await?)
}

/// Runs `work` while watching `stream`: `None`, with `work` dropped, as
/// soon as the client closes or resets the connection.
///
/// Bytes that arrive meanwhile are pipelined requests, not a close: they
/// are kept in `buf` (up to [`PIPELINE_CAP`]; past it the socket is left
/// unread, and unwatched, until `work` is done). A client that half-closes
/// its side after a request counts as gone, as for nginx.
///
/// Cost per request: registering read interest on the socket's reader slot
/// (a waker stored, no system call). The request was read by a short
/// `poll_read`, which left the socket not-ready, so the first poll here
/// finds nothing to do.
pub async fn unless_closed<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = pin!(work);
    let mut watching = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        while watching {
            match poll_read_into(stream, cx, buf) {
                Poll::Pending => break,
                Poll::Ready(Ok(0) | Err(_)) => {
                    tracing::debug!("client closed the connection; request cancelled");
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => watching = buf.len() < PIPELINE_CAP,
            }
        }
        Poll::Pending
    })
    .await
}
