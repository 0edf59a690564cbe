//! [`Settings`]: a channel's timeouts and limits, and their defaults.

use std::time::Duration;

/// Channel settings. The timeouts are the defaults for new clients.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a poll is held with nothing to say before it answers timeout.
    pub connection_timeout: Duration,
    /// How long a client may go without polling before it is removed.
    pub idle_timeout: Duration,
    /// How often idle clients are looked for.
    pub reap_interval: Duration,
    /// Concurrent polls one client may hold on one node (tabs, retries).
    pub max_polls_per_client: usize,
    /// Concurrent polls this node holds, over all channels; more get `503`.
    pub max_polls: usize,
    /// Clients a channel may have (all nodes together); more are refused.
    /// Checked before each insert, so nodes racing may overshoot slightly.
    pub max_clients: usize,
    /// Most messages in one poll reply; the client polls again for the rest.
    pub batch_limit: usize,
    /// Largest poll body accepted by the channel route.
    pub max_body_bytes: usize,
    /// Longest display name, in characters.
    pub max_display_name_chars: usize,
    /// Longest wait for one provider call; past it the call fails with
    /// [`CometError::Unavailable`](crate::CometError::Unavailable).
    pub provider_timeout: Duration,
    /// How long joins and leaves are collected before they go out as one
    /// presence message (per channel, per node; see `presence`).
    pub presence_window: Duration,
    /// Most members one presence message lists per list (joined, left);
    /// the rest are counted.
    pub presence_cap: usize,
}

/// [`Settings::provider_timeout`] unless set: well under a second, so a
/// user waiting on a send or a login hears `503` before giving up.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_millis(800);

/// [`Settings::presence_window`] unless set: short enough that a join
/// reads as live, long enough that a crowd arriving at a few thousand a
/// second makes a handful of messages a second, not thousands.
pub const DEFAULT_PRESENCE_WINDOW: Duration = Duration::from_millis(250);

/// [`Settings::presence_cap`] unless set: enough that an ordinary window
/// lists everyone (readers then need no re-read), small enough that a
/// crowd's message stays a few kilobytes for each of its clients.
pub const DEFAULT_PRESENCE_CAP: usize = 32;

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(30),
            reap_interval: Duration::from_secs(1),
            max_polls_per_client: 6,
            max_polls: 20_000,
            max_clients: 100_000,
            batch_limit: 500,
            max_body_bytes: 4096,
            max_display_name_chars: 32,
            provider_timeout: DEFAULT_PROVIDER_TIMEOUT,
            presence_window: DEFAULT_PRESENCE_WINDOW,
            presence_cap: DEFAULT_PRESENCE_CAP,
        }
    }
}
