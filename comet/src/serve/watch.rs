//! Watching a connection while its handler runs: a client that closes
//! (or resets) its socket has its handler dropped at once, which for a held
//! poll frees its poll slot. Also the one `recv` every read of a
//! connection goes through ([`poll_read_into`]).

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read at a time.
const READ_CHUNK: usize = 4096;
/// Pipelined bytes read (and kept) while a handler runs; past this the
/// socket is no longer watched for a close until the handler is done.
const PIPELINE_CAP: usize = 64 * 1024;

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
pub(super) fn poll_read_into(
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
