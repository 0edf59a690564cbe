//! Who is online, beside the chat: a count and a list, kept current by
//! the page (`live`); everyone but you is a button that picks them for a
//! private message in the composer.

use super::lines::OnlineUser;
use super::name_hue;
use leptos::either::Either;
use leptos::prelude::*;

/// Who is online, with a count; everyone but you is a button that starts a
/// private message to them.
#[component]
pub fn People(
    online: RwSignal<Vec<OnlineUser>>,
    me: Signal<String>,
    to: RwSignal<Option<OnlineUser>>,
) -> impl IntoView {
    view! {
        <aside class="people" aria-labelledby="people-title">
            <h2 id="people-title">
                "Online " <span class="count" data-testid="online-count">{move || online.with(Vec::len)}</span>
            </h2>
            <ul data-testid="online">
                <For each=move || online.get() key=|user| user.public.clone() let:user>
                    {
                        let hue = format!("--hue: {}", name_hue(&user.name));
                        let name = user.name.clone();
                        let data_name = user.name.clone();
                        if user.public == me.get_untracked() {
                            Either::Left(view! {
                                <li data-testid="online-user" data-name=data_name class="self">
                                    <span class="name" style=hue>{name}</span>
                                    <span class="you">" (you)"</span>
                                </li>
                            })
                        } else {
                            let label = format!("Send {name} a private message");
                            let selected = {
                                let public = user.public.clone();
                                move || to.with(|t| t.as_ref().is_some_and(|t| t.public == public))
                            };
                            Either::Right(view! {
                                <li data-testid="online-user" data-name=data_name>
                                    <button
                                        type="button"
                                        class="person"
                                        style=hue
                                        title=label.clone()
                                        aria-label=label
                                        aria-pressed=move || if selected() { "true" } else { "false" }
                                        on:click=move |_| to.set(Some(user.clone()))
                                    >
                                        {name}
                                    </button>
                                </li>
                            })
                        }
                    }
                </For>
            </ul>
        </aside>
    }
}
