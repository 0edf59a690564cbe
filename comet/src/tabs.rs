//! One long poll for all the tabs of one browser.
//!
//! Browsers allow six connections per host; a user with many tabs open, each
//! holding a poll, would starve their own page loads and sends. Here the
//! tabs of one origin elect a leader with the Web Locks API (the tab holding
//! the lock named after the channel polls; when it closes, the browser hands
//! the lock to the next tab waiting for it) and talk over a
//! `BroadcastChannel`: the leader relays every message, status change and
//! failure to the others.
//!
//! Nothing is lost in a hand-over: every tab knows the id of the last
//! message it got, and the tab that takes over polls from there. A tab that
//! opens while another leads asks for what the leader relayed recently
//! (its replay buffer) after the cursor of its own server-rendered history,
//! and holds live messages back until that answer (or a short timeout) so
//! they stay in order. Each tab drops ids it has already handled.
//!
//! Browsers without Web Locks or `BroadcastChannel` fall back to one poll
//! per tab.

use super::subscriber::{Failure, SharedParts, Subscriber, SubscriberHandle};
use super::{Cursor, Message, Status};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Messages the leader keeps for tabs that open later.
const REPLAY: usize = 200;
/// How long a new tab waits for the leader's replay before going on.
const REPLAY_WAIT_MS: u32 = 400;

/// What tabs say to each other.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum Relay {
    /// A message the leader received.
    Message { m: Message },
    /// The leader's status changed (or, after `Hello`, what it is).
    Status { s: String },
    /// The leader's cursor expired: messages were missed.
    Expired,
    /// A new tab: "what did I miss after `since`?"
    Hello { since: Option<Cursor> },
    /// The leader's answer to `Hello`.
    Replay {
        to: Option<Cursor>,
        ms: Vec<Message>,
    },
}

pub(super) fn status_from(s: &str) -> Option<Status> {
    [
        Status::Connecting,
        Status::Connected,
        Status::Reconnecting,
        Status::Ended,
    ]
    .into_iter()
    .find(|status| status.as_str() == s)
}

/// The page's handlers, called once per message id whichever tab polled.
struct Page {
    on_message: Box<dyn Fn(Message)>,
    on_failure: Box<dyn Fn(Failure)>,
    on_status: Box<dyn Fn(Status)>,
    seen: RefCell<HashSet<String>>,
    last: RefCell<Option<Cursor>>,
    leading: RefCell<bool>,
    /// The leader's status, for tabs that open later.
    status: RefCell<Status>,
    /// Until the replay answers: live messages held back, in order.
    held: RefCell<Option<Vec<Message>>>,
    replay: RefCell<VecDeque<Message>>,
    channel: web_sys::BroadcastChannel,
}

impl Page {
    fn deliver(&self, message: Message) {
        if !self.seen.borrow_mut().insert(message.id.0.clone()) {
            return;
        }
        *self.last.borrow_mut() = Some(message.id.clone());
        (self.on_message)(message);
    }

    fn post(&self, relay: &Relay) {
        if let Ok(text) = serde_json::to_string(relay) {
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// What another tab said.
    fn heard(&self, relay: Relay) {
        match relay {
            Relay::Message { m } => {
                if *self.leading.borrow() {
                    return;
                }
                if let Some(held) = self.held.borrow_mut().as_mut() {
                    held.push(m);
                    return;
                }
                self.deliver(m);
            }
            Relay::Status { s } => {
                if !*self.leading.borrow() {
                    if let Some(status) = status_from(&s) {
                        (self.on_status)(status);
                    }
                }
            }
            Relay::Expired => {
                if !*self.leading.borrow() {
                    (self.on_failure)(Failure::CursorExpired);
                }
            }
            Relay::Hello { since } => {
                if *self.leading.borrow() {
                    let buffered = self.replay.borrow();
                    let start = since
                        .as_ref()
                        .and_then(|c| buffered.iter().position(|m| &m.id == c))
                        .map_or(0, |i| i + 1);
                    self.post(&Relay::Replay {
                        to: since,
                        ms: buffered.iter().skip(start).cloned().collect(),
                    });
                    self.post(&Relay::Status {
                        s: self.status.borrow().as_str().to_owned(),
                    });
                }
            }
            Relay::Replay { ms, .. } => {
                if *self.leading.borrow() {
                    return;
                }
                if let Some(held) = self.held.borrow_mut().take() {
                    for m in ms.into_iter().chain(held) {
                        self.deliver(m);
                    }
                }
            }
        }
    }

    /// Stops holding live messages back (no leader answered in time).
    fn release(&self) {
        let held = self.held.borrow_mut().take();
        for m in held.into_iter().flatten() {
            self.deliver(m);
        }
    }
}

impl Subscriber {
    /// Starts it shared with this browser's other tabs on the same `name`
    /// (e.g. the channel URL): one tab polls, every tab gets every message
    /// once. Falls back to [`start`](Self::start) where the browser lacks
    /// what sharing needs.
    pub fn start_shared(self, name: &str) -> SubscriberHandle {
        let SharedParts {
            poller,
            since,
            on_message,
            on_failure,
            on_status,
        } = self.into_shared_parts();
        share(poller, name, since, on_message, on_failure, on_status)
    }
}

/// [`Subscriber::start_shared`], the subscription taken apart.
fn share(
    subscriber: Subscriber,
    name: &str,
    since: Option<Cursor>,
    on_message: impl Fn(Message) + 'static,
    on_failure: impl Fn(Failure) + 'static,
    on_status: impl Fn(Status) + 'static,
) -> SubscriberHandle {
    let (Some(_), Ok(channel)) = (
        lock_request(),
        web_sys::BroadcastChannel::new(&format!("comet-tabs:{name}")),
    ) else {
        return subscriber
            .since(since)
            .on_message(on_message)
            .on_failure(on_failure)
            .on_status(on_status)
            .start();
    };
    let page = Rc::new(Page {
        on_message: Box::new(on_message),
        on_failure: Box::new(on_failure),
        on_status: Box::new(on_status),
        seen: RefCell::new(HashSet::new()),
        last: RefCell::new(since.clone()),
        leading: RefCell::new(false),
        status: RefCell::new(Status::Connecting),
        held: RefCell::new(Some(Vec::new())),
        replay: RefCell::new(VecDeque::new()),
        channel,
    });
    let handle = SubscriberHandle::new();

    let listener = {
        let page = page.clone();
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(relay) = serde_json::from_str::<Relay>(&text) {
                page.heard(relay);
            }
        })
    };
    page.channel
        .set_onmessage(Some(listener.as_ref().unchecked_ref()));
    listener.forget();

    // Ask whoever leads for what this tab missed since its history.
    page.post(&Relay::Hello { since });
    {
        let page = page.clone();
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(REPLAY_WAIT_MS).await;
            page.release();
        });
    }

    let lock = request_lock(&format!("comet-tabs:{name}"), {
        let (page, handle) = (page.clone(), handle.clone());
        move || {
            if handle.is_stopped() {
                return false;
            }
            lead(page, subscriber, handle);
            true
        }
    });
    {
        let handle = handle.clone();
        let page = page.clone();
        leptos::task::spawn_local(async move {
            handle.stopped().await;
            page.channel.set_onmessage(None);
            page.channel.close();
            release(&lock);
        });
    }
    handle
}

/// The resolver of the promise that keeps a Web Lock held, once granted.
pub(super) type HeldLock = Rc<RefCell<Option<js_sys::Function>>>;

/// Asks for the Web Lock `name` (the caller checked [`lock_request`]);
/// once granted, `granted` runs, and the lock is held until [`release`]
/// (the page stops) or the tab closes, unless `granted` says no.
pub(super) fn request_lock(name: &str, granted: impl FnOnce() -> bool + 'static) -> HeldLock {
    let held_lock: HeldLock = Rc::new(RefCell::new(None));
    let Some(request) = lock_request() else {
        return held_lock;
    };
    let on_grant = {
        let held_lock = held_lock.clone();
        Closure::once(move |_lock: JsValue| -> js_sys::Promise {
            let held = js_sys::Promise::new(&mut |resolve, _reject| {
                *held_lock.borrow_mut() = Some(resolve);
            });
            if !granted() {
                release(&held_lock);
            }
            held
        })
    };
    let _ = request.call2(
        &request_target(),
        &JsValue::from_str(name),
        on_grant.as_ref().unchecked_ref(),
    );
    on_grant.forget();
    held_lock
}

pub(super) fn release(lock: &HeldLock) {
    if let Some(resolve) = lock.borrow_mut().take() {
        let _ = resolve.call0(&JsValue::NULL);
    }
}

/// This tab won the lock: poll from the last id it has, and relay.
fn lead(page: Rc<Page>, subscriber: Subscriber, handle: SubscriberHandle) {
    *page.leading.borrow_mut() = true;
    page.release();
    let since = page.last.borrow().clone();
    let on_message = {
        let page = page.clone();
        move |message: Message| {
            {
                let mut replay = page.replay.borrow_mut();
                replay.push_back(message.clone());
                if replay.len() > REPLAY {
                    replay.pop_front();
                }
            }
            page.post(&Relay::Message { m: message.clone() });
            page.deliver(message);
        }
    };
    let on_failure = {
        let page = page.clone();
        move |failure: Failure| {
            if failure == Failure::CursorExpired {
                page.post(&Relay::Expired);
            }
            (page.on_failure)(failure);
        }
    };
    let on_status = {
        let page = page.clone();
        move |status: Status| {
            *page.status.borrow_mut() = status;
            page.post(&Relay::Status {
                s: status.as_str().to_owned(),
            });
            (page.on_status)(status);
        }
    };
    subscriber
        .since(since)
        .on_message(on_message)
        .on_failure(on_failure)
        .on_status(on_status)
        .start_with(handle);
}

/// `navigator.locks.request`, if this browser has Web Locks.
pub(super) fn lock_request() -> Option<js_sys::Function> {
    let locks = request_target();
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    js_sys::Reflect::get(&locks, &JsValue::from_str("request"))
        .ok()?
        .dyn_into()
        .ok()
}

fn request_target() -> JsValue {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &JsValue::from_str("locks")).ok())
        .unwrap_or(JsValue::UNDEFINED)
}
