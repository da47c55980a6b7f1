#![doc = include_str!("../README.md")]
//! ## Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `cli` | the `meshguard` command-line tool |
//! | `remote-jwks` (default) | [`token::remote`]: JWKS over HTTPS and OpenID Connect discovery, cached and refreshed |
//! | `rustls` | `peer::server_config`: a rustls `ServerConfig` requiring client certificates chained to a CA or SPIFFE bundle; with `axum`, `peer::MtlsListener`; with `tonic`, `peer::TlsIncoming` and `peer::peer_identity` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod peer;
mod response;
pub mod token;

pub use response::{Refusal, RefusalBody, is_grpc};

pub mod caller;
pub mod policy;
