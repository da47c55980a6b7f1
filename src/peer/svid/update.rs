//! [`X509Update`]: SVID material as a source delivers it, before any check.

use std::fmt;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::super::identity::{MAX_PEM_LEN, certificates_from_pem};
use super::super::spiffe::TrustDomain;
use super::super::tls::roots_from_pem;
use super::error::SvidUpdateError;

/// One delivery of X509-SVID material: the service's certificate chain (leaf first), its
/// private key, and the trust bundles (roots) of its own and of federated trust domains.
///
/// Nothing is checked here; [`SvidStore::update`](super::SvidStore::update) checks it all
/// before it replaces what is served. `Debug` never shows the key.
pub struct X509Update {
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
    pub(super) bundles: Vec<(TrustDomain, Vec<CertificateDer<'static>>)>,
}

impl X509Update {
    /// Material from a DER chain (leaf first) and a DER private key (PKCS#8, SEC1 or
    /// PKCS#1), with no bundle yet.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self {
            chain,
            key,
            bundles: Vec::new(),
        }
    }

    /// Material from PEM: the chain's `CERTIFICATE` blocks (leaf first) and the first
    /// private key block of `key_pem`. Both may be the same text (a credential bundle that
    /// holds the key and the chain, as SPIFFE's filesystem delivery writes it).
    ///
    /// # Errors
    ///
    /// [`SvidUpdateError::Chain`] when the chain PEM is malformed, larger than
    /// [`MAX_PEM_LEN`] or holds no certificate; [`SvidUpdateError::PrivateKey`] when the key
    /// PEM is larger than that or holds no private key.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, SvidUpdateError> {
        let chain = certificates_from_pem(chain_pem).map_err(SvidUpdateError::Chain)?;
        if key_pem.len() > MAX_PEM_LEN {
            return Err(SvidUpdateError::PrivateKey(format!(
                "the key PEM is larger than {MAX_PEM_LEN} bytes"
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| SvidUpdateError::PrivateKey("no private key in the PEM".to_owned()))?;
        Ok(Self::new(
            chain.into_iter().map(CertificateDer::from).collect(),
            key,
        ))
    }

    /// Adds the roots of `trust_domain` (the service's own or a federated one).
    pub fn with_bundle(
        mut self,
        trust_domain: TrustDomain,
        roots: Vec<CertificateDer<'static>>,
    ) -> Self {
        self.bundles.push((trust_domain, roots));
        self
    }

    /// Adds the roots of `trust_domain` from PEM `CERTIFICATE` blocks.
    ///
    /// # Errors
    ///
    /// [`SvidUpdateError::Bundle`] when the PEM is malformed, larger than [`MAX_PEM_LEN`],
    /// holds no certificate or more than
    /// [`MAX_BUNDLE_ROOTS`](crate::peer::MAX_BUNDLE_ROOTS).
    pub fn with_bundle_pem(
        self,
        trust_domain: TrustDomain,
        pem: &[u8],
    ) -> Result<Self, SvidUpdateError> {
        match roots_from_pem(pem) {
            Ok(roots) => Ok(self.with_bundle(trust_domain, roots)),
            Err(e) => Err(SvidUpdateError::Bundle {
                trust_domain,
                detail: e.to_string(),
            }),
        }
    }

    /// The trust domains a bundle was given for, in the order they were added.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.bundles.iter().map(|(td, _)| td)
    }
}

impl fmt::Debug for X509Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Update")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .field(
                "bundles",
                &self
                    .bundles
                    .iter()
                    .map(|(td, roots)| (td.as_str(), roots.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
