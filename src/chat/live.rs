//! What keeps the chat page live in the browser: a `comet` subscriber
//! from the history's cursor (one poll shared by the browser's chat tabs)
//! that appends new lines, applies presence changes to the online list
//! (re-reading it when one was incomplete, see `reread`), says when
//! messages were missed, and keeps the log scrolled to the newest line
//! while the reader is there. The server renders the page once and starts
//! none of it.

use super::lines::{Line, OnlineUser};
use comet::{Cursor, Status};
use leptos::prelude::*;
use std::collections::HashSet;

/// The chat page's state that the live updates change.
pub struct Live {
    /// Where the rendered history ends: polls start from here.
    pub cursor: Cursor,
    /// Ids of the messages shown, so none is shown twice.
    pub seen: StoredValue<HashSet<String>>,
    /// Who is online.
    pub online: RwSignal<Vec<OnlineUser>>,
    /// Whether `online` is whole (no crowd's change counted some members).
    pub complete: bool,
    /// The message log.
    pub lines: RwSignal<Vec<Line>>,
    /// The subscriber's connection status.
    pub status: RwSignal<Status>,
    /// The log's scrolling box.
    pub log: NodeRef<leptos::html::Div>,
}

/// Starts the live updates (in an effect, so after hydration); they stop
/// with the page.
#[cfg(feature = "hydrate")]
pub fn start(live: Live) {
    use super::lines::{apply_presence, presence_of};
    use super::reread::{reread_online, Reread};
    use super::CHANNEL;
    use comet::subscriber::{Failure, Subscriber};
    let (seen, online, lines, status, log) =
        (live.seen, live.online, live.lines, live.status, live.log);
    let cursor = live.cursor;
    let reread = StoredValue::new(Reread::default());
    if !live.complete {
        reread_online(online, reread);
    }
    Effect::new(move |_| {
        let handle = Subscriber::new(format!("/comet/{}", CHANNEL))
            .since(Some(cursor.clone()))
            .on_message(move |message| {
                if !seen
                    .try_update_value(|s| s.insert(message.id.0.clone()))
                    .unwrap_or(false)
                {
                    return;
                }
                if let Some(change) = presence_of(&message) {
                    reread.try_update_value(|r| r.note(&change));
                    let complete = online
                        .try_update(|o| apply_presence(o, &change))
                        .unwrap_or(true);
                    if !complete {
                        reread_online(online, reread);
                    }
                }
                let new_lines = Line::from_message(&message);
                if new_lines.is_empty() {
                    return;
                }
                // Handlers and frame callbacks can outlive the page
                // (a reply landing as the user navigates away), so
                // every reactive access here is a `try_`.
                let stick = log
                    .try_get_untracked()
                    .flatten()
                    .map(|el| near_bottom(&el))
                    .unwrap_or(true);
                if lines.try_update(|l| l.extend(new_lines)).is_none() {
                    return;
                }
                if stick {
                    request_animation_frame(move || {
                        if let Some(el) = log.try_get_untracked().flatten() {
                            el.set_scroll_top(el.scroll_height());
                        }
                    });
                }
            })
            .on_failure(move |failure| {
                if failure == Failure::CursorExpired {
                    lines.try_update(|l| l.push(missed_notice()));
                }
            })
            .on_status(move |s| {
                status.try_set(s);
            })
            // One poll for all of this browser's chat tabs.
            .start_shared(&format!("/comet/{}", CHANNEL));
        on_cleanup(move || handle.stop());
    });
    // Open at the newest message, once the page is laid out.
    Effect::new(move |_| {
        if log.get().is_some() {
            request_animation_frame(move || {
                if let Some(el) = log.try_get_untracked().flatten() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
}

/// The server renders the page once: nothing to keep live.
#[cfg(not(feature = "hydrate"))]
pub fn start(_live: Live) {}

/// Whether the log is scrolled (nearly) to its end: a new line then
/// scrolls it on, so a reader scrolled up is not pulled away.
#[cfg(feature = "hydrate")]
fn near_bottom(el: &leptos::web_sys::HtmlDivElement) -> bool {
    el.scroll_height() - el.scroll_top() - el.client_height() < 80
}

/// Said when the history's cursor expired before the first poll: the
/// messages in between are lost to this page.
#[cfg(feature = "hydrate")]
fn missed_notice() -> Line {
    Line {
        id: format!("notice-{}", js_sys::Date::now()),
        kind: super::lines::LineKind::Notice,
        from: String::new(),
        from_public: String::new(),
        text: "Some messages were missed while you were away; showing new ones from here.".into(),
        at_ms: js_sys::Date::now() as u64,
        to: None,
        names: None,
    }
}
