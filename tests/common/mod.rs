//! Shared test code: the provider suite every provider runs, and a
//! redis-server for the tests that need one.
#![allow(dead_code)]

pub mod flaky;
pub mod http;
pub mod processes;
pub mod provider_suite;
pub mod redis_server;
