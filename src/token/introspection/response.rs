//! Reading an introspection response (RFC 7662 §2.2) into a [`VerifiedToken`], strictly.
//!
//! The body goes through the crate's own claims reader (duplicate names refused at every
//! level, nesting bounded, UTF-8 only), so the endpoint's answer and the JWT path read
//! claims the same way; `active` must then be the JSON literal `true`.

use serde::Deserialize;
use serde_json::Value;

use super::error::IntrospectionError;
use crate::token::TokenError;
use crate::token::VerifiedToken;
use crate::token::claims::Pending;
use crate::token::json::{RawClaims, parse_claims_into};

/// What the endpoint said about a token, before the configured checks.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// `"active": true`, with the claims that came with it.
    Active(VerifiedToken),
    /// `"active": false`.
    Inactive,
}

/// The members read besides the claims; any JSON type, so that a wrong one is reported
/// as such instead of failing the whole parse.
#[derive(Deserialize)]
struct Meta {
    active: Option<Value>,
    token_type: Option<Value>,
    token_use: Option<Value>,
}

/// Reads a 200 response body.
///
/// A body that is not one strict JSON object, or whose `active` is missing or anything but
/// a boolean (`"true"` included), is no answer: [`IntrospectionError::Unavailable`]. An
/// active token bound by a confirmation method meshguard does not check (`cnf.jkt`), typed
/// `DPoP`, or that is a refresh token (Hydra's `token_use`) is refused: presented as a
/// bearer token, it is not one its issuer meant to be used so.
pub(crate) fn parse(body: Vec<u8>) -> Result<Answer, IntrospectionError> {
    let garbage = |why: &str| IntrospectionError::Unavailable(why.into());
    let mut claims = RawClaims::default();
    if parse_claims_into(&body, &mut claims).is_err() {
        return Err(garbage("the response is not a strict JSON object"));
    }
    // The claims reader already refused duplicates and deep nesting: this second look
    // reads the same members it saw.
    let meta: Meta = serde_json::from_slice(&body)
        .map_err(|_| garbage("the response is not a strict JSON object"))?;
    match meta.active {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Answer::Inactive),
        _ => return Err(garbage("`active` is not a boolean")),
    }
    if let Some(wrong) = claims.wrong_type {
        return Err(TokenError::InvalidClaim(wrong.0).into());
    }
    match meta.token_type {
        None => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("dpop") => {
            return Err(TokenError::UnsupportedConfirmation.into());
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(TokenError::InvalidClaim("token_type").into()),
    }
    match meta.token_use {
        None => {}
        Some(Value::String(kind)) if kind == "access_token" => {}
        Some(_) => return Err(TokenError::InvalidType.into()),
    }
    if claims.unverified_confirmation {
        return Err(TokenError::UnsupportedConfirmation.into());
    }
    let pending = Pending::introspected(&mut claims, &body);
    drop(claims);
    pending
        .with_payload(body)
        .map(Answer::Active)
        .ok_or_else(|| garbage("the response is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> &'static str {
        match parse(body.as_bytes().to_vec()) {
            Ok(Answer::Active(_)) => "active",
            Ok(Answer::Inactive) => "inactive",
            Err(error) => error.reason(),
        }
    }

    #[test]
    fn active_response_becomes_a_token_without_header() {
        let body = br#"{"active":true,"iss":"https://idp.test","sub":"u1","aud":["a","b"],
            "client_id":"svc","scope":"read write","exp":4102444800,"iat":1,"nbf":1,
            "token_type":"Bearer","cnf":{"x5t#S256":"tA"},"username":"alice"}"#;
        let Ok(Answer::Active(token)) = parse(body.to_vec()) else {
            panic!("not active");
        };
        assert_eq!(token.issuer(), Some("https://idp.test"));
        assert_eq!(token.subject(), Some("u1"));
        assert_eq!(token.audiences(), ["a", "b"]);
        assert_eq!(token.client_id(), Some("svc"));
        assert!(token.has_scope("write"));
        assert_eq!(token.expires_at(), Some(4_102_444_800));
        assert_eq!(token.certificate_thumbprint(), Some("tA"));
        assert_eq!(token.header().algorithm(), None);
        assert_eq!(token.claim("username"), Some(&Value::from("alice")));
    }

    #[test]
    fn inactive_is_only_the_boolean_false() {
        assert_eq!(reason(r#"{"active":false}"#), "inactive");
        assert_eq!(reason(r#"{"active":false,"exp":"x"}"#), "inactive");
    }

    #[test]
    fn active_must_be_the_literal_true() {
        for body in [
            r#"{"active":"true"}"#,
            r#"{"active":1}"#,
            r#"{"active":null}"#,
            r#"{"active":[true]}"#,
            r#"{"exp":4102444800}"#,
            "{}",
        ] {
            assert_eq!(reason(body), "introspection_unavailable", "{body}");
        }
    }

    #[test]
    fn bodies_that_are_not_one_strict_object_are_no_answer() {
        for body in [
            "",
            "true",
            "[]",
            r#"{"active":true"#,
            r#"{"active":true} {}"#,
            r#"{"active":false,"active":true}"#,
            r#"{"active":true,"x":{"y":1,"y":2}}"#,
            &format!(
                r#"{{"active":true,"x":{}1{}}}"#,
                "[".repeat(40),
                "]".repeat(40)
            ),
        ] {
            assert_eq!(reason(body), "introspection_unavailable", "{body}");
        }
        assert!(matches!(
            parse(b"{\"active\":true,\"sub\":\"\xff\"}".to_vec()),
            Err(IntrospectionError::Unavailable(_))
        ));
    }

    #[test]
    fn bound_dpop_and_refresh_tokens_are_refused() {
        assert_eq!(
            reason(r#"{"active":true,"cnf":{"jkt":"abc"}}"#),
            "unsupported_confirmation"
        );
        assert_eq!(
            reason(r#"{"active":true,"token_type":"DPoP"}"#),
            "unsupported_confirmation"
        );
        assert_eq!(reason(r#"{"active":true,"token_type":7}"#), "invalid_claim");
        assert_eq!(
            reason(r#"{"active":true,"token_use":"refresh_token"}"#),
            "invalid_type"
        );
        assert_eq!(
            reason(r#"{"active":true,"token_use":"access_token"}"#),
            "active"
        );
    }

    #[test]
    fn registered_claims_of_the_wrong_type_are_refused() {
        assert_eq!(
            reason(r#"{"active":true,"exp":"4102444800"}"#),
            "invalid_claim"
        );
        assert_eq!(reason(r#"{"active":true,"aud":7}"#), "invalid_claim");
    }
}
