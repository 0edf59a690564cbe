//! Nchan's long-poll protocol as a client speaks it, so the same clients
//! can measure an nginx with Nchan (`--protocol nchan`) beside our server.
//!
//! - Subscribe: `GET /sub/<channel>`. A reply is one message: `200` with
//!   the message as its body (or, with `nchan_longpoll_multipart_response
//!   on` and several waiting, all of them as `multipart/mixed` parts, see
//!   `multipart.rs`) and where the last sits in the channel as
//!   `Last-Modified` (the second it was published) and `Etag` (its place
//!   within that second). The next poll sends them back as
//!   `If-Modified-Since` and `If-None-Match` and gets the message after
//!   it. The first poll sends neither. `408` says nothing arrived within
//!   the subscriber timeout: poll again from the same place.
//! - Publish: `POST /pub/<channel>` with the message as the body: `201`
//!   (someone was waiting) or `202` (stored only).
//! - Status: `GET /nchan_status` (`nchan_stub_status`) says how many
//!   subscribers wait, over all workers: Nchan sends no head before a
//!   message, so this is how the driver knows every poll is held before it
//!   publishes. (A channel's own info, `GET /pub/<channel>`, counts only
//!   the subscribers of the worker that answers.)
//!
//! There is no login: a client is a connection. The message body is the
//! load generator's usual text (`proto::message_text`), so latency and the
//! lost / duplicated / out-of-order tally work unchanged.

use crate::http::{Conn, Head, RequestHead};
use crate::multipart;
use crate::proto::CallError;

/// The channel of run `run` (a fresh one for every run).
pub fn channel(run: &str) -> String {
    format!("lg{run}")
}

/// Where a subscriber is in the channel: the `Last-Modified` and `Etag` of
/// the last message it got (none before the first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    last_modified: Option<String>,
    etag: Option<String>,
}

impl Cursor {
    /// Moves past the message `head` came with. A reply without both
    /// headers cannot say where it was, which Nchan never does: an error,
    /// not a silent restart from the oldest message.
    pub fn advance(&mut self, head: &Head) -> Result<(), CallError> {
        match (&head.last_modified, &head.etag) {
            (Some(modified), Some(etag)) => {
                self.last_modified = Some(modified.clone());
                self.etag = Some(etag.clone());
                Ok(())
            }
            _ => Err(CallError::Parse("nchan_message_id")),
        }
    }
}

/// One client's `GET /sub/<channel>`, built once up to the resume headers.
pub struct SubscribeRequest {
    head: Vec<u8>,
}

impl SubscribeRequest {
    pub fn new(host: &str, channel: &str) -> Self {
        let mut head = Vec::new();
        RequestHead {
            host,
            method: "GET",
            path: &format!("/sub/{channel}"),
            auth: None,
            content_type: None,
            extra: "",
        }
        .write(&mut head);
        Self { head }
    }

    /// The whole request for a poll from `cursor`.
    pub fn write(&self, cursor: &Cursor, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        if let Some(modified) = &cursor.last_modified {
            out.extend_from_slice(b"If-Modified-Since: ");
            out.extend_from_slice(modified.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(etag) = &cursor.etag {
            out.extend_from_slice(b"If-None-Match: ");
            out.extend_from_slice(etag.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// What one answered subscribe poll means.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// One message (its body; `None` if it is not UTF-8, so not ours).
    Message(Option<&'a str>),
    /// Several, oldest first (`nchan_longpoll_multipart_response on`).
    Messages(Vec<Option<&'a str>>),
    /// Nothing within the subscriber timeout.
    Timeout,
}

/// Reads a subscribe poll's answer and moves `cursor` past its message.
/// Any status but `200` and `408` is [`CallError::Status`].
pub fn read_reply<'a>(
    head: &Head,
    body: &'a [u8],
    cursor: &mut Cursor,
) -> Result<Reply<'a>, CallError> {
    match head.status {
        200 => {
            let reply = match &head.boundary {
                None => Reply::Message(std::str::from_utf8(body).ok()),
                Some(boundary) => Reply::Messages(
                    multipart::parts(body, boundary)?
                        .into_iter()
                        .map(|part| std::str::from_utf8(part).ok())
                        .collect(),
                ),
            };
            cursor.advance(head)?;
            Ok(reply)
        }
        408 => Ok(Reply::Timeout),
        status => Err(CallError::Status(status)),
    }
}

/// `POST /pub/<channel>` with `text` as the message.
pub async fn publish(
    conn: &mut Conn,
    channel: &str,
    text: &str,
    buf: &mut Vec<u8>,
) -> Result<(), CallError> {
    let path = format!("/pub/{channel}");
    let head = conn
        .request(
            "POST",
            &path,
            None,
            Some("text/plain"),
            text.as_bytes(),
            buf,
        )
        .await?;
    match head.status {
        200..=202 => Ok(()),
        status => Err(CallError::Status(status)),
    }
}

/// Where the bench's nginx serves `nchan_stub_status`.
pub const STATUS_PATH: &str = "/nchan_status";

/// How many subscribers Nchan holds, over all channels and workers (the
/// bench's nginx has one channel per run).
pub async fn subscribers(conn: &mut Conn, buf: &mut Vec<u8>) -> Result<u64, CallError> {
    let head = conn
        .request("GET", STATUS_PATH, None, None, b"", buf)
        .await?;
    match head.status {
        200 => parse_subscribers(buf),
        status => Err(CallError::Status(status)),
    }
}

/// The `subscribers: N` line of `nchan_stub_status`.
fn parse_subscribers(body: &[u8]) -> Result<u64, CallError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix("subscribers:"))
        })
        .and_then(|n| n.trim().parse().ok())
        .ok_or(CallError::Parse("nchan_status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(reply: &[u8]) -> Head {
        crate::http::parse_head(reply).unwrap().unwrap().1
    }

    /// Nchan's head for a message published at 06:44:05 with tag `etag`.
    fn message_head(etag: u32) -> Head {
        head(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\
                 Last-Modified: Mon, 30 Nov 2026 06:44:05 GMT\r\nEtag: {etag}\r\n\r\n"
            )
            .as_bytes(),
        )
    }

    fn request(cursor: &Cursor) -> String {
        let mut out = Vec::new();
        SubscribeRequest::new("127.0.0.1:9", "lgab12").write(cursor, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_first_poll_asks_for_the_channel_with_no_resume_headers() {
        let text = request(&Cursor::default());
        assert!(text.starts_with("GET /sub/lgab12 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("If-"));
        assert!(!text.contains("Content-Length"));
    }

    #[test]
    fn a_poll_resumes_after_the_message_it_got_last() {
        let mut cursor = Cursor::default();
        assert_eq!(
            read_reply(&message_head(3), b"lg:x:", &mut cursor).unwrap(),
            Reply::Message(Some("lg:x:"))
        );
        let text = request(&cursor);
        assert!(text.ends_with(
            "If-Modified-Since: Mon, 30 Nov 2026 06:44:05 GMT\r\nIf-None-Match: 3\r\n\r\n"
        ));
    }

    #[test]
    fn a_multipart_reply_gives_every_message_and_moves_past_the_last() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\
              Content-Type: multipart/mixed; boundary=B7\r\n\
              Last-Modified: Mon, 30 Nov 2026 06:44:05 GMT\r\nEtag: 4\r\n\r\n",
        );
        let body = b"--B7\r\nContent-Type: text/plain\r\n\r\nlg:a\r\n\
                     --B7\r\nContent-Type: text/plain\r\n\r\nlg:b\r\n--B7--\r\n";
        let mut cursor = Cursor::default();
        assert_eq!(
            read_reply(&h, body, &mut cursor).unwrap(),
            Reply::Messages(vec![Some("lg:a"), Some("lg:b")])
        );
        assert!(request(&cursor).ends_with("If-None-Match: 4\r\n\r\n"));
        // A broken batch moves nothing.
        let mut cursor = Cursor::default();
        assert!(read_reply(&h, b"--B7\r\n\r\nlg:a", &mut cursor).is_err());
        assert_eq!(cursor, Cursor::default());
    }

    #[test]
    fn a_timeout_keeps_the_place() {
        let mut cursor = Cursor::default();
        read_reply(&message_head(0), b"x", &mut cursor).unwrap();
        let before = cursor.clone();
        // Nchan's timeout repeats the Etag but has no Last-Modified.
        let timeout = head(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nEtag: 0\r\n\r\n");
        assert_eq!(
            read_reply(&timeout, b"", &mut cursor).unwrap(),
            Reply::Timeout
        );
        assert_eq!(cursor, before);
    }

    #[test]
    fn a_message_without_its_place_is_an_error_not_a_restart() {
        let mut cursor = Cursor::default();
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nEtag: 0\r\n\r\n");
        assert!(matches!(
            read_reply(&h, b"x", &mut cursor),
            Err(CallError::Parse(_))
        ));
        assert_eq!(cursor, Cursor::default());
    }

    #[test]
    fn other_statuses_are_errors() {
        let h = head(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(
            read_reply(&h, b"", &mut Cursor::default()),
            Err(CallError::Status(403))
        ));
    }

    #[test]
    fn the_status_page_gives_the_subscriber_count() {
        let body = b"total published messages: 0\nstored messages: 0\n\
                     shared memory used: 16K\nchannels: 1\nsubscribers: 1000\n\
                     redis pending commands: 0\nnchan version: 1.3.6\n";
        assert_eq!(parse_subscribers(body).unwrap(), 1000);
        assert!(parse_subscribers(b"channels: 1\n").is_err());
        assert!(parse_subscribers(b"subscribers: many\n").is_err());
    }
}
