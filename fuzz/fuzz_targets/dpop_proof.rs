//! DPoP proofs from arbitrary bytes: `DpopVerifier::verify` and `jwk_thumbprint` never panic,
//! and a proof is accepted only when the key its token is bound to signed it.
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use meshguard::token::dpop::{DpopVerifier, jwk_thumbprint};
use meshguard::token::{FixedClock, Issuer, KeySet, Verifier};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// FUZZ-ONLY: the seed of the client's Ed25519 key and the issuer's HMAC secret. The seed
/// corpus (fuzz/corpus/dpop_proof) holds proofs signed with this key for [`token`].
const SEED: &[u8; 32] = b"fuzz-only-dpop-ed25519-seed-0001";
const SECRET: &[u8] = b"fuzzing-secret-not-used-anywhere-else";
const NOW: i64 = 1_800_000_000;
const URI: &str = "https://api.example/orders";

struct Setup {
    dpop: DpopVerifier,
    token: String,
    public: Vec<u8>,
    jkt: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pair = Ed25519KeyPair::from_seed_unchecked(SEED).expect("a 32-byte seed");
        let public = pair.public_key().as_ref().to_vec();
        let x = URL_SAFE_NO_PAD.encode(&public);
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#);
        let jkt = jwk_thumbprint(jwk.as_bytes()).expect("a public key");
        // Written by hand so that the corpus generator can reproduce the token byte for byte.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"at+jwt"}"#);
        let claims = format!(
            r#"{{"iss":"https://idp.fuzz","aud":"api","sub":"fuzz","exp":1800003600,"cnf":{{"jkt":"{jkt}"}}}}"#
        );
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        let mac = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()));
        let keys = KeySet::hmac_secret("h1", SECRET).expect("valid secret");
        let verifier = Verifier::builder()
            .issuer(Issuer::new("https://idp.fuzz", keys).audience("api"))
            .clock(Arc::new(FixedClock(NOW)))
            .build()
            .expect("valid configuration");
        Setup {
            dpop: DpopVerifier::builder(verifier).build().expect("valid configuration"),
            token: format!("{input}.{mac}"),
            public,
            jkt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = jwk_thumbprint(data);
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let setup = setup();
    let Ok(verified) = setup.dpop.verify(&setup.token, proof, "POST", URI) else {
        return;
    };
    assert_eq!(verified.thumbprint(), setup.jkt);
    let (input, signature) = proof.rsplit_once('.').expect("accepted proofs have three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("accepted signatures decode");
    UnparsedPublicKey::new(&ED25519, &setup.public)
        .verify(input.as_bytes(), &signature)
        .expect("accepted a proof the bound key did not sign");
});
