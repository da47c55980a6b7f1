//! mTLS for the whole life of a service: the rotating server and client configurations on an
//! `SvidStore`, with SVIDs that live seconds, under real traffic from rustls, reqwest and
//! tonic clients against real axum and tonic servers on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;

mod refusals;
mod resumption;
mod support;
mod traffic;
