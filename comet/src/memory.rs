//! The in-process provider: one node, no setup. Each channel keeps a ring
//! buffer of messages (bounded by count and age) and a map of clients, each
//! behind its own short `std` mutex that is never held across an `.await`.
//! Wake-ups go through a `watch` channel per channel: one `send` wakes every
//! waiting poll at once, and it is sent after the log lock is released so
//! woken polls do not pile onto a held lock.

use super::client_table::{Clash, ClientTable};
use super::memory_registry::OpenChannels;
use super::provider::{
    ClientRecord, NewClient, NewMessage, PollingClient, Provider, ReadAfter, ReadTail,
    StoredMessage, IDEMPOTENCY_WINDOW,
};
use super::{CometError, Cursor, PublicToken, Taken, TokenDigest};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

pub use crate::retention::Retention;

pub struct MemoryProvider {
    retention: Retention,
    /// Every channel used so far. Read on every call without a lock or a
    /// reference count shared by all threads; replaced whole when a channel
    /// is added (rare: a server's channels are known when it starts).
    channels: ArcSwap<Channels>,
    /// The channels opened at run time and not closed since.
    open: OpenChannels,
}

#[derive(Clone, Default)]
struct Channels {
    /// Position in `states` by name.
    index: HashMap<String, usize>,
    states: Vec<Arc<ChannelState>>,
}

struct ChannelState {
    /// Random per channel instance: a cursor from another channel, or from
    /// before a restart, carries a different epoch and is refused instead of
    /// being compared with numbers it never belonged to.
    epoch: String,
    log: Mutex<Log>,
    clients: Mutex<ClientTable>,
    wake: watch::Sender<u64>,
}

/// One channel's state, borrowed from the channel list it was found in.
struct Channel(arc_swap::Guard<Arc<Channels>>, usize);

impl std::ops::Deref for Channel {
    type Target = ChannelState;

    fn deref(&self) -> &ChannelState {
        &self.0.states[self.1]
    }
}

/// Invariant: `entries[i]` has sequence number `evicted_upto + 1 + i`, so a
/// cursor maps to an index without a search.
#[derive(Default)]
struct Log {
    entries: VecDeque<(Instant, StoredMessage)>,
    /// Sequence number of the newest message ever appended (0: none yet).
    head: u64,
    /// Every message up to and including this number has been dropped.
    evicted_upto: u64,
    /// Idempotency keys of recent appends and their sequence numbers, and
    /// the same keys oldest first, to forget them after
    /// [`IDEMPOTENCY_WINDOW`].
    idempotency_keys: HashMap<String, u64>,
    idempotency_keys_by_age: VecDeque<(Instant, String)>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    id: &'a str,
    n: &'a str,
    c: &'a serde_json::Value,
}

impl MemoryProvider {
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            channels: ArcSwap::default(),
            open: OpenChannels::default(),
        }
    }

    fn channel(&self, name: &str) -> Channel {
        loop {
            let channels = self.channels.load();
            if let Some(&i) = channels.index.get(name) {
                return Channel(channels, i);
            }
            drop(channels);
            self.channels.rcu(|channels| {
                if channels.index.contains_key(name) {
                    return channels.clone();
                }
                let mut grown = Channels::clone(channels);
                grown.index.insert(name.to_owned(), grown.states.len());
                grown.states.push(Arc::new(ChannelState::new()));
                Arc::new(grown)
            });
        }
    }
}

impl ChannelState {
    fn new() -> Self {
        let mut epoch = [0u8; 4];
        getrandom::fill(&mut epoch).expect("OS random number generator failed");
        Self {
            epoch: format!("{:08x}", u32::from_be_bytes(epoch)),
            log: Mutex::new(Log::default()),
            clients: Mutex::new(ClientTable::default()),
            wake: watch::channel(0).0,
        }
    }

    fn cursor(&self, seq: u64) -> Cursor {
        Cursor(format!("{}-{}", self.epoch, seq))
    }

    fn parse(&self, cursor: &Cursor) -> Result<u64, CometError> {
        let (epoch, seq) = cursor
            .as_str()
            .split_once('-')
            .ok_or_else(|| CometError::InvalidCursor("not a cursor of this server".into()))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|_| CometError::InvalidCursor("not a cursor of this server".into()))?;
        if epoch != self.epoch {
            // From before a restart (or another channel): what came after
            // it is gone from this log, so the client must resynchronise.
            return Err(CometError::CursorExpired);
        }
        Ok(seq)
    }
}

impl Log {
    fn prune(&mut self, retention: &Retention, now: Instant) {
        while let Some((at, _)) = self.entries.front() {
            let too_many = self.entries.len() > retention.max_messages;
            let too_old = now.duration_since(*at) > retention.max_age;
            if !(too_many || too_old) {
                break;
            }
            self.entries.pop_front();
            self.evicted_upto += 1;
        }
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    async fn insert_client(&self, channel: &str, new: NewClient<'_>) -> Result<(), CometError> {
        let (client, digest) = (new.record, new.digest);
        let state = self.channel(channel);
        let mut clients = state.clients.lock().expect("clients poisoned");
        clients.insert(client, digest).map_err(|clash| {
            CometError::ClientExists(match clash {
                Clash::Name => Taken::DisplayName,
                Clash::Token => Taken::Token,
            })
        })?;
        Ok(())
    }

    async fn client_by_digest(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<ClientRecord>, CometError> {
        let state = self.channel(channel);
        let clients = state.clients.lock().expect("clients poisoned");
        Ok(clients.by_digest(digest).map(|entry| entry.record.clone()))
    }

    async fn client_by_public(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        let state = self.channel(channel);
        let clients = state.clients.lock().expect("clients poisoned");
        Ok(clients.by_public(public).map(|entry| entry.record.clone()))
    }

    async fn clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        let state = self.channel(channel);
        let clients = state.clients.lock().expect("clients poisoned");
        let mut list: Vec<_> = clients.iter().map(|e| e.record.clone()).collect();
        list.sort_by(|a, b| {
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase())
        });
        Ok(list)
    }

    async fn client_count(&self, channel: &str) -> Result<usize, CometError> {
        let state = self.channel(channel);
        let count = state.clients.lock().expect("clients poisoned").len();
        Ok(count)
    }

    async fn touch(&self, channel: &str, client: &PollingClient) -> Result<(), CometError> {
        let state = self.channel(channel);
        let mut clients = state.clients.lock().expect("clients poisoned");
        if let Some(entry) = clients.by_public_mut(&client.public) {
            entry.last_seen = Instant::now();
        }
        Ok(())
    }

    async fn client_seen(
        &self,
        channel: &str,
        digest: &TokenDigest,
    ) -> Result<Option<PollingClient>, CometError> {
        let state = self.channel(channel);
        let mut clients = state.clients.lock().expect("clients poisoned");
        Ok(clients.by_digest_mut(digest).map(|entry| {
            entry.last_seen = Instant::now();
            PollingClient::from(&entry.record)
        }))
    }

    async fn idle_clients(&self, channel: &str) -> Result<Vec<ClientRecord>, CometError> {
        let state = self.channel(channel);
        let clients = state.clients.lock().expect("clients poisoned");
        let now = Instant::now();
        Ok(clients
            .iter()
            .filter(|e| now.duration_since(e.last_seen) > e.record.idle_timeout)
            .map(|e| e.record.clone())
            .collect())
    }

    async fn remove_client(
        &self,
        channel: &str,
        public: &PublicToken,
    ) -> Result<Option<ClientRecord>, CometError> {
        let state = self.channel(channel);
        let mut clients = state.clients.lock().expect("clients poisoned");
        Ok(clients.remove(public).map(|entry| entry.record))
    }

    async fn append(&self, channel: &str, message: NewMessage<'_>) -> Result<Cursor, CometError> {
        let state = self.channel(channel);
        let seq = {
            let mut log = state.log.lock().expect("log poisoned");
            let now = Instant::now();
            while let Some((at, key)) = log.idempotency_keys_by_age.front() {
                if now.duration_since(*at) < IDEMPOTENCY_WINDOW {
                    break;
                }
                let key = key.clone();
                log.idempotency_keys.remove(&key);
                log.idempotency_keys_by_age.pop_front();
            }
            if let Some(seq) = message
                .idempotency_key
                .and_then(|key| log.idempotency_keys.get(key))
            {
                return Ok(state.cursor(*seq));
            }
            let seq = log.head + 1;
            let id = state.cursor(seq);
            let json = serde_json::to_vec(&WireMessage {
                id: id.as_str(),
                n: message.name,
                c: message.contents,
            })?;
            log.entries.push_back((
                Instant::now(),
                StoredMessage {
                    id,
                    audience: message.audience,
                    json: Bytes::from(json),
                },
            ));
            log.head = seq;
            if let Some(key) = message.idempotency_key {
                log.idempotency_keys.insert(key.to_owned(), seq);
                log.idempotency_keys_by_age.push_back((now, key.to_owned()));
            }
            log.prune(&self.retention, Instant::now());
            seq
        };
        state.wake.send_replace(seq);
        Ok(state.cursor(seq))
    }

    async fn head(&self, channel: &str) -> Result<Cursor, CometError> {
        let state = self.channel(channel);
        let head = state.log.lock().expect("log poisoned").head;
        Ok(state.cursor(head))
    }

    async fn read_after(
        &self,
        channel: &str,
        read: ReadAfter<'_>,
    ) -> Result<Vec<Bytes>, CometError> {
        let state = self.channel(channel);
        let seq = state.parse(read.since)?;
        let mut log = state.log.lock().expect("log poisoned");
        log.prune(&self.retention, Instant::now());
        if seq > log.head {
            return Err(CometError::InvalidCursor(
                "the cursor is ahead of the channel".into(),
            ));
        }
        if seq < log.evicted_upto {
            return Err(CometError::CursorExpired);
        }
        let start = (seq - log.evicted_upto) as usize;
        Ok(log
            .entries
            .range(start..)
            .map(|(_, m)| m)
            .filter(|m| m.audience.includes(read.reader))
            .take(read.limit)
            .map(|m| m.json.clone())
            .collect())
    }

    async fn read_tail(
        &self,
        channel: &str,
        read: ReadTail<'_>,
    ) -> Result<(Vec<StoredMessage>, Cursor), CometError> {
        let state = self.channel(channel);
        let mut log = state.log.lock().expect("log poisoned");
        log.prune(&self.retention, Instant::now());
        let mut tail: Vec<StoredMessage> = log
            .entries
            .iter()
            .rev()
            .map(|(_, m)| m)
            .filter(|m| m.audience.includes(read.reader))
            .take(read.limit)
            .cloned()
            .collect();
        tail.reverse();
        Ok((tail, state.cursor(log.head)))
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.channel(channel).wake.subscribe()
    }

    fn wake_all(&self, channel: &str) {
        self.channel(channel).wake.send_modify(|_| {});
    }

    async fn open_channel(&self, channel: &str, max_channels: usize) -> Result<bool, CometError> {
        self.open.open(channel, max_channels)
    }

    async fn channel_is_open(&self, channel: &str) -> Result<bool, CometError> {
        Ok(self.open.contains(channel))
    }

    async fn open_channels(&self) -> Result<Vec<String>, CometError> {
        Ok(self.open.names())
    }

    async fn close_channel(&self, channel: &str) -> Result<bool, CometError> {
        if !self.open.close(channel) {
            return Ok(false);
        }
        // A fresh state: a new epoch, so cursors of the closed channel are
        // not cursors of one opened later under the same name. The old
        // one's waiting polls are woken and find their client gone.
        let old = self.channel(channel);
        self.channels.rcu(|channels| {
            let mut renewed = Channels::clone(channels);
            if let Some(&i) = renewed.index.get(channel) {
                renewed.states[i] = Arc::new(ChannelState::new());
            }
            Arc::new(renewed)
        });
        old.wake.send_modify(|n| *n += 1);
        Ok(true)
    }
}
