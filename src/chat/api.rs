//! Server functions: everything the browser *sends*. Each has a stable
//! endpoint under `/api/` (form-encoded arguments, as Leptos sends them), so
//! pages, tests and other HTTP clients can rely on it.
//!
//! Errors are `ServerFnError::ServerError` with a sentence meant for the
//! user; [`error_text`] pulls that sentence out for the UI.

use super::{History, OnlineUser};
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
    use crate::comet::{CometError, Taken};
    use http::StatusCode;
    let state = ssr::state()?;
    let name = ssr::valid_name(&username, state.max_name_chars)?;
    let (token, client) = match state.chat.initialize_client(&name).await {
        Ok(created) => created,
        Err(CometError::ClientExists(Taken::DisplayName)) => {
            return Err(ssr::refuse(StatusCode::CONFLICT, NAME_TAKEN));
        }
        Err(CometError::AtCapacity(_)) => {
            return Err(ssr::refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The chat is full right now. Please try again in a little while.",
            ));
        }
        Err(e) => return Err(ssr::internal(e)),
    };
    tracing::info!(client = %client.public, "logged in");
    ssr::set_token_cookie(Some(token.expose()), state.cookie_secure);
    leptos_axum::redirect("/chat");
    Ok(())
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    let state = ssr::state()?;
    if let Ok(client) = ssr::current_client(&state).await {
        state
            .chat
            .remove_client(&client.public)
            .await
            .map_err(ssr::internal)?;
        tracing::info!(client = %client.public, "logged out");
    }
    ssr::set_token_cookie(None, state.cookie_secure);
    leptos_axum::redirect("/");
    Ok(())
}

/// Sends `text` to everyone. `id` is the page's own id for this send
/// (letters, digits, `-`, `_`; at most 64): the same send retried after a
/// lost answer is not sent twice.
#[server(prefix = "/api", endpoint = "send_message")]
pub async fn send_message(text: String, id: Option<String>) -> Result<(), ServerFnError> {
    let state = ssr::state()?;
    let client = ssr::current_client(&state).await?;
    let once = ssr::once_key(&client, id.as_deref())?;
    let contents = ssr::chat_text(&state, &client, &text, None)?;
    ssr::check_rate(&state, &client)?;
    state
        .chat
        .send_to_all_once(once.as_deref(), super::CHAT_MESSAGE, &contents)
        .await
        .map_err(ssr::internal)?;
    Ok(())
}

/// Sends `text` to the user with public token `to` only (and back to the
/// sender). `id` as for [`send_message`].
#[server(prefix = "/api", endpoint = "send_private_message")]
pub async fn send_private_message(
    to: String,
    text: String,
    id: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::comet::PublicToken;
    use http::StatusCode;
    let state = ssr::state()?;
    let client = ssr::current_client(&state).await?;
    let once = ssr::once_key(&client, id.as_deref())?;
    let target = PublicToken::parse(&to)
        .ok_or_else(|| ssr::refuse(StatusCode::BAD_REQUEST, "That is not a user's address."))?;
    let not_online = || ssr::refuse(StatusCode::NOT_FOUND, "That user is not online.");
    let target_record = state
        .chat
        .client_by_public(&target)
        .await
        .map_err(ssr::internal)?
        .ok_or_else(not_online)?;
    let contents = ssr::chat_text(
        &state,
        &client,
        &text,
        Some((&target, &target_record.display_name)),
    )?;
    ssr::check_rate(&state, &client)?;
    let audience = [target, client.public];
    match state
        .chat
        .send_to_once(
            &audience,
            once.as_deref(),
            super::PRIVATE_MESSAGE,
            &contents,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(crate::comet::CometError::UnknownRecipient) => Err(ssr::refuse(
            StatusCode::NOT_FOUND,
            "That user is not online.",
        )),
        Err(e) => Err(ssr::internal(e)),
    }
}

#[server(prefix = "/api", endpoint = "online_users")]
pub async fn online_users() -> Result<Vec<OnlineUser>, ServerFnError> {
    let state = ssr::state()?;
    ssr::current_client(&state).await?;
    let clients = state.chat.clients().await.map_err(ssr::internal)?;
    Ok(clients
        .into_iter()
        .map(|c| OnlineUser {
            name: c.display_name,
            public: c.public.to_string(),
        })
        .collect())
}

#[server(prefix = "/api", endpoint = "recent_messages")]
pub async fn recent_messages() -> Result<History, ServerFnError> {
    let state = ssr::state()?;
    let token = ssr::current_token()?;
    let client = ssr::current_client(&state).await?;
    let (messages, cursor) = state
        .chat
        .recent(&token, state.history)
        .await
        .map_err(ssr::internal)?;
    Ok(History {
        me: super::Me {
            name: client.display_name,
            public: client.public.to_string(),
        },
        messages,
        cursor,
    })
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Session plumbing shared by the server functions and the pages.

    use crate::comet::{
        request_token, unix_millis, ClientRecord, Manager, PrivateToken, PublicToken, TOKEN_COOKIE,
    };
    use http::{header, request::Parts, HeaderValue, StatusCode};
    use leptos::prelude::*;
    use std::sync::Arc;

    /// What the server functions need, provided as Leptos context.
    #[derive(Clone)]
    pub struct ChatState {
        pub chat: Arc<Manager>,
        pub cookie_secure: bool,
        pub max_name_chars: usize,
        pub max_message_chars: usize,
        pub history: usize,
        pub limiter: Arc<SendLimiter>,
    }

    /// Sends per client: a token bucket per public token on this node
    /// (`rate` per second, up to `burst` saved up). A retried send with the
    /// same id is charged again, which is fine: it is rare and bounded.
    pub struct SendLimiter {
        rate: f64,
        burst: f64,
        buckets:
            std::sync::Mutex<std::collections::HashMap<PublicToken, (f64, std::time::Instant)>>,
    }

    impl SendLimiter {
        /// `rate` 0 turns the limit off.
        pub fn new(rate: u32, burst: u32) -> Self {
            Self {
                rate: f64::from(rate),
                burst: f64::from(burst.max(1)),
                buckets: Default::default(),
            }
        }

        /// Takes one send; `Err(wait)` when the client must slow down.
        pub fn take(&self, client: &PublicToken) -> Result<(), std::time::Duration> {
            if self.rate == 0.0 {
                return Ok(());
            }
            let now = std::time::Instant::now();
            let mut buckets = self.buckets.lock().expect("send buckets poisoned");
            if buckets.len() >= 4096 && buckets.len().is_power_of_two() {
                // Forget clients whose bucket has refilled: they lose nothing.
                let (rate, burst) = (self.rate, self.burst);
                buckets.retain(|_, (tokens, at)| {
                    *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
                });
            }
            let (tokens, at) = buckets.entry(*client).or_insert((self.burst, now));
            *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
            *at = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(())
            } else {
                Err(std::time::Duration::from_secs_f64(
                    (1.0 - *tokens) / self.rate,
                ))
            }
        }
    }

    /// Refuses a send over the client's rate with a "slow down" sentence.
    pub fn check_rate(state: &ChatState, client: &ClientRecord) -> Result<(), ServerFnError> {
        state.limiter.take(&client.public).map_err(|wait| {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                let secs = wait.as_secs().max(1);
                if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                    response.insert_header(header::RETRY_AFTER, value);
                }
            }
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "You are sending messages too fast. Please slow down.",
            )
        })
    }

    pub fn state() -> Result<ChatState, ServerFnError> {
        use_context::<ChatState>()
            .ok_or_else(|| ServerFnError::new("chat state missing from context"))
    }

    /// An error with a user-facing sentence. The status is set only for
    /// script callers: a plain HTML form post must keep the redirect back to
    /// the page (which then shows the error), so its status is left alone.
    pub fn refuse(status: StatusCode, message: impl Into<String>) -> ServerFnError {
        let plain_form = use_context::<Parts>()
            .and_then(|p| p.headers.get(header::ACCEPT).cloned())
            .and_then(|v| v.to_str().ok().map(|v| v.contains("text/html")))
            .unwrap_or(false);
        if !plain_form {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(status);
            }
        }
        ServerFnError::ServerError(message.into())
    }

    /// An unexpected failure: logged in full, shown to the user in general terms.
    pub fn internal(error: impl std::fmt::Display) -> ServerFnError {
        tracing::error!(%error, "server function failed");
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on the server. Please try again.",
        )
    }

    pub fn current_token() -> Result<PrivateToken, ServerFnError> {
        use_context::<Parts>()
            .and_then(|parts| request_token(&parts.headers))
            .ok_or_else(session_ended)
    }

    fn session_ended() -> ServerFnError {
        refuse(
            StatusCode::UNAUTHORIZED,
            "Your session has ended. Please log in again.",
        )
    }

    /// The client whose cookie came with this request.
    pub async fn current_client(state: &ChatState) -> Result<ClientRecord, ServerFnError> {
        let token = current_token()?;
        state
            .chat
            .client(&token)
            .await
            .map_err(internal)?
            .ok_or_else(session_ended)
    }

    /// Sets (or, with `None`, clears) the token cookie: HttpOnly so no
    /// script can read it, SameSite=Strict so no other site can send it.
    pub fn set_token_cookie(token: Option<&str>, secure: bool) {
        let mut cookie = match token {
            Some(token) => format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"),
            None => format!("{TOKEN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        };
        if secure {
            cookie.push_str("; Secure");
        }
        if let (Some(response), Ok(value)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            HeaderValue::from_str(&cookie),
        ) {
            response.append_header(header::SET_COOKIE, value);
        }
    }

    /// The `once` key of a send: the sender's public token and the page's
    /// id for the send, so two users' ids never collide.
    pub fn once_key(
        client: &ClientRecord,
        id: Option<&str>,
    ) -> Result<Option<String>, ServerFnError> {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        let ok = id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "The send id must be at most 64 letters, digits, '-' or '_'.",
            ));
        }
        Ok(Some(format!("{}:{id}", client.public)))
    }

    /// A display name, trimmed, or a sentence saying what is wrong with it.
    pub fn valid_name(raw: &str, max_chars: usize) -> Result<String, ServerFnError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(refuse(StatusCode::BAD_REQUEST, "Please enter a name."));
        }
        if name.chars().count() > max_chars {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("That name is too long: at most {max_chars} characters."),
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.');
        if !name.chars().all(allowed) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Names may use letters, digits, spaces, '-', '_' and '.' only.",
            ));
        }
        Ok(name.to_owned())
    }

    /// The contents of a chat message, or a sentence saying why not.
    pub fn chat_text(
        state: &ChatState,
        from: &ClientRecord,
        raw: &str,
        to: Option<(&PublicToken, &str)>,
    ) -> Result<serde_json::Value, ServerFnError> {
        // Browsers send "\r\n" for a newline in a form; keep one kind.
        let text = raw.replace("\r\n", "\n");
        let text = text.trim();
        if text.is_empty() {
            return Err(refuse(StatusCode::BAD_REQUEST, "Type a message first."));
        }
        if text.chars().count() > state.max_message_chars {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "That message is too long: at most {} characters.",
                    state.max_message_chars
                ),
            ));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "That message contains control characters.",
            ));
        }
        let contents = super::super::ChatText {
            f: from.display_name.clone(),
            p: from.public.to_string(),
            m: text.to_owned(),
            t: unix_millis(),
            to: to.map(|(public, _)| public.to_string()),
            tn: to.map(|(_, name)| name.to_owned()),
        };
        serde_json::to_value(contents).map_err(internal)
    }
}
