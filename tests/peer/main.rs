//! mTLS peer identity: certificates, SPIFFE, XFCC, authorizers, certificate-bound tokens
//! and TLS handshakes. One binary, so that cedar and tokio are linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;

mod authorize;
mod binding;
mod identity;
mod spiffe;
mod tls;
mod xfcc;
