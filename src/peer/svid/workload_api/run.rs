//! The background task of a Workload API source: connect, stream, hand each delivery to the
//! store, and reconnect with back-off when the stream fails.
//!
//! Retrying follows the SPIFFE Workload Endpoint specification: `InvalidArgument` is reported
//! and never retried (asking again cannot succeed), and so is `Unimplemented` before the
//! first delivery, so that `start` fails at once on an endpoint that is not a Workload API.
//! Once a delivery was taken, `Unimplemented` comes from an agent that served this workload
//! before (an upgrade or a restart in progress), so it is retried at the longest back-off
//! rather than leaving the service without rotations. Every other failure (the socket
//! missing or refusing, `Unavailable`, `PermissionDenied` while the agent is still
//! attesting, a broken or ended stream) is retried after an exponential, jittered and
//! bounded back-off. The back-off restarts from its minimum only after a connection that
//! delivered stayed up for the longest back-off: an agent that sends one delivery and
//! closes each stream is not reconnected to in a tight loop. A stream that stays open but
//! sends no new SVID for three quarters of what the current one had left when it was taken
//! is reported as failing and replaced by a new connection (an agent stuck on it would
//! otherwise let the SVID expire silently). A delivery the store refuses leaves the stream open (the agent sends
//! the next rotation on it); one the spiffe crate cannot parse ends the connection like a
//! broken stream, and the agent sends its current delivery again on the next one.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use futures_core::Stream;
use ring::rand::{SecureRandom as _, SystemRandom};
use spiffe::transport::{Endpoint, GrpcStatusCode, TransportError};
use spiffe::{WorkloadApiClient, X509Context};
use tokio::sync::watch;

use super::super::error::SvidUpdateError;
use super::super::store::SvidStore;
use super::convert::to_update;
use super::error::WorkloadApiError;

/// Where the task is, as [`start`](super::WorkloadApiSource::start) and
/// [`WorkloadApiWatcher`](super::WorkloadApiWatcher) see it.
#[derive(Clone, Debug)]
pub(super) enum Progress {
    /// No delivery taken yet; the last failure so far.
    Starting(Option<SvidUpdateError>),
    /// A delivery was taken; the task keeps streaming.
    Running,
    /// The Workload API refused in a way that is not retried; the task has ended.
    Stopped(WorkloadApiError),
}

/// What the task needs: where to connect, which SVID to take, how to back off.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) endpoint: Endpoint,
    pub(super) hint: Option<String>,
    pub(super) min_backoff: Duration,
    pub(super) max_backoff: Duration,
}

/// Streams from the Workload API into `store` until refused for good (or aborted).
pub(super) async fn run(config: Config, store: SvidStore, progress: watch::Sender<Progress>) {
    let task = Task {
        config,
        store,
        progress,
    };
    let mut backoff = Backoff::new(task.config.min_backoff, task.config.max_backoff);
    loop {
        let connected = Instant::now();
        match task.session().await {
            Ended::Refused(error) => {
                task.progress.send_replace(Progress::Stopped(error));
                return;
            }
            Ended::Retry { took_one } => {
                if took_one && connected.elapsed() >= task.config.max_backoff {
                    backoff.reset();
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Ended::RetrySlowly => {
                backoff.saturate();
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// How one connection ended.
enum Ended {
    /// Connect again after the back-off; `took_one` when the store took a delivery from it.
    Retry { took_one: bool },
    /// Connect again after the longest back-off.
    RetrySlowly,
    /// Do not connect again.
    Refused(WorkloadApiError),
}

struct Task {
    config: Config,
    store: SvidStore,
    progress: watch::Sender<Progress>,
}

impl Task {
    /// One connection: connect, open the stream, take deliveries until it ends.
    async fn session(&self) -> Ended {
        let client = match WorkloadApiClient::connect(self.config.endpoint.clone()).await {
            Ok(client) => client,
            Err(e) => {
                self.failed(format!("cannot connect to the Workload API: {e}"));
                return Ended::Retry { took_one: false };
            }
        };
        let mut stream = match client.stream_x509_contexts().await {
            Ok(stream) => stream,
            Err(e) => return self.stream_failed(&e, false),
        };
        tracing::debug!("workload api: FetchX509SVID stream open");
        let mut took_one = false;
        let mut quiet_until = self.quiet_deadline();
        loop {
            let next = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx));
            let item = match quiet_until {
                Some(deadline) => match tokio::time::timeout_at(deadline, next).await {
                    Ok(item) => item,
                    Err(_) => {
                        self.failed(
                            "no delivery from the Workload API for three quarters of the SVID's \
                             remaining lifetime: reconnecting"
                                .to_owned(),
                        );
                        return Ended::Retry { took_one };
                    }
                },
                None => next.await,
            };
            match item {
                Some(Ok(context)) => {
                    if self.deliver(&context) {
                        took_one = true;
                        quiet_until = self.quiet_deadline();
                    }
                }
                // An RPC status ends the stream; so does a delivery the spiffe crate cannot
                // parse, rather than reading on: after refusing a message over the size limit,
                // tonic's stream goes on to read the rest of that message as further
                // (malformed) messages, without waiting, and reading on would spin.
                Some(Err(e)) => return self.stream_failed(&e, took_one),
                None => {
                    self.failed("the Workload API stream ended".to_owned());
                    return Ended::Retry { took_one };
                }
            }
        }
    }

    /// When a stream that has sent nothing new is taken for stuck: three quarters of the
    /// validity the current SVID had left (SPIRE rotates at half the lifetime, so a healthy
    /// agent has sent the next one by then). `None` without material, or for a deadline
    /// beyond what `Instant` can hold.
    fn quiet_deadline(&self) -> Option<Instant> {
        let svid = self.store.current()?;
        let left = svid
            .not_after()
            .saturating_sub(self.store.clock().unix_seconds());
        let seconds = u64::try_from(left).unwrap_or(0).saturating_mul(3) / 4;
        Instant::now().checked_add(Duration::from_secs(seconds))
    }

    /// Hands one delivery to the store; whether it was taken.
    fn deliver(&self, context: &X509Context) -> bool {
        let update = match to_update(context, self.config.hint.as_deref()) {
            Ok(update) => update,
            Err(error) => {
                self.report(error);
                return false;
            }
        };
        match self.store.update(update) {
            Ok(_) => {
                self.progress.send_if_modified(|progress| {
                    let starting = matches!(progress, Progress::Starting(_));
                    if starting {
                        *progress = Progress::Running;
                    }
                    starting
                });
                true
            }
            // The store has recorded and logged its refusal.
            Err(error) => {
                self.note_starting_error(error);
                false
            }
        }
    }

    /// Reports a failed RPC; refuses for good on the codes the specification says not to
    /// retry.
    fn stream_failed(&self, error: &spiffe::WorkloadApiError, took_one: bool) -> Ended {
        let running = matches!(*self.progress.borrow(), Progress::Running);
        let refused = match error {
            spiffe::WorkloadApiError::Transport(TransportError::Status(status)) => {
                match status.code() {
                    GrpcStatusCode::InvalidArgument => Some(("invalid_argument", status)),
                    GrpcStatusCode::Unimplemented if running => {
                        self.failed(format!("Workload API error, retried slowly: {error}"));
                        return Ended::RetrySlowly;
                    }
                    GrpcStatusCode::Unimplemented => Some(("unimplemented", status)),
                    _ => None,
                }
            }
            _ => None,
        };
        match refused {
            Some((code, status)) => {
                let error = WorkloadApiError::Refused {
                    code,
                    message: status.message().to_owned(),
                };
                self.store
                    .report_source_error(SvidUpdateError::Source(error.to_string()));
                Ended::Refused(error)
            }
            None => {
                self.failed(format!("Workload API error: {error}"));
                Ended::Retry { took_one }
            }
        }
    }

    fn failed(&self, detail: String) {
        self.report(SvidUpdateError::Source(detail));
    }

    fn report(&self, error: SvidUpdateError) {
        self.store.report_source_error(error.clone());
        self.note_starting_error(error);
    }

    /// Keeps the last failure while no delivery was taken, for a start that times out.
    fn note_starting_error(&self, error: SvidUpdateError) {
        self.progress.send_if_modified(|progress| match progress {
            Progress::Starting(last) => {
                *last = Some(error);
                true
            }
            Progress::Running | Progress::Stopped(_) => false,
        });
    }
}

/// Exponential back-off from `min` to `max` with "equal jitter": each delay is drawn from
/// the upper half of the current step, so that many workloads restarted with their agent
/// do not reconnect in lockstep, yet no delay is shorter than half a step.
struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    random: SystemRandom,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            step: min,
            random: SystemRandom::new(),
        }
    }

    fn reset(&mut self) {
        self.step = self.min;
    }

    /// Makes the next delay the longest one.
    fn saturate(&mut self) {
        self.step = self.max;
    }

    fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        let mut bytes = [0u8; 4];
        // Without randomness the delay is the full step: later, never sooner.
        let fraction = match self.random.fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 1.0,
        };
        half + half.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1_000));
        let mut backoff = Backoff::new(min, max);
        let steps = [100, 200, 400, 800, 1_000, 1_000];
        for step in steps {
            let delay = backoff.next_delay();
            let step = Duration::from_millis(step);
            assert!(delay >= step / 2 && delay <= step, "{delay:?} for {step:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
        backoff.saturate();
        assert!(backoff.next_delay() >= max / 2);
    }
}
