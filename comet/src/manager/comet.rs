//! [`Comet`], the channels one server exposes, and how it tells when a
//! wake-up has been answered: each waiting poll is counted under the wake
//! value it saw ([`Parked`]), so a count under an older value than the
//! channel's latest is a poll woken and not yet answered.

use super::poll::NodePolls;
use super::{Manager, Settings};
use crate::channels::{ChannelPolicy, DefaultPolicy};
use crate::metrics::ChannelMetrics;
use crate::presence::PresenceBatch;
use crate::provider::Provider;
use crate::TokenMap;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channels one server exposes, sharing one provider and one shutdown.
#[derive(Clone)]
pub struct Comet {
    /// Every channel this node serves now: the fixed ones, and those
    /// opened at run time that it has met (`open.rs`). Read on every poll
    /// without a lock; replaced whole when a channel comes or goes.
    pub(super) channels: Arc<ArcSwap<HashMap<String, Arc<Manager>>>>,
    pub(super) parts: Arc<Parts>,
}

/// What every channel of one [`Comet`] shares, and what a channel opened
/// later is made with.
pub(super) struct Parts {
    pub(super) provider: Arc<dyn Provider>,
    pub(super) settings: Settings,
    pub(super) policy: Arc<dyn ChannelPolicy>,
    pub(super) node_polls: Arc<NodePolls>,
    pub(super) shutdown: CancellationToken,
    answered: Arc<Notify>,
}

impl Comet {
    /// Creates a manager per channel name (the *fixed* channels: open on
    /// every node, never closed) and starts their idle reapers, with the
    /// default rules for channels opened later ([`DefaultPolicy`]). Must
    /// be called inside a tokio runtime.
    pub fn new(provider: Arc<dyn Provider>, settings: Settings, channels: &[&str]) -> Self {
        Self::with_policy(provider, settings, channels, Arc::new(DefaultPolicy))
    }

    /// As [`new`](Self::new), with the app's rules for channels opened at
    /// run time (see [`crate::channels`]).
    pub fn with_policy(
        provider: Arc<dyn Provider>,
        settings: Settings,
        channels: &[&str],
        policy: Arc<dyn ChannelPolicy>,
    ) -> Self {
        let parts = Arc::new(Parts {
            provider,
            settings,
            policy,
            node_polls: Arc::new(NodePolls::default()),
            shutdown: CancellationToken::new(),
            answered: Arc::new(Notify::new()),
        });
        let channels = channels
            .iter()
            .map(|name| ((*name).to_owned(), parts.manager(name, true)))
            .collect();
        Self {
            channels: Arc::new(ArcSwap::from_pointee(channels)),
            parts,
        }
    }

    /// Whether a wake-up is still being answered on this node: some poll
    /// waiting here was woken by a new message and has not answered yet.
    pub fn is_answering(&self) -> bool {
        self.channels.load().values().any(|m| m.is_answering())
    }

    /// Resolves once no wake-up is being answered on this node (at once if
    /// none is). A server that waits on this before reading a client's
    /// next poll answers every woken poll first and reads the new polls
    /// after: the replies go out sooner, and a new poll finds its client's
    /// messages already read by everyone else.
    pub async fn answered(&self) {
        loop {
            let notified = self.parts.answered.notified();
            tokio::pin!(notified);
            // Registered before the check: an answer in between still wakes.
            notified.as_mut().enable();
            if !self.is_answering() {
                return;
            }
            notified.await;
        }
    }

    /// The settings every channel of this node shares.
    pub fn settings(&self) -> &Settings {
        &self.parts.settings
    }

    /// The channel `name` if this node serves it now (fixed, or opened and
    /// met here); [`find`](Self::find) also asks the provider.
    pub fn channel(&self, name: &str) -> Option<Arc<Manager>> {
        let channels = self.channels.load();
        let manager = channels.get(name)?;
        // Closed, seen by its reaper: `find` asks the provider again.
        (!manager.is_closed()).then(|| manager.clone())
    }

    /// Answers every waiting poll with
    /// [`CometError::Stopping`](crate::CometError::Stopping) (`503` +
    /// `Retry-After`; polls that arrive later get the same) and stops the
    /// reapers, so clients move to another node at once instead of waiting
    /// out a dying server, or re-polling it in a loop as an instant
    /// `timeout` would have them do. Step 1 of a node's
    /// [shutdown](crate#shutdown).
    pub fn shutdown(&self) {
        for manager in self.channels.load().values() {
            // Set before the wake-up: a poll that reads after the wake-up
            // sees the flag before it would wait.
            manager
                .stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            manager.provider.wake_all(&manager.name);
        }
        self.parts.shutdown.cancel();
    }

    /// Sends every channel's pending presence window now, so joins and
    /// leaves of the last moments are not lost with the process. Step 5 of
    /// a node's [shutdown](crate#shutdown).
    pub async fn flush_presence(&self) {
        let channels = self.channels.load_full();
        for manager in channels.values() {
            if let Err(error) = manager.flush_presence().await {
                tracing::warn!(channel = %manager.name, %error, "presence lost at shutdown");
            }
        }
    }
}

impl Parts {
    /// A manager for the channel `name`, its reaper and presence sender
    /// started. A channel opened at run time (`fixed: false`) gets a
    /// shutdown of its own under the node's, so closing it stops its tasks.
    pub(super) fn manager(&self, name: &str, fixed: bool) -> Arc<Manager> {
        let manager = Arc::new(Manager {
            name: name.to_owned(),
            provider: self.provider.clone(),
            settings: self.settings.clone(),
            policy: self.policy.clone(),
            fixed,
            closed: AtomicBool::new(false),
            polls: Mutex::new(TokenMap::default()),
            parked: Mutex::new(BTreeMap::new()),
            latest: self.provider.watch(name),
            answered: self.answered.clone(),
            stopping: AtomicBool::new(false),
            node_polls: self.node_polls.clone(),
            metrics: ChannelMetrics::new(name),
            shutdown: if fixed {
                self.shutdown.clone()
            } else {
                self.shutdown.child_token()
            },
            presence: Arc::new(PresenceBatch::default()),
        });
        manager.spawn_reaper();
        manager.spawn_presence_sender();
        manager
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
