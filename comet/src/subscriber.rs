//! The browser side: a long-poll loop against `POST /comet/{channel}`.
//!
//! Like the original article's JavaScript client it reports through
//! handlers (message, timeout, failure) and adds a status handler so a UI
//! can say "connected" or "reconnecting…". It re-polls from the last id it
//! received, so nothing is lost or repeated across timeouts and errors.
//!
//! Errors decide what happens next:
//! - `401`: the client is gone (logged out, idle): stop, status `Ended`.
//! - `410`: the cursor expired: report it, then continue "from now on".
//! - `400`: our own request is wrong; retrying the same bytes cannot help,
//!   so it is treated like `410` (resynchronise) after a back-off.
//! - network errors, `429`, `5xx`: back off exponentially with full jitter
//!   (so a restarted server is not hit by every client at the same instant),
//!   honouring `Retry-After`, and keep going.
//!
//! Stop the loop with [`SubscriberHandle::stop`]; a stopped loop calls no
//! handler again.

use super::fetch::{self, Answer, StatusCell};
use super::wire::{codes, ErrorBody, PollReply, PollRequest};
use super::{Cursor, Message, Status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a poll failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// No answer (server down, network dropped).
    Network(String),
    /// The server answered with an error status.
    Http {
        status: u16,
        body: Option<ErrorBody>,
    },
    /// The cursor was older than what the channel keeps; the loop continues
    /// from now on, and messages in between were missed.
    CursorExpired,
    /// The answer was not the protocol's JSON.
    Decode(String),
    /// A poll of several channels ([`ChannelsSubscriber`](super::channels_subscriber::ChannelsSubscriber)):
    /// the server no longer has this channel for this client
    /// (`unknown_channel`: closed or never opened; `unknown_client`: not a
    /// member there; `refused`): it is no longer followed.
    Left(ErrorBody),
}

pub(super) use super::fetch::Handler;

/// A subscription taken apart for tab sharing
/// ([`Subscriber::into_shared_parts`]).
pub(super) struct SharedParts {
    pub(super) poller: Subscriber,
    pub(super) since: Option<Cursor>,
    pub(super) on_message: Handler<Message>,
    pub(super) on_failure: Handler<Failure>,
    pub(super) on_status: Handler<Status>,
}

/// Configures a subscription; [`start`](Self::start) runs it.
pub struct Subscriber {
    url: String,
    since: Option<Cursor>,
    on_message: Handler<Message>,
    on_timeout: Handler<()>,
    on_failure: Handler<Failure>,
    on_status: Handler<Status>,
    max_backoff_ms: f64,
}

/// Stops a running subscription. Cloneable and `Send`, so it can live in a
/// Leptos cleanup.
#[derive(Clone)]
pub struct SubscriberHandle {
    stopped: Arc<AtomicBool>,
}

impl SubscriberHandle {
    /// A handle for a subscription not started yet (see
    /// [`Subscriber::start_with`]).
    pub fn new() -> Self {
        Self {
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Resolves (within a quarter of a second) once [`stop`](Self::stop)
    /// was called.
    pub async fn stopped(&self) {
        while !self.is_stopped() {
            gloo_timers::future::TimeoutFuture::new(250).await;
        }
    }
}

impl Default for SubscriberHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl Subscriber {
    /// A subscription to the channel route at `url` (e.g. `/comet/news`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            since: None,
            on_message: Box::new(|_| {}),
            on_timeout: Box::new(|_| {}),
            on_failure: Box::new(|_| {}),
            on_status: Box::new(|_| {}),
            max_backoff_ms: 5_000.0,
        }
    }

    /// Start after this cursor (e.g. the one that came with the history).
    pub fn since(mut self, cursor: Option<Cursor>) -> Self {
        self.since = cursor;
        self
    }

    pub fn on_message(mut self, f: impl Fn(Message) + 'static) -> Self {
        self.on_message = Box::new(f);
        self
    }

    pub fn on_timeout(mut self, f: impl Fn(()) + 'static) -> Self {
        self.on_timeout = Box::new(f);
        self
    }

    pub fn on_failure(mut self, f: impl Fn(Failure) + 'static) -> Self {
        self.on_failure = Box::new(f);
        self
    }

    pub fn on_status(mut self, f: impl Fn(Status) + 'static) -> Self {
        self.on_status = Box::new(f);
        self
    }

    /// Longest wait between retries (default 5 s).
    pub fn max_backoff(mut self, ms: u32) -> Self {
        self.max_backoff_ms = f64::from(ms);
        self
    }

    pub fn start(self) -> SubscriberHandle {
        let handle = SubscriberHandle::new();
        self.start_with(handle.clone());
        handle
    }

    /// Starts, stopped by `handle`.
    pub fn start_with(self, handle: SubscriberHandle) {
        let stopped = handle.stopped.clone();
        leptos::task::spawn_local(async move { self.run(stopped).await });
    }

    /// This subscription split for tab sharing (`tabs.rs`): the poller
    /// (URL, timeout handler and back-off kept; cursor and the other
    /// handlers emptied) and what it took out: the cursor and the message,
    /// failure and status handlers, which every tab keeps for itself.
    pub(super) fn into_shared_parts(self) -> SharedParts {
        let Subscriber {
            url,
            since,
            on_message,
            on_timeout,
            on_failure,
            on_status,
            max_backoff_ms,
        } = self;
        let poller = Subscriber {
            url,
            since: None,
            on_message: Box::new(|_| {}),
            on_timeout,
            on_failure: Box::new(|_| {}),
            on_status: Box::new(|_| {}),
            max_backoff_ms,
        };
        SharedParts {
            poller,
            since,
            on_message,
            on_failure,
            on_status,
        }
    }

    async fn run(self, stopped: Arc<AtomicBool>) {
        let is_stopped = || stopped.load(Ordering::SeqCst);
        let Subscriber {
            url,
            since: mut cursor,
            on_message,
            on_timeout,
            on_failure,
            on_status,
            max_backoff_ms,
        } = self;
        let status = StatusCell::new(on_status);
        let mut failures: u32 = 0;
        loop {
            if is_stopped() {
                return;
            }
            let body = serde_json::to_string(&PollRequest {
                since: cursor.clone(),
            })
            .expect("a poll request always encodes");
            // The server answers the headers as soon as it accepted the poll
            // and the body when something arrives (or the timeout passes).
            // Until a poll has succeeded, ask the server to confirm it took
            // the poll right away (headers first), so "connected" shows
            // without waiting for a message or the connection timeout.
            let early_ack = status.get() != Status::Connected;
            let answer = fetch::poll(&url, &body, early_ack, None, |code| {
                if code == 200 && !is_stopped() {
                    status.set(Status::Connected);
                }
            })
            .await;
            if is_stopped() {
                return;
            }
            let retry_after = match answer {
                Answer::Network(e) => {
                    on_failure(Failure::Network(e));
                    None
                }
                Answer::Http {
                    code: 200, text, ..
                } => match serde_json::from_str::<PollReply>(&text) {
                    Ok(PollReply::Messages { messages }) => {
                        failures = 0;
                        for message in messages {
                            cursor = Some(message.id.clone());
                            on_message(message);
                        }
                        continue;
                    }
                    Ok(PollReply::Timeout) => {
                        failures = 0;
                        on_timeout(());
                        continue;
                    }
                    Err(e) => {
                        on_failure(Failure::Decode(e.to_string()));
                        None
                    }
                },
                Answer::Http {
                    code,
                    text,
                    retry_after_ms,
                } => {
                    let body = Answer::error_body(&text);
                    let error = body.as_ref().map(|b| b.error.as_str()).unwrap_or_default();
                    if code == 401 || error == codes::UNKNOWN_CLIENT {
                        on_failure(Failure::Http { status: code, body });
                        status.set(Status::Ended);
                        return;
                    }
                    if code == 410 {
                        // Resynchronise: report the gap, continue from now on.
                        cursor = None;
                        on_failure(Failure::CursorExpired);
                        continue;
                    }
                    if code == 400 {
                        // Our request is wrong; the same bytes cannot succeed.
                        cursor = None;
                    }
                    on_failure(Failure::Http { status: code, body });
                    retry_after_ms
                }
            };
            failures = failures.saturating_add(1);
            status.set(Status::Reconnecting);
            fetch::back_off(failures, max_backoff_ms, retry_after).await;
        }
    }
}
