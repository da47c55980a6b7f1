//! The `meshguard` command-line tool, run as a process (feature `cli`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code, reason = "the CLI tests sign tokens and write bundles only")]
#[path = "../jwt_svid/authority.rs"]
mod authority;
#[path = "../dpop_support/mod.rs"]
mod dpop_support;
#[path = "../peer_support/mod.rs"]
mod peer_support;
#[path = "../policy_support/mod.rs"]
mod policy_support;
#[cfg(feature = "remote-jwks")]
#[path = "../remote_support/mod.rs"]
mod remote_support;
#[path = "../support/mod.rs"]
mod support;

mod dpop;
mod peer;
mod policy;
mod remote;
mod svid;
mod token;
