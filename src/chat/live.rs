//! What keeps the chat page live in the browser: one `comet` poll for all
//! of the user's rooms (shared by the browser's chat tabs), the shown
//! room's from the history's cursor, the others from now on. A message of
//! the shown room joins its log (and its presence change the list of who
//! is here, re-read when one was incomplete, see `reread`); a message of
//! another room counts as unread there; a room opened or closed updates
//! the room list. Moving to another room (the address changes: a room
//! link, back and forward, opening or leaving a room) shows that room
//! whole and changes the rooms the poll follows at once. The server
//! renders the page once and starts none of it.

use super::room_view::RoomView;
use comet::{Cursor, Status};
use leptos::prelude::*;

/// The chat page's state that the live updates change.
pub struct Live {
    /// Where the shown room's rendered history ends: its polls start here.
    pub cursor: Cursor,
    /// The room on screen and the room list.
    pub view: RoomView,
    /// Whether the list of who is here is whole (no crowd's change counted
    /// some members only).
    pub complete: bool,
    /// The subscriber's connection status.
    pub status: RwSignal<Status>,
    /// The log's scrolling box.
    pub log: NodeRef<leptos::html::Div>,
}

/// Starts the live updates (in an effect, so after hydration); they stop
/// with the page.
#[cfg(feature = "hydrate")]
pub fn start(live: Live) {
    use super::lines::Line;
    use super::opening::{open_room, NotOpened};
    use super::reread::{reread_online, Reread};
    use super::{CHANNEL, ROOM};
    use comet::channels_subscriber::{ChannelsHandle, ChannelsSubscriber};
    use comet::subscriber::Failure;
    use comet::Message;
    use leptos_router::hooks::use_params_map;
    use std::collections::BTreeSet;

    let Live {
        cursor,
        view,
        complete,
        status,
        log,
    } = live;
    let reread = StoredValue::new(Reread::default());
    if !complete {
        reread_online(view.room, view.online, reread);
    }
    // While another room is being read: its name, and its messages that
    // arrived meanwhile (shown after its history, those not in it).
    let moving = StoredValue::new(None::<(String, Vec<Message>)>);
    let followed = StoredValue::new(BTreeSet::<String>::new());
    let handle = StoredValue::new(None::<ChannelsHandle>);

    // A message of the room on screen.
    let show = move |message: &Message| {
        let stick = log
            .try_get_untracked()
            .flatten()
            .map(|el| near_bottom(&el))
            .unwrap_or(true);
        let Some(added) = view.add(message) else {
            return;
        };
        if let Some(change) = &added.presence {
            reread.try_update_value(|r| r.note(change));
            if !added.complete {
                reread_online(view.room, view.online, reread);
            }
        }
        if added.lines && stick {
            scroll_to_end(log);
        }
    };

    let on_message = move |room: String, message: Message| {
        if room == CHANNEL && message.name == ROOM {
            if let (Some(name), Some(open)) = (
                message.contents["name"].as_str(),
                message.contents["open"].as_bool(),
            ) {
                view.room_opened(name, open);
            }
        }
        let held = moving
            .try_update_value(|m| match m {
                Some((target, pending)) if *target == room => {
                    pending.push(message.clone());
                    true
                }
                _ => false,
            })
            .unwrap_or(true);
        if held {
            return;
        }
        if view.room.try_with_untracked(|shown| *shown == room) == Some(true) {
            show(&message);
        } else {
            view.count_unread(&room, &message);
        }
    };

    // Makes the poll follow exactly the rooms joined: `target` from its
    // history's cursor, a newly joined other room from now on.
    let follow_joined = move |target: Option<(&str, &Cursor)>| {
        let joined: BTreeSet<String> = view.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .filter(|r| r.joined)
                .map(|r| r.name.clone())
                .collect()
        });
        handle.with_value(|handle| {
            let Some(handle) = handle else { return };
            followed.update_value(|followed| {
                for gone in followed.difference(&joined) {
                    handle.leave(gone);
                }
                for name in &joined {
                    let from = target.filter(|(t, _)| t == name).map(|(_, c)| c.clone());
                    if !followed.contains(name) {
                        handle.follow(name, from);
                    }
                }
                *followed = joined;
            });
        });
    };

    Effect::new(move |_| {
        let first = view.room.get_untracked();
        let subscriber = view.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .filter(|r| r.joined)
                .fold(ChannelsSubscriber::new("/comet"), |s, r| {
                    let from = (r.name == first).then(|| cursor.clone());
                    s.follow(r.name.clone(), from)
                })
        });
        followed.set_value(view.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .filter(|r| r.joined)
                .map(|r| r.name.clone())
                .collect()
        }));
        let started = subscriber
            .on_message(on_message)
            .on_failure(move |channel, failure| {
                let Some(channel) = channel else { return };
                match failure {
                    Failure::CursorExpired => {
                        if view.room.try_with_untracked(|r| *r == channel) == Some(true) {
                            view.lines.try_update(|l| l.push(missed_notice()));
                        }
                    }
                    // Left in another tab, or closed: no longer followed.
                    Failure::Left(error) => {
                        followed.try_update_value(|f| f.remove(&channel));
                        view.left(&channel, error.error == comet::wire::codes::UNKNOWN_CHANNEL);
                    }
                    _ => {}
                }
            })
            .on_status(move |s| {
                status.try_set(s);
            })
            // One poll for all of this browser's chat tabs.
            .start_shared("/comet");
        handle.set_value(Some(started.clone()));
        on_cleanup(move || started.stop());
    });

    // The address names another room: read it whole, then show it.
    let params = use_params_map();
    Effect::new(move |_| {
        let target = params
            .with(|p| p.get("room"))
            .unwrap_or_else(|| CHANNEL.to_owned());
        if view.room.with_untracked(|shown| *shown == target) {
            return;
        }
        moving.set_value(Some((target.clone(), Vec::new())));
        leptos::task::spawn_local(async move {
            let opened = open_room(target.clone()).await;
            let Some(Some((_, pending))) = moving.try_update_value(|m| m.take()) else {
                return;
            };
            match opened {
                Ok(opened) => {
                    let complete = view.show(&opened);
                    follow_joined(Some((&opened.room, &opened.history.cursor)));
                    if !complete {
                        reread_online(view.room, view.online, reread);
                    }
                    for message in &pending {
                        show(message);
                    }
                    scroll_to_end(log);
                }
                Err(NotOpened::SessionEnded) => {
                    status.try_set(Status::Ended);
                }
                Err(NotOpened::Room(sentence)) => {
                    view.room.try_set(target);
                    view.online.try_set(Vec::new());
                    view.lines.try_set(vec![notice(&sentence)]);
                    follow_joined(None);
                }
            }
        });
    });

    // Open at the newest message, once the page is laid out.
    Effect::new(move |_| {
        if log.get().is_some() {
            scroll_to_end(log);
        }
    });

    fn notice(text: &str) -> Line {
        Line {
            id: format!("notice-{}", js_sys::Date::now()),
            kind: super::lines::LineKind::Notice,
            from: String::new(),
            from_public: String::new(),
            text: text.to_owned(),
            at_ms: js_sys::Date::now() as u64,
            to: None,
            names: None,
        }
    }

    /// Said when the history's cursor expired before the first poll: the
    /// messages in between are lost to this page.
    fn missed_notice() -> Line {
        notice("Some messages were missed while you were away; showing new ones from here.")
    }
}

/// The server renders the page once: nothing to keep live.
#[cfg(not(feature = "hydrate"))]
pub fn start(_live: Live) {}

/// Scrolls the log to its newest line after the next frame (once the
/// lines just added are laid out).
#[cfg(feature = "hydrate")]
fn scroll_to_end(log: NodeRef<leptos::html::Div>) {
    request_animation_frame(move || {
        if let Some(el) = log.try_get_untracked().flatten() {
            el.set_scroll_top(el.scroll_height());
        }
    });
}

/// Whether the log is scrolled (nearly) to its end: a new line then
/// scrolls it on, so a reader scrolled up is not pulled away.
#[cfg(feature = "hydrate")]
fn near_bottom(el: &leptos::web_sys::HtmlDivElement) -> bool {
    el.scroll_height() - el.scroll_top() - el.client_height() < 80
}
