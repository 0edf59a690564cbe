//! What happens between `accept` and a connection's first read: the
//! connection caps (per node, per client address) and the socket options.
//!
//! A connection over a cap is refused right away: a bare `503` written
//! only if the socket takes it at once (never waited on: the point is to
//! spend nothing on it), then closed. Refusals are counted in
//! `http_connections_refused_total{reason}`; open connections are the gauge
//! `http_connections_open`. Counting costs one atomic add per connection
//! (and a short lock per connection only when the per-address cap is on),
//! nothing per request.

use super::Limits;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// Counts open connections against the caps of [`Limits`].
pub struct Gate {
    max: usize,
    max_per_addr: usize,
    open: AtomicUsize,
    per_addr: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it (when the connection ends) gives
/// its place back.
pub struct Ticket {
    gate: Arc<Gate>,
    addr: Option<IpAddr>,
    /// In the `http_connections_open` gauge (not while being refused).
    counted: bool,
}

/// Why a connection was refused (the metric's `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Node,
    Address,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Node => "max_connections",
            Refused::Address => "max_connections_per_addr",
        }
    }
}

impl Gate {
    pub fn new(limits: &Limits) -> Arc<Self> {
        metrics::describe_counter!(
            "http_connections_refused_total",
            "Connections refused at accept, by the cap reached"
        );
        metrics::describe_gauge!("http_connections_open", "Open HTTP connections");
        metrics::describe_gauge!(
            "http_write_pending_bytes",
            "Reply bytes waiting for clients that have not taken them"
        );
        Arc::new(Self {
            max: limits.max_connections,
            max_per_addr: limits.max_connections_per_addr,
            open: AtomicUsize::new(0),
            per_addr: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Ticket, Refused> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Node);
        }
        let mut ticket = Ticket {
            gate: self.clone(),
            addr: None,
            counted: false,
        };
        if self.max_per_addr > 0 {
            let ip = peer.ip().to_canonical();
            let mut per_addr = self.per_addr.lock().unwrap_or_else(|p| p.into_inner());
            let n = per_addr.entry(ip).or_insert(0);
            if *n >= self.max_per_addr {
                drop(per_addr);
                // The ticket's drop gives the node place back.
                drop(ticket);
                return Err(Refused::Address);
            }
            *n += 1;
            ticket.addr = Some(ip);
        }
        metrics::gauge!("http_connections_open").increment(1.0);
        ticket.counted = true;
        Ok(ticket)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(ip) = self.addr {
            let mut per_addr = self.gate.per_addr.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per_addr.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_addr.remove(&ip);
                }
            }
        }
        if self.counted {
            metrics::gauge!("http_connections_open").decrement(1.0);
        }
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refuses `stream`: a bare `503` if the socket takes it without waiting,
/// then close.
pub fn refuse(stream: TcpStream, peer: SocketAddr, why: Refused) {
    metrics::counter!("http_connections_refused_total", "reason" => why.label()).increment(1);
    tracing::debug!(%peer, reason = why.label(), "connection refused");
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
}

/// No Nagle, TCP keepalive and `TCP_USER_TIMEOUT` on an accepted socket.
pub fn tune(stream: &TcpStream, limits: &Limits) {
    // No Nagle: a streamed response writes its head first and its body
    // later, and Nagle would hold the second write until the client's
    // delayed ACK (up to 40 ms).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    if let Err(error) = keepalive(stream, limits.tcp_keepalive) {
        tracing::debug!(%error, "cannot set TCP keepalive");
    }
}

/// Probes a peer silent for `idle` (every `idle / 3`, three times), and
/// gives up on sent data unacknowledged for `2 × idle`: a held poll from a
/// vanished client is then closed by the kernel (and the read watch of
/// `read.rs` cancels it) instead of lasting until the next write.
#[cfg(target_os = "linux")]
fn keepalive(stream: &TcpStream, idle: std::time::Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let secs = idle.as_secs().clamp(1, i32::MAX as u64 / 1000) as libc::c_int;
    let set = |level, name, value: libc::c_int| {
        // SAFETY: setsockopt reads one c_int from a pointer to a live local.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, secs * 2 * 1000)
}

#[cfg(not(target_os = "linux"))]
fn keepalive(stream: &TcpStream, _idle: std::time::Duration) -> std::io::Result<()> {
    let _ = stream;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4]) -> SocketAddr {
        SocketAddr::from((ip, 1234))
    }

    #[test]
    fn the_node_cap_refuses_past_its_count_and_frees_on_drop() {
        let gate = Gate::new(&Limits {
            max_connections: 2,
            ..Limits::default()
        });
        let a = gate.admit(peer([10, 0, 0, 1])).unwrap();
        let _b = gate.admit(peer([10, 0, 0, 2])).unwrap();
        assert_eq!(gate.admit(peer([10, 0, 0, 3])).err(), Some(Refused::Node));
        drop(a);
        assert!(gate.admit(peer([10, 0, 0, 3])).is_ok());
    }

    #[test]
    fn the_address_cap_counts_each_address_apart() {
        let gate = Gate::new(&Limits {
            max_connections: 10,
            max_connections_per_addr: 1,
            ..Limits::default()
        });
        let a = gate.admit(peer([10, 0, 0, 1])).unwrap();
        assert_eq!(
            gate.admit(peer([10, 0, 0, 1])).err(),
            Some(Refused::Address)
        );
        let _b = gate.admit(peer([10, 0, 0, 2])).unwrap();
        drop(a);
        let _c = gate.admit(peer([10, 0, 0, 1])).expect("a place again");
        // A refusal by address does not keep a node place.
        assert_eq!(gate.open.load(Ordering::Acquire), 2);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_sockets_get_keepalive_and_a_user_timeout() {
        use std::os::fd::AsRawFd;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let limits = Limits {
            tcp_keepalive: std::time::Duration::from_secs(9),
            ..Limits::default()
        };
        tune(&stream, &limits);
        let get = |level, name| {
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into `value`.
            let rc = unsafe {
                libc::getsockopt(
                    stream.as_raw_fd(),
                    level,
                    name,
                    (&mut value as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            value
        };
        assert_eq!(get(libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 9);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 3);
        assert_eq!(get(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 18_000);
    }
}
