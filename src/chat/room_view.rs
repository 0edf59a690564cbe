//! The room on screen: its log, who is in it, who you are in it, and the
//! ids already shown. Shown whole from an [`Opened`] room (history and
//! who is here), then kept current one message at a time; moving to
//! another room shows that room whole again.

use super::lines::{apply_presence, presence_of, Line, OnlineUser};
use super::opening::Opened;
use super::room_list::RoomEntry;
use super::Me;
use comet::Message;
use leptos::prelude::*;
use std::collections::HashSet;

/// The shown room's state, as signals the page renders.
#[derive(Clone, Copy)]
pub struct RoomView {
    /// The room shown.
    pub room: RwSignal<String>,
    /// You, in this room (your public token differs per room).
    pub me: RwSignal<Me>,
    pub lines: RwSignal<Vec<Line>>,
    pub online: RwSignal<Vec<OnlineUser>>,
    /// Ids of the messages shown, so none is shown twice.
    pub seen: StoredValue<HashSet<String>>,
    /// Whom the composer writes to privately (someone in this room).
    pub to: RwSignal<Option<OnlineUser>>,
    pub rooms: RwSignal<Vec<RoomEntry>>,
}

impl RoomView {
    /// A view of `opened`; also whether its list of who is here is whole.
    pub fn new(opened: &Opened) -> (Self, bool) {
        let view = Self {
            room: RwSignal::new(opened.room.clone()),
            me: RwSignal::new(opened.history.me.clone()),
            lines: RwSignal::new(Vec::new()),
            online: RwSignal::new(Vec::new()),
            seen: StoredValue::new(HashSet::new()),
            to: RwSignal::new(None),
            rooms: RwSignal::new(Vec::new()),
        };
        let complete = view.show(opened);
        (view, complete)
    }

    /// Shows `opened` whole, in place of what was shown; whether its list
    /// of who is here is whole.
    pub fn show(&self, opened: &Opened) -> bool {
        let history = &opened.history;
        self.room.set(opened.room.clone());
        self.me.set(history.me.clone());
        self.to.set(None);
        self.seen
            .set_value(history.messages.iter().map(|m| m.id.0.clone()).collect());
        self.lines.set(
            history
                .messages
                .iter()
                .flat_map(Line::from_message)
                .collect(),
        );
        // The snapshot was taken before the history was read: replaying the
        // history's presence changes on it gives who was here at the cursor
        // (changes are idempotent, so those already in the snapshot do no harm).
        let mut people = opened.online.clone();
        people.sort_by_key(|u| u.name.to_lowercase());
        let mut complete = true;
        for change in history.messages.iter().filter_map(presence_of) {
            complete &= apply_presence(&mut people, &change);
        }
        self.online.set(people);
        self.rooms.update(|rooms| {
            // The list as read now, with the counts of the rooms not shown.
            let mut fresh: Vec<RoomEntry> =
                opened.rooms.iter().cloned().map(RoomEntry::from).collect();
            for entry in &mut fresh {
                if entry.name == opened.room {
                    entry.joined = true;
                } else if let Some(old) = rooms.iter().find(|r| r.name == entry.name) {
                    entry.unread = old.unread;
                }
            }
            if !fresh.iter().any(|r| r.name == opened.room) {
                fresh.push(RoomEntry {
                    name: opened.room.clone(),
                    joined: true,
                    unread: 0,
                });
            }
            *rooms = fresh;
        });
        complete
    }

    /// Adds `message` of the shown room unless it is shown already: its
    /// lines, if it has any (`Ok(true)`, `Ok(false)` if none), and its
    /// presence change, applied (`Err` with the change if that left the
    /// list incomplete). `None` when the page is gone.
    pub fn add(&self, message: &Message) -> Option<Added> {
        if !self
            .seen
            .try_update_value(|s| s.insert(message.id.0.clone()))?
        {
            return Some(Added::default());
        }
        let mut added = Added::default();
        if let Some(change) = presence_of(message) {
            added.complete = self
                .online
                .try_update(|o| apply_presence(o, &change))
                .unwrap_or(true);
            added.presence = Some(change);
        } else {
            added.complete = true;
        }
        let new_lines = Line::from_message(message);
        if !new_lines.is_empty() {
            self.lines.try_update(|l| l.extend(new_lines))?;
            added.lines = true;
        }
        Some(added)
    }

    /// A message came in the room `room`, which is not shown: one more
    /// unread if it is something to read. Only members get a room's
    /// messages, so the room is yours now (joined in another tab).
    pub fn count_unread(&self, room: &str, message: &Message) {
        let text = Line::from_message(message)
            .iter()
            .any(|line| line.kind.is_text());
        self.rooms.try_update(|rooms| {
            if let Some(entry) = rooms.iter_mut().find(|r| r.name == room) {
                entry.joined = true;
                entry.unread += usize::from(text);
            }
        });
    }

    /// The room `room` is not yours any more (left in another tab, or
    /// closed): off your rooms, and off the list if it is gone.
    pub fn left(&self, room: &str, closed: bool) {
        self.rooms.try_update(|rooms| {
            if closed {
                rooms.retain(|r| r.name != room);
            } else if let Some(entry) = rooms.iter_mut().find(|r| r.name == room) {
                entry.joined = false;
                entry.unread = 0;
            }
        });
    }

    /// A room opened (listed, not joined) or closed (gone from the list).
    pub fn room_opened(&self, name: &str, open: bool) {
        self.rooms.try_update(|rooms| {
            let listed = rooms.iter().position(|r| r.name == name);
            match (open, listed) {
                (true, None) => {
                    rooms.push(RoomEntry {
                        name: name.to_owned(),
                        joined: false,
                        unread: 0,
                    });
                    rooms[1..].sort_by(|a, b| a.name.cmp(&b.name));
                }
                (false, Some(i)) if !rooms[i].joined => {
                    rooms.remove(i);
                }
                _ => {}
            }
        });
    }
}

/// What [`RoomView::add`] did.
#[derive(Debug, Default)]
pub struct Added {
    /// Lines were added to the log.
    pub lines: bool,
    /// The presence change the message carried.
    pub presence: Option<comet::wire::PresenceChange>,
    /// Whether who is here is still a whole list.
    pub complete: bool,
}
