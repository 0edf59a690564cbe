//! A provider that fails on demand, as a Redis outage does, for the tests
//! of what users are told then.

use async_trait::async_trait;
use bytes::Bytes;
use comet_chat::comet::{
    Audience, ClientRecord, CometError, Cursor, MemoryProvider, Provider, PublicToken,
    StoredMessage, TokenDigest,
};
use std::sync::atomic::{AtomicBool, Ordering};

/// The in-process provider, until `down` is set: then every call fails as
/// a Redis outage does.
pub struct Flaky {
    pub inner: MemoryProvider,
    pub down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), CometError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CometError::Unavailable("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for Flaky {
    async fn insert_client(
        &self,
        channel: &str,
        client: &ClientRecord,
        digest: &TokenDigest,
    ) -> Result<(), CometError> {
        self.check()?;
        self.inner.insert_client(channel, client, digest).await
    }
    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.check()?;
        self.inner.client_by_digest(channel, digest).await
    }
    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.check()?;
        self.inner.client_by_public(channel, public).await
    }
    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.check()?;
        self.inner.clients(channel).await
    }
    async fn touch(&self, channel: &str, public: &PublicToken) -> Result<(), CometError> {
        self.check()?;
        self.inner.touch(channel, public).await
    }
    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.check()?;
        self.inner.idle_clients(channel).await
    }
    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.check()?;
        self.inner.remove_client(channel, public).await
    }
    async fn append(
        &self,
        channel: &str,
        audience: Audience,
        name: &str,
        contents: &serde_json::Value,
        once: Option<&str>,
    ) -> Result<Cursor, CometError> {
        self.check()?;
        self.inner
            .append(channel, audience, name, contents, once)
            .await
    }
    async fn head(&self, channel: &str) -> Result<Cursor, CometError> {
        self.check()?;
        self.inner.head(channel).await
    }
    async fn read_after(
        &self,
        channel: &str,
        since: &Cursor,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<Vec<Bytes>, CometError> {
        self.check()?;
        self.inner.read_after(channel, since, reader, limit).await
    }
    async fn read_tail(
        &self,
        channel: &str,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        self.check()?;
        self.inner.read_tail(channel, reader, limit).await
    }
    fn watch(&self, channel: &str) -> tokio::sync::watch::Receiver<u64> {
        self.inner.watch(channel)
    }
    fn wake_all(&self, channel: &str) {
        self.inner.wake_all(channel)
    }
}
