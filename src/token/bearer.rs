//! Taking exactly one bearer token out of an HTTP request (RFC 6750 §2).
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Uri, header::AUTHORIZATION};
//! use meshguard::token::bearer::BearerExtractor;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc.def.ghi"));
//! let uri = Uri::from_static("/orders");
//! assert_eq!(BearerExtractor::new().extract(&headers, &uri), Ok("abc.def.ghi"));
//! ```

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Uri};

use super::error::BearerError;

/// Where tokens are looked for. The `Authorization` header always; a cookie and a query
/// parameter only when configured. A request with a token in more than one place is
/// refused (RFC 6750 §2: clients "MUST NOT use more than one method").
#[derive(Clone, Debug, Default)]
pub struct BearerExtractor {
    cookie: Option<String>,
    query_parameter: Option<String>,
}

impl BearerExtractor {
    /// Looks in the `Authorization` header only.
    pub fn new() -> Self {
        BearerExtractor::default()
    }

    /// Also accepts the token from the cookie `name` (browser front ends).
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Also accepts the token from the query parameter `name` (RFC 6750 §2.3).
    ///
    /// # Security
    ///
    /// URLs end up in access logs, browser history and `Referer` headers; RFC 6750 says this
    /// method "SHOULD NOT be used". Defaults to off.
    pub fn query_parameter(mut self, name: impl Into<String>) -> Self {
        self.query_parameter = Some(name.into());
        self
    }

    /// Finds the request's single bearer token.
    ///
    /// # Errors
    ///
    /// [`BearerError::Missing`] without any, [`BearerError::Malformed`] for a value that is
    /// not one b64token, [`BearerError::Multiple`] for two `Authorization` headers or a token
    /// in two places.
    pub fn extract<'a>(
        &self,
        headers: &'a HeaderMap,
        uri: &'a Uri,
    ) -> Result<&'a str, BearerError> {
        let mut found = from_headers(headers).map(Some).or_else(|e| match e {
            BearerError::Missing => Ok(None),
            other => Err(other),
        })?;
        let mut add = |token: &'a str| {
            if found.replace(token).is_some() {
                Err(BearerError::Multiple)
            } else {
                Ok(())
            }
        };
        if let Some(name) = &self.cookie
            && let Some(token) = from_cookie(headers, name)?
        {
            add(token)?;
        }
        if let Some(name) = &self.query_parameter
            && let Some(token) = from_query(uri, name)?
        {
            add(token)?;
        }
        found.ok_or(BearerError::Missing)
    }
}

/// The token of the request's `Authorization: Bearer <token>` header.
///
/// The scheme is matched without regard to case (RFC 9110 §11.1), followed by exactly one
/// space and one b64token. A header with another scheme (`Basic`) counts as no bearer token.
///
/// # Errors
///
/// As [`BearerExtractor::extract`].
pub fn from_headers(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Multiple);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("bearer") {
            Err(BearerError::Malformed)
        } else {
            Err(BearerError::Missing)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    if is_b64token(credentials) {
        Ok(credentials)
    } else {
        Err(BearerError::Malformed)
    }
}

fn from_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, BearerError> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let Some((key, value)) = pair.trim_start().split_once('=') else {
                continue;
            };
            if key != name {
                continue;
            }
            if !is_b64token(value) {
                return Err(BearerError::Malformed);
            }
            if found.replace(value).is_some() {
                return Err(BearerError::Multiple);
            }
        }
    }
    Ok(found)
}

fn from_query<'a>(uri: &'a Uri, name: &str) -> Result<Option<&'a str>, BearerError> {
    let mut found = None;
    for pair in uri.query().unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            continue;
        }
        // Tokens are sent unencoded: JWS characters need no percent-encoding in a query.
        if !is_b64token(value) {
            return Err(BearerError::Malformed);
        }
        if found.replace(value).is_some() {
            return Err(BearerError::Multiple);
        }
    }
    Ok(found)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
pub(crate) fn is_b64token(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ErrorCode;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn scheme_is_case_insensitive_and_needs_one_space() {
        for ok in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER a.b.c",
            "BeArEr a.b.c",
        ] {
            let map = headers(&[("authorization", ok)]);
            assert_eq!(from_headers(&map), Ok("a.b.c"), "{ok}");
        }
        for bad in [
            "Bearer  a.b.c",
            "Bearer a.b.c ",
            "Bearer a b",
            "Bearer",
            "Bearer ",
            "Bearer a=b",
        ] {
            let map = headers(&[("authorization", bad)]);
            assert_eq!(from_headers(&map), Err(BearerError::Malformed), "{bad}");
        }
    }

    #[test]
    fn other_schemes_are_no_bearer_token() {
        let map = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(from_headers(&map), Err(BearerError::Missing));
        assert_eq!(from_headers(&HeaderMap::new()), Err(BearerError::Missing));
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let map = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(from_headers(&map), Err(BearerError::Multiple));
    }

    #[test]
    fn token_in_two_places_is_refused() {
        let extractor = BearerExtractor::new()
            .cookie("at")
            .query_parameter("access_token");
        let map = headers(&[("authorization", "Bearer a"), ("cookie", "x=1; at=b")]);
        let uri = Uri::from_static("/");
        assert_eq!(extractor.extract(&map, &uri), Err(BearerError::Multiple));
        let map = headers(&[("authorization", "Bearer a")]);
        let uri = Uri::from_static("/?access_token=b");
        assert_eq!(extractor.extract(&map, &uri), Err(BearerError::Multiple));
        let map = headers(&[("cookie", "at=b")]);
        assert_eq!(extractor.extract(&map, &Uri::from_static("/")), Ok("b"));
    }

    #[test]
    fn query_tokens_are_off_by_default() {
        let uri = Uri::from_static("/?access_token=b");
        assert_eq!(
            BearerExtractor::new().extract(&HeaderMap::new(), &uri),
            Err(BearerError::Missing)
        );
    }

    #[test]
    fn missing_has_no_error_code() {
        assert_eq!(BearerError::Missing.error_code(), None);
        assert_eq!(
            BearerError::Multiple.error_code().map(ErrorCode::as_str),
            Some("invalid_request")
        );
    }
}
