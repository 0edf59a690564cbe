//! HTTP/1.x framing: request heads in (parsed by `httparse`), response
//! heads out. Kept apart from the connection loop so the rules about what is
//! refused (and why) sit in one place.
//!
//! - `head.rs`: finding and parsing a request head, strictly.
//! - `headers.rs`: what a request's headers decide: its body's length,
//!   keep-alive, `100 Continue`.
//! - `response.rs`: response heads out, and the answer to a refused request.

mod head;
mod headers;
mod response;

pub use head::{parse_head, HeadScan, RequestHead};
// For the property test of the head parser (`wire_props.rs`).
#[cfg(test)]
pub use head::MAX_HEAD_BYTES;
pub use headers::{body_length, client_keeps_alive, expects_continue};
pub use response::{refusal_response, write_head, Framing};

use axum::http::StatusCode;

/// Why a request cannot be served; answered, then the connection closes.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str) -> Self {
        Self { status, reason }
    }
}
