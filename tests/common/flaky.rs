//! A provider that fails on demand, for the tests of what users and
//! operators are told in an outage. Redis goes away in two ways, and each
//! has its own switch: it refuses (the connection is gone, every command
//! errs at once) or it stalls (paused, or behind a partition: a command
//! never gets a reply). Until a switch is thrown, every call passes
//! through to the in-process provider.

use bytes::Bytes;
use comet::async_trait;
use comet::{
    ClientRecord, CometError, Cursor, MemoryProvider, NewClient, NewMessage, PollingClient,
    Provider, PublicToken, ReadAfter, ReadTail, Retention, StoredMessage, TokenDigest,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// What a refusal carries: an address the public must never be shown.
pub const INTERNALS: &str = "10.0.0.7:6379 refused the connection";

const UP: u8 = 0;
const REFUSING: u8 = 1;
const STALLED: u8 = 2;

/// The in-process provider behind the outage switches. `watch` and
/// `wake_all` are local (no store is asked) and are never failed.
pub struct Flaky {
    inner: MemoryProvider,
    state: AtomicU8,
}

impl Flaky {
    /// Up, on an empty in-process provider.
    pub fn new() -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: MemoryProvider::new(Retention::default()),
            state: AtomicU8::new(UP),
        })
    }

    /// From now on every call fails with `Unavailable` ([`INTERNALS`]).
    pub fn refuse(&self) {
        self.state.store(REFUSING, Ordering::SeqCst);
    }

    /// From now on every call is left pending forever.
    pub fn stall(&self) {
        self.state.store(STALLED, Ordering::SeqCst);
    }

    /// From now on every call passes through again (calls already stalled
    /// stay stalled).
    pub fn recover(&self) {
        self.state.store(UP, Ordering::SeqCst);
    }

    async fn gate(&self) -> Result<(), CometError> {
        match self.state.load(Ordering::SeqCst) {
            REFUSING => Err(CometError::Unavailable(INTERNALS.into())),
            STALLED => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Provider for Flaky {
    async fn insert_client(&self, channel: &str, new: NewClient<'_>) -> Result<(), CometError> {
        self.gate().await?;
        self.inner.insert_client(channel, new).await
    }

    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await?;
        self.inner.client_by_digest(channel, digest).await
    }

    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await?;
        self.inner.client_by_public(channel, public).await
    }

    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.gate().await?;
        self.inner.clients(channel).await
    }

    async fn client_count(&self, channel: &str) -> Result<usize, CometError> {
        self.gate().await?;
        self.inner.client_count(channel).await
    }

    async fn ping(&self) -> Result<(), CometError> {
        self.gate().await?;
        self.inner.ping().await
    }

    async fn touch(&self, channel: &str, client: &PollingClient) -> Result<(), CometError> {
        self.gate().await?;
        self.inner.touch(channel, client).await
    }

    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<PollingClient>, CometError> {
        self.gate().await?;
        self.inner.client_seen(channel, digest).await
    }

    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.gate().await?;
        self.inner.idle_clients(channel).await
    }

    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await?;
        self.inner.remove_client(channel, public).await
    }

    async fn append(&self, channel: &str, message: NewMessage<'_>) -> Result<Cursor, CometError> {
        self.gate().await?;
        self.inner.append(channel, message).await
    }

    async fn head(&self, channel: &str) -> Result<Cursor, CometError> {
        self.gate().await?;
        self.inner.head(channel).await
    }

    async fn read_after(
        &self,
        channel: &str,
        read: ReadAfter<'_>,
    ) -> Result<Vec<Bytes>, CometError> {
        self.gate().await?;
        self.inner.read_after(channel, read).await
    }

    async fn read_tail(
        &self,
        channel: &str,
        read: ReadTail<'_>,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        self.gate().await?;
        self.inner.read_tail(channel, read).await
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.inner.watch(channel)
    }

    async fn open_channel(&self, channel: &str, max_channels: usize) -> Result<bool, CometError> {
        self.gate().await?;
        self.inner.open_channel(channel, max_channels).await
    }

    async fn channel_is_open(&self, channel: &str) -> Result<bool, CometError> {
        self.gate().await?;
        self.inner.channel_is_open(channel).await
    }

    async fn open_channels(&self) -> Result<Vec<String>, CometError> {
        self.gate().await?;
        self.inner.open_channels().await
    }

    async fn close_channel(&self, channel: &str) -> Result<bool, CometError> {
        self.gate().await?;
        self.inner.close_channel(channel).await
    }

    fn wake_all(&self, channel: &str) {
        self.inner.wake_all(channel)
    }
}
