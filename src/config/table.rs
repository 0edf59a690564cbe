//! Every runtime setting, once: its key in the settings file, the
//! environment variable that overrides it, its default and how its value
//! is read. The reader ([`read`](super::read)) takes all four from here, so
//! a setting's variable, bounds and default cannot drift apart; the tests
//! beside this file hold the README's "Configuration" table, `Leptos.toml`
//! and the `comet` crate's own defaults to it.
//!
//! Why every setting has an upper bound as well as a lower one: a poll
//! timeout of a thousand years is not a choice anyone makes on purpose,
//! and a number that large is where arithmetic on it (deadlines,
//! `Instant + d`) would overflow and panic much later, far from its cause.
//! The HTTP bounds also keep values inside what the kernel and the timers
//! take: `TCP_KEEPIDLE` stops at 32 767 s, and `TCP_USER_TIMEOUT` (twice
//! the keepalive, in milliseconds) must fit a `u32`.

use std::time::Duration;

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// `section.key` in the settings file.
    pub key: &'static str,
    /// The environment variable that overrides the file.
    pub var: &'static str,
    /// The value used when neither sets it, written as the README shows it
    /// and read by the same parser as a value that was set; empty: none.
    pub default: &'static str,
    pub kind: Kind,
    /// What it does, in a line (the README says more).
    pub meaning: &'static str,
}

/// How a setting's value is read, with its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// From 1 ms to `max`: `25s`, `500ms`, `2m`, `1h` or plain seconds.
    Duration { max: Duration },
    /// A whole number from `min` to `max` (a `min` of 0 means "no limit").
    Count { min: u64, max: u64 },
    /// `true` or `false` (also `1`/`0`, `yes`/`no` as a string).
    Flag,
    /// A `redis://` URL, or several (a Redis Cluster's seeds); empty: none.
    RedisUrl,
    /// `same`, `off`, or an address such as `127.0.0.1:9100`.
    Metrics,
    /// IP addresses or networks: comma-separated, or an array in the file.
    Networks,
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

const fn duration(max: Duration) -> Kind {
    Kind::Duration { max }
}

const fn count(min: u64, max: u64) -> Kind {
    Kind::Count { min, max }
}

/// Every setting, in the README's order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "comet.redis_url",
        var: "COMET_REDIS_URL",
        default: "",
        kind: Kind::RedisUrl,
        meaning: "keep clients and messages in this Redis or Redis Cluster; unset: in-process",
    },
    Setting {
        key: "comet.redis_wait_replicas",
        var: "COMET_REDIS_WAIT_REPLICAS",
        default: "0",
        kind: count(0, 16),
        meaning: "replicas a send waits for (WAIT) before it counts as sent; 0: none",
    },
    Setting {
        key: "comet.redis_wait_timeout",
        var: "COMET_REDIS_WAIT_TIMEOUT",
        default: "500ms",
        kind: duration(Duration::from_secs(60)),
        meaning: "longest wait for those replicas; past it the send fails",
    },
    Setting {
        key: "comet.poll_timeout",
        var: "COMET_POLL_TIMEOUT",
        default: "25s",
        kind: duration(HOUR),
        meaning: "how long a poll is held before it answers timeout",
    },
    Setting {
        key: "comet.idle_timeout",
        var: "COMET_IDLE_TIMEOUT",
        default: "30s",
        kind: duration(DAY),
        meaning: "a client not polling this long is removed",
    },
    Setting {
        key: "comet.reap_interval",
        var: "COMET_REAP_INTERVAL",
        default: "1s",
        kind: duration(HOUR),
        meaning: "how often idle clients are looked for",
    },
    Setting {
        key: "comet.retention_messages",
        var: "COMET_RETENTION_MESSAGES",
        default: "1000",
        kind: count(1, 10_000_000),
        meaning: "messages a channel keeps",
    },
    Setting {
        key: "comet.retention_age",
        var: "COMET_RETENTION_AGE",
        default: "1h",
        kind: duration(Duration::from_secs(365 * 24 * 3600)),
        meaning: "how long a channel keeps a message",
    },
    Setting {
        key: "comet.max_polls_per_client",
        var: "COMET_MAX_POLLS_PER_CLIENT",
        default: "6",
        kind: count(1, 1_000),
        meaning: "concurrent polls one client may hold on one node",
    },
    Setting {
        key: "comet.max_polls",
        var: "COMET_MAX_POLLS",
        default: "20000",
        kind: count(1, 10_000_000),
        meaning: "concurrent polls one node holds over all clients",
    },
    Setting {
        key: "comet.max_clients",
        var: "COMET_MAX_CLIENTS",
        default: "100000",
        kind: count(1, 100_000_000),
        meaning: "clients the chat may have over all nodes",
    },
    Setting {
        key: "comet.batch_limit",
        var: "COMET_BATCH_LIMIT",
        default: "500",
        kind: count(1, 100_000),
        meaning: "most messages in one poll reply",
    },
    Setting {
        key: "comet.max_body_bytes",
        var: "COMET_MAX_BODY_BYTES",
        default: "4096",
        kind: count(1, 1 << 20),
        meaning: "largest poll body",
    },
    Setting {
        key: "comet.presence_window",
        var: "COMET_PRESENCE_WINDOW",
        default: "250ms",
        kind: duration(Duration::from_secs(10)),
        meaning: "joins and leaves within this go out as one message",
    },
    Setting {
        key: "comet.provider_timeout",
        var: "COMET_PROVIDER_TIMEOUT",
        default: "800ms",
        kind: duration(Duration::from_secs(60)),
        meaning: "longest wait for the provider (Redis) in any request",
    },
    Setting {
        key: "comet.metrics",
        var: "COMET_METRICS",
        default: "same",
        kind: Kind::Metrics,
        meaning: "where GET /metrics is served: same, off or an address",
    },
    Setting {
        key: "chat.max_name_chars",
        var: "CHAT_MAX_NAME_CHARS",
        default: "32",
        kind: count(1, 1_000),
        meaning: "longest display name",
    },
    Setting {
        key: "chat.max_message_chars",
        var: "CHAT_MAX_MESSAGE_CHARS",
        default: "2000",
        kind: count(1, 100_000),
        meaning: "longest message",
    },
    Setting {
        key: "chat.history",
        var: "CHAT_HISTORY",
        default: "50",
        kind: count(1, 10_000),
        meaning: "messages shown when the chat page opens",
    },
    Setting {
        key: "chat.cookie_secure",
        var: "CHAT_COOKIE_SECURE",
        default: "false",
        kind: Kind::Flag,
        meaning: "serve over HTTPS: a Secure, __Host- session cookie",
    },
    Setting {
        key: "chat.send_rate",
        var: "CHAT_SEND_RATE",
        default: "10",
        kind: count(0, 1_000_000),
        meaning: "sends per second one address may keep up on one node",
    },
    Setting {
        key: "chat.send_burst",
        var: "CHAT_SEND_BURST",
        default: "50",
        kind: count(1, 1_000_000),
        meaning: "sends one address may make at once",
    },
    // 10 a minute after a burst of 20: a household or office behind one
    // NAT logging in together, and each retyping a taken name once or
    // twice, stays under it; a script filling the chat from one address
    // gets 20 names, then one every 6 seconds.
    Setting {
        key: "chat.login_rate",
        var: "CHAT_LOGIN_RATE",
        default: "10",
        kind: count(0, 1_000_000),
        meaning: "logins per minute one address may keep up on one node",
    },
    Setting {
        key: "chat.login_burst",
        var: "CHAT_LOGIN_BURST",
        default: "20",
        kind: count(1, 1_000_000),
        meaning: "logins one address may make at once",
    },
    Setting {
        key: "chat.trusted_proxies",
        var: "CHAT_TRUSTED_PROXIES",
        default: "",
        kind: Kind::Networks,
        meaning: "proxies whose forwarding headers are believed",
    },
    Setting {
        key: "http.head_timeout",
        var: "HTTP_HEAD_TIMEOUT",
        default: "10s",
        kind: duration(HOUR),
        meaning: "a request head must arrive whole within this",
    },
    Setting {
        key: "http.min_body_rate",
        var: "HTTP_MIN_BODY_RATE",
        default: "4096",
        kind: count(1, u32::MAX as u64),
        meaning: "bytes per second a request body must keep up",
    },
    Setting {
        key: "http.write_timeout",
        var: "HTTP_WRITE_TIMEOUT",
        default: "10s",
        kind: duration(HOUR),
        meaning: "a reply not taken within this closes the connection",
    },
    Setting {
        key: "http.keepalive_timeout",
        var: "HTTP_KEEPALIVE_TIMEOUT",
        default: "75s",
        kind: duration(DAY),
        meaning: "an idle kept-alive connection is closed after this",
    },
    Setting {
        key: "http.tcp_keepalive",
        var: "HTTP_TCP_KEEPALIVE",
        default: "60s",
        kind: duration(Duration::from_secs(2 * 3600)),
        meaning: "TCP keepalive idle time (TCP_USER_TIMEOUT: twice it)",
    },
    Setting {
        key: "http.max_connections",
        var: "HTTP_MAX_CONNECTIONS",
        default: "50000",
        kind: count(1, 10_000_000),
        meaning: "open connections on this node",
    },
    Setting {
        key: "http.max_connections_per_addr",
        var: "HTTP_MAX_CONNECTIONS_PER_ADDR",
        default: "0",
        kind: count(0, 10_000_000),
        meaning: "open connections from one client address",
    },
    Setting {
        key: "http.drain_timeout",
        var: "HTTP_DRAIN_TIMEOUT",
        default: "10s",
        kind: duration(HOUR),
        meaning: "the longest a graceful stop waits for requests in flight",
    },
];

/// The row whose file key is `key`. Evaluated as a `const` item (through
/// [`setting!`]), so reading a key with no row fails the build, `cargo
/// check` included.
pub const fn find(key: &str) -> &'static Setting {
    let mut i = 0;
    while i < SETTINGS.len() {
        if same(SETTINGS[i].key.as_bytes(), key.as_bytes()) {
            return &SETTINGS[i];
        }
        i += 1;
    }
    panic!("a setting is read that has no row in SETTINGS (src/config/table.rs)");
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `setting!("comet.poll_timeout")`: that key's row, found at compile time
/// (a `const` item, not a `const { }` block: `cargo check` evaluates the
/// former only).
macro_rules! setting {
    ($key:literal) => {{
        const SETTING: &$crate::config::table::Setting = $crate::config::table::find($key);
        SETTING
    }};
}
pub(super) use setting;

#[cfg(test)]
mod tests;
