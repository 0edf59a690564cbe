//! The chat app that shows `comet` off: a login page, a chat page, server
//! functions for everything the browser sends (`api`), and a hydrated
//! component that long-polls `/comet` for everything it receives, in all
//! of the user's rooms at once.
//!
//! - `api`: the server functions under `/api/`.
//! - `session`, `text`, `limits` and `throttle`, `args` (server only): who
//!   is calling, what they may type, how fast, and how malformed calls are
//!   answered.
//! - `login`: the login page at `/`.
//! - `rooms` (server functions) and `membership` (server only): rooms,
//!   each a comet channel, the default one (`chat`) everyone's.
//! - `room`: the chat page at `/chat` and `/chat/{room}`; `opening`: what
//!   it reads first; `room_view`: the room on screen; `room_list`: the
//!   rooms beside it; `clock`: its times; `composer`: its message box;
//!   `people`: who is in the room; `live` (started in the browser only):
//!   what keeps it current; `reread` (browser only): the list of who is
//!   here read again after an incomplete change.
//! - `lines`: how comet messages read on the page: the log's lines (joins
//!   and leaves counted), and the online list presence keeps current.
//! - this file: what a chat message looks like inside a comet message, and
//!   what the chat page is given first (`History`).

pub mod api;
#[cfg(feature = "ssr")]
pub mod args;
pub mod clock;
pub mod composer;
#[cfg(feature = "ssr")]
pub mod limits;
pub mod lines;
pub mod live;
pub mod login;
#[cfg(feature = "ssr")]
pub mod membership;
pub mod opening;
pub mod people;
#[cfg(feature = "hydrate")]
pub mod reread;
pub mod room;
pub mod room_list;
pub mod room_view;
pub mod rooms;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod text;
#[cfg(feature = "ssr")]
pub mod throttle;

use comet::Message;
use serde::{Deserialize, Serialize};

/// The comet channel the chat lives on.
pub const CHANNEL: &str = "chat";
/// A message to everyone.
pub const CHAT_MESSAGE: &str = "ChatMessage";
/// A message to one client (and back to its sender).
pub const PRIVATE_MESSAGE: &str = "PrivateMessage";
/// A room opened or closed, said in the default room:
/// `{"name": room, "open": bool}`.
pub const ROOM: &str = "Room";

/// Contents of [`CHAT_MESSAGE`] and [`PRIVATE_MESSAGE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// The JSON keys are short (every poll reply repeats them); the Rust
/// names say what they are.
pub struct ChatText {
    /// The sender's display name.
    #[serde(rename = "f")]
    pub from_name: String,
    /// The sender's public token.
    #[serde(rename = "p")]
    pub from_public: String,
    /// The text, shown as text, never as HTML.
    #[serde(rename = "m")]
    pub text: String,
    /// Sent at, milliseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub sent_at_ms: u64,
    /// For a private message: the recipient's public token.
    #[serde(rename = "to", default, skip_serializing_if = "Option::is_none")]
    pub to_public: Option<String>,
    /// For a private message: the recipient's display name.
    #[serde(rename = "tn", default, skip_serializing_if = "Option::is_none")]
    pub to_name: Option<String>,
}

/// Your own session, as the chat page needs it (never the private token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub public: String,
}

/// What `/chat` renders first: who you are, the recent messages, and the
/// cursor to poll from so nothing between the two is lost or repeated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub me: Me,
    pub messages: Vec<Message>,
    pub cursor: comet::Cursor,
}

/// A stable hue (0–359) for a name, so a user has one colour everywhere.
pub fn name_hue(name: &str) -> u32 {
    // FNV-1a: tiny, stable across builds and targets.
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    hash % 360
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_keeps_its_short_json_keys() {
        let text = ChatText {
            from_name: "Ada".into(),
            from_public: "pub".into(),
            text: "hi".into(),
            sent_at_ms: 7,
            to_public: Some("to".into()),
            to_name: Some("Bo".into()),
        };
        let json = serde_json::to_value(&text).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"f": "Ada", "p": "pub", "m": "hi", "t": 7, "to": "to", "tn": "Bo"})
        );
        assert_eq!(serde_json::from_value::<ChatText>(json).unwrap(), text);
    }

    #[test]
    fn a_name_always_gets_the_same_hue() {
        assert_eq!(name_hue("Ada"), name_hue("Ada"));
        assert!(name_hue("Ada") < 360);
        assert_ne!(name_hue("Ada"), name_hue("Grace"));
    }
}
