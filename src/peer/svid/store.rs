//! [`SvidStore`]: the current SVID, swapped atomically, with a status for readiness probes.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;
use rustls::crypto::CryptoProvider;

use super::super::spiffe::SpiffeId;
use super::error::SvidUpdateError;
use super::material::Svid;
use super::update::X509Update;
use crate::token::{Clock, SystemClock};

/// Holds the service's current X509-SVID and trust bundles for rotating TLS configurations.
///
/// Sources (files on disk, the SPIFFE Workload API) hand every delivery to
/// [`update`](Self::update), which checks it completely before it replaces the current
/// material in one atomic swap: new handshakes use the new material, established
/// connections keep theirs. A delivery that fails a check is refused, the last good
/// material stays, and the reason goes to `tracing` (warn) and to [`status`](Self::status).
///
/// Cloning is cheap and every clone shares the same material.
#[derive(Clone)]
pub struct SvidStore {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwapOption<Svid>,
    record: Mutex<Record>,
    clock: Arc<dyn Clock>,
    provider: Arc<CryptoProvider>,
}

#[derive(Default)]
struct Record {
    generation: u64,
    updates: u64,
    failures: u64,
    last_error: Option<SvidUpdateError>,
}

/// The condition of an [`SvidStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvidHealth {
    /// No material was ever taken: handshakes fail.
    Empty,
    /// Valid material, and the last delivery was taken.
    Current,
    /// Valid material, but the last delivery was refused or the source failed since.
    Failing,
    /// The material has expired and nothing replaced it: handshakes fail.
    Expired,
}

impl SvidHealth {
    /// Whether handshakes can succeed now.
    pub fn is_ready(self) -> bool {
        matches!(self, Self::Current | Self::Failing)
    }
}

/// A snapshot of an [`SvidStore`], from [`SvidStore::status`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SvidStatus {
    health: SvidHealth,
    spiffe_id: Option<SpiffeId>,
    not_after: Option<i64>,
    generation: u64,
    updates: u64,
    failures: u64,
    last_error: Option<SvidUpdateError>,
}

impl SvidStatus {
    /// The condition now.
    pub fn health(&self) -> SvidHealth {
        self.health
    }

    /// The SPIFFE ID of the material served, if any.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.spiffe_id.as_ref()
    }

    /// When the material served expires, in seconds since the Unix epoch.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    /// The generation of the material served (0 when none).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many deliveries were taken.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// How many deliveries were refused or source reads failed.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Why the last delivery was refused, while no later one was taken.
    pub fn last_error(&self) -> Option<&SvidUpdateError> {
        self.last_error.as_ref()
    }
}

impl SvidStore {
    /// An empty store on the system clock and ring.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock`, which decides validity of deliveries and expiry of the
    /// material served.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwapOption::empty(),
                record: Mutex::new(Record::default()),
                clock,
                provider: Arc::new(rustls::crypto::ring::default_provider()),
            }),
        }
    }

    /// Checks `update` and, when every check passes, makes it the current material.
    ///
    /// # Errors
    ///
    /// [`SvidUpdateError`] when a check fails; the current material is then unchanged.
    pub fn update(&self, update: X509Update) -> Result<Arc<Svid>, SvidUpdateError> {
        let now = self.inner.clock.unix_seconds();
        let mut record = self.record();
        let generation = record.generation.saturating_add(1);
        match Svid::validate(update, now, generation, &self.inner.provider) {
            Ok(svid) => {
                let svid = Arc::new(svid);
                self.inner.current.store(Some(Arc::clone(&svid)));
                record.generation = generation;
                record.updates = record.updates.saturating_add(1);
                record.last_error = None;
                tracing::info!(
                    spiffe_id = svid.spiffe_id().as_str(),
                    not_after = svid.not_after(),
                    generation,
                    "svid rotated"
                );
                Ok(svid)
            }
            Err(error) => {
                Self::note_failure(&mut record, &error);
                Err(error)
            }
        }
    }

    /// Records that a source could not deliver (a read failed, a stream broke), for the
    /// status; the current material is unchanged.
    pub fn report_source_error(&self, error: SvidUpdateError) {
        Self::note_failure(&mut self.record(), &error);
    }

    /// The material taken last, expired or not (see [`Svid::is_valid_at`]).
    pub fn current(&self) -> Option<Arc<Svid>> {
        self.inner.current.load_full()
    }

    /// The material to present now: `None` when there is none or it has expired, so that
    /// expired material is never served.
    pub fn valid_now(&self) -> Option<Arc<Svid>> {
        let now = self.inner.clock.unix_seconds();
        self.current().filter(|svid| svid.is_valid_at(now))
    }

    /// The store's condition now.
    pub fn status(&self) -> SvidStatus {
        let current = self.current();
        let now = self.inner.clock.unix_seconds();
        let record = self.record();
        let health = match &current {
            None => SvidHealth::Empty,
            Some(svid) if !svid.is_valid_at(now) => SvidHealth::Expired,
            Some(_) if record.last_error.is_some() => SvidHealth::Failing,
            Some(_) => SvidHealth::Current,
        };
        SvidStatus {
            health,
            spiffe_id: current.as_ref().map(|svid| svid.spiffe_id().clone()),
            not_after: current.as_ref().map(|svid| svid.not_after()),
            generation: current.as_ref().map_or(0, |svid| svid.generation()),
            updates: record.updates,
            failures: record.failures,
            last_error: record.last_error.clone(),
        }
    }

    /// The clock the store judges validity with.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The crypto provider (ring) the material was loaded with.
    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.inner.provider
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        // The record holds counters only; a panic elsewhere while it was held leaves them
        // usable.
        self.inner
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn note_failure(record: &mut Record, error: &SvidUpdateError) {
        record.failures = record.failures.saturating_add(1);
        record.last_error = Some(error.clone());
        tracing::warn!(
            reason = error.reason(),
            error = %error,
            "svid update refused: keeping the last good material"
        );
    }
}

impl Default for SvidStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SvidStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidStore")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}
