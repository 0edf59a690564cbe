//! The accept loop: HTTP/1.1 only, straight on hyper, instead of
//! `axum::serve`.
//!
//! Why not `axum::serve`: every held poll is an open connection, so what a
//! connection costs *while idle* is what 10 000 clients cost. `axum::serve`
//! runs each connection through hyper-util's auto (HTTP/1 or HTTP/2)
//! connection, whose future reserves room for an HTTP/2 connection too; the
//! whole future is moved into the task's heap allocation and so is resident
//! from the start. An HTTP/1-only connection is several times smaller.
//! Browsers poll over HTTP/1.1 here anyway (no TLS, so no HTTP/2).
//!
//! Also here: `TCP_NODELAY` (a held poll writes its headers first and its
//! body later, and Nagle would hold that second write until the client's
//! delayed ACK, up to 40 ms), a deep accept queue (thousands of clients
//! reconnecting at once after a restart must queue, not be dropped and retry
//! a second later), and a graceful shutdown that lets in-flight requests
//! finish, for a bounded time.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a graceful shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// A listener with a deep accept queue.
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

/// Serves `router` until `shutdown` resolves, then stops accepting and
/// waits (at most [`DRAIN`]) for the connections' requests in flight.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Reclaim sockets of clients that vanished mid-request.
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
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
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN) => tracing::warn!("gave up waiting for requests in flight"),
    }
}
