//! Assembles the server: provider → comet channels → chat state → router.
//! `main.rs` serves what this builds; the HTTP tests drive the same router.

use crate::app::{shell, App};
use crate::chat::{self, api::ssr::ChatState};
use crate::comet::{wants_early_ack, Comet, CometError, MemoryProvider, Provider, RedisProvider};
use crate::config::Config;
use crate::serve;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The provider the configuration asks for: Redis when `redis_url` is
/// set (waiting for it if it is not up yet), else in-process.
pub async fn provider(config: &Config) -> Result<Arc<dyn Provider>, CometError> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(RedisProvider::connect_waiting(url, config.retention).await?),
        None => Arc::new(MemoryProvider::new(config.retention)),
    })
}

/// The whole app on `provider` (the router, and the poll shortcut in
/// front of it), and the channels it serves (for shutdown).
pub fn build(
    config: &Config,
    provider: Arc<dyn Provider>,
    leptos_options: LeptosOptions,
) -> (serve::App, Comet) {
    let comet = Comet::new(provider, config.comet.clone(), &[chat::CHANNEL]);
    let state = ChatState {
        chat: comet
            .channel(chat::CHANNEL)
            .expect("the chat channel was just created"),
        cookie_secure: config.chat.cookie_secure,
        max_name_chars: config.chat.max_name_chars,
        max_message_chars: config.chat.max_message_chars,
        history: config.chat.history,
    };
    let routes = generate_route_list(App);
    let router = Router::new()
        .route("/healthz", get(healthz))
        .merge(comet.router())
        .leptos_routes_with_context(
            &leptos_options,
            routes,
            move || provide_context(state.clone()),
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options);
    let app = serve::App {
        router,
        shortcut: Some(Arc::new(PollShortcut(comet.clone()))),
    };
    (app, comet)
}

async fn healthz() -> &'static str {
    "ok"
}

/// The channel route's polls, answered by the connection loop itself
/// ([`Comet::answer`]): same checks, same bytes, none of the router's
/// per-request request and response building. Early-acknowledged polls
/// (a streamed body) and anything unusual in the path go to the router.
pub struct PollShortcut(pub Comet);

impl serve::Shortcut for PollShortcut {
    fn take(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Pin<Box<dyn Future<Output = serve::Reply> + Send>>> {
        if method != Method::POST || wants_early_ack(headers) {
            return None;
        }
        let channel = uri.path().strip_prefix("/comet/")?;
        if channel.is_empty() || channel.contains(['/', '%']) {
            return None;
        }
        let answer = self.0.answer(channel, headers, &body);
        Some(Box::pin(async move {
            let answer = answer.await;
            serve::Reply {
                status: answer.status,
                headers: answer.headers().collect(),
                body: answer.body,
            }
        }))
    }
}
