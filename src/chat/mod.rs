//! The chat app that shows `comet` off: a login page, a chat page, server
//! functions for everything the browser sends (`api`), and a hydrated
//! component that long-polls `/comet/chat` for everything it receives.
//!
//! - `api`: the server functions under `/api/`.
//! - `session`, `text`, `limits`, `args` (server only): who is calling,
//!   what they may type, how fast, and how malformed calls are answered.
//! - `login`: the login page at `/`.
//! - `room`: the chat page at `/chat`.
//! - this file: what a chat message looks like inside a comet message.

pub mod api;
#[cfg(feature = "ssr")]
pub mod args;
#[cfg(feature = "ssr")]
pub mod limits;
pub mod login;
pub mod room;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod text;

use crate::comet::wire::{Presence, CLIENT_JOINED, CLIENT_LEFT};
use crate::comet::Message;
use serde::{Deserialize, Serialize};

/// The comet channel the chat lives on.
pub const CHANNEL: &str = "chat";
/// A message to everyone.
pub const CHAT_MESSAGE: &str = "ChatMessage";
/// A message to one client (and back to its sender).
pub const PRIVATE_MESSAGE: &str = "PrivateMessage";

/// Contents of [`CHAT_MESSAGE`] and [`PRIVATE_MESSAGE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatText {
    /// From: display name.
    pub f: String,
    /// From: public token.
    pub p: String,
    /// The text, shown as text, never as HTML.
    pub m: String,
    /// Sent at, milliseconds since the Unix epoch.
    pub t: u64,
    /// To (public token), for a private message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// To (display name), for a private message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tn: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineKind {
    Chat,
    Private,
    Join,
    Leave,
    /// Said by this page itself (e.g. "messages were missed"), never sent.
    Notice,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Chat => "chat",
            LineKind::Private => "private",
            LineKind::Join => "join",
            LineKind::Leave => "leave",
            LineKind::Notice => "notice",
        }
    }
}

/// One line of the message list, as the page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    pub kind: LineKind,
    pub from: String,
    pub from_public: String,
    pub text: String,
    pub at_ms: u64,
    /// For a private message: to whom (display name).
    pub to: Option<String>,
}

impl Line {
    /// The line for a comet message, or `None` for a kind this page does
    /// not show (or contents it cannot read).
    pub fn from_message(message: &Message) -> Option<Line> {
        let id = message.id.0.clone();
        match message.name.as_str() {
            CHAT_MESSAGE | PRIVATE_MESSAGE => {
                let c: ChatText = serde_json::from_value(message.contents.clone()).ok()?;
                let kind = if message.name == PRIVATE_MESSAGE {
                    LineKind::Private
                } else {
                    LineKind::Chat
                };
                Some(Line {
                    id,
                    kind,
                    from: c.f,
                    from_public: c.p,
                    text: c.m,
                    at_ms: c.t,
                    to: c.tn,
                })
            }
            CLIENT_JOINED | CLIENT_LEFT => {
                let p: Presence = serde_json::from_value(message.contents.clone()).ok()?;
                let (kind, verb) = if message.name == CLIENT_JOINED {
                    (LineKind::Join, "joined")
                } else {
                    (LineKind::Leave, "left")
                };
                Some(Line {
                    id,
                    kind,
                    text: format!("{} {verb}", p.name),
                    from: p.name,
                    from_public: p.public,
                    at_ms: p.at,
                    to: None,
                })
            }
            _ => None,
        }
    }
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
    pub cursor: crate::comet::Cursor,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineUser {
    pub name: String,
    pub public: String,
}

/// Who is online: a snapshot, kept current by join and leave lines (the
/// same messages the log shows; no second mechanism). Sorted by name.
pub fn apply_presence(online: &mut Vec<OnlineUser>, line: &Line) {
    match line.kind {
        LineKind::Join => {
            if !online.iter().any(|u| u.public == line.from_public) {
                online.push(OnlineUser {
                    name: line.from.clone(),
                    public: line.from_public.clone(),
                });
                online.sort_by_key(|u| u.name.to_lowercase());
            }
        }
        LineKind::Leave => online.retain(|u| u.public != line.from_public),
        _ => {}
    }
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

    fn line(kind: LineKind, name: &str) -> Line {
        Line {
            id: String::new(),
            kind,
            from: name.into(),
            from_public: format!("pub-{name}"),
            text: String::new(),
            at_ms: 0,
            to: None,
        }
    }

    #[test]
    fn presence_follows_joins_and_leaves_in_order() {
        let mut online = vec![];
        for l in [
            line(LineKind::Join, "bo"),
            line(LineKind::Join, "Al"),
            line(LineKind::Join, "bo"),
            line(LineKind::Chat, "cy"),
            line(LineKind::Leave, "bo"),
            line(LineKind::Join, "cy"),
        ] {
            apply_presence(&mut online, &l);
        }
        let names: Vec<_> = online.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["Al", "cy"]);
    }

    #[test]
    fn a_name_always_gets_the_same_hue() {
        assert_eq!(name_hue("Ada"), name_hue("Ada"));
        assert!(name_hue("Ada") < 360);
        assert_ne!(name_hue("Ada"), name_hue("Grace"));
    }
}
