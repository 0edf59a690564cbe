//! What a [`Client`](super::Client)'s stream yields, and why a poll failed.

use crate::wire::{codes, ErrorBody};
use crate::Message;
use std::time::Duration;

/// One item of [`Client::messages`](super::Client::messages).
///
/// ```no_run
/// # use comet::client::Event;
/// # fn show(event: Event) {
/// match event {
///     Event::Message(m) => println!("{}: {}", m.name, m.contents),
///     Event::Gap => println!("(messages were missed)"),
///     Event::Retrying { error, after } => eprintln!("{error}; retrying in {after:?}"),
///     Event::Ended => println!("session ended: log in again"),
///     Event::Failed(error) => eprintln!("gave up: {error}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub enum Event {
    /// A message, in the channel's order; its `id` is the cursor the stream
    /// polls from next.
    Message(Message),
    /// `410`: the cursor was older than what the channel keeps, so messages
    /// were missed. The stream goes on "from now on". An app that shows
    /// history reloads it: drop this stream, read the history, and open a
    /// new stream from the cursor that came with it.
    Gap,
    /// `401`: the server does not know this client (never logged in,
    /// logged out, removed as idle). The stream ends after this.
    Ended,
    /// A poll failed in a way that may pass (no answer, `429`, `5xx`, an
    /// unreadable reply): the stream polls again, same cursor, `after` this
    /// wait (exponential back-off with jitter, never shorter than the
    /// server's `Retry-After`).
    Retrying {
        /// What went wrong.
        error: ClientError,
        /// How long the stream waits before the next poll.
        after: Duration,
    },
    /// A poll was refused in a way retrying cannot fix (`400`: the request
    /// is malformed; `404`: no such channel; …). The stream ends after this.
    Failed(ClientError),
}

/// Why one poll did not give messages.
///
/// ```no_run
/// # use comet::client::ClientError;
/// # fn show(error: ClientError) {
/// if let ClientError::Status { status: 429, retry_after, .. } = &error {
///     eprintln!("too many polls; the server asks for {retry_after:?}");
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No HTTP answer: refused, reset, or past the request timeout.
    #[error("no answer from the server: {0}")]
    Connection(#[from] reqwest::Error),
    /// The server answered with an error status.
    #[error("the server answered {status}{}", .error.as_ref().map(|e| format!(" {}: {}", e.error, e.message)).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// The protocol's error body, when the answer had one.
        error: Option<ErrorBody>,
        /// The answer's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A `200` whose body is not the protocol's JSON.
    #[error("the server's answer is not a poll reply: {0}")]
    Decode(#[source] serde_json::Error),
}

/// What the stream does after a failed poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    End,
    Resynchronise,
    Retry { retry_after: Option<Duration> },
    GiveUp,
}

impl ClientError {
    /// The HTTP status, when the server answered.
    ///
    /// ```no_run
    /// # fn show(error: comet::client::ClientError) {
    /// if error.status().is_none() {
    ///     eprintln!("the server did not answer: {error}");
    /// }
    /// # }
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Decode(_) => Some(200),
            ClientError::Connection(_) => None,
        }
    }

    /// What this failure makes the stream do (see the table in `mod.rs`).
    pub(super) fn next(&self) -> Next {
        let ClientError::Status {
            status,
            error,
            retry_after,
        } = self
        else {
            // No answer, or an unreadable one: the next may be fine.
            return Next::Retry { retry_after: None };
        };
        let code = error.as_ref().map(|e| e.error.as_str());
        match status {
            401 => Next::End,
            _ if code == Some(codes::UNKNOWN_CLIENT) => Next::End,
            410 => Next::Resynchronise,
            408 | 429 | 500..=599 => Next::Retry {
                retry_after: *retry_after,
            },
            _ => Next::GiveUp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, retry_after: Option<u64>) -> ClientError {
        ClientError::Status {
            status,
            error: code.map(|c| ErrorBody {
                error: c.into(),
                message: "m".into(),
            }),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn each_answer_decides_what_the_stream_does_next() {
        let retry = |secs: Option<u64>| Next::Retry {
            retry_after: secs.map(Duration::from_secs),
        };
        assert_eq!(status(401, Some("unknown_client"), None).next(), Next::End);
        assert_eq!(status(403, Some("unknown_client"), None).next(), Next::End);
        assert_eq!(
            status(410, Some("cursor_expired"), None).next(),
            Next::Resynchronise
        );
        assert_eq!(
            status(429, Some("too_many_polls"), None).next(),
            retry(None)
        );
        assert_eq!(status(503, None, Some(2)).next(), retry(Some(2)));
        assert_eq!(status(502, None, None).next(), retry(None));
        assert_eq!(status(408, None, None).next(), retry(None));
        assert_eq!(status(400, Some("bad_request"), None).next(), Next::GiveUp);
        assert_eq!(
            status(404, Some("unknown_channel"), None).next(),
            Next::GiveUp
        );
        let decode = ClientError::Decode(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(decode.next(), retry(None));
    }

    #[test]
    fn an_error_says_what_the_server_said() {
        let e = status(400, Some("bad_request"), None);
        assert_eq!(
            e.to_string(),
            "the server answered 400 bad_request: m",
            "{e}"
        );
        assert_eq!(
            status(502, None, None).to_string(),
            "the server answered 502"
        );
    }
}
