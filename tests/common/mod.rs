//! Shared test code: the provider suite every provider runs.
#![allow(dead_code)]

pub mod provider_suite;
