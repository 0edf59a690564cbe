//! Assembles the server: provider → comet channels → chat state → router.
//! `main.rs` serves what this builds; the HTTP tests drive the same router.

use crate::app::{shell, App};
use crate::chat::{self, session::ChatState};
use crate::config::{Config, MetricsAt};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use comet::serve;
use comet::{wants_early_ack, Comet, CometError, MemoryProvider, Provider, RedisProvider};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The provider the configuration asks for: Redis when `redis_url` is
/// set (waiting for it if it is not up yet), else in-process.
pub async fn provider(config: &Config) -> Result<Arc<dyn Provider>, CometError> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(
            RedisProvider::connect_waiting_bounded(
                url,
                config.retention,
                config.comet.provider_timeout,
            )
            .await?
            .wait_for_replicas(config.redis_wait_replicas, config.redis_wait_timeout),
        ),
        None => Arc::new(MemoryProvider::new(config.retention)),
    })
}

/// The whole app on `provider` (the router, and the poll shortcut in
/// front of it), and the channels it serves (for shutdown).
pub fn build(
    config: &Config,
    provider: Arc<dyn Provider>,
    leptos_options: LeptosOptions,
) -> (serve::Routes, Comet) {
    // The recorder must exist before the channels: they take their metric
    // handles once, at creation (a handle taken earlier records nothing).
    if config.metrics != MetricsAt::Off {
        metrics_handle();
    }
    let comet = Comet::with_policy(
        provider,
        config.comet.clone(),
        &[chat::CHANNEL],
        Arc::new(chat::membership::RoomPolicy),
    );
    let state = ChatState::new(
        config,
        comet.clone(),
        comet
            .channel(chat::CHANNEL)
            .expect("the chat channel was just created"),
    );
    let origin_rule = Arc::new(crate::origin::OriginRule {
        secure: config.chat.cookie_secure,
        peer: (*state.peer).clone(),
    });
    let health = state.chat.clone();
    let pages = generate_route_list(App);
    let mut router: Router<LeptosOptions> =
        Router::new().route("/healthz", get(move || healthz(health.clone())));
    if config.metrics == MetricsAt::Same {
        router = router.merge(metrics_router());
    }
    let router = router
        .merge(comet.router())
        .leptos_routes_with_context(
            &leptos_options,
            pages,
            move || provide_context(state.clone()),
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(crate::assets::file_and_error_handler(shell))
        .with_state(leptos_options)
        .layer(crate::guard::GuardLayer::new(origin_rule));
    let routes = serve::Routes {
        router,
        shortcut: Some(Arc::new(PollShortcut(comet.clone()))),
    };
    (routes, comet)
}

/// `GET /metrics` alone: merged into the app's router (`COMET_METRICS=same`)
/// or served on a listener of its own (an address), so the public port
/// need not show the node's internals.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let metrics = metrics_handle();
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

/// The process's Prometheus recorder, installed on first use (the tests
/// build the app several times in one process; they share it).
pub fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(comet::metrics::POLL_HOLD.into()),
                    comet::metrics::POLL_HOLD_BUCKETS,
                )
                .expect("the poll hold buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (an embedding app's): keep
            // serving ours, which then stays empty.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            comet::metrics::describe();
            // Histogram samples are kept until drained: drain them every few
            // seconds even when nobody scrapes, so memory stays bounded.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            handle
        })
        .clone()
}

/// `200 ok` when this node and its provider answer; `503 unavailable`
/// when the provider does not (a load balancer should then send clients
/// elsewhere). The body says no more than that: the provider's error (a
/// host name, a Redis message) is for the operator's log, not for whoever
/// can reach the port.
async fn healthz(chat: Arc<comet::Manager>) -> (axum::http::StatusCode, &'static str) {
    match chat.ping().await {
        Ok(()) => (axum::http::StatusCode::OK, "ok"),
        Err(error) => {
            tracing::warn!(%error, "health check: the provider does not answer");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}

/// The channel route's polls, answered by the connection loop itself
/// ([`Comet::answer`]): same checks, same bytes, none of the router's
/// per-request request and response building. Early-acknowledged polls
/// (a streamed body) and anything unusual in the path go to the router.
/// The polls it takes bypass the router's layers (see [`serve::Shortcut`]):
/// today that is `crate::guard`, whose checks concern `/api/` alone and whose
/// security headers a poll's JSON reply does not need. A
/// layer added to the router for polls must be mirrored here.
pub struct PollShortcut(pub Comet);

impl serve::Shortcut for PollShortcut {
    fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Pin<Box<dyn Future<Output = serve::ShortcutResponse> + Send>>> {
        if method != Method::POST || wants_early_ack(headers) {
            return None;
        }
        let channel = uri.path().strip_prefix("/comet/")?;
        if channel.is_empty() || channel.contains(['/', '%']) {
            return None;
        }
        // A combinator, not an `async move` block: a block keeps the
        // future it captured and the same future being awaited in two
        // places, which made every held poll's box twice the size
        // (1 464 bytes instead of 736).
        use futures::FutureExt;
        let answering = self.0.answer(channel, headers, &body);
        Some(Box::pin(answering.map(|response| {
            serve::ShortcutResponse {
                status: response.status,
                headers: response.headers().collect(),
                body: response.body,
            }
        })))
    }

    /// A poll connection reads its next poll only once every poll woken
    /// by the last message has answered (see [`Comet::answered`]).
    fn before_next_request(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        if !self.0.is_answering() {
            return None;
        }
        Some(Box::pin(self.0.answered()))
    }
}
