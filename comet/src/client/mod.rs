//! A native Rust client of the wire protocol (feature `client`): what the
//! browser subscriber does, for programs (bots, bridges, terminals, tests).
//!
//! [`Client::messages`] is a [`Stream`] of [`Event`]s. The stream owns the
//! cursor: it polls `POST /comet/{channel}`, yields every message of the
//! reply in order, and polls again from the last `id` it yielded, so a
//! consumer sees each message exactly once however many polls, timeouts
//! and retries it took. Nothing goes wrong silently: each failed poll is an
//! item saying what happened and what the stream does about it.
//!
//! What an answer makes the stream do (the README's table):
//!
//! | answer | item | then |
//! | --- | --- | --- |
//! | `200` messages | [`Event::Message`] each | poll again from the last `id` |
//! | `200` timeout | none | poll again, same cursor |
//! | `401` | [`Event::Ended`] | end: the client is gone, log in again |
//! | `410` | [`Event::Gap`] | poll again "from now on" |
//! | `429`, `408`, `5xx`, no answer, unreadable `200` | [`Event::Retrying`] | wait (back-off, at least `Retry-After`), poll again |
//! | `400`, `404`, any other | [`Event::Failed`] | end: the same request cannot succeed |
//!
//! Logging in, history and sending are the app's business (its own
//! endpoints); this client only needs the private token it got.
//!
//! - this file: [`Client`] and [`Auth`];
//! - `event`: what the stream yields ([`Event`], [`ClientError`]);
//! - `poller`: the poll loop behind the stream, and its back-off.

mod channels;
mod event;
mod poller;

pub use channels::ChannelEvent;
pub use event::{ClientError, Event};
pub use tokio_stream::Stream;

use super::wire::{ChannelsReply, ChannelsRequest, ErrorBody, PollReply, PollRequest};
use super::Cursor;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// How a [`Client`] proves who it is: the private token its log-in gave.
///
/// Its `Debug` never shows the token.
///
/// ```no_run
/// use comet::client::Auth;
/// let auth = Auth::Bearer("4f2a…".into());
/// let same = Auth::Cookie("comet_token=4f2a…".into());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// A whole `Cookie` header value, e.g. `comet_token=<token>` (or
    /// `__Host-comet_token=<token>` for a server behind HTTPS).
    Cookie(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Auth::Bearer(…)",
            Auth::Cookie(_) => "Auth::Cookie(…)",
        })
    }
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Cookie(cookie) => request.header(reqwest::header::COOKIE, cookie),
        }
    }
}

/// The server's poll timeout unless told otherwise (`COMET_POLL_TIMEOUT`'s
/// default).
const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(25);
/// How much longer than the poll timeout a poll may take before it is given
/// up: a held poll answers at the poll timeout, plus the way there and back.
const REQUEST_MARGIN: Duration = Duration::from_secs(10);
/// Longest wait between retries unless told otherwise (a `Retry-After` may
/// ask for longer).
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Events a stream holds that its consumer has not taken yet. The poll loop
/// waits when it is full, so a slow consumer slows the polling rather than
/// growing a buffer.
const BUFFERED_EVENTS: usize = 64;

/// A client of a comet server: where it is and who we are there. Cheap to
/// clone (the HTTP connection pool is shared).
///
/// ```no_run
/// use comet::client::{Auth, Client, Event};
/// use tokio_stream::StreamExt;
///
/// # async fn run(token: String) {
/// let client = Client::new("http://127.0.0.1:3000", Auth::Bearer(token));
/// let mut events = client.messages("news", None);
/// while let Some(event) = events.next().await {
///     match event {
///         Event::Message(m) => println!("{} {}: {}", m.id, m.name, m.contents),
///         Event::Gap => println!("missed some; reload the history"),
///         Event::Retrying { error, after } => eprintln!("{error}; again in {after:?}"),
///         Event::Ended | Event::Failed(_) => break,
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    poll_timeout: Duration,
    max_backoff: Duration,
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port`, with or
    /// without a trailing `/`), identified by `auth`.
    ///
    /// ```no_run
    /// # use comet::client::{Auth, Client};
    /// let client = Client::new("http://127.0.0.1:3000", Auth::Bearer("…".into()));
    /// ```
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Self {
        let mut base = base_url.into();
        while base.ends_with('/') {
            base.pop();
        }
        Self {
            http: reqwest::Client::new(),
            base,
            auth,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }

    /// Use this HTTP client (its pool, proxy and TLS settings) instead of
    /// a default one.
    ///
    /// ```no_run
    /// # use comet::client::{Auth, Client};
    /// let http = reqwest::Client::builder().build().unwrap();
    /// let client = Client::new("http://127.0.0.1:3000", Auth::Bearer("…".into())).with_http(http);
    /// ```
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The server's poll (connection) timeout, `COMET_POLL_TIMEOUT` (default
    /// 25 s). A poll is given up (and retried) when it takes this plus 10 s,
    /// so set it to at least the server's.
    ///
    /// ```no_run
    /// # use comet::client::{Auth, Client};
    /// # use std::time::Duration;
    /// let client = Client::new("http://127.0.0.1:3000", Auth::Bearer("…".into()))
    ///     .poll_timeout(Duration::from_secs(60));
    /// ```
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Longest wait between two retries (default 10 s); the wait doubles
    /// from half a second up to it, with jitter. A server's `Retry-After`
    /// is honoured even when it is longer.
    ///
    /// ```no_run
    /// # use comet::client::{Auth, Client};
    /// # use std::time::Duration;
    /// let client = Client::new("http://127.0.0.1:3000", Auth::Bearer("…".into()))
    ///     .max_backoff(Duration::from_secs(30));
    /// ```
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The URL of `channel`'s route: `{base}/comet/{channel}`.
    ///
    /// ```no_run
    /// # use comet::client::{Auth, Client};
    /// let client = Client::new("http://127.0.0.1:3000/", Auth::Bearer("…".into()));
    /// assert_eq!(client.channel_url("news"), "http://127.0.0.1:3000/comet/news");
    /// ```
    pub fn channel_url(&self, channel: &str) -> String {
        format!("{}/comet/{channel}", self.base)
    }

    /// Every message of `channel` after `since` (`None`: from now on), as
    /// a stream that polls for as long as it is held and ends after
    /// [`Event::Ended`] or [`Event::Failed`]. Dropping it stops polling at
    /// once (a poll in flight is abandoned). Call it within a tokio
    /// runtime: the polling runs on a task of its own.
    ///
    /// Start from the cursor that came with the app's history, so nothing
    /// between the history and the first poll is lost or repeated.
    ///
    /// ```no_run
    /// # use comet::{client::{Auth, Client, Event}, Cursor};
    /// # use tokio_stream::StreamExt;
    /// # async fn run(client: Client, cursor: Cursor) {
    /// let mut events = client.messages("news", Some(cursor));
    /// while let Some(Event::Message(m)) = events.next().await {
    ///     println!("{}", m.contents);
    /// }
    /// # }
    /// ```
    pub fn messages(
        &self,
        channel: &str,
        since: Option<Cursor>,
    ) -> impl Stream<Item = Event> + Send + Unpin + 'static {
        let (events, stream) = mpsc::channel(BUFFERED_EVENTS);
        let poller = poller::Poller::new(self.clone(), self.channel_url(channel), since);
        tokio::spawn(poller.run(events));
        ReceiverStream::new(stream)
    }

    /// Every message of several channels, each after its cursor (`None`:
    /// from now on), through one held poll at a time (`POST /comet`): a
    /// stream like [`messages`](Self::messages), whose items name their
    /// channel. A channel the server no longer has for this client
    /// (`unknown_channel`, `unknown_client`) is reported
    /// ([`ChannelEvent::Left`]) and no longer polled; the stream ends when
    /// none is left, or after [`ChannelEvent::Ended`] or
    /// [`ChannelEvent::Failed`].
    pub fn channels(
        &self,
        cursors: BTreeMap<String, Option<Cursor>>,
    ) -> impl Stream<Item = ChannelEvent> + Send + Unpin + 'static {
        let (events, stream) = mpsc::channel(BUFFERED_EVENTS);
        tokio::spawn(channels::follow(self.clone(), cursors, events));
        ReceiverStream::new(stream)
    }

    /// One poll of `channel` from `since`, as the wire protocol answers it:
    /// for a program that keeps its own cursor and its own retry policy
    /// ([`messages`](Self::messages) does both).
    ///
    /// ```no_run
    /// # use comet::{client::Client, wire::PollReply};
    /// # async fn run(client: Client) -> Result<(), comet::client::ClientError> {
    /// if let PollReply::Messages { messages } = client.poll("news", None).await? {
    ///     println!("{} new", messages.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn poll(
        &self,
        channel: &str,
        since: Option<Cursor>,
    ) -> Result<PollReply, ClientError> {
        self.poll_url(&self.channel_url(channel), since).await
    }

    async fn poll_url(&self, url: &str, since: Option<Cursor>) -> Result<PollReply, ClientError> {
        self.post_poll(url, &PollRequest { since }).await
    }

    /// One poll of several channels (`POST /comet`) from a cursor each, as
    /// the wire protocol answers it; [`channels`](Self::channels) keeps the
    /// cursors and retries.
    pub async fn poll_channels(
        &self,
        cursors: BTreeMap<String, Option<Cursor>>,
    ) -> Result<ChannelsReply, ClientError> {
        let url = format!("{}/comet", self.base);
        self.post_poll(&url, &ChannelsRequest { channels: cursors })
            .await
    }

    /// A poll request: its JSON answer on `200`, else the failure.
    async fn post_poll<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let request = self
            .http
            .post(url)
            .json(body)
            .timeout(self.poll_timeout + REQUEST_MARGIN);
        let response = self.auth.apply(request).send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(poller::parse_retry_after);
        let bytes = response.bytes().await?;
        if status == 200 {
            return serde_json::from_slice(&bytes).map_err(ClientError::Decode);
        }
        Err(ClientError::Status {
            status,
            error: serde_json::from_slice::<ErrorBody>(&bytes).ok(),
            retry_after,
        })
    }
}
