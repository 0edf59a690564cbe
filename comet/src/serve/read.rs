//! Reading from a connection: a request's head and body, each under its
//! own deadline.
//!
//! Deadlines ([`Limits`]) are one timer per phase, never one per read: the
//! keep-alive wait, the whole head (from its first byte), the whole body
//! (from the end of the head), each write (`write.rs`). A deadline whose
//! work is already done on its first poll starts no timer at all
//! (`deadline.rs`), so a poll whose head and body arrive in one segment
//! pays for no timer but the keep-alive wait.
//!
//! While a handler runs the socket is watched (`watch.rs`): a client that
//! closes (or resets) its socket has its handler dropped at once, which for
//! a held poll frees its poll slot.

use super::deadline::within;
use super::failure::Failure;
use super::watch::poll_read_into;
use super::wire::{self, HeadScan, Refusal};
use super::write::write_bytes;
use super::{Limits, Shared};
use axum::http::StatusCode;
use bytes::Bytes;
use std::io;
use tokio::net::TcpStream;

fn too_slow(reason: &'static str) -> Failure {
    Failure::Refused(Refusal {
        status: StatusCode::REQUEST_TIMEOUT,
        reason,
    })
}

/// Reads a request's head and body; `None` when the connection should
/// close instead.
pub(super) async fn read_request(
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

/// Reads what is available into `buf`; 0 at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    Ok(std::future::poll_fn(|cx| poll_read_into(stream, cx, buf)).await?)
}
