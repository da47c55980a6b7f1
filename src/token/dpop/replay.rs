//! The `jti` replay cache: each accepted proof is remembered until its window has passed, in
//! bounded memory, one partition per token issuer.
//!
//! When a partition is full, the entries whose window has passed are dropped first; when it
//! is still full, the new proof is refused ([`DpopError::ReplayCacheFull`]). An unexpired
//! `jti` is never forgotten, so a proof can never be replayed because the cache ran out of
//! room: a full cache fails closed, and the clients of the other issuers are unaffected.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use ring::digest;

use super::error::DpopError;

/// The partitions, chosen by the access token's issuer.
pub(crate) struct ReplayCache {
    /// Issuers by `iss`; `Issuer::any` is the single partition of its verifier.
    named: BTreeMap<String, Mutex<Partition>>,
    any: Option<Mutex<Partition>>,
}

/// The proofs of one issuer's tokens. Entries are 32-byte hashes of key thumbprint and
/// `jti`, so a long `jti` costs no memory.
struct Partition {
    capacity: usize,
    seen: HashSet<[u8; 32]>,
    /// The same entries ordered by the last second their proof is accepted in, so those
    /// whose window passed are found from the front.
    by_expiry: BTreeSet<(i64, [u8; 32])>,
}

impl ReplayCache {
    /// One partition of `capacity` per issuer name, `None` being an issuer that accepts any
    /// `iss` (then the verifier has no other).
    pub(crate) fn new<'a>(issuers: impl Iterator<Item = Option<&'a str>>, capacity: usize) -> Self {
        let mut cache = Self {
            named: BTreeMap::new(),
            any: None,
        };
        for issuer in issuers {
            let partition = Mutex::new(Partition::new(capacity));
            match issuer {
                Some(name) => {
                    cache.named.insert(name.to_owned(), partition);
                }
                None => cache.any = Some(partition),
            }
        }
        cache
    }

    /// Records the proof `jti` of the key `thumbprint` for a token of `issuer`, accepted
    /// until `expires` (inclusive), at `now`.
    ///
    /// # Errors
    ///
    /// [`DpopError::Replayed`] when it was recorded before and has not expired,
    /// [`DpopError::ReplayCacheFull`] when the partition holds only unexpired proofs.
    pub(crate) fn record(
        &self,
        issuer: Option<&str>,
        thumbprint: &str,
        jti: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), DpopError> {
        let partition = match &self.any {
            Some(any) => Some(any),
            None => issuer.and_then(|iss| self.named.get(iss)),
        };
        // A verified token always names one of the configured issuers; anything else is
        // refused rather than let through unrecorded.
        let partition = partition.ok_or(DpopError::ReplayCacheFull)?;
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(thumbprint.as_bytes());
        context.update(&[0]);
        context.update(jti.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(context.finish().as_ref());
        // A poisoned lock means another request panicked mid-update; the sets are still
        // consistent (each update is one insert or remove pair), so keep using them.
        let mut partition = partition
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        partition.record(key, expires, now)
    }
}

impl Partition {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    fn record(&mut self, key: [u8; 32], expires: i64, now: i64) -> Result<(), DpopError> {
        self.evict_expired(now);
        if self.seen.contains(&key) {
            return Err(DpopError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(DpopError::ReplayCacheFull);
        }
        self.seen.insert(key);
        self.by_expiry.insert((expires, key));
        Ok(())
    }

    /// Drops the entries whose window passed before `now`: amortized constant work per
    /// recorded proof, since each entry is dropped once.
    fn evict_expired(&mut self, now: i64) {
        while let Some(&(expires, key)) = self.by_expiry.first() {
            if expires >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_refused_again_until_its_window_passed() {
        let cache = ReplayCache::new([Some("a")].into_iter(), 4);
        assert_eq!(cache.record(Some("a"), "k", "j1", 100, 50), Ok(()));
        assert_eq!(
            cache.record(Some("a"), "k", "j1", 100, 100),
            Err(DpopError::Replayed)
        );
        // The same jti from another key is another proof.
        assert_eq!(cache.record(Some("a"), "k2", "j1", 100, 60), Ok(()));
        // Past its window the proof's own iat check refuses it; the entry may go.
        assert_eq!(cache.record(Some("a"), "k", "j1", 200, 101), Ok(()));
    }

    #[test]
    fn a_full_partition_fails_closed_and_frees_only_expired_entries() {
        let cache = ReplayCache::new([Some("a"), Some("b")].into_iter(), 2);
        cache.record(Some("a"), "k", "j1", 100, 0).unwrap();
        cache.record(Some("a"), "k", "j2", 150, 0).unwrap();
        assert_eq!(
            cache.record(Some("a"), "k", "j3", 150, 10),
            Err(DpopError::ReplayCacheFull)
        );
        // Another issuer's clients are not affected.
        assert_eq!(cache.record(Some("b"), "k", "j3", 150, 10), Ok(()));
        // Once j1's window passed, its room is reused; j2 is still remembered.
        assert_eq!(cache.record(Some("a"), "k", "j3", 200, 101), Ok(()));
        assert_eq!(
            cache.record(Some("a"), "k", "j2", 200, 101),
            Err(DpopError::Replayed)
        );
        let partition = cache.named["a"].lock().unwrap();
        assert_eq!(partition.len(), 2);
    }

    #[test]
    fn unknown_issuers_are_refused_and_any_issuer_shares_one_partition() {
        let named = ReplayCache::new([Some("a")].into_iter(), 2);
        assert_eq!(
            named.record(Some("b"), "k", "j", 1, 0),
            Err(DpopError::ReplayCacheFull)
        );
        let any = ReplayCache::new([None].into_iter(), 2);
        any.record(Some("x"), "k", "j", 10, 0).unwrap();
        assert_eq!(
            any.record(Some("y"), "k", "j", 10, 0),
            Err(DpopError::Replayed)
        );
    }
}
