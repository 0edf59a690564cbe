//! The server functions for rooms: list them, open one, join, leave.
//! (Sending, history and who is here take a `room` argument in `api.rs`.)
//! The rules live in `membership.rs`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A room as the room list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Its name, which is also its address: `/chat/{name}`.
    pub name: String,
    /// Whether the caller is in it.
    pub joined: bool,
}

/// Every open room, the default one first, then by name.
#[server(prefix = "/api", endpoint = "rooms")]
pub async fn rooms() -> Result<Vec<RoomInfo>, ServerFnError> {
    use super::{membership, session};
    let state = session::state()?;
    session::current_client(&state).await?;
    let token = session::current_token()?;
    Ok(membership::rooms_of(&state, &token)
        .await?
        .into_iter()
        .map(|(name, joined)| RoomInfo { name, joined })
        .collect())
}

/// Opens the room `name` (as typed: "Rust Lang" is `rust-lang`) and puts
/// the caller in it; a room by that name open already is joined instead.
/// Answers the room's name; a plain form post is sent to the room.
#[server(prefix = "/api", endpoint = "create_room")]
pub async fn create_room(name: String) -> Result<String, ServerFnError> {
    use super::{membership, session, throttle};
    let state = session::state()?;
    let me = session::current_client(&state).await?;
    let token = session::current_token()?;
    let name = membership::room_name(&name)?;
    throttle::check_send(&state)?;
    let room = membership::open(&state, &name, &me).await?;
    membership::join(&room, &token, &me).await?;
    tracing::info!(room = %name, client = %me.public, "opened a room");
    leptos_axum::redirect(&format!("/chat/{name}"));
    Ok(name)
}

/// Puts the caller in the open room `room`.
#[server(prefix = "/api", endpoint = "join_room")]
pub async fn join_room(room: String) -> Result<(), ServerFnError> {
    use super::{membership, session};
    let state = session::state()?;
    let me = session::current_client(&state).await?;
    let token = session::current_token()?;
    let room = membership::room(&state, Some(&room)).await?;
    membership::join(&room, &token, &me).await?;
    Ok(())
}

/// Takes the caller out of `room`; the room closes when its last member
/// leaves. The default room is left only by logging out.
#[server(prefix = "/api", endpoint = "leave_room")]
pub async fn leave_room(room: String) -> Result<(), ServerFnError> {
    use super::{membership, session};
    use http::StatusCode;
    let state = session::state()?;
    session::current_client(&state).await?;
    let token = session::current_token()?;
    if room == super::CHANNEL {
        return Err(session::refuse(
            StatusCode::BAD_REQUEST,
            "Everyone stays in the chat room; log out to leave it.",
        ));
    }
    let manager = membership::room(&state, Some(&room)).await?;
    membership::leave(&state, &manager, &token).await?;
    leptos_axum::redirect("/chat");
    Ok(())
}
