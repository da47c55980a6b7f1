//! [`WorkloadApiError`]: why a Workload API source could not start, or stopped.

use std::time::Duration;

use super::super::error::SvidUpdateError;

/// Why a [`WorkloadApiSource`](super::WorkloadApiSource) could not be set up or started, or
/// why it stopped for good.
///
/// Failures the source retries (the agent unreachable, the stream broken, a delivery refused)
/// are not errors of this type: they go to [`SvidStore::report_source_error`] and the store's
/// status while the source carries on. Each variant has a stable [`reason`](Self::reason);
/// the `Display` text is for humans, may change, and never shows key material.
///
/// [`SvidStore::report_source_error`]: super::super::SvidStore::report_source_error
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadApiError {
    /// No endpoint was given and `SPIFFE_ENDPOINT_SOCKET` is not set (or is not UTF-8).
    #[error("no Workload API endpoint: SPIFFE_ENDPOINT_SOCKET is not set or not UTF-8")]
    MissingEndpoint,
    /// The endpoint is not a `unix:///absolute/path` or `tcp://IP:port` address, as the
    /// SPIFFE Workload Endpoint specification requires.
    #[error("invalid Workload API endpoint `{endpoint}`: {detail}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The endpoint is a `tcp://` address whose IP is not a loopback address. The Workload
    /// API is plaintext gRPC: off the host, the SVID's private key would cross the network
    /// in the clear and anyone on the path could hand the service trust bundles.
    #[error("Workload API endpoint `{endpoint}` is TCP to a non-loopback address")]
    NonLoopbackTcp {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The Workload API answered `InvalidArgument`, or `Unimplemented` before the first
    /// delivery. The specification says not to retry either (the request or the server is
    /// wrong, and asking again will not change that), so the source stopped. `Unimplemented`
    /// from an agent that delivered before is retried instead, at the longest back-off.
    #[error("the Workload API refused the request with {code}, not retried: {message}")]
    Refused {
        /// The gRPC status: `invalid_argument` or `unimplemented`.
        code: &'static str,
        /// The status message from the server.
        message: String,
    },
    /// [`start`](super::WorkloadApiSource::start) was not called on a tokio runtime, which
    /// the background task needs.
    #[error("the Workload API source needs a tokio runtime")]
    NoRuntime,
    /// No delivery was taken by the store within the start timeout; the source was stopped.
    #[error("no SVID was taken from the Workload API within {timeout:?}")]
    StartTimeout {
        /// The start timeout.
        timeout: Duration,
        /// The last failure seen while waiting (connecting, the stream, or a refused
        /// delivery), if any.
        last_error: Option<SvidUpdateError>,
    },
}

impl WorkloadApiError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingEndpoint => "missing_endpoint",
            Self::InvalidEndpoint { .. } => "invalid_endpoint",
            Self::NonLoopbackTcp { .. } => "non_loopback_endpoint",
            Self::Refused { .. } => "workload_api_refused",
            Self::NoRuntime => "no_runtime",
            Self::StartTimeout { .. } => "start_timeout",
        }
    }
}
