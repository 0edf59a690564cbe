//! The HTTP front's settings (`HTTP_*`, the `[http]` table): its deadlines
//! and caps (their defaults and bounds: [`SETTINGS`](super::table::SETTINGS)).

use super::read::Reader;
use super::table::setting;
use super::ConfigError;
use comet::serve::Limits;

pub(super) fn limits(r: &mut Reader) -> Result<Limits, ConfigError> {
    Ok(Limits {
        head_timeout: r.duration(setting!("http.head_timeout"))?,
        min_body_rate: r.count(setting!("http.min_body_rate"))?,
        write_timeout: r.duration(setting!("http.write_timeout"))?,
        keepalive_timeout: r.duration(setting!("http.keepalive_timeout"))?,
        tcp_keepalive: r.duration(setting!("http.tcp_keepalive"))?,
        max_connections: r.count(setting!("http.max_connections"))?,
        max_connections_per_addr: r.count(setting!("http.max_connections_per_addr"))?,
        drain_timeout: r.duration(setting!("http.drain_timeout"))?,
    })
}
