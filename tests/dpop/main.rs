//! DPoP (RFC 9449): the proof parser's negative suite, `DpopVerifier` as a plain function,
//! and the guard in front of a real axum server called by a real reqwest client. One binary,
//! so that cedar, tokio and axum are linked once.
#![cfg(all(feature = "axum", feature = "remote-jwks"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../dpop_support/mod.rs"]
mod dpop_support;
#[path = "../remote_support/mod.rs"]
mod remote_support;
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "tonic")]
mod grpc;
mod guard;
mod parser;
mod verify;
