//! HTTP/1.x framing: request heads in (parsed by `httparse`), response
//! heads out. Kept apart from the connection loop so the rules about what is
//! refused (and why) sit in one place.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use std::io::Write;

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in a request.
const MAX_HEADERS: usize = 64;
/// Largest request body accepted (server-function forms, poll bodies).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// Bytes of the buffer the head took.
    pub len: usize,
}

/// Why a request cannot be served; answered, then the connection closes.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str) -> Self {
        Self { status, reason }
    }
}

/// A complete head at the start of `buf`, `None` if more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, Refusal> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large",
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many headers",
            ))
        }
        Err(_) => return Err(Refusal::new(StatusCode::BAD_REQUEST, "malformed request")),
    };
    let bad = |reason| Refusal::new(StatusCode::BAD_REQUEST, reason);
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("invalid method"))?;
    let uri: Uri = request
        .path
        .unwrap_or_default()
        .parse()
        .map_err(|_| bad("invalid request target"))?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("invalid header value"))?;
        headers.append(name, value);
    }
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        headers,
        len,
    }))
}

/// The request body's length, refusing what this server does not accept:
/// chunked request bodies (no client of this app sends them), conflicting
/// lengths (a request-smuggling shape) and bodies over [`MAX_BODY_BYTES`].
pub fn body_length(headers: &HeaderMap) -> Result<usize, Refusal> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(Refusal::new(
            StatusCode::LENGTH_REQUIRED,
            "send a Content-Length body, not a chunked one",
        ));
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let n: usize = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid Content-Length",
            ))?;
        if length.is_some_and(|l| l != n) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "conflicting Content-Length",
            ));
        }
        length = Some(n);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    Ok(length)
}

/// Whether the client wants the connection kept open after this request.
pub fn client_keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let connection = headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let has = |token: &str| {
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match version {
        Version::HTTP_10 => has("keep-alive"),
        _ => !has("close"),
    }
}

pub fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// How a response body is framed on the wire.
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
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
        Framing::None => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_head_and_waits_for_a_partial_one() {
        let raw = b"POST /comet/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse_head(raw).unwrap().expect("complete");
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri.path(), "/comet/chat");
        assert_eq!(head.len, raw.len() - 2);
        assert_eq!(body_length(&head.headers).unwrap(), 2);
        assert!(parse_head(&raw[..20]).unwrap().is_none());
    }

    #[test]
    fn refuses_smuggling_shapes_and_oversized_input() {
        let head = |extra: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            parse_head(raw.as_bytes()).unwrap().unwrap().headers
        };
        assert_eq!(
            body_length(&head("Transfer-Encoding: chunked\r\n"))
                .unwrap_err()
                .status,
            StatusCode::LENGTH_REQUIRED
        );
        assert!(body_length(&head("Content-Length: 1\r\nContent-Length: 2\r\n")).is_err());
        assert!(body_length(&head("Content-Length: -1\r\n")).is_err());
        assert_eq!(
            body_length(&head("Content-Length: 99999999\r\n"))
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            parse_head(huge.as_bytes()).unwrap_err().status,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let headers = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONNECTION, HeaderValue::from_static(v));
            h
        };
        assert!(client_keeps_alive(Version::HTTP_11, &HeaderMap::new()));
        assert!(!client_keeps_alive(Version::HTTP_11, &headers("close")));
        assert!(!client_keeps_alive(Version::HTTP_10, &HeaderMap::new()));
        assert!(client_keeps_alive(Version::HTTP_10, &headers("Keep-Alive")));
    }
}
