//! [`TokenCell`]: one cached token, renewed before it expires by one request at a time.
//!
//! The warm path loads the published token (an `ArcSwap`, no lock) and clones its prebuilt
//! header. Inside the refresh window (the last tenth of its life, 5 to 60 seconds and never
//! more than half of it) the token keeps being used while one background task renews it. Its
//! life is counted from when it was asked for; a token that reaches the cell's `not_after`
//! (an exchanged token's subject expiring first) is used to its end, not renewed: no renewal
//! could outlive it.
//! Without a usable token, callers wait for the one request in flight, up to a timeout.
//! Failures back off exponentially (1 s doubling to 60 s, or longer when the endpoint's
//! `Retry-After` says so); while backing off, callers without a usable token fail at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use tokio::runtime::Handle;
use tokio::sync::watch;
use zeroize::Zeroizing;

use super::endpoint::Failure;
use super::error::OutgoingError;
use super::response::IssuedToken;
use crate::token::Clock;

/// A token request, ready to be spawned.
pub(crate) type Fetch = Pin<Box<dyn Future<Output = Result<IssuedToken, Failure>> + Send>>;

/// The longest back-off after repeated failures, unless `Retry-After` asks for more.
const MAX_BACKOFF: i64 = 60;

/// One token and its header, shared by every request until it is renewed.
pub(crate) struct TokenCell {
    clock: Arc<dyn Clock>,
    /// No token is used at or past this instant (Unix seconds): for an exchanged token, the
    /// subject token's own `exp`.
    not_after: i64,
    current: ArcSwapOption<Held>,
    control: Mutex<Control>,
    /// Mirror `control.in_flight` and the failure's `retry_at`, so that the refresh window
    /// costs no lock per request, even while backing off.
    busy: AtomicBool,
    retry_at: AtomicI64,
    /// Bumped when a request ends; waiters subscribe under the lock before they wait.
    done: watch::Sender<u64>,
    fetches: AtomicU64,
}

struct Held {
    header: HeaderValue,
    refresh_at: i64,
    expires_at: i64,
}

struct Control {
    in_flight: bool,
    /// The last failure and when the endpoint may be asked again; cleared by a success.
    failure: Option<(OutgoingError, i64)>,
    failures: u32,
}

impl TokenCell {
    pub(crate) fn new(clock: Arc<dyn Clock>, not_after: i64) -> Arc<Self> {
        Arc::new(TokenCell {
            clock,
            not_after,
            current: ArcSwapOption::empty(),
            control: Mutex::new(Control {
                in_flight: false,
                failure: None,
                failures: 0,
            }),
            busy: AtomicBool::new(false),
            retry_at: AtomicI64::new(i64::MIN),
            done: watch::Sender::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// The header of the current token when it is usable now, without waiting; inside the
    /// refresh window also starts one background renewal with `start`.
    #[inline]
    pub(crate) fn ready(self: &Arc<Self>, start: impl FnOnce() -> Fetch) -> Option<HeaderValue> {
        let now = self.clock.unix_seconds();
        let current = self.current.load();
        let held = current.as_ref()?;
        if now >= held.expires_at {
            return None;
        }
        if now >= held.refresh_at
            && !self.busy.load(Ordering::Relaxed)
            && now >= self.retry_at.load(Ordering::Relaxed)
        {
            self.renew_in_background(now, start);
        }
        Some(held.header.clone())
    }

    /// The header of a usable token, waiting up to `timeout` for the request in flight (or
    /// the one `start` makes when none is).
    ///
    /// # Errors
    ///
    /// The failed request's error, [`OutgoingError::BackingOff`] while a failure's back-off
    /// runs, [`OutgoingError::Timeout`], or [`OutgoingError::NoRuntime`].
    pub(crate) async fn wait(
        self: &Arc<Self>,
        timeout: Duration,
        start: impl FnOnce() -> Fetch,
    ) -> Result<HeaderValue, OutgoingError> {
        let mut start = Some(start);
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if let Some(header) = self.usable() {
                    return Ok(header);
                }
                let mut done = {
                    let now = self.clock.unix_seconds();
                    let mut control = lock(&self.control);
                    // Subscribed under the lock: the end of a request seen running is not
                    // missed.
                    let done = self.done.subscribe();
                    if !control.in_flight {
                        if let Some((error, retry_at)) = &control.failure
                            && now < *retry_at
                        {
                            return Err(OutgoingError::BackingOff {
                                retry_at: *retry_at,
                                last: error.reason(),
                            });
                        }
                        let Some(start) = start.take() else {
                            return Err(OutgoingError::Unavailable(
                                "the token request ended without an answer".into(),
                            ));
                        };
                        self.launch(&mut control, start())?;
                    }
                    done
                };
                // The sender lives as long as `self`: this ends with the request.
                let _ = done.changed().await;
                if let Some(header) = self.usable() {
                    return Ok(header);
                }
                if let Some((error, _)) = &lock(&self.control).failure {
                    return Err(error.clone());
                }
            }
        })
        .await;
        waited.unwrap_or(Err(OutgoingError::Timeout))
    }

    /// How many token requests were started.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether the cell holds a token still usable at `now`, or a request is in flight for
    /// it: a cache holding cells keeps these.
    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.busy.load(Ordering::Relaxed)
            || self
                .current
                .load()
                .as_ref()
                .is_some_and(|held| now < held.expires_at)
    }

    fn usable(&self) -> Option<HeaderValue> {
        let now = self.clock.unix_seconds();
        let current = self.current.load();
        current
            .as_ref()
            .filter(|held| now < held.expires_at)
            .map(|held| held.header.clone())
    }

    fn renew_in_background(self: &Arc<Self>, now: i64, start: impl FnOnce() -> Fetch) {
        let mut control = lock(&self.control);
        let backing_off = control
            .failure
            .as_ref()
            .is_some_and(|(_, retry_at)| now < *retry_at);
        if control.in_flight || backing_off {
            return;
        }
        // Without a runtime nothing is renewed early; the token is renewed when it expires,
        // by a caller that waits (and then needs a runtime).
        let _ = self.launch(&mut control, start());
    }

    /// Spawns `fetch` as the one request in flight.
    fn launch(self: &Arc<Self>, control: &mut Control, fetch: Fetch) -> Result<(), OutgoingError> {
        let runtime = Handle::try_current().map_err(|_| OutgoingError::NoRuntime)?;
        control.in_flight = true;
        self.busy.store(true, Ordering::Relaxed);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        // The guard ends the flight even if the task never runs (a runtime shutting down
        // drops it), so a lost task cannot leave every later caller waiting.
        let flight = Flight(Arc::clone(self));
        // The token's life is counted from before the request is sent: the answer may come
        // late, and `expires_in` runs from when the endpoint issued it.
        let sent_at = self.clock.unix_seconds();
        runtime.spawn(async move {
            let outcome = fetch.await;
            flight.0.publish(outcome, sent_at);
            drop(flight);
        });
        Ok(())
    }

    /// Keeps the token of a request sent at `sent_at`, or records its failure.
    fn publish(&self, outcome: Result<IssuedToken, Failure>, sent_at: i64) {
        let now = self.clock.unix_seconds();
        let mut control = lock(&self.control);
        let failed = match outcome {
            Ok(issued) => match held(&issued, sent_at, self.not_after) {
                Ok(held) => {
                    self.current.store(Some(Arc::new(held)));
                    self.retry_at.store(i64::MIN, Ordering::Relaxed);
                    control.failure = None;
                    control.failures = 0;
                    return;
                }
                Err(error) => Failure::from(error),
            },
            Err(failure) => failure,
        };
        control.failures = control.failures.saturating_add(1);
        let backoff = 1_i64
            .checked_shl(control.failures.saturating_sub(1).min(6))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        let asked = failed
            .retry_after
            .map_or(0, |s| i64::try_from(s).unwrap_or(MAX_BACKOFF));
        tracing::debug!(
            reason = failed.error.reason(),
            "token request failed: {}",
            failed.error
        );
        let retry_at = now.saturating_add(backoff.max(asked));
        self.retry_at.store(retry_at, Ordering::Relaxed);
        control.failure = Some((failed.error, retry_at));
    }
}

/// The held form of `issued`, asked for at `sent_at`, never used at or past `not_after`.
fn held(issued: &IssuedToken, sent_at: i64, not_after: i64) -> Result<Held, OutgoingError> {
    let lifetime = i64::try_from(issued.expires_in()).unwrap_or(i64::MAX);
    let issued_until = sent_at.saturating_add(lifetime);
    let expires_at = issued_until.min(not_after);
    // Reaching `not_after` (the subject's `exp`), no renewal could outlive this token:
    // renewing early would only ask again on every request, so it is used to its end.
    let refresh_at = if issued_until >= not_after {
        expires_at
    } else {
        let effective = expires_at.saturating_sub(sent_at);
        expires_at.saturating_sub((effective / 10).clamp(5, 60).min(effective / 2))
    };
    let text = Zeroizing::new(format!("Bearer {}", issued.token.as_str()));
    let mut header = HeaderValue::from_str(&text)
        .map_err(|_| OutgoingError::InvalidResponse("`access_token` is not a header value"))?;
    header.set_sensitive(true);
    Ok(Held {
        header,
        refresh_at,
        expires_at,
    })
}

/// Ends the flight when dropped: clears `in_flight` and wakes the waiters.
struct Flight(Arc<TokenCell>);

impl Drop for Flight {
    fn drop(&mut self) {
        lock(&self.0.control).in_flight = false;
        self.0.busy.store(false, Ordering::Relaxed);
        self.0
            .done
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// The lock, even if a thread panicked holding it: every step leaves the state consistent.
fn lock(mutex: &Mutex<Control>) -> MutexGuard<'_, Control> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
