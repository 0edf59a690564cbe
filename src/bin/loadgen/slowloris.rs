//! `slowloris`: the slow-head attack of issue 13, and what a normal user
//! sees meanwhile. Thousands of connections from one address (127.0.0.1)
//! each trickle a request head, one byte every `--trickle-interval`
//! seconds, and never finish it: a server whose read timeout restarts on
//! every read, with no cap on connections, holds every one of them
//! forever. Meanwhile a few normal users, each on its own address
//! (127.0.0.2, …), log in on a fresh connection, hold a poll and send, in
//! a loop, as a browser does.
//!
//! Reported: the users' login, send and poll-answer latency (send → the
//! arrival of the poll reply carrying that message) and their errors; and
//! for the trickling connections how many were opened, refused at connect,
//! closed by the server (and after how long: at once means refused at
//! accept, later means a head deadline), answered with a status, or still
//! open at the end. The server's RSS and open fds are sampled too.
//!
//! The trickle is spread evenly: connection `i` of `n` connects at
//! `i/n` of an interval and then writes one byte per interval (see
//! [`trickle_at`]), so the attack costs the load generator ~n/interval
//! tiny writes a second, not bursts of thousands.

use crate::cli::Opts;
use crate::http::Conn;
use crate::proto::{self, CallError, PollRequest};
use crate::report::{Latency, Report};
use crate::stats::{AtomicHistogram, Errors};
use crate::sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The figures of one `slowloris` run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SlowlorisFigures {
    pub connections: usize,
    pub trickle_interval_secs: f64,
    pub opened: u64,
    pub connect_failed: u64,
    /// Ended by the server: EOF, reset, or a write refused.
    pub closed_by_server: u64,
    /// Connect → closed by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_after: Option<Latency>,
    /// Status lines the server wrote on trickling connections, by status.
    pub answered: BTreeMap<u16, u64>,
    pub still_open: u64,
    pub bytes_trickled: u64,
    pub rss_before_kb: u64,
    pub rss_peak_kb: u64,
    pub fds_before: u64,
    pub fds_peak: u64,
    pub users: usize,
    pub logins: u64,
    pub sends: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<Latency>,
    pub user_errors: u64,
}

impl SlowlorisFigures {
    pub fn human(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "trickling     {} asked, {} opened, {} refused at connect, {} closed by the server, \
             {} still open; {} bytes in all, one per {:.1}s",
            self.connections,
            self.opened,
            self.connect_failed,
            self.closed_by_server,
            self.still_open,
            self.bytes_trickled,
            self.trickle_interval_secs
        );
        if let Some(l) = &self.closed_after {
            let _ = writeln!(
                s,
                "  closed after p50 {:.2}s  p99 {:.2}s  max {:.2}s from connect",
                l.p50_ms / 1e3,
                l.p99_ms / 1e3,
                l.max_ms / 1e3
            );
        }
        if !self.answered.is_empty() {
            let _ = writeln!(s, "  answered      {:?}", self.answered);
        }
        let _ = writeln!(
            s,
            "server        RSS {:.1} → peak {:.1} MB; fds {} → peak {}",
            self.rss_before_kb as f64 / 1024.0,
            self.rss_peak_kb as f64 / 1024.0,
            self.fds_before,
            self.fds_peak
        );
        let _ = writeln!(
            s,
            "users         {} users: {} logins, {} sends, {} errors",
            self.users, self.logins, self.sends, self.user_errors
        );
        for (label, l) in [
            ("  login      ", &self.login),
            ("  send       ", &self.send),
            ("  poll answer", &self.poll),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "{label} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
                    l.p50_ms, l.p99_ms, l.max_ms, l.samples
                );
            }
        }
    }
}

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
struct Tally {
    opened: AtomicU64,
    connect_failed: AtomicU64,
    closed: AtomicU64,
    still_open: AtomicU64,
    bytes: AtomicU64,
    closed_after: AtomicHistogram,
    answered: Mutex<BTreeMap<u16, u64>>,
}

/// `HTTP/1.1 408 …` → 408.
fn status_of(first_bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(first_bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

struct Trickle {
    server: SocketAddr,
    source: Option<IpAddr>,
    start: Instant,
    interval: Duration,
    n: usize,
    prefix: Arc<[u8]>,
    tally: Arc<Tally>,
    cancel: CancellationToken,
}

impl Trickle {
    async fn run(self: Arc<Self>, i: usize) {
        let t = &*self;
        tokio::select! {
            _ = t.cancel.cancelled() => return,
            _ = tokio::time::sleep_until(t.start + trickle_at(i, t.n, 0, t.interval)) => {}
        }
        let connected = Instant::now();
        let stream = tokio::select! {
            _ = t.cancel.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(10), sys::connect(t.server, t.source)) => r,
        };
        let stream = match stream {
            Ok(Ok(s)) => s,
            _ => {
                t.tally.connect_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        t.tally.opened.fetch_add(1, Ordering::Relaxed);
        let mut k = 0u64;
        let mut answered = false;
        let mut buf = [0u8; 256];
        let closed = loop {
            let at = t.start + trickle_at(i, t.n, k, t.interval);
            tokio::select! {
                _ = t.cancel.cancelled() => break false,
                _ = tokio::time::sleep_until(at) => {
                    match stream.try_write(&[trickle_byte(&t.prefix, k)]) {
                        Ok(_) => {
                            k += 1;
                            t.tally.bytes.fetch_add(1, Ordering::Relaxed);
                        }
                        // A full send buffer: the server is not reading.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => k += 1,
                        Err(_) => break true,
                    }
                }
                r = stream.readable() => {
                    if r.is_err() {
                        break true;
                    }
                    match stream.try_read(&mut buf) {
                        Ok(0) => break true,
                        Ok(n) => {
                            if !answered {
                                answered = true;
                                let status = status_of(&buf[..n]).unwrap_or(0);
                                let mut map = t.tally.answered.lock().expect("tally poisoned");
                                *map.entry(status).or_default() += 1;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => break true,
                    }
                }
            }
        };
        if closed {
            t.tally.closed.fetch_add(1, Ordering::Relaxed);
            let ns = connected.elapsed().as_nanos() as u64;
            t.tally.closed_after.record(ns);
        } else {
            t.tally.still_open.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The normal users' measurements.
#[derive(Default)]
struct Users {
    login: AtomicHistogram,
    send: AtomicHistogram,
    poll: AtomicHistogram,
    logins: AtomicU64,
    sends: AtomicU64,
    errors: Errors,
}

struct User {
    index: usize,
    server: SocketAddr,
    source: Option<IpAddr>,
    run: String,
    limit: Duration,
    /// Send number `s` of this user goes out at `first + s * every`.
    first: Instant,
    every: Duration,
    end: Instant,
    sends_per_login: usize,
    out: Arc<Users>,
}

fn ns(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

async fn timed<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(CallError::Timeout))
}

impl User {
    /// When send number `seq` of this user is due.
    fn slot(&self, seq: u64) -> Instant {
        self.first + self.every.mul_f64(seq as f64)
    }

    async fn run(self) {
        let mut seq = 0u64;
        let mut login_no = 0;
        let mut buf = Vec::new();
        while self.slot(seq) < self.end {
            let name = format!("lg{}-u{}-{}", self.run, self.index, login_no);
            login_no += 1;
            let t = Instant::now();
            let login = timed(self.limit, async {
                let mut conn = Conn::connect(self.server, self.source).await?;
                let token = proto::login(&mut conn, &name, &mut buf).await?;
                Ok((conn, token))
            })
            .await;
            let (mut conn, token) = match login {
                Ok(v) => v,
                Err(e) => {
                    self.out.errors.add("user_login", &e.kind());
                    seq += 1;
                    tokio::time::sleep_until(self.slot(seq)).await;
                    continue;
                }
            };
            self.out.login.record(ns(t));
            self.out.logins.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.session(&mut conn, &token, &mut seq).await {
                self.out.errors.add(e.0, &e.1.kind());
                tokio::time::sleep_until(self.slot(seq)).await;
            }
            let out = timed(self.limit, async {
                if conn.closed {
                    conn = Conn::connect(self.server, self.source).await?;
                }
                proto::logout(&mut conn, &token, &mut buf).await
            })
            .await;
            if let Err(e) = out {
                self.out.errors.add("user_logout", &e.kind());
            }
        }
    }

    /// Up to `sends_per_login` sends, each with a poll held on a second
    /// connection, as a browser does.
    async fn session(
        &self,
        conn: &mut Conn,
        token: &str,
        seq: &mut u64,
    ) -> Result<(), (&'static str, CallError)> {
        let mut buf = Vec::new();
        let mut cursor = timed(self.limit, proto::recent_cursor(conn, token, &mut buf))
            .await
            .map_err(|e| ("user_history", e))?;
        let mut poller = timed(self.limit, async {
            Ok(Conn::connect(self.server, self.source).await?)
        })
        .await
        .map_err(|e| ("user_poll", e))?;
        let request = PollRequest::new(&self.server.to_string(), token);
        let prefix = proto::run_prefix(&self.run);
        let mut form = String::new();
        for _ in 0..self.sends_per_login {
            let at = self.slot(*seq);
            if at >= self.end {
                break;
            }
            tokio::time::sleep_until(at).await;
            let mine = *seq;
            *seq += 1;
            // The poll is held (its head came back) before the send.
            let mut head = timed(self.limit, async {
                proto::send_poll(&mut poller, &request, Some(&cursor), true).await?;
                Ok(poller.read_head().await?)
            })
            .await
            .map_err(|e| ("user_poll", e))?;
            if head.status != 200 {
                return Err(("user_poll", CallError::Status(head.status)));
            }
            let t = Instant::now();
            let text = proto::message_text(&self.run, self.index, mine, sys::unix_nanos(), 0);
            let send = timed(self.limit, async {
                proto::send_message(conn, token, &text, &mut form, &mut buf).await?;
                Ok(ns(t))
            });
            let answer = timed(self.limit, async {
                let mut body = Vec::new();
                loop {
                    poller.read_body(&head, &mut body).await?;
                    let reply = proto::parse_poll(&body)?;
                    let mut found = false;
                    for m in &reply.messages {
                        let text = m.c.as_ref().and_then(|c| c.m.as_deref()).unwrap_or("");
                        found |= proto::parse_text(text, &prefix)
                            .is_some_and(|(p, s, _)| p == self.index && s == mine);
                    }
                    if let Some(last) = reply.messages.last() {
                        cursor = last.id.clone().into_owned();
                    }
                    if found {
                        return Ok(ns(t));
                    }
                    proto::send_poll(&mut poller, &request, Some(&cursor), false).await?;
                    head = poller.read_head().await?;
                    if head.status != 200 {
                        return Err(CallError::Status(head.status));
                    }
                }
            });
            let (sent, answered) = tokio::join!(send, answer);
            let sent = sent.map_err(|e| ("user_send", e))?;
            self.out.send.record(sent);
            self.out.sends.fetch_add(1, Ordering::Relaxed);
            let answered = answered.map_err(|e| ("user_poll", e))?;
            self.out.poll.record(answered);
        }
        Ok(())
    }
}

/// The address of the trickling connections, and of normal user `u`.
fn attacker(server: SocketAddr) -> Option<IpAddr> {
    server
        .ip()
        .is_loopback()
        .then_some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        .filter(|_| server.is_ipv4())
}

fn user_source(server: SocketAddr, u: usize) -> Option<IpAddr> {
    attacker(server).map(|_| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (u % 250) as u8)))
}

/// Summed RSS and open fds of the server processes (zeros without pids).
fn observe(pids: &[u32]) -> (u64, u64) {
    let rss = sys::total_rss_kb(pids).ok().flatten().unwrap_or(0);
    let fds = pids.iter().filter_map(|p| sys::open_fds(*p).ok()).sum();
    (rss, fds)
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let started = std::time::Instant::now();
    let server = opts.servers[0];
    let interval = Duration::from_secs_f64(opts.trickle_interval);
    let (rss_before, fds_before) = observe(&opts.server_pids);
    let mut fig = SlowlorisFigures {
        connections: opts.connections,
        trickle_interval_secs: opts.trickle_interval,
        users: opts.clients,
        rss_before_kb: rss_before,
        rss_peak_kb: rss_before,
        fds_before,
        fds_peak: fds_before,
        ..Default::default()
    };
    let say = |msg: std::fmt::Arguments<'_>| {
        if !opts.quiet {
            eprintln!("[slowloris] {msg}");
        }
    };
    let cancel = CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let start = Instant::now() + Duration::from_millis(100);
    let trickle = Arc::new(Trickle {
        server,
        source: attacker(server),
        start,
        interval,
        n: opts.connections,
        prefix: format!(
            "GET /healthz HTTP/1.1\r\nHost: {server}\r\nUser-Agent: loadgen-slowloris\r\nX-Trickle: "
        )
        .into_bytes()
        .into(),
        tally: tally.clone(),
        cancel: cancel.clone(),
    });
    let tasks: Vec<_> = (0..opts.connections)
        .map(|i| tokio::spawn(trickle.clone().run(i)))
        .collect();
    say(format_args!(
        "{} connections trickling from {:?}, one byte per {:.1}s each",
        opts.connections, trickle.source, opts.trickle_interval
    ));

    // The users start once every trickling connection has had its turn.
    let users = Arc::new(Users::default());
    let first = start + interval + Duration::from_secs(1);
    let end = first + Duration::from_secs_f64(opts.duration);
    let every = Duration::from_secs_f64(opts.clients as f64 / opts.rate);
    let user_tasks: Vec<_> = (0..opts.clients)
        .map(|u| {
            tokio::spawn(
                User {
                    index: u,
                    server,
                    source: user_source(server, u),
                    run: opts.run.clone(),
                    limit: Duration::from_secs_f64(opts.request_timeout),
                    first: first + Duration::from_secs_f64(u as f64 / opts.rate),
                    every,
                    end,
                    sends_per_login: opts.sends_per_login,
                    out: users.clone(),
                }
                .run(),
            )
        })
        .collect();
    let mut all_users = futures::future::join_all(user_tasks);
    let mut next_note = first;
    loop {
        tokio::select! {
            _ = &mut all_users => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let (rss, fds) = observe(&opts.server_pids);
        fig.rss_peak_kb = fig.rss_peak_kb.max(rss);
        fig.fds_peak = fig.fds_peak.max(fds);
        if Instant::now() >= next_note {
            next_note += Duration::from_secs(10);
            say(format_args!(
                "{} open, {} closed by the server, {} refused; server {} fds; {} user sends",
                tally.opened.load(Ordering::Relaxed),
                tally.closed.load(Ordering::Relaxed),
                tally.connect_failed.load(Ordering::Relaxed),
                fds,
                users.sends.load(Ordering::Relaxed)
            ));
        }
    }
    cancel.cancel();
    futures::future::join_all(tasks).await;

    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    fig.opened = load(&tally.opened);
    fig.connect_failed = load(&tally.connect_failed);
    fig.closed_by_server = load(&tally.closed);
    fig.still_open = load(&tally.still_open);
    fig.bytes_trickled = load(&tally.bytes);
    fig.closed_after = Latency::from_histogram(&tally.closed_after.snapshot());
    fig.answered = tally.answered.lock().expect("tally poisoned").clone();
    fig.logins = load(&users.logins);
    fig.sends = load(&users.sends);
    fig.login = Latency::from_histogram(&users.login.snapshot());
    fig.send = Latency::from_histogram(&users.send.snapshot());
    fig.poll = Latency::from_histogram(&users.poll.snapshot());
    let errors = users.errors.snapshot();
    fig.user_errors = errors.values().sum();
    Ok(Report {
        scenario: opts.scenario.name().to_owned(),
        run: opts.run.clone(),
        servers: opts.servers.iter().map(|s| s.to_string()).collect(),
        procs: 1,
        clients: opts.clients,
        logged_in: fig.logins as usize,
        sent: fig.sends,
        rss_before_kb: Some(fig.rss_before_kb),
        connections: Some(opts.connections),
        errors,
        elapsed_secs: started.elapsed().as_secs_f64(),
        slowloris: Some(fig),
        ..Default::default()
    })
}

/// Checks the options before anything starts: every trickling connection
/// needs a descriptor of this process.
pub fn check(opts: &Opts, fd_limit: u64) -> anyhow::Result<()> {
    let needed = opts.connections as u64 + 4 * opts.clients as u64 + 64;
    anyhow::ensure!(
        needed <= fd_limit,
        "slowloris: {} connections need ~{needed} descriptors, the limit is {fd_limit}",
        opts.connections
    );
    Ok(())
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
}
