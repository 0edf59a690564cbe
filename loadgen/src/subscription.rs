//! One client's long poll, whichever server it talks to: the request it
//! sends next and where it resumes from. The worker's poll loop, its
//! connection handling, timing and accounting are the same for both
//! protocols; only what is written and how a reply moves the cursor differ.
//!
//! - Ours (`proto.rs`): `POST /comet/chat` with `{"since": cursor}`; a
//!   reply is a batch of messages (or `timeout`), the cursor is the last
//!   message's id.
//! - Ours, several channels (`channels.rs`, the rooms scenario): `POST
//!   /comet` with a cursor per channel; a reply groups messages by channel,
//!   each channel's cursor moves to its own last id.
//! - Nchan (`nchan.rs`): `GET /sub/<channel>` with `If-Modified-Since` /
//!   `If-None-Match`; a reply is one message (several if multipart is on;
//!   or `408`), the cursor is the last one's `Last-Modified` and `Etag`.

use crate::channels::{self, ChannelsReply, Follow};
use crate::http::{Conn, Head, HttpError};
use crate::nchan;
use crate::proto::{self, CallError, PollReply, PollRequest};

pub enum Subscription {
    Comet {
        request: PollRequest,
        /// The last id received (`None`: from now on).
        cursor: Option<String>,
    },
    /// Ours, several channels in one poll.
    Channels(Follow),
    Nchan {
        request: nchan::SubscribeRequest,
        cursor: nchan::Cursor,
    },
}

/// What one answered poll carried.
pub enum Answer<'a> {
    /// Our server's batch (possibly `timeout`, with no messages).
    Batch(PollReply<'a>),
    /// Our poll of several channels: their messages channel by channel.
    Channels(ChannelsReply<'a>),
    /// Nchan's single message, or its timeout.
    Nchan(nchan::Reply<'a>),
}

impl Answer<'_> {
    /// Nothing arrived within the server's poll timeout.
    pub fn timed_out(&self) -> bool {
        match self {
            Answer::Batch(reply) => reply.status == "timeout",
            Answer::Channels(reply) => reply.timed_out(),
            Answer::Nchan(reply) => *reply == nchan::Reply::Timeout,
        }
    }

    /// Calls `f` with every message, oldest first: its text if it may be
    /// one of the load generator's (a chat message), `None` if it cannot
    /// be (a join, a leave, a body that is not text).
    pub fn each_text(&self, mut f: impl FnMut(Option<&str>)) {
        match self {
            Answer::Batch(reply) => reply.messages.iter().for_each(|m| f(chat_text(m))),
            Answer::Channels(reply) => reply
                .channels
                .values()
                .flatten()
                .for_each(|m| f(chat_text(m))),
            Answer::Nchan(nchan::Reply::Message(text)) => f(*text),
            Answer::Nchan(nchan::Reply::Messages(texts)) => texts.iter().for_each(|t| f(*t)),
            Answer::Nchan(nchan::Reply::Timeout) => {}
        }
    }
}

/// A chat message's text; `None` for any other kind.
fn chat_text<'a>(m: &'a proto::WireMessage<'_>) -> Option<&'a str> {
    (m.name == "ChatMessage")
        .then(|| m.contents.as_ref().and_then(|c| c.text.as_deref()))
        .flatten()
}

impl Subscription {
    /// Our server's poll for the client with `token`, from `cursor`
    /// (`None`: from now on).
    pub fn comet(host: &str, token: &str, cursor: Option<String>) -> Self {
        Subscription::Comet {
            request: PollRequest::new(host, token),
            cursor,
        }
    }

    /// Nchan's subscription to `channel`, from its oldest message.
    pub fn nchan(host: &str, channel: &str) -> Self {
        Subscription::Nchan {
            request: nchan::SubscribeRequest::new(host, channel),
            cursor: nchan::Cursor::default(),
        }
    }

    /// Our poll of several channels (`POST /comet`) from a cursor per
    /// channel.
    pub fn channels(host: &str, token: &str, cursors: Vec<(String, Option<String>)>) -> Self {
        Subscription::Channels(Follow::new(host, token, cursors))
    }

    /// Whether the server can send a poll's head as soon as it holds the
    /// poll (ours, with `Comet-Ack: early`); Nchan sends nothing until a
    /// message or its timeout, nor does our `POST /comet`, which has no
    /// early acknowledgement (its cursors come from `recent_messages`, so
    /// a message sent before the poll is held is still delivered).
    pub fn acks_early(&self) -> bool {
        matches!(self, Subscription::Comet { .. })
    }

    /// Writes the next poll; `early_ack` asks for the head at once (ours).
    pub async fn send(&self, conn: &mut Conn, early_ack: bool) -> Result<(), HttpError> {
        match self {
            Subscription::Comet { request, cursor } => {
                proto::send_poll(conn, request, cursor.as_deref(), early_ack).await
            }
            Subscription::Channels(follow) => conn.send_built(|out| follow.write(out)).await,
            Subscription::Nchan { request, cursor } => {
                conn.send_built(|out| request.write(cursor, out)).await
            }
        }
    }

    /// Reads an answer and moves the cursor past what it carried. A status
    /// that is not an answer is [`CallError::Status`]. A poll of several
    /// channels also calls `failed` with the code of each channel whose
    /// part failed; once none is left to follow, the answer is the `401`
    /// a poll of no channel the client is in gets.
    pub fn answer<'a>(
        &mut self,
        head: &Head,
        body: &'a [u8],
        mut failed: impl FnMut(&str),
    ) -> Result<Answer<'a>, CallError> {
        match self {
            Subscription::Channels(follow) => {
                if head.status != 200 {
                    return Err(CallError::Status(head.status));
                }
                let reply = channels::parse_reply(body)?;
                follow.advance(&reply).into_iter().for_each(&mut failed);
                if follow.channels().next().is_none() {
                    return Err(CallError::Status(401));
                }
                Ok(Answer::Channels(reply))
            }
            Subscription::Comet { cursor, .. } => {
                if head.status != 200 {
                    return Err(CallError::Status(head.status));
                }
                let reply = proto::parse_poll(body)?;
                if let Some(last) = reply.messages.last() {
                    *cursor = Some(last.id.clone().into_owned());
                }
                Ok(Answer::Batch(reply))
            }
            Subscription::Nchan { cursor, .. } => {
                nchan::read_reply(head, body, cursor).map(Answer::Nchan)
            }
        }
    }

    /// After `410 cursor_expired` (ours): poll from now on.
    pub fn resynchronise(&mut self) {
        match self {
            Subscription::Comet { cursor, .. } => *cursor = None,
            Subscription::Channels(follow) => follow.resynchronise(),
            Subscription::Nchan { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(reply: &[u8]) -> Head {
        crate::http::parse_head(reply).unwrap().unwrap().1
    }

    fn texts(answer: &Answer<'_>) -> Vec<Option<String>> {
        let mut out = Vec::new();
        answer.each_text(|t| out.push(t.map(str::to_owned)));
        out
    }

    #[test]
    fn our_batch_gives_chat_texts_and_moves_to_its_last_id() {
        let mut s = Subscription::comet("127.0.0.1:9", "ab", Some("7f-1".to_owned()));
        let body = br#"{"status":"messages","messages":[{"id":"7f-2","n":"ClientJoined","c":{"public":"x","name":"y","at":1}},{"id":"7f-3","n":"ChatMessage","c":{"f":"a","p":"b","m":"lg:r:0:0:5","t":1}}]}"#;
        let ok = head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
        let answer = s.answer(&ok, body, |_| {}).unwrap();
        assert!(!answer.timed_out());
        assert_eq!(texts(&answer), vec![None, Some("lg:r:0:0:5".to_owned())]);
        let Subscription::Comet { cursor, .. } = &s else {
            unreachable!()
        };
        assert_eq!(cursor.as_deref(), Some("7f-3"));
    }

    #[test]
    fn our_timeout_and_errors_keep_the_cursor() {
        let mut s = Subscription::comet("127.0.0.1:9", "ab", Some("7f-1".to_owned()));
        let ok = head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(s
            .answer(&ok, br#"{"status":"timeout"}"#, |_| {})
            .unwrap()
            .timed_out());
        let gone = head(b"HTTP/1.1 410 Gone\r\nContent-Length: 1\r\n\r\n");
        assert!(matches!(
            s.answer(&gone, b"{}", |_| {}),
            Err(CallError::Status(410))
        ));
        let mut out = Vec::new();
        let Subscription::Comet { request, cursor } = &s else {
            unreachable!()
        };
        request.write(cursor.as_deref(), false, &mut out);
        assert!(out.ends_with(br#"{"since":"7f-1"}"#));
        s.resynchronise();
        assert!(matches!(&s, Subscription::Comet { cursor: None, .. }));
    }

    #[test]
    fn an_nchan_message_is_one_text_and_a_timeout_none() {
        let mut s = Subscription::nchan("127.0.0.1:9", "lgab");
        assert!(!s.acks_early());
        let ok = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\
              Last-Modified: Mon, 30 Nov 2026 06:44:05 GMT\r\nEtag: 0\r\n\r\n",
        );
        let answer = s.answer(&ok, b"lg:r:0:0:5", |_| {}).unwrap();
        assert!(!answer.timed_out());
        assert_eq!(texts(&answer), vec![Some("lg:r:0:0:5".to_owned())]);
        let timeout = head(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n");
        let answer = s.answer(&timeout, b"", |_| {}).unwrap();
        assert!(answer.timed_out());
        assert!(texts(&answer).is_empty());
    }
}
