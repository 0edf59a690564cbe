//! Comet Chat: the chat app that shows off the `comet` crate (server push
//! over HTTP long polling, `comet/` in this workspace). The server entry is
//! `main.rs`; the browser entry is [`hydrate`].

pub mod app;
#[cfg(feature = "ssr")]
pub mod assets;
pub mod chat;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod guard;
#[cfg(feature = "ssr")]
pub mod headers;
pub mod hydrated;
#[cfg(feature = "ssr")]
pub mod origin;
#[cfg(feature = "ssr")]
pub mod peer;
#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy: the chat page is a lazy route (its code a wasm chunk of its own).
    leptos::mount::hydrate_lazy(app::App);
}
