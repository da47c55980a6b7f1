//! Reading a token endpoint's answer: the access token response (RFC 6749 §5.1, RFC 8693
//! §2.2.1) and the error response (RFC 6749 §5.2), strictly and within bounds.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::OutgoingError;
use crate::token::DEFAULT_MAX_TOKEN_BYTES;
use crate::token::bearer::is_b64token;
use crate::token::json::check_strict;

/// The largest token response read: 64 KiB. A token is at most
/// [`DEFAULT_MAX_TOKEN_BYTES`]; the rest of a response is a few short members.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest lifetime taken from `expires_in`: one day. A token claimed to live longer is
/// renewed daily all the same.
const MAX_LIFETIME: u64 = 24 * 60 * 60;

/// The longest RFC 6749 error code kept from an error response.
const MAX_ERROR_CODE: usize = 64;

/// A token the endpoint issued, read from a 200 answer by [`read_token_response`].
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct IssuedToken {
    pub(crate) token: Zeroizing<String>,
    expires_in: u64,
    issued_token_type: Option<Box<str>>,
}

impl IssuedToken {
    /// How long the token lives, in seconds from its issue (`expires_in`, at most a day).
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// The `issued_token_type` of a token exchange answer (RFC 8693 §2.2.1), if given.
    pub fn issued_token_type(&self) -> Option<&str> {
        self.issued_token_type.as_deref()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

/// The members read; any JSON type, so that a wrong one is reported as such.
#[derive(Deserialize)]
struct Members {
    access_token: Option<Value>,
    token_type: Option<Value>,
    expires_in: Option<Value>,
    issued_token_type: Option<Value>,
}

/// Reads the body of a token endpoint's 200 answer as the outgoing credentials do: for a
/// caller that obtained the response itself, and for fuzzing.
///
/// The body must be one strict JSON object (no duplicate members at any level, bounded
/// nesting, at most [`MAX_TOKEN_RESPONSE_BYTES`]) holding `access_token` (a string usable
/// as a bearer credential, at most [`DEFAULT_MAX_TOKEN_BYTES`]), `token_type` `Bearer` (any
/// case) and `expires_in`, a positive integer. Other members are ignored.
///
/// # Example
///
/// ```
/// use meshguard::outgoing::read_token_response;
///
/// let body = br#"{"access_token":"abc.def.ghi","token_type":"Bearer","expires_in":300}"#;
/// assert_eq!(read_token_response(body)?.expires_in(), 300);
/// let dpop = br#"{"access_token":"abc","token_type":"DPoP","expires_in":300}"#;
/// assert_eq!(read_token_response(dpop).unwrap_err().reason(), "dpop_token_issued");
/// # Ok::<(), meshguard::outgoing::OutgoingError>(())
/// ```
///
/// # Errors
///
/// [`OutgoingError::InvalidResponse`] for anything else, [`OutgoingError::DpopIssued`] for
/// a `DPoP` token type.
pub fn read_token_response(body: &[u8]) -> Result<IssuedToken, OutgoingError> {
    let invalid = OutgoingError::InvalidResponse;
    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(invalid("larger than the bound"));
    }
    check_strict(body).map_err(|_| invalid("not one strict JSON object"))?;
    let members: Members =
        serde_json::from_slice(body).map_err(|_| invalid("not one strict JSON object"))?;
    match members.token_type {
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("dpop") => {
            return Err(OutgoingError::DpopIssued);
        }
        Some(_) => return Err(invalid("`token_type` is not `Bearer`")),
        None => return Err(invalid("no `token_type`")),
    }
    let token = match members.access_token {
        Some(Value::String(token)) => Zeroizing::new(token),
        Some(_) => return Err(invalid("`access_token` is not a string")),
        None => return Err(invalid("no `access_token`")),
    };
    if token.len() > DEFAULT_MAX_TOKEN_BYTES {
        return Err(invalid("`access_token` is too long"));
    }
    // It travels as `Authorization: Bearer <token>`: RFC 6750's b64token, nothing else.
    if !is_b64token(&token) {
        return Err(invalid("`access_token` is not a bearer credential"));
    }
    let expires_in = match members.expires_in {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) | None => return Err(invalid("`expires_in` is not a positive integer")),
            Some(seconds) => seconds.min(MAX_LIFETIME),
        },
        Some(_) => return Err(invalid("`expires_in` is not a positive integer")),
        None => return Err(invalid("no `expires_in`")),
    };
    let issued_token_type = match members.issued_token_type {
        None => None,
        Some(Value::String(kind)) if kind.len() <= MAX_ERROR_CODE * 2 => Some(kind.into()),
        Some(_) => return Err(invalid("`issued_token_type` is not a short string")),
    };
    Ok(IssuedToken {
        token,
        expires_in,
        issued_token_type,
    })
}

/// The `error` code of an RFC 6749 §5.2 error response, when the body is one: a strict JSON
/// object whose `error` is a short string of the characters §5.2 allows.
pub(crate) fn error_code(body: &[u8]) -> Option<Box<str>> {
    #[derive(Deserialize)]
    struct Error {
        error: Option<Value>,
    }
    if body.len() > MAX_TOKEN_RESPONSE_BYTES || check_strict(body).is_err() {
        return None;
    }
    let Error {
        error: Some(Value::String(code)),
    } = serde_json::from_slice(body).ok()?
    else {
        return None;
    };
    // %x20-21 / %x23-5B / %x5D-7E, less the space so that the code reads as one word.
    let allowed = |c: char| matches!(c, '!' | '#'..='[' | ']'..='~');
    (!code.is_empty() && code.len() <= MAX_ERROR_CODE && code.chars().all(allowed))
        .then(|| code.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> &'static str {
        match read_token_response(body.as_bytes()) {
            Ok(_) => "ok",
            Err(error) => error.reason(),
        }
    }

    #[test]
    fn a_bearer_response_is_read() {
        let body = br#"{"access_token":"a-b.c_d~+/=","token_type":"bearer","expires_in":60,
            "scope":"read","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#;
        let issued = read_token_response(body).unwrap();
        assert_eq!(issued.token.as_str(), "a-b.c_d~+/=");
        assert_eq!(issued.expires_in(), 60);
        assert_eq!(
            issued.issued_token_type(),
            Some("urn:ietf:params:oauth:token-type:access_token")
        );
        let shown = format!("{issued:?}");
        assert!(!shown.contains("a-b.c"), "{shown}");
    }

    #[test]
    fn lifetimes_are_capped_at_a_day() {
        let body = r#"{"access_token":"t","token_type":"Bearer","expires_in":99999999999}"#;
        assert_eq!(
            read_token_response(body.as_bytes()).unwrap().expires_in(),
            MAX_LIFETIME
        );
    }

    #[test]
    fn responses_missing_a_member_or_of_wrong_types_are_refused() {
        for body in [
            r#"{"token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"t","expires_in":60}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":7,"token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"","token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"a b","token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"a\r\nX: y","token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"t","token_type":"mac","expires_in":60}"#,
            r#"{"access_token":"t","token_type":["Bearer"],"expires_in":60}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":"60"}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":0}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":-5}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":1.5}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":60,"issued_token_type":1}"#,
        ] {
            assert_eq!(reason(body), "invalid_token_response", "{body}");
        }
    }

    #[test]
    fn bodies_that_are_not_one_strict_object_are_refused() {
        let deep = format!(
            r#"{{"access_token":"t","token_type":"Bearer","expires_in":60,"x":{}1{}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        let long = format!(
            r#"{{"access_token":"{}","token_type":"Bearer","expires_in":60}}"#,
            "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1)
        );
        let huge = format!(
            r#"{{"access_token":"t","token_type":"Bearer","expires_in":60,"x":"{}"}}"#,
            "a".repeat(MAX_TOKEN_RESPONSE_BYTES)
        );
        for body in [
            "",
            "null",
            "[]",
            r#"{"access_token":"t""#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":60} {}"#,
            r#"{"access_token":"t","access_token":"u","token_type":"Bearer","expires_in":60}"#,
            deep.as_str(),
            long.as_str(),
            huge.as_str(),
        ] {
            assert_eq!(reason(body), "invalid_token_response", "{body:.80}");
        }
        let not_utf8 = b"{\"access_token\":\"\xff\",\"token_type\":\"Bearer\",\"expires_in\":6}";
        assert!(read_token_response(not_utf8).is_err());
    }

    #[test]
    fn a_dpop_token_is_refused() {
        assert_eq!(
            reason(r#"{"access_token":"t","token_type":"DPoP","expires_in":60}"#),
            "dpop_token_issued"
        );
    }

    #[test]
    fn error_codes_are_read_only_when_well_formed() {
        assert_eq!(
            error_code(br#"{"error":"invalid_client","error_description":"no"}"#).as_deref(),
            Some("invalid_client")
        );
        for body in [
            &br#"{"error":"bad code"}"#[..],
            br#"{"error":"a\"b"}"#,
            br#"{"error":""}"#,
            br#"{"error":7}"#,
            br#"{"error":"x","error":"y"}"#,
            b"<html>",
            br#"{"error":"\u001b[31m"}"#,
        ] {
            assert_eq!(error_code(body), None, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            error_code(format!(r#"{{"error":"{}"}}"#, "e".repeat(65)).as_bytes()),
            None
        );
    }
}
