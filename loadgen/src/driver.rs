//! The driver: runs one chat scenario (idle, broadcast, chat, hold, rooms) from
//! start to clean finish. It starts the workers, waits until every client
//! is logged in and then polling, reads the server's RSS, publishes, tells
//! the workers what was sent, merges their results, and logs everyone out.
//!
//! Publishing starts only after every client's first poll is held, so every
//! client is expected to receive every message sent, exactly once and in
//! order: any difference is a real loss, duplicate or reordering. A send
//! that fails is still counted as sent (the server may have stored it), so
//! a loss next to a send error is explained by it.
//!
//! Publishers are separate clients (`publisher.rs`); chat and rooms send on
//! a schedule (`sending.rs`). In the rooms scenario (`rooms.rs`) publisher
//! p opens room p before any client polls, and each client expects only
//! its rooms' messages.
//!
//! The server's cost is read from outside (`server_procs.rs`): its RSS
//! before the clients, with every poll held and at the end, and its CPU
//! time from the first send until every client has what was sent (the
//! delivery window), per delivery. Against Nchan (`--protocol nchan`),
//! whose polls get no head before a message, "every poll held" is what
//! Nchan's status page says (`nchan_stub_status`), not what the clients
//! saw.

use crate::cli::{Opts, Scenario};
use crate::procs::Workers;
use crate::publisher::Publisher;
use crate::report::{Latency, Report};
use crate::sending::{timed_sends, Sending};
use crate::server_procs::ServerProcs;
use crate::stats::{merge_errors, Errors};
use crate::worker::{Cmd, Event, Protocol, WorkerConfig, WorkerResult};
use anyhow::anyhow;
use std::time::{Duration, Instant};

/// How long the rooms scenario waits, once every client polls, before
/// sending (see its use).
const ROOMS_SETTLE: Duration = Duration::from_millis(1500);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn progress(opts: &Opts, msg: std::fmt::Arguments<'_>) {
    if !opts.quiet {
        eprintln!("[driver] {msg}");
    }
}

fn worker_configs(opts: &Opts) -> Vec<WorkerConfig> {
    let k = opts.procs;
    let (base, extra) = (opts.clients / k, opts.clients % k);
    let mut first = 0;
    (0..k)
        .map(|p| {
            let n = base + usize::from(p < extra);
            let cfg = WorkerConfig {
                run: opts.run.clone(),
                protocol: opts.protocol,
                proc_index: p,
                servers: opts.servers.clone(),
                first_client: first,
                clients: n,
                source_addrs: opts.source_addrs,
                setup_concurrency: opts.setup_concurrency.div_ceil(k).max(1),
                ramp: opts.ramp,
                request_timeout_ms: (opts.request_timeout * 1000.0) as u64,
                poll_read_timeout_ms: (opts.poll_read_timeout * 1000.0) as u64,
                ready_timeout_ms: (opts.ready_timeout * 1000.0) as u64,
                logout_conns: opts.logout_conns,
                quickack: opts.quickack,
                quiet: opts.quiet,
                rooms: opts.rooms,
            };
            first += n;
            cfg
        })
        .collect()
}

/// Runs idle, broadcast, chat, hold or rooms.
pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let started = Instant::now();
    let server = ServerProcs::new(&opts.server_pids);
    let rss_before = server.rss_kb()?;
    progress(
        opts,
        format_args!(
            "{} clients over {} process(es) against {:?}, run {}",
            opts.clients, opts.procs, opts.servers, opts.run
        ),
    );
    let mut workers = Workers::start(worker_configs(opts), opts.procs == 1, opts.threads)?;
    let result = drive(opts, &server, &mut workers, started, rss_before).await;
    if result.is_err() {
        workers.broadcast(|| Cmd::Abort);
    }
    workers.finish(Duration::from_secs(30)).await;
    result
}

async fn drive(
    opts: &Opts,
    server: &ServerProcs,
    workers: &mut Workers,
    started: Instant,
    rss_before: Option<u64>,
) -> anyhow::Result<Report> {
    let errors = Errors::default();
    let phase_timeout = secs(opts.ready_timeout) + Duration::from_secs(15);
    let logged: Vec<_> = workers
        .collect("login", phase_timeout, |e| match e {
            Event::LoggedIn { ok, failed } => Some((ok, failed)),
            _ => None,
        })
        .await;
    let logged_in: usize = logged.iter().flatten().map(|(ok, _)| ok).sum();
    if logged_in == 0 {
        return Err(anyhow!(
            "no client could log in or connect (is the server at {:?} up?)",
            opts.servers
        ));
    }

    // Publishers join before anyone polls (phased), so their joins are not
    // fanned out to the N clients.
    let mut publishers = Vec::new();
    if opts.scenario != Scenario::Idle {
        let count = match (opts.scenario, opts.rooms) {
            (Scenario::Chat, _) => opts.publishers,
            (Scenario::Rooms, Some(layout)) => layout.rooms,
            _ => 1,
        };
        for p in 0..count {
            let publisher = Publisher::start(opts, p)
                .await
                .map_err(|e| anyhow!("the publisher could not start: {e}"))?;
            publishers.push(publisher);
        }
    }

    workers.broadcast(|| Cmd::StartPolling);
    let ready: Vec<_> = workers
        .collect("ready", phase_timeout, |e| match e {
            Event::Ready {
                ready,
                held,
                failed,
            } => Some((ready, held, failed)),
            _ => None,
        })
        .await;
    let ready_clients: usize = ready.iter().flatten().map(|r| r.0).sum();
    let mut held_polls: usize = ready.iter().flatten().map(|r| r.1).sum();
    if opts.protocol == Protocol::Nchan {
        held_polls = nchan_holds(opts, &mut publishers, ready_clients).await?;
    }
    let ready_secs = started.elapsed().as_secs_f64();
    if opts.scenario == Scenario::Rooms {
        // A poll of several channels has no early head, so "ready" is
        // "sent"; and each join is a presence message to the room's other
        // members. Let both settle (a presence window is 250 ms) so the
        // measured window holds the rooms' messages only.
        tokio::time::sleep(ROOMS_SETTLE).await;
    }
    let rss_held = server.rss_kb()?;
    let rss_held_each = server.rss_each_kb()?;
    // The load generator itself (this process and its worker processes),
    // to see that what it costs per client stays sane.
    let loadgen_rss_held = ServerProcs::new(&[std::process::id()]).rss_kb()?;
    progress(
        opts,
        format_args!("{ready_clients} clients polling ({held_polls} held) after {ready_secs:.1}s"),
    );

    let mut held_end = None;
    let mut rss_end = None;
    let before_sending = server.sample()?;
    let sending = match opts.scenario {
        Scenario::Idle => {
            tokio::time::sleep(secs(opts.duration)).await;
            workers.broadcast(|| Cmd::Sample);
            let held: Vec<_> = workers
                .collect("held polls", Duration::from_secs(10), |e| match e {
                    Event::Held { held } => Some(held),
                    _ => None,
                })
                .await;
            held_end = Some(held.iter().flatten().sum::<usize>());
            rss_end = server.rss_kb()?;
            Sending::default()
        }
        Scenario::Broadcast | Scenario::Hold => {
            let count = if opts.scenario == Scenario::Hold {
                1
            } else {
                opts.messages
            };
            let publisher = &mut publishers[0];
            let t0 = Instant::now();
            let mut s = Sending {
                sent: vec![0],
                ..Default::default()
            };
            for seq in 0..count {
                match publisher.send(&opts.run, seq, opts.pad).await {
                    Ok(at) => {
                        if s.first_ns == 0 {
                            s.first_ns = at;
                        }
                        s.last_ns = at;
                    }
                    Err(e) => errors.add("send", &e.kind()),
                }
                s.sent[0] = seq + 1;
            }
            s.secs = t0.elapsed().as_secs_f64();
            s
        }
        Scenario::Chat => {
            timed_sends(
                &opts.run,
                opts.pad,
                opts.rate,
                opts.duration,
                &mut publishers,
                &errors,
            )
            .await
        }
        Scenario::Rooms => {
            // --rate is per room: one publisher per room.
            let rate = opts.rate * publishers.len() as f64;
            let (run, pad, duration) = (&opts.run, opts.pad, opts.duration);
            timed_sends(run, pad, rate, duration, &mut publishers, &errors).await
        }
        Scenario::Hello | Scenario::Stall | Scenario::Slowloris => {
            return Err(anyhow!("{} is not a chat scenario", opts.scenario.name()))
        }
    };
    if opts.scenario != Scenario::Idle {
        progress(
            opts,
            format_args!(
                "sent {} messages in {:.2}s; draining",
                sending.sent.iter().sum::<u64>(),
                sending.secs
            ),
        );
    }

    let expected = sending.sent.clone();
    let drain_ms = (opts.drain_timeout * 1000.0) as u64;
    workers.broadcast(|| Cmd::Stop {
        expected: expected.clone(),
        drain_ms,
    });
    let results: Vec<_> = workers
        .collect(
            "results",
            secs(opts.drain_timeout) + Duration::from_secs(30),
            |e| match e {
                Event::Result(r) => Some(r),
                _ => None,
            },
        )
        .await;
    let after_delivery = server.sample()?;
    let mut merged = WorkerResult::default();
    for r in results.iter().flatten() {
        merged.merge(r);
    }
    let missing = results.iter().filter(|r| r.is_none()).count();
    if missing > 0 {
        errors.add("worker", "no_result");
    }

    let mut publishers_out = 0;
    for p in publishers {
        publishers_out += usize::from(p.finish(&errors).await);
    }
    workers.broadcast(|| Cmd::Logout);
    let logout_timeout = Duration::from_secs(60 + opts.clients as u64 / 200);
    let outs: Vec<_> = workers
        .collect("logout", logout_timeout, |e| match e {
            Event::LoggedOut { ok, failed, errors } => Some((ok, failed, errors)),
            _ => None,
        })
        .await;
    let mut logged_out = publishers_out;
    let mut all_errors = merged.errors.clone();
    for (ok, _, errs) in outs.iter().flatten() {
        logged_out += ok;
        merge_errors(&mut all_errors, errs);
    }
    merge_errors(&mut all_errors, &errors.snapshot());
    progress(opts, format_args!("{logged_out} logged out"));

    let sent: u64 = sending.sent.iter().sum();
    let window = (merged.last_delivery_ns > 0 && sending.first_ns > 0)
        .then(|| merged.last_delivery_ns.saturating_sub(sending.first_ns) as f64 / 1e9);
    let per_held = match (rss_before, rss_held) {
        (Some(b), Some(h)) if held_polls > 0 => {
            Some((h as f64 - b as f64) * 1024.0 / held_polls as f64)
        }
        _ => None,
    };
    let server_cpu_secs = match (before_sending, after_delivery) {
        (Some(b), Some(a)) if opts.scenario != Scenario::Idle => Some(a.cpu_secs - b.cpu_secs),
        _ => None,
    };
    Ok(Report {
        scenario: opts.scenario.name().to_owned(),
        protocol: opts.protocol.name().to_owned(),
        run: opts.run.clone(),
        servers: opts.servers.iter().map(|s| s.to_string()).collect(),
        procs: opts.procs,
        clients: opts.clients,
        publishers: (opts.scenario != Scenario::Idle).then_some(sending.sent.len()),
        logged_in,
        ready: if missing > 0 {
            ready_clients
        } else {
            merged.ready
        },
        ready_secs,
        held_polls,
        held_polls_end: held_end,
        rss_before_kb: rss_before,
        rss_held_kb: rss_held,
        rss_held_each_kb: rss_held_each.filter(|each| each.len() > 1),
        loadgen_rss_held_kb: loadgen_rss_held,
        rss_end_kb: rss_end,
        rss_per_held_poll_bytes: per_held,
        server_processes: after_delivery.map(|s| s.processes),
        server_cpu_secs,
        server_cpu_us_per_delivery: server_cpu_secs
            .filter(|_| merged.deliveries > 0)
            .map(|cpu| cpu * 1e6 / merged.deliveries as f64),
        sent,
        send_secs: sending.secs,
        sends_per_sec: if sending.secs > 0.0 {
            sent as f64 / sending.secs
        } else {
            0.0
        },
        expected_deliveries: merged.expected,
        deliveries: merged.deliveries,
        delivery_window_secs: window,
        deliveries_per_sec: window
            .filter(|w| *w > 0.0)
            .map(|w| merged.deliveries as f64 / w),
        latency: Latency::from_histogram(&merged.latency),
        read_latency: Latency::from_histogram(&merged.read_latency),
        lost: merged.lost,
        lost_clients: merged.lost_clients,
        duplicated: merged.duplicated,
        duplicated_clients: merged.duplicated_clients,
        out_of_order: merged.out_of_order,
        out_of_order_clients: merged.out_of_order_clients,
        got: (opts.scenario == Scenario::Hold).then_some(merged.got_any),
        last_delivery_secs: (opts.scenario == Scenario::Hold).then_some(window.unwrap_or(0.0)),
        polls: merged.polls,
        polls_per_delivery: (merged.deliveries > 0)
            .then(|| merged.polls as f64 / merged.deliveries as f64),
        rooms: opts.rooms.map(|l| l.rooms),
        rooms_per_client: opts.rooms.map(|l| l.per_client),
        poll_timeouts: merged.poll_timeouts,
        other_messages: merged.other_messages,
        connections: None,
        requests: None,
        requests_per_sec: None,
        logged_out,
        errors: all_errors,
        elapsed_secs: started.elapsed().as_secs_f64(),
        stall: None,
        slowloris: None,
    })
}

/// How many polls Nchan holds (its status page counts every channel; the
/// bench's nginx has only this run's), once it holds one per ready client
/// (asked every 50 ms, within the ready timeout). Nchan sends nothing
/// before a message, so only the server can say a poll is held; publishing
/// before every poll is held would count messages sent before their
/// subscriber arrived as lost.
async fn nchan_holds(
    opts: &Opts,
    publishers: &mut [Publisher],
    ready_clients: usize,
) -> anyhow::Result<usize> {
    let Some(asker) = publishers.first_mut() else {
        // Idle runs have no publisher: ask through a fresh one.
        let mut asker = Publisher::start(opts, 0)
            .await
            .map_err(|e| anyhow!("cannot reach Nchan for its status page: {e}"))?;
        return wait_for_subscribers(opts, &mut asker, ready_clients).await;
    };
    wait_for_subscribers(opts, asker, ready_clients).await
}

async fn wait_for_subscribers(
    opts: &Opts,
    asker: &mut Publisher,
    want: usize,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + secs(opts.ready_timeout);
    loop {
        let held = match asker.nchan_subscribers().await {
            Some(Ok(n)) => n as usize,
            Some(Err(e)) => return Err(anyhow!("Nchan's status page failed: {e}")),
            None => return Err(anyhow!("the status page is Nchan's only")),
        };
        if held >= want {
            return Ok(held);
        }
        if Instant::now() >= deadline {
            progress(
                opts,
                format_args!("Nchan holds {held} of {want} polls at the ready timeout"),
            );
            return Ok(held);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
