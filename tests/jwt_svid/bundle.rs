//! SPIFFE bundle documents (SPIFFE Trust Domain and Bundle §4): go-spiffe's vector, bundles
//! built at test time, the refusals, and bundle updates as a trust domain rotates its keys.

use std::time::Duration;

use meshguard::peer::TrustDomain;
use meshguard::token::jwt_svid::{
    BundleError, BundleSet, MAX_SPIFFE_BUNDLE_BYTES, MAX_SPIFFE_BUNDLE_KEYS, SpiffeBundle,
};
use serde_json::json;

use crate::authority::{Authority, verifier};
use crate::support::read;

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn parse(json: &str) -> Result<SpiffeBundle, BundleError> {
    SpiffeBundle::from_json(td(), json.as_bytes())
}

const P256_X: &str = "64Mm92hnvqSdLxl6XQVu32-3rydodal1S8JgGYg5AGk";
const P256_Y: &str = "x5hVyA9Z4OgQxpvkhTXwNsZACk1jz1xyuTDr6JdH3R0";

fn jwt_key(kid: &str) -> serde_json::Value {
    json!({"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": kid, "x": P256_X, "y": P256_Y})
}

#[test]
fn go_spiffes_bundle_vector_reads_into_jwt_and_x509_authorities() {
    let json = read("real_jwks/spiffe-bundle.go-spiffe.json");
    let bundle = SpiffeBundle::from_json(td(), &json).unwrap();
    assert_eq!(bundle.trust_domain(), &td());
    assert_eq!(bundle.sequence(), Some(1));
    assert_eq!(bundle.refresh_hint(), Some(Duration::from_secs(60)));
    let kids: Vec<_> = bundle
        .jwt_authorities()
        .keys()
        .iter()
        .map(|k| k.kid().unwrap())
        .collect();
    assert_eq!(
        kids,
        [
            "IRsID4VIM3T11TsK43Ny1DgCD5UNWhva",
            "qjwWkiMpkHzIxsSrAsLxSZ2WZ8AyMESx",
            "uNhqAaPI7NDn7IHOsa2ac1BF4O5qGxjZ",
            "y3UHKFp0WqPpG7gVr3FKieiEzwH8fTMm",
            "mbrcuIaIUUapdCCmhQon4xJSicDmAVfK",
            "cHPeHMMEtvTeSMBc20DzPPhkF41BN2WJ",
        ]
    );
    assert_eq!(bundle.x509_authorities().len(), 1);
    assert!(bundle.skipped().is_empty());
}

#[test]
fn bundles_built_at_test_time_verify_their_trust_domains_svids() {
    let example = Authority::new("example.org", "k1");
    let bundle = example.bundle();
    assert_eq!(bundle.jwt_authorities().len(), 3);
    assert_eq!(bundle.refresh_hint(), Some(Duration::from_secs(300)));
    assert!(verifier(&[&example]).verify(&example.svid("/web")).is_ok());
}

#[test]
fn entries_for_other_uses_are_ignored_and_unverifiable_keys_skipped() {
    let bundle = parse(
        &json!({"keys": [
            jwt_key("k1"),
            {"use": "x509-svid-v2", "kty": "EC"},
            {"kty": "EC", "crv": "P-256", "kid": "no-use", "x": P256_X, "y": P256_Y},
            {"use": "sig", "kty": "EC", "crv": "P-256", "kid": "sig", "x": P256_X, "y": P256_Y},
            {"use": "jwt-svid", "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
            {"use": "jwt-svid", "kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
        ]})
        .to_string(),
    )
    .unwrap();
    let kids: Vec<_> = bundle
        .jwt_authorities()
        .keys()
        .iter()
        .map(|k| k.kid().unwrap())
        .collect();
    assert_eq!(kids, ["k1"]);
    assert_eq!(bundle.skipped().len(), 2, "{:?}", bundle.skipped());
    assert!(
        parse(r#"{"keys":[]}"#)
            .unwrap()
            .jwt_authorities()
            .is_empty()
    );
}

#[test]
fn malformed_bundles_are_refused() {
    let cert = "MIIBzDCCAVOgAwIBAgIJAJM4DhRH0vmu";
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "malformed"),
        ("not json".into(), "malformed"),
        ("[]".into(), "malformed"),
        ("{}".into(), "malformed"),
        (r#"{"keys":{}}"#.into(), "malformed"),
        (r#"{"keys":null}"#.into(), "malformed"),
        (r#"{"keys":[],"keys":[]}"#.into(), "malformed"),
        (format!(r#"{{"keys":[{}]}}"#, "[".repeat(40) + &"]".repeat(40)), "malformed"),
        (r#"{"keys":[1]}"#.into(), "bad_entry"),
        (json!({"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "", "x": P256_X, "y": P256_Y}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": 7, "x": P256_X, "y": P256_Y}]}).to_string(), "bad_entry"),
        (json!({"keys": [jwt_key("k1"), jwt_key("k1")]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k", "x": "AA", "y": P256_Y}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": "k", "x": P256_X, "y": P256_Y, "alg": "RS256"}]}).to_string(), "bad_entry"),
        (r#"{"keys":[{"use":"jwt-svid","kid":"a","kid":"b"}]}"#.into(), "malformed"),
        (json!({"keys": [{"use": "x509-svid"}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "x509-svid", "x5c": []}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "x509-svid", "x5c": [cert, cert]}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "x509-svid", "x5c": ["not base64!"]}]}).to_string(), "bad_entry"),
        (json!({"keys": [{"use": "x509-svid", "x5c": ["AAAA"]}]}).to_string(), "bad_entry"),
        (json!({"keys": [], "spiffe_sequence": -1}).to_string(), "bad_member"),
        (json!({"keys": [], "spiffe_sequence": "1"}).to_string(), "bad_member"),
        (json!({"keys": [], "spiffe_refresh_hint": 1.5}).to_string(), "bad_member"),
    ];
    for (json, expected) in &cases {
        let error = parse(json).unwrap_err();
        assert_eq!(error.reason(), *expected, "{json}: {error}");
    }
}

#[test]
fn bundles_are_bounded_in_size_and_entries() {
    let padding = " ".repeat(MAX_SPIFFE_BUNDLE_BYTES);
    let large = format!(r#"{{"keys":[]}}{padding}"#);
    assert_eq!(parse(&large).unwrap_err().reason(), "too_large");
    let many: Vec<_> = (0..=MAX_SPIFFE_BUNDLE_KEYS)
        .map(|i| json!({"use": "other", "n": i}))
        .collect();
    let many = json!({ "keys": many }).to_string();
    assert_eq!(
        parse(&many).unwrap_err(),
        BundleError::TooManyKeys {
            limit: MAX_SPIFFE_BUNDLE_KEYS
        }
    );
}

#[test]
fn a_bundle_update_rotates_keys_and_an_older_sequence_is_refused() {
    let old = Authority::new("example.org", "old");
    let new = Authority::new("example.org", "new");
    let verifier = verifier(&[&old]);
    let bundles = verifier.bundles().clone();
    let from_new = new.svid("/web");
    assert_eq!(
        verifier.verify(&from_new).unwrap_err().reason(),
        "unknown_key"
    );
    let rotated = SpiffeBundle::from_json(td(), new.bundle_json(2).as_bytes()).unwrap();
    bundles.update(rotated).unwrap();
    assert!(verifier.verify(&from_new).is_ok());
    assert_eq!(
        verifier.verify(&old.svid("/web")).unwrap_err().reason(),
        "unknown_key"
    );
    // Replaying the withdrawn bundle (sequence 1) cannot bring the old key back.
    let replay = SpiffeBundle::from_json(td(), old.bundle_json(1).as_bytes()).unwrap();
    assert_eq!(
        bundles.update(replay).unwrap_err(),
        BundleError::Rollback {
            current: 2,
            offered: 1
        }
    );
    assert_eq!(
        verifier.verify(&old.svid("/web")).unwrap_err().reason(),
        "unknown_key"
    );
    assert_eq!(bundles.trust_domains(), [td()]);
    // Removing the trust domain refuses its tokens.
    assert!(bundles.remove(&td()));
    assert!(!bundles.remove(&td()));
    assert!(bundles.is_empty());
    assert_eq!(
        verifier.verify(&from_new).unwrap_err().reason(),
        "unknown_trust_domain"
    );
    let set = BundleSet::from_bundles([
        SpiffeBundle::from_json(td(), new.bundle_json(3).as_bytes()).unwrap(),
        SpiffeBundle::from_json(td(), new.bundle_json(2).as_bytes()).unwrap(),
    ]);
    assert_eq!(set.unwrap_err().reason(), "rollback");
}
