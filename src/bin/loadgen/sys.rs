//! Operating-system plumbing: the file-descriptor limit, loopback source
//! addresses, the wall clock and a process's resident memory.
//!
//! Why each exists: tens of thousands of held polls need as many sockets
//! (so the soft fd limit is raised to the hard one), and one source address
//! has only ~28 000 ephemeral ports, so connections are spread over
//! 127.0.0.1, 127.0.0.2, … with `IP_BIND_ADDRESS_NO_PORT` (the port is then
//! picked per destination at connect time, not reserved at bind time).

use anyhow::{bail, Context};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// The loopback source address for connection number `index`, out of
/// `spread` addresses (127.0.0.1 … 127.0.0.spread). `None` for an IPv6 or
/// non-loopback server, or when `spread` is 0 (let the kernel choose).
pub fn source_for(server: SocketAddr, index: usize, spread: usize) -> Option<IpAddr> {
    match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && spread > 0 => {
            let last = 1 + (index % spread.min(254)) as u8;
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        }
        _ => None,
    }
}

/// Connects to `server`, from `source` if given (bound before connecting).
pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        let one: libc::c_int = 1;
        // SAFETY: a plain setsockopt on a socket we own, with a c_int value.
        // Failure is harmless (older kernels): bind then reserves a port.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Now, in nanoseconds since the Unix epoch: comparable across processes
/// on one machine, which is what end-to-end latency needs.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `VmRSS` of a process, in kB.
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .with_context(|| format!("odd VmRSS line in {path}: {line}"))?;
            return Ok(kb);
        }
    }
    bail!("no VmRSS in {path}")
}

/// Summed `VmRSS` of several processes (one per server node), in kB.
pub fn total_rss_kb(pids: &[u32]) -> anyhow::Result<Option<u64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = 0;
    for pid in pids {
        total += rss_kb(*pid)?;
    }
    Ok(Some(total))
}
