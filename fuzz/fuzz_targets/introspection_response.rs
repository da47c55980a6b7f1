//! RFC 7662 introspection responses: never a panic; a token is accepted only from one JSON
//! object whose `active` is the literal `true`, and its claims are the object's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::token::introspection::{IntrospectionError, read_response};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match read_response(data) {
        Ok(token) => {
            let response: Value = serde_json::from_slice(data).expect("accepted as JSON");
            assert_eq!(response["active"], Value::Bool(true));
            match &response["exp"] {
                Value::Null => assert_eq!(token.expires_at(), None),
                exp => {
                    if let Some(exp) = exp.as_i64() {
                        assert_eq!(token.expires_at(), Some(exp));
                    }
                }
            }
            assert_eq!(token.issuer(), response["iss"].as_str());
            assert_eq!(token.subject(), response["sub"].as_str());
            assert!(token.header().algorithm().is_none());
            assert_eq!(token.claims(), response.as_object().expect("an object"));
        }
        Err(IntrospectionError::Inactive) => {
            let response: Value = serde_json::from_slice(data).expect("accepted as JSON");
            assert_eq!(response["active"], Value::Bool(false));
        }
        Err(_) => {}
    }
});
