//! The SPIFFE Workload API as a source of the service's own X509-SVID and trust bundles.
//!
//! A [`WorkloadApiSource`] connects to the Workload API (a SPIRE agent's unix socket, named
//! by `SPIFFE_ENDPOINT_SOCKET` or given as `unix:///path`), opens the `FetchX509SVID`
//! stream, and hands every delivery to an [`SvidStore`]: the chosen SVID (the default, or
//! the one with a configured hint) with its key, its own trust domain's bundle and the
//! federated bundles. The store applies meshguard's checks on top of the spiffe crate's
//! (see [`SvidStore::update`]), so a delivery is taken only when it is complete and
//! consistent; a federated bundle the agent stops sending is no longer trusted from the next
//! delivery on. [`start`](WorkloadApiSource::start) returns once the first delivery is taken
//! — a service does not start serving without an SVID — and leaves a task streaming in the
//! background until the returned [`WorkloadApiWatcher`] is dropped.
//!
//! Failures are retried as the SPIFFE Workload Endpoint specification says: a missing
//! socket, `Unavailable`, `PermissionDenied` or a broken stream after an exponential back-off
//! with jitter (between [`DEFAULT_MIN_BACKOFF`] and [`DEFAULT_MAX_BACKOFF`] unless
//! configured), while `InvalidArgument` stops the source, and so does `Unimplemented` before
//! the first delivery (afterwards it is retried at the longest back-off). A stream that
//! sends no new SVID for three quarters of the validity the current one had left when it
//! was taken counts as failed and is replaced by a new connection. Every failure
//! is reported through the store's [`status`](SvidStore::status) (health `Failing`) and
//! `tracing`; the last good material keeps being served until it expires.
//!
//! # Example
//!
//! ```rust,no_run
//! use std::time::Duration;
//!
//! use meshguard::peer::{SvidStore, WorkloadApiSource};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SvidStore::new();
//! // SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent.sock, as SPIRE's agent sets it up.
//! let watcher = WorkloadApiSource::from_env()?
//!     .start_timeout(Duration::from_secs(10))
//!     .start(store.clone())
//!     .await?;
//! let status = store.status();
//! println!("serving {:?}, valid until {:?}", status.spiffe_id(), status.not_after());
//! // ... build the rotating TLS configuration on `store` and serve; the SVID rotates
//! // underneath until `watcher` is dropped.
//! # drop(watcher);
//! # Ok(())
//! # }
//! ```
//!
//! # Bounds
//!
//! Each message of the stream is bounded by gRPC's 4 MiB limit before it is parsed (a larger
//! one fails the stream). Of a parsed delivery, at most [`MAX_WORKLOAD_SVIDS`] SVIDs are
//! looked at (the spiffe crate's `ResourceLimits::max_svids` default), and the store takes at
//! most [`MAX_TRUST_DOMAINS`](super::MAX_TRUST_DOMAINS) trust bundles of at most
//! [`MAX_BUNDLE_ROOTS`](crate::peer::MAX_BUNDLE_ROOTS) roots each, where `ResourceLimits`
//! would count 200 bundles of 4 MiB of DER (only `X509Source` applies those).
//!
//! # Why not the spiffe crate's `X509Source` and spiffe-rustls
//!
//! The connection, the `workload.spiffe.io` header, the protobuf messages and the parsing
//! of SVIDs and bundles are the spiffe crate's `WorkloadApiClient`. Its `X509Source` is not
//! used: it drops a delivery equal to the one before (so a store marked failing by a broken
//! stream would stay so after the reconnect), tells an observer of failures only their kind,
//! retries `InvalidArgument` once it has started, and keeps a second copy
//! of the material with rules of its own. spiffe-rustls is not used either: it builds on
//! `X509Source` alone (no other source could feed it) and on rustls's process-wide default
//! crypto provider, where meshguard chooses ring explicitly.

mod convert;
mod error;
mod run;

use std::fmt;
use std::time::Duration;

use spiffe::transport::Endpoint;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::store::SvidStore;
use run::{Config, Progress};

pub use convert::MAX_WORKLOAD_SVIDS;
pub use error::WorkloadApiError;

/// How long [`WorkloadApiSource::start`] waits for the first delivery by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The first delay before reconnecting, by default.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest delay between reconnects, by default.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The shortest first delay [`WorkloadApiSource::reconnect_backoff`] accepts: a source never
/// reconnects in a tight loop.
pub const MIN_BACKOFF_FLOOR: Duration = Duration::from_millis(10);

/// The name of the environment variable that locates the Workload API.
pub const SPIFFE_ENDPOINT_SOCKET: &str = "SPIFFE_ENDPOINT_SOCKET";

/// A source of X509-SVIDs and trust bundles from the SPIFFE Workload API, feeding an
/// [`SvidStore`]; configured here, run by [`start`](Self::start).
#[derive(Clone)]
pub struct WorkloadApiSource {
    endpoint: Endpoint,
    address: String,
    hint: Option<String>,
    start_timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl WorkloadApiSource {
    /// A source for the Workload API at `endpoint`: `unix:///absolute/path` (or
    /// `unix:/absolute/path`) or `tcp://IP:port` with a loopback IP.
    ///
    /// The Workload API speaks plaintext gRPC: the stream carries the SVID's private key,
    /// and whoever can answer in the agent's place sets the trust bundles. Over TCP only a
    /// loopback address keeps both on the host.
    ///
    /// # Errors
    ///
    /// [`WorkloadApiError::InvalidEndpoint`] when `endpoint` is not such an address;
    /// [`WorkloadApiError::NonLoopbackTcp`] for a `tcp://` address whose IP is not a
    /// loopback address.
    pub fn new(endpoint: &str) -> Result<Self, WorkloadApiError> {
        let parsed = Endpoint::parse(endpoint).map_err(|e| WorkloadApiError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            detail: e.to_string(),
        })?;
        if matches!(&parsed, Endpoint::Tcp { host, .. } if !host.is_loopback()) {
            return Err(WorkloadApiError::NonLoopbackTcp {
                endpoint: endpoint.to_owned(),
            });
        }
        Ok(Self {
            endpoint: parsed,
            address: endpoint.to_owned(),
            hint: None,
            start_timeout: DEFAULT_START_TIMEOUT,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        })
    }

    /// A source for the Workload API named by the `SPIFFE_ENDPOINT_SOCKET` environment
    /// variable, read now.
    ///
    /// # Errors
    ///
    /// [`WorkloadApiError::MissingEndpoint`] when the variable is not set or not UTF-8;
    /// [`WorkloadApiError::InvalidEndpoint`] when its value is not an endpoint address.
    pub fn from_env() -> Result<Self, WorkloadApiError> {
        match std::env::var(SPIFFE_ENDPOINT_SOCKET) {
            Ok(endpoint) => Self::new(&endpoint),
            Err(_) => Err(WorkloadApiError::MissingEndpoint),
        }
    }

    /// Serves the SVID whose hint is `hint` (SPIRE sets hints on registration entries), for
    /// a workload that is given several. A delivery without it is refused (reported as a
    /// source failure) and the last good material stays.
    ///
    /// Defaults to the first SVID of each delivery, the Workload API's default identity.
    pub fn svid_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// How long [`start`](Self::start) waits for the first delivery the store takes.
    ///
    /// Defaults to [`DEFAULT_START_TIMEOUT`].
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The bounds of the reconnect back-off: the first delay is about `min`, each failed
    /// attempt doubles it up to `max`, each delay is drawn at random from the upper half of
    /// its step, and a connection that delivered and stayed up for at least `max` resets it
    /// to `min`. `min` is raised to
    /// [`MIN_BACKOFF_FLOOR`] and `max` to `min` when lower.
    ///
    /// Defaults to [`DEFAULT_MIN_BACKOFF`] and [`DEFAULT_MAX_BACKOFF`].
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min.max(MIN_BACKOFF_FLOOR);
        self.max_backoff = max.max(self.min_backoff);
        self
    }

    /// The endpoint address, as given or read from the environment.
    pub fn endpoint(&self) -> &str {
        &self.address
    }

    /// Connects, waits until `store` has taken a first delivery from the Workload API, and
    /// leaves a task on the current tokio runtime streaming further deliveries into it
    /// (rotations, bundle changes) and reconnecting when the stream fails, until the
    /// returned watcher is dropped.
    ///
    /// # Errors
    ///
    /// [`WorkloadApiError::NoRuntime`] when not called on a tokio runtime;
    /// [`WorkloadApiError::Refused`] when the Workload API answers `InvalidArgument` or
    /// `Unimplemented` before the first delivery; [`WorkloadApiError::StartTimeout`] when no delivery was taken within
    /// the start timeout (the agent unreachable, no identity issued yet, or every delivery
    /// refused by the store), with the last failure. The task is stopped in both cases.
    pub async fn start(self, store: SvidStore) -> Result<WorkloadApiWatcher, WorkloadApiError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| WorkloadApiError::NoRuntime)?;
        let (progress, mut seen) = watch::channel(Progress::Starting(None));
        let config = Config {
            endpoint: self.endpoint,
            hint: self.hint,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
        };
        let watcher = WorkloadApiWatcher {
            task: runtime.spawn(run::run(config, store, progress)),
            progress: seen.clone(),
            endpoint: self.address,
        };
        let started = tokio::time::timeout(
            self.start_timeout,
            seen.wait_for(|progress| !matches!(progress, Progress::Starting(_))),
        )
        .await
        .map(|waited| waited.map(|progress| progress.clone()));
        // `watcher` is dropped on every error path below, which stops the task.
        let outcome = match started {
            Ok(Ok(progress)) => progress,
            // The task ended without saying why: it panicked.
            Ok(Err(_)) => Progress::Starting(None),
            Err(_) => seen.borrow().clone(),
        };
        match outcome {
            Progress::Running => Ok(watcher),
            Progress::Stopped(error) => Err(error),
            Progress::Starting(last_error) => Err(WorkloadApiError::StartTimeout {
                timeout: self.start_timeout,
                last_error,
            }),
        }
    }
}

impl fmt::Debug for WorkloadApiSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiSource")
            .field("endpoint", &self.address)
            .field("hint", &self.hint)
            .field("start_timeout", &self.start_timeout)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// The running task of a [`WorkloadApiSource`]; dropping it stops the task and closes the
/// stream. The store keeps the material last taken.
pub struct WorkloadApiWatcher {
    task: JoinHandle<()>,
    progress: watch::Receiver<Progress>,
    endpoint: String,
}

impl WorkloadApiWatcher {
    /// Whether the task is still streaming (or reconnecting); `false` once the Workload API
    /// refused in a way that is not retried (see [`stopped_by`](Self::stopped_by)).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Why the task stopped on its own, if it did.
    pub fn stopped_by(&self) -> Option<WorkloadApiError> {
        match &*self.progress.borrow() {
            Progress::Stopped(error) => Some(error.clone()),
            Progress::Starting(_) | Progress::Running => None,
        }
    }
}

impl Drop for WorkloadApiWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for WorkloadApiWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiWatcher")
            .field("endpoint", &self.endpoint)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}
