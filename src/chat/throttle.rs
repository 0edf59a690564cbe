//! Logins and sends over their address's rate are refused: each is
//! charged to the caller's address ([`super::limits`]), and one over the
//! rate is answered `429` with `Retry-After` and a sentence
//! ([`super::session`]). Its own file so `limits` (the buckets) need not
//! know about sessions, nor `session` about refusing for speed.

use super::limits::{AddrKey, Buckets};
use super::session::{self, ChatState};
use http::StatusCode;
use leptos::prelude::ServerFnError;

/// Refuses a login over the caller's address's rate.
pub fn check_login(state: &ChatState) -> Result<(), ServerFnError> {
    charge(
        state,
        &state.limits.logins,
        "Too many logins from your network. Please wait a minute and try again.",
    )
}

/// Refuses a send over the caller's address's rate with a "slow down"
/// sentence.
pub fn check_send(state: &ChatState) -> Result<(), ServerFnError> {
    charge(
        state,
        &state.limits.sends,
        "You are sending messages too fast. Please slow down.",
    )
}

fn charge(state: &ChatState, buckets: &Buckets, sentence: &str) -> Result<(), ServerFnError> {
    let address = AddrKey::of(session::client_ip(state));
    buckets
        .take(address)
        .map_err(|wait| session::refuse_for(StatusCode::TOO_MANY_REQUESTS, wait, sentence))
}
