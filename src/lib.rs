#![doc = include_str!("../README.md")]
//! ## Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `cli` | the `meshguard` command-line tool |
//! | `rustls` | `peer::server_config`: a rustls `ServerConfig` requiring client certificates chained to a CA or SPIFFE bundle |
//! | `axum` | `peer::MtlsListener`: peer identity in an axum server on tokio-rustls, via connect info (implies `rustls`) |
//! | `tonic` | `peer::TlsIncoming` and `peer::peer_identity`: peer identity in a tonic server (implies `rustls`) |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod peer;
pub mod token;
