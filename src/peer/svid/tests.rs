//! Checks of deliveries: each refused kind keeps the last good material.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::{SvidHealth, SvidStore, SvidUpdateError, X509Update};
use crate::peer::TrustDomain;
use crate::token::Clock;

#[derive(Debug)]
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn unix_seconds(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `seconds` after the Unix epoch.
fn since_epoch(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds).unwrap())
}

fn new_ca() -> Ca {
    new_spire_ca(None)
}

/// A CA; with `uri`, carrying it as a URI SAN as SPIRE's CAs carry `spiffe://<td>`.
fn new_spire_ca(uri: Option<&str>) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = uri
        .map(|uri| SanType::URI(uri.try_into().unwrap()))
        .into_iter()
        .collect();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// An SVID for `id` signed by `ca`, valid from `from` to `until` (Unix seconds); returns
/// (chain PEM, key PEM).
fn svid(ca: &Ca, id: &str, from: i64, until: i64) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::URI(id.try_into().unwrap())];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(from);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(until);
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn update(chain: &str, key: &str, bundles: &[(&str, &Ca)]) -> X509Update {
    let mut update = X509Update::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
    for (td, ca) in bundles {
        update = update
            .with_bundle_pem(TrustDomain::new(td).unwrap(), ca.pem.as_bytes())
            .unwrap();
    }
    update
}

fn store_at(seconds: i64) -> (SvidStore, Arc<TestClock>) {
    let clock = Arc::new(TestClock(AtomicI64::new(seconds)));
    (SvidStore::with_clock(clock.clone()), clock)
}

#[test]
fn a_good_delivery_is_taken_and_each_one_counts_a_generation() {
    let ca = new_ca();
    let t = now();
    let (store, _) = store_at(t);
    assert_eq!(store.status().health(), SvidHealth::Empty);
    assert!(!store.status().health().is_ready());
    for expected in 1..=3 {
        let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
        let svid = store
            .update(update(&chain, &key, &[("example.org", &ca)]))
            .unwrap();
        assert_eq!(svid.generation(), expected);
    }
    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Current);
    assert_eq!(status.updates(), 3);
    assert_eq!(
        status.spiffe_id().map(|id| id.as_str()),
        Some("spiffe://example.org/orders")
    );
}

#[test]
fn each_bad_delivery_is_refused_for_its_reason_and_the_last_good_material_stays() {
    let ca = new_ca();
    let other_ca = new_ca();
    let t = now();
    let (store, _) = store_at(t);
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let good = store
        .update(update(&chain, &key, &[("example.org", &ca)]))
        .unwrap();

    let (_, stranger_key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let (expired, expired_key) = svid(&ca, "spiffe://example.org/orders", t - 60, t - 1);
    let (future, future_key) = svid(&ca, "spiffe://example.org/orders", t + 10, t + 60);
    let (foreign, foreign_key) = svid(&other_ca, "spiffe://example.org/orders", t - 1, t + 60);
    let (no_path, no_path_key) = svid(&ca, "spiffe://example.org", t - 1, t + 60);
    let cases: Vec<(&str, X509Update)> = vec![
        (
            "key_mismatch",
            update(&chain, &stranger_key, &[("example.org", &ca)]),
        ),
        (
            "svid_expired",
            update(&expired, &expired_key, &[("example.org", &ca)]),
        ),
        (
            "svid_not_yet_valid",
            update(&future, &future_key, &[("example.org", &ca)]),
        ),
        (
            "missing_bundle",
            update(&chain, &key, &[("other.org", &ca)]),
        ),
        (
            "svid_untrusted",
            update(&foreign, &foreign_key, &[("example.org", &ca)]),
        ),
        (
            "duplicate_bundle",
            update(&chain, &key, &[("example.org", &ca), ("example.org", &ca)]),
        ),
        (
            "invalid_svid",
            update(&no_path, &no_path_key, &[("example.org", &ca)]),
        ),
        (
            "invalid_bundle",
            update(&chain, &key, &[]).with_bundle(TrustDomain::new("example.org").unwrap(), vec![]),
        ),
    ];
    for (reason, bad) in cases {
        let error = store.update(bad).unwrap_err();
        assert_eq!(error.reason(), reason, "{error}");
        let status = store.status();
        assert_eq!(status.health(), SvidHealth::Failing, "{reason}");
        assert_eq!(
            status.last_error().map(SvidUpdateError::reason),
            Some(reason)
        );
        assert!(Arc::ptr_eq(&store.current().unwrap(), &good), "{reason}");
        assert_eq!(store.current().unwrap().generation(), 1);
    }
    assert_eq!(store.status().failures(), 8);
}

#[test]
fn a_key_pem_without_a_key_and_an_unusable_key_are_refused() {
    let ca = new_ca();
    let t = now();
    let (chain, _) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let error = X509Update::from_pem(chain.as_bytes(), chain.as_bytes()).unwrap_err();
    assert_eq!(error.reason(), "invalid_private_key");

    let (store, _) = store_at(t);
    let garbage =
        rustls::pki_types::PrivateKeyDer::Pkcs8(vec![0x30, 0x03, 0x02, 0x01, 0x00].into());
    let certs = crate::peer::certificates_from_pem(chain.as_bytes())
        .unwrap()
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    let bad = X509Update::new(certs, garbage)
        .with_bundle_pem(TrustDomain::new("example.org").unwrap(), ca.pem.as_bytes())
        .unwrap();
    assert_eq!(
        store.update(bad).unwrap_err().reason(),
        "invalid_private_key"
    );
    assert_eq!(store.status().health(), SvidHealth::Empty);
}

#[test]
fn material_that_expires_is_no_longer_offered_and_the_status_says_so() {
    let ca = new_ca();
    let t = now();
    let (store, clock) = store_at(t);
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 30);
    store
        .update(update(&chain, &key, &[("example.org", &ca)]))
        .unwrap();
    assert!(store.valid_now().is_some());
    clock.0.store(t + 30, Ordering::SeqCst);
    assert!(store.valid_now().is_none());
    assert!(store.current().is_some());
    assert_eq!(store.status().health(), SvidHealth::Expired);
    assert!(!store.status().health().is_ready());
}

#[test]
fn a_source_failure_shows_in_the_status_until_a_delivery_is_taken() {
    let ca = new_ca();
    let t = now();
    let (store, _) = store_at(t);
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    store
        .update(update(&chain, &key, &[("example.org", &ca)]))
        .unwrap();
    store.report_source_error(SvidUpdateError::Source("stream ended".to_owned()));
    assert_eq!(store.status().health(), SvidHealth::Failing);
    store
        .update(update(&chain, &key, &[("example.org", &ca)]))
        .unwrap();
    assert_eq!(store.status().health(), SvidHealth::Current);
    assert!(store.status().last_error().is_none());
}

#[test]
fn federated_bundles_are_kept_per_trust_domain() {
    let ca = new_ca();
    let partner = new_ca();
    let t = now();
    let (store, _) = store_at(t);
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let svid = store
        .update(update(
            &chain,
            &key,
            &[("example.org", &ca), ("partner.test", &partner)],
        ))
        .unwrap();
    let domains: Vec<_> = svid.trust_domains().map(TrustDomain::as_str).collect();
    assert_eq!(domains, ["example.org", "partner.test"]);
    assert!(
        svid.roots(&TrustDomain::new("partner.test").unwrap())
            .is_some()
    );
    assert!(
        svid.client_verifier(&TrustDomain::new("elsewhere.test").unwrap())
            .is_none()
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let ca = new_ca();
    let t = now();
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let shown = format!("{:?}", update(&chain, &key, &[("example.org", &ca)]));
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("PRIVATE"));
}

#[test]
fn a_root_of_another_trust_domain_in_the_own_bundle_is_refused() {
    let ca = new_spire_ca(Some("spiffe://example.org"));
    let partner = new_spire_ca(Some("spiffe://partner.org"));
    let t = now();
    let (store, _) = store_at(t);
    let (chain, key) = svid(&ca, "spiffe://example.org/orders", t - 1, t + 60);
    let example = TrustDomain::new("example.org").unwrap();

    // What spiffe-helper's `include_federated_domains` writes: both CAs in one bundle file.
    let mixed = format!("{}{}", ca.pem, partner.pem);
    let confused = X509Update::from_pem(chain.as_bytes(), key.as_bytes())
        .unwrap()
        .with_bundle_pem(example.clone(), mixed.as_bytes())
        .unwrap();
    let error = store.update(confused).unwrap_err();
    assert_eq!(error.reason(), "invalid_bundle", "{error}");
    assert!(error.to_string().contains("partner.org"), "{error}");
    assert!(store.current().is_none());

    let invalid = new_spire_ca(Some("spiffe://Example.org"));
    let mixed = format!("{}{}", ca.pem, invalid.pem);
    let unreadable = X509Update::from_pem(chain.as_bytes(), key.as_bytes())
        .unwrap()
        .with_bundle_pem(example, mixed.as_bytes())
        .unwrap();
    assert_eq!(
        store.update(unreadable).unwrap_err().reason(),
        "invalid_bundle"
    );

    // The same roots, each in its own trust domain's bundle, are taken.
    let separate = update(
        &chain,
        &key,
        &[("example.org", &ca), ("partner.org", &partner)],
    );
    let svid = store.update(separate).unwrap();
    assert_eq!(svid.trust_domains().count(), 2);
}

#[test]
fn the_calling_side_refuses_an_authorizer_that_accepts_any_server() {
    use crate::peer::Authorizer;
    let (store, _) = store_at(now());
    let example = TrustDomain::new("example.org").unwrap();
    let orders = || Authorizer::id("spiffe://example.org/orders".parse().unwrap());
    let unrestricted = [
        Authorizer::any(),
        Authorizer::any().or(orders()),
        orders().or(Authorizer::any()),
        Authorizer::any().and(Authorizer::any()),
    ];
    for authorizer in unrestricted {
        let error = super::svid_client_config(&store, authorizer.clone()).unwrap_err();
        assert_eq!(error.reason(), "unrestricted_server", "{authorizer:?}");
        #[cfg(feature = "tonic")]
        assert_eq!(
            super::SvidConnector::new(&store, authorizer)
                .unwrap_err()
                .reason(),
            "unrestricted_server"
        );
    }
    let restricted = [
        orders(),
        Authorizer::member_of(example.clone()),
        Authorizer::any().and(Authorizer::member_of(example)),
    ];
    for authorizer in restricted {
        assert!(super::svid_client_config(&store, authorizer).is_ok());
    }
}

#[test]
fn a_leaf_that_outlives_its_intermediate_expires_with_it() {
    let root = new_ca();
    let t = now();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(t - 10);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(t + 30);
    let pem = params
        .signed_by(&key, &Issuer::from_params(&root.params, &root.key))
        .unwrap()
        .pem();
    let intermediate = Ca { params, key, pem };
    let (leaf, leaf_key) = svid(&intermediate, "spiffe://example.org/orders", t - 1, t + 60);
    let chain = format!("{leaf}{}", intermediate.pem);

    let (store, clock) = store_at(t);
    let svid = store
        .update(update(&chain, &leaf_key, &[("example.org", &root)]))
        .unwrap();
    assert_eq!(svid.not_after(), t + 30);
    assert_eq!(store.status().not_after(), Some(t + 30));
    assert!(store.valid_now().is_some());

    // Past the intermediate's expiry, before the leaf's.
    clock.0.store(t + 45, Ordering::SeqCst);
    assert!(!svid.is_valid_at(t + 45));
    assert!(store.valid_now().is_none());
    assert_eq!(store.status().health(), SvidHealth::Expired);
}
