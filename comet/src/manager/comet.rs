//! [`Comet`], the channels one server exposes, and how it tells when a
//! wake-up has been answered: each waiting poll is counted under the wake
//! value it saw ([`Parked`]), so a count under an older value than the
//! channel's latest is a poll woken and not yet answered.

use super::poll::NodePolls;
use super::{Manager, Settings};
use crate::metrics::ChannelMetrics;
use crate::presence::PresenceBatch;
use crate::provider::Provider;
use crate::TokenMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channels one server exposes, sharing one provider and one shutdown.
#[derive(Clone)]
pub struct Comet {
    channels: Arc<HashMap<String, Arc<Manager>>>,
    shutdown: CancellationToken,
    answered: Arc<Notify>,
}

impl Comet {
    /// Creates a manager per channel name and starts their idle reapers.
    /// Must be called inside a tokio runtime.
    pub fn new(provider: Arc<dyn Provider>, settings: Settings, channels: &[&str]) -> Self {
        let shutdown = CancellationToken::new();
        let node_polls = Arc::new(NodePolls::default());
        let answered = Arc::new(Notify::new());
        let channels = channels
            .iter()
            .map(|name| {
                let manager = Arc::new(Manager {
                    name: (*name).to_owned(),
                    provider: provider.clone(),
                    settings: settings.clone(),
                    polls: Mutex::new(TokenMap::default()),
                    parked: Mutex::new(BTreeMap::new()),
                    latest: provider.watch(name),
                    answered: answered.clone(),
                    stopping: std::sync::atomic::AtomicBool::new(false),
                    node_polls: node_polls.clone(),
                    metrics: ChannelMetrics::new(name),
                    shutdown: shutdown.clone(),
                    presence: Arc::new(PresenceBatch::default()),
                });
                manager.spawn_reaper();
                manager.spawn_presence_sender();
                ((*name).to_owned(), manager)
            })
            .collect();
        Self {
            channels: Arc::new(channels),
            shutdown,
            answered,
        }
    }

    /// Whether a wake-up is still being answered on this node: some poll
    /// waiting here was woken by a new message and has not answered yet.
    pub fn is_answering(&self) -> bool {
        self.channels.values().any(|m| m.is_answering())
    }

    /// Resolves once no wake-up is being answered on this node (at once if
    /// none is). A server that waits on this before reading a client's
    /// next poll answers every woken poll first and reads the new polls
    /// after: the replies go out sooner, and a new poll finds its client's
    /// messages already read by everyone else.
    pub async fn answered(&self) {
        loop {
            let notified = self.answered.notified();
            tokio::pin!(notified);
            // Registered before the check: an answer in between still wakes.
            notified.as_mut().enable();
            if !self.is_answering() {
                return;
            }
            notified.await;
        }
    }

    pub fn channel(&self, name: &str) -> Option<Arc<Manager>> {
        self.channels.get(name).cloned()
    }

    /// Answers every waiting poll with
    /// [`CometError::Stopping`](crate::CometError::Stopping) (`503` +
    /// `Retry-After`; polls that arrive later get the same) and stops the
    /// reapers, so clients move to another node at once instead of waiting
    /// out a dying server, or re-polling it in a loop as an instant
    /// `timeout` would have them do. Step 1 of a node's
    /// [shutdown](crate#shutdown).
    pub fn shutdown(&self) {
        for manager in self.channels.values() {
            // Set before the wake-up: a poll that reads after the wake-up
            // sees the flag before it would wait.
            manager
                .stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            manager.provider.wake_all(&manager.name);
        }
        self.shutdown.cancel();
    }

    /// Sends every channel's pending presence window now, so joins and
    /// leaves of the last moments are not lost with the process. Step 5 of
    /// a node's [shutdown](crate#shutdown).
    pub async fn flush_presence(&self) {
        for manager in self.channels.values() {
            if let Err(error) = manager.flush_presence().await {
                tracing::warn!(channel = %manager.name, %error, "presence lost at shutdown");
            }
        }
    }
}

/// Counts one waiting poll under the wake value it saw, for as long as it
/// waits (however the wait ends).
pub(super) struct Parked<'a> {
    manager: &'a Manager,
    seen: u64,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        let mut parked = self.manager.parked.lock().expect("parked polls poisoned");
        if let Some(n) = parked.get_mut(&self.seen) {
            *n -= 1;
            if *n == 0 {
                parked.remove(&self.seen);
            }
        }
        let latest = *self.manager.latest.borrow();
        let answering = woken_remain(&parked, latest);
        drop(parked);
        if self.seen < latest && !answering {
            self.manager.answered.notify_waiters();
        }
    }
}

/// Whether any parked poll saw an older wake value than `latest`, i.e. was
/// woken and has not answered yet.
fn woken_remain(parked: &BTreeMap<u64, usize>, latest: u64) -> bool {
    parked.keys().next().is_some_and(|&oldest| oldest < latest)
}

impl Manager {
    pub(super) fn park(&self, seen: u64) -> Parked<'_> {
        *self
            .parked
            .lock()
            .expect("parked polls poisoned")
            .entry(seen)
            .or_insert(0) += 1;
        Parked {
            manager: self,
            seen,
        }
    }

    /// Polls waiting on this channel on this node right now.
    pub fn waiting_polls(&self) -> usize {
        self.parked
            .lock()
            .expect("parked polls poisoned")
            .values()
            .sum()
    }

    /// Whether polls woken on this channel have yet to answer.
    fn is_answering(&self) -> bool {
        let latest = *self.latest.borrow();
        woken_remain(&self.parked.lock().expect("parked polls poisoned"), latest)
    }
}
