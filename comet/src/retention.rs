//! [`Retention`]: how much of its log a channel keeps, whatever the
//! provider.

use std::time::Duration;

/// How much of a channel's log is kept. A cursor older than what is kept
/// gets [`CometError::CursorExpired`](crate::CometError::CursorExpired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_messages: usize,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_age: Duration::from_secs(3600),
        }
    }
}
