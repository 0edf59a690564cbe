//! A worker: one process's share of the simulated browsers. Each client is
//! one task and one keep-alive connection: log in, fetch the cursor, then
//! long-poll until the driver says what was sent and the client has it all
//! (or the drain time runs out); finally every client is logged out.
//!
//! The driver talks to workers with [`Cmd`]s and hears back [`Event`]s, the
//! same messages whether the worker is a task in the driver's process or a
//! child process (`loadgen worker`, one JSON line each way, see
//! `procs.rs`), so one code path serves `--procs 1` and `--procs K`.
//!
//! Ramp: by default ("phased") every client logs in first and only then,
//! when the driver says so (after *every* process has logged its clients
//! in), starts polling. Each login is announced to every polling client
//! (one "Presence" change per window for all logins in it), so logging in
//! while others already poll costs a delivery per client per window;
//! `--ramp live` does exactly that, like browsers arriving one by one.

use crate::http::{Conn, Head};
use crate::logout::logout_all;
use crate::nchan;
use crate::proto::{self, CallError};
use crate::rooms;
use crate::stats::{AtomicHistogram, Errors, Tracker, MAX_SEQ};
use crate::subscription::{Answer, Subscription};
use crate::sys;
use futures::task::AtomicWaker;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub use crate::ipc::{Cmd, Event, Protocol, Ramp, WorkerConfig, WorkerResult};

/// Shared by a worker's client tasks.
struct Ctx {
    cfg: WorkerConfig,
    run_prefix: String,
    setup: Semaphore,
    errors: Errors,
    /// What the clients measured, one slot per thread.
    counts: Box<[Counts]>,
    logins_done: AtomicUsize,
    logins_ok: AtomicUsize,
    /// Clients whose first poll was accepted.
    ready: AtomicUsize,
    /// Logged-in clients that never got a poll accepted.
    setup_failed: AtomicUsize,
    start_polling: watch::Receiver<bool>,
    stop: watch::Receiver<Option<Arc<Vec<u64>>>>,
    cancel: CancellationToken,
    /// One per client: how a held poll hears of `stop`, `cancel` and its
    /// own deadline.
    interrupts: Arc<Vec<Interrupt>>,
    /// The clock poll deadlines are measured on.
    clock: Instant,
}

/// What clients record per poll and per delivery, kept per thread: each
/// thread writes its own slot (its own cache lines), so recording costs no
/// atomic operation another thread contends for; readers add the slots up.
#[repr(align(128))]
struct Counts {
    /// Send → arrival at the client's socket.
    latency: AtomicHistogram,
    /// Send → read by the client's code.
    read_latency: AtomicHistogram,
    deliveries: AtomicU64,
    other_messages: AtomicU64,
    polls: AtomicU64,
    poll_timeouts: AtomicU64,
    first_delivery: AtomicU64,
    last_delivery: AtomicU64,
    /// Polls whose head arrived and whose body has not (a poll may end on
    /// another thread than it started: one slot can go below zero, the sum
    /// cannot).
    held: AtomicI64,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            latency: AtomicHistogram::default(),
            read_latency: AtomicHistogram::default(),
            deliveries: AtomicU64::new(0),
            other_messages: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            poll_timeouts: AtomicU64::new(0),
            first_delivery: AtomicU64::new(u64::MAX),
            last_delivery: AtomicU64::new(0),
            held: AtomicI64::new(0),
        }
    }
}

/// Slots of [`Counts`]: one per thread for up to this many threads (more
/// threads share slots: still exact, only contended again).
const COUNT_SLOTS: usize = 16;

/// This thread's slot number, handed out in turn at its first use.
fn count_slot() -> usize {
    use std::cell::Cell;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        if slot.get() == usize::MAX {
            slot.set(NEXT.fetch_add(1, Ordering::Relaxed) % COUNT_SLOTS);
        }
        slot.get()
    })
}

/// Wakes one client out of a held poll when the scenario stops or ends,
/// without registering anywhere per poll (a poll is the hottest loop here:
/// a `Notify` or `watch` future per poll costs locks shared by every
/// client, and the load generator's cost is CPU the server does not get).
///
/// It also times polls out: a poll publishes its deadline here and the
/// worker's tick fires the interrupts of polls past theirs, so a poll
/// registers no timer of its own (each would be a timer-wheel insert and
/// removal under a lock shared by the thread's clients). One cache line per
/// client: clients on different threads never write the same line.
#[derive(Default)]
#[repr(align(64))]
struct Interrupt {
    fired: AtomicBool,
    waker: AtomicWaker,
    /// The poll in progress must end by this [`clock_ms`] reading (0: none).
    deadline_ms: AtomicU64,
}

impl Interrupt {
    /// Gives the poll in progress until `ms` on the context's clock.
    fn arm(&self, ms: u64) {
        self.deadline_ms.store(ms, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline_ms.store(0, Ordering::Relaxed);
    }

    /// Whether the poll in progress has run out of time at `now_ms`.
    fn expired(&self, now_ms: u64) -> bool {
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        deadline != 0 && now_ms >= deadline
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once fired since it last resolved.
    fn fired(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.fired.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.fired.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

fn interrupt_all(interrupts: &[Interrupt]) {
    for i in interrupts {
        i.fire();
    }
}

/// Ends the scenario for every client: the token for whatever waits on it,
/// the interrupts for held polls (which wait on nothing else).
fn cancel_all(cancel: &CancellationToken, interrupts: &[Interrupt]) {
    cancel.cancel();
    interrupt_all(interrupts);
}

/// How often the worker looks for polls past their deadline: a timeout
/// fires up to this late.
const DEADLINE_SWEEP: Duration = Duration::from_millis(100);

/// Milliseconds since `clock` (never 0: a deadline of 0 means none).
fn clock_ms(clock: Instant) -> u64 {
    clock.elapsed().as_millis() as u64 + 1
}

/// Fires the interrupt of every poll past its deadline.
fn sweep_deadlines(interrupts: &[Interrupt], clock: Instant) {
    let now = clock_ms(clock);
    for interrupt in interrupts {
        if interrupt.expired(now) {
            interrupt.fire();
        }
    }
}

impl Ctx {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.request_timeout_ms)
    }

    /// This thread's counts.
    fn counts(&self) -> &Counts {
        &self.counts[count_slot()]
    }

    /// One counter's value in every thread's slot.
    fn slots<'a>(
        &'a self,
        field: impl Fn(&Counts) -> &AtomicU64 + 'a,
    ) -> impl Iterator<Item = u64> + 'a {
        self.counts
            .iter()
            .map(move |c| field(c).load(Ordering::Relaxed))
    }

    fn sum(&self, field: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        self.slots(field).sum()
    }

    fn held(&self) -> usize {
        let held: i64 = self
            .counts
            .iter()
            .map(|c| c.held.load(Ordering::Relaxed))
            .sum();
        held.max(0) as usize
    }
}

/// What a client task leaves behind.
struct ClientOutcome {
    server: usize,
    token: Option<String>,
    ready: bool,
    tracker: Tracker,
    /// The rooms scenario: the rooms (publishers) it follows, the only
    /// ones whose messages it expects. `None`: every publisher's.
    followed: Option<Vec<usize>>,
}

/// Of `expected` (per publisher), what a client following `followed`
/// should get.
fn own_share(followed: &Option<Vec<usize>>, expected: &Arc<Vec<u64>>) -> Arc<Vec<u64>> {
    match followed {
        Some(rooms) => Arc::new(rooms::expected_of(expected, rooms)),
        None => expected.clone(),
    }
}

/// Runs `fut` with a timeout; gives up at once when the scenario ends.
async fn guarded<T>(
    cancel: &CancellationToken,
    timeout: Duration,
    fut: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(CallError::Cancelled),
        r = tokio::time::timeout(timeout, fut) => r.unwrap_or(Err(CallError::Timeout)),
    }
}

/// Sleeps, or returns `false` at once when the scenario ends.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Decrements the held-poll gauge when a held poll ends, however it ends.
struct HeldGuard<'a>(&'a AtomicI64);

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Consecutive poll failures after which a client gives up.
const MAX_POLL_FAILURES: u32 = 5;

async fn client_task(ctx: Arc<Ctx>, i: usize) -> ClientOutcome {
    let cfg = &ctx.cfg;
    let global = cfg.first_client + i;
    let server_index = global % cfg.servers.len();
    let server = cfg.servers[server_index];
    let source = sys::source_for(server, global, cfg.source_addrs);
    let followed = cfg.rooms.map(|layout| layout.rooms_of(global));
    let mut out = ClientOutcome {
        server: server_index,
        token: None,
        ready: false,
        tracker: Tracker::default(),
        followed: followed.clone(),
    };
    let mut buf = Vec::with_capacity(1024);

    // Log in (ours); Nchan has no login: only connect.
    let Ok(permit) = ctx.setup.acquire().await else {
        ctx.logins_done.fetch_add(1, Ordering::Relaxed);
        return out;
    };
    let name = format!("lg{}-{}-{}", cfg.run, cfg.proc_index, i);
    let login = guarded(&ctx.cancel, ctx.request_timeout(), async {
        let mut conn = Conn::connect(server, source).await?;
        let token = match cfg.protocol {
            Protocol::Comet => Some(proto::login(&mut conn, &name, &mut buf).await?),
            Protocol::Nchan => None,
        };
        Ok((conn, token))
    })
    .await;
    let mut conn = match login {
        Ok((conn, token)) => {
            out.token = token;
            ctx.logins_ok.fetch_add(1, Ordering::Relaxed);
            ctx.logins_done.fetch_add(1, Ordering::Relaxed);
            Some(conn)
        }
        Err(e) => {
            if !matches!(e, CallError::Cancelled) {
                ctx.errors.add("login", &e.kind());
            }
            ctx.logins_done.fetch_add(1, Ordering::Relaxed);
            return out;
        }
    };
    let host = server.to_string();

    // Phased ramp: wait until every process has logged in.
    let mut permit = Some(permit);
    if !*ctx.start_polling.borrow() {
        drop(permit.take());
        let mut start = ctx.start_polling.clone();
        tokio::select! {
            _ = ctx.cancel.cancelled() => {
                ctx.setup_failed.fetch_add(1, Ordering::Relaxed);
                return out;
            }
            r = start.wait_for(|go| *go) => if r.is_err() {
                ctx.setup_failed.fetch_add(1, Ordering::Relaxed);
                return out;
            }
        }
        match ctx.setup.acquire().await {
            Ok(p) => permit = Some(p),
            Err(_) => {
                ctx.setup_failed.fetch_add(1, Ordering::Relaxed);
                return out;
            }
        }
    }

    // What to poll, from where: ours asks for the cursor (the connection
    // may have been closed while waiting: reconnect once), or in the rooms
    // scenario joins its rooms and asks for each one's; Nchan starts from
    // the channel's oldest message (the channel is new).
    let rooms: Option<Vec<String>> = followed.as_ref().map(|followed| {
        followed
            .iter()
            .map(|&r| rooms::room_name(&cfg.run, r))
            .collect()
    });
    let mut subscription = match cfg.protocol {
        Protocol::Nchan => Subscription::nchan(&host, &nchan::channel(&cfg.run)),
        Protocol::Comet => {
            let token = out.token.clone().unwrap_or_default();
            let mut subscription = None;
            for attempt in 0..2 {
                let c = conn.as_mut().filter(|c| !c.closed);
                let r = guarded(&ctx.cancel, ctx.request_timeout(), async {
                    let mut fresh = None;
                    let conn = match c {
                        Some(c) => c,
                        None => fresh.insert(Conn::connect(server, source).await?),
                    };
                    let subscription = match &rooms {
                        None => {
                            let cursor = proto::recent_cursor(conn, &token, None, &mut buf).await?;
                            Subscription::comet(&host, &token, Some(cursor))
                        }
                        Some(rooms) => {
                            let cursors =
                                rooms::join_and_follow(conn, &token, rooms, &mut buf).await?;
                            Subscription::channels(&host, &token, cursors)
                        }
                    };
                    Ok((subscription, fresh))
                })
                .await;
                match r {
                    Ok((s, fresh)) => {
                        if fresh.is_some() {
                            conn = fresh;
                        }
                        subscription = Some(s);
                        break;
                    }
                    Err(CallError::Cancelled) => break,
                    Err(e) => {
                        ctx.errors.add("recent", &e.kind());
                        conn = None;
                        if attempt == 0 && matches!(e, CallError::Http(_)) {
                            continue;
                        }
                        break;
                    }
                }
            }
            let Some(subscription) = subscription else {
                ctx.setup_failed.fetch_add(1, Ordering::Relaxed);
                return out;
            };
            subscription
        }
    };
    // The history's reply (tens of kB once thousands have joined) is the
    // biggest this client reads; a poll's reply is small. Without this,
    // each client would keep that much for the whole run.
    buf.clear();
    buf.shrink_to(1024);

    // Poll until told what was sent and all of it arrived.
    let interrupt = &ctx.interrupts[i];
    let mut expected: Option<Arc<Vec<u64>>> =
        ctx.stop.borrow().clone().map(|e| own_share(&followed, &e));
    let mut failures = 0u32;
    let poll_timeout = Duration::from_millis(cfg.poll_read_timeout_ms);
    loop {
        if let Some(exp) = &expected {
            if out.tracker.complete(exp) {
                break;
            }
        }
        if ctx.cancel.is_cancelled() {
            break;
        }
        if conn.as_ref().is_none_or(|c| c.closed) {
            match guarded(&ctx.cancel, ctx.request_timeout(), async {
                Ok(Conn::connect(server, source).await?)
            })
            .await
            {
                Ok(c) => conn = Some(c),
                Err(CallError::Cancelled) => break,
                Err(e) => {
                    ctx.errors.add("poll", &e.kind());
                    failures += 1;
                    if failures >= MAX_POLL_FAILURES
                        || !pause(&ctx.cancel, Duration::from_millis(200 * failures as u64)).await
                    {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { break };
        let reply = {
            let fut = poll_once(
                &ctx,
                interrupt,
                c,
                &subscription,
                &mut buf,
                &mut out.ready,
                &mut permit,
                poll_timeout,
            );
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    // The reply first: the interrupt is looked at only
                    // while the poll waits.
                    biased;
                    r = &mut fut => break Some(r),
                    () = interrupt.fired() => {
                        if ctx.cancel.is_cancelled() {
                            break None;
                        }
                        if interrupt.expired(clock_ms(ctx.clock)) {
                            break Some(Err(CallError::Timeout));
                        }
                        if expected.is_none() {
                            expected = ctx.stop.borrow().clone().map(|e| own_share(&followed, &e));
                        }
                        if let Some(exp) = &expected {
                            if out.tracker.complete(exp) {
                                break None;
                            }
                        }
                    }
                }
            }
        };
        let Some(reply) = reply else { break };
        match reply {
            Ok((head, body, arrived)) => match subscription.answer(&head, body, |code| {
                ctx.errors.add("poll", &format!("channel_{code}"));
            }) {
                Ok(answer) => {
                    failures = 0;
                    let read = sys::unix_nanos();
                    let received = Received {
                        // A kernel stamp is never after the read that got
                        // it; if the clock stepped in between, trust the read.
                        arrived: if arrived == 0 {
                            read
                        } else {
                            arrived.min(read)
                        },
                        read,
                    };
                    ctx.counts().polls.fetch_add(1, Ordering::Relaxed);
                    if answer.timed_out() {
                        ctx.counts().poll_timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    record_messages(&ctx, &answer, received, &mut out.tracker);
                }
                Err(CallError::Status(status)) => {
                    ctx.errors.add("poll", &format!("status_{status}"));
                    match status {
                        // Resynchronise from now on: what was missed shows as lost.
                        410 => subscription.resynchronise(),
                        429 | 500..=599 => {
                            failures += 1;
                            if failures >= MAX_POLL_FAILURES
                                || !pause(&ctx.cancel, Duration::from_millis(500)).await
                            {
                                break;
                            }
                        }
                        // 401 (logged out or reaped), 400, 404: no point going on.
                        _ => break,
                    }
                }
                Err(e) => {
                    ctx.errors.add("poll", &e.kind());
                    failures += 1;
                }
            },
            Err(CallError::Cancelled) => break,
            Err(e) => {
                ctx.errors.add("poll", &e.kind());
                conn = None;
                failures += 1;
                if failures >= MAX_POLL_FAILURES
                    || !pause(&ctx.cancel, Duration::from_millis(200 * failures as u64)).await
                {
                    break;
                }
            }
        }
    }
    if !out.ready {
        ctx.setup_failed.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// One poll on `conn`: the status, the body (borrowed from the
/// connection's buffer, or gathered in `buf`) and when the body reached the
/// socket (see [`Conn::body`](crate::http::Conn::body)). Counts the poll as held from
/// its head to its body, and the client as ready (and its setup slot free)
/// at its first accepted poll, which asks for an early head so it is known
/// to be held before anything arrives. Its deadlines (the request timeout
/// for the head, the poll read timeout for the body) are published on
/// `interrupt`, which the caller waits on.
#[allow(clippy::too_many_arguments)]
async fn poll_once<'a>(
    ctx: &Ctx,
    interrupt: &Interrupt,
    conn: &'a mut Conn,
    subscription: &Subscription,
    buf: &'a mut Vec<u8>,
    ready: &mut bool,
    permit: &mut Option<tokio::sync::SemaphorePermit<'_>>,
    timeout: Duration,
) -> Result<(Head, &'a [u8], u64), CallError> {
    struct Disarm<'i>(&'i Interrupt);
    impl Drop for Disarm<'_> {
        fn drop(&mut self) {
            self.0.disarm();
        }
    }
    let early = !*ready && subscription.acks_early();
    // A plain poll's head comes with its body, so it counts as held from
    // the moment it is sent (and its head may take the whole poll
    // timeout); an early-ack poll from its head.
    let _sent = (!early).then(|| {
        let held = &ctx.counts().held;
        held.fetch_add(1, Ordering::Relaxed);
        HeldGuard(held)
    });
    interrupt.arm(clock_ms(ctx.clock) + ctx.cfg.request_timeout_ms);
    let _disarm = Disarm(interrupt);
    subscription.send(conn, early).await?;
    if !early {
        interrupt.arm(clock_ms(ctx.clock) + timeout.as_millis() as u64);
        // A server that never acknowledges a poll early (Nchan): the
        // client is ready once its first poll is written; the driver then
        // asks the server how many polls it holds before publishing.
        if !*ready {
            mark_ready(ctx, ready, permit);
        }
    }
    let head = conn.read_head().await?;
    interrupt.arm(clock_ms(ctx.clock) + timeout.as_millis() as u64);
    let _held = (early && head.status == 200).then(|| {
        let held = &ctx.counts().held;
        held.fetch_add(1, Ordering::Relaxed);
        HeldGuard(held)
    });
    if head.status == 200 && !*ready {
        mark_ready(ctx, ready, permit);
    }
    let (body, arrived) = conn.body(&head, buf).await?;
    Ok((head, body, arrived))
}

/// Counts the client as polling and frees its setup slot.
fn mark_ready(ctx: &Ctx, ready: &mut bool, permit: &mut Option<tokio::sync::SemaphorePermit<'_>>) {
    *ready = true;
    ctx.ready.fetch_add(1, Ordering::Relaxed);
    permit.take();
}

/// When a poll's reply reached a client (nanoseconds since the Unix epoch).
#[derive(Clone, Copy)]
struct Received {
    /// The kernel's receive timestamp of the reply's last bytes: when the
    /// server's answer reached the client. Latency is measured to this.
    arrived: u64,
    /// When this client's code had read it: later by the load generator's
    /// own queue of other clients' replies (reported as read latency).
    read: u64,
}

fn record_messages(ctx: &Ctx, answer: &Answer<'_>, received: Received, tracker: &mut Tracker) {
    let counts = ctx.counts();
    let mut ours = 0;
    answer.each_text(
        |text| match text.and_then(|text| proto::parse_text(text, &ctx.run_prefix)) {
            Some((publisher, seq, sent)) if seq < MAX_SEQ && publisher < 1024 => {
                ours += 1;
                counts.latency.record(received.arrived.saturating_sub(sent));
                counts
                    .read_latency
                    .record(received.read.saturating_sub(sent));
                tracker.record(publisher, seq);
            }
            _ => {
                counts.other_messages.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    if ours > 0 {
        counts.deliveries.fetch_add(ours, Ordering::Relaxed);
        counts
            .last_delivery
            .fetch_max(received.arrived, Ordering::Relaxed);
        counts
            .first_delivery
            .fetch_min(received.arrived, Ordering::Relaxed);
    }
}

fn progress(cfg: &WorkerConfig, msg: std::fmt::Arguments<'_>) {
    if !cfg.quiet {
        eprintln!("[worker {}] {msg}", cfg.proc_index);
    }
}

/// Runs one worker until `Logout` (or `Abort`, or the command channel closes).
pub async fn run(
    cfg: WorkerConfig,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Event>,
) {
    crate::http::set_quickack(cfg.quickack);
    let (start_tx, start_rx) = watch::channel(cfg.ramp == Ramp::Live);
    let (stop_tx, stop_rx) = watch::channel(None);
    let ctx = Arc::new(Ctx {
        run_prefix: proto::run_prefix(&cfg.run),
        setup: Semaphore::new(cfg.setup_concurrency.max(1)),
        errors: Errors::default(),
        counts: (0..COUNT_SLOTS).map(|_| Counts::default()).collect(),
        logins_done: AtomicUsize::new(0),
        logins_ok: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        setup_failed: AtomicUsize::new(0),
        start_polling: start_rx,
        stop: stop_rx,
        cancel: CancellationToken::new(),
        interrupts: Arc::new((0..cfg.clients).map(|_| Interrupt::default()).collect()),
        clock: Instant::now(),
        cfg,
    });
    let cfg = &ctx.cfg;
    let started = Instant::now();
    progress(cfg, format_args!("logging in {} clients", cfg.clients));
    let handles: Vec<_> = (0..cfg.clients)
        .map(|i| tokio::spawn(client_task(ctx.clone(), i)))
        .collect();

    let ready_timeout = Duration::from_millis(cfg.ready_timeout_ms);
    let login_deadline = started + ready_timeout;
    let mut ready_deadline = if cfg.ramp == Ramp::Live {
        Some(started + ready_timeout)
    } else {
        None
    };
    let mut logged_in_sent = false;
    let mut ready_sent = false;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut last_sweep = Instant::now();
    let (outcomes, logout_now) = loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now - last_sweep >= DEADLINE_SWEEP {
                    last_sweep = now;
                    sweep_deadlines(&ctx.interrupts, ctx.clock);
                }
                let ok = ctx.logins_ok.load(Ordering::Relaxed);
                let done = ctx.logins_done.load(Ordering::Relaxed);
                if !logged_in_sent && (done == cfg.clients || now >= login_deadline) {
                    logged_in_sent = true;
                    progress(cfg, format_args!(
                        "{ok} logged in, {} failed, in {:.1}s",
                        done - ok,
                        started.elapsed().as_secs_f64()
                    ));
                    let _ = events.send(Event::LoggedIn { ok, failed: done - ok });
                }
                let ready = ctx.ready.load(Ordering::Relaxed);
                let failed = ctx.setup_failed.load(Ordering::Relaxed);
                if let Some(deadline) = ready_deadline {
                    if logged_in_sent && !ready_sent
                        && ((done == cfg.clients && ready + failed >= ok) || now >= deadline)
                    {
                        ready_sent = true;
                        progress(cfg, format_args!(
                            "{ready} polling, {failed} failed, {} held, after {:.1}s",
                            ctx.held(),
                            started.elapsed().as_secs_f64()
                        ));
                        let _ = events.send(Event::Ready { ready, held: ctx.held(), failed });
                    }
                }
            }
            cmd = cmds.recv() => match cmd {
                Some(Cmd::StartPolling) => {
                    let _ = start_tx.send(true);
                    ready_deadline = Some(Instant::now() + ready_timeout);
                }
                Some(Cmd::Sample) => {
                    let _ = events.send(Event::Held { held: ctx.held() });
                }
                Some(Cmd::Stop { expected, drain_ms }) => {
                    let _ = start_tx.send(true);
                    let _ = stop_tx.send(Some(Arc::new(expected.clone())));
                    interrupt_all(&ctx.interrupts);
                    let all = collect_clients(&ctx, handles, Duration::from_millis(drain_ms)).await;
                    let result = summarize(&ctx, &all, &expected);
                    let _ = events.send(Event::Result(Box::new(result)));
                    break (all, false);
                }
                Some(Cmd::Logout) => {
                    break (collect_clients(&ctx, handles, Duration::ZERO).await, true);
                }
                Some(Cmd::Abort) | None => {
                    cancel_all(&ctx.cancel, &ctx.interrupts);
                    let all = collect_clients(&ctx, handles, Duration::ZERO).await;
                    logout_all(cfg, &sessions(&all), Duration::from_secs(10)).await;
                    return;
                }
            }
        }
    };
    // Wait for Logout (unless it already came).
    if !logout_now {
        loop {
            match cmds.recv().await {
                Some(Cmd::Logout) => break,
                Some(Cmd::Sample) => {
                    let _ = events.send(Event::Held { held: 0 });
                }
                Some(Cmd::Abort) | None => {
                    logout_all(cfg, &sessions(&outcomes), Duration::from_secs(10)).await;
                    return;
                }
                Some(_) => {}
            }
        }
    }
    let timeout = Duration::from_secs(30 + cfg.clients as u64 / 200);
    let (ok, failed, errors) = logout_all(cfg, &sessions(&outcomes), timeout).await;
    progress(cfg, format_args!("{ok} logged out, {failed} failed"));
    let _ = events.send(Event::LoggedOut { ok, failed, errors });
}

/// Waits for every client task: they end when they have everything
/// expected; at `drain` the rest are cancelled (their held polls dropped).
async fn collect_clients(
    ctx: &Ctx,
    handles: Vec<tokio::task::JoinHandle<ClientOutcome>>,
    drain: Duration,
) -> Vec<ClientOutcome> {
    let cancel = ctx.cancel.clone();
    let interrupts = ctx.interrupts.clone();
    let clock = ctx.clock;
    let timer = tokio::spawn(async move {
        // Polls still time out while draining.
        let end = tokio::time::Instant::now() + drain;
        let mut tick = tokio::time::interval(DEADLINE_SWEEP);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => break,
                _ = tick.tick() => sweep_deadlines(&interrupts, clock),
            }
        }
        cancel_all(&cancel, &interrupts);
    });
    let mut all = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(outcome) = h.await {
            all.push(outcome);
        }
    }
    timer.abort();
    // Whatever still runs (nothing should) is told to stop.
    cancel_all(&ctx.cancel, &ctx.interrupts);
    all
}

fn summarize(ctx: &Ctx, all: &[ClientOutcome], expected: &[u64]) -> WorkerResult {
    let mut r = WorkerResult {
        clients: ctx.cfg.clients,
        logged_in: ctx.logins_ok.load(Ordering::Relaxed),
        ..Default::default()
    };
    let expected = Arc::new(expected.to_vec());
    for c in all.iter().filter(|c| c.ready) {
        let own = own_share(&c.followed, &expected);
        r.ready += 1;
        r.expected += own.iter().sum::<u64>();
        let t = c.tracker.tally(&own);
        r.lost += t.lost;
        r.duplicated += t.duplicated;
        r.out_of_order += t.out_of_order;
        r.lost_clients += usize::from(t.lost > 0);
        r.duplicated_clients += usize::from(t.duplicated > 0);
        r.out_of_order_clients += usize::from(t.out_of_order > 0);
        r.complete += usize::from(t.lost == 0);
        r.got_any += usize::from(t.received > 0);
    }
    r.deliveries = ctx.sum(|c| &c.deliveries);
    r.other_messages = ctx.sum(|c| &c.other_messages);
    r.polls = ctx.sum(|c| &c.polls);
    r.poll_timeouts = ctx.sum(|c| &c.poll_timeouts);
    for c in ctx.counts.iter() {
        r.latency.merge(&c.latency.snapshot());
        r.read_latency.merge(&c.read_latency.snapshot());
    }
    let first = ctx.slots(|c| &c.first_delivery).min().unwrap_or(u64::MAX);
    r.first_delivery_ns = if first == u64::MAX { 0 } else { first };
    r.last_delivery_ns = ctx.slots(|c| &c.last_delivery).max().unwrap_or(0);
    r.errors = ctx.errors.snapshot();
    r
}

/// The `(server, token)` of every client that logged in.
fn sessions(all: &[ClientOutcome]) -> Vec<(usize, String)> {
    all.iter()
        .filter_map(|c| c.token.clone().map(|t| (c.server, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poll_past_its_deadline_is_interrupted_and_only_it() {
        let clock = Instant::now() - Duration::from_secs(10);
        let interrupts: Vec<Interrupt> = (0..3).map(|_| Interrupt::default()).collect();
        let now = clock_ms(clock);
        // The first poll is past its deadline, the second is not, the
        // third client has no poll in progress.
        interrupts[0].arm(now - 1);
        interrupts[1].arm(now + 60_000);
        sweep_deadlines(&interrupts, clock);
        assert!(interrupts[0].fired.load(Ordering::Acquire));
        assert!(interrupts[0].expired(clock_ms(clock)));
        assert!(!interrupts[1].fired.load(Ordering::Acquire));
        assert!(!interrupts[2].fired.load(Ordering::Acquire));
        // A poll that ended is never timed out by a late interrupt.
        interrupts[0].disarm();
        assert!(!interrupts[0].expired(clock_ms(clock)));
        // The fired interrupt resolves its waiter once.
        interrupts[0].fired().await;
        assert!(!interrupts[0].fired.load(Ordering::Acquire));
    }
}
