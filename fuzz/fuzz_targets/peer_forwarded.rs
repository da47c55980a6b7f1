//! `Forwarded` and `X-Forwarded-For` from arbitrary header fields: never panics, whether a
//! header parses does not depend on the hops read, and addresses come out canonical.
#![no_main]

use std::net::IpAddr;

use http::header::{FORWARDED, HeaderName};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use meshguard::peer::ForwardedAddress;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (address, name) = if selector & 1 == 0 {
        (ForwardedAddress::forwarded(), FORWARDED)
    } else {
        (
            ForwardedAddress::x_forwarded_for(),
            HeaderName::from_static("x-forwarded-for"),
        )
    };
    let mut headers = HeaderMap::new();
    for field in rest.split(|b| *b == 0) {
        if let Ok(value) = HeaderValue::from_bytes(field) {
            headers.append(&name, value);
        }
    }
    let first = address.hops(1).resolve(&headers);
    for hops in [0, 2, usize::from(selector >> 1), usize::MAX] {
        let other = address.hops(hops).resolve(&headers);
        assert_eq!(first.is_ok(), other.is_ok(), "{first:?} {other:?}");
        if hops == 0 {
            assert!(matches!(other, Ok(None) | Err(_)));
        }
        if let Ok(Some(IpAddr::V6(v6))) = other {
            assert!(v6.to_ipv4_mapped().is_none(), "{v6}");
        }
    }
});
