//! What a room's page needs first, read in one place for the server's
//! render of `/chat/{room}` and for the browser moving to another room:
//! the room list, then (joining the room if need be) who is in the room,
//! then its history. Who is in it is read *before* the history: every join
//! or leave after that snapshot is in the history or after its cursor.

use super::api::{error_text, online_users, recent_messages};
use super::lines::OnlineUser;
use super::rooms::{join_room, rooms, RoomInfo};
use super::{History, CHANNEL};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A room, opened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub room: String,
    pub rooms: Vec<RoomInfo>,
    pub online: Vec<OnlineUser>,
    pub history: History,
}

/// Why a room did not open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NotOpened {
    /// No session (never logged in, logged out, removed as idle).
    SessionEnded,
    /// The room is not there or refused you: the sentence says which.
    Room(String),
}

pub async fn open_room(room: String) -> Result<Opened, NotOpened> {
    let rooms = rooms().await.map_err(|_| NotOpened::SessionEnded)?;
    let room_error = |e: ServerFnError| NotOpened::Room(error_text(&e));
    if room != CHANNEL {
        join_room(room.clone()).await.map_err(room_error)?;
    }
    let online = online_users(Some(room.clone())).await.map_err(room_error)?;
    let history = recent_messages(Some(room.clone()))
        .await
        .map_err(room_error)?;
    Ok(Opened {
        room,
        rooms,
        online,
        history,
    })
}
