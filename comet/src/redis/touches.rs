//! Client activity, batched: a poll that starts or ends records its client
//! here, and every [`TOUCH_FLUSH`] one `touch.lua` call per channel moves
//! all their idle deadlines forward, then a `PING` tells the client cache
//! that Redis still answers (see `client_cache.rs`).
//!
//! Each touch carries the client's idle timeout, so the script only sets
//! scores (`ZADD XX`, which leaves removed clients removed): no record is
//! read or decoded in Redis. When 100 000 clients poll again at once after
//! a broadcast, that is what Redis's one thread has to do for them.

use super::super::{PollingClient, PublicToken, TokenMap};
use super::client_cache::ClientCache;
use super::store::Store;
use super::stored::key;
use super::Scripts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the idle deadlines of the clients polling on a node are
/// pushed forward (far below any idle timeout).
pub const TOUCH_FLUSH: Duration = Duration::from_millis(250);

/// Clients seen since the last flush, per channel: public token → idle
/// timeout in milliseconds.
#[derive(Default)]
pub(super) struct Touches {
    due: Mutex<HashMap<String, TokenMap<PublicToken, u64>>>,
}

impl Touches {
    pub(super) fn add(&self, channel: &str, client: &PollingClient) {
        let idle_ms = client.idle_timeout.as_millis() as u64;
        let mut due = self.due.lock().expect("touches poisoned");
        match due.get_mut(channel) {
            Some(clients) => {
                clients.insert(client.public, idle_ms);
            }
            None => {
                let mut clients = TokenMap::default();
                clients.insert(client.public, idle_ms);
                due.insert(channel.to_owned(), clients);
            }
        }
    }

    fn take(&self) -> HashMap<String, TokenMap<PublicToken, u64>> {
        std::mem::take(&mut *self.due.lock().expect("touches poisoned"))
    }

    /// Puts back a batch that could not be recorded; anything newer wins.
    fn restore(&self, channel: String, clients: TokenMap<PublicToken, u64>) {
        let mut due = self.due.lock().expect("touches poisoned");
        let now = due.entry(channel).or_default();
        for (public, idle_ms) in clients {
            now.entry(public).or_insert(idle_ms);
        }
    }
}

/// Every [`TOUCH_FLUSH`], one `touch.lua` call per channel for all the
/// clients seen on this node since the last one, then a `PING`. A failed
/// flush is kept for the next (Redis down): nobody is reaped for a missed
/// touch unless Redis stays away longer than their idle timeout.
pub(super) async fn flush_touches(
    redis: Store,
    scripts: Arc<Scripts>,
    touches: Arc<Touches>,
    client_cache: Arc<ClientCache>,
) {
    let mut tick = tokio::time::interval(TOUCH_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (channel, clients) in touches.take() {
            let mut call = scripts.touch.prepare_invoke();
            call.key(key(&channel, "deadlines"));
            for (public, idle_ms) in &clients {
                call.arg(public.as_str()).arg(*idle_ms);
            }
            let done: Result<i64, _> = call.invoke_async(&mut redis.clone()).await;
            if let Err(error) = done {
                tracing::warn!(%error, channel, "cannot record client activity in Redis");
                touches.restore(channel, clients);
            }
        }
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut redis.clone()).await;
        if pong.is_ok() {
            client_cache.heard_from_redis();
        }
    }
}
