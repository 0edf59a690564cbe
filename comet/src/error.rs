//! Typed errors of the comet API. The channel route maps each to its status
//! and JSON body (see `route.rs`); apps map them to their own UI.

use std::time::Duration;

/// Which unique field of a client was already taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    DisplayName,
    Token,
}

#[derive(Debug, thiserror::Error)]
pub enum CometError {
    #[error("client already exists ({0:?} taken)")]
    ClientExists(Taken),
    #[error("invalid client: {0}")]
    InvalidClient(String),
    #[error("no such client (never initialised, removed, or idle too long)")]
    UnknownClient,
    #[error("no client with that public token")]
    UnknownRecipient,
    #[error("no channel named {0:?}")]
    UnknownChannel(String),
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    #[error("the cursor is older than what the channel still keeps; resynchronise")]
    CursorExpired,
    #[error("too many concurrent polls for this client (limit {0})")]
    TooManyPolls(usize),
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// This node is shutting down: its polls are answered with this (a
    /// `503` + `Retry-After`) so that clients move to another node instead
    /// of polling a server that is about to go.
    #[error("this node is stopping; poll again (another node will answer)")]
    Stopping,
    /// A configured limit of this node or channel is reached (clients,
    /// concurrent polls): try again later.
    #[error("at capacity: {0}")]
    AtCapacity(String),
    /// The app's [`ChannelPolicy`](crate::channels::ChannelPolicy) says no
    /// (opening or joining a channel), or the channel is fixed and cannot
    /// be closed.
    #[error("refused: {0}")]
    Refused(String),
    /// Not a channel name under the app's policy.
    #[error("invalid channel name: {0}")]
    InvalidChannel(String),
    #[error("could not encode the message: {0}")]
    Encode(#[from] serde_json::Error),
}

impl CometError {
    /// How long a client should wait before retrying, where retrying helps.
    /// A stopping node asks for the shortest wait: the retry goes to a
    /// node that is not stopping.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CometError::Stopping => Some(Duration::from_secs(1)),
            CometError::Unavailable(_) | CometError::AtCapacity(_) => Some(Duration::from_secs(2)),
            _ => None,
        }
    }
}
