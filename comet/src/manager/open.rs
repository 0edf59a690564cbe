//! Channels opened, found and closed at run time (see [`crate::channels`]
//! for the rules and how nodes agree on them).

use super::{bounded, Comet, Manager};
use crate::{ClientRecord, CometError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Comet {
    /// Opens the channel `name` (or finds it open), on behalf of `by`
    /// (`None`: the app itself), under the app's
    /// [`ChannelPolicy`](crate::channels::ChannelPolicy): an invalid name is
    /// [`CometError::InvalidChannel`], a refusal [`CometError::Refused`], one
    /// channel past the limit [`CometError::AtCapacity`]. Every node finds
    /// it from then on. A fixed channel is open already.
    pub async fn open(
        &self,
        name: &str,
        by: Option<&ClientRecord>,
    ) -> Result<Arc<Manager>, CometError> {
        if let Some(manager) = self.fixed(name) {
            return Ok(manager);
        }
        let policy = &self.parts.policy;
        if !policy.valid_name(name) {
            return Err(CometError::InvalidChannel(format!("{name:?}")));
        }
        if !policy.may_open(name, by) {
            return Err(CometError::Refused(format!("opening {name:?}")));
        }
        self.bounded(
            self.parts
                .provider
                .open_channel(name, policy.max_channels()),
        )
        .await?;
        Ok(self.attach(name))
    }

    /// The channel `name` if it is open: served here already, or opened on
    /// another node (the provider says so, and this node serves it from
    /// now on); else [`CometError::UnknownChannel`]. Names the policy does
    /// not take are unknown without asking the provider.
    pub async fn find(&self, name: &str) -> Result<Arc<Manager>, CometError> {
        if let Some(manager) = self.channel(name) {
            return Ok(manager);
        }
        let unknown = || CometError::UnknownChannel(name.to_owned());
        if !self.parts.policy.valid_name(name) {
            return Err(unknown());
        }
        if !self
            .bounded(self.parts.provider.channel_is_open(name))
            .await?
        {
            return Err(unknown());
        }
        Ok(self.attach(name))
    }

    /// Closes the channel `name` on every node: its clients and messages
    /// are dropped, its polls here answer `404` at once, and other nodes
    /// let go of it within a reap interval (until then their polls find
    /// their client gone). `Ok(false)` if it was not open; a fixed channel
    /// is [`CometError::Refused`].
    pub async fn close(&self, name: &str) -> Result<bool, CometError> {
        if self.fixed(name).is_some() {
            return Err(CometError::Refused(format!("{name:?} is a fixed channel")));
        }
        // Closed here before the store is told: a poll woken by the store's
        // close must answer `404`, not read a channel that is half gone.
        let local = self.channels.load().get(name).cloned();
        let mark = |closed: bool| {
            if let Some(manager) = &local {
                manager.closed.store(closed, Ordering::SeqCst);
            }
        };
        mark(true);
        match self.bounded(self.parts.provider.close_channel(name)).await {
            Ok(closed) => {
                self.detach(name);
                Ok(closed)
            }
            Err(error) => {
                mark(false);
                Err(error)
            }
        }
    }

    /// Every channel's name, sorted: the fixed ones and those open on any
    /// node.
    pub async fn channel_names(&self) -> Result<Vec<String>, CometError> {
        let mut names = self.bounded(self.parts.provider.open_channels()).await?;
        names.extend(
            self.channels
                .load()
                .values()
                .filter(|manager| manager.fixed)
                .map(|manager| manager.name.clone()),
        );
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn fixed(&self, name: &str) -> Option<Arc<Manager>> {
        self.channel(name).filter(|manager| manager.fixed)
    }

    /// Serves `name` here from now on (the manager already serving it, if
    /// another call got there first).
    fn attach(&self, name: &str) -> Arc<Manager> {
        let mut made = None;
        self.channels.rcu(|channels| {
            if channels.get(name).is_some_and(|open| !open.is_closed()) {
                return channels.clone();
            }
            let manager = made
                .get_or_insert_with(|| self.parts.manager(name, false))
                .clone();
            let mut grown = HashMap::clone(channels);
            grown.insert(name.to_owned(), manager);
            Arc::new(grown)
        });
        let manager = self.channel(name).expect("just attached");
        if let Some(unused) = made.filter(|made| !Arc::ptr_eq(made, &manager)) {
            unused.shutdown.cancel();
        }
        manager
    }

    /// Stops serving `name` here: its polls answer `404`, its tasks stop.
    pub(super) fn detach(&self, name: &str) {
        let mut gone = None;
        self.channels.rcu(|channels| {
            let mut shrunk = HashMap::clone(channels);
            gone = shrunk.remove(name);
            Arc::new(shrunk)
        });
        if let Some(manager) = gone {
            manager.close_here();
        }
    }

    /// A provider call bounded like every call of the channels' managers.
    fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CometError>>,
    ) -> impl std::future::Future<Output = Result<T, CometError>> {
        bounded(self.parts.settings.provider_timeout, call)
    }
}

impl Manager {
    /// Marks the channel closed on this node: waiting polls are woken and
    /// answer `404`, later ones too; the reaper and presence sender stop.
    pub(super) fn close_here(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.provider.wake_all(&self.name);
        self.shutdown.cancel();
    }

    /// Whether a channel opened at run time is still open (the reaper asks
    /// each round, so a node lets go of a channel closed elsewhere).
    pub(super) async fn still_open(&self) -> Result<bool, CometError> {
        if self.fixed {
            return Ok(true);
        }
        self.bounded(self.provider.channel_is_open(&self.name))
            .await
    }
}
