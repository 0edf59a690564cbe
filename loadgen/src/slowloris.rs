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
//! The two sides live in `trickle.rs` and `users.rs`; this file starts
//! them, samples the server and gathers the figures.

use crate::cli::Opts;
use crate::report::{Latency, Report};
use crate::sys;
use crate::trickle::{Tally, Trickle};
use crate::users::{User, Users};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The figures of one `slowloris` run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SlowlorisFigures {
    pub connections: usize,
    pub trickle_interval_secs: f64,
    pub opened: u64,
    /// Connects after a close or refusal (`--reconnect`).
    pub reconnects: u64,
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
            "trickling     {} asked, {} opened ({} reconnects), {} refused at connect, \
             {} closed by the server, {} still open; {} bytes in all, one per {:.1}s",
            self.connections,
            self.opened,
            self.reconnects,
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
        reconnect: opts.reconnect,
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
    fig.reconnects = load(&tally.reconnects);
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
