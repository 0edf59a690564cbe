//! How comet messages read on the chat page: one [`Line`] of the log per
//! chat message, presence changes as counted lines ("Ada and Bo joined",
//! "12 people left"), and the online list ([`OnlineUser`]) those same
//! changes keep current.

use super::{ChatText, CHAT_MESSAGE, PRIVATE_MESSAGE};
use comet::wire::{Member, PresenceChange, PRESENCE};
use comet::Message;
use serde::{Deserialize, Serialize};

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

    /// Something someone wrote (not a join, leave or notice): what an
    /// unread count counts.
    pub fn is_text(self) -> bool {
        matches!(self, LineKind::Chat | LineKind::Private)
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
    /// For a line that counts people ("12 people joined"): the names it
    /// knows, shown on hover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
}

impl Line {
    /// The lines for a comet message: none for a kind this page does not
    /// show (or contents it cannot read); one for a chat message; for a
    /// presence change, a line for who joined and one for who left (either
    /// may be missing, see [`presence_lines`]).
    pub fn from_message(message: &Message) -> Vec<Line> {
        let id = message.id.0.clone();
        match message.name.as_str() {
            CHAT_MESSAGE | PRIVATE_MESSAGE => {
                let Ok(c) = serde_json::from_value::<ChatText>(message.contents.clone()) else {
                    return Vec::new();
                };
                let kind = if message.name == PRIVATE_MESSAGE {
                    LineKind::Private
                } else {
                    LineKind::Chat
                };
                vec![Line {
                    id,
                    kind,
                    from: c.from_name,
                    from_public: c.from_public,
                    text: c.text,
                    at_ms: c.sent_at_ms,
                    to: c.to_name,
                    names: None,
                }]
            }
            PRESENCE => presence_of(message)
                .map(|change| presence_lines(&id, &change))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The presence change a message carries, if it is one.
pub fn presence_of(message: &Message) -> Option<PresenceChange> {
    (message.name == PRESENCE)
        .then(|| serde_json::from_value(message.contents.clone()).ok())
        .flatten()
}

/// How a presence change reads in the log: "Ada joined", "Ada, Bo and Cy
/// joined", "12 people joined", likewise for leaving. A name that both
/// left and joined in one change (a re-login, or a reload that made a new
/// session) is no news and is left out of both lines; the online list
/// still applies both ([`apply_presence`]).
pub fn presence_lines(id: &str, change: &PresenceChange) -> Vec<Line> {
    let news = |members: &[Member], others: &[Member]| -> Vec<Member> {
        members
            .iter()
            .filter(|m| !others.iter().any(|o| o.name == m.name))
            .cloned()
            .collect()
    };
    let joined = news(&change.joined, &change.left);
    let left = news(&change.left, &change.joined);
    [
        (LineKind::Join, "joined", joined, change.more_joined, "j"),
        (LineKind::Leave, "left", left, change.more_left, "l"),
    ]
    .into_iter()
    .filter_map(|(kind, verb, members, more, suffix)| {
        let text = crowd_text(&members, more, verb)?;
        let single = (members.len() == 1 && more == 0).then(|| members[0].clone());
        let counted = more > 0 || members.len() > LISTED;
        let names = (counted && !members.is_empty()).then(|| {
            let listed: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            match more {
                0 => listed.join(", "),
                more => format!("{} and {more} more", listed.join(", ")),
            }
        });
        Some(Line {
            id: format!("{id}-{suffix}"),
            kind,
            from: single.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
            from_public: single.map(|m| m.public).unwrap_or_default(),
            text,
            at_ms: change.at,
            to: None,
            names,
        })
    })
    .collect()
}

/// Most names a presence line spells out; more are counted.
const LISTED: usize = 3;

/// "Ada joined", "Ada and Bo joined", "Ada, Bo and Cy joined", "4 people
/// joined"; `None` for nobody.
fn crowd_text(members: &[Member], more: usize, verb: &str) -> Option<String> {
    let count = members.len() + more;
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    match (count, names.as_slice()) {
        (0, _) => None,
        (_, [one]) if more == 0 => Some(format!("{one} {verb}")),
        (_, [first @ .., last]) if more == 0 && count <= LISTED => {
            Some(format!("{} and {last} {verb}", first.join(", ")))
        }
        _ => Some(format!("{count} people {verb}")),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineUser {
    pub name: String,
    pub public: String,
}

/// Who is online: a snapshot, kept current by presence changes (the same
/// messages the log shows; no second mechanism). Idempotent: a join of
/// someone listed or a leave of someone absent changes nothing, so changes
/// already in the snapshot can be applied again. Sorted by name. Returns
/// whether the change was complete: if not (a crowd, over the cap), the
/// list lacks the members only counted, and the page re-reads it.
pub fn apply_presence(online: &mut Vec<OnlineUser>, change: &PresenceChange) -> bool {
    online.retain(|u| !change.left.iter().any(|m| m.public == u.public));
    let mut added = false;
    for m in &change.joined {
        if !online.iter().any(|u| u.public == m.public) {
            online.push(OnlineUser {
                name: m.name.clone(),
                public: m.public.clone(),
            });
            added = true;
        }
    }
    if added {
        online.sort_by_key(|u| u.name.to_lowercase());
    }
    change.is_complete()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            public: format!("pub-{name}"),
        }
    }

    fn change(joined: &[&str], left: &[&str]) -> PresenceChange {
        PresenceChange {
            joined: joined.iter().map(|n| member(n)).collect(),
            left: left.iter().map(|n| member(n)).collect(),
            ..PresenceChange::default()
        }
    }

    fn texts(change: &PresenceChange) -> Vec<(LineKind, String)> {
        presence_lines("7", change)
            .into_iter()
            .map(|l| (l.kind, l.text))
            .collect()
    }

    #[test]
    fn presence_follows_changes_in_order_and_applies_twice_alike() {
        let mut online = vec![];
        for c in [
            change(&["bo", "Al"], &[]),
            change(&["bo"], &[]),
            change(&["cy"], &["bo"]),
        ] {
            assert!(apply_presence(&mut online, &c));
            let once = online.clone();
            apply_presence(&mut online, &c);
            assert_eq!(online, once, "applying a change again changes nothing");
        }
        let names: Vec<_> = online.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["Al", "cy"]);
    }

    #[test]
    fn a_change_over_the_cap_says_the_list_is_incomplete() {
        let mut online = vec![];
        let crowd = PresenceChange {
            more_joined: 40,
            ..change(&["ada"], &[])
        };
        assert!(!apply_presence(&mut online, &crowd));
        assert_eq!(online.len(), 1);
    }

    #[test]
    fn a_few_names_are_listed_and_a_crowd_is_counted() {
        assert_eq!(
            texts(&change(&["Ada"], &[])),
            [(LineKind::Join, "Ada joined".into())]
        );
        assert_eq!(
            texts(&change(&["Ada", "Bo"], &[])),
            [(LineKind::Join, "Ada and Bo joined".into())]
        );
        assert_eq!(
            texts(&change(&["Ada", "Bo", "Cy"], &["Dee"])),
            [
                (LineKind::Join, "Ada, Bo and Cy joined".into()),
                (LineKind::Leave, "Dee left".into())
            ]
        );
        assert_eq!(
            texts(&change(&["Ada", "Bo", "Cy", "Dee"], &[])),
            [(LineKind::Join, "4 people joined".into())]
        );
        let crowd = PresenceChange {
            more_left: 10,
            ..change(&[], &["Ada", "Bo"])
        };
        assert_eq!(texts(&crowd), [(LineKind::Leave, "12 people left".into())]);
        let lines = presence_lines("7", &crowd);
        assert_eq!(lines[0].names.as_deref(), Some("Ada, Bo and 10 more"));
        let few = presence_lines("8", &change(&["Ada", "Bo"], &[]));
        assert_eq!(few[0].names, None, "named in the text already");
    }

    #[test]
    fn a_name_that_left_and_came_back_shows_no_line() {
        let relogin = PresenceChange {
            joined: vec![Member {
                name: "Ada".into(),
                public: "new".into(),
            }],
            left: vec![Member {
                name: "Ada".into(),
                public: "old".into(),
            }],
            ..PresenceChange::default()
        };
        assert!(texts(&relogin).is_empty());
        let mut online = vec![OnlineUser {
            name: "Ada".into(),
            public: "old".into(),
        }];
        apply_presence(&mut online, &relogin);
        assert_eq!(
            online.iter().map(|u| u.public.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        let with_others = PresenceChange {
            joined: vec![relogin.joined[0].clone(), member("Bo")],
            ..relogin
        };
        assert_eq!(texts(&with_others), [(LineKind::Join, "Bo joined".into())]);
    }
}
