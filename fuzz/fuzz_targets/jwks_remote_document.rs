//! A JWKS body as a remote source receives it: parsing never panics, a usable set always
//! becomes a verifier, and verifying tokens against it (by `kid`, without one, with an
//! unknown one) only ever answers with a typed rejection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::token::{Issuer, KeySet, Verifier};

/// ES256, RS256 and EdDSA shaped tokens with and without `kid`; their signatures are junk, so
/// none may verify.
const TOKENS: [&str; 4] = [
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2Z1enouZXhhbXBsZSIsImV4cCI6OTk5OTk5OTk5OX0.AAAA",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjAifQ.eyJpc3MiOiJodHRwczovL2Z1enouZXhhbXBsZSIsImV4cCI6OTk5OTk5OTk5OX0.AAAA",
    "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJodHRwczovL2Z1enouZXhhbXBsZSIsImV4cCI6OTk5OTk5OTk5OX0.AAAA",
    "eyJhbGciOiJQUzI1NiIsImtpZCI6Ii4uLy4uL2V0Yy9wYXNzd2QifQ.eyJpc3MiOiJodHRwczovL2Z1enouZXhhbXBsZSJ9.AAAA",
];

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = KeySet::from_jwks_json(data) else {
        return;
    };
    assert!(keys.len() + keys.skipped().len() <= data.len());
    let Ok(verifier) = Verifier::builder()
        .issuer(Issuer::new("https://fuzz.example", keys).allow_any_audience())
        .build()
    else {
        return;
    };
    for token in TOKENS {
        assert!(verifier.verify(token).is_err());
    }
});
