//! Cedar policies: the engine, callers as principals, HTTP mapping, issuers, nesting,
//! reloads, per-action slicing and Cedar's own conformance cases. One binary, so that cedar
//! and tokio are linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;
#[path = "../policy_support/mod.rs"]
mod policy_support;

mod caller;
mod conformance;
mod decision_cache;
mod differential;
mod engine;
mod http_mapping;
mod issuers;
mod nesting;
mod reload;
mod slicing;
