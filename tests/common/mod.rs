//! Shared test code (the provider suite every provider runs is comet's own,
//! `comet::provider_suite!`, feature `testing`): a provider that fails on
//! demand (`flaky`), the app on a loopback port driven over
//! HTTP (`http`) or raw bytes (`raw`), the HTTP front's own router
//! (`front`), node processes (`processes`) and their users (`nodes`), and
//! a redis-server for the tests that need one.
#![allow(dead_code)]

pub mod flaky;
pub mod front;
pub mod http;
pub mod nodes;
pub mod processes;
pub mod raw;
pub mod redis_cluster;
pub mod redis_server;

/// The presence window of the servers the tests start: short, so a login's
/// own join goes out at once.
pub const PRESENCE_WINDOW: &str = "20ms";

/// Longer than [`PRESENCE_WINDOW`] on a busy machine: after it, a login's
/// own join has gone out, and a cursor read then comes after it.
pub const PAST_PRESENCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(200);
