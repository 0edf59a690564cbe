//! Assembles the server: provider → comet channels → chat state → router.
//! `main.rs` serves what this builds; the HTTP tests drive the same router.

use crate::app::{shell, App};
use crate::chat::{self, api::ssr::ChatState};
use crate::comet::{Comet, CometError, MemoryProvider, Provider, RedisProvider};
use crate::config::Config;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;

/// The provider the configuration asks for: Redis when `redis_url` is
/// set, else in-process.
pub async fn provider(config: &Config) -> Result<Arc<dyn Provider>, CometError> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(RedisProvider::connect(url, config.retention).await?),
        None => Arc::new(MemoryProvider::new(config.retention)),
    })
}

/// The whole app's router on `provider`, and the channels it serves (for
/// shutdown).
pub fn build(
    config: &Config,
    provider: Arc<dyn Provider>,
    leptos_options: LeptosOptions,
) -> (Router, Comet) {
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
    (router, comet)
}

async fn healthz() -> &'static str {
    "ok"
}
