#![doc = include_str!("../README.md")]
//! ## Feature flags
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `cli` | the `meshguard` command-line tool |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod token;

pub mod caller;
pub mod policy;
