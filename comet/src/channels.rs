//! Channels opened at run time, and the app's rules for them
//! ([`ChannelPolicy`]): which names are channels, who may open one, who may
//! join, how many channels and members there may be.
//!
//! The channels named to [`Comet::new`](crate::Comet::new) are *fixed*:
//! open on every node from the start, never closed. Others are opened with
//! [`Comet::open`](crate::Comet::open) and recorded by the provider, so
//! every node finds them: a node that gets a poll for a channel it has not
//! seen asks the provider whether it is open ([`Comet::find`](crate::Comet::find))
//! and, if so, serves it from then on. [`Comet::close`](crate::Comet::close)
//! forgets a channel everywhere: its clients and messages are dropped, its
//! polls answer `404`, and each node lets go of it within one reap interval.

use crate::{ClientRecord, CometError};

/// The app's rules for channels opened at run time. Every method has a
/// default; implement the ones your app decides differently.
pub trait ChannelPolicy: Send + Sync + 'static {
    /// Whether `name` may name a channel at all. The default takes 1 to 64
    /// characters of `a-z`, `0-9`, `-` and `_` ([`is_plain_name`]): a name
    /// is a path segment of the channel route and part of the store's keys.
    fn valid_name(&self, name: &str) -> bool {
        is_plain_name(name)
    }

    /// Whether `by` may open the channel `name`: `None` is the app itself
    /// (server-side code), `Some` a client of some channel asking through
    /// the app. The default lets only the app open channels.
    fn may_open(&self, name: &str, by: Option<&ClientRecord>) -> bool {
        let _ = name;
        by.is_none()
    }

    /// Whether a client with this display name may join (be initialised on)
    /// the channel `name`. The default lets anyone join.
    fn may_join(&self, name: &str, display_name: &str) -> bool {
        let _ = (name, display_name);
        true
    }

    /// How many run-time channels may be open at once, over all nodes.
    fn max_channels(&self) -> usize {
        1_000
    }

    /// How many clients the channel `name` may have (all nodes together);
    /// [`Settings::max_clients`](crate::Settings::max_clients) caps it too.
    fn max_members(&self, name: &str) -> usize {
        let _ = name;
        usize::MAX
    }
}

/// The rules when the app gives none: every default of [`ChannelPolicy`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultPolicy;

impl ChannelPolicy for DefaultPolicy {}

/// The error of an open past [`ChannelPolicy::max_channels`], whichever
/// provider counted.
pub(crate) fn at_channel_limit(max_channels: usize) -> CometError {
    CometError::AtCapacity(format!("{max_channels} channels are open already"))
}

/// 1 to 64 characters of `a-z`, `0-9`, `-` and `_`.
pub fn is_plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::is_plain_name;

    #[test]
    fn plain_names_are_short_lowercase_path_segments() {
        for good in ["rust", "a", "room-1", "x_y", &"z".repeat(64)] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in ["", "Rust", "a b", "a/b", "%2f", "{x}", "é", &"z".repeat(65)] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }
}
