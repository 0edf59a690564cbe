//! [`RedisProvider`]'s [`Provider`] implementation: every store call as
//! Redis commands and Lua scripts, polls answered from the read cache when
//! it can.

use super::replicas::evalsha;
use super::stored::{
    key, read_reply, sha_hex, unavailable, valid_cursor, wake_channel, with_client_keys, Entry,
    StoredClient,
};
use super::RedisProvider;
use crate::provider::{
    Audience, ClientRecord, NewClient, NewMessage, PollingClient, Provider, ReadAfter, ReadTail,
    StoredMessage, IDEMPOTENCY_WINDOW,
};
use crate::{CometError, Cursor, PublicToken, Taken, TokenDigest};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

/// Stream entries fetched per round trip when scanning.
const SCAN: usize = 200;

#[async_trait]
impl Provider for RedisProvider {
    async fn insert_client(&self, channel: &str, new: NewClient<'_>) -> Result<(), CometError> {
        let (client, digest) = (new.record, new.digest);
        let lname = client.name_key.clone();
        let stored = StoredClient {
            public: client.public.to_string(),
            name: client.display_name.clone(),
            lname: lname.clone(),
            digest: digest.to_hex(),
            conn_ms: client.connection_timeout.as_millis() as u64,
            idle_ms: client.idle_timeout.as_millis() as u64,
        };
        let outcome: String = with_client_keys(&self.scripts.insert, channel)
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
        match self.client_cache.get(channel, digest) {
            Some(record) => Ok(Some(record)),
            None => self.looked_up_client(channel, digest).await,
        }
    }

    /// From the node's cache without copying the record's names (every
    /// poll comes here), or from Redis.
    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<PollingClient>, CometError> {
        let client = match self
            .client_cache
            .get_with(channel, digest, |r| PollingClient::from(r))
        {
            Some(client) => Some(client),
            None => self
                .looked_up_client(channel, digest)
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

    /// Recorded within [`TOUCH_FLUSH`](super::TOUCH_FLUSH), batched with
    /// every other client seen on this node.
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
        let removed: Option<String> = with_client_keys(&self.scripts.remove, channel)
            .arg(public.as_str())
            .arg(wake_channel(channel, self.redis.is_cluster()))
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
            Some(digest) => self.client_cache.forget(channel, &digest),
            None => self.client_cache.forget_channel(channel),
        }
        stored.record().map(Some)
    }

    async fn append(&self, channel: &str, message: NewMessage<'_>) -> Result<Cursor, CometError> {
        let audience = match &message.audience {
            Audience::Everyone => "*".to_owned(),
            Audience::Clients(list) => list
                .iter()
                .map(PublicToken::as_str)
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut keys = vec![key(channel, "log"), key(channel, "trimmed")];
        if let Some(idempotency_key) = message.idempotency_key {
            // The key names a string holding the first send's id for
            // IDEMPOTENCY_WINDOW; sha256 keeps it short and free of odd
            // bytes. Its `once:` prefix predates the name "idempotency key"
            // and stays: it names keys already stored.
            keys.push(key(channel, &format!("once:{}", sha_hex(idempotency_key))));
        }
        let mut call = evalsha(&self.scripts.append, &keys);
        call.arg(audience)
            .arg(message.name)
            .arg(serde_json::to_string(message.contents)?)
            .arg(self.retention.max_messages)
            .arg(self.retention.max_age.as_millis() as u64)
            .arg(wake_channel(channel, self.redis.is_cluster()))
            .arg(IDEMPOTENCY_WINDOW.as_millis() as u64);
        let id = self.appended(&call, &keys[0]).await?;
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
        read: ReadAfter<'_>,
    ) -> Result<Vec<Bytes>, CometError> {
        if !valid_cursor(read.since) {
            return Err(CometError::InvalidCursor(
                "not a cursor of this server".into(),
            ));
        }
        // Most polls are answered from the node's read cache; the rest
        // (older or newer cursors than it holds) go to Redis.
        if let Some(cached) = self.channels.get(channel).read_after(
            read.since,
            read.reader,
            read.limit,
            &self.retention,
        ) {
            return Ok(cached);
        }
        let mut from = read.since.clone();
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
            out.extend(
                Self::messages(entries, read.reader)
                    .into_iter()
                    .map(|m| m.json),
            );
            if out.len() >= read.limit || !page_full || !out.is_empty() {
                out.truncate(read.limit);
                return Ok(out);
            }
        }
    }

    async fn read_tail(
        &self,
        channel: &str,
        read: ReadTail<'_>,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        let mut redis = self.redis.clone();
        let mut tail = Vec::new();
        let mut head = None;
        let mut upper = "+".to_owned();
        // The first page asks for just `read.limit` entries (the usual case:
        // they are all for this read.reader), later pages for twice as many, up
        // to SCAN: a page of history is not 200 entries read for one shown.
        let mut count = read.limit.clamp(1, SCAN);
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
            for message in Self::messages(page, read.reader) {
                if tail.len() < read.limit {
                    tail.push(message);
                }
            }
            if tail.len() >= read.limit || !full {
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

    async fn open_channel(&self, channel: &str, max_channels: usize) -> Result<bool, CometError> {
        self.open_in_redis(channel, max_channels).await
    }

    async fn channel_is_open(&self, channel: &str) -> Result<bool, CometError> {
        self.is_open_in_redis(channel).await
    }

    async fn open_channels(&self) -> Result<Vec<String>, CometError> {
        self.open_in_redis_names().await
    }

    async fn close_channel(&self, channel: &str) -> Result<bool, CometError> {
        self.close_in_redis(channel).await
    }
}
