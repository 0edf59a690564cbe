//! Where a browser subscription stands. Shared (not behind `hydrate`) so
//! server-rendered pages can show the initial status too.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Connecting,
    Connected,
    Reconnecting,
    /// The server no longer knows this client; the subscription has stopped.
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Reconnecting => "reconnecting",
            Status::Ended => "ended",
        }
    }
}
