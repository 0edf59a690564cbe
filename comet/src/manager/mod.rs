//! The manager: the per-channel object an app talks to (initialise, look up
//! and remove clients, send, subscribe), and [`Comet`], the set of channels
//! a server exposes on its channel route.
//!
//! A poll is a loop of "read what is newer than my cursor; if nothing, wait
//! for the channel's watch to change". Subscribing to the watch *before*
//! each read closes the race where a message lands between the read and the
//! wait. Concurrent polls per client are counted on this node and capped, so
//! several tabs work but a runaway client cannot hold unbounded polls.
//!
//! Every provider call the manager awaits is bounded by
//! [`Settings::provider_timeout`]: a store that does not answer (Redis
//! paused, a network partition, a connection manager retrying its
//! reconnect with back-off) must turn into a prompt
//! [`CometError::Unavailable`] (`503` + `Retry-After`) that a client or a
//! load balancer can act on, never a request held for as long as the
//! store's own retries last.
//!
//! What lives where:
//!
//! - `comet.rs`: [`Comet`], the set of channels, and how it knows when every
//!   poll a wake-up woke has answered (the parked-poll bookkeeping).
//! - this file: [`Manager`] itself, its bounded provider calls, and
//!   [`unix_millis`].
//! - `open.rs`: channels opened, found and closed at run time.
//! - `many.rs`: one poll for several channels.
//! - `clients.rs`: initialising, looking up, listing and removing clients.
//! - `messages.rs`: sending, and reading a client's recent messages.
//! - `poll.rs`: a poll's life ([`OpenPoll`], [`PollOutcome`]): its checks and slot
//!   under the caps, its reads, its wait, what it records.
//! - `presence_sender.rs`: recording joins and leaves, sending windows.
//! - `reaper.rs`: the task that removes idle clients.
//! - `settings.rs`: [`Settings`] and their defaults.

mod clients;
mod comet;
mod many;
mod messages;
mod open;
mod poll;
mod presence_sender;
mod reaper;
pub(super) mod settings;

pub use comet::Comet;
pub use many::{ChannelsOutcome, OpenChannels};
pub use poll::{OpenPoll, PollOutcome};
pub use settings::Settings;

use super::channels::ChannelPolicy;
use super::metrics::ChannelMetrics;
use super::presence::PresenceBatch;
use super::provider::Provider;
use super::{CometError, PublicToken, TokenMap};
use poll::NodePolls;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

pub struct Manager {
    name: String,
    provider: Arc<dyn Provider>,
    settings: Settings,
    /// The app's rules for channels (who may join, how many members).
    policy: Arc<dyn ChannelPolicy>,
    /// Named when the [`Comet`] was made: never closed.
    fixed: bool,
    /// Set when the channel is closed (here, or seen closed by the
    /// reaper): its polls answer [`CometError::UnknownChannel`].
    closed: std::sync::atomic::AtomicBool,
    /// Polls in progress on this node, per client. Entries are removed when
    /// they drop to zero, so the map holds only clients that are polling.
    polls: Mutex<TokenMap<PublicToken, usize>>,
    /// Polls waiting on this node, counted by the wake value each saw
    /// last: a key older than `latest` means polls woken and not yet
    /// answered.
    parked: Mutex<BTreeMap<u64, usize>>,
    /// The channel's wake value (never marked seen: only read).
    latest: watch::Receiver<u64>,
    /// Notified when the last woken poll of a wake-up stops waiting.
    answered: Arc<Notify>,
    node_polls: Arc<NodePolls>,
    /// Set by [`Comet::shutdown`]: polls answer [`CometError::Stopping`]. (A flag
    /// and a wake-up rather than a cancellation future per poll, which
    /// would cost every poll locks shared by all of them.)
    stopping: std::sync::atomic::AtomicBool,
    metrics: ChannelMetrics,
    shutdown: CancellationToken,
    /// Joins and leaves waiting for their window to close (shared with the
    /// task that sends them).
    presence: Arc<PresenceBatch>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("name", &self.name)
            .field("fixed", &self.fixed)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.presence.release_sender();
    }
}

impl Manager {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn presence(&self) -> &Arc<PresenceBatch> {
        &self.presence
    }

    pub(super) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// One provider call, bounded by [`Settings::provider_timeout`]
    /// ([`bounded`]).
    /// (Not an `async fn` of its own: the future is the free function's,
    /// with no second layer around it in every held poll.)
    fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CometError>>,
    ) -> impl std::future::Future<Output = Result<T, CometError>> {
        bounded(self.settings.provider_timeout, call)
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// [`CometError::Stopping`] on a stopping node, [`CometError::UnknownChannel`]
    /// on a closed channel: what a poll answers instead of waiting.
    fn unavailable_now(&self) -> Option<CometError> {
        if self.is_closed() {
            Some(CometError::UnknownChannel(self.name.clone()))
        } else if self.is_stopping() {
            Some(CometError::Stopping)
        } else {
            None
        }
    }

    /// Fails with [`CometError::UnknownClient`] unless the store (not a
    /// node's cache of it: see [`Provider::client_by_public`]) still has
    /// this client.
    async fn confirm_client(&self, public: &PublicToken) -> Result<(), CometError> {
        self.bounded(self.provider.client_by_public(&self.name, public))
            .await?
            .map(|_| ())
            .ok_or(CometError::UnknownClient)
    }

    fn count_error(&self, error: &CometError) {
        if matches!(error, CometError::Unavailable(_)) {
            self.metrics.provider_errors.increment(1);
        }
    }
}

/// `call`, failing with [`CometError::Unavailable`] if it does not finish
/// within `limit`: how every provider call of the manager and of [`Comet`]
/// is bounded.
///
/// Not `tokio::time::timeout`: its timer lives inside the future, which
/// made every held poll's future 72 bytes larger, and it reads the
/// clock on every call. Most calls here (the in-process provider, the
/// Redis read cache) are ready on their first poll; the timer is only
/// started, boxed, for a call that has to wait.
async fn bounded<T>(
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, CometError>>,
) -> Result<T, CometError> {
    use std::future::Future;
    use std::task::Poll as Ready;
    let mut call = std::pin::pin!(call);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Ready::Ready(result) = call.as_mut().poll(cx) {
            return Ready::Ready(result);
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| {
            Err(CometError::Unavailable(format!(
                "the provider did not answer within {limit:?}"
            )))
        })
    })
    .await
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
