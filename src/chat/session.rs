//! Session plumbing shared by the server functions and the pages: the
//! chat's state as Leptos context, who is calling (the session cookie or a
//! bearer token), and how a refusal becomes a status and a sentence.
//!
//! Every error a user can see is a sentence; the status is set for script
//! callers only (a plain form post keeps its redirect back to the page). A
//! provider that is down is `503` + `Retry-After`, never `500`: the user
//! can do something about the first (wait), nothing about the second.

use super::limits::Limits;
use crate::peer::Peer;
use comet::{cookie_clash, request_token, ClientRecord, Comet, CometError, Manager, PrivateToken};
use http::{header, request::Parts, HeaderValue, StatusCode};
use leptos::prelude::*;
use std::sync::Arc;

/// What the server functions need, provided as Leptos context.
#[derive(Clone)]
pub struct ChatState {
    /// Every channel: the default room (`chat`) and the rooms opened since.
    pub comet: Comet,
    /// The default room, which everyone is in.
    pub chat: Arc<Manager>,
    pub cookie_secure: bool,
    pub max_name_chars: usize,
    pub max_message_chars: usize,
    pub history: usize,
    pub limits: Arc<Limits>,
    pub peer: Arc<Peer>,
}

impl ChatState {
    pub fn new(config: &crate::config::Config, comet: Comet, chat: Arc<Manager>) -> Self {
        let c = &config.chat;
        Self {
            comet,
            chat,
            cookie_secure: c.cookie_secure,
            max_name_chars: c.max_name_chars,
            max_message_chars: c.max_message_chars,
            history: c.history,
            limits: Arc::new(Limits::new(c)),
            peer: Arc::new(Peer::new(c.trusted_proxies.clone())),
        }
    }
}

pub fn state() -> Result<ChatState, ServerFnError> {
    use_context::<ChatState>().ok_or_else(|| ServerFnError::new("chat state missing from context"))
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

/// As [`refuse`], telling the caller when to try again (`Retry-After`,
/// whole seconds, at least 1).
pub fn refuse_for(
    status: StatusCode,
    wait: std::time::Duration,
    message: impl Into<String>,
) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.insert_header(header::RETRY_AFTER, value);
        }
    }
    refuse(status, message)
}

/// The sentence for a provider that does not answer.
pub const UNAVAILABLE: &str =
    "The chat is unavailable right now. Please try again in a few seconds.";

/// A comet error the server function has no better answer for: a provider
/// outage is `503` + `Retry-After`, anything else [`internal`].
pub fn comet_error(error: CometError) -> ServerFnError {
    match error {
        CometError::Unavailable(_) => {
            tracing::warn!(%error, "provider unavailable");
            let wait = error
                .retry_after()
                .unwrap_or(std::time::Duration::from_secs(2));
            refuse_for(StatusCode::SERVICE_UNAVAILABLE, wait, UNAVAILABLE)
        }
        other => internal(other),
    }
}

/// An unexpected failure: logged in full, shown to the user in general terms.
pub fn internal(error: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(%error, "server function failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on the server. Please try again.",
    )
}

/// The private token this request carries (bearer header, else the one
/// session cookie); two session cookies are refused, not guessed between.
pub fn current_token() -> Result<PrivateToken, ServerFnError> {
    let parts = use_context::<Parts>().ok_or_else(session_ended)?;
    if let Some(token) = request_token(&parts.headers) {
        return Ok(token);
    }
    if cookie_clash(&parts.headers) {
        return Err(refuse(StatusCode::BAD_REQUEST, COOKIE_CLASH));
    }
    Err(session_ended())
}

/// Said to a request carrying two session cookies.
pub const COOKIE_CLASH: &str = "This request carries more than one session cookie. \
     Please clear this site's cookies and log in again.";

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
        .map_err(comet_error)?
        .ok_or_else(session_ended)
}

/// The address this request is charged to (see [`Peer`]).
pub fn client_ip(state: &ChatState) -> Option<std::net::IpAddr> {
    use_context::<Parts>().and_then(|parts| state.peer.client_ip(&parts))
}

/// Sets (or, with `None`, clears) the token cookie: HttpOnly so no
/// script can read it, SameSite=Strict so no other site can send it, and
/// over HTTPS `__Host-`-prefixed, so no sibling subdomain can plant one.
pub fn set_token_cookie(token: Option<&str>, secure: bool) {
    let name = comet::token_cookie(secure);
    let mut cookie = match token {
        Some(token) => format!("{name}={token}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
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
