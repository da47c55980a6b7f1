//! One file source's state between polls: what settled, whether it was taken, and how long
//! the files have been failing.

use std::sync::Arc;

use super::super::material::Svid;
use super::super::store::SvidStore;
use super::error::SvidFileError;
use super::read::{Delivery, Layout, fingerprint};
use crate::watch::Settle;

/// What one poll did: the watching thread needs none of it, tests check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Polled {
    /// Nothing is waiting: the files read as they were taken, or are changing.
    Idle,
    /// A refused delivery is waiting, but the files changed since and have not settled.
    Changing,
    /// A delivery was taken: the store serves this generation.
    Taken(u64),
    /// The delivery waiting was refused again; the refusal went to the store's status
    /// when `reported`.
    Refused {
        /// Refusals since a delivery was last taken.
        refusals: u32,
        /// Whether this one was recorded in the store's status.
        reported: bool,
    },
}

/// Polls a layout and feeds the store.
pub(super) struct Poller {
    layout: Layout,
    store: SvidStore,
    settle: Settle,
    tolerance: u32,
    waiting: Option<Waiting>,
    /// Refusals since a delivery was last taken, over however many settled deliveries.
    refusals: u32,
}

/// A settled delivery the store has not taken yet, tried again on each poll that reads the
/// same bytes: the rest of a rotation may be on its way (a writer that replaces the
/// certificate, then the key, then the bundle), or time may make it valid.
struct Waiting {
    fingerprint: Vec<u8>,
    read: Result<Delivery, SvidFileError>,
}

impl Poller {
    /// Loads the files once for `start`; `Err` when they cannot be read or the store refuses
    /// them. The failure is recorded in the store's status only when `report`.
    pub(super) fn load(
        layout: &Layout,
        store: &SvidStore,
        report: bool,
    ) -> Result<Vec<u8>, SvidFileError> {
        let read = layout.read();
        let fingerprint = fingerprint(&read);
        match read.and_then(|delivery| take(store, &delivery)) {
            Ok(_) => Ok(fingerprint),
            Err(error) => {
                if report {
                    store.report_source_error(error.to_update_error());
                }
                Err(error)
            }
        }
    }

    /// A poller that starts from the files `loaded` fingerprints (those just taken), and
    /// records refusals after `tolerance` polls in a row (at least 1).
    pub(super) fn new(layout: Layout, store: SvidStore, loaded: Vec<u8>, tolerance: u32) -> Self {
        Self {
            layout,
            store,
            settle: Settle::new(loaded),
            tolerance: tolerance.max(1),
            waiting: None,
            refusals: 0,
        }
    }

    /// Reads the files once; hands a settled change (or the delivery still waiting, when
    /// the files still read the same) to the store.
    pub(super) fn poll(&mut self) -> Polled {
        let read = self.layout.read();
        let now = fingerprint(&read);
        if self.settle.observe(now.clone()) {
            self.waiting = Some(Waiting {
                fingerprint: now.clone(),
                read,
            });
        }
        let Some(waiting) = &self.waiting else {
            return Polled::Idle;
        };
        if waiting.fingerprint != now {
            // Moving again: wait for the new bytes to settle rather than retry stale ones.
            return Polled::Changing;
        }
        let taken = match &waiting.read {
            Ok(delivery) => take(&self.store, delivery).map_err(|e| e.to_update_error()),
            Err(error) => Err(error.to_update_error()),
        };
        match taken {
            Ok(svid) => {
                self.waiting = None;
                self.refusals = 0;
                Polled::Taken(svid.generation())
            }
            Err(error) => {
                self.refusals = self.refusals.saturating_add(1);
                // The first `tolerance - 1` refusals in a row are the normal race of a
                // writer that replaces the files one by one (a new certificate beside the
                // old key): not reported, so readiness stays green. From then on every
                // `tolerance`-th is, so the status stays red and its failure count keeps
                // climbing while the files stay broken. Refusals carry over from one
                // settled delivery to the next until one is taken.
                let reported = self.refusals >= self.tolerance
                    && (self.refusals - self.tolerance).is_multiple_of(self.tolerance);
                if reported {
                    self.store.report_source_error(error);
                } else {
                    tracing::debug!(
                        reason = error.reason(),
                        %error,
                        refusals = self.refusals,
                        "svid files refused: retrying at the next poll"
                    );
                }
                Polled::Refused {
                    refusals: self.refusals,
                    reported,
                }
            }
        }
    }
}

/// Parses and checks a delivery, then hands it to the store. The check runs first outside
/// the store so that a refusal is not recorded in its status before the tolerance allows;
/// the store then checks again as it takes the update.
fn take(store: &SvidStore, delivery: &Delivery) -> Result<Arc<Svid>, SvidFileError> {
    let now = store.clock().unix_seconds();
    Svid::validate(delivery.to_update()?, now, 0, store.provider())?;
    Ok(store.update(delivery.to_update()?)?)
}
