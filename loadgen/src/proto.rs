//! The Comet Chat wire protocol as a client speaks it (see README.md, "Wire
//! protocol"): log in, fetch the cursor to poll from, poll, send, log out.
//! Plus the load generator's own message text, `lg:<run>:<publisher>:<seq>:
//! <unix nanos>[:padding]`, which lets every receiver compute end-to-end
//! latency and check order without any side channel.

use crate::http::{form_encode, Conn, HttpError, RequestHead};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// Why a protocol call failed.
#[derive(Debug)]
pub enum CallError {
    Http(HttpError),
    Timeout,
    /// A status the call does not expect (the body is not kept).
    Status(u16),
    /// A 2xx whose body or headers are not what the protocol promises.
    Parse(&'static str),
    /// The load generator itself gave up waiting (end of the scenario).
    Cancelled,
}

impl CallError {
    pub fn kind(&self) -> String {
        match self {
            CallError::Http(e) => e.kind().to_owned(),
            CallError::Timeout => "timeout".to_owned(),
            CallError::Status(s) => format!("status_{s}"),
            CallError::Parse(what) => format!("parse_{what}"),
            CallError::Cancelled => "cancelled".to_owned(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Http(e) => e.fmt(f),
            CallError::Timeout => f.write_str("timed out"),
            CallError::Status(s) => write!(f, "HTTP status {s}"),
            CallError::Parse(what) => write!(f, "unexpected answer ({what})"),
            CallError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> Self {
        CallError::Http(e)
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// `POST /api/login`: the private token from the `comet_token` cookie.
pub async fn login(conn: &mut Conn, name: &str, buf: &mut Vec<u8>) -> Result<String, CallError> {
    let mut body = String::with_capacity(9 + name.len());
    body.push_str("username=");
    form_encode(name, &mut body);
    let head = conn
        .request("POST", "/api/login", None, Some(FORM), body.as_bytes(), buf)
        .await?;
    if !(200..400).contains(&head.status) {
        return Err(CallError::Status(head.status));
    }
    let token = head.token.ok_or(CallError::Parse("no_cookie"))?;
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CallError::Parse("cookie"));
    }
    Ok(token)
}

/// `POST /api/recent_messages`: the cursor to start polling `room` (by
/// default the chat room) from.
pub async fn recent_cursor(
    conn: &mut Conn,
    token: &str,
    room: Option<&str>,
    buf: &mut Vec<u8>,
) -> Result<String, CallError> {
    #[derive(Deserialize)]
    struct History {
        cursor: String,
    }
    let mut form = String::new();
    if let Some(room) = room {
        form.push_str("room=");
        form_encode(room, &mut form);
    }
    let head = conn
        .request(
            "POST",
            "/api/recent_messages",
            Some(token),
            Some(FORM),
            form.as_bytes(),
            buf,
        )
        .await?;
    if head.status != 200 {
        return Err(CallError::Status(head.status));
    }
    let history: History = serde_json::from_slice(buf).map_err(|_| CallError::Parse("history"))?;
    Ok(history.cursor)
}

/// `POST /api/send_message` to `room` (by default the chat room).
pub async fn send_message(
    conn: &mut Conn,
    token: &str,
    text: &str,
    room: Option<&str>,
    form: &mut String,
    buf: &mut Vec<u8>,
) -> Result<(), CallError> {
    form.clear();
    form.push_str("text=");
    form_encode(text, form);
    if let Some(room) = room {
        form.push_str("&room=");
        form_encode(room, form);
    }
    let head = conn
        .request(
            "POST",
            "/api/send_message",
            Some(token),
            Some(FORM),
            form.as_bytes(),
            buf,
        )
        .await?;
    if head.status != 200 {
        return Err(CallError::Status(head.status));
    }
    Ok(())
}

/// `POST /api/logout`.
pub async fn logout(conn: &mut Conn, token: &str, buf: &mut Vec<u8>) -> Result<(), CallError> {
    let head = conn
        .request("POST", "/api/logout", Some(token), Some(FORM), b"", buf)
        .await?;
    if !(200..400).contains(&head.status) {
        return Err(CallError::Status(head.status));
    }
    Ok(())
}

/// One client's `POST /comet/chat` request, built once up to its
/// `Content-Length`: a poll then only adds its length and `{"since": cursor}`
/// (or null), with no formatting machinery on the hottest path.
pub struct PollRequest {
    /// Request line and headers, ending in `Content-Length: `.
    head: Vec<u8>,
    /// The same with `Comet-Ack: early`, which asks for the headers as soon
    /// as the poll is accepted, as the browser does until its first poll
    /// succeeds.
    early_head: Vec<u8>,
}

impl PollRequest {
    pub fn new(host: &str, token: &str) -> Self {
        let head = |extra| {
            let mut out = Vec::new();
            RequestHead {
                host,
                method: "POST",
                path: "/comet/chat",
                auth: Some(token),
                content_type: Some("application/json"),
                extra,
            }
            .write(&mut out);
            out.extend_from_slice(b"Content-Length: ");
            out
        };
        Self {
            head: head(""),
            early_head: head("Comet-Ack: early\r\n"),
        }
    }

    /// The whole request for a poll from `cursor`.
    pub fn write(&self, cursor: Option<&str>, early_ack: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(if early_ack {
            &self.early_head
        } else {
            &self.head
        });
        // Cursors are `<hex epoch>-<number>`: nothing to escape, but be safe.
        let keep = |b: &u8| *b != b'"' && *b != b'\\' && *b >= 0x20;
        let length = match cursor {
            Some(c) => br#"{"since":""}"#.len() + c.bytes().filter(keep).count(),
            None => br#"{"since":null}"#.len(),
        };
        push_decimal(out, length);
        out.extend_from_slice(b"\r\n\r\n");
        match cursor {
            Some(c) => {
                out.extend_from_slice(br#"{"since":""#);
                out.extend(c.bytes().filter(keep));
                out.extend_from_slice(br#""}"#);
            }
            None => out.extend_from_slice(br#"{"since":null}"#),
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes one poll (see [`PollRequest`]).
pub async fn send_poll(
    conn: &mut Conn,
    request: &PollRequest,
    cursor: Option<&str>,
    early_ack: bool,
) -> Result<(), HttpError> {
    conn.send_built(|out| request.write(cursor, early_ack, out))
        .await
}

/// A poll's answer, borrowing from the body.
#[derive(Deserialize)]
pub struct PollReply<'a> {
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(default, borrow)]
    pub messages: Vec<WireMessage<'a>>,
}

#[derive(Deserialize)]
pub struct WireMessage<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The message's kind (`"n"` on the wire).
    #[serde(rename = "n", borrow)]
    pub name: Cow<'a, str>,
    /// Chat contents (`"c"`); join/leave contents parse too (with no text).
    #[serde(rename = "c", default, borrow)]
    pub contents: Option<Contents<'a>>,
}

#[derive(Deserialize)]
pub struct Contents<'a> {
    /// A chat message's text (`"m"`).
    #[serde(rename = "m", default, borrow)]
    pub text: Option<Cow<'a, str>>,
}

pub fn parse_poll(body: &[u8]) -> Result<PollReply<'_>, CallError> {
    serde_json::from_slice(body).map_err(|_| CallError::Parse("poll"))
}

/// The load generator's message text.
pub fn message_text(run: &str, publisher: usize, seq: u64, sent_nanos: u64, pad: usize) -> String {
    let mut text = format!("lg:{run}:{publisher}:{seq}:{sent_nanos}");
    if pad > 0 {
        text.push(':');
        text.extend(std::iter::repeat_n('x', pad));
    }
    text
}

/// `(publisher, seq, sent_nanos)` if `text` is one of this run's messages.
pub fn parse_text(text: &str, run_prefix: &str) -> Option<(usize, u64, u64)> {
    let rest = text.strip_prefix(run_prefix)?;
    let mut parts = rest.splitn(4, ':');
    let publisher = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((publisher, seq, sent))
}

/// What `parse_text` strips first: `lg:<run>:`.
pub fn run_prefix(run: &str) -> String {
    format!("lg:{run}:")
}

/// `f`, or [`CallError::Timeout`] once `limit` has passed.
pub async fn timed<T>(
    limit: std::time::Duration,
    f: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(CallError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let t = message_text("abc", 2, 41, 1_700_000_000_123_456_789, 3);
        assert_eq!(
            parse_text(&t, &run_prefix("abc")),
            Some((2, 41, 1_700_000_000_123_456_789))
        );
        assert_eq!(parse_text(&t, &run_prefix("abd")), None);
        assert_eq!(parse_text("hello", &run_prefix("abc")), None);
    }

    #[test]
    fn poll_request_is_well_formed() {
        let request = PollRequest::new("127.0.0.1:9", "ab12");
        let mut out = Vec::new();
        request.write(Some("7f-12"), false, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"since":"7f-12"}"#);
        assert!(head.starts_with("POST /comet/chat HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(head.contains("\r\nAuthorization: Bearer ab12\r\n"));
        assert!(head.ends_with(&format!("\r\nContent-Length: {}", body.len())));
        assert!(!head.contains("Comet-Ack"));
        let mut out = Vec::new();
        request.write(None, true, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nComet-Ack: early\r\nContent-Length: 14\r\n\r\n{\"since\":null}"));
        let mut out = Vec::new();
        request.write(Some("a\"b"), false, &mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Content-Length: 14\r\n\r\n{\"since\":\"ab\"}"));
    }

    #[test]
    fn poll_reply_parses() {
        let body = br#"{"status":"messages","messages":[{"id":"ab-3","n":"Presence","c":{"joined":[{"public":"x","name":"y"}],"left":[],"more_joined":3,"at":1}},{"id":"ab-4","n":"ChatMessage","c":{"f":"a","p":"b","m":"lg:r:0:0:5","t":1}}]}"#;
        let reply = parse_poll(body).unwrap();
        assert_eq!(reply.status, "messages");
        assert_eq!(reply.messages.len(), 2);
        assert_eq!(reply.messages[1].id, "ab-4");
        assert!(reply.messages[0].contents.as_ref().unwrap().text.is_none());
        let reply = parse_poll(br#"{"status":"timeout"}"#).unwrap();
        assert!(reply.messages.is_empty());
    }
}
