//! Security headers on every response from the router: what a browser
//! may do with our bytes, whatever they are.
//!
//! - `X-Content-Type-Options: nosniff`: a JSON reply or an uploaded-looking
//!   text is never run as a script or a style because it looks like one.
//! - `Referrer-Policy: same-origin`: links to other sites do not tell them
//!   which page of ours (and so whose session) sent the visitor.
//! - `Content-Security-Policy`: scripts only from this origin, plus the one
//!   inline script Leptos writes to start hydration, which carries a nonce
//!   fresh for every page ([`page_policy`], set by the shell in `app.rs`,
//!   which is where the nonce is known); `'wasm-unsafe-eval'` lets that
//!   script instantiate the app's wasm. No plugins, no `<base>`, forms post
//!   only here, and no other site may frame us (`frame-ancestors 'none'`,
//!   and `X-Frame-Options: DENY` for browsers that predate it). Style
//!   *attributes* are allowed (the chat colours names with
//!   `style="--hue: …"`); style sheets and `<style>` elements only from
//!   here.
//!
//! Responses that are not pages (server functions, `/healthz`, files, the
//! router's `/comet/…` polls) get the same policy without a nonce: they
//! run no inline script at all. The connection loop's poll shortcut
//! (`serve::Shortcut`) answers without the router, so its JSON replies do
//! not pass through this layer.

use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};

/// The policy for a page whose inline scripts carry `nonce`, or for any
/// other response (`None`: no inline script may run).
pub fn page_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_owned(),
    };
    // `cargo leptos watch` adds a live-reload script that opens a
    // WebSocket to another port: allowed only while it is running.
    let connect = if std::env::var_os("LEPTOS_WATCH").is_some() {
        "connect-src 'self' ws: wss:"
    } else {
        "connect-src 'self'"
    };
    format!(
        "default-src 'self'; {scripts}; {connect}; style-src 'self'; \
         style-src-attr 'unsafe-inline'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Adds the headers above to a response's; a `Content-Security-Policy`
/// already set (a page's, with its nonce) is kept. `crate::guard` calls it
/// for every response of the router.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        // The same for every response that is not a page: built once.
        static POLICY: std::sync::OnceLock<Option<HeaderValue>> = std::sync::OnceLock::new();
        let policy = POLICY.get_or_init(|| HeaderValue::from_str(&page_policy(None)).ok());
        if let Some(policy) = policy {
            headers.insert(CONTENT_SECURITY_POLICY, policy.clone());
        }
    }
}

/// Called by the shell while a page renders: puts this page's nonce into
/// its policy. Outside a server render (no nonce, no response options) it
/// does nothing, and the middleware's nonce-free policy applies.
pub fn provide_page_policy() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    match HeaderValue::from_str(&page_policy(Some(&nonce))) {
        Ok(policy) => response.insert_header(CONTENT_SECURITY_POLICY, policy),
        Err(error) => tracing::warn!(%error, "cannot build the page's Content-Security-Policy"),
    }
}
