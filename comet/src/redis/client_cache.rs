//! The client cache: the node's copy of the clients it looked up by token
//! digest, so a poll costs no round trip to Redis in the steady state.
//!
//! A client record never changes once stored; the only news is its
//! removal, and removing publishes `gone:<token digest>` on the channel's
//! wake-up channel, which makes every node forget it at once
//! ([`ClientCache::forget`], one hash look-up: 100 000 clients leaving must not
//! cost a node a scan of its cache each).
//! So the copy is trusted for as long as the client keeps polling
//! ([`CLIENT_CACHE_TTL`] after the last poll that found it) while two
//! things hold:
//!
//! - the wake-up subscription is up: losing it may lose removal notices,
//!   so the subscriber empties the copy when it (re)subscribes
//!   ([`ClientCache::clear`]), and a look-up that was under way across that
//!   moment is not kept ([`ClientCache::generation`]);
//! - Redis answered recently ([`REDIS_SILENCE`]): a Redis that stopped
//!   answering (paused, partitioned) without closing the connection is not
//!   noticed by the subscription, and a poll must then get `503` from the
//!   store, not a hold answered from memory. The touch task pings every
//!   [`TOUCH_FLUSH`](super::TOUCH_FLUSH) and reports each answer
//!   ([`ClientCache::heard_from_redis`]).

use super::super::provider::ClientRecord;
use super::super::{TokenDigest, TokenMap};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a node keeps a client that stopped polling on it.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(60);

/// How long Redis may go unheard before the copy is no longer trusted.
pub const REDIS_SILENCE: Duration = Duration::from_secs(1);

/// Clients this node looked up, per channel, by token digest.
#[derive(Default)]
pub(super) struct ClientCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    channels: HashMap<String, CachedClients>,
    /// Bumped by every [`ClientCache::clear`].
    generation: u64,
    /// When Redis last answered the touch task.
    heard: Option<Instant>,
}

/// One channel's clients and when a poll last found each.
type CachedClients = TokenMap<TokenDigest, (ClientRecord, Instant)>;

impl ClientCache {
    /// The client, if known and trusted; a hit counts as the client seen.
    pub(super) fn get(&self, channel: &str, digest: &TokenDigest) -> Option<ClientRecord> {
        self.get_with(channel, digest, ClientRecord::clone)
    }

    /// What `f` takes from the client, if known and trusted (a poll takes
    /// only its token and timeouts: no names copied).
    pub(super) fn get_with<T>(
        &self,
        channel: &str,
        digest: &TokenDigest,
        f: impl FnOnce(&ClientRecord) -> T,
    ) -> Option<T> {
        let mut state = self.state.lock().expect("client cache poisoned");
        let now = Instant::now();
        let heard_lately = state
            .heard
            .is_some_and(|at| now.duration_since(at) < REDIS_SILENCE);
        if !heard_lately {
            return None;
        }
        let (record, at) = state.channels.get_mut(channel)?.get_mut(digest)?;
        if now.duration_since(*at) >= CLIENT_CACHE_TTL {
            return None;
        }
        *at = now;
        Some(f(record))
    }

    /// Where the cache stands: a look-up from Redis takes this before it
    /// asks and gives it back to [`put`](Self::put).
    pub(super) fn generation(&self) -> u64 {
        self.state.lock().expect("client cache poisoned").generation
    }

    /// Keeps a client looked up in Redis, unless the cache was emptied
    /// since `generation` (a removal notice may have been missed).
    pub(super) fn put(
        &self,
        channel: &str,
        digest: TokenDigest,
        record: ClientRecord,
        generation: u64,
    ) {
        let mut state = self.state.lock().expect("client cache poisoned");
        if state.generation != generation {
            return;
        }
        let now = Instant::now();
        let clients = state.channels.entry(channel.to_owned()).or_default();
        if clients.len() >= 1024 && clients.len().is_power_of_two() {
            clients.retain(|_, (_, at)| now.duration_since(*at) < CLIENT_CACHE_TTL);
        }
        clients.insert(digest, (record, now));
    }

    pub(super) fn forget(&self, channel: &str, digest: &TokenDigest) {
        let mut state = self.state.lock().expect("client cache poisoned");
        if let Some(clients) = state.channels.get_mut(channel) {
            clients.remove(digest);
        }
    }

    /// Forgets every client of one channel (a removal notice this node
    /// cannot read, e.g. from a node of another version).
    pub(super) fn forget_channel(&self, channel: &str) {
        let mut state = self.state.lock().expect("client cache poisoned");
        state.channels.remove(channel);
    }

    pub(super) fn clear(&self) {
        let mut state = self.state.lock().expect("client cache poisoned");
        state.channels.clear();
        state.generation += 1;
    }

    pub(super) fn heard_from_redis(&self) {
        self.state.lock().expect("client cache poisoned").heard = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PrivateToken, PublicToken};

    fn record() -> ClientRecord {
        ClientRecord {
            public: PublicToken::generate(),
            display_name: "ann".into(),
            name_key: "ann".into(),
            connection_timeout: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(30),
        }
    }

    /// The same digest for the same number, in one test.
    fn digest(n: usize) -> TokenDigest {
        thread_local! {
            static DIGESTS: [TokenDigest; 2] =
                [PrivateToken::generate().digest(), PrivateToken::generate().digest()];
        }
        DIGESTS.with(|d| d[n - 1])
    }

    #[test]
    fn nothing_is_trusted_before_redis_answered() {
        let cache = ClientCache::default();
        cache.put("c", digest(1), record(), cache.generation());
        assert!(cache.get("c", &digest(1)).is_none());
        cache.heard_from_redis();
        assert!(cache.get("c", &digest(1)).is_some());
    }

    #[test]
    fn a_look_up_across_a_clear_is_not_kept() {
        let cache = ClientCache::default();
        cache.heard_from_redis();
        let before = cache.generation();
        cache.clear();
        cache.put("c", digest(1), record(), before);
        assert!(cache.get("c", &digest(1)).is_none());
        cache.put("c", digest(1), record(), cache.generation());
        assert!(cache.get("c", &digest(1)).is_some());
    }

    #[test]
    fn a_removal_notice_forgets_the_client() {
        let cache = ClientCache::default();
        cache.heard_from_redis();
        cache.put("c", digest(1), record(), cache.generation());
        cache.put("c", digest(2), record(), cache.generation());
        cache.put("d", digest(1), record(), cache.generation());
        cache.forget("c", &digest(1));
        assert!(cache.get("c", &digest(1)).is_none());
        assert!(cache.get("c", &digest(2)).is_some());
        assert!(cache.get("d", &digest(1)).is_some(), "only in its channel");
        cache.forget_channel("c");
        assert!(cache.get("c", &digest(2)).is_none());
        assert!(cache.get("d", &digest(1)).is_some());
    }

    #[test]
    fn a_silent_redis_is_not_trusted() {
        let cache = ClientCache::default();
        cache.put("c", digest(1), record(), cache.generation());
        cache.state.lock().unwrap().heard = Some(Instant::now() - REDIS_SILENCE);
        assert!(cache.get("c", &digest(1)).is_none());
    }

    #[test]
    fn a_client_that_stopped_polling_is_looked_up_again() {
        let cache = ClientCache::default();
        cache.heard_from_redis();
        cache.put("c", digest(1), record(), cache.generation());
        let mut state = cache.state.lock().unwrap();
        let clients = state.channels.get_mut("c").unwrap();
        clients.get_mut(&digest(1)).unwrap().1 = Instant::now() - CLIENT_CACHE_TTL;
        drop(state);
        assert!(cache.get("c", &digest(1)).is_none());
    }
}
