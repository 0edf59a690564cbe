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

use super::wire::{codes, ErrorBody, PollReply, PollRequest};
use super::{Cursor, Message, Status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

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
}

type Handler<T> = Box<dyn Fn(T)>;

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
        let mut since = self.since.clone();
        let mut status = Status::Connecting;
        let mut failures: u32 = 0;
        let set_status = |new: Status, status: &mut Status| {
            if *status != new {
                *status = new;
                (self.on_status)(new);
            }
        };
        (self.on_status)(status);
        loop {
            if is_stopped() {
                return;
            }
            let body = serde_json::to_string(&PollRequest {
                since: since.clone(),
            })
            .expect("a poll request always encodes");
            // The server answers the headers as soon as it accepted the poll
            // and the body when something arrives (or the timeout passes).
            // Until a poll has succeeded, ask the server to confirm it took
            // the poll right away (headers first), so "connected" shows
            // without waiting for a message or the connection timeout.
            let early_ack = status != Status::Connected;
            let response = match post_json(&self.url, &body, early_ack).await {
                Ok(response) => response,
                Err(e) => {
                    if is_stopped() {
                        return;
                    }
                    (self.on_failure)(Failure::Network(e));
                    failures = failures.saturating_add(1);
                    set_status(Status::Reconnecting, &mut status);
                    self.back_off(failures, None).await;
                    continue;
                }
            };
            if is_stopped() {
                return;
            }
            let code = response.status();
            if code == 200 {
                set_status(Status::Connected, &mut status);
            }
            let text = body_text(&response).await;
            if is_stopped() {
                return;
            }
            let retry_after = match (code, text) {
                (_, Err(e)) => {
                    (self.on_failure)(Failure::Network(e));
                    None
                }
                (200, Ok(text)) => match serde_json::from_str::<PollReply>(&text) {
                    Ok(PollReply::Messages { messages }) => {
                        failures = 0;
                        for message in messages {
                            since = Some(message.id.clone());
                            (self.on_message)(message);
                        }
                        continue;
                    }
                    Ok(PollReply::Timeout) => {
                        failures = 0;
                        (self.on_timeout)(());
                        continue;
                    }
                    Err(e) => {
                        (self.on_failure)(Failure::Decode(e.to_string()));
                        None
                    }
                },
                (code, Ok(text)) => {
                    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
                    let error = body.as_ref().map(|b| b.error.as_str()).unwrap_or_default();
                    if code == 401 || error == codes::UNKNOWN_CLIENT {
                        (self.on_failure)(Failure::Http { status: code, body });
                        set_status(Status::Ended, &mut status);
                        return;
                    }
                    if code == 410 {
                        // Resynchronise: report the gap, continue from now on.
                        since = None;
                        (self.on_failure)(Failure::CursorExpired);
                        continue;
                    }
                    if code == 400 {
                        // Our request is wrong; the same bytes cannot succeed.
                        since = None;
                    }
                    (self.on_failure)(Failure::Http { status: code, body });
                    retry_after_ms(&response)
                }
            };
            failures = failures.saturating_add(1);
            set_status(Status::Reconnecting, &mut status);
            self.back_off(failures, retry_after).await;
        }
    }

    /// Exponential back-off with full jitter (anywhere in [b/2, b]), so a
    /// restarted server is not hit by every client at the same instant;
    /// never shorter than the server's `Retry-After`.
    async fn back_off(&self, failures: u32, retry_after_ms: Option<f64>) {
        let wait = super::status::backoff_ms(
            failures,
            self.max_backoff_ms,
            retry_after_ms,
            js_sys::Math::random(),
        );
        gloo_timers::future::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
}

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// One `fetch` POST, resolved when the response headers arrive; `Err` when
/// there was no HTTP answer at all.
async fn post_json(url: &str, body: &str, early_ack: bool) -> Result<web_sys::Response, String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().map_err(js_error)?;
    headers
        .set("content-type", "application/json")
        .map_err(js_error)?;
    if early_ack {
        headers.set("comet-ack", "early").map_err(js_error)?;
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js_error)?;
    let window = web_sys::window().ok_or("no window")?;
    JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)
}

async fn body_text(response: &web_sys::Response) -> Result<String, String> {
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(text.as_string().unwrap_or_default())
}

/// `Retry-After` (in seconds) as milliseconds.
fn retry_after_ms(response: &web_sys::Response) -> Option<f64> {
    response
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|secs| secs * 1000.0)
}
