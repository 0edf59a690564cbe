//! The chat page at `/chat`: the recent messages rendered on the server,
//! then kept live by a `comet` subscriber started from the history's
//! cursor, so nothing sent between render and first poll is lost or shown
//! twice. Without a valid session it redirects to login.

use super::api::{error_text, recent_messages, Logout, SendMessage};
use super::{History, Line, LineKind};
use crate::comet::Status;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use std::collections::HashSet;

#[component]
pub fn ChatPage() -> impl IntoView {
    // Blocking, so a missing session can still answer with a 302 redirect.
    let history = Resource::new_blocking(|| (), |_| recent_messages());
    view! {
        <Title text="Comet Chat"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match history.await {
                    Ok(history) => Either::Left(view! { <ChatRoom history/> }),
                    Err(_) => Either::Right(view! { <Redirect path="/"/> }),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ChatRoom(history: History) -> impl IntoView {
    let me = history.me.clone();
    let initial: Vec<Line> = history
        .messages
        .iter()
        .filter_map(Line::from_message)
        .collect();
    let seen = StoredValue::new(initial.iter().map(|l| l.id.clone()).collect::<HashSet<_>>());
    let lines = RwSignal::new(initial);
    let status = RwSignal::new(Status::Connecting);
    let log_ref = NodeRef::<leptos::html::Div>::new();

    #[cfg(feature = "hydrate")]
    {
        let cursor = history.cursor.clone();
        Effect::new(move |_| {
            use crate::comet::subscriber::{Failure, Subscriber};
            let handle =
                Subscriber::new(format!("/comet/{}", super::CHANNEL))
                    .since(Some(cursor.clone()))
                    .on_message(move |message| {
                        let Some(line) = Line::from_message(&message) else {
                            return;
                        };
                        if !seen
                            .try_update_value(|s| s.insert(line.id.clone()))
                            .unwrap_or(false)
                        {
                            return;
                        }
                        // Handlers and frame callbacks can outlive the page
                        // (a reply landing as the user navigates away), so
                        // every reactive access here is a `try_`.
                        let stick = log_ref
                            .try_get_untracked()
                            .flatten()
                            .map(|el| near_bottom(&el))
                            .unwrap_or(true);
                        if lines.try_update(|l| l.push(line)).is_none() {
                            return;
                        }
                        if stick {
                            request_animation_frame(move || {
                                if let Some(el) = log_ref.try_get_untracked().flatten() {
                                    el.set_scroll_top(el.scroll_height());
                                }
                            });
                        }
                    })
                    .on_failure(move |failure| {
                    if failure == Failure::CursorExpired {
                        let notice = Line {
                            id: format!("notice-{}", js_sys::Date::now()),
                            kind: LineKind::Notice,
                            from: String::new(),
                            from_public: String::new(),
                            text: "Some messages were missed while you were away; showing new ones from here.".into(),
                            at_ms: js_sys::Date::now() as u64,
                        };
                        lines.try_update(|l| l.push(notice));
                    }
                })
                .on_status(move |s| {
                    status.try_set(s);
                })
                    .start();
            on_cleanup(move || handle.stop());
        });
        Effect::new(move |_| {
            if let Some(el) = log_ref.get() {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (&seen, &history.cursor);

    let my_public = me.public.clone();
    let logout = ServerAction::<Logout>::new();
    view! {
        <div class="chat">
            <header class="topbar">
                <h1>"Comet Chat"</h1>
                <StatusBadge status/>
                <span class="me">"Signed in as " <strong data-testid="me">{me.name.clone()}</strong></span>
                <ActionForm action=logout attr:class="logout">
                    <button type="submit" data-testid="logout">"Log out"</button>
                </ActionForm>
            </header>
            {move || (status.get() == Status::Ended).then(|| view! {
                <div role="alert" class="ended" data-testid="session-ended">
                    "Your session has ended. " <a href="/">"Log in again"</a>
                </div>
            })}
            <div class="log" node_ref=log_ref>
                <ol data-testid="messages" aria-live="polite">
                    <For each=move || lines.get() key=|line| line.id.clone() let:line>
                        <MessageLine mine=line.from_public == my_public line/>
                    </For>
                </ol>
            </div>
            <Composer/>
        </div>
    }
}

#[component]
fn StatusBadge(status: RwSignal<Status>) -> impl IntoView {
    let label = move || match status.get() {
        Status::Connecting => "Connecting…",
        Status::Connected => "Connected",
        Status::Reconnecting => "Reconnecting…",
        Status::Ended => "Session ended",
    };
    view! {
        <span class="status" data-testid="status" data-status=move || status.get().as_str() role="status">
            {label}
        </span>
    }
}

#[component]
fn MessageLine(line: Line, mine: bool) -> impl IntoView {
    let event = matches!(
        line.kind,
        LineKind::Join | LineKind::Leave | LineKind::Notice
    );
    let at_ms = line.at_ms;
    view! {
        <li
            data-testid="message"
            data-kind=line.kind.as_str()
            data-mine=if mine { "true" } else { "false" }
            class="message"
            class:mine=mine
            class:event=event
            class:private=line.kind == LineKind::Private
        >
            <span class="from">{line.from.clone()}</span>
            {(!event).then(|| view! { <span class="sep">": "</span> })}
            <span class="text">{line.text.clone()}</span>
            <time datetime=iso_time(at_ms)>{move || clock(at_ms)}</time>
        </li>
    }
}

#[component]
fn Composer() -> impl IntoView {
    let send = ServerAction::<SendMessage>::new();
    let draft = RwSignal::new(String::new());
    let error = move || {
        send.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    Effect::new(move |_| {
        if let Some(Ok(())) = send.value().get() {
            draft.set(String::new());
        }
    });
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        // Enter sends; Shift+Enter (or an IME composition) is a newline.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            use leptos::wasm_bindgen::JsCast;
            if let Some(form) = ev
                .target()
                .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlTextAreaElement>().ok())
                .and_then(|t| t.form())
            {
                let _ = form.request_submit();
            }
        }
    };
    view! {
        <ActionForm action=send attr:class="composer">
            <textarea
                name="text"
                data-testid="composer"
                aria-label="Message"
                placeholder="Write a message… (Enter to send, Shift+Enter for a new line)"
                rows="2"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" data-testid="send">"Send"</button>
        </ActionForm>
        {move || error().map(|e| view! { <p role="alert" class="error" data-testid="send-error">{e}</p> })}
    }
}

#[cfg(feature = "hydrate")]
fn near_bottom(el: &leptos::web_sys::HtmlDivElement) -> bool {
    el.scroll_height() - el.scroll_top() - el.client_height() < 80
}

/// `2026-11-25T15:04:05Z`, for the `datetime` attribute.
fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (era * 400 + yoe + if m <= 2 { 1 } else { 0 }, m, d)
}

/// `HH:MM`: in UTC on the server, in the reader's time zone once hydrated.
fn clock(ms: u64) -> String {
    let hydrated = use_context::<crate::app::Hydrated>()
        .map(|h| h.0.get())
        .unwrap_or(false);
    if hydrated {
        #[cfg(feature = "hydrate")]
        {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
            return format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
        }
    }
    let secs = ms / 1000 % 86_400;
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}
