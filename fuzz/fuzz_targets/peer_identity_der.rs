//! Peer identity from arbitrary DER: a whole input as one certificate, and arbitrary chains.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::peer::{PeerIdentity, certificates_from_pem};

fuzz_target!(|chain: Vec<Vec<u8>>| {
    if let Ok(identity) = PeerIdentity::from_der_chain(&chain) {
        assert_eq!(identity.x5t_s256().len(), 43);
        if let Some(id) = identity.spiffe_id() {
            assert!(!id.path().is_empty());
            assert_eq!(identity.uris().len(), 1);
        }
    }
    if let Some(first) = chain.first() {
        let _ = PeerIdentity::from_svid_chain(&[first]);
        let _ = certificates_from_pem(first);
    }
});
