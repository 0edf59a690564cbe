//! The provider seam: where a channel keeps its clients and its ordered log,
//! and how waiting polls are woken. The in-process provider (`memory.rs`)
//! serves one node; a shared one (Redis) serves many. Every provider passes
//! the same test suite (`testing`, feature `testing`).
//!
//! The contract, in the order the manager relies on it:
//!
//! - `append` gives each message an id strictly greater than every earlier
//!   id of the channel, stores the message serialized once (the same bytes
//!   go to every poll), and only then wakes the channel's watchers.
//! - `read_after` returns what is newer than a cursor and addressed to the
//!   reader, oldest first, or [`CometError::CursorExpired`] if retention has
//!   already dropped something newer than that cursor: never a silent gap.
//! - `remove_client` answers `Some` to exactly one caller per client, even
//!   with several nodes racing to reap it, so "left" goes out once.

use super::{CometError, Cursor, PublicToken, TokenDigest};
use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;
use tokio::sync::watch;

/// How long a send's idempotency key is remembered: a send retried with
/// the same key within this window is not appended again.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(600);

/// A client as the provider keeps it. Its private token is known only by
/// digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub public: PublicToken,
    pub display_name: String,
    /// What display names are unique by (the provider's name index).
    pub name_key: String,
    /// How long a poll is held with nothing to say.
    pub connection_timeout: Duration,
    /// How long the client may go without polling before it is removed.
    pub idle_timeout: Duration,
}

/// What a poll needs to know of its client: [`Provider::client_seen`]
/// answers this rather than a whole [`ClientRecord`], so the path every
/// poll takes copies no names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollingClient {
    pub public: PublicToken,
    /// How long a poll is held with nothing to say.
    pub connection_timeout: Duration,
    /// How long the client may go without polling before it is removed.
    pub idle_timeout: Duration,
}

impl From<&ClientRecord> for PollingClient {
    fn from(record: &ClientRecord) -> Self {
        Self {
            public: record.public,
            connection_timeout: record.connection_timeout,
            idle_timeout: record.idle_timeout,
        }
    }
}

/// Who a message is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// Only these clients (a private message goes to its target and its sender).
    Clients(Vec<PublicToken>),
}

impl Audience {
    pub fn includes(&self, client: &PublicToken) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Clients(list) => list.contains(client),
        }
    }
}

/// A message to append ([`Provider::append`]): who it is for and what it
/// says, before the provider gives it an id and stores it as a
/// [`StoredMessage`].
#[derive(Clone, Debug)]
pub struct NewMessage<'a> {
    pub audience: Audience,
    /// Its kind (`n` on the wire), e.g. `Headline`.
    pub name: &'a str,
    /// Its payload (`c` on the wire), any JSON.
    pub contents: &'a serde_json::Value,
    /// A key the sender chose for this send, if any: a message with the
    /// same key appended within [`IDEMPOTENCY_WINDOW`] makes this one a
    /// retry, appended no second time.
    pub idempotency_key: Option<&'a str>,
}

/// A client to add ([`Provider::insert_client`]): its record, and the
/// digest of its private token (the token itself is never stored).
#[derive(Clone, Copy, Debug)]
pub struct NewClient<'a> {
    pub record: &'a ClientRecord,
    pub digest: &'a TokenDigest,
}

/// A poll's read ([`Provider::read_after`]): up to `limit` messages newer
/// than `since` addressed to `reader`.
#[derive(Clone, Copy, Debug)]
pub struct ReadAfter<'a> {
    pub since: &'a Cursor,
    pub reader: &'a PublicToken,
    pub limit: usize,
}

/// A history read ([`Provider::read_tail`]): the newest `limit` messages
/// addressed to `reader`.
#[derive(Clone, Copy, Debug)]
pub struct ReadTail<'a> {
    pub reader: &'a PublicToken,
    pub limit: usize,
}

/// One message of a channel's log.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub id: Cursor,
    pub audience: Audience,
    /// The message's wire JSON (`{"id","n","c"}`), encoded once at append.
    pub json: Bytes,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Adds a client; fails with [`CometError::ClientExists`] if its name
    /// key ([`ClientRecord::name_key`]) or token is taken.
    async fn insert_client(&self, channel: &str, new: NewClient<'_>) -> Result<(), CometError>;

    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError>;

    /// The client with this public token, as the store has it now: never
    /// from a node's cache. (The manager asks this when a poll's cursor is
    /// refused: a store that lost its data refuses every cursor, and the
    /// client lost with it must hear `401`, not `400`.)
    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError>;

    /// Every client of the channel, ordered by display name.
    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError>;

    /// How many clients the channel has.
    async fn client_count(&self, channel: &str) -> Result<usize, CometError> {
        Ok(self.clients(channel).await?.len())
    }

    /// Whether the store can be reached (for health checks).
    async fn ping(&self) -> Result<(), CometError> {
        Ok(())
    }

    /// Records that the client was seen now (a poll started or ended): it
    /// is not idle before now + its idle timeout. A client removed since
    /// stays removed.
    async fn touch(&self, channel: &str, client: &PollingClient) -> Result<(), CometError>;

    /// The client with this token digest, recorded as seen now (a poll
    /// starting): [`client_by_digest`](Self::client_by_digest) and
    /// [`touch`](Self::touch) in one call, which a provider may answer
    /// under one lock or in one round trip.
    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<PollingClient>, CometError> {
        let client = self.client_by_digest(channel, digest).await?;
        let client = client.as_ref().map(PollingClient::from);
        if let Some(client) = &client {
            self.touch(channel, client).await?;
        }
        Ok(client)
    }

    /// Clients not seen for longer than their idle timeout.
    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError>;

    /// Removes a client. `Some` for exactly one caller; `None` if it was
    /// already gone.
    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError>;

    /// Appends a message, returning its id. Its name and contents are
    /// encoded here, once. With an idempotency key, if a message with the
    /// same key was appended within [`IDEMPOTENCY_WINDOW`], nothing is
    /// appended and that message's id is returned (a retried send after a
    /// lost answer must not show twice). Atomic across nodes.
    async fn append(&self, channel: &str, message: NewMessage<'_>) -> Result<Cursor, CometError>;

    /// The id of the newest message (a cursor meaning "from now on").
    async fn head(&self, channel: &str) -> Result<Cursor, CometError>;

    /// Up to `limit` messages newer than `since` addressed to `reader`, as
    /// their wire JSON (what a poll answers with: the bytes are shared, not
    /// copied).
    async fn read_after(
        &self,
        channel: &str,
        read: ReadAfter<'_>,
    ) -> Result<Vec<Bytes>, CometError>;

    /// The newest `limit` messages addressed to `reader` (oldest first) and
    /// the head cursor they lead up to: history with no gap before the
    /// first poll.
    async fn read_tail(
        &self,
        channel: &str,
        read: ReadTail<'_>,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError>;

    /// A receiver that changes whenever the channel gets a new message.
    /// Subscribe *before* reading, so a message appended in between still
    /// wakes you. Its value only grows: a receiver that saw an older value
    /// than the latest has a wake-up to answer.
    fn watch(&self, channel: &str) -> watch::Receiver<u64>;

    /// Wakes every receiver of [`watch`](Self::watch) on this node without
    /// a new message and without changing the value (a shutdown uses this
    /// to end waiting polls).
    fn wake_all(&self, channel: &str);

    /// Records `channel` as open (a channel opened at run time, see
    /// `channels.rs`) unless `max_channels` are open already, atomically
    /// across nodes: `Ok(true)` if this call opened it, `Ok(false)` if it
    /// was open, [`CometError::AtCapacity`] at the limit.
    async fn open_channel(&self, channel: &str, max_channels: usize) -> Result<bool, CometError>;

    /// Whether `channel` is open (opened and not closed since).
    async fn channel_is_open(&self, channel: &str) -> Result<bool, CometError>;

    /// The open channels, sorted by name.
    async fn open_channels(&self) -> Result<Vec<String>, CometError>;

    /// Closes `channel`: it is no longer open, its clients and messages are
    /// dropped, and its waiting polls (on every node) are woken to find
    /// their client gone. `Ok(false)` if it was not open.
    async fn close_channel(&self, channel: &str) -> Result<bool, CometError>;
}
