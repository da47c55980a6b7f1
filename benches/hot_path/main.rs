//! The hot path, each measurement paired with its floor in the same run, under stable ids so
//! that the ratios can be recomputed from `target/criterion/hot_path/<id>/`.
//!
//! Run with `cargo bench --bench hot_path` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a shorter run).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark with a broken set-up should stop loudly"
)]

mod dpop;
mod in_process;
mod loopback;
#[path = "../support/loopback.rs"]
mod loopback_client;
mod policy;
mod token;

use criterion::{criterion_group, criterion_main};

criterion_group!(
    hot_path,
    token::bench,
    dpop::bench,
    policy::benches,
    loopback::bench,
    in_process::bench
);
criterion_main!(hot_path);
