//! Where workers run: as a task in the driver's process, or as child
//! processes (`--procs K`), because one process cannot hold more sockets
//! than its fd limit (~19 000 here) and one tokio runtime per process keeps
//! each small.
//!
//! A child is this same binary run as `loadgen worker`. Its stdin carries
//! the [`WorkerConfig`] on the first line, then one [`Cmd`] per line; its
//! stdout carries one [`Event`] per line (JSON); its stderr is the parent's,
//! for progress. A child whose stdin closes (the parent died) aborts, logs
//! its clients out and exits, so nothing outlives a killed run for long.

use crate::worker::{self, Cmd, Event, WorkerConfig};
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A running worker, as the driver sees it.
pub enum Worker {
    Task {
        cmds: mpsc::UnboundedSender<Cmd>,
        handle: tokio::task::JoinHandle<()>,
    },
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
    },
}

/// The workers of one run and their merged event stream.
pub struct Workers {
    pub workers: Vec<Worker>,
    pub events: mpsc::UnboundedReceiver<(usize, Option<Event>)>,
}

impl Workers {
    /// Starts one worker per config: in this process if there is exactly
    /// one and `in_process`, else as child processes.
    pub fn start(
        configs: Vec<WorkerConfig>,
        in_process: bool,
        threads: Option<usize>,
    ) -> anyhow::Result<Workers> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for (index, cfg) in configs.into_iter().enumerate() {
            if in_process {
                let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
                let handle = tokio::spawn(worker::run(cfg, cmd_rx, ev_tx));
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(ev) = ev_rx.recv().await {
                        let _ = tx.send((index, Some(ev)));
                    }
                    let _ = tx.send((index, None));
                });
                workers.push(Worker::Task {
                    cmds: cmd_tx,
                    handle,
                });
            } else {
                let exe = std::env::current_exe().context("cannot find this program's path")?;
                let mut child = Command::new(exe)
                    .arg("worker")
                    .args(crate::cli::threads_arg(threads))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("cannot start a worker process")?;
                let mut stdin = child.stdin.take().context("worker stdin")?;
                let stdout = child.stdout.take().context("worker stdout")?;
                let line = serde_json::to_string(&cfg)?;
                writeln!(stdin, "{line}").context("cannot configure a worker process")?;
                stdin.flush()?;
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        match serde_json::from_str::<Event>(&line) {
                            Ok(ev) => {
                                let _ = tx.send((index, Some(ev)));
                            }
                            Err(e) => eprintln!("worker {index}: unreadable line ({e}): {line}"),
                        }
                    }
                    let _ = tx.send((index, None));
                });
                workers.push(Worker::Child {
                    child,
                    stdin: Some(stdin),
                });
            }
        }
        Ok(Workers {
            workers,
            events: rx,
        })
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Sends `cmd` to every worker (a worker that is gone is skipped).
    pub fn broadcast(&mut self, cmd: impl Fn() -> Cmd) {
        for w in &mut self.workers {
            match w {
                Worker::Task { cmds, .. } => {
                    let _ = cmds.send(cmd());
                }
                Worker::Child { stdin, .. } => {
                    if let Some(pipe) = stdin {
                        let line = serde_json::to_string(&cmd()).expect("commands serialize");
                        if writeln!(pipe, "{line}").and_then(|_| pipe.flush()).is_err() {
                            *stdin = None;
                        }
                    }
                }
            }
        }
    }

    /// One event picked by `pick` from every worker, waiting at most
    /// `timeout`. `None` for a worker that ended, failed or was late.
    pub async fn collect<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Vec<Option<T>> {
        let mut got: Vec<Option<T>> = (0..self.len()).map(|_| None).collect();
        let mut pending = self.len();
        let mut gone = vec![false; self.len()];
        let deadline = tokio::time::Instant::now() + timeout;
        while pending > 0 {
            let ev = tokio::select! {
                ev = self.events.recv() => ev,
                _ = tokio::time::sleep_until(deadline) => {
                    eprintln!("warning: {pending} worker(s) did not report {what} within {timeout:?}");
                    break;
                }
            };
            let Some((index, ev)) = ev else { break };
            match ev {
                None => {
                    if !gone[index] && got[index].is_none() {
                        gone[index] = true;
                        pending -= 1;
                        eprintln!("warning: worker {index} ended before reporting {what}");
                    }
                }
                Some(Event::Fatal(msg)) => {
                    eprintln!("worker {index} failed: {msg}");
                }
                Some(ev) => {
                    if got[index].is_none() && !gone[index] {
                        if let Some(v) = pick(ev) {
                            got[index] = Some(v);
                            pending -= 1;
                        }
                    }
                }
            }
        }
        got
    }

    /// Waits for every worker to end (children: kill by their own PID
    /// after `timeout`).
    pub async fn finish(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for w in self.workers {
            match w {
                Worker::Task { cmds, handle } => {
                    drop(cmds);
                    let left = deadline.saturating_duration_since(Instant::now());
                    if tokio::time::timeout(left, handle).await.is_err() {
                        eprintln!("warning: an in-process worker did not end in time");
                    }
                }
                Worker::Child { mut child, stdin } => {
                    drop(stdin);
                    let ended = tokio::task::spawn_blocking(move || {
                        loop {
                            match child.try_wait() {
                                Ok(Some(_)) => return,
                                Ok(None) if Instant::now() < deadline => {
                                    std::thread::sleep(Duration::from_millis(20))
                                }
                                _ => break,
                            }
                        }
                        eprintln!(
                            "warning: worker process {} did not end; killing it",
                            child.id()
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                    });
                    let _ = ended.await;
                }
            }
        }
    }
}

/// `loadgen worker`: the child side.
pub fn child_main(threads: Option<usize>) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut first = String::new();
    stdin
        .lock()
        .read_line(&mut first)
        .context("no worker configuration on stdin")?;
    let cfg: WorkerConfig =
        serde_json::from_str(first.trim()).context("bad worker configuration")?;
    let runtime = crate::runtime(threads)?;
    runtime.block_on(async move {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Cmd>(&line) {
                    Ok(cmd) => {
                        if cmd_tx.send(cmd).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("worker: unreadable command ({e}): {line}"),
                }
            }
            // The parent is gone (or done): stop.
            let _ = cmd_tx.send(Cmd::Abort);
        });
        let writer = tokio::task::spawn_blocking(move || {
            let stdout = std::io::stdout();
            while let Some(ev) = ev_rx.blocking_recv() {
                let line = serde_json::to_string(&ev).expect("events serialize");
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        });
        worker::run(cfg, cmd_rx, ev_tx).await;
        let _ = writer.await;
    });
    // Do not wait for the stdin reader thread.
    std::process::exit(0);
}
