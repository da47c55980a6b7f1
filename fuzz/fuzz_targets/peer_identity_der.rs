//! Peer identity from arbitrary certificates. The first byte picks how the rest is read, so
//! real certificates can seed the corpus: 0 a whole DER certificate, 1 PEM text, anything
//! else a chain of arbitrary DER blobs. Nothing panics, and what parses is consistent.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use meshguard::peer::{PeerIdentity, certificates_from_pem};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let chain = match mode {
        0 => vec![rest.to_vec()],
        1 => certificates_from_pem(rest).unwrap_or_default(),
        _ => Vec::<Vec<u8>>::arbitrary(&mut Unstructured::new(rest)).unwrap_or_default(),
    };
    check(&chain);
});

fn check(chain: &[Vec<u8>]) {
    if let Ok(identity) = PeerIdentity::from_der_chain(chain) {
        assert_eq!(identity.x5t_s256().len(), 43);
        if let Some(id) = identity.spiffe_id() {
            assert!(!id.path().is_empty());
            assert_eq!(identity.uris().len(), 1);
        }
    }
    if let Ok(svid) = PeerIdentity::from_svid_chain(chain) {
        assert!(svid.spiffe_id().is_some(), "an X509-SVID has a SPIFFE ID");
    }
    if let Some(first) = chain.first() {
        let _ = PeerIdentity::from_svid_chain(&[first]);
    }
}
