//! meshguard against a real identity provider: panva's oidc-provider (`tests/idp`), started
//! with Node on 127.0.0.1 by `tests/idp_support`; its tokens verified by the library, by an
//! axum service behind the authentication layer and by `meshguard verify-token`, and its
//! DPoP-bound tokens with proofs the tests sign. Every test is named `interop_*`; without
//! Node or the install they return at once, after one line on standard error saying why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(all(feature = "remote-jwks", feature = "axum"))]
#[path = "../dpop_support/mod.rs"]
mod dpop_support;
#[cfg(feature = "remote-jwks")]
#[path = "../idp_support/mod.rs"]
mod idp_support;
#[cfg(feature = "remote-jwks")]
#[path = "../remote_support/mod.rs"]
mod remote_support;
#[cfg(all(feature = "remote-jwks", feature = "axum"))]
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "remote-jwks")]
mod access_tokens;
#[cfg(all(feature = "remote-jwks", feature = "cli"))]
mod cli;
#[cfg(all(feature = "introspection", feature = "cli"))]
mod cli_introspection;
#[cfg(all(feature = "remote-jwks", feature = "axum"))]
mod dpop;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "outgoing")]
mod outgoing;
#[cfg(all(feature = "remote-jwks", feature = "axum"))]
mod service;
