//! Bearer extraction from arbitrary `Authorization`, `Cookie` and query values: never panics,
//! and anything it returns is a non-empty RFC 6750 b64token found in the request.
#![no_main]

use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use meshguard::token::bearer::BearerExtractor;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let authorization = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(authorization) {
        headers.append(http::header::AUTHORIZATION, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(cookie) {
        headers.append(http::header::COOKIE, value);
    }
    let uri = std::str::from_utf8(query)
        .ok()
        .and_then(|q| format!("/?{q}").parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    let extractor = BearerExtractor::new().cookie("at").query_parameter("access_token");
    if let Ok(token) = extractor.extract(&headers, &uri) {
        assert!(!token.is_empty());
        assert!(token.bytes().all(|b| b.is_ascii_graphic()));
    }
    let _ = meshguard::token::bearer::from_headers(&headers);
});
