//! Presence, coalesced: the joins and leaves of a channel on one node are
//! collected for a short window ([`Settings::presence_window`]) and go out
//! as one [`PRESENCE`](crate::wire::PRESENCE) message, a diff of who joined and who left.
//!
//! Why: one message per login, delivered to everyone, makes a crowd of N
//! arriving at once (after a restart, at the start of an event) cost N²
//! deliveries, and every arrival wakes every waiting poll. Coalesced, the
//! crowd costs one message per window, delivered once to each client.
//!
//! What holds:
//!
//! - A join and a leave of one client within a window cancel: neither is
//!   sent. (A re-login is a new client with a new public token, so it shows
//!   as one leave and one join *in the same message*; a reader can see the
//!   name came back.)
//! - The diff is idempotent over a snapshot of who is online: readers add
//!   `joined` if absent and remove `left` if present, in log order.
//! - One message lists at most [`Settings::presence_cap`] members per list
//!   and counts the rest (`more_joined`, `more_left`): a crowd of 10 000
//!   must not make a reply of 10 000 names to each of 10 000 clients. A
//!   reader that keeps an exact list re-reads the snapshot when a count is
//!   not zero (one read, instead of the message every client would get).
//! - Windows of one node go out in order (one flush at a time).
//! - Across nodes, a join and a leave of one client announced by different
//!   nodes end in the right order: a join is sent only if the provider
//!   still has the client, and after sending it the node checks again and
//!   follows with a leave for any that went meanwhile. So the *last*
//!   presence message about a client agrees with the provider. Not
//!   guaranteed: a leave may be sent for a client whose join was dropped
//!   (it was gone before its window closed), a change shows up to one
//!   window (plus a provider round trip) late, changes of different nodes
//!   are not merged, and a node that dies without a graceful stop loses
//!   its pending window (a graceful stop flushes it: [`Comet::flush_presence`]).

use super::wire::{Member, PresenceChange};
use super::{PublicToken, TokenMap};
use std::sync::Mutex;

#[cfg(doc)]
use super::{Comet, Settings};

/// The changes of the current window, and the turn to send them.
#[derive(Default)]
pub struct PresenceBatch {
    pending: Mutex<Pending>,
    /// Notified when a change lands in an empty window: the window opens.
    pub(crate) opened: tokio::sync::Notify,
    /// Held while a window is being sent, so windows go out in order.
    pub(crate) sending: tokio::sync::Mutex<()>,
}

/// One window's changes, by client. Invariant: at most one change per
/// client; a leave that meets its client's pending join removes both.
#[derive(Default, Debug)]
pub struct Pending {
    changes: TokenMap<PublicToken, Change>,
    /// Arrival order, so the message lists people in the order they came.
    next: u64,
}

#[derive(Clone, Debug)]
struct Change {
    order: u64,
    joined: bool,
    name: String,
}

impl Pending {
    /// Records a join; `true` if it opened the window.
    pub fn joined(&mut self, public: PublicToken, name: &str) -> bool {
        self.record(public, true, name)
    }

    /// Records a leave (cancelling a pending join of the same client);
    /// `true` if it opened the window.
    pub fn left(&mut self, public: PublicToken, name: &str) -> bool {
        self.record(public, false, name)
    }

    fn record(&mut self, public: PublicToken, joined: bool, name: &str) -> bool {
        let opened = self.changes.is_empty();
        match self.changes.get(&public) {
            // Joined and left within one window: nobody needs to know.
            Some(earlier) if earlier.joined && !joined => {
                self.changes.remove(&public);
            }
            // A repeat (a requeued window meeting itself) changes nothing.
            Some(earlier) if earlier.joined == joined => {}
            _ => {
                self.next += 1;
                let change = Change {
                    order: self.next,
                    joined,
                    name: name.to_owned(),
                };
                self.changes.insert(public, change);
            }
        }
        opened && !self.changes.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes in arrival order: joins, then leaves.
    pub(crate) fn ordered(&self) -> (Vec<Member>, Vec<Member>) {
        let mut all: Vec<_> = self.changes.iter().collect();
        all.sort_by_key(|(_, change)| change.order);
        let member = |(public, change): &(&PublicToken, &Change)| Member {
            public: public.to_string(),
            name: change.name.clone(),
        };
        let joined = all.iter().filter(|(_, c)| c.joined).map(member).collect();
        let left = all.iter().filter(|(_, c)| !c.joined).map(member).collect();
        (joined, left)
    }

    /// Puts an unsent window back in front of the changes that came since.
    fn requeue(&mut self, older: Pending) {
        let newer = std::mem::take(self);
        for pending in [older, newer] {
            let mut changes: Vec<_> = pending.changes.into_iter().collect();
            changes.sort_by_key(|(_, change)| change.order);
            for (public, change) in changes {
                self.record(public, change.joined, &change.name);
            }
        }
    }
}

/// The message for one window: at most `cap` members per list, the rest
/// counted.
pub fn presence_change(
    mut joined: Vec<Member>,
    mut left: Vec<Member>,
    cap: usize,
    at: u64,
) -> PresenceChange {
    let more_joined = joined.len().saturating_sub(cap);
    let more_left = left.len().saturating_sub(cap);
    joined.truncate(cap);
    left.truncate(cap);
    PresenceChange {
        joined,
        left,
        more_joined,
        more_left,
        at,
    }
}

impl PresenceBatch {
    pub(crate) fn record(&self, change: impl FnOnce(&mut Pending) -> bool) {
        let opened = change(&mut self.pending.lock().expect("presence poisoned"));
        if opened {
            self.opened.notify_one();
        }
    }

    pub(crate) fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().expect("presence poisoned"))
    }

    pub(crate) fn requeue(&self, older: Pending) {
        self.record(|pending| {
            pending.requeue(older);
            !pending.is_empty()
        });
    }
}

impl PresenceBatch {
    /// Wakes the sender so it notices its manager is gone.
    pub(super) fn release_sender(&self) {
        self.opened.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<PublicToken> {
        (0..16).map(|_| PublicToken::generate()).collect()
    }

    fn window(pending: &Pending, cap: usize) -> PresenceChange {
        let (joined, left) = pending.ordered();
        presence_change(joined, left, cap, 0)
    }

    fn names(members: &[Member]) -> Vec<&str> {
        members.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn many_joins_make_one_change_in_arrival_order() {
        let token = tokens();
        let mut pending = Pending::default();
        assert!(
            pending.joined(token[1], "ada"),
            "the first change opens the window"
        );
        assert!(!pending.joined(token[2], "bo"));
        assert!(!pending.joined(token[3], "cy"));
        let change = window(&pending, 32);
        assert_eq!(names(&change.joined), ["ada", "bo", "cy"]);
        assert!(change.left.is_empty());
        assert!(change.is_complete());
        assert_eq!(change.joined[1].public, token[2].to_string());
    }

    #[test]
    fn a_join_and_a_leave_of_one_client_cancel() {
        let token = tokens();
        let mut pending = Pending::default();
        pending.joined(token[1], "ada");
        pending.joined(token[2], "bo");
        pending.left(token[1], "ada");
        let change = window(&pending, 32);
        assert_eq!(names(&change.joined), ["bo"]);
        assert!(change.left.is_empty());
        pending.left(token[2], "bo");
        assert!(pending.is_empty(), "nothing left to send");
    }

    #[test]
    fn a_relogin_under_one_name_is_a_leave_and_a_join_in_one_change() {
        let token = tokens();
        let mut pending = Pending::default();
        pending.left(token[1], "ada");
        pending.joined(token[2], "ada");
        let change = window(&pending, 32);
        assert_eq!(names(&change.left), ["ada"]);
        assert_eq!(names(&change.joined), ["ada"]);
        assert_ne!(change.left[0].public, change.joined[0].public);
    }

    #[test]
    fn members_over_the_cap_are_counted_not_listed() {
        let token = tokens();
        let mut pending = Pending::default();
        for (n, public) in token.iter().enumerate().take(10) {
            pending.joined(*public, &format!("j{n}"));
        }
        for (n, public) in token.iter().enumerate().skip(10).take(3) {
            pending.left(*public, &format!("l{n}"));
        }
        let change = window(&pending, 4);
        assert_eq!(names(&change.joined), ["j0", "j1", "j2", "j3"]);
        assert_eq!(change.more_joined, 6);
        assert_eq!(change.joined_count(), 10);
        assert_eq!(change.left.len(), 3);
        assert_eq!(change.more_left, 0);
        assert!(!change.is_complete());
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json["more_joined"], 6);
        assert!(json.get("more_left").is_none(), "a zero count is left out");
    }

    #[test]
    fn a_requeued_window_goes_before_newer_changes() {
        let token = tokens();
        let mut older = Pending::default();
        older.joined(token[1], "ada");
        older.joined(token[2], "bo");
        let mut pending = Pending::default();
        pending.left(token[2], "bo");
        pending.joined(token[3], "cy");
        pending.requeue(older);
        let change = window(&pending, 32);
        assert_eq!(names(&change.joined), ["ada", "cy"], "bo came and went");
        assert!(change.left.is_empty());
    }
}
