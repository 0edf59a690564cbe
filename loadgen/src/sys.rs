//! Operating-system plumbing: the file-descriptor limit, loopback source
//! addresses, the wall clock, the kernel's receive timestamps and a
//! process's resident memory.
//!
//! Why each exists: tens of thousands of held polls need as many sockets
//! (so the soft fd limit is raised to the hard one), and one source address
//! has only ~28 000 ephemeral ports, so connections are spread over
//! 127.0.0.1, 127.0.0.2, … with `IP_BIND_ADDRESS_NO_PORT` (the port is then
//! picked per destination at connect time, not reserved at bind time).

use anyhow::{bail, Context};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
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
    connect_with(server, source, None).await
}

/// As [`connect`], with `SO_RCVBUF` set to `rcvbuf` bytes before the
/// handshake (so the window the peer sees is small from the start: a
/// reader that never reads then stalls the peer's writes after a few kB).
pub async fn connect_with(
    server: SocketAddr,
    source: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(source) = source {
        // Failure is harmless (older kernels): bind then reserves a port.
        let _ = set_int_option(&socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1);
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    stamp_arrivals(&stream)?;
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

/// Asks the kernel to stamp every read on `stream` with the time its bytes
/// arrived (`SO_TIMESTAMPNS`, wall clock): see [`recv_stamped`]. The kernel
/// starts stamping a moment after the first socket of the system asks (long
/// before a run's clients have logged in and sends begin); a read without
/// a stamp is timed when read.
pub fn stamp_arrivals(stream: &impl AsRawFd) -> io::Result<()> {
    set_int_option(stream, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// `setsockopt` of an integer option.
pub fn set_int_option(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a plain setsockopt on a socket the caller owns, with a c_int
    // value that lives for the call.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `recvmsg` into `buf`: the bytes read, and when the kernel received
/// the last of them (nanoseconds since the Unix epoch; 0 if the socket
/// gave no timestamp).
///
/// Why: a simulated client's latency ends when its reply reaches its
/// socket. With a thousand clients on a few threads, the moment the load
/// generator gets round to reading that socket is later by however many
/// other clients' replies it handles first: its own queue, which a real
/// browser on its own machine does not have. Both are reported (see
/// `worker.rs`).
pub fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one `timespec` control message, 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all alive
    // and writable for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut arrived = 0;
    // SAFETY: the CMSG_* walk stays within `msg_controllen` as set by the
    // kernel; the timestamp is read unaligned from its control message.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                arrived = (ts.tv_sec as u64)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, arrived))
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

/// Open file descriptors of a process (its sockets, mostly): how many
/// connections a server still holds, seen from outside.
pub fn open_fds(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&path).with_context(|| format!("cannot read {path}"))?;
    Ok(entries.count() as u64)
}

/// The kernel's memory in TCP socket buffers, machine-wide, in kB (the
/// `mem` pages of `/proc/net/sockstat`): bytes a server has handed to the
/// kernel leave its RSS but stay pinned here while a peer does not read.
pub fn tcp_mem_kb() -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string("/proc/net/sockstat").context("cannot read /proc/net/sockstat")?;
    parse_tcp_mem_pages(&text)
        .map(|pages| pages * page_size() / 1024)
        .context("no TCP mem in /proc/net/sockstat")
}

fn parse_tcp_mem_pages(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// The arrival stamp of a read lies between the peer's write and our
    /// read, and reading with it returns the bytes written.
    #[test]
    fn reads_carry_the_kernels_arrival_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        stamp_arrivals(&client).unwrap();
        // The kernel turns receive stamping on for the whole system a
        // moment after the first socket asks (from a work queue): until
        // then reads carry no stamp (0, which the workers treat as "use
        // the read time"). Wait for the first stamped read.
        let mut buf = [0u8; 64];
        let mut tries = 0;
        loop {
            server.write_all(b".").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
            let (n, arrived) = recv_stamped(client.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(n, 1);
            if arrived != 0 {
                break;
            }
            tries += 1;
            assert!(tries < 400, "no receive timestamp after 2 s");
        }

        let before_write = unix_nanos();
        server.write_all(b"hello, stamped").unwrap();
        // Let the bytes sit in the socket for a while: the stamp must be
        // when they arrived, not when they were read.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (n, arrived) = recv_stamped(client.as_raw_fd(), &mut buf).unwrap();
        let after_read = unix_nanos();

        assert_eq!(&buf[..n], b"hello, stamped");
        assert!(
            arrived >= before_write,
            "stamp {arrived} before the write {before_write}"
        );
        assert!(
            arrived + 20_000_000 <= after_read,
            "stamp {arrived} is not ~30 ms before the read {after_read}"
        );
    }

    #[test]
    fn tcp_memory_is_the_mem_pages_of_the_tcp_line() {
        let sockstat = "sockets: used 34\nTCP: inuse 6 orphan 0 tw 199 alloc 6 mem 132\n\
                        UDP: inuse 0 mem 7\n";
        assert_eq!(parse_tcp_mem_pages(sockstat), Some(132));
        assert_eq!(parse_tcp_mem_pages("UDP: inuse 0 mem 7\n"), None);
    }

    /// Nothing to read is `WouldBlock` (the caller waits for readiness),
    /// not a zero-length read, which would mean the peer closed.
    #[test]
    fn an_empty_socket_would_block() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let mut buf = [0u8; 8];
        let error = recv_stamped(client.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
