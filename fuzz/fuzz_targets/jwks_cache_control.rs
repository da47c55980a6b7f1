//! `Cache-Control` values from a key endpoint: never a panic, and the cache lifetime always
//! stays within the configured bounds.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshguard::token::remote::RemoteJwks;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let remote = RemoteJwks::url("https://fuzz.example/jwks")
        .ttl_bounds(Duration::from_secs(30), Duration::from_secs(600));
    let lifetime = remote.cache_lifetime(Some(value));
    assert!(lifetime >= Duration::from_secs(30) && lifetime <= Duration::from_secs(600));
});
