//! Token endpoint responses (RFC 6749 §5.1, RFC 8693 §2.2.1): never a panic; a token is
//! accepted only from one JSON object with a bearer `token_type`, a positive integer
//! `expires_in` (capped at a day) and an `access_token` that makes a valid header value.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use meshguard::outgoing::read_token_response;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(issued) = read_token_response(data) else {
        return;
    };
    let response: Value = serde_json::from_slice(data).expect("accepted as JSON");
    let kind = response["token_type"].as_str().expect("a string token_type");
    assert!(kind.eq_ignore_ascii_case("bearer"));
    let expires_in = response["expires_in"].as_u64().expect("an integer expires_in");
    assert!(expires_in > 0);
    assert_eq!(issued.expires_in(), expires_in.min(24 * 60 * 60));
    let token = response["access_token"].as_str().expect("a string access_token");
    assert!(!token.is_empty() && token.len() <= 16 * 1024);
    assert!(HeaderValue::from_str(&format!("Bearer {token}")).is_ok());
    assert_eq!(
        issued.issued_token_type(),
        response["issued_token_type"].as_str()
    );
    // `Debug` shows everything but the token.
    assert_eq!(
        format!("{issued:?}"),
        format!(
            "IssuedToken {{ token: \"<redacted>\", expires_in: {}, issued_token_type: {:?} }}",
            issued.expires_in(),
            issued.issued_token_type()
        )
    );
});
