//! `multipart/mixed` bodies as Nchan sends them when a long poll finds
//! several messages waiting and `nchan_longpoll_multipart_response` is on:
//! each message is one part (`--<boundary>`, its headers, a blank line,
//! the message), oldest first, and the body ends with `--<boundary>--`.
//! The reply's `Last-Modified` / `Etag` are those of the last part.

use crate::proto::CallError;

const BAD: CallError = CallError::Parse("nchan_multipart");

/// The `boundary` parameter of a `multipart/…` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// The contents of every part of `body`, in order.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, CallError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body.strip_prefix(delimiter).ok_or(BAD)?;
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(BAD)?;
        // The part's headers end at the first blank line (none: it starts
        // with one).
        let start = if rest.starts_with(b"\r\n") {
            2
        } else {
            find(rest, b"\r\n\r\n").ok_or(BAD)? + 4
        };
        let part = &rest[start..];
        let mut next = Vec::with_capacity(delimiter.len() + 2);
        next.extend_from_slice(b"\r\n");
        next.extend_from_slice(delimiter);
        let end = find(part, &next).ok_or(BAD)?;
        out.push(&part[..end]);
        rest = &part[end + next.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_comes_from_a_multipart_content_type_only() {
        assert_eq!(
            boundary("multipart/mixed; boundary=xXUuJVYk"),
            Some("xXUuJVYk")
        );
        assert_eq!(boundary("Multipart/Mixed; Boundary=\"a b\""), Some("a b"));
        assert_eq!(boundary("text/plain; boundary=x"), None);
        assert_eq!(boundary("multipart/mixed"), None);
        assert_eq!(boundary("multipart/mixed; boundary="), None);
    }

    #[test]
    fn every_part_is_read_in_order_with_its_headers_left_out() {
        // As Nchan 1.3.6 sends three waiting messages.
        let body = b"--B1\r\nContent-Type: text/plain\r\n\r\nm1\r\n\
                     --B1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nm2\r\n\
                     --B1\r\n\r\nm3 with --B1 inside\r\n\
                     --B1--\r\n";
        let got = parts(body, "B1").unwrap();
        assert_eq!(got, [&b"m1"[..], b"m2", b"m3 with --B1 inside"]);
    }

    #[test]
    fn a_body_that_is_not_whole_is_an_error() {
        assert!(parts(b"m1", "B1").is_err());
        assert!(parts(b"--B1\r\n\r\nm1", "B1").is_err());
        assert!(parts(b"--B1\r\nContent-Type: text/plain\r\nm1\r\n--B1--", "B1").is_err());
    }
}
