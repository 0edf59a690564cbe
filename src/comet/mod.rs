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
//!   `ssr`): tokens, typed errors, the [`Provider`] seam (where clients and
//!   messages are kept and how polls are woken), the in-process provider, the
//!   per-channel [`Manager`] the app talks to, and the axum channel route.
//! - `subscriber` (feature `hydrate`): the browser's long-poll loop;
//!   `tabs`: one poll shared by all the tabs of a browser.
//!
//! This module knows nothing about what the messages mean: join and leave
//! are ordinary messages ([`wire::PRESENCE`]), coalesced per short window
//! (`presence`) so a crowd arriving does not cost a message per arrival.

pub mod status;
pub mod wire;

#[cfg(feature = "ssr")]
mod client_table;
#[cfg(feature = "ssr")]
mod error;
#[cfg(feature = "ssr")]
mod manager;
#[cfg(feature = "ssr")]
pub mod memory;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
mod presence;
#[cfg(feature = "ssr")]
mod provider;
#[cfg(feature = "ssr")]
pub mod redis;
#[cfg(feature = "ssr")]
mod route;
#[cfg(feature = "ssr")]
mod token;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "hydrate")]
pub mod subscriber;
#[cfg(feature = "hydrate")]
mod tabs;

pub use status::Status;
pub use wire::{Cursor, Message};

#[cfg(feature = "ssr")]
pub use {
    error::{CometError, Taken},
    manager::{unix_millis, Comet, Manager, OpenPoll, Poll, Settings},
    memory::{MemoryProvider, Retention},
    provider::{Audience, ClientRecord, PollingClient, Provider, StoredMessage},
    redis::RedisProvider,
    route::{
        cookie_clash, cookie_token, request_token, token_cookie, wants_early_ack, Answer,
        SECURE_TOKEN_COOKIE, TOKEN_COOKIE,
    },
    token::{PrivateToken, PublicToken, TokenDigest, TokenHasher, TokenMap},
};
