//! A request through [`Guard`] (bearer token with warm static keys, 100 Cedar policies) against
//! the same trivial axum handler bare, in-process with `tower::ServiceExt::oneshot` and over
//! loopback with keep-alive hyper clients; each guarded run is paired with its floors (the bare
//! handler, raw ring verifying the token's signature, raw `cedar_policy::Authorizer` deciding
//! the same request), and the steps of the guard are measured one by one.
//!
//! Run with `cargo bench --bench layers`; besides criterion's groups it
//! prints ratios from alternating batches (the README records them), unless
//! `MESHGUARD_BENCH_PAIRED=0` (for profiling one group). `MESHGUARD_BENCH_TOKEN_CACHE=0`
//! turns the verifier's token cache off, so every request checks its signature. The target: the layers add at
//! most 15 % to a trivial handler.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark with a broken set-up should stop loudly"
)]

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/loopback.rs"]
mod loopback_client;

mod in_process;
mod loopback;
mod service;
mod steps;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

const SERVICE: &str = "orders";
const PATH: &str = "/orders/42";
const ROUTE: &str = "/orders/{id}";
const POLICIES: usize = 100;

/// Keep-alive connections of the loopback load generator, and requests per measured batch.
const CONNECTIONS: usize = 8;
const LOOPBACK_BATCH: usize = 256;
/// Alternating rounds in the paired comparisons, and requests per side per round.
const PAIRED_ROUNDS: usize = 60;
const PAIRED_BATCH: usize = 50;
const PAIRED_LOOPBACK_ROUNDS: usize = 20;

/// Whether to run the alternating comparisons after criterion's groups.
fn paired() -> bool {
    std::env::var_os("MESHGUARD_BENCH_PAIRED").is_none_or(|value| value != "0")
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = in_process::in_process, steps::steps, loopback::loopback
}
criterion_main!(benches);
