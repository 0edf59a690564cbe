//! Whether the page has hydrated: lets views switch from server-side
//! defaults (UTC clock) to browser ones (local time) without a mismatch.
//! Its own module so the shell (`app`) and the views that read it
//! (`chat::clock`) both depend on it, not on each other.

use leptos::prelude::*;

/// True once the page has hydrated.
#[derive(Clone, Copy)]
pub struct Hydrated(pub RwSignal<bool>);

/// Provides [`Hydrated`] as context, set (and `data-hydrated="true"` put
/// on `<body>`) once the page has hydrated.
pub fn provide_hydrated() {
    let hydrated = RwSignal::new(false);
    provide_context(Hydrated(hydrated));
    // Effects run only in the browser, after hydration: the marker tests
    // (and styles) rely on.
    Effect::new(move |_| {
        hydrated.set(true);
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// Whether the page has hydrated (tracked); `false` outside the app.
pub fn is_hydrated() -> bool {
    use_context::<Hydrated>()
        .map(|h| h.0.get())
        .unwrap_or(false)
}
