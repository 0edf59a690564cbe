//! The node's read cache: each channel's recent log, fetched from Redis
//! once per wake-up and shared by every local poll.
//!
//! Without it, a broadcast to N polls waiting on this node costs N reads
//! from Redis (each woken poll reads its own batch). With it, the
//! publication triggers one fetch (`XRANGE` from the newest cached id), the
//! entries are formatted once into their wire JSON, and only then is the
//! channel's `watch` bumped, so the woken polls read from memory.
//!
//! The cache is contiguous from its `base` (the id just before its first
//! entry): a cursor equal to `base` or to a cached id is answered here; any
//! other cursor (older than the cache, newer than this node has fetched, or
//! after a Redis error reset the cache) falls back to Redis, which also
//! decides `410` for expired cursors.

use super::store::Store;
use super::stored::{parse_entry, Entry};
use crate::provider::StoredMessage;
use crate::{Cursor, PublicToken, Retention};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// Where a channel newly followed by this node is announced.
pub(super) type Follow = tokio::sync::mpsc::UnboundedSender<String>;

/// Entries fetched per round trip.
const FETCH: usize = 500;

/// A stream id, `<ms>-<seq>`, as numbers so it orders correctly.
type StreamId = (u64, u64);

pub(super) fn stream_id(cursor: &str) -> Option<StreamId> {
    let (ms, seq) = cursor.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

pub(super) struct ReadCache {
    redis: Store,
    retention: Retention,
    /// In a Cluster: told of each channel this node starts to follow, so
    /// it subscribes to that channel's shard channel.
    follow: Option<Follow>,
    map: RwLock<HashMap<String, Arc<CachedChannel>>>,
}

pub(super) struct CachedChannel {
    name: String,
    pub(super) wake: watch::Sender<u64>,
    log: Mutex<CachedLog>,
    /// A publication arrived that no fetch has looked at yet.
    dirty: AtomicBool,
    /// A fetch task is running for this channel.
    fetching: AtomicBool,
}

#[derive(Default)]
struct CachedLog {
    base: Option<StreamId>,
    entries: VecDeque<(StreamId, StoredMessage)>,
}

impl CachedLog {
    fn last(&self) -> Option<StreamId> {
        self.entries.back().map(|(id, _)| *id).or(self.base)
    }

    fn prune(&mut self, retention: &Retention) {
        let now = crate::unix_millis();
        let oldest_kept = now.saturating_sub(retention.max_age.as_millis() as u64);
        while let Some((id, _)) = self.entries.front() {
            if self.entries.len() <= retention.max_messages && id.0 >= oldest_kept {
                break;
            }
            self.base = Some(*id);
            self.entries.pop_front();
        }
    }
}

impl ReadCache {
    pub(super) fn new(redis: Store, retention: Retention, follow: Option<Follow>) -> Self {
        Self {
            redis,
            retention,
            follow,
            map: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, name: &str) -> Arc<CachedChannel> {
        if let Some(channel) = self.map.read().expect("channel map poisoned").get(name) {
            return channel.clone();
        }
        self.map
            .write()
            .expect("channel map poisoned")
            .entry(name.to_owned())
            .or_insert_with(|| {
                if let Some(follow) = &self.follow {
                    let _ = follow.send(name.to_owned());
                }
                Arc::new(CachedChannel {
                    name: name.to_owned(),
                    wake: watch::channel(0).0,
                    log: Mutex::new(CachedLog::default()),
                    dirty: AtomicBool::new(false),
                    fetching: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Something was appended to `name` (or publications may have been
    /// missed): fetch it, then wake the channel's polls. At most one fetch
    /// runs per channel; publications during it make it go round again.
    pub(super) fn notify(self: &Arc<Self>, name: &str) {
        let channel = self.get(name);
        channel.dirty.store(true, Ordering::SeqCst);
        if !channel.fetching.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.clone().fetch_loop(channel));
        }
    }

    /// The channels this node follows.
    pub(super) fn names(&self) -> Vec<String> {
        self.map
            .read()
            .expect("channel map poisoned")
            .keys()
            .cloned()
            .collect()
    }

    pub(super) fn notify_all(self: &Arc<Self>) {
        for name in self.names() {
            self.notify(&name);
        }
    }

    async fn fetch_loop(self: Arc<Self>, channel: Arc<CachedChannel>) {
        loop {
            channel.dirty.store(false, Ordering::SeqCst);
            if let Err(error) = self.fetch(&channel).await {
                tracing::warn!(channel = %channel.name, %error, "cannot refresh the read cache");
                *channel.log.lock().expect("cache poisoned") = CachedLog::default();
            }
            channel.wake.send_modify(|n| *n = n.wrapping_add(1));
            channel.fetching.store(false, Ordering::SeqCst);
            // A publication that arrived after the fetch started must not
            // be left waiting for the next one.
            if !channel.dirty.load(Ordering::SeqCst)
                || channel.fetching.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    }

    async fn fetch(&self, channel: &CachedChannel) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        let log_key = super::stored::key(&channel.name, "log");
        let mut last = channel.log.lock().expect("cache poisoned").last();
        if last.is_none() {
            // First fetch: start the cache at the newest id.
            let newest: Vec<Entry> = redis::cmd("XREVRANGE")
                .arg(&log_key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut redis)
                .await?;
            let base = newest
                .first()
                .and_then(|(id, _)| stream_id(id))
                .unwrap_or((0, 0));
            channel.log.lock().expect("cache poisoned").base = Some(base);
            last = Some(base);
        }
        loop {
            let (ms, seq) = last.expect("set above");
            let page: Vec<Entry> = redis::cmd("XRANGE")
                .arg(&log_key)
                .arg(format!("({ms}-{seq}"))
                .arg("+")
                .arg("COUNT")
                .arg(FETCH)
                .query_async(&mut redis)
                .await?;
            let full = page.len() == FETCH;
            let mut log = channel.log.lock().expect("cache poisoned");
            for entry in page {
                let Some(id) = stream_id(&entry.0) else {
                    continue;
                };
                if let Some(message) = parse_entry(entry) {
                    log.entries.push_back((id, message));
                }
                last = Some(id);
            }
            log.prune(&self.retention);
            if !full {
                return Ok(());
            }
        }
    }
}

impl CachedChannel {
    /// What is newer than `since` for `reader`, if the cache can tell.
    pub(super) fn read_after(
        &self,
        since: &Cursor,
        reader: &PublicToken,
        limit: usize,
        retention: &Retention,
    ) -> Option<Vec<Bytes>> {
        let since = stream_id(since.as_str())?;
        let mut log = self.log.lock().expect("cache poisoned");
        // Age out what retention dropped since the last fetch, so an old
        // cursor goes to Redis (and gets its 410) instead of being answered
        // with messages past their age.
        log.prune(retention);
        let start = if Some(since) == log.base {
            0
        } else {
            log.entries
                .binary_search_by(|(id, _)| id.cmp(&since))
                .ok()?
                + 1
        };
        Some(
            log.entries
                .range(start..)
                .map(|(_, m)| m)
                .filter(|m| m.audience.includes(reader))
                .take(limit)
                .map(|m| m.json.clone())
                .collect(),
        )
    }
}
