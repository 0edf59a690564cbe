//! Rooms on the server: each room is a comet channel, the default one
//! ([`CHANNEL`]) fixed and everyone's, the others opened by users at run
//! time under [`RoomPolicy`]. Being in a room is having a client in its
//! channel under the session's own private token, so the one poll of a
//! page (`POST /comet`) follows all of a user's rooms with one cookie.

use super::session::{comet_error, current_token, refuse, ChatState};
use super::{text, CHANNEL, ROOM};
use comet::channels::{is_plain_name, ChannelPolicy};
use comet::{ClientRecord, CometError, Manager, PrivateToken, Taken};
use http::StatusCode;
use leptos::prelude::ServerFnError;
use std::sync::Arc;

/// How many rooms besides the default one may be open at once.
pub const MAX_ROOMS: usize = 100;
/// The longest room name, in characters.
pub const MAX_ROOM_NAME: usize = 32;

/// Said when a room is not open (never was, or its last member left).
pub const NO_SUCH_ROOM: &str = "There is no room by that name.";
/// Said of a room name that is not a short lower-case word.
pub const BAD_ROOM_NAME: &str =
    "A room name is 1 to 32 letters (a–z), digits, hyphens or underscores.";

/// The chat's rules for rooms opened at run time: any signed-in user may
/// open one (the app itself too), names are short path segments (a
/// room's address is `/chat/{name}`), and at most [`MAX_ROOMS`] are open.
pub struct RoomPolicy;

impl ChannelPolicy for RoomPolicy {
    fn valid_name(&self, name: &str) -> bool {
        is_plain_name(name) && name.len() <= MAX_ROOM_NAME
    }

    fn may_open(&self, _name: &str, _by: Option<&ClientRecord>) -> bool {
        true
    }

    fn max_channels(&self) -> usize {
        MAX_ROOMS
    }
}

/// A room name as typed ("Rust Lang") made an address ("rust-lang"):
/// trimmed, lower-cased, spaces as hyphens; refused if still not a name.
pub fn room_name(typed: &str) -> Result<String, ServerFnError> {
    let name = typed
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-");
    if RoomPolicy.valid_name(&name) {
        Ok(name)
    } else {
        Err(refuse(StatusCode::BAD_REQUEST, BAD_ROOM_NAME))
    }
}

/// The room `name` (`None`: the default room), if it is open.
pub async fn room(state: &ChatState, name: Option<&str>) -> Result<Arc<Manager>, ServerFnError> {
    let name = match name {
        None => return Ok(state.chat.clone()),
        Some(name) if name == CHANNEL => return Ok(state.chat.clone()),
        Some(name) => name,
    };
    if !RoomPolicy.valid_name(name) {
        return Err(refuse(StatusCode::BAD_REQUEST, BAD_ROOM_NAME));
    }
    state.comet.find(name).await.map_err(|error| match error {
        CometError::UnknownChannel(_) => refuse(StatusCode::NOT_FOUND, NO_SUCH_ROOM),
        other => comet_error(other),
    })
}

/// The caller's client in `room`, or `403` if they are not in it.
pub async fn member(room: &Manager, token: &PrivateToken) -> Result<ClientRecord, ServerFnError> {
    room.client(token)
        .await
        .map_err(comet_error)?
        .ok_or_else(|| refuse(StatusCode::FORBIDDEN, "You are not in that room."))
}

/// Puts the holder of `token` (known in the default room as `me`) in
/// `room`; being in it already is fine.
pub async fn join(
    room: &Manager,
    token: &PrivateToken,
    me: &ClientRecord,
) -> Result<ClientRecord, ServerFnError> {
    if let Some(record) = room.client(token).await.map_err(comet_error)? {
        return Ok(record);
    }
    let key = text::name_key(&me.display_name);
    match room
        .join_with_token_keyed(token, &me.display_name, key)
        .await
    {
        Ok(record) => Ok(record),
        // A second tab joined in between.
        Err(CometError::ClientExists(Taken::Token)) => member(room, token).await,
        Err(CometError::ClientExists(Taken::DisplayName)) => Err(refuse(
            StatusCode::CONFLICT,
            "Someone with a name like yours is in that room.",
        )),
        Err(CometError::UnknownChannel(_)) => Err(refuse(StatusCode::NOT_FOUND, NO_SUCH_ROOM)),
        Err(CometError::AtCapacity(_)) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "That room is full right now.",
        )),
        Err(other) => Err(comet_error(other)),
    }
}

/// Opens the room `name` (or finds it open) on behalf of `me`; a room
/// that was not open is announced in the default room ([`ROOM`]), so
/// every page's room list shows it.
pub async fn open(
    state: &ChatState,
    name: &str,
    me: &ClientRecord,
) -> Result<Arc<Manager>, ServerFnError> {
    let was_open = state.comet.find(name).await.is_ok();
    let room = state
        .comet
        .open(name, Some(me))
        .await
        .map_err(|error| match error {
            CometError::InvalidChannel(_) => refuse(StatusCode::BAD_REQUEST, BAD_ROOM_NAME),
            CometError::AtCapacity(_) => refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "The chat has as many rooms as it allows; join one of them instead.",
            ),
            other => comet_error(other),
        })?;
    if !was_open {
        announce(state, name, true).await;
    }
    Ok(room)
}

/// Tells everyone (in the default room) that the room `name` opened or
/// closed. A lost announcement costs a stale room list until the next
/// page load, not a message: it is logged, not returned.
async fn announce(state: &ChatState, name: &str, open: bool) {
    let contents = serde_json::json!({ "name": name, "open": open });
    if let Err(error) = state.chat.send_to_all(ROOM, &contents).await {
        tracing::warn!(%error, room = name, open, "could not announce a room");
    }
}

/// Every open room's name, the default room first, and whether the
/// holder of `token` is in it.
pub async fn rooms_of(
    state: &ChatState,
    token: &PrivateToken,
) -> Result<Vec<(String, bool)>, ServerFnError> {
    let names = state.comet.channel_names().await.map_err(comet_error)?;
    let mut rooms = vec![(CHANNEL.to_owned(), true)];
    for name in names.into_iter().filter(|name| name != CHANNEL) {
        // Closed since it was listed: not a room any more.
        let Ok(room) = state.comet.find(&name).await else {
            continue;
        };
        let joined = room.client(token).await.map_err(comet_error)?.is_some();
        rooms.push((name, joined));
    }
    Ok(rooms)
}

/// Takes the holder of `token` out of `room` (a "left" for its members);
/// the room closes when nobody is left in it.
pub async fn leave(
    state: &ChatState,
    room: &Manager,
    token: &PrivateToken,
) -> Result<(), ServerFnError> {
    let Some(record) = room.client(token).await.map_err(comet_error)? else {
        return Ok(());
    };
    room.remove_client(&record.public)
        .await
        .map_err(comet_error)?;
    if room.clients().await.map_err(comet_error)?.is_empty() {
        // Someone joining in this instant finds the room gone and is told
        // so; nothing of theirs is lost but the join.
        match state.comet.close(room.name()).await {
            Ok(true) => announce(state, room.name(), false).await,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, room = room.name(), "could not close an empty room")
            }
        }
    }
    Ok(())
}

/// Takes the caller out of every room but the default one (at logout).
pub async fn leave_all(state: &ChatState) -> Result<(), ServerFnError> {
    let token = current_token()?;
    for (name, joined) in rooms_of(state, &token).await? {
        if joined && name != CHANNEL {
            let room = room(state, Some(&name)).await?;
            leave(state, &room, &token).await?;
        }
    }
    Ok(())
}
