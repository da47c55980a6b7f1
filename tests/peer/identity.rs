//! Peer identity from DER chains: go-spiffe's X509-SVID fixtures and certificates minted
//! with rcgen (CONFORMANCE 51, 53–56, 58).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use meshguard::peer::{
    IdentitySource, MAX_CERTIFICATE_LEN, MAX_CHAIN_LEN, PeerError, PeerIdentity, SpiffeIdError,
    certificates_from_pem,
};
use peer_support::{Ca, svid_params};
use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose, SanType};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/spiffe/x509/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn svid_from_pem(pem: &[u8]) -> Result<PeerIdentity, PeerError> {
    PeerIdentity::from_svid_chain(&certificates_from_pem(pem)?)
}

#[test]
fn every_go_spiffe_x509_fixture_case_passes() {
    let v: Value = serde_json::from_str(include_str!("../data/spiffe/spiffe.json")).unwrap();
    let cases = v["x509_svid_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    let mut checked = 0;
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let class = case["error_class"].as_str();
        // Pairing a chain with its private key is the workload's concern, not the
        // verifier's: meshguard never sees the peer's key.
        if class == Some("key_mismatch") {
            continue;
        }
        let pem = fixture(file.strip_prefix("spiffe_x509/").unwrap());
        let got = svid_from_pem(&pem);
        match case["expected"].as_str().unwrap() {
            "valid" => {
                let id = got.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(
                    id.spiffe_id().unwrap().as_str(),
                    case["spiffe_id"].as_str().unwrap()
                );
                let chain = certificates_from_pem(&pem).unwrap();
                assert_eq!(chain.len() as u64, case["cert_count"].as_u64().unwrap());
            }
            _ => {
                let err = got.expect_err(file);
                let expected = match class.unwrap() {
                    "cert_parse_error" => "malformed_certificate",
                    "not_pem" | "no_certificates" => "no_certificates",
                    other => other,
                };
                assert_eq!(err.reason(), expected, "{file}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 14);
}

#[test]
fn fixtures_are_expired_but_identity_is_still_read() {
    let id = svid_from_pem(&fixture("good-leaf-only.pem")).unwrap();
    assert!(id.not_after().unwrap() < SystemTime::now());
    assert!(id.not_before().unwrap() < id.not_after().unwrap());
}

#[test]
fn svid_leaf_yields_all_fields() {
    let ca = Ca::new("example.org");
    let leaf = ca.svid("spiffe://example.org/ns/prod/sa/web");
    let der = leaf.der();
    let id = PeerIdentity::from_der_chain(&[der.clone(), ca.der()]).unwrap();
    let spiffe = id.spiffe_id().unwrap();
    assert_eq!(spiffe.as_str(), "spiffe://example.org/ns/prod/sa/web");
    assert_eq!(spiffe.trust_domain().as_str(), "example.org");
    assert_eq!(spiffe.path(), "/ns/prod/sa/web");
    assert_eq!(id.dns_names(), ["localhost"]);
    assert_eq!(id.uris(), ["spiffe://example.org/ns/prod/sa/web"]);
    assert_eq!(id.common_name(), Some("workload"));
    let subject = id.subject().unwrap();
    assert!(
        subject.contains("CN=workload") && subject.contains("O=Example"),
        "{subject}"
    );
    assert_eq!(id.source(), IdentitySource::Tls);

    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    assert_eq!(id.sha256().as_slice(), digest.as_ref());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    assert_eq!(id.x5t_s256(), b64);
    assert_eq!(id.x5t_s256().len(), 43);
    assert!(!id.x5t_s256().contains('='));

    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let serial: String = parsed
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id.serial(), Some(serial.as_str()));
    let nb = SystemTime::UNIX_EPOCH
        + Duration::from_secs(parsed.validity().not_before.timestamp() as u64);
    assert_eq!(id.not_before(), Some(nb));
}

#[test]
fn svid_parse_of_the_same_leaf_matches_general_parse() {
    let ca = Ca::new("example.org");
    let der = ca.svid("spiffe://example.org/w").der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]).unwrap(),
        PeerIdentity::from_svid_chain(&[&der]).unwrap()
    );
}

// CONFORMANCE 53
#[test]
fn leaf_with_two_uri_sans_is_rejected_even_if_both_are_spiffe() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/a");
    params
        .subject_alt_names
        .push(SanType::URI("spiffe://example.org/b".try_into().unwrap()));
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::MoreThanOneUriSan)
    );
    assert_eq!(
        PeerIdentity::from_svid_chain(&[&der]),
        Err(PeerError::MoreThanOneUriSan)
    );
}

#[test]
fn spiffe_uri_next_to_another_uri_is_rejected() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/a");
    params
        .subject_alt_names
        .push(SanType::URI("https://example.org/b".try_into().unwrap()));
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]).unwrap_err().reason(),
        "more_than_one_uri_san"
    );
}

// CONFORMANCE 53
#[test]
fn leaf_without_uri_san_is_not_an_svid_but_is_a_plain_identity() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/unused");
    params.subject_alt_names = vec![SanType::DnsName("db.example.org".try_into().unwrap())];
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_svid_chain(&[&der]),
        Err(PeerError::NoUriSan)
    );
    let id = PeerIdentity::from_der_chain(&[&der]).unwrap();
    assert_eq!(id.spiffe_id(), None);
    assert_eq!(id.dns_names(), ["db.example.org"]);
    assert!(id.uris().is_empty());
}

#[test]
fn non_spiffe_uri_is_kept_without_spiffe_id_in_general_mode() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/unused");
    params.subject_alt_names = vec![SanType::URI("https://example.org/app".try_into().unwrap())];
    let der = ca.sign(&params).der();
    let id = PeerIdentity::from_der_chain(&[&der]).unwrap();
    assert_eq!(id.spiffe_id(), None);
    assert_eq!(id.uris(), ["https://example.org/app"]);
    assert_eq!(
        PeerIdentity::from_svid_chain(&[&der]),
        Err(PeerError::InvalidSpiffeId(SpiffeIdError::WrongScheme))
    );
}

#[test]
fn invalid_spiffe_uri_is_rejected_not_downgraded() {
    let ca = Ca::new("example.org");
    for uri in [
        "spiffe://example.org/a/../b",
        "SPIFFE://example.org/a",
        "spiffe://Example.org/a",
    ] {
        let der = ca.sign(&svid_params(uri)).der();
        assert_eq!(
            PeerIdentity::from_der_chain(&[&der]).unwrap_err().reason(),
            "invalid_spiffe_id",
            "{uri}"
        );
    }
}

// CONFORMANCE 54
#[test]
fn ca_flagged_leaf_is_rejected() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/w");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::LeafIsCa)
    );

    let mut plain = params.clone();
    plain.subject_alt_names = vec![SanType::DnsName("x.example".try_into().unwrap())];
    let der = ca.sign(&plain).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::LeafIsCa)
    );
}

// CONFORMANCE 54
#[test]
fn leaf_with_key_cert_sign_or_crl_sign_is_rejected() {
    let ca = Ca::new("example.org");
    let cases = [
        (KeyUsagePurpose::KeyCertSign, PeerError::LeafHasKeyCertSign),
        (KeyUsagePurpose::CrlSign, PeerError::LeafHasCrlSign),
    ];
    for (usage, expected) in cases {
        let mut params = svid_params("spiffe://example.org/w");
        params.key_usages.push(usage);
        let der = ca.sign(&params).der();
        assert_eq!(PeerIdentity::from_der_chain(&[&der]), Err(expected));
    }
}

// CONFORMANCE 55
#[test]
fn leaf_without_digital_signature_is_rejected() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/w");
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::LeafMissingDigitalSignature)
    );
    params.key_usages = vec![];
    let der = ca.sign(&params).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::LeafMissingDigitalSignature)
    );
}

// CONFORMANCE 51, 56
#[test]
fn leaf_with_root_path_is_rejected() {
    let ca = Ca::new("example.org");
    let der = ca.sign(&svid_params("spiffe://example.org")).der();
    assert_eq!(
        PeerIdentity::from_der_chain(&[&der]),
        Err(PeerError::LeafRootPath)
    );
}

// CONFORMANCE 58
#[test]
fn intermediates_must_be_cas_with_key_cert_sign() {
    let root = Ca::new("example.org");
    let good = root.intermediate("example.org");
    let leaf = good.svid("spiffe://example.org/w");
    let id = PeerIdentity::from_der_chain(&[leaf.der(), good.der(), root.der()]).unwrap();
    assert_eq!(id.spiffe_id().unwrap().path(), "/w");

    let not_ca = root.svid("spiffe://example.org/not-a-ca");
    assert_eq!(
        PeerIdentity::from_der_chain(&[leaf.der(), not_ca.der()]),
        Err(PeerError::SigningCertNotCa)
    );

    let mut params = root.params.clone();
    params.key_usages = vec![KeyUsagePurpose::CrlSign];
    let no_sign = root.sign(&params);
    assert_eq!(
        PeerIdentity::from_der_chain(&[leaf.der(), no_sign.der()]),
        Err(PeerError::SigningCertMissingKeyCertSign)
    );
}

#[test]
fn expired_leaf_still_yields_identity_with_its_validity() {
    let ca = Ca::new("example.org");
    let mut params = svid_params("spiffe://example.org/old");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let id = PeerIdentity::from_der_chain(&[ca.sign(&params).der()]).unwrap();
    assert_eq!(
        id.not_after(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_609_459_200))
    );
}

#[test]
fn chain_length_is_bounded() {
    let ca = Ca::new("example.org");
    let leaf = ca.svid("spiffe://example.org/w").der();
    let mut chain = vec![leaf];
    chain.extend(std::iter::repeat_n(ca.der(), MAX_CHAIN_LEN - 1));
    assert!(PeerIdentity::from_der_chain(&chain).is_ok());
    chain.push(ca.der());
    assert_eq!(
        PeerIdentity::from_der_chain(&chain),
        Err(PeerError::ChainTooLong { max: MAX_CHAIN_LEN })
    );
}

#[test]
fn empty_chain_and_oversized_or_garbage_der_are_rejected() {
    let empty: [Vec<u8>; 0] = [];
    assert_eq!(
        PeerIdentity::from_der_chain(&empty),
        Err(PeerError::NoCertificate)
    );
    let big = vec![0x30; MAX_CERTIFICATE_LEN + 1];
    assert_eq!(
        PeerIdentity::from_der_chain(&[big]),
        Err(PeerError::CertificateTooLarge {
            max: MAX_CERTIFICATE_LEN
        })
    );
    for garbage in [
        vec![],
        vec![0x30],
        vec![0xff; 64],
        b"not a certificate".to_vec(),
    ] {
        assert_eq!(
            PeerIdentity::from_der_chain(&[garbage]),
            Err(PeerError::MalformedCertificate)
        );
    }
}

#[test]
fn trailing_bytes_after_the_certificate_are_rejected() {
    let ca = Ca::new("example.org");
    let mut der = ca.svid("spiffe://example.org/w").der();
    der.push(0);
    assert_eq!(
        PeerIdentity::from_der_chain(&[der]),
        Err(PeerError::MalformedCertificate)
    );
}

#[test]
fn truncated_certificates_never_panic() {
    let ca = Ca::new("example.org");
    let der = ca.svid("spiffe://example.org/w").der();
    for len in 0..der.len() {
        assert!(PeerIdentity::from_der_chain(&[&der[..len]]).is_err());
    }
}

#[test]
fn pem_skips_keys_and_rejects_text_without_certificates() {
    let ca = Ca::new("example.org");
    let leaf = ca.svid("spiffe://example.org/w");
    let pem = format!("{}{}{}", leaf.key_pem(), leaf.cert_pem(), ca.pem());
    let id = PeerIdentity::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(id.spiffe_id().unwrap().as_str(), "spiffe://example.org/w");
    assert_eq!(
        PeerIdentity::from_pem(leaf.key_pem().as_bytes()),
        Err(PeerError::NoPemCertificates)
    );
    assert_eq!(
        PeerIdentity::from_pem(b""),
        Err(PeerError::NoPemCertificates)
    );
    let huge = vec![b'a'; meshguard::peer::MAX_PEM_LEN + 1];
    assert_eq!(PeerIdentity::from_pem(&huge), Err(PeerError::MalformedPem));
}

#[test]
fn identity_is_clone_send_sync_debug() {
    fn check<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<PeerIdentity>();
    check::<PeerError>();
}
