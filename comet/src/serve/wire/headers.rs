//! What a request's headers decide: its body's length (or its refusal),
//! whether the connection stays open, whether to send `100 Continue`.

use super::Refusal;
use axum::http::{header, HeaderMap, StatusCode, Version};

/// Largest request body accepted (server-function forms, poll bodies).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
