//! The JSON of `POST /comet/{channel}`, shared by the server and the browser
//! subscriber so the two cannot drift apart. DESIGN.md and the README
//! document it; it is a public contract, so change it only additively.

use serde::{Deserialize, Serialize};

/// An opaque, ordered position in a channel's log. Clients never look
/// inside; they send back the `id` of the last message they received.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl Cursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One message as it travels: `{"id": cursor, "n": name, "c": contents}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Cursor,
    /// The kind of message (`Headline`, [`CLIENT_JOINED`], …): the app names it.
    #[serde(rename = "n")]
    pub name: String,
    /// Any JSON the sender chose.
    #[serde(rename = "c")]
    pub contents: serde_json::Value,
}

/// The body of one poll: `{"since": "<cursor>"}` or `{"since": null}` for
/// "from now on". Unknown fields are refused rather than ignored, so a
/// misspelt `sinse` is a clear `400` instead of a silent "from now on".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    pub since: Option<Cursor>,
}

/// A successful poll's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PollReply {
    /// Everything pending for this client, in order (a bounded batch).
    Messages { messages: Vec<Message> },
    /// Nothing arrived within the connection timeout: poll again, same cursor.
    Timeout,
}

/// The body of every error answer: `{"error": code, "message": text}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Error codes of [`ErrorBody::error`].
pub mod codes {
    pub const UNKNOWN_CLIENT: &str = "unknown_client";
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const CURSOR_EXPIRED: &str = "cursor_expired";
    pub const TOO_MANY_POLLS: &str = "too_many_polls";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const INTERNAL: &str = "internal";
}

/// Sent to everyone when a client is initialised; contents [`Presence`].
pub const CLIENT_JOINED: &str = "ClientJoined";
/// Sent to everyone when a client is removed (logout or idle); contents [`Presence`].
pub const CLIENT_LEFT: &str = "ClientLeft";

/// Contents of [`CLIENT_JOINED`] and [`CLIENT_LEFT`]: who, by public token
/// and display name. Never the private token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub public: String,
    pub name: String,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}
