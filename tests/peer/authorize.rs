//! Authorizers as in go-spiffe, composed (CONFORMANCE 59).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use meshguard::peer::{AuthorizeError, Authorizer, PeerIdentity, SpiffeId, TrustDomain};
use peer_support::{Ca, svid_params};
use rcgen::SanType;

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

fn td(s: &str) -> TrustDomain {
    s.parse().unwrap()
}

#[test]
fn any_accepts_every_spiffe_id_but_not_a_peer_without_one() {
    let ca = Ca::new("example.org");
    let svid = PeerIdentity::from_der_chain(&[ca.svid("spiffe://example.org/w").der()]).unwrap();
    assert_eq!(Authorizer::any().authorize(&svid), Ok(()));

    let mut params = svid_params("spiffe://example.org/unused");
    params.subject_alt_names = vec![SanType::DnsName("x.example".try_into().unwrap())];
    let plain = PeerIdentity::from_der_chain(&[ca.sign(&params).der()]).unwrap();
    let err = Authorizer::any().authorize(&plain).unwrap_err();
    assert_eq!(err, AuthorizeError::NoSpiffeId);
    assert_eq!(err.reason(), "no_spiffe_id");
}

#[test]
fn exact_id_compares_whole_ids() {
    let authz = Authorizer::id(id("spiffe://td/web"));
    assert!(authz.authorize_id(&id("spiffe://td/web")).is_ok());
    for other in [
        "spiffe://td/web2",
        "spiffe://td/web/x",
        "spiffe://td/Web",
        "spiffe://td2/web",
    ] {
        let err = authz.authorize_id(&id(other)).unwrap_err();
        assert_eq!(err.reason(), "unauthorized_id", "{other}");
        assert_eq!(err, AuthorizeError::Unauthorized(id(other)));
    }
}

#[test]
fn one_of_accepts_listed_ids_only_and_empty_list_accepts_nobody() {
    let authz = Authorizer::one_of([id("spiffe://td/a"), id("spiffe://td/b")]);
    assert!(authz.authorize_id(&id("spiffe://td/a")).is_ok());
    assert!(authz.authorize_id(&id("spiffe://td/b")).is_ok());
    assert!(authz.authorize_id(&id("spiffe://td/c")).is_err());
    assert!(
        Authorizer::one_of([])
            .authorize_id(&id("spiffe://td/a"))
            .is_err()
    );
}

#[test]
fn member_of_is_exact_trust_domain_match() {
    let authz = Authorizer::member_of(td("td"));
    assert!(authz.authorize_id(&id("spiffe://td/x")).is_ok());
    assert!(authz.authorize_id(&id("spiffe://td")).is_ok());
    assert!(authz.authorize_id(&id("spiffe://td.evil/x")).is_err());
    assert!(authz.authorize_id(&id("spiffe://eviltd/x")).is_err());
    assert!(authz.authorize_id(&id("spiffe://sub.td/x")).is_err());

    let many = Authorizer::member_of_any([td("a.example"), td("b.example")]);
    assert!(many.authorize_id(&id("spiffe://b.example/x")).is_ok());
    assert!(many.authorize_id(&id("spiffe://c.example/x")).is_err());
    assert!(
        Authorizer::member_of_any([])
            .authorize_id(&id("spiffe://td/x"))
            .is_err()
    );
}

#[test]
fn path_prefix_matches_whole_segments_in_its_trust_domain() {
    let authz = Authorizer::path_prefix(td("td"), "/ns/prod").unwrap();
    assert!(authz.authorize_id(&id("spiffe://td/ns/prod")).is_ok());
    assert!(
        authz
            .authorize_id(&id("spiffe://td/ns/prod/sa/web"))
            .is_ok()
    );
    assert!(
        authz
            .authorize_id(&id("spiffe://td/ns/production"))
            .is_err()
    );
    assert!(authz.authorize_id(&id("spiffe://td/ns")).is_err());
    assert!(authz.authorize_id(&id("spiffe://other/ns/prod")).is_err());
}

#[test]
fn path_prefix_must_be_a_valid_path() {
    for (bad, reason) in [
        ("", "missing_path"),
        ("ns", "no_leading_slash"),
        ("/ns/", "trailing_slash"),
        ("/ns/../x", "dot_segment"),
        ("/n s", "bad_path_segment_char"),
    ] {
        let err = Authorizer::path_prefix(td("td"), bad).unwrap_err();
        assert_eq!(err.reason(), reason, "{bad:?}");
    }
}

#[test]
fn and_or_compose() {
    let prod = Authorizer::member_of(td("prod"));
    let payments = Authorizer::path_prefix(td("prod"), "/payments").unwrap();
    let oncall = Authorizer::id(id("spiffe://ops/oncall"));
    let authz = prod.and(payments).or(oncall);
    assert!(
        authz
            .authorize_id(&id("spiffe://prod/payments/api"))
            .is_ok()
    );
    assert!(authz.authorize_id(&id("spiffe://ops/oncall")).is_ok());
    assert!(authz.authorize_id(&id("spiffe://prod/shop/api")).is_err());
    assert!(authz.authorize_id(&id("spiffe://ops/other")).is_err());

    let never = Authorizer::member_of(td("a")).and(Authorizer::member_of(td("b")));
    assert!(never.authorize_id(&id("spiffe://a/x")).is_err());
}
