//! Re-reading who is online, in the browser, when a presence change was
//! incomplete (a crowd lists only some of its members).

use super::api::online_users;
use super::lines::{apply_presence, OnlineUser};
use leptos::prelude::*;

/// A re-read of who is online under way, and the presence changes that
/// arrived since it was asked for.
#[derive(Default)]
pub struct Reread {
    since: Option<Vec<comet::wire::PresenceChange>>,
}

impl Reread {
    pub fn note(&mut self, change: &comet::wire::PresenceChange) {
        if let Some(since) = &mut self.since {
            since.push(change.clone());
        }
    }
}

/// A crowd's presence change lists only some of its members: read the whole
/// list again, then apply every change that arrived meanwhile (they are
/// idempotent, so those the list already has do no harm, and the newest
/// state of each member wins). Again if one of those was incomplete too.
/// The list is of the room `room` shows when the re-read starts; a re-read
/// that answers after the page moved to another room is dropped.
pub fn reread_online(
    room: RwSignal<String>,
    online: RwSignal<Vec<OnlineUser>>,
    reread: StoredValue<Reread>,
) {
    let started = reread
        .try_update_value(|r| {
            r.since
                .is_none()
                .then(|| r.since = Some(Vec::new()))
                .is_some()
        })
        .unwrap_or(false);
    if !started {
        return;
    }
    let Some(name) = room.try_get_untracked() else {
        return;
    };
    leptos::task::spawn_local(async move {
        // A crowd's pages all learn of it at once: spread their re-reads.
        let delay = (js_sys::Math::random() * 1000.0) as u32;
        gloo_timers::future::TimeoutFuture::new(delay).await;
        // The page may be gone meanwhile (a logout): then nobody needs it.
        if reread.try_update_value(|_| ()).is_none() {
            return;
        }
        let list = online_users(Some(name.clone())).await;
        let Some(since) = reread.try_update_value(|r| r.since.take().unwrap_or_default()) else {
            return;
        };
        // On an error the list stays as it was; the next crowd retries.
        let Ok(mut list) = list else {
            return;
        };
        list.sort_by_key(|u| u.name.to_lowercase());
        let mut complete = true;
        for change in &since {
            complete &= apply_presence(&mut list, change);
        }
        if room.try_with_untracked(|r| *r != name).unwrap_or(true) {
            return;
        }
        online.try_set(list);
        if !complete {
            reread_online(room, online, reread);
        }
    });
}
