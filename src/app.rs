//! The HTML shell and the routes.

use crate::chat::{login::LoginPage, room::ChatRoute};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    Lazy, SsrMode, StaticSegment,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    // This page's Content-Security-Policy names the nonce Leptos gives its
    // inline hydration script (see headers.rs).
    #[cfg(feature = "ssr")]
    crate::headers::provide_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                // Both read the content-hashed names from hash.txt (src/assets.rs).
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// True once the page has hydrated: lets views switch from server-side
/// defaults (UTC clock) to browser ones (local time) without a mismatch.
#[derive(Clone, Copy)]
pub struct Hydrated(pub RwSignal<bool>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
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

    view! {
        <Title text="Comet Chat"/>
        <Router>
            <Routes fallback=|| view! { <main class="notfound"><h1>"Page not found"</h1><a href="/">"Go to login"</a></main> }>
                <Route path=StaticSegment("") view=LoginPage/>
                // Async: rendered whole once the session and history are known,
                // so it works without JavaScript and can still redirect (302).
                <Route path=StaticSegment("chat") view={Lazy::<ChatRoute>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
