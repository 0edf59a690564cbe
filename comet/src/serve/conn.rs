//! One connection: read a request, run it through the router, write the
//! response, and again while the client keeps the connection alive.
//!
//! Memory is the point (see `mod.rs`): an idle connection waits for
//! readability with no buffer at all, and the request buffer is released
//! before the handler runs, so a held poll costs its socket and the
//! handler's future.
//! Reading (the request's head and body under their deadlines, the close
//! watch while a handler runs) is in `read.rs`, writing in `write.rs`.

use super::failure::Failure;
use super::read::read_request;
use super::watch::unless_closed;
use super::wire;
use super::write::{write_bytes, write_response, write_shortcut_response};
use super::{Shared, Shortcut, ShortcutResponse};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response, Version};
use bytes::Bytes;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use tower::ServiceExt;
use tracing::Instrument;

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

/// Serves one request; `Ok(false)` when the connection should close.
///
/// Shaped for size: a connection's task is as large as its largest state
/// for its whole life, a held poll's included, and a local that is
/// borrowed keeps its place in every state until its scope ends, even
/// once moved. So the request's head and body are read in their own
/// future ([`read_request`]) and consumed by a plain function ([`route`]);
/// what is left to wait on is a boxed handler or a shortcut's response, and
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
        Route::Shortcut(shortcut, response, served) => {
            serve_shortcut(stream, buf, shared, shortcut, response, served).await
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

/// A shortcut's response on its way.
type PendingShortcutResponse =
    tracing::instrument::Instrumented<Pin<Box<dyn Future<Output = ShortcutResponse> + Send>>>;
type Handler = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Who answers a request.
enum Route<'a> {
    Shortcut(&'a Arc<dyn Shortcut>, PendingShortcutResponse, Served),
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
    if let Some(shortcut) = &shared.routes.shortcut {
        if let Some(response) =
            shortcut.answer(&head.method, &head.uri, &head.headers, body.clone())
        {
            return Route::Shortcut(shortcut, response.instrument(span), served);
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
    let router = shared.routes.router.clone();
    let handler = router.oneshot(request).instrument(span);
    Route::Router(Box::pin(handler), served)
}

async fn serve_shortcut(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    shortcut: &Arc<dyn Shortcut>,
    response: PendingShortcutResponse,
    served: Served,
) -> Result<bool, Failure> {
    let Some(response) = unless_closed(stream, buf, response).await else {
        return Ok(false);
    };
    // A stopping server answers what is in flight, then closes.
    let keep_alive = served.keep_alive && !shared.is_stopping();
    write_shortcut_response(stream, response, served.is_head, keep_alive, &shared.limits).await?;
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
