//! The browser side of `POST /comet`: one held poll for several channels.
//!
//! A page follows a set of channels, each from its own cursor, and can
//! change the set while a poll is held: [`ChannelsHandle::follow`] and
//! [`leave`](ChannelsHandle::leave) abort the held `fetch` (an
//! `AbortController`) and poll again at once with the new set. An abort is
//! not a failure and does not change the status: cursors move only past a
//! message handed to the page, so whatever the aborted poll would have
//! answered comes again in the next one, once.
//!
//! What happens next is decided as by the one-channel subscriber
//! (`subscriber.rs`), per channel where the answer names one:
//! - a channel's `cursor_expired` (or `bad_request`): reported with the
//!   channel, which is followed from now on;
//! - a channel's other errors (`unknown_channel`, `unknown_client`,
//!   `refused`): reported as [`Failure::Left`], and the channel dropped;
//! - the whole poll's `401`: status `Ended`, and the loop stops;
//! - network errors, `429`, `5xx`: back off with jitter, honouring
//!   `Retry-After`, and keep going.
//!
//! Nothing is polled while the set is empty; the loop waits for a
//! `follow`.

use super::fetch::{self, Answer, Handler, StatusCell};
use super::subscriber::Failure;
use super::wire::{codes, ChannelsReply, ChannelsRequest};
use super::{Cursor, Message, Status};
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A change to a running subscription, as its handle sends it.
pub(super) enum Change {
    Follow(String, Option<Cursor>),
    Leave(String),
    Stop,
}

/// Changes and stops a running subscription of several channels. Cloneable
/// and `Send` (a queue of changes, not the loop itself), so a Leptos event
/// handler or cleanup can hold it.
#[derive(Clone)]
pub struct ChannelsHandle {
    changes: mpsc::UnboundedSender<Change>,
    stopped: Arc<AtomicBool>,
}

impl ChannelsHandle {
    /// A handle and the queue its changes arrive on.
    pub(super) fn new() -> (Self, mpsc::UnboundedReceiver<Change>) {
        let (changes, queue) = mpsc::unbounded();
        let stopped = Arc::new(AtomicBool::new(false));
        (Self { changes, stopped }, queue)
    }

    /// Follows `channel` from `since` (`None`: from now on), at once: the
    /// held poll is replaced by one with the new set. A channel already
    /// followed keeps its cursor unless `since` names one.
    pub fn follow(&self, channel: impl Into<String>, since: Option<Cursor>) {
        let _ = self
            .changes
            .unbounded_send(Change::Follow(channel.into(), since));
    }

    /// Stops following `channel`, at once.
    pub fn leave(&self, channel: impl Into<String>) {
        let _ = self.changes.unbounded_send(Change::Leave(channel.into()));
    }

    /// Stops the subscription: no handler is called again.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.changes.unbounded_send(Change::Stop);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// Configures a subscription of several channels; [`start`](Self::start)
/// runs it, [`start_shared`](Self::start_shared) shares it between tabs.
pub struct ChannelsSubscriber {
    pub(super) url: String,
    pub(super) channels: BTreeMap<String, Option<Cursor>>,
    pub(super) on_message: Box<dyn Fn(String, Message)>,
    pub(super) on_timeout: Handler<()>,
    pub(super) on_failure: Box<dyn Fn(Option<String>, Failure)>,
    pub(super) on_status: Handler<Status>,
    pub(super) max_backoff_ms: f64,
}

impl ChannelsSubscriber {
    /// A subscription through the route at `url` (`/comet`), following no
    /// channel yet.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channels: BTreeMap::new(),
            on_message: Box::new(|_, _| {}),
            on_timeout: Box::new(|_| {}),
            on_failure: Box::new(|_, _| {}),
            on_status: Box::new(|_| {}),
            max_backoff_ms: 5_000.0,
        }
    }

    /// Follows `channel` from `since` (e.g. the cursor that came with its
    /// history; `None`: from now on).
    pub fn follow(mut self, channel: impl Into<String>, since: Option<Cursor>) -> Self {
        self.channels.insert(channel.into(), since);
        self
    }

    /// A message of `channel`: each channel's in its order, each once.
    pub fn on_message(mut self, f: impl Fn(String, Message) + 'static) -> Self {
        self.on_message = Box::new(f);
        self
    }

    /// A poll answered that nothing arrived (the connection timeout).
    pub fn on_timeout(mut self, f: impl Fn(()) + 'static) -> Self {
        self.on_timeout = Box::new(f);
        self
    }

    /// Something failed: in one channel (`Some(channel)`: its cursor
    /// expired, or [`Failure::Left`]) or the whole poll (`None`).
    pub fn on_failure(mut self, f: impl Fn(Option<String>, Failure) + 'static) -> Self {
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

    /// Starts polling; the handle changes the set and stops it.
    pub fn start(self) -> ChannelsHandle {
        let (handle, queue) = ChannelsHandle::new();
        leptos::task::spawn_local(self.run(queue, handle.clone()));
        handle
    }

    /// The loop. It keeps a handle of its own, so its queue stays open
    /// when the page drops every other one (it then runs for the page's
    /// life).
    pub(super) async fn run(self, mut queue: mpsc::UnboundedReceiver<Change>, own: ChannelsHandle) {
        let ChannelsSubscriber {
            url,
            channels: mut cursors,
            on_message,
            on_timeout,
            on_failure,
            on_status,
            max_backoff_ms,
        } = self;
        let is_stopped = || own.is_stopped();
        let status = StatusCell::new(on_status);
        let mut failures: u32 = 0;
        // Applies a change; false when it stops the loop.
        let apply =
            |change: Option<Change>, cursors: &mut BTreeMap<String, Option<Cursor>>| match change {
                Some(Change::Follow(channel, since)) => {
                    let cursor = cursors.entry(channel).or_insert(None);
                    if since.is_some() {
                        *cursor = since;
                    }
                    true
                }
                Some(Change::Leave(channel)) => {
                    cursors.remove(&channel);
                    true
                }
                Some(Change::Stop) | None => false,
            };
        loop {
            while let Ok(change) = queue.try_recv() {
                if !apply(Some(change), &mut cursors) {
                    return;
                }
            }
            if is_stopped() {
                return;
            }
            if cursors.is_empty() {
                if !apply(queue.next().await, &mut cursors) {
                    return;
                }
                continue;
            }
            let body = serde_json::to_string(&ChannelsRequest {
                channels: cursors.clone(),
            })
            .expect("a poll request always encodes");
            // Until a poll has succeeded, ask for the head at once, so
            // "connected" shows before anything arrives.
            let early_ack = status.get() != Status::Connected;
            let abort = web_sys::AbortController::new().ok();
            let signal = abort.as_ref().map(|a| a.signal());
            let polling = fetch::poll(&url, &body, early_ack, signal.as_ref(), |code| {
                if code == 200 && !is_stopped() {
                    status.set(Status::Connected);
                }
            });
            let answer = match select(std::pin::pin!(polling), queue.next()).await {
                Either::Left((answer, _)) => answer,
                Either::Right((change, _)) => {
                    // The set changed: this poll's answer is not wanted
                    // (its cursors have not moved), the next one asks again.
                    if let Some(abort) = abort {
                        abort.abort();
                    }
                    if !apply(change, &mut cursors) {
                        return;
                    }
                    continue;
                }
            };
            if is_stopped() {
                return;
            }
            let retry_after = match answer {
                Answer::Network(e) => {
                    on_failure(None, Failure::Network(e));
                    None
                }
                Answer::Http {
                    code: 200, text, ..
                } => match serde_json::from_str::<ChannelsReply>(&text) {
                    Ok(ChannelsReply::Messages {
                        channels,
                        errors,
                        cursors: starts,
                    }) => {
                        failures = 0;
                        crate::wire::start_from(&mut cursors, starts);
                        for (channel, messages) in channels {
                            for message in messages {
                                let Some(cursor) = cursors.get_mut(&channel) else {
                                    break;
                                };
                                *cursor = Some(message.id.clone());
                                on_message(channel.clone(), message);
                            }
                        }
                        for (channel, error) in errors {
                            let failure = match error.error.as_str() {
                                codes::CURSOR_EXPIRED => Failure::CursorExpired,
                                codes::BAD_REQUEST => Failure::Http {
                                    status: 400,
                                    body: Some(error),
                                },
                                _ => Failure::Left(error),
                            };
                            if matches!(failure, Failure::Left(_)) {
                                cursors.remove(&channel);
                            } else if let Some(cursor) = cursors.get_mut(&channel) {
                                // Resynchronise: from now on.
                                *cursor = None;
                            }
                            on_failure(Some(channel), failure);
                        }
                        continue;
                    }
                    Ok(ChannelsReply::Timeout { cursors: starts }) => {
                        failures = 0;
                        crate::wire::start_from(&mut cursors, starts);
                        on_timeout(());
                        continue;
                    }
                    Err(e) => {
                        on_failure(None, Failure::Decode(e.to_string()));
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
                        on_failure(None, Failure::Http { status: code, body });
                        status.set(Status::Ended);
                        return;
                    }
                    if code == 400 {
                        // Our request is wrong; the same cursors cannot
                        // succeed (a changed set may).
                        cursors.values_mut().for_each(|c| *c = None);
                    }
                    on_failure(None, Failure::Http { status: code, body });
                    retry_after_ms
                }
            };
            failures = failures.saturating_add(1);
            status.set(Status::Reconnecting);
            // A change ends the wait: the new set is polled at once.
            let waiting = fetch::back_off(failures, max_backoff_ms, retry_after);
            if let Either::Right((change, _)) = select(std::pin::pin!(waiting), queue.next()).await
            {
                if !apply(change, &mut cursors) {
                    return;
                }
            }
        }
    }
}
