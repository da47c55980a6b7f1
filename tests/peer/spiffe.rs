//! SPIFFE ID and trust-domain parsing against go-spiffe's and the specification's cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard::peer::{SpiffeId, SpiffeIdError, TrustDomain};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../data/spiffe/spiffe.json")).unwrap()
}

fn acceptable(case: &Value) -> Vec<String> {
    match case.get("acceptable_outcomes") {
        Some(list) => list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect(),
        None => vec![case["expected"].as_str().unwrap().to_owned()],
    }
}

#[test]
fn every_spiffe_id_vector_passes() {
    let v = vectors();
    let cases = v["spiffe_id_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 561);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let got = SpiffeId::new(input);
        match case["expected"].as_str().unwrap() {
            "valid" => {
                let id = got.unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
                assert_eq!(
                    id.trust_domain().as_str(),
                    case["trust_domain"].as_str().unwrap()
                );
                assert_eq!(id.path(), case["path"].as_str().unwrap());
                assert_eq!(id.as_str(), input);
            }
            _ => {
                let err = got.expect_err(input);
                assert_eq!(
                    err.reason(),
                    case["error_class"].as_str().unwrap(),
                    "{input:?}"
                );
                assert!(acceptable(case).contains(&"invalid".to_owned()));
                if let Some(msg) = case["go_spiffe_error"].as_str() {
                    assert_eq!(err.to_string(), msg, "{input:?}");
                }
            }
        }
    }
}

#[test]
fn every_trust_domain_vector_passes() {
    let v = vectors();
    let cases = v["trust_domain_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 306);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        match case["expected"].as_str().unwrap() {
            "valid" => {
                let td = TrustDomain::new(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(td.as_str(), case["trust_domain"].as_str().unwrap());
            }
            _ => {
                let err = TrustDomain::new(input).expect_err(input);
                assert_eq!(
                    err.reason(),
                    case["error_class"].as_str().unwrap(),
                    "{input:?}"
                );
                assert_eq!(err.to_string(), case["go_spiffe_error"].as_str().unwrap());
            }
        }
    }
}

// CONFORMANCE 47
#[test]
fn wrong_scheme_and_empty_inputs_are_rejected() {
    for input in ["Spiffe://td/x", "spiffe:/td", "https://td/x"] {
        assert_eq!(
            SpiffeId::new(input),
            Err(SpiffeIdError::WrongScheme),
            "{input}"
        );
    }
    assert_eq!(
        SpiffeId::new("spiffe://"),
        Err(SpiffeIdError::MissingTrustDomain)
    );
    assert_eq!(SpiffeId::new(""), Err(SpiffeIdError::Empty));
}

// CONFORMANCE 48
#[test]
fn uppercase_port_and_userinfo_in_trust_domain_are_rejected() {
    for input in ["spiffe://TD/x", "spiffe://td:443/x", "spiffe://user@td/x"] {
        assert_eq!(
            SpiffeId::new(input),
            Err(SpiffeIdError::BadTrustDomainChar),
            "{input}"
        );
    }
}

// CONFORMANCE 49
#[test]
fn empty_trailing_and_dot_segments_are_rejected_but_dot_names_are_not() {
    assert_eq!(
        SpiffeId::new("spiffe://td/"),
        Err(SpiffeIdError::TrailingSlash)
    );
    assert_eq!(
        SpiffeId::new("spiffe://td//x"),
        Err(SpiffeIdError::EmptySegment)
    );
    assert_eq!(
        SpiffeId::new("spiffe://td/x/"),
        Err(SpiffeIdError::TrailingSlash)
    );
    assert_eq!(
        SpiffeId::new("spiffe://td/./x"),
        Err(SpiffeIdError::DotSegment)
    );
    assert_eq!(
        SpiffeId::new("spiffe://td/x/.."),
        Err(SpiffeIdError::DotSegment)
    );
    assert_eq!(SpiffeId::new("spiffe://td/.x").unwrap().path(), "/.x");
    assert_eq!(SpiffeId::new("spiffe://td/...").unwrap().path(), "/...");
}

// CONFORMANCE 50
#[test]
fn query_fragment_and_percent_encoding_are_rejected() {
    for input in ["spiffe://td/x?y", "spiffe://td/x#y", "spiffe://td/%41"] {
        assert_eq!(
            SpiffeId::new(input),
            Err(SpiffeIdError::BadPathSegmentChar),
            "{input}"
        );
    }
}

// CONFORMANCE 51 (the workload half is in tests/peer/identity.rs)
#[test]
fn trust_domain_id_parses_with_empty_path() {
    let id = SpiffeId::new("spiffe://td").unwrap();
    assert_eq!(id.path(), "");
    assert_eq!(id, TrustDomain::new("td").unwrap().id());
}

// CONFORMANCE 52
#[test]
fn length_limits_are_2048_for_ids_and_255_for_trust_domains() {
    let prefix = "spiffe://example.org/";
    let at_limit = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    assert_eq!(SpiffeId::new(&at_limit).unwrap().as_str().len(), 2048);
    let over = format!("{at_limit}a");
    assert_eq!(SpiffeId::new(&over), Err(SpiffeIdError::TooLong));

    let td255 = "a".repeat(255);
    assert!(SpiffeId::new(&format!("spiffe://{td255}/x")).is_ok());
    assert_eq!(
        SpiffeId::new(&format!("spiffe://{td255}a/x")),
        Err(SpiffeIdError::TrustDomainTooLong)
    );
}

#[test]
fn membership_compares_whole_trust_domain_names() {
    let id: SpiffeId = "spiffe://td.evil/x".parse().unwrap();
    assert!(!id.is_member_of(&"td".parse().unwrap()));
    assert!(id.is_member_of(&"td.evil".parse().unwrap()));
}

#[test]
fn display_and_debug_show_the_id() {
    let id: SpiffeId = "spiffe://td/x".parse().unwrap();
    assert_eq!(id.to_string(), "spiffe://td/x");
    assert_eq!(format!("{id:?}"), r#"SpiffeId("spiffe://td/x")"#);
    assert_eq!(id.trust_domain().to_string(), "td");
}
