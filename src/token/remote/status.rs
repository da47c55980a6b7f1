//! [`RemoteStatus`]: what a remote key source is doing, for readiness probes and metrics.

use super::error::RemoteError;

/// The condition of a remote key source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Nothing fetched yet, nothing failed yet.
    Cold,
    /// Keys within their cache lifetime, last fetch good.
    Fresh,
    /// Keys within their cache lifetime, last fetch failed.
    Failing,
    /// Keys past their cache lifetime but within the stale period: still verifying.
    Stale,
    /// Keys past the stale period: tokens are rejected with `key_source_unavailable`.
    Expired,
    /// No fetch ever succeeded and the last one failed: tokens are rejected.
    Unreachable,
}

impl Health {
    /// Whether tokens can be verified now.
    pub fn is_ready(self) -> bool {
        matches!(self, Health::Fresh | Health::Failing | Health::Stale)
    }
}

/// A snapshot of one remote key source, from
/// [`Verifier::remote_status`](crate::token::Verifier::remote_status).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteStatus {
    pub(super) issuer: String,
    pub(super) health: Health,
    pub(super) keys: usize,
    pub(super) skipped: usize,
    pub(super) skipped_keys: Vec<String>,
    pub(super) fetches: u64,
    pub(super) failures: u64,
    pub(super) last_error: Option<RemoteError>,
}

impl RemoteStatus {
    /// The issuer the source serves (its JWKS URL when any issuer is accepted).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its condition now.
    pub fn health(&self) -> Health {
        self.health
    }

    /// How many keys the last good document held that meshguard can use.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// How many keys of the last good document were skipped as unusable (encryption keys,
    /// unsupported types, curves or algorithms).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The keys of the last document read that were skipped, each named (place, `kid`) with
    /// the reason, as [`KeySet::skipped`](crate::token::KeySet::skipped) says them. Also kept
    /// when that document had no usable key at all, so the failure can be explained.
    pub fn skipped_keys(&self) -> &[String] {
        &self.skipped_keys
    }

    /// How many fetches were started, discovery and JWKS together counting as one.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// How many fetches failed.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Why the last failed fetch failed, if any did.
    pub fn last_error(&self) -> Option<&RemoteError> {
        self.last_error.as_ref()
    }
}
