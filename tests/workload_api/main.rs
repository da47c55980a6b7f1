//! The SPIFFE Workload API as an SVID source, against a test Workload API server on a unix
//! socket that speaks the real protocol (gRPC, the `workload.proto` messages, the security
//! header): first delivery, rotations, federation, refused deliveries, a server crash and
//! restart, and the codes the specification says not to retry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;

mod server;
mod source;
