//! `comet`: server push over HTTP long polling, for any Leptos/axum app.
//!
//! A browser cannot be called back, so it asks: one `POST /comet/{channel}`
//! (a *poll*) is held open until something newer than the poll's cursor is
//! addressed to the client, or the client's connection timeout passes. The
//! reply carries every pending message at once and the client polls again
//! from the last id it got. That cursor is what makes delivery exact: a
//! client that polls with the last id it saw gets every later message
//! addressed to it once and in order, whatever happened between two polls.
//!
//! What lives where:
//!
//! - [`wire`]: the JSON of the channel route, shared by server and browser.
//! - `token`, `error`, `provider`, `memory`, `manager`, `route` (feature
//!   `server`): tokens, typed errors, the [`Provider`] seam (where clients and
//!   messages are kept and how polls are woken), the in-process provider, the
//!   per-channel [`Manager`] the app talks to, and the axum channel route;
//!   `stream`: a server-side [`Subscription`], a poll loop as a `Stream`.
//!   `manager/` is one file per part: the channel set ([`Comet`]), clients,
//!   sends and history, a poll's life, the idle reaper, [`Settings`].
//! - `subscriber` (feature `browser`): the browser's long-poll loop;
//!   `tabs`: one poll shared by all the tabs of a browser.
//! - `client` (feature `client`): a native Rust client, a bot's or a
//!   terminal's: a `Stream` of a channel's messages over HTTP.
//! - `testing` (feature `testing`): the provider suite both providers
//!   pass, for a provider of your own to prove itself with one line in its
//!   tests, `comet::provider_suite!(my_factory);` (`my_factory`: an async fn
//!   taking a `Retention` and giving a fresh `Arc<dyn Provider>`).
//!
//! This crate knows nothing about what the messages mean: join and leave
//! are ordinary messages ([`wire::PRESENCE`]), coalesced per short window
//! (`presence`) so a crowd arriving does not cost a message per arrival.
//!
//! # The wire protocol
//!
//! One route, `POST /comet/{channel}`, with the client's private token in
//! a cookie or as `Authorization: Bearer <token>`, and a JSON body
//! `{"since": "<cursor>"}` (or `{"since": null}`: from now on). The answer:
//!
//! | status | body | what the client does |
//! | --- | --- | --- |
//! | `200` | `{"status":"messages","messages":[{"id","n","c"},…]}` | handles them in order, polls again from the last `id` |
//! | `200` | `{"status":"timeout"}` | polls again with the same cursor |
//! | `400` | `{"error":"bad_request",…}` | stops: the request is wrong |
//! | `401` | `{"error":"unknown_client",…}` | stops: logged out, removed as idle, or lost; log in again |
//! | `404` | `{"error":"unknown_channel",…}` | stops |
//! | `410` | `{"error":"cursor_expired",…}` | resynchronises: reloads history, or polls from `null` |
//! | `429` | `{"error":"too_many_polls",…}` | backs off |
//! | `503` | `{"error":"unavailable",…}` + `Retry-After` | retries after `Retry-After` (the store is away, the node is full or stopping) |
//!
//! A message is `{"id": cursor, "n": kind, "c": any JSON}`; ids are opaque
//! and ordered ([`Cursor`]). The codes are in [`wire::codes`]. The chat's
//! README (one directory up) documents the HTTP front's own answers and
//! limits.
//!
//! # A channel in a few lines (feature `server`)
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), comet::CometError> {
//! use comet::{Comet, MemoryProvider, Poll, Retention, Settings};
//! use std::sync::Arc;
//!
//! let comet = Comet::new(
//!     Arc::new(MemoryProvider::new(Retention::default())),
//!     Settings::default(),
//!     &["news"],
//! );
//! let news = comet.channel("news").expect("a channel we named");
//! let (token, _record) = news.initialize_client("ada").await?;
//! // A cursor from now on, then a message after it.
//! let (_, cursor) = news.recent(&token, 0).await?;
//! news.send_to_all("Headline", &serde_json::json!({ "text": "hello" }))
//!     .await?;
//! // What `POST /comet/news` with `{"since": cursor}` would answer.
//! let Poll::Messages(messages) = news.poll(&token, Some(cursor)).await? else {
//!     panic!("the message is there");
//! };
//! assert_eq!(messages.len(), 1);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```
//!
//! Wiring it into an app ([`Comet::router`]), the Redis provider for
//! several nodes, and the browser subscriber are shown by the chat in this
//! repository (`src/server.rs`, `src/chat/`).

pub mod status;
pub mod wire;

#[cfg(feature = "server")]
mod client_table;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod manager;
#[cfg(feature = "server")]
pub mod memory;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
mod presence;
#[cfg(feature = "server")]
mod provider;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "server")]
mod route;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
mod stream;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "server")]
mod token;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "browser")]
pub mod subscriber;
#[cfg(feature = "browser")]
mod tabs;

pub use status::Status;
pub use wire::{Cursor, Message};

#[cfg(feature = "server")]
pub use {
    error::{CometError, Taken},
    manager::{unix_millis, Comet, Manager, OpenPoll, Poll, Settings},
    memory::{MemoryProvider, Retention},
    provider::{Audience, ClientRecord, PollingClient, Provider, StoredMessage, ONCE_WINDOW},
    route::{
        cookie_clash, cookie_token, request_token, token_cookie, wants_early_ack, Answer,
        SECURE_TOKEN_COOKIE, TOKEN_COOKIE,
    },
    stream::Subscription,
    token::{PrivateToken, PublicToken, TokenDigest, TokenHasher, TokenMap},
};

#[cfg(feature = "redis")]
pub use redis::RedisProvider;

/// The attribute [`Provider`] is written with, for a provider of your own.
#[cfg(feature = "server")]
pub use async_trait::async_trait;
