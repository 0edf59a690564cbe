//! The room list beside the log: your rooms (each with the messages you
//! have not seen in it yet), the other open rooms (opening one joins it),
//! and a form to open a room. A room's address is `/chat/{name}`; the
//! default room's is `/chat`.

use super::api::error_text;
use super::rooms::{CreateRoom, RoomInfo};
use super::CHANNEL;
use leptos::prelude::*;
use leptos_router::components::A;

/// A room as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEntry {
    pub name: String,
    pub joined: bool,
    /// Messages that came while you were looking at another room.
    pub unread: usize,
}

impl From<RoomInfo> for RoomEntry {
    fn from(room: RoomInfo) -> Self {
        Self {
            name: room.name,
            joined: room.joined,
            unread: 0,
        }
    }
}

/// Where the room `name` lives.
pub fn room_href(name: &str) -> String {
    if name == CHANNEL {
        "/chat".to_owned()
    } else {
        format!("/chat/{name}")
    }
}

#[component]
pub fn RoomList(rooms: RwSignal<Vec<RoomEntry>>, current: Signal<String>) -> AnyView {
    let mine = move || rooms.with(|r| r.iter().filter(|r| r.joined).cloned().collect::<Vec<_>>());
    let others =
        move || rooms.with(|r| r.iter().filter(|r| !r.joined).cloned().collect::<Vec<_>>());
    view! {
        <nav class="rooms" aria-labelledby="rooms-title">
            <h2 id="rooms-title">"Rooms"</h2>
            <ul data-testid="my-rooms">
                <For each=mine key=|room| (room.name.clone(), room.unread) let:room>
                    <RoomLink room current/>
                </For>
            </ul>
            <Show when=move || rooms.with(|r| r.iter().any(|r| !r.joined))>
                <h3>"Other rooms"</h3>
                <ul data-testid="other-rooms">
                    <For each=others key=|room| room.name.clone() let:room>
                        <RoomLink room current/>
                    </For>
                </ul>
            </Show>
            <NewRoom/>
        </nav>
    }
    // Erased: the chat page's whole view type is otherwise deeper than
    // the compiler's query limit.
    .into_any()
}

#[component]
fn RoomLink(room: RoomEntry, current: Signal<String>) -> impl IntoView {
    let here = {
        let name = room.name.clone();
        move || current.with(|c| *c == name)
    };
    let label = if room.unread > 0 {
        format!("{}, {} unread", room.name, room.unread)
    } else {
        room.name.clone()
    };
    let href = room_href(&room.name);
    let shown_name = room.name.clone();
    view! {
        <li data-testid="room" data-room=room.name data-joined=room.joined.to_string()>
            <A
                href=href
                attr:class="room"
                attr:aria-label=label
                attr:aria-current=move || here().then_some("page")
            >
                <span class="hash">"#"</span>
                <span class="room-name">{shown_name}</span>
                {(room.unread > 0).then(|| view! {
                    <span class="unread" data-testid="unread">{room.unread}</span>
                })}
            </A>
        </li>
    }
}

/// Opens a room (or joins it, if one by that name is open) and goes there:
/// the server function answers with a redirect to the room, which works
/// without JavaScript too.
#[component]
fn NewRoom() -> impl IntoView {
    let create = ServerAction::<CreateRoom>::new();
    let error = move || {
        create
            .value()
            .get()
            .and_then(|result| result.err())
            .map(|e| error_text(&e))
    };
    view! {
        <ActionForm action=create attr:class="new-room">
            <label for="new-room-name">"Open a room"</label>
            <div class="row">
                <input
                    id="new-room-name"
                    name="name"
                    data-testid="new-room"
                    placeholder="e.g. rust"
                    maxlength="32"
                    required
                    autocomplete="off"
                />
                <button type="submit" data-testid="create-room" disabled=move || create.pending().get()>"Open"</button>
            </div>
        </ActionForm>
        {move || error().map(|e| view! { <p role="alert" class="error" data-testid="room-error">{e}</p> })}
    }
}
