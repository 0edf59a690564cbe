//! One `POST /comet` for all the tabs of one browser, whatever channels
//! each follows (`tabs.rs` does the same for one channel, and explains
//! why: a browser's six connections per host).
//!
//! The tabs of one origin elect a leader with a Web Lock, as in `tabs.rs`,
//! and talk over a `BroadcastChannel`. Each tab tells the leader which
//! channels it follows and from which cursor (`Want`: when it opens, when
//! it follows or leaves one, and when a new leader asks); the leader polls
//! the union of them, relays every message tagged with its channel, and
//! changes its held poll at once when the union changes.
//!
//! Exactly once, per channel: a tab moves its cursor of a channel only
//! past a message it handed to its page, and drops ids it already handled.
//! A leader answers a tab's `Want` from a channel's replay buffer when the
//! tab's cursor is in it (a tab that opened while it led), and otherwise
//! polls that channel again from the tab's cursor (the other tabs drop
//! what they already have): so a tab that follows a channel the leader
//! follows already, or that was ahead of a new leader, misses nothing.
//! When the leader closes, the next tab takes the lock, polls from its own
//! cursors and asks every tab for its `Want` again. Cursors are opaque, so
//! a tab cannot tell which of two is newer; the cost of that is a message
//! fetched twice, never one skipped.
//!
//! Browsers without Web Locks or `BroadcastChannel`: one poll per tab.

use super::channels_subscriber::{Change, ChannelsHandle, ChannelsSubscriber};
use super::subscriber::Failure;
use super::tabs::{lock_request, release, request_lock, status_from};
use super::wire::ErrorBody;
use super::{Cursor, Message, Status};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Messages per channel the leader keeps for tabs that open later.
const REPLAY: usize = 200;
/// How long a new tab waits for the leader's replay before going on.
const REPLAY_WAIT_MS: u32 = 400;

type Cursors = BTreeMap<String, Option<Cursor>>;

/// What tabs say to each other.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum Relay {
    /// A message the leader received.
    Message { ch: String, m: Message },
    /// The leader's status changed (or, after a `Want`, what it is).
    Status { s: String },
    /// A channel's cursor expired: messages were missed.
    Expired { ch: String },
    /// The server no longer has the channel for this client.
    Left { ch: String, e: ErrorBody },
    /// A tab's channels and cursors, to the leader.
    Want { tab: String, chs: Cursors },
    /// The leader's answer to a `Want`: what the tab missed.
    Replay {
        tab: String,
        ms: Vec<(String, Message)>,
    },
    /// A new leader: every tab says its `Want` again.
    Roll,
    /// A tab stopped.
    Bye { tab: String },
}

/// One tab: its page's handlers, its channels, and, while it leads, what
/// the shared poll needs.
struct Tab {
    id: String,
    on_message: Box<dyn Fn(String, Message)>,
    on_failure: Box<dyn Fn(Option<String>, Failure)>,
    on_status: Box<dyn Fn(Status)>,
    /// This tab's channels, each at the last id its page got.
    wants: RefCell<Cursors>,
    seen: RefCell<HashMap<String, HashSet<String>>>,
    /// Until the leader's replay: live messages held back, in order.
    held: RefCell<Option<Vec<(String, Message)>>>,
    channel: web_sys::BroadcastChannel,
    /// The leader's poll, while this tab leads.
    poller: RefCell<Option<ChannelsHandle>>,
    /// Leader only: the other tabs' wants.
    others: RefCell<HashMap<String, Cursors>>,
    /// Leader only: the channels polled, each at the last id received.
    polled: RefCell<Cursors>,
    replay: RefCell<HashMap<String, VecDeque<Message>>>,
    status: Cell<Status>,
}

impl Tab {
    fn leading(&self) -> bool {
        self.poller.borrow().is_some()
    }

    fn post(&self, relay: &Relay) {
        if let Ok(text) = serde_json::to_string(relay) {
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// Hands a message to the page: once per id, and only of a channel
    /// this tab follows.
    fn deliver(&self, ch: String, m: Message) {
        let mut wants = self.wants.borrow_mut();
        let Some(cursor) = wants.get_mut(&ch) else {
            return;
        };
        if !self
            .seen
            .borrow_mut()
            .entry(ch.clone())
            .or_default()
            .insert(m.id.0.clone())
        {
            return;
        }
        *cursor = Some(m.id.clone());
        drop(wants);
        (self.on_message)(ch, m);
    }

    /// A channel failed: this tab's page hears it if it follows it.
    fn channel_failed(&self, ch: String, failure: Failure) {
        let mut wants = self.wants.borrow_mut();
        if !wants.contains_key(&ch) {
            return;
        }
        if matches!(failure, Failure::Left(_)) {
            wants.remove(&ch);
        } else {
            wants.insert(ch.clone(), None);
        }
        drop(wants);
        (self.on_failure)(Some(ch), failure);
    }

    /// Stops holding live messages back.
    fn release_held(&self, first: Vec<(String, Message)>) {
        let held = self.held.borrow_mut().take();
        for (ch, m) in first.into_iter().chain(held.into_iter().flatten()) {
            self.deliver(ch, m);
        }
    }

    fn send_want(&self) {
        let chs = self.wants.borrow().clone();
        if self.leading() {
            self.wanted(self.id.clone(), chs);
        } else {
            self.post(&Relay::Want {
                tab: self.id.clone(),
                chs,
            });
        }
    }

    /// Leader: a tab's wants. The poll follows the union; the tab gets what
    /// it missed from the replay buffers, or the channel is polled again
    /// from the tab's cursor.
    fn wanted(&self, tab: String, chs: Cursors) {
        let Some(poller) = self.poller.borrow().clone() else {
            return;
        };
        let mut missed = Vec::new();
        {
            let mut polled = self.polled.borrow_mut();
            let replay = self.replay.borrow();
            for (ch, since) in &chs {
                match (polled.get(ch), since) {
                    (None, _) => {
                        poller.follow(ch.clone(), since.clone());
                        polled.insert(ch.clone(), since.clone());
                    }
                    (Some(_), None) => {}
                    (Some(at), Some(since)) if at.as_ref() == Some(since) => {}
                    (Some(_), Some(since)) => {
                        let buffer = replay.get(ch);
                        match buffer.and_then(|b| b.iter().position(|m| &m.id == since)) {
                            Some(i) => missed.extend(
                                buffer
                                    .into_iter()
                                    .flatten()
                                    .skip(i + 1)
                                    .map(|m| (ch.clone(), m.clone())),
                            ),
                            None => {
                                poller.follow(ch.clone(), Some(since.clone()));
                                polled.insert(ch.clone(), Some(since.clone()));
                            }
                        }
                    }
                }
            }
        }
        if tab == self.id {
            for (ch, m) in missed {
                self.deliver(ch, m);
            }
        } else {
            self.others.borrow_mut().insert(tab.clone(), chs);
            self.post(&Relay::Replay { tab, ms: missed });
            self.post(&Relay::Status {
                s: self.status.get().as_str().to_owned(),
            });
        }
        self.drop_unwanted();
    }

    /// Leader: leaves the channels no tab follows any more.
    fn drop_unwanted(&self) {
        let Some(poller) = self.poller.borrow().clone() else {
            return;
        };
        let others = self.others.borrow();
        let wants = self.wants.borrow();
        let wanted =
            |ch: &String| wants.contains_key(ch) || others.values().any(|w| w.contains_key(ch));
        self.polled.borrow_mut().retain(|ch, _| {
            let keep = wanted(ch);
            if !keep {
                poller.leave(ch.clone());
            }
            keep
        });
    }

    /// What another tab said.
    fn heard(&self, relay: Relay) {
        let leading = self.leading();
        match relay {
            Relay::Message { ch, m } if !leading => {
                if let Some(held) = self.held.borrow_mut().as_mut() {
                    held.push((ch, m));
                    return;
                }
                self.deliver(ch, m);
            }
            Relay::Status { s } if !leading => {
                if let Some(status) = status_from(&s) {
                    (self.on_status)(status);
                }
            }
            Relay::Expired { ch } if !leading => self.channel_failed(ch, Failure::CursorExpired),
            Relay::Left { ch, e } if !leading => self.channel_failed(ch, Failure::Left(e)),
            Relay::Want { tab, chs } if leading => self.wanted(tab, chs),
            Relay::Replay { tab, ms } if !leading && tab == self.id => self.release_held(ms),
            Relay::Roll if !leading => self.send_want(),
            Relay::Bye { tab } if leading => {
                self.others.borrow_mut().remove(&tab);
                self.drop_unwanted();
            }
            _ => {}
        }
    }
}

impl ChannelsSubscriber {
    /// Starts it shared with this browser's other tabs on the same `name`
    /// (e.g. `"comet"`): one tab polls the channels every tab follows, and
    /// each tab's page gets each message of its own channels once. Falls
    /// back to [`start`](Self::start) where the browser lacks what sharing
    /// needs.
    pub fn start_shared(self, name: &str) -> ChannelsHandle {
        let (Some(_), Ok(channel)) = (
            lock_request(),
            web_sys::BroadcastChannel::new(&format!("comet-channels:{name}")),
        ) else {
            return self.start();
        };
        let ChannelsSubscriber {
            url,
            channels,
            on_message,
            on_timeout,
            on_failure,
            on_status,
            max_backoff_ms,
        } = self;
        let tab = Rc::new(Tab {
            id: format!("{:x}", (js_sys::Math::random() * 9e15) as u64),
            on_message,
            on_failure,
            on_status,
            wants: RefCell::new(channels),
            seen: RefCell::new(HashMap::new()),
            held: RefCell::new(Some(Vec::new())),
            channel,
            poller: RefCell::new(None),
            others: RefCell::new(HashMap::new()),
            polled: RefCell::new(BTreeMap::new()),
            replay: RefCell::new(HashMap::new()),
            status: Cell::new(Status::Connecting),
        });
        let listener = {
            let tab = tab.clone();
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                let text = event.data().as_string().unwrap_or_default();
                if let Ok(relay) = serde_json::from_str::<Relay>(&text) {
                    tab.heard(relay);
                }
            })
        };
        tab.channel
            .set_onmessage(Some(listener.as_ref().unchecked_ref()));
        listener.forget();

        // Ask whoever leads for this tab's channels and what it missed.
        tab.send_want();
        {
            let tab = tab.clone();
            leptos::task::spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(REPLAY_WAIT_MS).await;
                tab.release_held(Vec::new());
            });
        }
        let (handle, mut changes) = ChannelsHandle::new();
        let poller = ChannelsSubscriber {
            url,
            channels: BTreeMap::new(),
            on_message: Box::new(|_, _| {}),
            on_timeout,
            on_failure: Box::new(|_, _| {}),
            on_status: Box::new(|_| {}),
            max_backoff_ms,
        };
        let lock = request_lock(&format!("comet-channels:{name}"), {
            let (tab, handle) = (tab.clone(), handle.clone());
            move || {
                if handle.is_stopped() {
                    return false;
                }
                lead(tab, poller);
                true
            }
        });
        // The page's follows and leaves, for this tab and the leader. A
        // handle of its own keeps the queue open: a page that drops its
        // handle keeps its subscription for its life, as with `start`.
        let own = handle.clone();
        leptos::task::spawn_local(async move {
            let _own = own;
            while let Some(change) = changes.next().await {
                match change {
                    Change::Follow(ch, since) => {
                        let mut wants = tab.wants.borrow_mut();
                        let cursor = wants.entry(ch).or_insert(None);
                        if since.is_some() {
                            *cursor = since;
                        }
                    }
                    Change::Leave(ch) => {
                        tab.wants.borrow_mut().remove(&ch);
                    }
                    Change::Stop => break,
                }
                tab.send_want();
                tab.drop_unwanted();
            }
            if let Some(poller) = tab.poller.borrow_mut().take() {
                poller.stop();
            }
            tab.post(&Relay::Bye {
                tab: tab.id.clone(),
            });
            tab.channel.set_onmessage(None);
            tab.channel.close();
            release(&lock);
        });
        handle
    }
}

/// This tab won the lock: poll its own channels from its own cursors,
/// relay, and ask the other tabs for theirs.
fn lead(tab: Rc<Tab>, poller: ChannelsSubscriber) {
    let mut poller = poller;
    let polled = tab.wants.borrow().clone();
    poller.channels = polled.clone();
    *tab.polled.borrow_mut() = polled;
    poller.on_message = Box::new({
        let tab = tab.clone();
        move |ch: String, m: Message| {
            if let Some(cursor) = tab.polled.borrow_mut().get_mut(&ch) {
                *cursor = Some(m.id.clone());
            }
            {
                let mut replay = tab.replay.borrow_mut();
                let buffer = replay.entry(ch.clone()).or_default();
                buffer.push_back(m.clone());
                if buffer.len() > REPLAY {
                    buffer.pop_front();
                }
            }
            tab.post(&Relay::Message {
                ch: ch.clone(),
                m: m.clone(),
            });
            tab.deliver(ch, m);
        }
    });
    poller.on_failure = Box::new({
        let tab = tab.clone();
        move |ch: Option<String>, failure: Failure| match ch {
            Some(ch) => {
                match &failure {
                    Failure::Left(e) => {
                        tab.polled.borrow_mut().remove(&ch);
                        for wants in tab.others.borrow_mut().values_mut() {
                            wants.remove(&ch);
                        }
                        tab.post(&Relay::Left {
                            ch: ch.clone(),
                            e: e.clone(),
                        });
                    }
                    _ => {
                        tab.polled.borrow_mut().insert(ch.clone(), None);
                        tab.post(&Relay::Expired { ch: ch.clone() });
                    }
                }
                tab.channel_failed(ch, failure);
            }
            None => (tab.on_failure)(None, failure),
        }
    });
    poller.on_status = Box::new({
        let tab = tab.clone();
        move |status: Status| {
            tab.status.set(status);
            tab.post(&Relay::Status {
                s: status.as_str().to_owned(),
            });
            (tab.on_status)(status);
        }
    });
    *tab.poller.borrow_mut() = Some(poller.start());
    tab.release_held(Vec::new());
    tab.post(&Relay::Roll);
}
