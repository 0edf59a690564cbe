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

use super::metrics::ChannelMetrics;
use super::presence::PresenceBatch;
use super::provider::{Audience, ClientRecord, PollingClient, Provider};
use super::{CometError, Cursor, Message, PrivateToken, PublicToken, TokenMap};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// Channel settings. The timeouts are the defaults for new clients.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a poll is held with nothing to say before it answers timeout.
    pub connection_timeout: Duration,
    /// How long a client may go without polling before it is removed.
    pub idle_timeout: Duration,
    /// How often idle clients are looked for.
    pub reap_interval: Duration,
    /// Concurrent polls one client may hold on one node (tabs, retries).
    pub max_polls_per_client: usize,
    /// Concurrent polls this node holds, over all channels; more get `503`.
    pub max_polls: usize,
    /// Clients a channel may have (all nodes together); more are refused.
    /// Checked before each insert, so nodes racing may overshoot slightly.
    pub max_clients: usize,
    /// Most messages in one poll reply; the client polls again for the rest.
    pub batch_limit: usize,
    /// Largest poll body accepted by the channel route.
    pub max_body_bytes: usize,
    /// Longest display name, in characters.
    pub max_display_name_chars: usize,
    /// Longest wait for one provider call; past it the call fails with
    /// [`CometError::Unavailable`].
    pub provider_timeout: Duration,
    /// How long joins and leaves are collected before they go out as one
    /// presence message (per channel, per node; see `presence`).
    pub presence_window: Duration,
    /// Most members one presence message lists per list (joined, left);
    /// the rest are counted.
    pub presence_cap: usize,
}

/// [`Settings::provider_timeout`] unless set: well under a second, so a
/// user waiting on a send or a login hears `503` before giving up.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_millis(800);

/// [`Settings::presence_window`] unless set: short enough that a join
/// reads as live, long enough that a crowd arriving at a few thousand a
/// second makes a handful of messages a second, not thousands.
pub const DEFAULT_PRESENCE_WINDOW: Duration = Duration::from_millis(250);

/// [`Settings::presence_cap`] unless set: enough that an ordinary window
/// lists everyone (readers then need no re-read), small enough that a
/// crowd's message stays a few kilobytes for each of its clients.
pub const DEFAULT_PRESENCE_CAP: usize = 32;

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(30),
            reap_interval: Duration::from_secs(1),
            max_polls_per_client: 6,
            max_polls: 20_000,
            max_clients: 100_000,
            batch_limit: 500,
            max_body_bytes: 4096,
            max_display_name_chars: 32,
            provider_timeout: DEFAULT_PROVIDER_TIMEOUT,
            presence_window: DEFAULT_PRESENCE_WINDOW,
            presence_cap: DEFAULT_PRESENCE_CAP,
        }
    }
}

/// The answer to one poll.
#[derive(Debug)]
pub enum Poll {
    /// Every pending message's wire JSON, in order (at most `batch_limit`).
    Messages(Vec<Bytes>),
    Timeout,
}

/// The channels one server exposes, sharing one provider and one shutdown.
#[derive(Clone)]
pub struct Comet {
    channels: Arc<HashMap<String, Arc<Manager>>>,
    shutdown: CancellationToken,
    answered: Arc<Notify>,
}

/// Polls in progress on this node, over all channels of one [`Comet`].
#[derive(Default)]
struct NodePolls(std::sync::atomic::AtomicUsize);

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

    /// Answers every waiting poll with [`CometError::Stopping`] (`503` +
    /// `Retry-After`; polls that arrive later get the same) and stops the
    /// reapers, so clients move to another node at once instead of waiting
    /// out a dying server, or re-polling it in a loop as an instant
    /// `timeout` would have them do.
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

    /// Sends every channel's pending presence window now. A graceful stop
    /// calls it after [`shutdown`](Self::shutdown), so joins and leaves of
    /// the last moments are not lost with the process.
    pub async fn flush_presence(&self) {
        for manager in self.channels.values() {
            if let Err(error) = manager.flush_presence().await {
                tracing::warn!(channel = %manager.name, %error, "presence lost at shutdown");
            }
        }
    }
}

pub struct Manager {
    name: String,
    provider: Arc<dyn Provider>,
    settings: Settings,
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

impl Drop for Manager {
    fn drop(&mut self) {
        self.presence.release_sender();
    }
}

/// Counts one poll of a client for as long as it lives.
struct PollSlot {
    manager: Arc<Manager>,
    client: PublicToken,
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        self.manager
            .node_polls
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut polls = self.manager.polls.lock().expect("poll counts poisoned");
        if let Some(n) = polls.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                polls.remove(&self.client);
            }
        }
    }
}

/// Counts one waiting poll under the wake value it saw, for as long as it
/// waits (however the wait ends).
struct Parked<'a> {
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

/// A poll that passed its checks; [`wait`](Self::wait) finishes it.
pub struct OpenPoll {
    slot: PollSlot,
    /// The client (its token and timeouts: a held poll keeps it small).
    client: PollingClient,
    since: Cursor,
    wake: watch::Receiver<u64>,
    /// The wake value at the last read.
    seen: u64,
    opened: tokio::time::Instant,
    ready: Option<Poll>,
}

impl OpenPoll {
    /// The answer, if the first read already found messages.
    pub fn take_ready(&mut self) -> Option<Poll> {
        let ready = self.ready.take();
        if let Some(poll) = &ready {
            self.record(poll, self.opened.elapsed());
        }
        ready
    }

    /// When the poll answers "nothing new".
    fn deadline(&self) -> tokio::time::Instant {
        self.opened + self.client.connection_timeout
    }

    /// Counts an answered poll, `held` since it opened.
    fn record(&self, poll: &Poll, held: std::time::Duration) {
        let metrics = &self.slot.manager.metrics;
        metrics.hold.record(held.as_secs_f64());
        match poll {
            Poll::Messages(messages) => metrics.delivered.increment(messages.len() as u64),
            Poll::Timeout => metrics.timeouts.increment(1),
        }
    }

    async fn read(&mut self) -> Result<Option<Poll>, CometError> {
        let manager = &self.slot.manager;
        self.seen = *self.wake.borrow_and_update();
        let batch = manager
            .bounded(manager.provider.read_after(
                &manager.name,
                &self.since,
                &self.client.public,
                manager.settings.batch_limit,
            ))
            .await;
        let batch = match batch {
            Err(CometError::InvalidCursor(_) | CometError::CursorExpired) => {
                // A store that lost its data (Redis restarted empty) refuses
                // every cursor; the client it also lost must hear `401`
                // (log in again), which no amount of resynchronising fixes.
                manager.confirm_client(&self.client.public).await?;
                batch?
            }
            batch => batch?,
        };
        Ok((!batch.is_empty()).then_some(Poll::Messages(batch)))
    }

    /// Holds the poll until messages, the connection timeout or shutdown.
    /// (By reference: a held poll's future then holds the poll once, not a
    /// second copy moved into this one.)
    pub async fn wait(&mut self) -> Result<Poll, CometError> {
        let result = self.wait_inner().await;
        let held = self.opened.elapsed();
        match &result {
            Ok(poll) => self.record(poll, held),
            Err(error) => self.slot.manager.count_error(error),
        }
        // Seen again at the end of a long hold, so the time it waited does
        // not count as idle. After a short one (the chat's usual poll) the
        // look-up that opened it is recent enough: the client's idle
        // timeout, always longer than its connection timeout, loses at most
        // a sixteenth of the latter.
        if held * 16 >= self.client.connection_timeout {
            let manager = &self.slot.manager;
            manager
                .bounded(manager.provider.touch(&manager.name, &self.client))
                .await?;
        }
        result
    }

    async fn wait_inner(&mut self) -> Result<Poll, CometError> {
        if let Some(ready) = self.ready.take() {
            return Ok(ready);
        }
        let deadline = self.deadline();
        loop {
            let manager = &self.slot.manager;
            if manager.is_stopping() {
                return Err(CometError::Stopping);
            }
            let parked = manager.park(self.seen);
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        // The provider dropped the channel's sender: only
                        // a provider going away does that.
                        return Err(CometError::Stopping);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(Poll::Timeout),
            }
            drop(parked);
            if let Some(poll) = self.read().await? {
                return Ok(poll);
            }
        }
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

    /// One provider call, bounded by [`Settings::provider_timeout`].
    ///
    /// Not `tokio::time::timeout`: its timer lives inside the future, which
    /// made every held poll's future 72 bytes larger, and it reads the
    /// clock on every call. Most calls here (the in-process provider, the
    /// Redis read cache) are ready on their first poll; the timer is only
    /// started, boxed, for a call that has to wait.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CometError>>,
    ) -> Result<T, CometError> {
        use std::future::Future;
        use std::task::Poll as Ready;
        let limit = self.settings.provider_timeout;
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

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
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

    fn park(&self, seen: u64) -> Parked<'_> {
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

    /// Adds a client with fresh random tokens and the channel's default
    /// timeouts, and tells everyone it joined (with the presence window).
    pub async fn initialize_client(
        &self,
        display_name: &str,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        self.initialize_client_with(
            display_name,
            self.settings.connection_timeout,
            self.settings.idle_timeout,
        )
        .await
    }

    /// As [`initialize_client`](Self::initialize_client), with this client's
    /// own timeouts. The idle timeout must exceed the connection timeout, or
    /// a client holding a poll would be reaped.
    pub async fn initialize_client_with(
        &self,
        display_name: &str,
        connection_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        let name_key = display_name.to_lowercase();
        self.create_client(display_name, name_key, connection_timeout, idle_timeout)
            .await
    }

    /// As [`initialize_client`](Self::initialize_client), with the key the
    /// name must be unique by (default: the name lower-cased). An app that
    /// wants look-alike names to count as one passes a normalised key (the
    /// chat passes a confusables skeleton); the provider's name index holds
    /// it, so the rule holds across nodes.
    pub async fn initialize_client_keyed(
        &self,
        display_name: &str,
        name_key: String,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        self.create_client(
            display_name,
            name_key,
            self.settings.connection_timeout,
            self.settings.idle_timeout,
        )
        .await
    }

    async fn create_client(
        &self,
        display_name: &str,
        name_key: String,
        connection_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<(PrivateToken, ClientRecord), CometError> {
        let chars = display_name.chars().count();
        if chars == 0 || display_name.trim() != display_name {
            return Err(CometError::InvalidClient(
                "the display name must not be empty or start or end with spaces".into(),
            ));
        }
        if chars > self.settings.max_display_name_chars {
            return Err(CometError::InvalidClient(format!(
                "the display name is longer than {} characters",
                self.settings.max_display_name_chars
            )));
        }
        if display_name.chars().any(char::is_control) {
            return Err(CometError::InvalidClient(
                "the display name contains control characters".into(),
            ));
        }
        if idle_timeout <= connection_timeout {
            return Err(CometError::InvalidClient(
                "the idle timeout must be longer than the connection timeout".into(),
            ));
        }
        if self.bounded(self.provider.client_count(&self.name)).await? >= self.settings.max_clients
        {
            return Err(CometError::AtCapacity(format!(
                "the channel has its limit of {} clients",
                self.settings.max_clients
            )));
        }
        let token = PrivateToken::generate();
        let record = ClientRecord {
            public: PublicToken::generate(),
            display_name: display_name.to_owned(),
            name_key,
            connection_timeout,
            idle_timeout,
        };
        self.bounded(
            self.provider
                .insert_client(&self.name, &record, &token.digest()),
        )
        .await?;
        self.announce_joined(&record);
        Ok((token, record))
    }

    /// The client holding this private token, if any.
    pub async fn client(&self, token: &PrivateToken) -> Result<Option<ClientRecord>, CometError> {
        self.bounded(self.provider.client_by_digest(&self.name, &token.digest()))
            .await
    }

    pub async fn client_by_public(
        &self,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.bounded(self.provider.client_by_public(&self.name, public))
            .await
    }

    /// Whether the provider can be reached.
    pub async fn ping(&self) -> Result<(), CometError> {
        self.bounded(self.provider.ping()).await
    }

    /// Every client of the channel, ordered by display name.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, CometError> {
        self.bounded(self.provider.clients(&self.name)).await
    }

    /// Removes a client and tells everyone it left (with the presence
    /// window). `false` if it was already gone (then nothing is sent).
    pub async fn remove_client(&self, public: &PublicToken) -> Result<bool, CometError> {
        match self
            .bounded(self.provider.remove_client(&self.name, public))
            .await?
        {
            Some(record) => {
                self.announce_left(&record);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Sends to every client of the channel.
    pub async fn send_to_all(
        &self,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        self.send_to_all_once(None, name, contents).await
    }

    /// As [`send_to_all`](Self::send_to_all); with `once`, a key the
    /// sender chose for this send (see [`Provider::append`]): sending again
    /// with the same key sends nothing and returns the first send's id.
    pub async fn send_to_all_once(
        &self,
        once: Option<&str>,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        check_name(name)?;
        let sent = self
            .bounded(
                self.provider
                    .append(&self.name, Audience::Everyone, name, contents, once),
            )
            .await;
        self.count_send(&sent);
        sent
    }

    fn count_send(&self, sent: &Result<Cursor, CometError>) {
        match sent {
            Ok(_) => self.metrics.sent.increment(1),
            Err(error) => self.count_error(error),
        }
    }

    fn count_error(&self, error: &CometError) {
        if matches!(error, CometError::Unavailable(_)) {
            self.metrics.provider_errors.increment(1);
        }
    }

    /// Sends to the clients with these public tokens only (for a private
    /// message: the target and the sender). Every one must exist.
    pub async fn send_to(
        &self,
        to: &[PublicToken],
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        self.send_to_once(to, None, name, contents).await
    }

    /// As [`send_to`](Self::send_to), with a `once` key as in
    /// [`send_to_all_once`](Self::send_to_all_once).
    pub async fn send_to_once(
        &self,
        to: &[PublicToken],
        once: Option<&str>,
        name: &str,
        contents: &serde_json::Value,
    ) -> Result<Cursor, CometError> {
        check_name(name)?;
        for public in to {
            if self.client_by_public(public).await?.is_none() {
                return Err(CometError::UnknownRecipient);
            }
        }
        let sent = self
            .bounded(self.provider.append(
                &self.name,
                Audience::Clients(to.to_vec()),
                name,
                contents,
                once,
            ))
            .await;
        self.count_send(&sent);
        sent
    }

    /// The newest `limit` messages for this client, and the cursor to poll
    /// from so nothing between them and the first poll is lost or repeated.
    pub async fn recent(
        &self,
        token: &PrivateToken,
        limit: usize,
    ) -> Result<(Vec<Message>, Cursor), CometError> {
        let client = self.client(token).await?.ok_or(CometError::UnknownClient)?;
        let (stored, head) = self
            .bounded(self.provider.read_tail(&self.name, &client.public, limit))
            .await?;
        let messages = stored
            .iter()
            .map(|m| serde_json::from_slice(&m.json))
            .collect::<Result<Vec<Message>, _>>()?;
        Ok((messages, head))
    }

    /// One poll: waits until something newer than `since` (or, for `None`,
    /// anything new) is addressed to this client, or its connection timeout
    /// passes, or the server shuts down.
    pub async fn poll(
        self: &Arc<Self>,
        token: &PrivateToken,
        since: Option<Cursor>,
    ) -> Result<Poll, CometError> {
        self.open_poll(token, since).await?.wait().await
    }

    /// The first half of a poll: every check that can refuse it (client,
    /// poll cap, cursor) and the first read. The channel route answers the
    /// HTTP headers right after this, so a client knows its poll was
    /// accepted before anything arrives.
    pub async fn open_poll(
        self: &Arc<Self>,
        token: &PrivateToken,
        since: Option<Cursor>,
    ) -> Result<OpenPoll, CometError> {
        if self.is_stopping() {
            return Err(CometError::Stopping);
        }
        let client = self
            .bounded(self.provider.client_seen(&self.name, &token.digest()))
            .await?
            .ok_or(CometError::UnknownClient)?;
        let slot = self.take_poll_slot(&client.public)?;
        let opened = tokio::time::Instant::now();
        // Subscribed before the first read: a message appended in between
        // still wakes this poll.
        let wake = self.provider.watch(&self.name);
        let since = match since {
            Some(cursor) => cursor,
            None => self.bounded(self.provider.head(&self.name)).await?,
        };
        let mut open = OpenPoll {
            slot,
            client,
            since,
            wake,
            seen: 0,
            opened,
            ready: None,
        };
        open.ready = open.read().await?;
        Ok(open)
    }

    fn take_poll_slot(self: &Arc<Self>, client: &PublicToken) -> Result<PollSlot, CometError> {
        let mut polls = self.polls.lock().expect("poll counts poisoned");
        if polls.get(client).copied().unwrap_or(0) >= self.settings.max_polls_per_client {
            return Err(CometError::TooManyPolls(self.settings.max_polls_per_client));
        }
        let node = &self.node_polls.0;
        if node.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= self.settings.max_polls {
            node.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return Err(CometError::AtCapacity(format!(
                "this node holds its limit of {} polls",
                self.settings.max_polls
            )));
        }
        *polls.entry(*client).or_insert(0) += 1;
        Ok(PollSlot {
            manager: self.clone(),
            client: *client,
        })
    }

    fn is_polling(&self, client: &PublicToken) -> bool {
        self.polls
            .lock()
            .expect("poll counts poisoned")
            .contains_key(client)
    }

    /// Removes every idle client once and announces it. A client with a
    /// poll in progress here is not idle, however long ago it started.
    pub async fn reap_idle(&self) -> Result<usize, CometError> {
        let mut removed = 0;
        for client in self.bounded(self.provider.idle_clients(&self.name)).await? {
            if self.is_polling(&client.public) {
                self.bounded(self.provider.touch(&self.name, &(&client).into()))
                    .await?;
                continue;
            }
            if self.remove_client(&client.public).await? {
                tracing::info!(channel = %self.name, client = %client.public, "removed idle client");
                self.metrics.idle_removals.increment(1);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The reaper holds only a weak reference, so dropping every `Comet`
    /// handle ends it as surely as a shutdown does.
    fn spawn_reaper(self: &Arc<Self>) {
        let weak: Weak<Manager> = Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        let period = self.settings.reap_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = manager.reap_idle().await {
                    manager.count_error(&error);
                    tracing::warn!(channel = %manager.name, %error, "idle reaping failed");
                }
                let waiting: usize = manager
                    .polls
                    .lock()
                    .expect("poll counts poisoned")
                    .values()
                    .sum();
                manager.metrics.polls_waiting.set(waiting as f64);
                match manager
                    .bounded(manager.provider.client_count(&manager.name))
                    .await
                {
                    Ok(n) => manager.metrics.clients.set(n as f64),
                    Err(error) => manager.count_error(&error),
                }
            }
        });
    }
}

/// Message names are short identifiers (`Headline`), not payload.
fn check_name(name: &str) -> Result<(), CometError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CometError::InvalidMessage(format!(
            "invalid message name {name:?}"
        )))
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
