//! HTTP and gRPC request mapping from arbitrary request targets and route templates: never
//! panics, and whatever maps has an action naming the method and a JSON-object context.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use meshguard::policy::{HttpInput, HttpMapping};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (target, route) = text.split_once('\u{0}').unwrap_or((text, ""));
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let method = http::Method::GET;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(data.len() as u32) * 86_400);
    let mut input = HttpInput::new(&method, &uri, now);
    if !route.is_empty() {
        input = input.with_route(route);
    }
    if let Ok(mapped) = HttpMapping::conventions("svc").map(&input) {
        assert!(mapped.action().id().starts_with("GET "));
        assert!(mapped.context().as_json().is_some());
    }
    if let Ok(mapped) = HttpMapping::grpc("svc").map(&input) {
        assert_eq!(mapped.action().id(), uri.path());
    }
});
