//! [`RemoteState`]: one remote key set shared by every request — the published snapshot, the
//! single-flight refresh, its rate limits, the background timer and the state-change logs.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use reqwest::{Client, Url};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::super::algorithm::AlgorithmSet;
use super::super::clock::Clock;
use super::super::error::{TokenError, VerifierBuilderError};
use super::super::issuer::PreparedKeys;
use super::super::keys::KeySet;
use super::cache::{self, Snapshot};
use super::config::{Location, RemoteJwks, Startup};
use super::discovery::{checked_url, discovered_jwks_uri, discovery_url};
use super::error::RemoteError;
use super::fetch;
use super::status::{Health, RemoteStatus};

/// The longest the background timer sleeps before looking again.
const MAX_TIMER_SLEEP: i64 = 60 * 60;

thread_local! {
    /// Set while `build_async` runs the synchronous build, the only place a fail-fast source
    /// may be started (it is awaited right after).
    static ASYNC_BUILD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `build` as the first half of an asynchronous build.
pub(super) fn as_async_build<T>(build: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ASYNC_BUILD.set(false);
        }
    }
    ASYNC_BUILD.set(true);
    let _reset = Reset;
    build()
}

/// What asks for a fetch; each has its own rate limit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The first fetch of `build_async`: whenever there are no keys yet.
    Startup,
    /// The keys are due for refresh (timer or a request noticing): not while backing off.
    Due,
    /// A request found no usable keys: not while backing off.
    Missing,
    /// A request named an unknown `kid`: once per refresh interval.
    UnknownKid,
}

pub(crate) struct RemoteState {
    /// The issuer, or the JWKS URL when any issuer is accepted; for logs and status.
    name: String,
    location: Resolved,
    config: RemoteJwks,
    algorithms: AlgorithmSet,
    clock: Arc<dyn Clock>,
    client: Client,
    /// The published keys. Requests only ever `load` this.
    current: ArcSwap<Snapshot>,
    control: Mutex<Control>,
    /// Mirrors `control.retry_at` so a request can skip the lock while backing off.
    retry_at: AtomicI64,
    /// Mirrors `control.in_flight`, for the same reason.
    busy: AtomicBool,
    /// Bumped when a fetch ends; waiters subscribe before they decide to wait.
    done: watch::Sender<u64>,
    progress: Mutex<Progress>,
    runtime: OnceLock<Handle>,
    timer_running: AtomicBool,
    /// Set once the "past the stale period" warning was logged, cleared by a good fetch.
    expiry_logged: AtomicBool,
    fetches: AtomicU64,
}

enum Resolved {
    Jwks(Url),
    Discovery { issuer: String, url: Url },
}

struct Control {
    in_flight: bool,
    last_kid_refresh: i64,
    retry_at: i64,
}

struct Progress {
    health: Health,
    last_error: Option<RemoteError>,
    failures: u64,
    /// The `jwks_uri` discovery found, until a fetch from it fails.
    discovered: Option<Url>,
    /// The keys the last document read skipped, each with the reason; kept also when the
    /// document had no usable key, to say why.
    skipped_keys: Vec<String>,
}

struct Keys {
    keys: PreparedKeys,
    kids: Vec<Option<String>>,
    skipped: Vec<String>,
    ttl: Duration,
}

impl RemoteState {
    pub(super) fn start(
        config: &RemoteJwks,
        issuer: Option<&str>,
        algorithms: AlgorithmSet,
        clock: &Arc<dyn Clock>,
    ) -> Result<Arc<Self>, VerifierBuilderError> {
        if config.startup == Startup::FailFast && !ASYNC_BUILD.get() {
            return Err(RemoteError::FailFastNeedsAsync.into());
        }
        let (location, https) = match &config.location {
            Location::Jwks(raw) => {
                let url = checked_url(raw, config.allow_plain_http)?;
                let https = url.scheme() == "https";
                (Resolved::Jwks(url), https)
            }
            Location::Discovery(issuer) => {
                let url = discovery_url(issuer, config.allow_plain_http)?;
                let https = url.scheme() == "https";
                let issuer = issuer.clone();
                (Resolved::Discovery { issuer, url }, https)
            }
        };
        let name = match (&location, issuer) {
            (_, Some(issuer)) => issuer.to_owned(),
            (Resolved::Jwks(url), None) => url.to_string(),
            (Resolved::Discovery { issuer, .. }, None) => issuer.clone(),
        };
        let state = Arc::new(RemoteState {
            name,
            location,
            client: fetch::client(config, https)?,
            config: config.clone(),
            algorithms,
            clock: Arc::clone(clock),
            current: ArcSwap::from_pointee(Snapshot::cold(PreparedKeys::new(
                &KeySet::new(),
                algorithms,
            ))),
            control: Mutex::new(Control {
                in_flight: false,
                last_kid_refresh: i64::MIN,
                retry_at: i64::MIN,
            }),
            retry_at: AtomicI64::new(i64::MIN),
            busy: AtomicBool::new(false),
            done: watch::Sender::new(0),
            progress: Mutex::new(Progress {
                health: Health::Cold,
                last_error: None,
                failures: 0,
                discovered: None,
                skipped_keys: Vec::new(),
            }),
            runtime: OnceLock::new(),
            timer_running: AtomicBool::new(false),
            expiry_logged: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        });
        if let Ok(handle) = Handle::try_current() {
            state.start_timer(&handle);
        }
        Ok(state)
    }

    /// The keys for one verification: no I/O, no lock a refresh holds.
    #[inline]
    pub(crate) fn load(self: &Arc<Self>) -> Result<Guard<Arc<Snapshot>>, TokenError> {
        let snapshot = self.current.load();
        let now = self.clock.unix_seconds();
        if now >= snapshot.refresh_at {
            self.refresh_in_background(now);
        }
        if now >= snapshot.stale_until {
            if !snapshot.is_cold() && !self.expiry_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    issuer = %self.name,
                    "keys are past their stale period and the endpoint still fails: rejecting tokens"
                );
            }
            return Err(TokenError::KeySourceUnavailable);
        }
        Ok(snapshot)
    }

    /// Waits for the refresh that may cure `error`, if the rate limits let one happen.
    pub(crate) async fn refresh_after(self: &Arc<Self>, error: &TokenError) {
        let trigger = match error {
            TokenError::UnknownKey => Trigger::UnknownKid,
            TokenError::KeySourceUnavailable => Trigger::Missing,
            _ => return,
        };
        let now = self.clock.unix_seconds();
        if let Some(mut done) = self.request(trigger, now) {
            // The sender lives as long as `self`: the wait ends with the flight.
            let _ = done.changed().await;
        }
    }

    /// The first fetch of `build_async`: the error, if it failed.
    pub(super) async fn initial_fetch(self: &Arc<Self>) -> Result<(), RemoteError> {
        let now = self.clock.unix_seconds();
        if let Some(mut done) = self.request(Trigger::Startup, now) {
            // A closed channel cannot happen while `self` holds the sender.
            let _ = done.changed().await;
        }
        if !self.current.load().is_cold() {
            return Ok(());
        }
        Err(lock(&self.progress)
            .last_error
            .clone()
            .unwrap_or(RemoteError::NoRuntime))
    }

    pub(super) fn startup(&self) -> Startup {
        self.config.startup
    }

    pub(super) fn status(&self) -> RemoteStatus {
        let snapshot = self.current.load();
        let progress = lock(&self.progress);
        let now = self.clock.unix_seconds();
        let health = if snapshot.is_cold() {
            progress.health
        } else if now >= snapshot.stale_until {
            Health::Expired
        } else if now >= snapshot.expires_at {
            Health::Stale
        } else {
            progress.health
        };
        RemoteStatus {
            issuer: self.name.clone(),
            health,
            keys: snapshot.kids.len(),
            skipped: snapshot.skipped,
            skipped_keys: progress.skipped_keys.clone(),
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: progress.failures,
            last_error: progress.last_error.clone(),
        }
    }

    /// Starts a refresh without waiting for it, when one is due and none is running.
    fn refresh_in_background(self: &Arc<Self>, now: i64) {
        if self.busy.load(Ordering::Relaxed) || now < self.retry_at.load(Ordering::Relaxed) {
            return;
        }
        let _ = self.request(Trigger::Due, now);
    }

    /// Starts a fetch if `trigger` may, or joins the one in flight. Returns a receiver that
    /// changes when that fetch ends, or `None` when no fetch is running.
    fn request(self: &Arc<Self>, trigger: Trigger, now: i64) -> Option<watch::Receiver<u64>> {
        let runtime = self.runtime();
        let mut control = lock(&self.control);
        // Subscribed under the lock, so the end of a flight seen running cannot be missed.
        let done = self.done.subscribe();
        if control.in_flight {
            return Some(done);
        }
        let allowed = match trigger {
            // The timer may have fetched first; only a source still without keys needs it.
            Trigger::Startup => self.current.load().is_cold(),
            // Checked again under the lock: a flight that just ended may have cured it.
            Trigger::Due => now >= control.retry_at && now >= self.current.load().refresh_at,
            Trigger::Missing => now >= control.retry_at && now >= self.current.load().stale_until,
            Trigger::UnknownKid => {
                now.saturating_sub(control.last_kid_refresh)
                    >= cache::seconds(self.config.refresh_interval)
            }
        };
        let runtime = runtime.filter(|_| allowed)?;
        if trigger == Trigger::UnknownKid {
            control.last_kid_refresh = now;
        }
        control.in_flight = true;
        self.busy.store(true, Ordering::Relaxed);
        drop(control);
        self.start_timer(&runtime);
        // The guard ends the flight even if the task never runs (a runtime shutting down
        // drops it), so a lost task cannot wedge every later refresh.
        let flight = Flight(Arc::clone(self));
        runtime.spawn(async move {
            flight.0.fetch_and_publish().await;
            drop(flight);
        });
        Some(done)
    }

    fn runtime(&self) -> Option<Handle> {
        match Handle::try_current() {
            Ok(handle) => {
                let _ = self.runtime.set(handle.clone());
                Some(handle)
            }
            Err(_) => self.runtime.get().cloned(),
        }
    }

    /// Refreshes before expiry so that requests never find stale keys while the endpoint
    /// works. Holds only a weak reference: dropping the verifier ends it.
    fn start_timer(self: &Arc<Self>, runtime: &Handle) {
        if self.timer_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let timer = Timer(Arc::downgrade(self));
        runtime.spawn(async move {
            let mut first = true;
            loop {
                let wait = match timer.0.upgrade() {
                    Some(state) => state.until_due(first),
                    None => return,
                };
                first = false;
                tokio::time::sleep(wait).await;
                let done = match timer.0.upgrade() {
                    Some(state) => state.request(Trigger::Due, state.clock.unix_seconds()),
                    None => return,
                };
                if let Some(mut done) = done {
                    let _ = done.changed().await;
                }
            }
        });
    }

    fn until_due(&self, first: bool) -> Duration {
        let due = self
            .current
            .load()
            .refresh_at
            .max(self.retry_at.load(Ordering::Relaxed));
        let floor = if first { 0 } else { 1 };
        let seconds = due
            .saturating_sub(self.clock.unix_seconds())
            .clamp(floor, MAX_TIMER_SLEEP);
        Duration::from_secs(seconds.unsigned_abs())
    }

    async fn fetch_and_publish(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;
        let now = self.clock.unix_seconds();
        match result {
            Ok(keys) => self.publish(keys, now),
            Err(error) => self.record_failure(error, now),
        }
    }

    async fn fetch(&self) -> Result<Keys, RemoteError> {
        let url = self.jwks_url().await?;
        let fetched = match fetch::get(&self.client, &url, self.config.max_body_bytes).await {
            Ok(fetched) => fetched,
            Err(error) => {
                // The provider may have moved its keys: ask discovery again next time.
                lock(&self.progress).discovered = None;
                return Err(error);
            }
        };
        let set = KeySet::from_remote_jwks_json(&fetched.body, self.config.allow_symmetric_keys)
            .map_err(RemoteError::Jwks)?;
        let keys = PreparedKeys::new(&set, self.algorithms);
        if keys.is_empty() {
            lock(&self.progress).skipped_keys = set.skipped().to_vec();
            return Err(RemoteError::NoUsableKeys {
                skipped: set.skipped().len(),
            });
        }
        Ok(Keys {
            keys,
            kids: set
                .keys()
                .iter()
                .map(|k| k.kid().map(str::to_owned))
                .collect(),
            skipped: set.skipped().to_vec(),
            ttl: self.config.cache_lifetime(fetched.cache_control.as_deref()),
        })
    }

    async fn jwks_url(&self) -> Result<Url, RemoteError> {
        let (issuer, url) = match &self.location {
            Resolved::Jwks(url) => return Ok(url.clone()),
            Resolved::Discovery { issuer, url } => (issuer, url),
        };
        if let Some(known) = lock(&self.progress).discovered.clone() {
            return Ok(known);
        }
        let document = fetch::get(&self.client, url, self.config.max_body_bytes).await?;
        let jwks_uri = discovered_jwks_uri(&document.body, issuer)?;
        let jwks_url = checked_url(&jwks_uri, self.config.allow_plain_http)?;
        lock(&self.progress).discovered = Some(jwks_url.clone());
        Ok(jwks_url)
    }

    fn publish(&self, keys: Keys, now: i64) {
        let snapshot = Snapshot::fetched(
            keys.keys,
            keys.kids,
            keys.skipped.len(),
            now,
            keys.ttl,
            self.config.max_stale,
        );
        let previous = self.current.swap(Arc::new(snapshot));
        {
            let mut control = lock(&self.control);
            control.retry_at = i64::MIN;
            self.retry_at.store(i64::MIN, Ordering::Relaxed);
        }
        self.expiry_logged.store(false, Ordering::Relaxed);
        let current = self.current.load();
        let mut progress = lock(&self.progress);
        let was = std::mem::replace(&mut progress.health, Health::Fresh);
        let (count, skipped, ttl) = (current.kids.len(), current.skipped, keys.ttl.as_secs());
        match was {
            Health::Cold => {
                tracing::info!(issuer = %self.name, keys = count, skipped, ttl, "keys loaded");
            }
            Health::Failing | Health::Unreachable | Health::Stale | Health::Expired => {
                tracing::info!(issuer = %self.name, keys = count, skipped, ttl, "key endpoint recovered");
            }
            Health::Fresh if previous.kids != current.kids => {
                tracing::info!(issuer = %self.name, keys = count, skipped, ttl, "keys rotated");
            }
            Health::Fresh => {
                tracing::debug!(issuer = %self.name, keys = count, ttl, "keys refreshed");
            }
        }
        if current.skipped != previous.skipped || matches!(was, Health::Cold) {
            for why in &keys.skipped {
                tracing::debug!(issuer = %self.name, "skipped {why}");
            }
        }
        progress.skipped_keys = keys.skipped;
    }

    fn record_failure(&self, error: RemoteError, now: i64) {
        let retry_at = now.saturating_add(cache::seconds(self.config.refresh_interval));
        {
            let mut control = lock(&self.control);
            control.retry_at = retry_at;
            self.retry_at.store(retry_at, Ordering::Relaxed);
        }
        let cold = self.current.load().is_cold();
        let mut progress = lock(&self.progress);
        progress.failures += 1;
        let next = if cold {
            Health::Unreachable
        } else {
            Health::Failing
        };
        let was = std::mem::replace(&mut progress.health, next);
        if was == next {
            tracing::debug!(issuer = %self.name, reason = error.reason(), "key fetch failed again: {error}");
        } else if cold {
            tracing::warn!(issuer = %self.name, reason = error.reason(), "cannot fetch keys, rejecting tokens until it works: {error}");
        } else {
            tracing::warn!(issuer = %self.name, reason = error.reason(), "key refresh failed, verifying with the last good keys: {error}");
        }
        progress.last_error = Some(error);
    }
}

/// An in-flight fetch; dropping it (done, or never run) lets the next one start.
struct Flight(Arc<RemoteState>);

impl Drop for Flight {
    fn drop(&mut self) {
        let state = &self.0;
        let mut control = lock(&state.control);
        control.in_flight = false;
        state.busy.store(false, Ordering::Relaxed);
        state
            .done
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// The background timer's handle on the state; dropping it lets a later runtime start one.
struct Timer(Weak<RemoteState>);

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(state) = self.0.upgrade() {
            state.timer_running.store(false, Ordering::Release);
        }
    }
}

/// Locks a mutex that guards plain data: a panic elsewhere cannot leave it inconsistent, so
/// poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
