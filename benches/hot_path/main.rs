//! The hot path, each bench beside its floor in the same run; estimates land under
//! `target/criterion/hot_path/<id>/` (`cargo bench --bench hot_path`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod policy;

criterion::criterion_group!(benches, policy::benches);
criterion::criterion_main!(benches);
