//! The HTTP front's own test server, for the tests of `src/serve/` over
//! raw TCP: a small router that knows nothing of chat (an echo, a body
//! counter, big and streamed replies, and a handler held on gates), served
//! with the limits a test chooses.

use super::raw::Server;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use comet::serve::Limits;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// 1 MiB, the largest request body.
pub const MAX_BODY: usize = 1024 * 1024;
/// 16 KiB, the largest request head.
pub const MAX_HEAD: usize = 16 * 1024;

/// `/wait` says it has started on `entered`, then waits for `release`.
#[derive(Clone, Default)]
pub struct Gates {
    pub entered: Arc<Notify>,
    pub release: Arc<Notify>,
}

/// `/echo/{n}` answers `n`, `POST /body` the body's length, `/big/{n}`
/// `n` bytes, `/stream` a chunked reply, and `/wait` waits on `gates`.
pub fn router(gates: Gates) -> Router {
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

/// The router on a loopback port with `limits`, and its gates.
pub fn start(limits: Limits) -> (Server, Gates) {
    let gates = Gates::default();
    (Server::start(router(gates.clone()), limits), gates)
}

/// The router with the default limits.
pub fn plain() -> Server {
    start(Limits::default()).0
}

/// Deadlines short enough to reach in a test: 600 ms for a head or a
/// stalled write, 10 bytes/s for a body.
pub fn short_deadlines() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(600),
        min_body_rate: 10,
        write_timeout: Duration::from_millis(600),
        ..Limits::default()
    }
}
