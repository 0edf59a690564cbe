//! The login page at `/`. A plain form posting to `/api/login`, enhanced
//! by `ActionForm` once hydrated, so it works before the WASM arrives (and
//! without JavaScript at all: errors then come back in the URL and are
//! shown by the server-rendered page).

use super::api::{error_text, Login};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    view! {
        <Title text="Comet Chat: log in"/>
        <main class="login">
            <section class="card">
                <h1>"Comet Chat"</h1>
                <p class="tagline">"Live chat over HTTP long polling."</p>
                <ActionForm action=login attr:class="login-form">
                    <label for="username">"Your name"</label>
                    <input
                        id="username"
                        name="username"
                        type="text"
                        autocomplete="nickname"
                        autofocus
                        placeholder="e.g. Ada"
                    />
                    <button type="submit" data-testid="login-submit" disabled=move || login.pending().get()>
                        "Join the chat"
                    </button>
                </ActionForm>
                {move || error().map(|e| view! { <p role="alert" class="error" data-testid="login-error">{e}</p> })}
            </section>
        </main>
    }
}
