//! SVID deliveries as a source hands them to an `SvidStore`: PEM chain, PEM key, the own
//! trust domain's PEM bundle and an optional federated one, separated by NUL bytes. Never
//! panics; a delivery taken is a valid X509-SVID of the trust domain, unexpired at the
//! store's clock, with its own bundle, and a refused one leaves the store unchanged.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use meshguard::peer::{SvidHealth, SvidStore, TrustDomain, X509Update};
use meshguard::token::FixedClock;

/// The seeds' certificates are valid from 2025 to 2100; the store judges them in 2027.
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let (Some(chain), Some(key), Some(bundle)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let federated = parts.next();
    let (Ok(own), Ok(partner)) = (
        TrustDomain::new("fuzz.example"),
        TrustDomain::new("partner.example"),
    ) else {
        return;
    };
    let Ok(update) = X509Update::from_pem(chain, key) else {
        return;
    };
    assert!(!format!("{update:?}").contains("PRIVATE"));
    let Ok(mut update) = update.with_bundle_pem(own.clone(), bundle) else {
        return;
    };
    if let Some(federated) = federated {
        let Ok(with_partner) = update.with_bundle_pem(partner, federated) else {
            return;
        };
        update = with_partner;
    }
    let store = SvidStore::with_clock(Arc::new(FixedClock(NOW)));
    match store.update(update) {
        Ok(svid) => {
            assert_eq!(svid.spiffe_id().trust_domain(), &own);
            assert!(!svid.spiffe_id().path().is_empty());
            assert!(svid.is_valid_at(NOW));
            assert!(svid.trust_domains().any(|td| td == &own));
            assert_eq!(store.status().health(), SvidHealth::Current);
        }
        Err(error) => {
            assert!(!error.reason().is_empty());
            assert!(store.current().is_none());
            assert_eq!(store.status().health(), SvidHealth::Empty);
        }
    }
});
