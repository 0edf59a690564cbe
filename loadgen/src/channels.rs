//! The poll of several channels as a client speaks it (README.md, "Wire
//! protocol"): `POST /comet` with `{"channels": {"<name>": cursor|null, …}}`,
//! answered by `{"status":"messages","channels":{"<name>":[…]},"errors":{…}}`
//! or `{"status":"timeout"}`. Each channel keeps its own cursor, moved to
//! the last `id` its part of a reply carried, exactly as a poll of that
//! channel alone would be.
//!
//! A channel whose part failed answers at once, so polling it again would
//! spin: the follower drops it (and the caller counts the error), except
//! on `cursor_expired`, where it resumes that channel from now on.

use crate::http::RequestHead;
use crate::proto::{CallError, WireMessage};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One client's `POST /comet`: its head built once, up to its
/// `Content-Length`, and a cursor per channel it follows.
pub struct Follow {
    head: Vec<u8>,
    /// `(channel, last id received)`; `None`: from now on.
    cursors: Vec<(String, Option<String>)>,
}

/// A reply to a poll of several channels, borrowing from the body.
#[derive(Deserialize)]
pub struct ChannelsReply<'a> {
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(default, borrow)]
    pub channels: BTreeMap<Cow<'a, str>, Vec<WireMessage<'a>>>,
    #[serde(default, borrow)]
    pub errors: BTreeMap<Cow<'a, str>, ChannelError<'a>>,
}

/// A channel's part that failed: the error its own poll would have had.
#[derive(Deserialize)]
pub struct ChannelError<'a> {
    #[serde(borrow)]
    pub error: Cow<'a, str>,
}

impl ChannelsReply<'_> {
    pub fn timed_out(&self) -> bool {
        self.status == "timeout"
    }
}

pub fn parse_reply(body: &[u8]) -> Result<ChannelsReply<'_>, CallError> {
    serde_json::from_slice(body).map_err(|_| CallError::Parse("channels"))
}

/// Cursors are `<hex epoch>-<number>` and names plain words: nothing to
/// escape, but a stray quote or control byte is dropped rather than sent.
fn keep(b: &u8) -> bool {
    *b != b'"' && *b != b'\\' && *b >= 0x20
}

impl Follow {
    /// The client with `token` following `cursors` on `host`.
    pub fn new(host: &str, token: &str, cursors: Vec<(String, Option<String>)>) -> Self {
        let mut head = Vec::new();
        RequestHead {
            host,
            method: "POST",
            path: "/comet",
            auth: Some(token),
            content_type: Some("application/json"),
            extra: "",
        }
        .write(&mut head);
        head.extend_from_slice(b"Content-Length: ");
        Self { head, cursors }
    }

    /// The channels still followed.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.cursors.iter().map(|(name, _)| name.as_str())
    }

    /// The whole request for the next poll.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(16 + 40 * self.cursors.len());
        body.extend_from_slice(br#"{"channels":{"#);
        for (i, (name, cursor)) in self.cursors.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.push(b'"');
            body.extend(name.bytes().filter(keep));
            body.extend_from_slice(b"\":");
            match cursor {
                Some(c) => {
                    body.push(b'"');
                    body.extend(c.bytes().filter(keep));
                    body.push(b'"');
                }
                None => body.extend_from_slice(b"null"),
            }
        }
        body.extend_from_slice(b"}}");
        out.extend_from_slice(&self.head);
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&body);
    }

    /// Moves each channel's cursor past what `reply` carried for it, and
    /// handles the channels whose part failed (see the module docs).
    /// Returns those failures' codes, for the caller to count.
    pub fn advance<'a>(&mut self, reply: &'a ChannelsReply<'_>) -> Vec<&'a str> {
        for (name, messages) in &reply.channels {
            let Some(last) = messages.last() else {
                continue;
            };
            if let Some((_, cursor)) = self.cursors.iter_mut().find(|(n, _)| n == name) {
                *cursor = Some(last.id.clone().into_owned());
            }
        }
        let mut failed = Vec::new();
        for (name, error) in &reply.errors {
            failed.push(error.error.as_ref());
            if error.error == "cursor_expired" {
                if let Some((_, cursor)) = self.cursors.iter_mut().find(|(n, _)| n == name) {
                    *cursor = None;
                }
            } else {
                self.cursors.retain(|(n, _)| n != name);
            }
        }
        failed
    }

    /// Every channel from now on (after a `410` of the whole poll).
    pub fn resynchronise(&mut self) {
        for (_, cursor) in &mut self.cursors {
            *cursor = None;
        }
    }

    #[cfg(test)]
    pub fn cursor(&self, channel: &str) -> Option<&str> {
        self.cursors
            .iter()
            .find(|(n, _)| n == channel)
            .and_then(|(_, c)| c.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow() -> Follow {
        Follow::new(
            "127.0.0.1:9",
            "ab12",
            vec![
                ("chat".to_owned(), None),
                ("lgr-r0".to_owned(), Some("7f-1".to_owned())),
                ("lgr-r1".to_owned(), Some("7f-2".to_owned())),
            ],
        )
    }

    #[test]
    fn the_request_names_a_cursor_per_channel() {
        let mut out = Vec::new();
        follow().write(&mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            body,
            r#"{"channels":{"chat":null,"lgr-r0":"7f-1","lgr-r1":"7f-2"}}"#
        );
        assert!(head.starts_with("POST /comet HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(head.contains("\r\nAuthorization: Bearer ab12\r\n"));
        assert!(head.ends_with(&format!("\r\nContent-Length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["channels"]["lgr-r1"], "7f-2");
    }

    #[test]
    fn a_reply_moves_only_the_channels_it_carried() {
        let mut f = follow();
        let body = br#"{"status":"messages","channels":{"lgr-r1":[{"id":"7f-3","n":"Presence","c":{"joined":[],"left":[],"at":1}},{"id":"7f-4","n":"ChatMessage","c":{"f":"a","p":"b","m":"lg:r:1:0:5","t":1}}]},"errors":{}}"#;
        let reply = parse_reply(body).unwrap();
        assert!(!reply.timed_out());
        let texts: Vec<Option<&str>> = reply.channels["lgr-r1"]
            .iter()
            .map(|m| m.contents.as_ref().and_then(|c| c.text.as_deref()))
            .collect();
        assert_eq!(texts, [None, Some("lg:r:1:0:5")]);
        assert!(f.advance(&reply).is_empty());
        assert_eq!(f.cursor("lgr-r1"), Some("7f-4"));
        assert_eq!(f.cursor("lgr-r0"), Some("7f-1"));
        assert_eq!(f.cursor("chat"), None);
    }

    #[test]
    fn a_timeout_keeps_every_cursor() {
        let mut f = follow();
        let reply = parse_reply(br#"{"status":"timeout"}"#).unwrap();
        assert!(reply.timed_out());
        assert!(f.advance(&reply).is_empty());
        assert_eq!(f.cursor("lgr-r0"), Some("7f-1"));
        assert_eq!(f.channels().count(), 3);
    }

    #[test]
    fn an_expired_channel_resumes_from_now_and_a_lost_one_is_dropped() {
        let mut f = follow();
        let body = br#"{"status":"messages","channels":{},"errors":{"lgr-r0":{"error":"cursor_expired","message":"x"},"lgr-r1":{"error":"unknown_channel","message":"y"}}}"#;
        let reply = parse_reply(body).unwrap();
        assert_eq!(f.advance(&reply), ["cursor_expired", "unknown_channel"]);
        assert_eq!(f.channels().collect::<Vec<_>>(), ["chat", "lgr-r0"]);
        assert_eq!(f.cursor("lgr-r0"), None);
        assert!(parse_reply(b"{\"channels\":").is_err());
    }
}
