//! Writing responses, each write under the write deadline.
//!
//! A client that stops reading must not pin a reply's bytes: a write not
//! done within [`Limits::write_timeout`] fails, the connection closes, and
//! the buffers go with it. A large reply's bytes exist once while they
//! wait: its body is written from its own buffer next to the head (one
//! vectored `write`, still one segment), not copied after it. A small one
//! (up to [`INLINE_BODY`], nearly every poll reply) is copied after its
//! head and sent with a plain `send`: the kernel's `writev` path costs
//! more than copying a few hundred bytes (BENCHMARKS.md, issue 13).
//!
//! The first attempt is a plain non-blocking write: a reply the socket
//! takes whole (nearly every poll reply) costs that one system call, no
//! timer and no counting. Only what is left over is counted in
//! [`pending_write_bytes`] (and the gauge `http_write_pending_bytes`) while
//! it waits for the client.

use super::failure::Failure;
use super::watch::unless_closed;
use super::wire::{self, Framing};
use super::{Limits, ShortcutResponse};
use axum::body::{Body, HttpBody};
use axum::http::{Response, StatusCode, Version};
use http_body_util::BodyExt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpStream;

/// Bodies up to this size are copied after their head and sent in one
/// buffer; larger ones are written from their own buffer.
pub const INLINE_BODY: usize = 16 * 1024;

static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Bytes of replies this process holds for clients that have not taken
/// them yet (all servers in the process together).
pub fn pending_write_bytes() -> usize {
    PENDING.load(Ordering::Relaxed)
}

/// Counts a waiting reply's bytes for as long as it waits.
struct Pending(usize);

impl Pending {
    fn new(bytes: usize) -> Self {
        let now = PENDING.fetch_add(bytes, Ordering::Relaxed) + bytes;
        metrics::gauge!("http_write_pending_bytes").set(now as f64);
        Self(bytes)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let now = PENDING.fetch_sub(self.0, Ordering::Relaxed) - self.0;
        metrics::gauge!("http_write_pending_bytes").set(now as f64);
    }
}

/// Writes `parts` one after the other, all within `timeout` (else
/// `TimedOut`).
///
/// The deadline's timer is made (boxed) only if the socket does not take
/// everything at once: this future is part of every connection's state,
/// and most writes never wait.
pub async fn write_bytes(
    stream: &TcpStream,
    parts: [&[u8]; 2],
    timeout: std::time::Duration,
) -> io::Result<()> {
    let total = parts[0].len() + parts[1].len();
    let slices = |written: usize| {
        let (a, b) = if written < parts[0].len() {
            (&parts[0][written..], parts[1])
        } else {
            (&[][..], &parts[1][written - parts[0].len()..])
        };
        [IoSlice::new(a), IoSlice::new(b)]
    };
    let first = if parts[1].is_empty() {
        stream.try_write(parts[0])
    } else {
        stream.try_write_vectored(&slices(0))
    };
    let mut written = match first {
        Ok(n) => n,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    if written == total {
        return Ok(());
    }
    let _pending = Pending::new(total);
    let mut timer = Box::pin(tokio::time::sleep(timeout));
    let rest = std::future::poll_fn(|cx| {
        while written < total {
            if timer.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(Err(None));
            }
            std::task::ready!(stream.poll_write_ready(cx)).map_err(Some)?;
            match stream.try_write_vectored(&slices(written)) {
                Ok(0) => return std::task::Poll::Ready(Err(Some(io::ErrorKind::WriteZero.into()))),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return std::task::Poll::Ready(Err(Some(error))),
            }
        }
        std::task::Poll::Ready(Ok(()))
    });
    match rest.await {
        Ok(()) => Ok(()),
        Err(Some(error)) => Err(error),
        Err(None) => {
            // The connection is closed next. A plain close would leave the
            // unsent part of the reply in the kernel's send buffer for as
            // long as the stalled client keeps its end open (up to the
            // socket buffer's size, megabytes, per connection); a reset
            // (zero linger, which never blocks) discards it at once.
            if let Err(error) = stream.set_zero_linger() {
                tracing::debug!(%error, "cannot set SO_LINGER");
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client did not take the reply in time",
            ))
        }
    }
}

/// A shortcut's response: head and body in one write.
pub async fn write_shortcut_response(
    stream: &TcpStream,
    response: ShortcutResponse,
    is_head: bool,
    keep_alive: bool,
    limits: &Limits,
) -> io::Result<()> {
    let body: &[u8] = if is_head { &[] } else { &response.body };
    let inline = body.len() <= INLINE_BODY;
    let mut head = Vec::with_capacity(256 + if inline { body.len() } else { 0 });
    wire::write_head(
        &mut head,
        response.status,
        response.headers.iter().map(|(name, value)| (name, value)),
        Framing::Length(response.body.len() as u64),
        keep_alive,
    );
    if inline {
        head.extend_from_slice(body);
        return write_bytes(stream, [&head, &[]], limits.write_timeout).await;
    }
    write_bytes(stream, [&head, body], limits.write_timeout).await
}

/// A router response. Known length: head and body in one write. Unknown
/// (server-rendered pages, early-acknowledged polls): chunked to HTTP/1.1,
/// and to HTTP/1.0 (which has no chunked) the bare body, then close.
/// `Ok(false)` when the connection must close after it.
///
/// The response's head is written into a buffer before anything waits, and
/// its header map dropped: an early-acknowledged poll is held in
/// [`write_streamed`], and keeps only its body stream there.
pub async fn write_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    response: Response<Body>,
    is_head: bool,
    version: Version,
    keep_alive: bool,
    limits: &Limits,
) -> Result<bool, Failure> {
    let deadline = limits.write_timeout;
    let (out, body, framing, keep_alive) = head_of(response, is_head, version, keep_alive);
    match framing {
        Framing::None => {
            write_bytes(stream, [&out, &[]], deadline).await?;
            Ok(keep_alive)
        }
        Framing::Length(length) => {
            write_whole(stream, out, body, length, deadline).await?;
            Ok(keep_alive)
        }
        Framing::Chunked | Framing::Close => {
            write_bytes(stream, [&out, &[]], deadline).await?;
            drop(out);
            let chunked = matches!(framing, Framing::Chunked);
            let open = write_streamed(stream, buf, body, chunked, deadline).await?;
            Ok(keep_alive && open)
        }
    }
}

/// The response's head, its body, how the body is framed, and whether the
/// connection stays open after it.
fn head_of(
    response: Response<Body>,
    is_head: bool,
    version: Version,
    keep_alive: bool,
) -> (Vec<u8>, Body, Framing, bool) {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let no_body = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let (framing, keep_alive) = if no_body {
        (Framing::None, keep_alive)
    } else if let Some(length) = body.size_hint().exact() {
        (Framing::Length(length), keep_alive)
    } else if version != Version::HTTP_10 {
        (Framing::Chunked, keep_alive)
    } else {
        (Framing::Close, false)
    };
    let mut out = Vec::with_capacity(512);
    wire::write_head(&mut out, status, &parts.headers, framing, keep_alive);
    (out, body, framing, keep_alive)
}

fn body_error(error: axum::Error) -> Failure {
    Failure::Io(io::Error::other(error))
}

/// A body of known length after its head `out`: a large single piece from
/// its own buffer, anything else joined after the head.
async fn write_whole(
    stream: &TcpStream,
    mut out: Vec<u8>,
    mut body: Body,
    length: u64,
    deadline: std::time::Duration,
) -> Result<(), Failure> {
    let mut first: Option<bytes::Bytes> = None;
    let head_len = out.len();
    let inline = length <= INLINE_BODY as u64;
    if inline {
        out.reserve(length as usize);
    }
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(body_error)?.into_data() else {
            continue;
        };
        if !inline && out.len() == head_len && first.is_none() {
            first = Some(data);
            continue;
        }
        if let Some(first) = first.take() {
            out.reserve(length as usize);
            out.extend_from_slice(&first);
        }
        out.extend_from_slice(&data);
    }
    let first = first.unwrap_or_default();
    write_bytes(stream, [&out, &first], deadline).await?;
    Ok(())
}

/// A body of unknown length, each piece as it comes: chunked, or bare
/// (then the connection closes). A client that leaves meanwhile (an
/// early-acknowledged poll is held here) ends it: `Ok(false)`.
async fn write_streamed(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut body: Body,
    chunked: bool,
    deadline: std::time::Duration,
) -> Result<bool, Failure> {
    loop {
        let Some(frame) = unless_closed(stream, buf, body.frame()).await else {
            return Ok(false);
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(body_error)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let mut out = Vec::with_capacity(data.len() + 16);
        if chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        let end = if !chunked {
            &b""[..]
        } else if body.is_end_stream() {
            &b"\r\n0\r\n\r\n"[..]
        } else {
            &b"\r\n"[..]
        };
        out.extend_from_slice(&data);
        out.extend_from_slice(end);
        drop(data);
        write_bytes(stream, [&out, &[]], deadline).await?;
        if chunked && body.is_end_stream() {
            return Ok(true);
        }
    }
    if chunked {
        write_bytes(stream, [b"0\r\n\r\n", &[]], deadline).await?;
    }
    Ok(true)
}
