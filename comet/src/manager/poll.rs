//! A poll's life: the checks that may refuse it and its slot under the
//! per-client and per-node caps ([`Manager::open_poll`]), the first read,
//! the wait for a wake-up or the connection timeout
//! ([`OpenPoll::wait`]), and what it records when it answers.

use super::Manager;
use crate::provider::{PollingClient, ReadAfter};
use crate::{CometError, Cursor, PrivateToken, PublicToken};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::watch;

/// What the manager decided for one poll: the messages to answer with, or
/// that none came before the connection timeout. The channel route turns
/// it into a [`PollResponse`](crate::PollResponse), whose body is a
/// [`PollReply`](crate::wire::PollReply).
#[derive(Debug)]
pub enum PollOutcome {
    /// Every pending message's wire JSON, in order (at most `batch_limit`).
    Messages(Vec<Bytes>),
    /// Nothing new within the client's connection timeout.
    Timeout,
}

/// Polls in progress on this node, over all channels of one
/// [`Comet`](super::Comet). A poll of several channels counts once.
#[derive(Default)]
pub(super) struct NodePolls(std::sync::atomic::AtomicUsize);

impl NodePolls {
    /// One more poll, unless `max` are held already.
    fn take(&self, max: usize) -> Result<(), CometError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.0.fetch_add(1, Relaxed) >= max {
            self.0.fetch_sub(1, Relaxed);
            return Err(CometError::AtCapacity(format!(
                "this node holds its limit of {max} polls"
            )));
        }
        Ok(())
    }

    fn give_back(&self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One node slot for as long as it lives: what a poll of several channels
/// holds, so its channels' polls need none of their own.
pub(super) struct NodeSlot(Arc<NodePolls>);

impl NodeSlot {
    pub(super) fn take(polls: &Arc<NodePolls>, max: usize) -> Result<Self, CometError> {
        polls.take(max)?;
        Ok(Self(polls.clone()))
    }
}

impl Drop for NodeSlot {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

/// Counts one poll of a client for as long as it lives (and, unless it is
/// one channel of a poll of several, one of the node's polls).
struct PollSlot {
    manager: Arc<Manager>,
    client: PublicToken,
    counts_on_node: bool,
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        if self.counts_on_node {
            self.manager.node_polls.give_back();
        }
        let mut polls = self.manager.polls.lock().expect("poll counts poisoned");
        if let Some(n) = polls.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                polls.remove(&self.client);
            }
        }
    }
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
    ready: Option<PollOutcome>,
}

impl OpenPoll {
    /// The cursor it reads after (for a poll "from now on": where now was).
    pub fn since(&self) -> &Cursor {
        &self.since
    }

    /// The outcome, if the first read already found messages.
    pub fn take_ready(&mut self) -> Option<PollOutcome> {
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
    fn record(&self, poll: &PollOutcome, held: std::time::Duration) {
        let metrics = &self.slot.manager.metrics;
        metrics.hold.record(held.as_secs_f64());
        match poll {
            PollOutcome::Messages(messages) => metrics.delivered.increment(messages.len() as u64),
            PollOutcome::Timeout => metrics.timeouts.increment(1),
        }
    }

    async fn read(&mut self) -> Result<Option<PollOutcome>, CometError> {
        let manager = &self.slot.manager;
        self.seen = *self.wake.borrow_and_update();
        let batch = manager
            .bounded(manager.provider.read_after(
                &manager.name,
                ReadAfter {
                    since: &self.since,
                    reader: &self.client.public,
                    limit: manager.settings.batch_limit,
                },
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
        Ok((!batch.is_empty()).then_some(PollOutcome::Messages(batch)))
    }

    /// Holds the poll until messages, the connection timeout or shutdown.
    /// (By reference: a held poll's future then holds the poll once, not a
    /// second copy moved into this one.)
    pub async fn wait(&mut self) -> Result<PollOutcome, CometError> {
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

    async fn wait_inner(&mut self) -> Result<PollOutcome, CometError> {
        if let Some(ready) = self.ready.take() {
            return Ok(ready);
        }
        let deadline = self.deadline();
        loop {
            let manager = &self.slot.manager;
            if let Some(error) = manager.unavailable_now() {
                return Err(error);
            }
            let parked = manager.park(self.seen);
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        // The provider dropped the channel's sender: a
                        // provider going away, or the channel closed.
                        return Err(manager.unavailable_now().unwrap_or(CometError::Stopping));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(PollOutcome::Timeout),
            }
            drop(parked);
            // Woken by its channel closing: there is nothing left to read.
            if self.slot.manager.is_closed() {
                return Err(CometError::UnknownChannel(self.slot.manager.name.clone()));
            }
            if let Some(poll) = self.read().await? {
                return Ok(poll);
            }
        }
    }
}

impl Manager {
    /// One poll: waits until something newer than `since` (or, for `None`,
    /// anything new) is addressed to this client, or its connection timeout
    /// passes, or the server shuts down.
    pub async fn poll(
        self: &Arc<Self>,
        token: &PrivateToken,
        since: Option<Cursor>,
    ) -> Result<PollOutcome, CometError> {
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
        self.open_poll_counted(token, since, true).await
    }

    /// As [`open_poll`](Self::open_poll), for one channel of a poll of
    /// several, which holds the node slot for all of them ([`NodeSlot`]).
    pub(super) async fn open_poll_within(
        self: &Arc<Self>,
        token: &PrivateToken,
        since: Option<Cursor>,
    ) -> Result<OpenPoll, CometError> {
        self.open_poll_counted(token, since, false).await
    }

    async fn open_poll_counted(
        self: &Arc<Self>,
        token: &PrivateToken,
        since: Option<Cursor>,
        counts_on_node: bool,
    ) -> Result<OpenPoll, CometError> {
        if let Some(error) = self.unavailable_now() {
            return Err(error);
        }
        let client = self
            .bounded(self.provider.client_seen(&self.name, &token.digest()))
            .await?
            .ok_or(CometError::UnknownClient)?;
        let slot = self.take_poll_slot(&client.public, counts_on_node)?;
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

    fn take_poll_slot(
        self: &Arc<Self>,
        client: &PublicToken,
        counts_on_node: bool,
    ) -> Result<PollSlot, CometError> {
        let mut polls = self.polls.lock().expect("poll counts poisoned");
        if polls.get(client).copied().unwrap_or(0) >= self.settings.max_polls_per_client {
            return Err(CometError::TooManyPolls(self.settings.max_polls_per_client));
        }
        if counts_on_node {
            self.node_polls.take(self.settings.max_polls)?;
        }
        *polls.entry(*client).or_insert(0) += 1;
        Ok(PollSlot {
            manager: self.clone(),
            client: *client,
            counts_on_node,
        })
    }

    pub(super) fn is_polling(&self, client: &PublicToken) -> bool {
        self.polls
            .lock()
            .expect("poll counts poisoned")
            .contains_key(client)
    }
}
