//! [`Svid`]: X509-SVID material that passed every check, ready to serve and to verify with.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore};

use super::super::identity::{MAX_CHAIN_LEN, PeerIdentity};
use super::super::spiffe::{SpiffeId, TrustDomain};
use super::super::tls::{MAX_BUNDLE_ROOTS, check_root_trust_domain};
use super::error::SvidUpdateError;
use super::update::X509Update;

/// Most trust domains (the service's own and federated ones) one update may carry.
pub const MAX_TRUST_DOMAINS: usize = 256;

/// The service's current X509-SVID with the trust bundles that go with it: what a rotating
/// rustls configuration presents and verifies peers against.
///
/// Only [`SvidStore::update`](super::SvidStore::update) makes one, after checking that the
/// leaf is a valid X509-SVID (meshguard's rules, stricter than go-spiffe's), the key belongs
/// to it, it is within its validity period, a bundle exists for its own trust domain and it
/// chains to that bundle.
pub struct Svid {
    certified_key: Arc<CertifiedKey>,
    identity: PeerIdentity,
    spiffe_id: SpiffeId,
    not_after: i64,
    bundles: BTreeMap<TrustDomain, TrustBundle>,
    generation: u64,
}

/// One trust domain's roots, with the client-certificate verifier built from them once.
struct TrustBundle {
    roots: Arc<RootCertStore>,
    client_verifier: Arc<dyn ClientCertVerifier>,
}

impl Svid {
    /// The SVID's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The identity read from the SVID's chain, as a peer would read it.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    /// When the SVID stops being usable, in seconds since the Unix epoch: the earliest
    /// expiry of the leaf and the intermediates it was delivered with. A leaf that outlives
    /// its intermediate no longer chains once the intermediate has expired, so it is not
    /// served past that point.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Which update this is: 1 for the first material taken by a store, counting up.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The trust domains whose peers can be verified with this material.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.bundles.keys()
    }

    /// Whether the SVID is still valid at `now` (seconds since the Unix epoch): before
    /// [`not_after`](Self::not_after).
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.not_after
    }

    /// The chain and signing key to present.
    pub(crate) fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified_key
    }

    /// The roots of `trust_domain`, when a bundle was given for it.
    pub(crate) fn roots(&self, trust_domain: &TrustDomain) -> Option<&Arc<RootCertStore>> {
        self.bundles.get(trust_domain).map(|b| &b.roots)
    }

    /// The client-certificate verifier for peers of `trust_domain`.
    pub(crate) fn client_verifier(
        &self,
        trust_domain: &TrustDomain,
    ) -> Option<&Arc<dyn ClientCertVerifier>> {
        self.bundles.get(trust_domain).map(|b| &b.client_verifier)
    }

    /// Checks `update` at `now` (seconds since the Unix epoch) and builds the material.
    pub(super) fn validate(
        update: X509Update,
        now: i64,
        generation: u64,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, SvidUpdateError> {
        let X509Update {
            chain,
            key,
            bundles: given,
        } = update;
        if chain.len() > MAX_CHAIN_LEN {
            return Err(SvidUpdateError::Chain(
                super::super::error::PeerError::ChainTooLong { max: MAX_CHAIN_LEN },
            ));
        }
        let identity = PeerIdentity::from_svid_chain(&chain).map_err(SvidUpdateError::Chain)?;
        let spiffe_id = identity.spiffe_id().cloned().ok_or(SvidUpdateError::Chain(
            super::super::error::PeerError::NoUriSan,
        ))?;
        let not_before = identity.not_before().map_or(i64::MAX, unix_seconds);
        let leaf_not_after = identity.not_after().map_or(i64::MIN, unix_seconds);
        let not_after = chain
            .get(1..)
            .unwrap_or_default()
            .iter()
            .try_fold(leaf_not_after, |earliest, der| {
                certificate_not_after(der).map(|t| earliest.min(t))
            })?;
        if now < not_before {
            return Err(SvidUpdateError::NotYetValid);
        }
        if now >= not_after {
            return Err(SvidUpdateError::Expired);
        }

        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| SvidUpdateError::PrivateKey(e.to_string()))?;
        let certified_key = CertifiedKey::new(chain, signing_key);
        // rustls's own `from_der` lets an unknown consistency pass; a key whose public half
        // cannot be compared is refused here, so a mismatched pair is never served.
        match certified_key.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(SvidUpdateError::KeyMismatch);
            }
            Err(e) => return Err(SvidUpdateError::PrivateKey(e.to_string())),
        }

        if given.len() > MAX_TRUST_DOMAINS {
            return Err(SvidUpdateError::TooManyTrustDomains {
                max: MAX_TRUST_DOMAINS,
            });
        }
        let mut bundles = BTreeMap::new();
        for (trust_domain, roots) in given {
            if bundles.contains_key(&trust_domain) {
                return Err(SvidUpdateError::DuplicateBundle(trust_domain));
            }
            let bundle = TrustBundle::new(&trust_domain, roots, provider)?;
            bundles.insert(trust_domain, bundle);
        }
        let own = bundles
            .get(spiffe_id.trust_domain())
            .ok_or_else(|| SvidUpdateError::MissingBundle(spiffe_id.trust_domain().clone()))?;
        own.check_chains(&certified_key.cert, now, provider)?;

        Ok(Self {
            certified_key: Arc::new(certified_key),
            identity,
            spiffe_id,
            not_after,
            bundles,
            generation,
        })
    }
}

impl fmt::Debug for Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Svid")
            .field("spiffe_id", &self.spiffe_id.as_str())
            .field("not_after", &self.not_after)
            .field(
                "trust_domains",
                &self
                    .bundles
                    .keys()
                    .map(TrustDomain::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl TrustBundle {
    fn new(
        trust_domain: &TrustDomain,
        roots: Vec<CertificateDer<'static>>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, SvidUpdateError> {
        let refuse = |detail: String| SvidUpdateError::Bundle {
            trust_domain: trust_domain.clone(),
            detail,
        };
        if roots.is_empty() {
            return Err(refuse("no certificate".to_owned()));
        }
        if roots.len() > MAX_BUNDLE_ROOTS {
            return Err(refuse(format!("more than {MAX_BUNDLE_ROOTS} roots")));
        }
        let mut store = RootCertStore::empty();
        for root in roots {
            check_root_trust_domain(trust_domain, &root).map_err(refuse)?;
            store.add(root).map_err(|e| refuse(e.to_string()))?;
        }
        let roots = Arc::new(store);
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
                .build()
                .map_err(|e| refuse(e.to_string()))?;
        Ok(Self {
            roots,
            client_verifier,
        })
    }

    /// The service's own chain must verify against its own bundle, as a client or as a
    /// server certificate (an SVID may carry either extended key usage or both).
    fn check_chains(
        &self,
        chain: &[CertificateDer<'static>],
        now: i64,
        provider: &CryptoProvider,
    ) -> Result<(), SvidUpdateError> {
        let (leaf, intermediates) = chain.split_first().ok_or(SvidUpdateError::Chain(
            super::super::error::PeerError::NoCertificate,
        ))?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        let as_client = self
            .client_verifier
            .verify_client_cert(leaf, intermediates, at)
            .map(|_| ());
        let as_server = ParsedCertificate::try_from(leaf).and_then(|parsed| {
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &self.roots,
                intermediates,
                at,
                provider.signature_verification_algorithms.all,
            )
        });
        match (as_client, as_server) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(e), Err(_)) => Err(SvidUpdateError::Untrusted(e.to_string())),
        }
    }
}

/// When an intermediate of the delivered chain expires, in seconds since the Unix epoch.
fn certificate_not_after(der: &CertificateDer<'_>) -> Result<i64, SvidUpdateError> {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok(([], cert)) => Ok(cert.validity().not_after.timestamp()),
        _ => Err(SvidUpdateError::Chain(
            super::super::error::PeerError::MalformedCertificate,
        )),
    }
}

fn unix_seconds(time: std::time::SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
