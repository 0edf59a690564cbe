//! The baseline: a bare hyper 1.x server that answers every request with a
//! tiny 200, and the `hello` scenario that measures requests/s against it
//! with the same client code the chat scenarios use. Run in the same
//! session as the chat scenarios, it gives the machine's raw request
//! ceiling, so chat figures can be quoted as ratios that travel between
//! machines better than absolute numbers.

use crate::cli::Opts;
use crate::http::Conn;
use crate::proto::CallError;
use crate::report::{Latency, Report};
use crate::stats::{AtomicHistogram, Errors};
use crate::sys;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// `loadgen hello-server`: serves until killed, or `max_secs` at most.
/// Prints `listening on <addr>` on stdout once bound (so port 0 works).
pub async fn serve(addr: SocketAddr, max_secs: f64) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let deadline = tokio::time::sleep(Duration::from_secs_f64(max_secs));
    tokio::pin!(deadline);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut deadline => return Ok(()),
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of fds or similar: wait a little rather than spin.
                    eprintln!("hello-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

/// The `hello` scenario: `connections` connections, each sending requests
/// back to back on keep-alive for `duration` seconds.
pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let started = Instant::now();
    let latency = Arc::new(AtomicHistogram::default());
    let errors = Arc::new(Errors::default());
    let requests = Arc::new(AtomicU64::new(0));
    let duration = Duration::from_secs_f64(opts.duration);
    let request_timeout = Duration::from_secs_f64(opts.request_timeout);
    let path: Arc<str> = opts.path.clone().into();
    if !opts.quiet {
        eprintln!(
            "[hello] {} connections for {:.0}s against {:?}{}",
            opts.connections, opts.duration, opts.servers, opts.path
        );
    }
    let begin = tokio::time::Instant::now() + Duration::from_millis(100);
    let end = begin + duration;
    let mut tasks = Vec::new();
    for i in 0..opts.connections {
        let server = opts.servers[i % opts.servers.len()];
        let source = sys::source_for(server, i, opts.source_addrs);
        let (latency, errors, requests, path) = (
            latency.clone(),
            errors.clone(),
            requests.clone(),
            path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut buf = Vec::new();
            let mut failures = 0;
            tokio::time::sleep_until(begin).await;
            while tokio::time::Instant::now() < end && failures < 100 {
                let t0 = Instant::now();
                let r = tokio::time::timeout(request_timeout, async {
                    if conn.as_ref().is_none_or(|c| c.closed) {
                        conn = Some(Conn::connect(server, source).await?);
                    }
                    let c = conn.as_mut().expect("connected above");
                    let head = c.request("GET", &path, None, None, b"", &mut buf).await?;
                    Ok::<u16, CallError>(head.status)
                })
                .await
                .unwrap_or(Err(CallError::Timeout));
                match r {
                    Ok(200) => {
                        latency.record(t0.elapsed().as_nanos() as u64);
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(status) => {
                        errors.add("hello", &format!("status_{status}"));
                        failures += 1;
                    }
                    Err(e) => {
                        errors.add("hello", &e.kind());
                        conn = None;
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The last requests may finish a little after `end`: divide by the
    // time actually spent.
    let spent = (tokio::time::Instant::now() - begin).as_secs_f64();
    let done = requests.load(Ordering::Relaxed);
    let hist = latency.snapshot();
    Ok(Report {
        scenario: "hello".to_owned(),
        run: opts.run.clone(),
        servers: opts.servers.iter().map(|s| s.to_string()).collect(),
        procs: 1,
        connections: Some(opts.connections),
        requests: Some(done),
        requests_per_sec: Some(done as f64 / spent.max(1e-9)),
        latency: Latency::from_histogram(&hist),
        errors: errors.snapshot(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        ..Default::default()
    })
}
