//! The chat page at `/chat` (the default room) and `/chat/{room}`: the
//! room list, the room's recent messages rendered on the server, then kept
//! live by one `comet` poll for all of the user's rooms, started from the
//! history's cursor, so nothing sent between render and first poll is
//! lost or shown twice. Opening a room's address joins it. Without a
//! valid session it redirects to login.

use super::api::Logout;
use super::clock::{clock, iso_time};
use super::composer::Composer;
use super::lines::{Line, LineKind};
use super::live::{self, Live};
use super::name_hue;
use super::opening::{open_room, NotOpened, Opened};
use super::people::People;
use super::room_list::RoomList;
use super::room_view::RoomView;
use super::rooms::LeaveRoom;
use super::CHANNEL;
use comet::Status;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_params_map;
use leptos_router::{lazy_route, LazyRoute};

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
    // The room in the address when the page opened; moving to another room
    // later changes the address, not this page (see `live`).
    let first = use_params_map()
        .with_untracked(|p| p.get("room"))
        .unwrap_or_else(|| CHANNEL.to_owned());
    // Blocking, so a missing session can still answer with a 302 redirect.
    let opening = Resource::new_blocking(|| (), move |_| open_room(first.clone()));
    view! {
        <Title text="Comet Chat"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match opening.await {
                    Ok(opened) => view! { <ChatRoom opened/> }.into_any(),
                    Err(NotOpened::SessionEnded) => view! { <Redirect path="/"/> }.into_any(),
                    Err(NotOpened::Room(sentence)) => view! { <NoRoom sentence/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A room's address that leads nowhere (closed, misspelt, refused).
#[component]
fn NoRoom(sentence: String) -> impl IntoView {
    view! {
        <main class="notfound" data-testid="no-room">
            <h1>{sentence}</h1>
            <a href="/chat">"Back to the chat room"</a>
        </main>
    }
}

#[component]
fn ChatRoom(opened: Opened) -> impl IntoView {
    let (view, complete) = RoomView::new(&opened);
    let status = RwSignal::new(Status::Connecting);
    let log_ref = NodeRef::<leptos::html::Div>::new();
    live::start(Live {
        cursor: opened.history.cursor.clone(),
        view,
        complete,
        status,
        log: log_ref,
    });
    let lines = view.lines;
    let logout = ServerAction::<Logout>::new();
    let leave = ServerAction::<LeaveRoom>::new();
    let room = view.room;
    let my_public = Signal::derive(move || view.me.with(|me| me.public.clone()));
    let me_name = opened.history.me.name.clone();
    let main = view! {
                <div class="main">
                    <div class="room-head">
                        <h2 data-testid="room-title">"# " {move || room.get()}</h2>
                        <Show when=move || room.with(|r| r != CHANNEL)>
                            <ActionForm action=leave attr:class="leave">
                                <input type="hidden" name="room" prop:value=move || room.get()/>
                                <button type="submit" data-testid="leave-room">"Leave room"</button>
                            </ActionForm>
                        </Show>
                    </div>
                    <div class="log" node_ref=log_ref>
                        <ol data-testid="messages" aria-live="polite" aria-label="Messages">
                            <For each=move || lines.get() key=|line| line.id.clone() let:line>
                                <MessageLine mine=line.from_public == my_public.get_untracked() line/>
                            </For>
                        </ol>
                    </div>
                    <Composer to=view.to room=room.into()/>
                </div>
    }
    .into_any();
    let people = view! { <People online=view.online me=my_public to=view.to/> }.into_any();
    view! {
        <div class="chat">
            <header class="topbar">
                <h1>"Comet Chat"</h1>
                <StatusBadge status/>
                <span class="me">"Signed in as " <strong data-testid="me">{me_name}</strong></span>
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
                <RoomList rooms=view.rooms current=room.into()/>
                {main}
                {people}
            </div>
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
