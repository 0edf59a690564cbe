//! The HTTP front's settings (`HTTP_*`, the `[http]` table): its deadlines
//! and caps, each defaulting to [`Limits::default`].
//!
//! The upper bounds keep the values inside what the kernel and the timers
//! take: `TCP_KEEPIDLE` stops at 32 767 s, and `TCP_USER_TIMEOUT` (twice
//! the keepalive, in milliseconds) must fit a `u32`.

use super::read::Reader;
use super::ConfigError;
use comet::serve::Limits;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

pub(super) fn limits(r: &mut Reader) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    Ok(Limits {
        head_timeout: r.duration(
            "HTTP_HEAD_TIMEOUT",
            "http.head_timeout",
            d.head_timeout,
            HOUR,
        )?,
        min_body_rate: r.count(
            "HTTP_MIN_BODY_RATE",
            "http.min_body_rate",
            d.min_body_rate,
            1..=u64::from(u32::MAX),
        )?,
        write_timeout: r.duration(
            "HTTP_WRITE_TIMEOUT",
            "http.write_timeout",
            d.write_timeout,
            HOUR,
        )?,
        keepalive_timeout: r.duration(
            "HTTP_KEEPALIVE_TIMEOUT",
            "http.keepalive_timeout",
            d.keepalive_timeout,
            24 * HOUR,
        )?,
        tcp_keepalive: r.duration(
            "HTTP_TCP_KEEPALIVE",
            "http.tcp_keepalive",
            d.tcp_keepalive,
            2 * HOUR,
        )?,
        max_connections: r.count(
            "HTTP_MAX_CONNECTIONS",
            "http.max_connections",
            d.max_connections,
            1..=10_000_000,
        )?,
        max_connections_per_addr: r.count(
            "HTTP_MAX_CONNECTIONS_PER_ADDR",
            "http.max_connections_per_addr",
            d.max_connections_per_addr,
            0..=10_000_000,
        )?,
        drain_timeout: r.duration(
            "HTTP_DRAIN_TIMEOUT",
            "http.drain_timeout",
            d.drain_timeout,
            HOUR,
        )?,
    })
}
