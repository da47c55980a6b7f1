//! [`RemoteError`]: why a remote key set could not be configured or fetched.

use super::super::error::KeyError;

/// Why a remote key source could not be set up, or why one fetch failed.
///
/// A failed fetch never discards good keys: they keep verifying for the stale period. Each
/// variant has a stable snake_case [`reason`](RemoteError::reason) for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The JWKS or issuer URL (or a discovered or redirect target) cannot be parsed, is not
    /// `http(s)://`, carries credentials, or (for an issuer) carries a query or fragment.
    #[error("invalid URL `{url}`: {why}")]
    InvalidUrl {
        /// The URL as configured or discovered.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A plain `http://` URL (configured, discovered, or the target of a redirect) to a host
    /// that is not a loopback address, without
    /// [`allow_plain_http`](super::RemoteJwks::allow_plain_http).
    #[error("refusing plain http to `{0}`: use https, or allow_plain_http()")]
    PlainHttp(String),
    /// The TLS client could not be set up (e.g. an unreadable extra root certificate).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// Connecting failed, or the connection broke before a full response.
    #[error("request to `{url}` failed: {why}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The client's description of the failure.
        why: String,
    },
    /// No full response within the connect or request timeout.
    #[error("request to `{0}` timed out")]
    Timeout(String),
    /// A response status other than 200.
    #[error("`{url}` answered with status {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// A body longer than the configured bound; reading stopped there.
    #[error("`{url}` sent more than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The bound in bytes.
        limit: usize,
    },
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("invalid JWKS document: {0}")]
    Jwks(KeyError),
    /// The JWKS holds no key that can verify an allowed algorithm.
    #[error("no usable key in the JWKS ({skipped} skipped)")]
    NoUsableKeys {
        /// How many keys were skipped as unusable.
        skipped: usize,
    },
    /// The discovery document is not a JSON object with string `issuer` and `jwks_uri`.
    #[error("invalid discovery document: {0}")]
    Discovery(String),
    /// The discovery document names another issuer (OpenID Connect Discovery §4.3).
    #[error("discovery document names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's `issuer`.
        found: String,
    },
    /// Fetching needs a tokio runtime, and none was running.
    #[error("no tokio runtime to fetch keys on")]
    NoRuntime,
    /// A [`Startup::FailFast`](super::Startup::FailFast) source given to the synchronous
    /// `build()`, which cannot wait for its keys.
    #[error("a fail-fast key source needs `build_async()`")]
    FailFastNeedsAsync,
}

impl RemoteError {
    /// A stable, machine-readable reason, e.g. `timeout` or `issuer_mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            RemoteError::InvalidUrl { .. } => "invalid_url",
            RemoteError::PlainHttp(_) => "plain_http",
            RemoteError::Tls(_) => "tls_setup",
            RemoteError::Transport { .. } => "transport",
            RemoteError::Timeout(_) => "timeout",
            RemoteError::Status { .. } => "status",
            RemoteError::TooLarge { .. } => "too_large",
            RemoteError::Jwks(_) => "invalid_jwks",
            RemoteError::NoUsableKeys { .. } => "no_usable_keys",
            RemoteError::Discovery(_) => "invalid_discovery",
            RemoteError::IssuerMismatch { .. } => "issuer_mismatch",
            RemoteError::NoRuntime => "no_runtime",
            RemoteError::FailFastNeedsAsync => "fail_fast_needs_async",
        }
    }
}
