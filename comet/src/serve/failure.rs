//! Why serving a connection stopped: a request refused with a status, or
//! the socket failing.

use super::wire::Refusal;
use std::io;

/// Why a request could not be served.
pub enum Failure {
    Refused(Refusal),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Io(error)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}
