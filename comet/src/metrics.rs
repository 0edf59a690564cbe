//! What a channel reports, through the `metrics` facade: nothing is kept
//! or exported here. An app installs a recorder (this crate's server serves the
//! Prometheus text format at `/metrics`); without one every call is a
//! no-op. Handles are registered once per channel, so the hot path only
//! bumps an atomic.

use metrics::{Counter, Gauge, Histogram};

/// Clients of the channel (all nodes), refreshed every reap interval.
pub const CLIENTS: &str = "comet_clients";
/// Polls this node holds (refreshed with the client count, every reap
/// interval: a gauge bumped per poll would cost the hot path a contended
/// compare-and-swap).
pub const POLLS_WAITING: &str = "comet_polls_waiting";
pub const MESSAGES_SENT: &str = "comet_messages_sent_total";
/// Messages in poll replies (one message to a hundred polls counts 100).
pub const MESSAGES_DELIVERED: &str = "comet_messages_delivered_total";
pub const POLL_TIMEOUTS: &str = "comet_poll_timeouts_total";
pub const IDLE_REMOVALS: &str = "comet_idle_removals_total";
/// Calls the provider could not answer (Redis unreachable).
pub const PROVIDER_ERRORS: &str = "comet_provider_errors_total";
/// How long polls were held, seconds.
pub const POLL_HOLD: &str = "comet_poll_hold_seconds";

/// Buckets for [`POLL_HOLD`]: from an immediate answer to a full
/// connection timeout.
pub const POLL_HOLD_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
];

/// Describes every metric (help text for the exporter).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(CLIENTS, "Clients of the channel, over all nodes.");
    describe_gauge!(POLLS_WAITING, "Polls this node holds now.");
    describe_counter!(
        MESSAGES_SENT,
        "Messages appended to the channel from this node."
    );
    describe_counter!(
        MESSAGES_DELIVERED,
        "Messages carried by poll replies from this node."
    );
    describe_counter!(POLL_TIMEOUTS, "Polls answered with a timeout.");
    describe_counter!(IDLE_REMOVALS, "Idle clients removed by this node's reaper.");
    describe_counter!(
        PROVIDER_ERRORS,
        "Provider calls that failed (store unreachable)."
    );
    describe_histogram!(POLL_HOLD, Unit::Seconds, "How long polls were held.");
}

/// One channel's handles.
pub(super) struct ChannelMetrics {
    pub clients: Gauge,
    pub polls_waiting: Gauge,
    pub sent: Counter,
    pub delivered: Counter,
    pub timeouts: Counter,
    pub idle_removals: Counter,
    pub provider_errors: Counter,
    pub hold: Histogram,
}

impl ChannelMetrics {
    pub fn new(channel: &str) -> Self {
        let labels = [("channel", channel.to_owned())];
        Self {
            clients: metrics::gauge!(CLIENTS, &labels),
            polls_waiting: metrics::gauge!(POLLS_WAITING, &labels),
            sent: metrics::counter!(MESSAGES_SENT, &labels),
            delivered: metrics::counter!(MESSAGES_DELIVERED, &labels),
            timeouts: metrics::counter!(POLL_TIMEOUTS, &labels),
            idle_removals: metrics::counter!(IDLE_REMOVALS, &labels),
            provider_errors: metrics::counter!(PROVIDER_ERRORS, &labels),
            hold: metrics::histogram!(POLL_HOLD, &labels),
        }
    }
}
