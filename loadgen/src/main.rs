//! `loadgen`: the load generator for Comet Chat. It speaks the real wire
//! protocol (README.md, "Wire protocol") like browsers do, one connection
//! per simulated client, and measures deliveries/s, end-to-end latency,
//! lost / duplicated / out-of-order messages, held polls and the server's
//! memory per held poll. Latency runs from the publisher's send timestamp
//! (in the message text) to the kernel's receive timestamp of the reply on
//! the client's socket (`sys::recv_stamped`); the time until the client's
//! code read it, which adds this process's own queue of other clients'
//! replies, is reported beside it as "when read". `loadgen --help` lists scenarios and options;
//! `scripts/bench` builds, starts the servers and runs the scenarios.
//!
//! Modules: `cli` (options), `sys` (fd limit, source addresses, RSS),
//! `server_procs` (the server's processes: CPU time and RSS),
//! `http` (minimal HTTP/1.1 client), `proto` (the chat protocol), `nchan`
//! (Nchan's long-poll protocol, to measure it beside ours; `multipart`
//! for its batches),
//! `channels` (our poll of several channels), `subscription` (one
//! client's poll in either protocol), `stats`
//! (histograms, loss tracking), `worker` (the clients), `ipc` (driver ↔
//! worker messages), `logout` (cleaning up), `procs` (workers as child
//! processes), `driver` (the chat scenarios), `publisher` (their
//! publishing clients), `sending` (their timed sends), `rooms` (the rooms
//! scenario's layout and joins), `hello` (baseline server and
//! scenario), `stall` and `slowloris` (attacks on the HTTP front; the
//! latter's two sides in `trickle` and `users`),
//! `report` (one run's output), `summary` (medians over runs, ours beside Nchan).

mod channels;
mod cli;
mod driver;
mod hello;
mod http;
mod ipc;
mod logout;
mod multipart;
mod nchan;
mod procs;
mod proto;
mod publisher;
mod report;
mod rooms;
mod sending;
mod server_procs;
mod slowloris;
mod stall;
mod stats;
mod subscription;
mod summary;
mod sys;
mod trickle;
mod users;
mod worker;

use anyhow::Context;
use cli::{Command, Scenario};
use std::time::Duration;

/// A tokio runtime with `threads` workers (default: one per core).
pub fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        b.worker_threads(t.max(1));
    }
    b.enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Ends the process if a run exceeds its time bound, whatever it is doing
/// (child workers then see their stdin close, log out and end too).
fn watchdog(max_secs: f64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(max_secs));
        eprintln!("loadgen: time bound of {max_secs:.0}s exceeded; giving up");
        std::process::exit(3);
    });
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("loadgen: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let command = cli::parse(std::env::args().skip(1).collect())?;
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        Command::FreePort => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
        Command::Summarize(files) => {
            anyhow::ensure!(
                !files.is_empty(),
                "summarize: give one or more result files"
            );
            print!("{}", summary::summarize(&files)?);
            Ok(())
        }
        Command::Worker { threads } => {
            sys::raise_fd_limit().context("cannot raise the fd limit")?;
            procs::child_main(threads)
        }
        Command::HelloServer {
            addr,
            max_secs,
            threads,
        } => {
            sys::raise_fd_limit().context("cannot raise the fd limit")?;
            runtime(threads)?.block_on(hello::serve(addr, max_secs))
        }
        Command::Run(opts) => {
            let limit = sys::raise_fd_limit().context("cannot raise the fd limit")?;
            let per_proc = opts.clients.div_ceil(opts.procs);
            match opts.scenario {
                Scenario::Stall => stall::check(&opts)?,
                Scenario::Slowloris => slowloris::check(&opts, limit)?,
                _ => {}
            }
            if !matches!(
                opts.scenario,
                Scenario::Hello | Scenario::Stall | Scenario::Slowloris
            ) && per_proc as u64 + 64 > limit
            {
                eprintln!(
                    "warning: {per_proc} clients per process but the fd limit is {limit}; \
                     use more --procs"
                );
            }
            watchdog(opts.max_secs);
            http::set_quickack(opts.quickack);
            let rt = runtime(opts.threads)?;
            let report = rt.block_on(async {
                match opts.scenario {
                    Scenario::Hello => hello::run(&opts).await,
                    Scenario::Stall => stall::run(&opts).await,
                    Scenario::Slowloris => slowloris::run(&opts).await,
                    _ => driver::run(&opts).await,
                }
            })?;
            if opts.json {
                eprint!("{}", report.human());
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.human());
            }
            // Do not wait for stray tasks (e.g. a stuck connection).
            rt.shutdown_timeout(Duration::from_secs(1));
            Ok(())
        }
    }
}
