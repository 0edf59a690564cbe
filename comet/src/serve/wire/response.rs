//! Response heads out: the status line, the handler's headers and our
//! framing and connection headers; and the whole answer to a refusal.

use super::Refusal;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use std::io::Write;

/// How a response body is framed on the wire.
#[derive(Clone, Copy, Debug)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the connection closes. How a streamed
    /// body goes to an HTTP/1.0 client, which does not know chunked.
    Close,
    /// No body (HEAD, 204, 304): the handler's headers go out as they are.
    None,
}

/// Appends a response head to `out`. Framing and connection headers are
/// ours; the handler's versions of them are dropped.
pub fn write_head<'a>(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    framing: Framing,
    keep_alive: bool,
) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let ours = !matches!(framing, Framing::None);
    for (name, value) in headers {
        let framing_header = name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING;
        if name == header::CONNECTION || (ours && framing_header) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Close | Framing::None => {}
    }
    out.extend_from_slice(if keep_alive {
        b"connection: keep-alive\r\n\r\n"
    } else {
        b"connection: close\r\n\r\n"
    });
}

/// A complete plain-text answer for a refused request.
pub fn refusal_response(refusal: &Refusal) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        refusal.status.as_u16(),
        refusal.status.canonical_reason().unwrap_or(""),
        refusal.reason.len(),
        refusal.reason
    );
    out
}
