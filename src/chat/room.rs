//! The chat page at `/chat`: the recent messages rendered on the server,
//! then kept live by a `comet` subscriber started from the history's
//! cursor, so nothing sent between render and first poll is lost or shown
//! twice. Without a valid session it redirects to login.

use super::api::{online_users, recent_messages, Logout};
use super::clock::{clock, iso_time};
use super::composer::Composer;
use super::lines::{apply_presence, presence_of, Line, LineKind, OnlineUser};
use super::live::{self, Live};
use super::people::People;
use super::{name_hue, History};
use comet::Status;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::{lazy_route, LazyRoute};
use std::collections::HashSet;

/// The chat page as a lazy route: with `--split` its code (the views, the
/// subscriber, tab sharing and what only they use) is a wasm chunk of its
/// own, fetched when the chat page opens, so the login page, where a
/// first visit lands, does not download it (BENCHMARKS.md, "Page weight").
pub struct ChatRoute;

#[lazy_route]
impl LazyRoute for ChatRoute {
    fn data() -> Self {
        ChatRoute
    }

    fn view(_this: Self) -> AnyView {
        view! { <ChatPage/> }.into_any()
    }
}

#[component]
pub fn ChatPage() -> impl IntoView {
    // Blocking, so a missing session can still answer with a 302 redirect.
    // Who is online is read *before* the history: every join or leave after
    // that snapshot is in the history or comes after its cursor. (Kept out
    // of `recent_messages`, which every client calls: listing everyone is
    // the page's cost, not every poller's.)
    let history = Resource::new_blocking(
        || (),
        |_| async {
            let online = online_users(None).await?;
            let history = recent_messages(None).await?;
            Ok::<_, ServerFnError>((history, online))
        },
    );
    view! {
        <Title text="Comet Chat"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match history.await {
                    Ok((history, online)) => Either::Left(view! { <ChatRoom history online/> }),
                    Err(_) => Either::Right(view! { <Redirect path="/"/> }),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ChatRoom(history: History, online: Vec<OnlineUser>) -> impl IntoView {
    let me = history.me.clone();
    let initial: Vec<Line> = history
        .messages
        .iter()
        .flat_map(Line::from_message)
        .collect();
    let seen = StoredValue::new(
        history
            .messages
            .iter()
            .map(|m| m.id.0.clone())
            .collect::<HashSet<_>>(),
    );
    // The snapshot was taken before the history was read: replaying the
    // history's presence changes on it gives who was online at the cursor
    // (changes are idempotent, so those already in the snapshot do no harm).
    let mut people = online;
    people.sort_by_key(|u| u.name.to_lowercase());
    let mut complete = true;
    for change in history.messages.iter().filter_map(presence_of) {
        complete &= apply_presence(&mut people, &change);
    }
    let online = RwSignal::new(people);
    let to = RwSignal::new(None::<OnlineUser>);
    let lines = RwSignal::new(initial);
    let status = RwSignal::new(Status::Connecting);
    let log_ref = NodeRef::<leptos::html::Div>::new();

    live::start(Live {
        cursor: history.cursor,
        seen,
        online,
        complete,
        lines,
        status,
        log: log_ref,
    });

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
            <div class="body">
                <div class="log" node_ref=log_ref>
                    <ol data-testid="messages" aria-live="polite" aria-label="Messages">
                        <For each=move || lines.get() key=|line| line.id.clone() let:line>
                            <MessageLine mine=line.from_public == my_public line/>
                        </For>
                    </ol>
                </div>
                <People online me=me.public.clone() to/>
            </div>
            <Composer to room=Signal::derive(|| super::CHANNEL.to_owned())/>
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
    let hue = format!("--hue: {}", name_hue(&line.from));
    let private = line.kind == LineKind::Private;
    let to = line.to.clone();
    view! {
        <li
            data-testid="message"
            data-kind=line.kind.as_str()
            data-mine=if mine { "true" } else { "false" }
            class="message"
            class:mine=mine
            class:event=event
            class:private=private
            title=line.names.clone()
        >
            <span class="from" style=hue>{line.from.clone()}</span>
            {private.then(|| view! {
                <span class="to" data-testid="private-to-name">" → " {to.unwrap_or_default()}</span>
                <span class="badge" data-testid="private-badge">"private"</span>
            })}
            {(!event).then(|| view! { <span class="sep">": "</span> })}
            <span class="text">{line.text.clone()}</span>
            <time datetime=iso_time(at_ms)>{move || clock(at_ms)}</time>
        </li>
    }
}
