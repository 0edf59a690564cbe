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
//!   `manager/` is one file per part: the channel set ([`Comet`]), channels
//!   opened and closed at run time, clients, sends and history, a poll's
//!   life, the idle reaper, [`Settings`]. [`channels`]: the app's rules for
//!   run-time channels ([`channels::ChannelPolicy`]) and how nodes agree on
//!   them.
//! - `subscriber` (feature `browser`): the browser's long-poll loop;
//!   `tabs`: one poll shared by all the tabs of a browser;
//!   `channels_subscriber`: the same for several channels with one
//!   `POST /comet`, and `channels_tabs` its tab sharing (see
//!   [Several channels in the browser](#several-channels-in-the-browser-feature-browser));
//!   `fetch`: the request, back-off and status both loops share.
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
//! A client of several channels may follow them with one poll, `POST
//! /comet` with `{"channels": {name: cursor or null, …}}` ([`wire::ChannelsRequest`],
//! [`Comet::poll_channels`]): the answer groups each channel's messages
//! under its name and reports a channel whose part failed under `errors`,
//! and a channel asked for from now on that had nothing says where now was
//! under `cursors`, to be polled from there next ([`wire::ChannelsReply`]);
//! the README's wire protocol says the rest.
//!
//! A message is `{"id": cursor, "n": kind, "c": any JSON}`; ids are opaque
//! and ordered ([`Cursor`]). The codes are in [`wire::codes`]. The chat's
//! README (one directory up) documents the HTTP front's own answers and
//! limits.
//!
//! On the server, a poll's answer has one name per layer (feature
//! `server`): the manager decides a [`PollOutcome`] (the messages, or a
//! timeout); the route encodes it as a [`wire::PollReply`] (the JSON body)
//! in a [`PollResponse`] (status, `Retry-After` and body: the HTTP
//! response), which the HTTP front writes as a
//! [`serve::ShortcutResponse`] when it answers the poll before the router.
//!
//! # A channel in a few lines (feature `server`)
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), comet::CometError> {
//! use comet::{Comet, MemoryProvider, PollOutcome, Retention, Settings};
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
//! let PollOutcome::Messages(messages) = news.poll(&token, Some(cursor)).await? else {
//!     panic!("the message is there");
//! };
//! assert_eq!(messages.len(), 1);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```
//!
//! # Several channels in the browser (feature `browser`)
//!
//! A page follows channels with one held `POST /comet`:
//! `ChannelsSubscriber::new("/comet")`, `.follow(channel, since)` for each
//! channel it starts with (`since`: the cursor that came with the
//! channel's history, `None` for from now on), handlers, then `.start()`
//! (this tab polls) or `.start_shared("name")` (the tabs of the browser
//! share one poll of every channel any of them follows). Either gives a
//! `ChannelsHandle` (`Clone`, `Send`: keep it for event handlers):
//!
//! - `on_message(|channel: String, message: Message|)`: each channel's
//!   messages in its order, each once, named by channel;
//! - `on_failure(|channel: Option<String>, failure: Failure|)`: a
//!   channel's `cursor_expired` (it goes on from now on) or
//!   `Failure::Left` (the server no longer has it for this client: it is
//!   dropped), or, with `None`, the whole poll's (network, `429`, `5xx`:
//!   backs off with jitter, honouring `Retry-After`; `401`: status
//!   `Ended`, and it stops);
//! - `on_status(|Status|)`, `on_timeout(|()|)`;
//! - `handle.follow(channel, since)` and `handle.leave(channel)` change the
//!   set at once: the held poll is aborted (not a failure, no status
//!   change) and the new set polled. Cursors move only past messages
//!   handed to `on_message`, so an aborted poll loses nothing: its
//!   messages come in the next one. `handle.stop()` ends it.
//!
//! A chat with rooms keeps one per page: it follows the user's rooms, and
//! `follow`s one (from the cursor of the history the join gave) or
//! `leave`s it as the user joins or leaves. The first poll, and the first
//! after a failure, ask for `Comet-Ack: early`, so the page says
//! "connected" before anything arrives.
//!
//! ```ignore
//! use comet::channels_subscriber::ChannelsSubscriber;
//! let handle = ChannelsSubscriber::new("/comet")
//!     .follow("lobby", Some(lobby_cursor))
//!     .on_message(move |channel, message| show(&channel, message))
//!     .on_status(move |status| status_signal.set(status))
//!     .start_shared("chat");
//! // Later, in an event handler: the held poll changes at once.
//! handle.follow("rust", Some(rust_cursor));
//! handle.leave("lobby");
//! ```
//!
//! Wiring it into an app ([`Comet::router`]), the Redis provider for
//! several nodes, and the browser subscriber are shown by the chat in this
//! repository (`src/server.rs`, `src/chat/`).
//!
//! # Shutdown
//!
//! How a node stops, told once here: the chat's `src/main.rs` does exactly
//! this (the example below is the same wiring), and the items named keep
//! only their own part. Times are the defaults.
//!
//! 1. Held polls answer. The signal (SIGTERM, Ctrl-C) resolves the future
//!    given to [`serve::serve`], which calls [`Comet::shutdown`]: every
//!    poll held on this node is woken and answers `503` `unavailable` +
//!    `Retry-After: 1`, its message saying the node is stopping, and so
//!    does every poll that arrives later. A woken poll reads once more
//!    first, so a message that arrived meanwhile is answered `200`, not
//!    lost. Each answers within one provider call
//!    ([`Settings::provider_timeout`], 800 ms), two after a long hold (its
//!    client's last-seen is refreshed too). The exception is a poll whose
//!    `200` head is already out (an early acknowledgement): it cannot
//!    change its status and ends `{"status":"timeout"}`, and its client's
//!    next poll meets step 2. Server-side [`Subscription`]s end with
//!    [`CometError::Stopping`]; the idle reaper and the presence sender
//!    stop.
//! 2. No new connections. `serve` drops its listener: a new connection is
//!    refused, one queued but not yet accepted is reset. The client sees a
//!    network error and backs off; a load balancer's health check fails
//!    and it sends clients to another node.
//! 3. Connections close as they finish. A kept-alive connection waiting
//!    for its next request is closed at once; an answer written from now
//!    on says `Connection: close` and its connection closes after it; a
//!    streamed answer whose head is out (a page, an early-acknowledged
//!    poll) finishes, then closes. A poll answered in step 1 just before
//!    this step may have said keep-alive: its connection is closed here
//!    all the same. Other requests in flight (a login, a send) are
//!    answered as usual.
//! 4. Drain. `serve` returns when the last connection is done, or after
//!    [`serve::Limits::drain_timeout`] (10 s) at worst; a connection still
//!    open then is cut when the process exits.
//! 5. Last presence. After `serve` returns, [`Comet::flush_presence`]
//!    sends the joins and leaves still waiting for their window (step 3's
//!    logins and logouts too: the sender stopped in step 1). Each provider
//!    call in it is bounded by the provider timeout; if one fails, the
//!    window is lost and logged.
//! 6. The process exits: at worst the drain bound plus step 5's few
//!    provider calls after the signal.
//!
//! What another node sees (the Redis provider): no "left", since this
//! node's clients are still clients of the channel. They poll again a
//! second later (a client's jitter on a first failure, at most 500 ms, is
//! below `Retry-After`, so they come together), a load balancer sends them
//! to another node, and their cursors carry on there: nothing is lost or
//! repeated. One that never comes back is removed as idle by another node
//! after its idle timeout, with one "left". With the in-process provider
//! clients and messages end with the process: after a restart every
//! client's poll gets `401` and its user logs in again.
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use comet::{serve, Comet, MemoryProvider, Retention, Settings};
//! use std::sync::Arc;
//!
//! let provider = Arc::new(MemoryProvider::new(Retention::default()));
//! let comet = Comet::new(provider, Settings::default(), &["news"]);
//! let listener = serve::listen("127.0.0.1:0".parse().unwrap())?;
//! let signal = async {}; // tokio::signal::ctrl_c(), say
//! let stopping = comet.clone();
//! serve::serve(listener, comet.router::<()>(), serve::Limits::default(), async move {
//!     signal.await;
//!     stopping.shutdown(); // step 1
//! })
//! .await; // steps 2 to 4
//! comet.flush_presence().await; // step 5
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```

pub mod status;
pub mod wire;

#[cfg(feature = "server")]
pub mod channels;
#[cfg(feature = "server")]
mod channels_route;
#[cfg(feature = "server")]
mod client_table;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod manager;
#[cfg(feature = "server")]
pub mod memory;
#[cfg(feature = "server")]
mod memory_registry;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
mod presence;
#[cfg(feature = "server")]
mod provider;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "server")]
mod request_token;
#[cfg(feature = "server")]
mod retention;
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
pub mod channels_subscriber;
#[cfg(feature = "browser")]
mod channels_tabs;
#[cfg(feature = "browser")]
mod fetch;
#[cfg(feature = "browser")]
pub mod subscriber;
#[cfg(feature = "browser")]
mod tabs;

pub use status::Status;
pub use wire::{Cursor, Message};

#[cfg(feature = "server")]
pub use {
    error::{CometError, Taken},
    manager::{
        unix_millis, ChannelsOutcome, Comet, Manager, OpenChannels, OpenPoll, PollOutcome, Settings,
    },
    memory::{MemoryProvider, Retention},
    provider::{
        Audience, ClientRecord, NewClient, NewMessage, PollingClient, Provider, ReadAfter,
        ReadTail, StoredMessage, IDEMPOTENCY_WINDOW,
    },
    request_token::{
        cookie_clash, cookie_token, request_token, token_cookie, SECURE_TOKEN_COOKIE, TOKEN_COOKIE,
    },
    route::{wants_early_ack, PollResponse},
    stream::Subscription,
    token::{PrivateToken, PublicToken, TokenDigest, TokenHasher, TokenMap},
};

#[cfg(feature = "redis")]
pub use redis::RedisProvider;

/// The attribute [`Provider`] is written with, for a provider of your own.
#[cfg(feature = "server")]
pub use async_trait::async_trait;
