//! The server: config → provider → channels → router → serve, and a
//! graceful shutdown in the order the `comet` crate's docs give step by
//! step, with what clients see (section "Shutdown", `comet/src/lib.rs`).

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use anyhow::Context;
    use comet::serve;
    use comet_chat::config::{Config, MetricsAt};
    use comet_chat::server;
    use leptos::prelude::get_configuration;

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    return_large_buffers_to_the_system();
    let open_files = raise_open_file_limit();
    let mut config = Config::load().context("invalid configuration")?;
    if let Some(open_files) = open_files {
        let asked = config.http.max_connections;
        if config.http.fit_open_files(open_files) {
            tracing::warn!(
                asked,
                open_files,
                max_connections = config.http.max_connections,
                "HTTP_MAX_CONNECTIONS lowered to fit the open-file limit"
            );
        }
    }
    let leptos = get_configuration(None).context("invalid Leptos configuration")?;
    let addr = leptos.leptos_options.site_addr;
    let provider = server::provider(&config)
        .await
        .context("cannot reach the provider")?;
    let (routes, comet) = server::build(&config, provider, leptos.leptos_options);

    let listener = serve::listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
    if let MetricsAt::Separate(metrics) = config.metrics {
        let listener = serve::listen(metrics)
            .with_context(|| format!("cannot listen on {metrics} (COMET_METRICS)"))?;
        tracing::info!(%metrics, "serving /metrics on http://{metrics}/metrics");
        // A scrape endpoint has nothing to drain: it lives as long as the
        // process, and stops with it.
        tokio::spawn(serve::serve(
            listener,
            server::metrics_router::<()>(),
            serve::Limits::default(),
            std::future::pending(),
        ));
    }
    tracing::info!(
        %addr,
        poll_timeout = ?config.comet.connection_timeout,
        idle_timeout = ?config.comet.idle_timeout,
        provider = if config.redis_url.is_some() { "redis" } else { "in-process" },
        // Displayed with its password hidden (RedisUrl).
        redis = config.redis_url.as_ref().map(ToString::to_string),
        metrics = ?config.metrics,
        "serving Comet Chat on http://{addr}"
    );
    // The graceful stop, in the order of the `comet` crate's docs
    // ("Shutdown"), which say what each step guarantees.
    let stopping = comet.clone();
    serve::serve(listener, routes, config.http.clone(), async move {
        shutdown_signal().await;
        tracing::info!("shutting down: answering waiting polls");
        stopping.shutdown(); // step 1
    })
    .await; // steps 2 to 4
    comet.flush_presence().await; // step 5
    Ok(())
}

/// Large buffers (a long poll reply, a server-rendered page) go back to
/// the system when freed. glibc serves allocations above a threshold with
/// their own mapping, returned on free, but it raises that threshold to the
/// size of every such block freed: after a burst of 4 MB replies to clients
/// that stopped reading (cut off at the write deadline), later ones came
/// from the heap and stayed resident, 245 MB of them in the stalled-reader
/// benchmark. A fixed threshold keeps the first behaviour; the replies of
/// ordinary polls are far below it.
#[cfg(all(feature = "ssr", target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_to_the_system() {
    const THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread starts allocating large blocks.
    if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) } != 1 {
        tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused");
    }
}

#[cfg(all(feature = "ssr", not(all(target_os = "linux", target_env = "gnu"))))]
fn return_large_buffers_to_the_system() {}

/// Every held poll is an open socket: lift the soft limit on open files to
/// the hard limit, or the server would refuse connections at 1 024. The
/// limit in force after, which the connection cap must sit below.
#[cfg(all(feature = "ssr", unix))]
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        let soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(
                from = soft,
                to = limit.rlim_max,
                "raised the open-file limit"
            );
            Some(limit.rlim_max)
        } else {
            Some(soft)
        }
    }
}

#[cfg(all(feature = "ssr", not(unix)))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

#[cfg(feature = "ssr")]
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser entry point is `hydrate()` in lib.rs.
}
