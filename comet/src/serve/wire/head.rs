//! Request heads in: where a head ends (scanned once, however it arrives)
//! and what it says, refused where a proxy could read it differently.

use super::Refusal;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in a request.
const MAX_HEADERS: usize = 64;

#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// Bytes of the buffer the head took.
    pub len: usize,
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

#[cfg(test)]
mod tests {
    use super::super::body_length;
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
}
