//! The connection loop's deadlines and caps: what a client must do within
//! how long, and how many connections one node (and one address) may hold.
//!
//! Why each exists: every one of them closes a way for a client to hold
//! server memory or sockets while spending almost nothing itself. A head
//! or body trickled a byte at a time (slowloris) meets a *total* deadline,
//! not one that restarts on every read; a reply the client never reads
//! meets the write deadline, and its bytes are freed with the connection;
//! a silent peer (a laptop closed mid-poll) is found by TCP keepalive and
//! `TCP_USER_TIMEOUT`; and the connection caps stop one address (or all of
//! them) from taking every file descriptor the process has.
//!
//! `src/config.rs` fills this from `HTTP_*` settings; [`Limits::default`]
//! is what a server gets without them.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive whole within this, counted from its
    /// first byte (`HTTP_HEAD_TIMEOUT`). Beyond: `408`, connection closed.
    pub head_timeout: Duration,
    /// A request body must arrive at least this fast, in bytes per second
    /// (`HTTP_MIN_BODY_RATE`): its deadline is [`head_timeout`](Self::head_timeout)
    /// plus its length at this rate. Beyond: `408`, connection closed.
    pub min_body_rate: u32,
    /// A response (or one piece of a streamed one) must be taken by the
    /// client within this (`HTTP_WRITE_TIMEOUT`); otherwise the connection
    /// is closed and the reply's bytes freed.
    pub write_timeout: Duration,
    /// A kept-alive connection with no request started is closed after
    /// this (`HTTP_KEEPALIVE_TIMEOUT`).
    pub keepalive_timeout: Duration,
    /// Idle time before the kernel probes a silent peer (TCP keepalive);
    /// the connection is dropped after three unanswered probes, and sent
    /// data unacknowledged for twice this is given up on
    /// (`TCP_USER_TIMEOUT`) (`HTTP_TCP_KEEPALIVE`).
    pub tcp_keepalive: Duration,
    /// Open connections on this node (`HTTP_MAX_CONNECTIONS`); more are
    /// refused at accept with a bare `503`. Lowered at start-up to fit the
    /// process's open-file limit ([`fit_open_files`](Self::fit_open_files)).
    pub max_connections: usize,
    /// Open connections from one client address (`HTTP_MAX_CONNECTIONS_PER_ADDR`);
    /// 0: no cap beyond [`max_connections`](Self::max_connections). Off by
    /// default: behind a proxy every client shares the proxy's address.
    pub max_connections_per_addr: usize,
    /// The longest a graceful stop waits for requests in flight
    /// (`HTTP_DRAIN_TIMEOUT`); it returns as soon as the last is done.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(10),
            min_body_rate: 4096,
            write_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(75),
            tcp_keepalive: Duration::from_secs(60),
            max_connections: 50_000,
            max_connections_per_addr: 0,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept free of connections: the listener, Redis
/// connections, files served, logs.
const FD_RESERVE: u64 = 512;

impl Limits {
    /// How long a body of `length` bytes may take to arrive.
    pub fn body_timeout(&self, length: usize) -> Duration {
        let rate = u64::from(self.min_body_rate.max(1));
        self.head_timeout + Duration::from_millis((length as u64).saturating_mul(1000) / rate)
    }

    /// Lowers [`max_connections`](Self::max_connections) to sit below an
    /// open-file limit of `open_files`, keeping some descriptors for
    /// everything else: past that limit `accept` itself would fail, and the
    /// node could no longer open anything. Returns whether it lowered it.
    pub fn fit_open_files(&mut self, open_files: u64) -> bool {
        let reserve = (open_files / 2).min(FD_RESERVE);
        let fits = usize::try_from(open_files - reserve).unwrap_or(usize::MAX);
        if self.max_connections > fits {
            self.max_connections = fits.max(1);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_sits_below_the_open_file_limit() {
        let mut limits = Limits::default();
        assert!(limits.fit_open_files(20_000));
        assert_eq!(limits.max_connections, 20_000 - FD_RESERVE as usize);
        let mut small = Limits::default();
        assert!(small.fit_open_files(1024));
        assert_eq!(small.max_connections, 512);
        let mut roomy = Limits::default();
        assert!(!roomy.fit_open_files(1 << 20));
        assert_eq!(roomy.max_connections, Limits::default().max_connections);
    }

    #[test]
    fn a_body_deadline_grows_with_its_length_at_the_minimum_rate() {
        let limits = Limits {
            head_timeout: Duration::from_secs(2),
            min_body_rate: 1000,
            ..Limits::default()
        };
        assert_eq!(limits.body_timeout(0), Duration::from_secs(2));
        assert_eq!(limits.body_timeout(3000), Duration::from_secs(5));
    }
}
