//! The HTML shell and the routes.

use crate::chat::{login::LoginPage, room::ChatRoute};
use crate::hydrated::provide_hydrated;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    Lazy, OptionalParamSegment, SsrMode, StaticSegment,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    provide_page_policy();
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

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_hydrated();

    view! {
        <Title text="Comet Chat"/>
        <Router>
            <Routes fallback=|| view! { <main class="notfound"><h1>"Page not found"</h1><a href="/">"Go to login"</a></main> }>
                <Route path=StaticSegment("") view=LoginPage/>
                // Async: rendered whole once the session and history are known,
                // so it works without JavaScript and can still redirect (302).
                // `/chat` is the default room, `/chat/{room}` another: one
                // route, so moving between rooms keeps the page (and its poll).
                <Route
                    path=(StaticSegment("chat"), OptionalParamSegment("room"))
                    view={Lazy::<ChatRoute>::new()}
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}

/// This page's Content-Security-Policy names the nonce Leptos gives its
/// inline hydration script (see headers.rs).
#[cfg(feature = "ssr")]
fn provide_page_policy() {
    crate::headers::provide_page_policy();
}

/// The browser renders no headers.
#[cfg(not(feature = "ssr"))]
fn provide_page_policy() {}
