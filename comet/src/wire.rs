//! The JSON of `POST /comet/{channel}`, shared by the server and the browser
//! subscriber so the two cannot drift apart. The crate docs and the README's
//! "Wire protocol" document it; it is a public contract, so change it only
//! additively.

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
    /// The kind of message (`Headline`, [`PRESENCE`], …): the app names it.
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

/// The JSON body of a successful poll's response (`200`): on the server,
/// a poll's `PollOutcome` encoded; in a client, what it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PollReply {
    /// Everything pending for this client, in order (a bounded batch).
    Messages { messages: Vec<Message> },
    /// Nothing arrived within the connection timeout: poll again, same cursor.
    Timeout,
}

/// The body of a poll of several channels, `POST /comet`:
/// `{"channels": {"rust": "<cursor>", "lobby": null}}`, a cursor (or `null`:
/// from now on) per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRequest {
    pub channels: std::collections::BTreeMap<String, Option<Cursor>>,
}

/// A successful answer to a poll of several channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ChannelsReply {
    /// The channels with something to say: their pending messages, in
    /// order, by channel; and the channels whose part of the poll failed,
    /// with the error their own poll would have answered (`cursor_expired`,
    /// `unknown_channel`, `unknown_client`, `bad_request`).
    Messages {
        #[serde(default)]
        channels: std::collections::BTreeMap<String, Vec<Message>>,
        #[serde(default)]
        errors: std::collections::BTreeMap<String, ErrorBody>,
        /// See [`ChannelsReply::Timeout::cursors`].
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        cursors: std::collections::BTreeMap<String, Cursor>,
    },
    /// Nothing arrived in any of them: poll again, same cursors (but for
    /// those `cursors` names).
    Timeout {
        /// The channels asked for "from now on" (`null`) that had nothing
        /// in this reply, with where "now" was: poll them from here next, or
        /// what arrived between this reply and the next poll is missed.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        cursors: std::collections::BTreeMap<String, Cursor>,
    },
}

/// What a client of several channels does with a reply's `cursors`:
/// each channel it follows from now on (`None`) goes on from where the
/// server says "now" was, so what arrives between two polls is not
/// missed. A channel with a cursor of its own keeps it.
pub fn start_from(
    cursors: &mut std::collections::BTreeMap<String, Option<Cursor>>,
    starts: std::collections::BTreeMap<String, Cursor>,
) {
    for (channel, start) in starts {
        if let Some(cursor @ None) = cursors.get_mut(&channel) {
            *cursor = Some(start);
        }
    }
}

/// Most channels one poll may follow.
pub const MAX_CHANNELS_PER_POLL: usize = 64;

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
    /// The app's channel rules refuse it (joining, opening a channel).
    pub const REFUSED: &str = "refused";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const INTERNAL: &str = "internal";
}

/// Sent to everyone when clients joined or left; contents
/// [`PresenceChange`]. A channel coalesces the joins and leaves of a short
/// window (per node) into one such message, so a crowd arriving costs one
/// delivery per client per window rather than one per arrival.
pub const PRESENCE: &str = "Presence";

/// A client as presence names it: public token and display name. Never the
/// private token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub public: String,
    pub name: String,
}

/// Contents of [`PRESENCE`]: who joined and who left since the last one.
///
/// Idempotent to apply over a snapshot of who is online: add `joined`
/// (if absent), remove `left` (if present), in log order. One client is
/// never in both lists. At most a bounded number of members are listed per
/// list; `more_joined` / `more_left` count the rest, and a reader that
/// keeps an exact list re-reads its snapshot when either is not zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceChange {
    #[serde(default)]
    pub joined: Vec<Member>,
    #[serde(default)]
    pub left: Vec<Member>,
    /// Joins not listed in `joined` (over the cap).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_joined: usize,
    /// Leaves not listed in `left` (over the cap).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_left: usize,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub at: u64,
}

impl PresenceChange {
    /// Whether every change is listed (nothing counted only).
    pub fn is_complete(&self) -> bool {
        self.more_joined == 0 && self.more_left == 0
    }

    /// How many joined, listed or not.
    pub fn joined_count(&self) -> usize {
        self.joined.len() + self.more_joined
    }

    /// How many left, listed or not.
    pub fn left_count(&self) -> usize {
        self.left.len() + self.more_left
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
