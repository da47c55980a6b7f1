//! [`BundleSet`]: the SPIFFE bundles a JWT-SVID verifier trusts, one per trust domain,
//! replaceable at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::super::algorithm::{Algorithm, AlgorithmSet};
use super::super::issuer::PreparedKeys;
use super::bundle::{BundleError, SpiffeBundle};
use crate::peer::TrustDomain;

/// The algorithms a JWT-SVID may be signed with (JWT-SVID §3, go-spiffe): RSA PKCS#1 v1.5,
/// RSA-PSS and ECDSA. HMAC and EdDSA are not among them. ES512 is allowed by the spec but
/// ring cannot verify P-521 signatures, so such keys are skipped and such tokens refused.
pub(crate) fn jwt_svid_algorithms() -> AlgorithmSet {
    [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ]
    .into_iter()
    .collect()
}

/// The SPIFFE bundles trusted for JWT-SVIDs, one per trust domain.
///
/// A JWT-SVID is verified only with a key from the bundle of its own `sub`'s trust domain.
/// The set is a shared handle: clones (and the [`JwtSvidVerifier`](super::JwtSvidVerifier)
/// built from one) see the same bundles, and [`update`](Self::update) swaps a trust
/// domain's bundle in atomically while requests keep verifying. Keys are expanded when a
/// bundle is added, not per request.
///
/// Bundles come from files or strings ([`update`](Self::update)), from a SPIFFE bundle
/// endpoint kept refreshed (`fetch`, feature `remote-jwks`), or from whatever source the
/// application has (the SPIFFE Workload API, a file watcher) calling `update`.
///
/// # Example
///
/// ```
/// use meshguard::peer::TrustDomain;
/// use meshguard::token::jwt_svid::{BundleSet, SpiffeBundle};
///
/// let td = TrustDomain::new("example.org")?;
/// let bundles = BundleSet::new();
/// bundles.update(SpiffeBundle::from_json(td.clone(), br#"{"keys":[],"spiffe_sequence":2}"#)?)?;
/// // An older bundle does not replace a newer one.
/// let older = SpiffeBundle::from_json(td.clone(), br#"{"keys":[],"spiffe_sequence":1}"#)?;
/// assert_eq!(bundles.update(older).unwrap_err().reason(), "rollback");
/// assert_eq!(bundles.get(&td).and_then(|b| b.sequence()), Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct BundleSet {
    pub(super) shared: Arc<Shared>,
}

#[derive(Default)]
pub(super) struct Shared {
    current: ArcSwap<BTreeMap<TrustDomain, Arc<PreparedBundle>>>,
    /// Serializes writers, so that two updates cannot both pass the sequence check.
    writer: Mutex<()>,
}

/// A bundle with its keys ready to verify.
pub(crate) struct PreparedBundle {
    pub(crate) bundle: SpiffeBundle,
    pub(crate) keys: PreparedKeys,
}

impl BundleSet {
    /// An empty set; JWT-SVIDs of a trust domain without a bundle are refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding `bundles`; a trust domain given twice keeps the later bundle.
    ///
    /// # Errors
    ///
    /// [`BundleError::Rollback`] when a later bundle of a trust domain has a lower
    /// `spiffe_sequence` than an earlier one.
    pub fn from_bundles(
        bundles: impl IntoIterator<Item = SpiffeBundle>,
    ) -> Result<Self, BundleError> {
        let set = Self::new();
        for bundle in bundles {
            set.update(bundle)?;
        }
        Ok(set)
    }

    /// Adds or replaces the bundle of `bundle`'s trust domain, atomically: a verification
    /// sees the old bundle or the new one, never a mix.
    ///
    /// # Errors
    ///
    /// [`BundleError::Rollback`] when both bundles carry a `spiffe_sequence` and the new
    /// one is lower: a replayed old bundle could bring back keys the trust domain withdrew.
    /// The current bundle stays.
    pub fn update(&self, bundle: SpiffeBundle) -> Result<(), BundleError> {
        let _writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.shared.current.load();
        if let Some(old) = current.get(bundle.trust_domain())
            && let (Some(current), Some(offered)) = (old.bundle.sequence(), bundle.sequence())
            && offered < current
        {
            return Err(BundleError::Rollback { current, offered });
        }
        let keys = PreparedKeys::new(bundle.jwt_authorities(), jwt_svid_algorithms());
        let mut next = BTreeMap::clone(&current);
        next.insert(
            bundle.trust_domain().clone(),
            Arc::new(PreparedBundle { bundle, keys }),
        );
        self.shared.current.store(Arc::new(next));
        Ok(())
    }

    /// Removes a trust domain's bundle: its JWT-SVIDs are refused from now on. Returns
    /// whether there was one.
    pub fn remove(&self, trust_domain: &TrustDomain) -> bool {
        let _writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.shared.current.load();
        if !current.contains_key(trust_domain) {
            return false;
        }
        let mut next = BTreeMap::clone(&current);
        next.remove(trust_domain);
        self.shared.current.store(Arc::new(next));
        true
    }

    /// The bundle of `trust_domain`, when the set has one.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<SpiffeBundle> {
        self.prepared(trust_domain).map(|p| p.bundle.clone())
    }

    /// The trust domains that have a bundle, in order.
    pub fn trust_domains(&self) -> Vec<TrustDomain> {
        self.shared.current.load().keys().cloned().collect()
    }

    /// Whether no trust domain has a bundle.
    pub fn is_empty(&self) -> bool {
        self.shared.current.load().is_empty()
    }

    /// The prepared bundle of `trust_domain`, for one verification.
    pub(crate) fn prepared(&self, trust_domain: &TrustDomain) -> Option<Arc<PreparedBundle>> {
        self.shared.current.load().get(trust_domain).cloned()
    }
}

impl fmt::Debug for BundleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleSet")
            .field("trust_domains", &self.trust_domains())
            .finish()
    }
}
