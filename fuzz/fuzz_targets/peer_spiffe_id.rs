//! SPIFFE ID and trust-domain parsing from arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::peer::{SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = SpiffeId::new(text) {
        // A parsed ID is kept as written and splits into its parts.
        assert_eq!(id.as_str(), text);
        let rebuilt = format!("spiffe://{}{}", id.trust_domain().as_str(), id.path());
        assert_eq!(rebuilt, text);
        assert_eq!(TrustDomain::new(id.trust_domain().as_str()).as_ref(), Ok(id.trust_domain()));
    }
    let _ = TrustDomain::new(text);
});
