//! The Redis provider: clients, messages and wake-ups in Redis, so any
//! number of nodes serve one channel with no sticky sessions.
//!
//! Per channel `c`, every key carries the hash tag `{c}`, so a channel's
//! keys share one Redis Cluster slot and its scripts stay atomic:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `comet:{c}:log` | stream | the ordered log; stream ids are our cursors |
//! | `comet:{c}:trimmed` | string | newest id retention dropped (older cursors get `410`) |
//! | `comet:{c}:clients` | hash | public token → client record (JSON, with the token's digest) |
//! | `comet:{c}:digests` | hash | SHA-256 of a private token (hex) → public token |
//! | `comet:{c}:names` | hash | lower-cased display name → public token |
//! | `comet:{c}:deadlines` | sorted set | public token, scored by idle deadline (Redis clock, ms) |
//!
//! Wake-ups: appending publishes the new id on `comet:wake:{c}`; each node
//! keeps one pattern subscription, fetches the new entries once into its
//! read cache (`cache.rs`), then bumps the channel's local `watch`, so a
//! broadcast costs each node one read, not one per waiting poll.
//!
//! A poll costs no round trip of its own in the steady state either: the
//! node keeps each client it looked up by token digest while the client
//! keeps polling and Redis keeps answering (`known.rs`: removing a client
//! publishes `gone:<token digest>` on the same channel and every node
//! forgets it at once; a lost subscription empties the cache), and the idle deadlines
//! of the clients polling here are pushed forward in one script call per
//! channel every [`TOUCH_FLUSH`] (`touches.rs`).
//!
//! Everything that must be atomic across nodes is a Lua script (`*.lua`
//! beside this file): name uniqueness on insert, "removed once" on remove,
//! append with retention. Redis unreachable: every call fails with
//! [`CometError::Unavailable`] (the route answers `503` + `Retry-After`);
//! the connection manager and the subscriber reconnect by themselves.
//!
//! An outage must not hold requests: the manager bounds every call (see
//! `manager/mod.rs`), and the connection manager is configured
//! ([`connection_config`]) so that its own waits are as short. Its defaults
//! are a 1 s connect timeout and six reconnect retries with exponential
//! back-off, during which every command awaits the reconnect: that is where
//! requests were held ~9.4 s while Redis was down. Here each connect attempt
//! and each response gets the provider timeout, and a reconnect gives up
//! after two quick retries (the next command starts a new one), so a Redis
//! that comes back is in use again within about a second.

use super::provider::{
    Audience, ClientRecord, PollingClient, Provider, StoredMessage, ONCE_WINDOW,
};
use super::{CometError, Cursor, PublicToken, Retention, Taken, TokenDigest};
use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

mod cache;
mod known;
mod touches;

use cache::Channels;
use known::Known;
pub use known::{CLIENT_CACHE_TTL, REDIS_SILENCE};
use touches::Touches;
pub use touches::TOUCH_FLUSH;

const COMMON: &str = include_str!("common.lua");

/// Stream entries fetched per round trip when scanning.
const SCAN: usize = 200;

/// The connection timeout and response timeout when none is given: the
/// default of [`Settings::provider_timeout`](super::Settings).
pub const DEFAULT_TIMEOUT: Duration = super::manager::settings::DEFAULT_PROVIDER_TIMEOUT;

/// The connection manager's settings for a provider timeout of `timeout`:
/// no connect attempt, response or reconnect back-off longer than it.
pub fn connection_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(timeout.min(Duration::from_millis(500)))
}

pub struct RedisProvider {
    redis: ConnectionManager,
    retention: Retention,
    scripts: Arc<Scripts>,
    channels: Arc<Channels>,
    known: Arc<Known>,
    touches: Arc<Touches>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub(super) struct Scripts {
    insert: Script,
    pub(super) touch: Script,
    idle: Script,
    remove: Script,
    append: Script,
    read: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

/// A client as stored in `comet:{c}:clients`.
#[derive(Serialize, Deserialize)]
struct StoredClient {
    public: String,
    name: String,
    lname: String,
    digest: String,
    conn_ms: u64,
    idle_ms: u64,
}

impl StoredClient {
    fn record(&self) -> Result<ClientRecord, CometError> {
        Ok(ClientRecord {
            public: PublicToken::parse(&self.public)
                .ok_or_else(|| CometError::Unavailable("corrupt client record in Redis".into()))?,
            display_name: self.name.clone(),
            name_key: self.lname.clone(),
            connection_timeout: Duration::from_millis(self.conn_ms),
            idle_timeout: Duration::from_millis(self.idle_ms),
        })
    }
}

fn unavailable(error: redis::RedisError) -> CometError {
    CometError::Unavailable(error.to_string())
}

pub(super) fn key(channel: &str, what: &str) -> String {
    format!("comet:{{{channel}}}:{what}")
}

fn sha_hex(text: &str) -> String {
    use sha2::Digest;
    super::token::hex(&sha2::Sha256::digest(text.as_bytes()))
}

fn wake_channel(channel: &str) -> String {
    format!("comet:wake:{channel}")
}

/// Stream ids are `<ms>-<seq>`; anything else is not our cursor.
fn valid_cursor(cursor: &Cursor) -> bool {
    cursor.as_str().split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.len() <= 20
            && b.len() <= 20
            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    })
}

impl RedisProvider {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`) and starts the
    /// wake-up subscriber. Must be called inside a tokio runtime.
    pub async fn connect(url: &str, retention: Retention) -> Result<Self, CometError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let redis = client
            .get_connection_manager_with_config(connection_config(DEFAULT_TIMEOUT))
            .await
            .map_err(unavailable)?;
        Ok(Self::start(client, redis, retention))
    }

    /// As [`connect`](Self::connect), but a Redis that cannot be reached
    /// yet is waited for (retrying with back-off up to 5 s, a warning each
    /// time), so nodes may start before Redis does. Only a URL that is not
    /// a Redis URL fails.
    pub async fn connect_waiting(url: &str, retention: Retention) -> Result<Self, CometError> {
        Self::connect_waiting_bounded(url, retention, DEFAULT_TIMEOUT).await
    }

    /// As [`connect_waiting`](Self::connect_waiting), with no connect
    /// attempt or response waited for longer than `timeout` (the
    /// provider timeout: see [`connection_config`]).
    pub async fn connect_waiting_bounded(
        url: &str,
        retention: Retention,
        timeout: Duration,
    ) -> Result<Self, CometError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let mut backoff = Duration::from_millis(200);
        loop {
            match client
                .get_connection_manager_with_config(connection_config(timeout))
                .await
            {
                Ok(redis) => return Ok(Self::start(client, redis, retention)),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot reach Redis; waiting for it");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn start(client: redis::Client, redis: ConnectionManager, retention: Retention) -> Self {
        let channels = Arc::new(Channels::new(redis.clone(), retention));
        let known = Arc::new(Known::default());
        let subscriber = tokio::spawn(subscribe(client, channels.clone(), known.clone()));
        let scripts = Arc::new(Scripts {
            insert: script(include_str!("insert.lua")),
            touch: script(include_str!("touch.lua")),
            idle: script(include_str!("idle.lua")),
            remove: script(include_str!("remove.lua")),
            append: script(include_str!("append.lua")),
            read: script(include_str!("read.lua")),
        });
        let touches = Arc::new(Touches::default());
        let toucher = tokio::spawn(touches::flush_touches(
            redis.clone(),
            scripts.clone(),
            touches.clone(),
            known.clone(),
        ));
        Self {
            redis,
            retention,
            scripts,
            channels,
            known,
            touches,
            tasks: vec![subscriber, toucher],
        }
    }

    async fn stored_client(
        &self,
        channel: &str,
        public: &str,
    ) -> Result<Option<StoredClient>, CometError> {
        let json: Option<String> = redis::cmd("HGET")
            .arg(key(channel, "clients"))
            .arg(public)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| CometError::Unavailable(e.to_string())))
            .transpose()
    }

    /// Stream entries to stored messages, keeping those `reader` may see.
    fn messages(entries: Vec<Entry>, reader: &PublicToken) -> Vec<StoredMessage> {
        entries
            .into_iter()
            .filter_map(parse_entry)
            .filter(|m| m.audience.includes(reader))
            .collect()
    }
}

impl Drop for RedisProvider {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps one pattern subscription to every channel's wake-ups; each
/// publication makes the node's read cache fetch that channel once and
/// then wake its polls. After a lost connection every channel is refreshed
/// (publications may have been missed) and it reconnects with back-off.
async fn subscribe(client: redis::Client, channels: Arc<Channels>, known: Arc<Known>) {
    use futures::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.psubscribe("comet:wake:*").await.is_ok() {
                    backoff = Duration::from_millis(100);
                    // Removal notices may have been missed while away.
                    known.clear();
                    channels.notify_all();
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let channel = message.get_channel_name().trim_start_matches("comet:wake:");
                        let payload: String = message.get_payload().unwrap_or_default();
                        match payload.strip_prefix("gone:").map(TokenDigest::from_hex) {
                            Some(Some(digest)) => known.forget(channel, &digest),
                            Some(None) => known.forget_channel(channel),
                            None => channels.notify(channel),
                        }
                    }
                }
                tracing::warn!("lost the Redis wake-up subscription; reconnecting");
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to Redis wake-ups"),
        }
        known.clear();
        channels.notify_all();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One stream entry as Redis returns it: id and field/value pairs.
pub(super) type Entry = (String, HashMap<String, String>);

/// A stream entry as a stored message, its wire JSON formatted once.
fn parse_entry((id, fields): Entry) -> Option<StoredMessage> {
    let field = |name: &str| fields.get(name).map(String::as_str);
    let audience = match field("a")? {
        "*" => Audience::Everyone,
        list => Audience::Clients(list.split(',').filter_map(PublicToken::parse).collect()),
    };
    let name = serde_json::to_string(field("n")?).ok()?;
    let contents = field("c")?;
    let json = format!(r#"{{"id":"{id}","n":{name},"c":{contents}}}"#);
    Some(StoredMessage {
        id: Cursor(id),
        audience,
        json: Bytes::from(json),
    })
}

#[async_trait]
impl Provider for RedisProvider {
    async fn insert_client(
        &self,
        channel: &str,
        client: &ClientRecord,
        digest: &TokenDigest,
    ) -> Result<(), CometError> {
        let lname = client.name_key.clone();
        let stored = StoredClient {
            public: client.public.to_string(),
            name: client.display_name.clone(),
            lname: lname.clone(),
            digest: digest.to_hex(),
            conn_ms: client.connection_timeout.as_millis() as u64,
            idle_ms: client.idle_timeout.as_millis() as u64,
        };
        let outcome: String = self
            .scripts
            .insert
            .key(key(channel, "clients"))
            .key(key(channel, "digests"))
            .key(key(channel, "names"))
            .key(key(channel, "deadlines"))
            .arg(&stored.public)
            .arg(&stored.digest)
            .arg(&lname)
            .arg(serde_json::to_string(&stored)?)
            .arg(stored.idle_ms)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "name" => Err(CometError::ClientExists(Taken::DisplayName)),
            _ => Err(CometError::ClientExists(Taken::Token)),
        }
    }

    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        if let Some(record) = self.known.get(channel, digest) {
            return Ok(Some(record));
        }
        let generation = self.known.generation();
        let public: Option<String> = redis::cmd("HGET")
            .arg(key(channel, "digests"))
            .arg(digest.to_hex())
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        let Some(public) = public else {
            return Ok(None);
        };
        let record = self
            .stored_client(channel, &public)
            .await?
            .map(|c| c.record())
            .transpose()?;
        if let Some(record) = &record {
            self.known.put(channel, *digest, record.clone(), generation);
        }
        Ok(record)
    }

    /// From the node's cache without copying the record's names (every
    /// poll comes here), or from Redis.
    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<PollingClient>, CometError> {
        let client = match self
            .known
            .get_with(channel, digest, |r| PollingClient::from(r))
        {
            Some(client) => Some(client),
            None => self
                .client_by_digest(channel, digest)
                .await?
                .as_ref()
                .map(PollingClient::from),
        };
        if let Some(client) = &client {
            self.touches.add(channel, client);
        }
        Ok(client)
    }

    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        self.stored_client(channel, public.as_str())
            .await?
            .map(|c| c.record())
            .transpose()
    }

    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        let all: Vec<String> = redis::cmd("HVALS")
            .arg(key(channel, "clients"))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        let mut list = all
            .iter()
            .filter_map(|j| serde_json::from_str::<StoredClient>(j).ok())
            .map(|c| c.record())
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_key(|c| c.display_name.to_lowercase());
        Ok(list)
    }

    async fn client_count(&self, channel: &str) -> Result<usize, CometError> {
        redis::cmd("HLEN")
            .arg(key(channel, "clients"))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)
    }

    async fn ping(&self) -> Result<(), CometError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Recorded within [`TOUCH_FLUSH`], batched with every other client
    /// seen on this node.
    async fn touch(&self, channel: &str, client: &PollingClient) -> Result<(), CometError> {
        self.touches.add(channel, client);
        Ok(())
    }

    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        let due: Vec<String> = self
            .scripts
            .idle
            .key(key(channel, "deadlines"))
            .key(key(channel, "clients"))
            .arg(1000)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        due.iter()
            .filter_map(|j| serde_json::from_str::<StoredClient>(j).ok())
            .map(|c| c.record())
            .collect()
    }

    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        let removed: Option<String> = self
            .scripts
            .remove
            .key(key(channel, "clients"))
            .key(key(channel, "digests"))
            .key(key(channel, "names"))
            .key(key(channel, "deadlines"))
            .arg(public.as_str())
            .arg(wake_channel(channel))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        let Some(removed) = removed else {
            // Another node removed it; its notice makes this one forget.
            return Ok(None);
        };
        let stored = serde_json::from_str::<StoredClient>(&removed)
            .map_err(|e| CometError::Unavailable(e.to_string()))?;
        match TokenDigest::from_hex(&stored.digest) {
            Some(digest) => self.known.forget(channel, &digest),
            None => self.known.forget_channel(channel),
        }
        stored.record().map(Some)
    }

    async fn append(
        &self,
        channel: &str,
        audience: Audience,
        name: &str,
        contents: &serde_json::Value,
        once: Option<&str>,
    ) -> Result<Cursor, CometError> {
        let audience = match &audience {
            Audience::Everyone => "*".to_owned(),
            Audience::Clients(list) => list
                .iter()
                .map(PublicToken::as_str)
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut call = self.scripts.append.prepare_invoke();
        call.key(key(channel, "log")).key(key(channel, "trimmed"));
        if let Some(once) = once {
            // The key names a string holding the first send's id for
            // ONCE_WINDOW; sha256 keeps it short and free of odd bytes.
            call.key(key(channel, &format!("once:{}", sha_hex(once))));
        }
        let id: String = call
            .arg(audience)
            .arg(name)
            .arg(serde_json::to_string(contents)?)
            .arg(self.retention.max_messages)
            .arg(self.retention.max_age.as_millis() as u64)
            .arg(wake_channel(channel))
            .arg(ONCE_WINDOW.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok(Cursor(id))
    }

    async fn head(&self, channel: &str) -> Result<Cursor, CometError> {
        let mut redis = self.redis.clone();
        let last: Vec<Entry> = redis::cmd("XREVRANGE")
            .arg(key(channel, "log"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        if let Some((id, _)) = last.into_iter().next() {
            return Ok(Cursor(id));
        }
        let trimmed: Option<String> = redis::cmd("GET")
            .arg(key(channel, "trimmed"))
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        Ok(Cursor(trimmed.unwrap_or_else(|| "0-0".into())))
    }

    async fn read_after(
        &self,
        channel: &str,
        since: &Cursor,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<Vec<Bytes>, CometError> {
        if !valid_cursor(since) {
            return Err(CometError::InvalidCursor(
                "not a cursor of this server".into(),
            ));
        }
        // Most polls are answered from the node's read cache; the rest
        // (older or newer cursors than it holds) go to Redis.
        if let Some(cached) =
            self.channels
                .get(channel)
                .read_after(since, reader, limit, &self.retention)
        {
            return Ok(cached);
        }
        let mut from = since.clone();
        let mut out = Vec::new();
        // Private messages for others are skipped here, so one page may
        // hold nothing for this reader: keep paging until something is or
        // the log ends.
        loop {
            let (status, entries): (String, Vec<Entry>) = {
                let reply: redis::Value = self
                    .scripts
                    .read
                    .key(key(channel, "log"))
                    .key(key(channel, "trimmed"))
                    .arg(from.as_str())
                    .arg(SCAN)
                    .invoke_async(&mut self.redis.clone())
                    .await
                    .map_err(unavailable)?;
                read_reply(reply)?
            };
            match status.as_str() {
                "expired" => return Err(CometError::CursorExpired),
                "ahead" => {
                    return Err(CometError::InvalidCursor(
                        "the cursor is ahead of the channel".into(),
                    ))
                }
                _ => {}
            }
            let page_full = entries.len() == SCAN;
            if let Some((last, _)) = entries.last() {
                from = Cursor(last.clone());
            }
            out.extend(Self::messages(entries, reader).into_iter().map(|m| m.json));
            if out.len() >= limit || !page_full || !out.is_empty() {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    async fn read_tail(
        &self,
        channel: &str,
        reader: &PublicToken,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        let mut redis = self.redis.clone();
        let mut tail = Vec::new();
        let mut head = None;
        let mut upper = "+".to_owned();
        // The first page asks for just `limit` entries (the usual case:
        // they are all for this reader), later pages for twice as many, up
        // to SCAN: a page of history is not 200 entries read for one shown.
        let mut count = limit.clamp(1, SCAN);
        loop {
            let page: Vec<Entry> = redis::cmd("XREVRANGE")
                .arg(key(channel, "log"))
                .arg(&upper)
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut redis)
                .await
                .map_err(unavailable)?;
            let full = page.len() == count;
            count = (count * 2).min(SCAN);
            if head.is_none() {
                head = page.first().map(|(id, _)| Cursor(id.clone()));
            }
            if let Some((oldest, _)) = page.last() {
                upper = format!("({oldest}");
            }
            for message in Self::messages(page, reader) {
                if tail.len() < limit {
                    tail.push(message);
                }
            }
            if tail.len() >= limit || !full {
                break;
            }
        }
        tail.reverse();
        let head = match head {
            Some(head) => head,
            None => self.head(channel).await?,
        };
        Ok((tail, head))
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.channels.get(channel).wake.subscribe()
    }

    fn wake_all(&self, channel: &str) {
        self.channels.get(channel).wake.send_modify(|_| {});
    }
}

/// `{'ok', entries}` / `{'expired'}` / `{'ahead'}` from `read.lua`.
fn read_reply(reply: redis::Value) -> Result<(String, Vec<Entry>), CometError> {
    let corrupt = || CometError::Unavailable("unexpected reply from read.lua".into());
    let redis::Value::Array(mut parts) = reply else {
        return Err(corrupt());
    };
    if parts.is_empty() {
        return Err(corrupt());
    }
    let entries = if parts.len() > 1 {
        <Vec<Entry> as redis::FromRedisValue>::from_redis_value(parts.remove(1))
            .map_err(|_| corrupt())?
    } else {
        Vec::new()
    };
    let status = <String as redis::FromRedisValue>::from_redis_value(parts.remove(0))
        .map_err(|_| corrupt())?;
    Ok((status, entries))
}
