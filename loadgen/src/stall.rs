//! `stall`: the stalled-reader attack of issue 13. Fill the history with
//! long messages, then open many connections with a tiny receive buffer,
//! each asking for a poll from before those messages (a reply of a few MB),
//! and never read. Each reply's bytes stay in the server until its write
//! ends, which without a write deadline is never: a few hundred bytes sent
//! by the attacker pin megabytes of server memory.
//!
//! What is measured, from outside the server: its RSS and open file
//! descriptors (`/proc/<pid>`) at baseline (history filled, one reply
//! served), at their peak during the attack, and after `--duration`
//! seconds (set it past the server's write deadline); then every stalled
//! connection is read to see whether the server closed it (the reply is cut
//! short by EOF or a reset) or kept writing (the whole reply arrives).
//!
//! The poll caps do not stop this (the slot is freed before the reply is
//! written), so one session may carry every connection; the server still
//! needs `COMET_MAX_POLLS_PER_CLIENT` high enough for polls that overlap
//! while their replies are built, and `CHAT_MAX_MESSAGE_CHARS` above
//! `--pad` (scripts/bench sets both).

use crate::cli::Opts;
use crate::http::{Conn, HttpError};
use crate::proto::{self, timed, CallError, PollRequest};
use crate::report::Report;
use crate::stats::Errors;
use crate::sys;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The server as seen from outside at one moment of the attack.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    pub secs: f64,
    pub rss_kb: u64,
    pub fds: u64,
    pub tcp_mem_kb: u64,
}

/// The figures of one `stall` run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StallFigures {
    pub connections: usize,
    pub sessions: usize,
    pub rcvbuf: u32,
    /// Messages written to the history before the attack.
    pub history_sent: u64,
    /// Body bytes of one poll reply from the attackers' cursor (read by a
    /// normal client before the attack).
    pub reply_bytes: u64,
    /// Poll requests written on stalled connections.
    pub stalled: usize,
    pub rss_start_kb: u64,
    /// History filled, one reply served: what the attack is compared with.
    pub rss_baseline_kb: u64,
    pub rss_peak_kb: u64,
    /// Seconds after the first stalled request when the peak was seen.
    pub rss_peak_secs: f64,
    /// After `after_secs` seconds of attack.
    pub rss_after_kb: u64,
    /// `rss_after_kb - rss_baseline_kb` (the acceptance bound is 50 MB).
    pub rss_excess_after_kb: i64,
    pub after_secs: f64,
    pub fds_baseline: u64,
    pub fds_peak: u64,
    pub fds_after: u64,
    /// Kernel memory in TCP buffers, machine-wide (`/proc/net/sockstat`):
    /// reply bytes the server handed to the kernel leave its RSS but stay
    /// pinned there while the reader stalls.
    pub tcp_mem_baseline_kb: u64,
    pub tcp_mem_peak_kb: u64,
    pub tcp_mem_after_kb: u64,
    /// Stalled connections the server closed (EOF or reset before the
    /// whole reply), kept open until the end (the whole reply arrived when
    /// read at last), or that neither ended nor finished when drained.
    pub closed_by_server: usize,
    pub completed: usize,
    pub still_open: usize,
    /// One sample every few seconds from the first stalled request.
    pub timeline: Vec<Sample>,
}

impl StallFigures {
    pub fn human(&self, s: &mut String) {
        let mb = |kb: u64| kb as f64 / 1024.0;
        let _ = writeln!(
            s,
            "attack        {} stalled readers (SO_RCVBUF {}), {} session(s), replies of {:.1} MB \
             ({} messages in the history)",
            self.stalled,
            self.rcvbuf,
            self.sessions,
            self.reply_bytes as f64 / 1e6,
            self.history_sent
        );
        let _ = writeln!(
            s,
            "server RSS    {:.1} MB at start, {:.1} MB baseline, {:.1} MB peak (at {:.1}s), \
             {:.1} MB after {:.0}s ({:+.1} MB over baseline)",
            mb(self.rss_start_kb),
            mb(self.rss_baseline_kb),
            mb(self.rss_peak_kb),
            self.rss_peak_secs,
            mb(self.rss_after_kb),
            self.after_secs,
            self.rss_excess_after_kb as f64 / 1024.0
        );
        let _ = writeln!(
            s,
            "server fds    {} baseline, {} peak, {} after",
            self.fds_baseline, self.fds_peak, self.fds_after
        );
        let _ = writeln!(
            s,
            "kernel TCP    {:.1} MB baseline, {:.1} MB peak, {:.1} MB after (machine-wide)",
            mb(self.tcp_mem_baseline_kb),
            mb(self.tcp_mem_peak_kb),
            mb(self.tcp_mem_after_kb)
        );
        let _ = writeln!(
            s,
            "connections   {} closed by the server, {} kept and completed, {} still open",
            self.closed_by_server, self.completed, self.still_open
        );
    }
}

/// One logged-in session and the cursor it had before the history filled.
struct Session {
    token: String,
    cursor: String,
}

/// Summed RSS and open fds of the server processes (zeros without pids),
/// and the kernel's TCP buffer memory.
fn observe(pids: &[u32]) -> anyhow::Result<(u64, u64, u64)> {
    let rss = sys::total_rss_kb(pids)?.unwrap_or(0);
    let mut fds = 0;
    for pid in pids {
        fds += sys::open_fds(*pid)?;
    }
    Ok((rss, fds, sys::tcp_mem_kb()?))
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let started = Instant::now();
    let server = opts.servers[0];
    let limit = Duration::from_secs_f64(opts.request_timeout);
    let errors = Errors::default();
    let mut fig = StallFigures {
        connections: opts.connections,
        sessions: opts.clients,
        rcvbuf: opts.rcvbuf,
        ..Default::default()
    };
    (fig.rss_start_kb, _, _) = observe(&opts.server_pids)?;
    let say = |msg: std::fmt::Arguments<'_>| {
        if !opts.quiet {
            eprintln!("[stall] {msg}");
        }
    };

    // Sessions first, so their cursors are older than the long messages.
    let mut conn = Conn::connect(server, None)
        .await
        .map_err(|e| anyhow!("cannot reach {server}: {e}"))?;
    let mut buf = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..opts.clients {
        let name = format!("lg{}-s{i}", opts.run);
        let session = timed(limit, async {
            let token = proto::login(&mut conn, &name, &mut buf).await?;
            let cursor = proto::recent_cursor(&mut conn, &token, None, &mut buf).await?;
            Ok(Session { token, cursor })
        })
        .await
        .map_err(|e| anyhow!("session {name} could not log in: {e}"))?;
        sessions.push(session);
    }
    let filler = timed(
        limit,
        proto::login(&mut conn, &format!("lg{}-fill", opts.run), &mut buf),
    )
    .await
    .map_err(|e| anyhow!("the filler could not log in: {e}"))?;
    let mut form = String::new();
    for seq in 0..opts.messages {
        let text = proto::message_text(&opts.run, 0, seq, sys::unix_nanos(), opts.pad);
        match timed(
            limit,
            proto::send_message(&mut conn, &filler, &text, None, &mut form, &mut buf),
        )
        .await
        {
            Ok(()) => fig.history_sent += 1,
            Err(e) => errors.add("fill", &e.kind()),
        }
    }
    if fig.history_sent == 0 {
        return Err(anyhow!(
            "no message of {} bytes could be sent (is CHAT_MAX_MESSAGE_CHARS above --pad?)",
            opts.pad
        ));
    }

    // One reply read normally: its size, and the server's baseline with
    // one such reply already built and sent.
    let probe = PollRequest::new(&server.to_string(), &sessions[0].token);
    let head = timed(limit, async {
        proto::send_poll(&mut conn, &probe, Some(&sessions[0].cursor), false).await?;
        let head = conn.read_head().await?;
        conn.read_body(&head, &mut buf).await?;
        Ok(head)
    })
    .await
    .map_err(|e| anyhow!("the probe poll failed: {e}"))?;
    if head.status != 200 {
        return Err(anyhow!("the probe poll got HTTP {}", head.status));
    }
    fig.reply_bytes = buf.len() as u64;
    buf = Vec::new();
    (
        fig.rss_baseline_kb,
        fig.fds_baseline,
        fig.tcp_mem_baseline_kb,
    ) = observe(&opts.server_pids)?;
    say(format_args!(
        "{} messages sent, replies of {} bytes; baseline RSS {} kB, {} fds",
        fig.history_sent, fig.reply_bytes, fig.rss_baseline_kb, fig.fds_baseline
    ));

    // The attack: write a poll on every connection, never read.
    let attack = Instant::now();
    let requests: Vec<PollRequest> = sessions
        .iter()
        .map(|s| PollRequest::new(&server.to_string(), &s.token))
        .collect();
    let mut stalled = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        let source = sys::source_for(server, i, opts.source_addrs);
        let k = i % sessions.len();
        let r = timed(limit, async {
            let stream = sys::connect_with(server, source, Some(opts.rcvbuf))
                .await
                .map_err(HttpError::Connect)?;
            let mut c = Conn::from_stream(stream, server);
            proto::send_poll(&mut c, &requests[k], Some(&sessions[k].cursor), false).await?;
            Ok(c)
        })
        .await;
        match r {
            Ok(c) => stalled.push(c),
            Err(e) => errors.add("stall", &e.kind()),
        }
    }
    fig.stalled = stalled.len();
    say(format_args!(
        "{} stalled readers in {:.1}s; watching for {:.0}s",
        fig.stalled,
        attack.elapsed().as_secs_f64(),
        opts.duration
    ));

    let end = attack + Duration::from_secs_f64(opts.duration);
    let mut next_sample = attack;
    loop {
        let now = Instant::now();
        let (rss, fds, tcp_mem) = observe(&opts.server_pids)?;
        let secs = now.duration_since(attack).as_secs_f64();
        if rss > fig.rss_peak_kb {
            fig.rss_peak_kb = rss;
            fig.rss_peak_secs = secs;
        }
        fig.fds_peak = fig.fds_peak.max(fds);
        fig.tcp_mem_peak_kb = fig.tcp_mem_peak_kb.max(tcp_mem);
        if now >= next_sample {
            fig.timeline.push(Sample {
                secs,
                rss_kb: rss,
                fds,
                tcp_mem_kb: tcp_mem,
            });
            next_sample += Duration::from_secs(5);
        }
        if now >= end {
            (fig.rss_after_kb, fig.fds_after, fig.tcp_mem_after_kb) = (rss, fds, tcp_mem);
            fig.after_secs = secs;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200).min(end - now)).await;
    }
    fig.rss_excess_after_kb = fig.rss_after_kb as i64 - fig.rss_baseline_kb as i64;

    // Read every stalled connection now: a reply cut short means the
    // server gave up on it.
    say(format_args!("draining the stalled connections"));
    let drains = stalled
        .into_iter()
        .map(|c| drain(c, Duration::from_secs(20)));
    for outcome in futures::future::join_all(drains).await {
        match outcome {
            Outcome::Completed => fig.completed += 1,
            Outcome::Closed => fig.closed_by_server += 1,
            Outcome::Open => fig.still_open += 1,
            Outcome::Answered(status) => errors.add("stall", &format!("status_{status}")),
            Outcome::Broken(kind) => errors.add("stall", kind),
        }
    }

    // Leave the server as found, on a fresh connection (the first one has
    // idled through the attack: the server may have timed it out). A
    // session may have been removed as idle by now (it never polled
    // again): that is not an error of the run.
    conn.closed = true;
    for token in sessions.iter().map(|s| &s.token).chain([&filler]) {
        let r = timed(limit, async {
            if conn.closed {
                conn = Conn::connect(server, None).await?;
            }
            proto::logout(&mut conn, token, &mut buf).await
        })
        .await;
        match r {
            Ok(()) | Err(CallError::Status(401)) => {}
            Err(e) => {
                errors.add("logout", &e.kind());
                conn.closed = true;
            }
        }
    }

    Ok(Report {
        scenario: opts.scenario.name().to_owned(),
        run: opts.run.clone(),
        servers: opts.servers.iter().map(|s| s.to_string()).collect(),
        procs: 1,
        clients: opts.clients,
        logged_in: sessions.len(),
        rss_before_kb: Some(fig.rss_start_kb),
        connections: Some(fig.stalled),
        errors: errors.snapshot(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        stall: Some(fig),
        ..Default::default()
    })
}

/// Reads what a stalled connection holds, within `limit`, to see how it
/// ended: a reply cut short by EOF or a reset means the server gave up on
/// it (a server that gives up on a write cannot send anything more).
async fn drain(mut c: Conn, limit: Duration) -> Outcome {
    let mut body = Vec::new();
    let r = tokio::time::timeout(limit, async {
        let head = c.read_head().await?;
        c.read_body(&head, &mut body).await?;
        Ok::<u16, HttpError>(head.status)
    })
    .await;
    match r {
        Ok(Ok(200)) => Outcome::Completed,
        Ok(Ok(status)) => Outcome::Answered(status),
        Ok(Err(HttpError::Eof | HttpError::Io(_))) => Outcome::Closed,
        Ok(Err(e)) => Outcome::Broken(e.kind()),
        Err(_) => Outcome::Open,
    }
}

/// How one stalled connection ended when it was finally read.
#[derive(Debug, PartialEq)]
enum Outcome {
    Completed,
    Answered(u16),
    Closed,
    Open,
    Broken(&'static str),
}

/// Checks the options a stall run needs before anything starts.
pub fn check(opts: &Opts) -> anyhow::Result<()> {
    anyhow::ensure!(
        !opts.server_pids.is_empty(),
        "stall measures the server's memory: give --server-pid"
    );
    for pid in &opts.server_pids {
        sys::rss_kb(*pid).with_context(|| format!("--server-pid {pid}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connection to a server that writes `reply`, then closes the
    /// socket if `close`, else keeps it open until the test ends.
    async fn served(reply: &'static [u8], close: bool) -> Conn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(reply).await.unwrap();
            if !close {
                std::future::pending::<()>().await;
            }
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        Conn::from_stream(stream, addr)
    }

    #[tokio::test]
    async fn a_reply_cut_short_means_the_server_closed_it() {
        let c = served(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", true).await;
        assert_eq!(drain(c, Duration::from_secs(10)).await, Outcome::Closed);
        let c = served(b"", true).await;
        assert_eq!(drain(c, Duration::from_secs(10)).await, Outcome::Closed);
    }

    #[tokio::test]
    async fn a_whole_reply_means_the_server_kept_writing() {
        let c = served(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            false,
        )
        .await;
        assert_eq!(drain(c, Duration::from_secs(10)).await, Outcome::Completed);
    }

    #[tokio::test]
    async fn another_status_is_told_apart() {
        let c = served(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", true).await;
        assert_eq!(
            drain(c, Duration::from_secs(10)).await,
            Outcome::Answered(503)
        );
    }

    #[tokio::test]
    async fn a_reply_still_coming_is_still_open() {
        let c = served(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", false).await;
        assert_eq!(drain(c, Duration::from_millis(50)).await, Outcome::Open);
    }
}
