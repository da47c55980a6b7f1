//! One Workload API delivery (a parsed `X509SVIDResponse`) as an [`X509Update`].
//!
//! The spiffe crate has parsed the response and applied its X509-SVID rules (leaf not a CA,
//! `digitalSignature` set, signing certificates are CAs, the ID has a path); what is handed
//! on here is bytes only, so that [`SvidStore::update`](super::super::SvidStore::update)
//! applies meshguard's own checks to exactly what the agent sent.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spiffe::{X509Context, X509Svid};

use super::super::super::spiffe::TrustDomain;
use super::super::error::SvidUpdateError;
use super::super::update::X509Update;

/// Most SVIDs one delivery may list (the spiffe crate's `X509Source` default, `max_svids`).
/// The number of trust bundles is bounded by [`MAX_TRUST_DOMAINS`] and each bundle's roots
/// by [`MAX_BUNDLE_ROOTS`](crate::peer::MAX_BUNDLE_ROOTS), both checked by the store; the
/// whole response by the gRPC message limit (4 MiB) before it is parsed at all.
///
/// [`MAX_TRUST_DOMAINS`]: super::super::MAX_TRUST_DOMAINS
pub const MAX_WORKLOAD_SVIDS: usize = 100;

/// Picks the SVID to serve from `context` (the first, which the Workload API makes the
/// default, or the one whose hint is `hint`) and turns it and every trust bundle of the
/// delivery into an update.
pub(super) fn to_update(
    context: &X509Context,
    hint: Option<&str>,
) -> Result<X509Update, SvidUpdateError> {
    let svids = context.svids();
    if svids.len() > MAX_WORKLOAD_SVIDS {
        return Err(SvidUpdateError::Source(format!(
            "the Workload API sent more than {MAX_WORKLOAD_SVIDS} SVIDs"
        )));
    }
    let svid = pick(svids, hint)?;
    let chain = svid
        .cert_chain()
        .iter()
        .map(|cert| CertificateDer::from(cert.as_bytes().to_vec()))
        .collect();
    // The Workload API sends the key as PKCS#8 DER (X509SVID.x509_svid_key).
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        svid.private_key().as_bytes().to_vec(),
    ));
    let mut update = X509Update::new(chain, key);
    for (trust_domain, bundle) in context.bundle_set().iter() {
        // An empty federated bundle is how the Workload API withdraws trust in a domain
        // while keeping its name: leaving the domain out trusts nothing of it either.
        if bundle.authorities().is_empty() {
            continue;
        }
        // Re-read under meshguard's trust-domain rules; the wire form of a federated
        // bundle's key is the domain's SPIFFE ID (`spiffe://example.org`).
        let name = trust_domain.id_string();
        let trust_domain = TrustDomain::new(&name).map_err(|e| {
            SvidUpdateError::Source(format!(
                "the Workload API sent a bundle for `{name}`, which is not a trust domain: {e}"
            ))
        })?;
        let roots = bundle
            .authorities()
            .iter()
            .map(|root| CertificateDer::from(root.as_bytes().to_vec()))
            .collect();
        update = update.with_bundle(trust_domain, roots);
    }
    Ok(update)
}

fn pick<'a>(
    svids: &'a [std::sync::Arc<X509Svid>],
    hint: Option<&str>,
) -> Result<&'a X509Svid, SvidUpdateError> {
    let found = match hint {
        None => svids.first(),
        Some(hint) => svids.iter().find(|svid| svid.hint() == Some(hint)),
    };
    match (found, hint) {
        (Some(svid), _) => Ok(svid),
        (None, None) => Err(SvidUpdateError::Source(
            "the Workload API sent no SVID".to_owned(),
        )),
        (None, Some(hint)) => Err(SvidUpdateError::Source(format!(
            "the Workload API sent no SVID with the hint `{hint}`"
        ))),
    }
}
