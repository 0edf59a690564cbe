//! The message box under the chat: writes to everyone, or privately to
//! the person picked in the online list; Enter sends, Shift+Enter is a
//! newline. A send carries an id, kept across retries, so a send whose
//! answer was lost is not sent twice.

use super::api::{error_text, SendMessage, SendPrivateMessage};
use super::lines::OnlineUser;
use super::name_hue;
use leptos::prelude::*;

/// `room`: the room the page shows, where sends go.
#[component]
pub fn Composer(to: RwSignal<Option<OnlineUser>>, room: Signal<String>) -> impl IntoView {
    let send = ServerAction::<SendMessage>::new();
    let private = ServerAction::<SendPrivateMessage>::new();
    let draft = RwSignal::new(String::new());
    let send_id = StoredValue::new(new_send_id());
    let error = RwSignal::new(None::<String>);
    let textarea = NodeRef::<leptos::html::Textarea>::new();
    let settle = move |result: Option<Result<(), ServerFnError>>| match result {
        Some(Ok(())) => {
            draft.set(String::new());
            send_id.set_value(new_send_id());
            error.set(None);
        }
        Some(Err(e)) => error.set(Some(error_text(&e))),
        None => {}
    };
    Effect::new(move |_| settle(send.value().get()));
    Effect::new(move |_| settle(private.value().get()));
    // Picking someone to write to puts the cursor in the message box.
    Effect::new(move |_| {
        if to.get().is_some() {
            if let Some(el) = textarea.get_untracked() {
                let _ = el.focus();
            }
        }
    });
    let pending = move || send.pending().get() || private.pending().get();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = draft.get_untracked();
        let id = Some(send_id.get_value());
        match to.get_untracked() {
            Some(user) => {
                private.dispatch(SendPrivateMessage {
                    to: user.public,
                    text,
                    id,
                    room: Some(room.get_untracked()),
                });
            }
            None => {
                send.dispatch(SendMessage {
                    text,
                    id,
                    room: Some(room.get_untracked()),
                });
            }
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        // Enter sends; Shift+Enter (or an IME composition) is a newline.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            use leptos::wasm_bindgen::JsCast;
            if let Some(form) = ev
                .target()
                .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlTextAreaElement>().ok())
                .and_then(|t| t.form())
            {
                let _ = form.request_submit();
            }
        }
    };
    let placeholder = move || match to.get() {
        Some(user) => format!("Private message to {}…", user.name),
        None => format!("Message #{}…", room.get()),
    };
    view! {
        {move || to.get().map(|user| view! {
            <div class="private-bar" data-testid="private-to">
                "Private message to " <strong style=format!("--hue: {}", name_hue(&user.name))>{user.name.clone()}</strong>
                <button
                    type="button"
                    class="cancel"
                    data-testid="cancel-private"
                    aria-label="Write to everyone instead"
                    on:click=move |_| to.set(None)
                >
                    "Everyone"
                </button>
            </div>
        })}
        // Without JavaScript the form still posts to the server function
        // (to everyone), which sends the browser back to this page.
        <form class="composer" method="post" action="/api/send_message" on:submit=on_submit>
            <input type="hidden" name="room" prop:value=move || room.get()/>
            <textarea
                name="text"
                node_ref=textarea
                data-testid="composer"
                aria-label=move || if to.with(Option::is_some) { "Private message" } else { "Message" }
                aria-describedby="composer-hint"
                placeholder=placeholder
                rows="2"
                prop:value=move || draft.get()
                on:input=move |ev| {
                    draft.set(event_target_value(&ev));
                    send_id.set_value(new_send_id());
                }
                on:keydown=on_keydown
            ></textarea>
            <button type="submit" data-testid="send" disabled=pending>"Send"</button>
            <small id="composer-hint" class="hint">"Enter sends · Shift+Enter starts a new line"</small>
        </form>
        {move || error.get().map(|e| view! { <p role="alert" class="error" data-testid="send-error">{e}</p> })}
    }
}

/// A fresh id for a send: a retry of the same send (after an error)
/// reuses it, so the server sends it once; editing the text makes a new one.
/// Scoped to one sender on the server and only used to drop repeats, so it
/// needs to be unique per page, not secret.
#[cfg(feature = "hydrate")]
fn new_send_id() -> String {
    let random = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!(
        "{:x}-{:08x}{:08x}",
        js_sys::Date::now() as u64,
        random(),
        random()
    )
}

/// The server renders the form without an id: a post without JavaScript
/// has none either.
#[cfg(not(feature = "hydrate"))]
fn new_send_id() -> String {
    String::new()
}
