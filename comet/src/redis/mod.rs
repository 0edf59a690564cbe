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
//! Wake-ups: appending publishes the new id on `comet:wake:c`; each node
//! keeps one pattern subscription, fetches the new entries once into its
//! read cache (`read_cache.rs`), then bumps the channel's local `watch`, so a
//! broadcast costs each node one read, not one per waiting poll.
//!
//! On a Redis Cluster (several seeds in the URL, or one cluster-enabled
//! node) the same keys spread channels over the shards, and wake-ups use
//! sharded pub/sub instead: the scripts `SPUBLISH` on `comet:{c}:wake`, a
//! shard channel in the channel's slot, and each node `SSUBSCRIBE`s only to
//! the channels it follows (`shard_wakeups.rs`). Every command goes through
//! `Store` (`store.rs`), a connection manager or a cluster connection,
//! so the rest of the provider is one code path. An append may wait for
//! replicas ([`RedisProvider::wait_for_replicas`], `replicas.rs`).
//!
//! A poll costs no round trip of its own in the steady state either: the
//! node keeps each client it looked up by token digest while the client
//! keeps polling and Redis keeps answering (`client_cache.rs`: removing a client
//! publishes `gone:<token digest>` on the same channel and every node
//! forgets it at once; a lost subscription empties the cache), and the idle deadlines
//! of the clients polling here are pushed forward in one script call per
//! channel every [`TOUCH_FLUSH`] (`touches.rs`).
//!
//! Everything that must be atomic across nodes is a Lua script (`*.lua`
//! beside this file): name uniqueness on insert, "removed once" on remove,
//! append with retention. Redis unreachable: every call fails with
//! [`CometError::Unavailable`](crate::CometError::Unavailable) (the route
//! answers `503` + `Retry-After`); the connection manager and the
//! subscriber reconnect by themselves.
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
//!
//! What lives where, beside `read_cache.rs`, `client_cache.rs` and `touches.rs`:
//!
//! - this file: [`RedisProvider`] itself and its Lua scripts.
//! - `connect.rs`: connecting ([`connection_config`], the `connect*`
//!   constructors) and starting the provider's tasks.
//! - `provider.rs`: the [`Provider`](crate::Provider) implementation.
//! - `stored.rs`: how a channel is kept in Redis: key names, the stored
//!   client record, stream entries, the read script's reply.
//! - `wakeups.rs`: the pub/sub task that turns publications into wake-ups.
//! - `registry.rs`: the channels opened at run time (`comet:channels`).
//! - `store.rs`: one Redis or a Redis Cluster, behind one connection type.
//! - `shard_wakeups.rs`: the wake-up task of a Cluster (sharded pub/sub).
//! - `replicas.rs`: appending, with `WAIT` for replicas when asked.

use super::Retention;
use redis::Script;
use std::sync::Arc;

mod client_cache;
mod connect;
mod provider;
mod read_cache;
mod registry;
mod replicas;
mod shard_wakeups;
mod store;
mod stored;
mod touches;
mod wakeups;

use client_cache::ClientCache;
pub use client_cache::{CLIENT_CACHE_TTL, REDIS_SILENCE};
pub use connect::{connection_config, seeds, DEFAULT_TIMEOUT};
use read_cache::ReadCache;
use replicas::Wait;
use store::Store;
use touches::Touches;
pub use touches::TOUCH_FLUSH;

const COMMON: &str = include_str!("common.lua");

pub struct RedisProvider {
    redis: Store,
    retention: Retention,
    /// Replicas an append waits for (`WAIT`), if any.
    wait: Option<Wait>,
    scripts: Arc<Scripts>,
    channels: Arc<ReadCache>,
    client_cache: Arc<ClientCache>,
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

/// A script with the shared functions, publishing its wake-ups with
/// `SPUBLISH` (to a shard channel in its own slot) in a Cluster and with
/// `PUBLISH` on a single Redis.
fn script(body: &str, cluster: bool) -> Script {
    let publish = if cluster { "SPUBLISH" } else { "PUBLISH" };
    Script::new(&format!("local PUBLISH = '{publish}'\n{COMMON}\n{body}"))
}

impl Drop for RedisProvider {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
