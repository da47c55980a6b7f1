//! OpenID Connect discovery documents: never a panic; `jwks_uri` is returned only when the
//! document names exactly the expected issuer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::token::remote::discovered_jwks_uri;

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = discovered_jwks_uri(data, "https://fuzz.example") {
        let document: serde_json::Value = serde_json::from_slice(data).expect("accepted as JSON");
        assert_eq!(document["issuer"], "https://fuzz.example");
        assert_eq!(document["jwks_uri"], uri.as_str());
    }
});
