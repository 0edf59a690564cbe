//! Server functions: everything the browser *sends*. Each has a stable
//! endpoint under `/api/` (form-encoded arguments, as Leptos sends them), so
//! pages, tests and other HTTP clients can rely on it.
//!
//! Errors are `ServerFnError::ServerError` with a sentence meant for the
//! user; [`error_text`] pulls that sentence out for the UI. The checks live
//! beside them: `session` (who is calling, how refusals are answered),
//! `text` (names and messages), `limits` and `throttle` (per-address
//! rates) and `args` (malformed arguments are `400`, not Leptos's `500`).

use super::lines::OnlineUser;
use super::History;
use leptos::prelude::*;

/// Shown when a display name is already in use (exact wording matters: it
/// is the original article's).
pub const NAME_TAKEN: &str = "User is already logged into the chat application.";

/// The user-facing sentence of a server function error.
pub fn error_text(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(_) => {
            "Could not reach the server. Check your connection and try again.".into()
        }
        other => other.to_string(),
    }
}

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String) -> Result<(), ServerFnError> {
    use super::{session, text, throttle};
    use comet::{CometError, Taken};
    use http::StatusCode;
    let state = session::state()?;
    let name = text::valid_name(&username, state.max_name_chars)?;
    throttle::check_login(&state)?;
    let key = text::name_key(&name);
    let (token, client) = match state.chat.initialize_client_keyed(&name, key).await {
        Ok(created) => created,
        Err(CometError::ClientExists(Taken::DisplayName)) => {
            // The exact name taken keeps the article's sentence; a
            // look-alike of it gets its own.
            let online = state.chat.clients().await.map_err(session::comet_error)?;
            let same = online
                .iter()
                .any(|c| c.display_name.to_lowercase() == name.to_lowercase());
            let sentence = if same {
                NAME_TAKEN
            } else {
                text::NAME_LOOKALIKE
            };
            return Err(session::refuse(StatusCode::CONFLICT, sentence));
        }
        Err(e @ CometError::AtCapacity(_)) => {
            return Err(session::refuse_for(
                StatusCode::SERVICE_UNAVAILABLE,
                e.retry_after().unwrap_or(std::time::Duration::from_secs(2)),
                "The chat is full right now. Please try again in a little while.",
            ));
        }
        Err(e) => return Err(session::comet_error(e)),
    };
    tracing::info!(client = %client.public, "logged in");
    session::set_token_cookie(Some(token.expose()), state.cookie_secure);
    leptos_axum::redirect("/chat");
    Ok(())
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    use super::session;
    let state = session::state()?;
    if let Ok(client) = session::current_client(&state).await {
        super::membership::leave_all(&state).await?;
        state
            .chat
            .remove_client(&client.public)
            .await
            .map_err(session::comet_error)?;
        tracing::info!(client = %client.public, "logged out");
    }
    session::set_token_cookie(None, state.cookie_secure);
    leptos_axum::redirect("/");
    Ok(())
}

/// Sends `text` to everyone in `room` (default: the chat room). `id` is
/// the page's own id for this send (letters, digits, `-`, `_`; at most
/// 64): the same send retried after a lost answer is not sent twice.
#[server(prefix = "/api", endpoint = "send_message")]
pub async fn send_message(
    text: String,
    id: Option<String>,
    room: Option<String>,
) -> Result<(), ServerFnError> {
    use super::{session, text as check, throttle};
    let state = session::state()?;
    let (room, client) = in_room(&state, room.as_deref()).await?;
    let idempotency_key = check::idempotency_key(&client, id.as_deref())?;
    let contents = check::chat_text(state.max_message_chars, &client, &text, None)?;
    throttle::check_send(&state)?;
    room.send_to_all_idempotent(idempotency_key.as_deref(), super::CHAT_MESSAGE, &contents)
        .await
        .map_err(session::comet_error)?;
    Ok(())
}

/// Sends `text` to the user with public token `to` in `room` only (and
/// back to the sender). `id` and `room` as for [`send_message`].
#[server(prefix = "/api", endpoint = "send_private_message")]
pub async fn send_private_message(
    to: String,
    text: String,
    id: Option<String>,
    room: Option<String>,
) -> Result<(), ServerFnError> {
    use super::{session, text as check, throttle};
    use comet::PublicToken;
    use http::StatusCode;
    let state = session::state()?;
    let (room, client) = in_room(&state, room.as_deref()).await?;
    let idempotency_key = check::idempotency_key(&client, id.as_deref())?;
    let target = PublicToken::parse(&to)
        .ok_or_else(|| session::refuse(StatusCode::BAD_REQUEST, "That is not a user's address."))?;
    let not_online = || session::refuse(StatusCode::NOT_FOUND, "That user is not online.");
    let target_record = room
        .client_by_public(&target)
        .await
        .map_err(session::comet_error)?
        .ok_or_else(not_online)?;
    let contents = check::chat_text(
        state.max_message_chars,
        &client,
        &text,
        Some((&target, &target_record.display_name)),
    )?;
    throttle::check_send(&state)?;
    let audience = [target, client.public];
    match room
        .send_to_idempotent(
            &audience,
            idempotency_key.as_deref(),
            super::PRIVATE_MESSAGE,
            &contents,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(comet::CometError::UnknownRecipient) => Err(session::refuse(
            StatusCode::NOT_FOUND,
            "That user is not online.",
        )),
        Err(e) => Err(session::comet_error(e)),
    }
}

/// Who is in `room` (default: the chat room).
#[server(prefix = "/api", endpoint = "online_users")]
pub async fn online_users(room: Option<String>) -> Result<Vec<OnlineUser>, ServerFnError> {
    use super::session;
    let state = session::state()?;
    let (room, _) = in_room(&state, room.as_deref()).await?;
    let clients = room.clients().await.map_err(session::comet_error)?;
    Ok(clients
        .into_iter()
        .map(|c| OnlineUser {
            name: c.display_name,
            public: c.public.to_string(),
        })
        .collect())
}

/// The recent messages of `room` (default: the chat room) and the cursor
/// to poll it from.
#[server(prefix = "/api", endpoint = "recent_messages")]
pub async fn recent_messages(room: Option<String>) -> Result<History, ServerFnError> {
    use super::session;
    let state = session::state()?;
    let token = session::current_token()?;
    let (room, client) = in_room(&state, room.as_deref()).await?;
    let (messages, cursor) = room
        .recent(&token, state.history)
        .await
        .map_err(session::comet_error)?;
    Ok(History {
        me: super::Me {
            name: client.display_name,
            public: client.public.to_string(),
        },
        messages,
        cursor,
    })
}

/// The room `name` (`None`: the chat room) and the caller's client in it:
/// a session that ended is `401`, a room not open `404`, a room the caller
/// is not in `403`.
#[cfg(feature = "ssr")]
async fn in_room(
    state: &super::session::ChatState,
    name: Option<&str>,
) -> Result<(std::sync::Arc<comet::Manager>, comet::ClientRecord), ServerFnError> {
    use super::{membership, session};
    let me = session::current_client(state).await?;
    let room = membership::room(state, name).await?;
    if std::sync::Arc::ptr_eq(&room, &state.chat) {
        return Ok((room, me));
    }
    let client = membership::member(&room, &session::current_token()?).await?;
    Ok((room, client))
}
