//! Key loading from arbitrary PEM, JWK and JWKS documents: never panics, and a loaded key set
//! can always be turned into a verifier or refused with a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::token::{Issuer, KeySet, Verifier};

fuzz_target!(|data: &[u8]| {
    for loaded in [
        KeySet::from_document(data),
        KeySet::from_jwks_json(data),
        KeySet::from_jwk_json(data),
        KeySet::from_pem(data),
    ] {
        if let Ok(keys) = loaded {
            let _ = Verifier::builder()
                .issuer(Issuer::new("https://fuzz.example", keys).allow_any_audience())
                .build();
        }
    }
});
