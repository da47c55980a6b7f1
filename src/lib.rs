#![doc = include_str!("../README.md")]
//! ## Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `cli` | the `meshguard` command-line tool |
//! | `remote-jwks` (default) | [`token::remote`]: JWKS over HTTPS and OpenID Connect discovery, cached and refreshed |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod response;
pub mod token;

pub use response::{Refusal, RefusalBody, is_grpc};
