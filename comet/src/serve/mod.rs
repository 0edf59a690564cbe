//! The HTTP/1.1 server: a small accept loop and connection loop of our own
//! in front of the axum router, instead of `axum::serve` or hyper.
//!
//! Why our own: a long-polling server's cost is what a connection costs
//! *while it waits*. hyper keeps an 8 KB read buffer and an 8 KB write
//! buffer per connection for its whole life, and `axum::serve` adds a large
//! HTTP/1-or-2 connection future; with 10 000 clients that was 17–30 KB of
//! resident memory per held poll (BENCHMARKS.md). Here a connection waiting
//! on a held poll keeps only its socket and the handler's future: the
//! request buffer is released before the handler runs, and the response's
//! head is assembled in one short-lived buffer and written with its body in
//! one vectored `write` (the body from its own buffer, never copied).
//!
//! What it supports is what browsers and HTTP clients send to this app:
//! HTTP/1.0 and 1.1, keep-alive, pipelining, `Content-Length` request
//! bodies (chunked request bodies get `411`), `Expect: 100-continue` (to
//! HTTP/1.1 only), `HEAD`, and streamed responses for server-rendered pages
//! and early-ack polls (chunked to HTTP/1.1; to HTTP/1.0, which has no
//! chunked, the bare body and then close). Every request goes through the
//! axum router, except those a [`Shortcut`] takes: the one request a
//! long-polling server sees thousands of times a second can be answered
//! without building a router request and response (the server itself knows
//! nothing about comet or chat). No TLS: put a TLS-terminating proxy in
//! front.
//!
//! It carries every byte of every user, so it defends itself the way
//! hyper and nginx do by default ([`Limits`]): a total deadline per request
//! head and body, a write deadline, a keep-alive timeout, TCP keepalive,
//! caps on open connections per node and per address, strict framing (a
//! proxy in front must not read our bytes differently), and a held request
//! is cancelled as soon as its client closes the socket.
//!
//! - `accept.rs`: connection caps and socket options, at accept.
//! - `conn.rs`: one connection: read a request, run the router, write the
//!   response, repeat.
//! - `read.rs`: reading a request's head and body under their deadlines,
//!   and the close watch while a handler runs.
//! - `write.rs`: writing responses under the write deadline.
//! - `deadline.rs`: a deadline whose timer starts only when work waits.
//! - `wire/`: parsing request heads, what their headers decide (body
//!   length, keep-alive, `100 Continue`), and writing response heads.
//! - `limits.rs`: the deadlines and caps, and their defaults.

mod accept;
mod conn;
mod deadline;
mod failure;
mod limits;
mod read;
mod watch;
mod wire;
#[cfg(test)]
mod wire_props;
mod write;

pub use limits::Limits;
pub use write::pending_write_bytes;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::Router;
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A listener with a deep accept queue: thousands of clients reconnecting
/// at once (after a restart) must queue, not be dropped and retry a second
/// later, as they would with the usual backlog of 128.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// A route the connection loop answers itself, bypassing the router.
///
/// **A shortcut bypasses the router's layers for the requests it takes.**
/// Whatever `tower` layers the router carries (middleware, security
/// headers, logging, limits) never see those requests nor their replies:
/// that is the point (no router request or response is built), and it is
/// why a shortcut is installed explicitly, in [`Routes::shortcut`], never
/// inferred from the router. An app that adds a layer which must apply to
/// the shortcut's requests either does the same inside its shortcut, or
/// leaves the shortcut out (`Routes::from(router)`) so that everything goes
/// through the router. A shortcut must answer exactly as the router would
/// for every request it takes (the poll shortcut is held to that by
/// `tests/poll_paths.rs`), so that which of the two answered can only be
/// seen in what it costs.
pub trait Shortcut: Send + Sync + 'static {
    /// The answer to this request, or `None` to leave it to the router.
    fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Pin<Box<dyn Future<Output = ShortcutResponse> + Send>>>;

    /// Called on a kept-alive connection after one of this shortcut's
    /// responses is written, before its next request is read: something to
    /// wait for first, or `None` to read at once. This is how a server
    /// that answers many waiting requests at once (a broadcast to held
    /// polls) writes all of those answers before it spends time reading the
    /// requests that follow them.
    fn before_next_request(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        None
    }
}

/// A shortcut's response: a status, a few headers, a body of known length
/// (for the poll shortcut, a [`PollResponse`](crate::PollResponse) as
/// written to the socket).
pub struct ShortcutResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

/// What a connection serves: the router, and an optional shortcut tried
/// first. A bare router converts into routes without a shortcut.
#[derive(Clone)]
pub struct Routes {
    pub router: Router,
    pub shortcut: Option<Arc<dyn Shortcut>>,
}

impl From<Router> for Routes {
    fn from(router: Router) -> Self {
        Self {
            router,
            shortcut: None,
        }
    }
}

/// What every connection of one server shares.
struct Shared {
    routes: Routes,
    limits: Limits,
    /// Cancelled when the server stops: idle connections close, in-flight
    /// answers say `Connection: close`.
    stop: CancellationToken,
    /// Set just before `stop` is cancelled, and read on every request:
    /// the token's own `is_cancelled` takes a lock that every connection
    /// shares.
    stopping: AtomicBool,
}

impl Shared {
    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

/// Serves `routes` until `shutdown` resolves; then stops accepting, closes
/// idle connections at once, answers requests in flight with
/// `Connection: close`, and returns when the last connection is done (or
/// after [`Limits::drain_timeout`] at worst). Steps 2 to 4 of a node's
/// [shutdown](crate#shutdown), which says what `shutdown` should do first.
pub async fn serve(
    listener: TcpListener,
    routes: impl Into<Routes>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let gate = accept::Gate::new(&limits);
    let drain = limits.drain_timeout;
    let shared = Arc::new(Shared {
        routes: routes.into(),
        limits,
        stop: CancellationToken::new(),
        stopping: AtomicBool::new(false),
    });
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: back off rather
                    // than spin, and keep serving the connections we have.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let ticket = match gate.admit(peer) {
            Ok(ticket) => ticket,
            Err(why) => {
                accept::refuse(stream, peer, why);
                continue;
            }
        };
        accept::tune(&stream, &shared.limits);
        connections.spawn(conn::serve_connection(stream, peer, shared.clone(), ticket));
    }
    drop(listener);
    shared.stopping.store(true, Ordering::Release);
    shared.stop.cancel();
    connections.close();
    if tokio::time::timeout(drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("gave up waiting for requests in flight");
    }
}
