//! `Verifier::verify` on arbitrary bytes: it never panics, and it accepts an HS256 token only
//! when its MAC is the one the configured secret produces.
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use meshguard::token::{Algorithm, FixedClock, Issuer, KeySet, Verifier};

const SECRET: &[u8] = b"fuzzing-secret-not-used-anywhere-else";

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut keys = KeySet::hmac_secret("h1", SECRET).expect("valid secret");
        let ed = br#"{"kty":"OKP","crv":"Ed25519","kid":"ed1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        keys.extend(KeySet::from_jwk_json(ed).expect("valid jwk"));
        Verifier::builder()
            .issuer(Issuer::any(keys).allow_any_audience().allow_missing_exp())
            .clock(Arc::new(FixedClock(1_800_000_000)))
            .build()
            .expect("valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(verified) = verifier().verify(token) else {
        return;
    };
    let _ = verified.claims();
    if verified.header().algorithm() == Some(Algorithm::HS256) {
        let (input, signature) = token.rsplit_once('.').expect("verified tokens have three parts");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        let expected = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()));
        assert_eq!(signature, expected, "accepted a token with a wrong MAC");
    }
});
