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

/// Where the search for the end of a head stopped, kept between reads so a
/// head arriving a byte at a time is scanned once in all (not once per
/// read, which is quadratic in its length) and parsed once, when complete.
#[derive(Debug, Default)]
pub struct HeadScan {
    scanned: usize,
}

/// A complete head at the start of `buf`, `None` if more bytes are needed.
///
/// Stricter than `httparse` alone, so that a proxy in front cannot read
/// these bytes differently from us: every line ends in CRLF (a bare LF,
/// which `httparse` accepts, is `400`); the head, up to and including its
/// blank line, is at most [`MAX_HEAD_BYTES`] (one byte more is `431`); an
/// HTTP/1.1 request has exactly one `Host` (RFC 9112 §3.2), any request at
/// most one.
pub fn parse_head(buf: &[u8], scan: &mut HeadScan) -> Result<Option<RequestHead>, Refusal> {
    let Some(end) = find_head_end(buf, scan)? else {
        return Ok(None);
    };
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(len)) => len,
        // A blank line before anything (our scan's CRLFCRLF at the start)
        // or a head httparse cannot finish where we found its end.
        Ok(httparse::Status::Partial) => {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "malformed request"))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many headers",
            ))
        }
        Err(_) => return Err(Refusal::new(StatusCode::BAD_REQUEST, "malformed request")),
    };
    let bad = |reason| Refusal::new(StatusCode::BAD_REQUEST, reason);
    if len != end {
        return Err(bad("malformed request"));
    }
    let method = Method::from_bytes(request.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("invalid method"))?;
    let target = request.path.unwrap_or_default();
    // A fragment never travels in a request (RFC 9112, 3.2): `Uri` would
    // drop it where httparse and a proxy keep it as part of the path, two
    // readings of one request.
    if target.contains('#') {
        return Err(bad("a fragment in the request target"));
    }
    let uri: Uri = target.parse().map_err(|_| bad("invalid request target"))?;
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
    match headers.get_all(header::HOST).iter().count() {
        0 if version == Version::HTTP_11 => return Err(bad("missing Host header")),
        0 | 1 => {}
        _ => return Err(bad("more than one Host header")),
    }
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        headers,
        len,
    }))
}

/// The length of the head at the start of `buf` (through its blank line),
/// scanning only bytes not scanned before. Refuses a bare LF and a head
/// longer than [`MAX_HEAD_BYTES`].
fn find_head_end(buf: &[u8], scan: &mut HeadScan) -> Result<Option<usize>, Refusal> {
    let limit = buf.len().min(MAX_HEAD_BYTES);
    let start = scan.scanned;
    // Line ends only: a head of a dozen lines is a dozen `memchr` hits, not
    // a comparison per byte.
    for i in memchr::memchr_iter(b'\n', &buf[start.min(limit)..limit]).map(|at| start + at) {
        if i == 0 || buf[i - 1] != b'\r' {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "lines must end in CRLF, not a bare LF",
            ));
        }
        if i >= 3 && buf[i - 3..i] == *b"\r\n\r" {
            scan.scanned = i + 1;
            return Ok(Some(i + 1));
        }
    }
    scan.scanned = limit;
    if buf.len() >= MAX_HEAD_BYTES {
        // No blank line within the limit: the head is longer than it.
        return Err(Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large",
        ));
    }
    Ok(None)
}

/// The request body's length, refusing what this server does not accept:
/// chunked request bodies (no client of this app sends them), a
/// `Content-Length` that is not plain digits (`+5`, `5 5`, `0x5`: a proxy
/// might read those differently), conflicting lengths (a request-smuggling
/// shape) and bodies over [`MAX_BODY_BYTES`].
pub fn body_length(headers: &HeaderMap) -> Result<usize, Refusal> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(Refusal::new(
            StatusCode::LENGTH_REQUIRED,
            "send a Content-Length body, not a chunked one",
        ));
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let n = content_length(value.as_bytes()).ok_or(Refusal::new(
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
    if length > MAX_BODY_BYTES as u64 {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    Ok(length as usize)
}

/// `1*DIGIT` (RFC 9110 §8.6), nothing else; `None` past `u64`.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether a `Connection` header line of the request names `token`; the
/// header is a comma-separated list and may come in several lines.
fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the client wants the connection kept open after this request.
pub fn client_keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    match version {
        Version::HTTP_10 => {
            connection_has(headers, "keep-alive") && !connection_has(headers, "close")
        }
        _ => !connection_has(headers, "close"),
    }
}

/// Whether to send `100 Continue`: only to HTTP/1.1, which defined it
/// (an HTTP/1.0 client would read it as the final answer).
pub fn expects_continue(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<RequestHead>, Refusal> {
        parse_head(raw, &mut HeadScan::default())
    }

    fn status(raw: &[u8]) -> StatusCode {
        parse(raw).unwrap_err().status
    }

    #[test]
    fn parses_a_complete_head_and_waits_for_a_partial_one() {
        let raw = b"POST /comet/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse(raw).unwrap().expect("complete");
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri.path(), "/comet/chat");
        assert_eq!(head.len, raw.len() - 2);
        assert_eq!(body_length(&head.headers).unwrap(), 2);
        assert!(parse(&raw[..20]).unwrap().is_none());
    }

    #[test]
    fn a_head_fed_a_byte_at_a_time_is_scanned_once_and_found_at_its_end() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
        let mut scan = HeadScan::default();
        let end = raw.len() - b"GET /next".len();
        for n in 1..end {
            assert!(parse_head(&raw[..n], &mut scan).unwrap().is_none());
            assert_eq!(scan.scanned, n, "each byte is scanned once");
        }
        let head = parse_head(&raw[..], &mut scan).unwrap().expect("complete");
        assert_eq!(head.len, end);
    }

    #[test]
    fn refuses_a_fragment_in_the_request_target() {
        // Found by the property test: `Uri` read "/#x" as "/", httparse as "/#x".
        assert_eq!(
            status(b"GET /#omet/chat HTTP/1.1\r\nHost: x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn refuses_smuggling_shapes_and_oversized_input() {
        let head = |extra: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            parse(raw.as_bytes()).unwrap().unwrap().headers
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
        assert!(parse(b"NOT HTTP\r\n\r\n").is_err());
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            status(huge.as_bytes()),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn content_length_is_digits_only() {
        let length = |value: &str| {
            let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n");
            body_length(&parse(raw.as_bytes()).unwrap().unwrap().headers).map_err(|r| r.status)
        };
        assert_eq!(length("5"), Ok(5));
        assert_eq!(length("005"), Ok(5));
        for bad in [
            "+5",
            "5 5",
            "0x5",
            "5,5",
            "",
            "5.0",
            "99999999999999999999999",
        ] {
            assert_eq!(length(bad), Err(StatusCode::BAD_REQUEST), "{bad:?}");
        }
    }

    #[test]
    fn a_bare_lf_anywhere_in_the_head_is_refused() {
        assert_eq!(
            status(b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\n\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\n\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(b"\nGET / HTTP/1.1\r\n"), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_head_limit_counts_through_the_blank_line_exactly() {
        let head_of = |len: usize| {
            let fixed = "GET / HTTP/1.1\r\nHost: x\r\nX: \r\n\r\n".len();
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
                "a".repeat(len - fixed)
            )
        };
        let fits = head_of(MAX_HEAD_BYTES);
        assert_eq!(fits.len(), MAX_HEAD_BYTES);
        assert_eq!(parse(fits.as_bytes()).unwrap().unwrap().len, MAX_HEAD_BYTES);
        let over = head_of(MAX_HEAD_BYTES + 1);
        assert_eq!(
            status(over.as_bytes()),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        // Also when it arrives in pieces (the limit is on the head, not on
        // a read).
        let mut scan = HeadScan::default();
        assert!(
            parse_head(&over.as_bytes()[..MAX_HEAD_BYTES - 1], &mut scan)
                .unwrap()
                .is_none()
        );
        assert!(parse_head(over.as_bytes(), &mut scan).is_err());
    }

    #[test]
    fn host_is_required_and_single_on_http_1_1() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn keep_alive_follows_version_and_every_connection_header() {
        let headers = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONNECTION, HeaderValue::from_static(v));
            }
            h
        };
        assert!(client_keeps_alive(Version::HTTP_11, &HeaderMap::new()));
        assert!(!client_keeps_alive(Version::HTTP_11, &headers(&["close"])));
        assert!(!client_keeps_alive(
            Version::HTTP_11,
            &headers(&["upgrade", "foo, Close"])
        ));
        assert!(!client_keeps_alive(Version::HTTP_10, &HeaderMap::new()));
        assert!(client_keeps_alive(
            Version::HTTP_10,
            &headers(&["Keep-Alive"])
        ));
        assert!(client_keeps_alive(
            Version::HTTP_10,
            &headers(&["te", "keep-alive"])
        ));
    }

    #[test]
    fn only_http_1_1_is_sent_100_continue() {
        let mut h = HeaderMap::new();
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        assert!(expects_continue(Version::HTTP_11, &h));
        assert!(!expects_continue(Version::HTTP_10, &h));
    }
}
