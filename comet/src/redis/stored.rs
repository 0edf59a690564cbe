//! How a channel is kept in Redis (the key table is in `mod.rs`): key
//! names, the client record as stored, stream entries as stored messages,
//! and the read script's reply.

use super::RedisProvider;
use crate::provider::{Audience, ClientRecord, StoredMessage};
use crate::{CometError, Cursor, PublicToken, TokenDigest};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A client as stored in `comet:{c}:clients`.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredClient {
    pub(super) public: String,
    pub(super) name: String,
    pub(super) lname: String,
    pub(super) digest: String,
    pub(super) conn_ms: u64,
    pub(super) idle_ms: u64,
}

impl StoredClient {
    pub(super) fn record(&self) -> Result<ClientRecord, CometError> {
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

pub(super) fn unavailable(error: redis::RedisError) -> CometError {
    CometError::Unavailable(error.to_string())
}

pub(super) fn key(channel: &str, what: &str) -> String {
    format!("comet:{{{channel}}}:{what}")
}

/// A call of `script` (insert.lua or remove.lua) with the keys both take,
/// in their order: the channel's client records, digest index, name index
/// and idle deadlines.
pub(super) fn with_client_keys<'a>(
    script: &'a redis::Script,
    channel: &str,
) -> redis::ScriptInvocation<'a> {
    let mut call = script.prepare_invoke();
    for what in ["clients", "digests", "names", "deadlines"] {
        call.key(key(channel, what));
    }
    call
}

pub(super) fn sha_hex(text: &str) -> String {
    use sha2::Digest;
    crate::token::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// Where appends and removals of `channel` are announced: one pattern
/// subscription hears `comet:wake:<c>` on a single Redis; in a Cluster
/// each node follows `comet:{c}:wake`, a shard channel in the channel's own
/// slot, so a publication reaches only that shard and the nodes that
/// follow the channel (`shard_wakeups.rs`).
pub(super) fn wake_channel(channel: &str, cluster: bool) -> String {
    if cluster {
        key(channel, "wake")
    } else {
        format!("comet:wake:{channel}")
    }
}

/// The channel a shard channel name (`comet:{c}:wake`) announces.
pub(super) fn channel_of_shard_wake(name: &str) -> Option<&str> {
    name.strip_prefix("comet:{")?.strip_suffix("}:wake")
}

/// Stream ids are `<ms>-<seq>`; anything else is not our cursor.
pub(super) fn valid_cursor(cursor: &Cursor) -> bool {
    cursor.as_str().split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.len() <= 20
            && b.len() <= 20
            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    })
}

/// One stream entry as Redis returns it: id and field/value pairs.
pub(super) type Entry = (String, HashMap<String, String>);

/// A stream entry as a stored message, its wire JSON formatted once.
pub(super) fn parse_entry((id, fields): Entry) -> Option<StoredMessage> {
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

/// `{'ok', entries}` / `{'expired'}` / `{'ahead'}` from `read.lua`.
pub(super) fn read_reply(reply: redis::Value) -> Result<(String, Vec<Entry>), CometError> {
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

impl RedisProvider {
    pub(super) async fn stored_client(
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

    /// The client with this token digest as Redis has it (two look-ups),
    /// kept in the client cache unless the cache was emptied meanwhile.
    pub(super) async fn looked_up_client(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        let generation = self.client_cache.generation();
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
            self.client_cache
                .put(channel, *digest, record.clone(), generation);
        }
        Ok(record)
    }

    /// Stream entries to stored messages, keeping those `reader` may see.
    pub(super) fn messages(entries: Vec<Entry>, reader: &PublicToken) -> Vec<StoredMessage> {
        entries
            .into_iter()
            .filter_map(parse_entry)
            .filter(|m| m.audience.includes(reader))
            .collect()
    }
}
