//! SPIFFE bundle documents and JWT-SVIDs verified against them. The input is a bundle
//! document, optionally followed by a NUL byte and a token. Never panics; a bundle that
//! loads holds only `jwt-svid` keys with a `kid`; a token that verifies names a workload of
//! the bundle's trust domain and carries the configured audience.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use meshguard::peer::TrustDomain;
use meshguard::token::FixedClock;
use meshguard::token::jwt_svid::{BundleSet, JwtSvidVerifier, SpiffeBundle};

/// The seeds' tokens expire in 2100; they verify at this time (2027).
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let (document, token) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let Ok(trust_domain) = TrustDomain::new("fuzz.example") else {
        return;
    };
    let Ok(bundle) = SpiffeBundle::from_json(trust_domain.clone(), document) else {
        return;
    };
    assert!(bundle.jwt_authorities().keys().iter().all(|k| k.kid().is_some()));
    let Ok(bundles) = BundleSet::from_bundles([bundle]) else {
        return;
    };
    let Ok(verifier) = JwtSvidVerifier::builder(bundles)
        .audience("spiffe://fuzz.example/api")
        .clock(Arc::new(FixedClock(NOW)))
        .build()
    else {
        return;
    };
    let Some(Ok(token)) = token.map(std::str::from_utf8) else {
        return;
    };
    if let Ok(svid) = verifier.verify(token) {
        assert_eq!(svid.spiffe_id().trust_domain(), &trust_domain);
        assert!(!svid.spiffe_id().path().is_empty());
        assert!(svid.audiences().iter().any(|a| a == "spiffe://fuzz.example/api"));
    }
});
