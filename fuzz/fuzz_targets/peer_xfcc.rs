//! XFCC parsing and identity extraction from arbitrary header text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::peer::{XfccPolicy, parse_xfcc};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(elements) = parse_xfcc(header) else {
        return;
    };
    for element in &elements {
        // Writing an element back must give a header that parses to the same element.
        let again = parse_xfcc(&element.to_string());
        assert_eq!(again.as_deref(), Ok(std::slice::from_ref(element)));
        let _ = element.identity();
    }
    let _ = XfccPolicy::disabled().select(&elements);
});
