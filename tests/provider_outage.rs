//! A provider that stops answering (Redis paused, a partition) must not
//! hold the requests that wait on it: every manager call a route or server
//! function awaits fails with `Unavailable` once the provider timeout
//! passes. The provider here is the in-process one behind a switch that,
//! once thrown, leaves every call pending forever, the way a stopped
//! Redis leaves a command without a reply.
//!
//! Time is paused (tokio's test clock): a call bounded by the timeout
//! ends when the clock reaches it; a call that is not bounded is caught
//! by the much longer outer limit, and the test fails naming it.

use async_trait::async_trait;
use bytes::Bytes;
use comet_chat::comet::{
    Audience, ClientRecord, Comet, CometError, Cursor, MemoryProvider, Provider, PublicToken,
    Retention, Settings, StoredMessage, TokenDigest,
};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The in-process provider, until `stalled` is set.
struct Stallable {
    inner: MemoryProvider,
    stalled: AtomicBool,
}

impl Stallable {
    async fn gate(&self) {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl Provider for Stallable {
    async fn insert_client(
        &self,
        channel: &str,
        client: &ClientRecord,
        digest: &TokenDigest,
    ) -> Result<(), CometError> {
        self.gate().await;
        self.inner.insert_client(channel, client, digest).await
    }

    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await;
        self.inner.client_by_digest(channel, digest).await
    }

    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await;
        self.inner.client_by_public(channel, public).await
    }

    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.gate().await;
        self.inner.clients(channel).await
    }

    async fn client_count(&self, channel: &str) -> Result<usize, CometError> {
        self.gate().await;
        self.inner.client_count(channel).await
    }

    async fn ping(&self) -> Result<(), CometError> {
        self.gate().await;
        self.inner.ping().await
    }

    async fn touch(&self, channel: &str, public: &PublicToken) -> Result<(), CometError> {
        self.gate().await;
        self.inner.touch(channel, public).await
    }

    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await;
        self.inner.client_seen(channel, digest).await
    }

    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        self.gate().await;
        self.inner.idle_clients(channel).await
    }

    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.gate().await;
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
        self.gate().await;
        self.inner
            .append(channel, audience, name, contents, once)
            .await
    }

    async fn head(&self, channel: &str) -> Result<Cursor, CometError> {
        self.gate().await;
        self.inner.head(channel).await
    }

    async fn read_after(
        &self,
        channel: &str,
        since: &Cursor,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<Vec<Bytes>, CometError> {
        self.gate().await;
        self.inner.read_after(channel, since, reader, limit).await
    }

    async fn read_tail(
        &self,
        channel: &str,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        self.gate().await;
        self.inner.read_tail(channel, reader, limit).await
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.inner.watch(channel)
    }

    fn wake_all(&self, channel: &str) {
        self.inner.wake_all(channel)
    }
}

/// Far beyond any provider timeout: reaching it means the call was held.
const HELD: Duration = Duration::from_secs(3600);

async fn refused<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, CometError>>,
) {
    match tokio::time::timeout(HELD, call).await {
        Err(_) => panic!("{what}: held while the provider does not answer"),
        Ok(Err(CometError::Unavailable(_))) => {}
        Ok(other) => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn every_manager_call_fails_unavailable_when_the_provider_stops_answering() {
    let provider = Arc::new(Stallable {
        inner: MemoryProvider::new(Retention::default()),
        stalled: AtomicBool::new(false),
    });
    let settings = Settings {
        provider_timeout: Duration::from_millis(800),
        ..Settings::default()
    };
    let comet = Comet::new(provider.clone(), settings, &["c"]);
    let chat = comet.channel("c").unwrap();
    let (token, ann) = chat.initialize_client("ann").await.unwrap();
    let (_, cursor) = chat.recent(&token, 10).await.unwrap();

    provider.stalled.store(true, Ordering::SeqCst);
    refused("ping (healthz)", chat.ping()).await;
    refused("login", chat.initialize_client("bob")).await;
    refused("client lookup", chat.client(&token)).await;
    refused("lookup by public token", chat.client_by_public(&ann.public)).await;
    refused("clients", chat.clients()).await;
    refused("recent", chat.recent(&token, 10)).await;
    refused("send", chat.send_to_all("Text", &json!({ "m": "hi" }))).await;
    refused(
        "private send",
        chat.send_to(&[ann.public], "Text", &json!({ "m": "hi" })),
    )
    .await;
    refused("remove", chat.remove_client(&ann.public)).await;
    refused("poll", chat.poll(&token, Some(cursor))).await;
    refused("poll from now", chat.poll(&token, None)).await;
    refused("reaping", chat.reap_idle()).await;
}
