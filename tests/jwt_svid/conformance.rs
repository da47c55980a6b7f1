//! CONFORMANCE.md 60–64 (JWT-SVID §2–§4, go-spiffe `jwtsvid`), one test per item, and the
//! general JWS items that apply to JWT-SVIDs; tokens signed at test time with ring keys.

use std::sync::Arc;
use std::time::Duration;

use meshguard::caller::Caller;
use meshguard::peer::{Authorizer, TrustDomain};
use meshguard::token::jwt_svid::{BundleSet, JwtSvidBuilderError, JwtSvidVerifier};
use meshguard::token::{Algorithm, Clock, FixedClock};
use serde_json::json;

use crate::authority::{AUDIENCE, Authority, NOW, verifier, verifier_at};
use crate::support::{assemble, b64};

fn reason(verifier: &JwtSvidVerifier, token: &str) -> &'static str {
    verifier.verify(token).unwrap_err().reason()
}

#[test]
fn a_valid_jwt_svid_yields_the_workload_and_a_caller() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let svid = verifier.verify(&example.svid("/ns/shop/sa/cart")).unwrap();
    assert_eq!(
        svid.spiffe_id().as_str(),
        "spiffe://example.org/ns/shop/sa/cart"
    );
    assert_eq!(svid.algorithm(), Algorithm::ES256);
    assert_eq!(svid.key_id(), "k1");
    assert_eq!(svid.audiences(), [AUDIENCE]);
    assert_eq!(svid.expires_at(), NOW + 300);
    assert_eq!(svid.claims()["iat"], json!(NOW - 10));
    // The peer module's authorizers decide on it.
    let td = TrustDomain::new("example.org").unwrap();
    assert!(
        Authorizer::member_of(td.clone())
            .authorize_id(svid.spiffe_id())
            .is_ok()
    );
    let other = Authorizer::path_prefix(td, "/ns/payments").unwrap();
    assert_eq!(
        other.authorize_id(svid.spiffe_id()).unwrap_err().reason(),
        "unauthorized_id"
    );
    // A caller made from it is that workload, with no user.
    let caller = Caller::from_workload(svid);
    let workload = caller.workload().unwrap();
    assert_eq!(
        workload.spiffe_id(),
        Some("spiffe://example.org/ns/shop/sa/cart")
    );
    assert_eq!(workload.trust_domain(), Some("example.org"));
    assert!(caller.user().is_none());
}

#[test]
fn conformance_60_only_rsa_pss_and_ecdsa_algorithms_are_accepted() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let claims = example.claims("/web");
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
    ] {
        let svid = verifier.verify(&example.sign(alg, &claims));
        assert_eq!(svid.unwrap().algorithm().as_str(), alg);
    }
    // HS256 (signed with a secret), EdDSA (with an Ed25519 key), ES512, `none` and names
    // outside the registry are refused before any key is looked up.
    for alg in ["HS256", "HS384", "EdDSA", "ES512", "none", "None", "RS1"] {
        assert_eq!(
            reason(&verifier, &example.sign(alg, &claims)),
            "disallowed_algorithm",
            "{alg}"
        );
    }
    // Even when the bundle publishes an Ed25519 key under the token's `kid`.
    let mut ed_bundle: serde_json::Value = serde_json::from_str(&example.bundle_json(1)).unwrap();
    ed_bundle["keys"].as_array_mut().unwrap().push(
        json!({"use": "jwt-svid", "kty": "OKP", "crv": "Ed25519", "kid": "ed",
                     "x": b64(example.keys.ed_public())}),
    );
    let bundle = meshguard::token::jwt_svid::SpiffeBundle::from_json(
        example.trust_domain.clone(),
        ed_bundle.to_string().as_bytes(),
    )
    .unwrap();
    let with_ed = JwtSvidVerifier::builder(BundleSet::from_bundles([bundle]).unwrap())
        .audience(AUDIENCE)
        .clock(Arc::new(FixedClock(NOW)))
        .build()
        .unwrap();
    let header = json!({"alg": "EdDSA", "kid": "ed"}).to_string();
    let eddsa = example.sign_raw("EdDSA", &header, &claims.to_string());
    assert_eq!(reason(&with_ed, &eddsa), "disallowed_algorithm");
    // A key serves only its own family: an RSA key does not check an ES256 token.
    let header = json!({"alg": "ES256", "kid": example.kid_for("RS256")}).to_string();
    let crossed = example.sign_raw("ES256", &header, &claims.to_string());
    assert_eq!(reason(&verifier, &crossed), "disallowed_algorithm");
}

#[test]
fn conformance_61_typ_must_be_jwt_or_jose_when_present() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let payload = example.claims("/web").to_string();
    let with_typ = |typ: Option<&str>| {
        let mut header = json!({"alg": "ES256", "kid": "k1"});
        if let Some(typ) = typ {
            header["typ"] = typ.into();
        }
        example.sign_raw("ES256", &header.to_string(), &payload)
    };
    for typ in [Some("JWT"), Some("JOSE"), None] {
        assert!(verifier.verify(&with_typ(typ)).is_ok(), "{typ:?}");
    }
    for typ in [
        "at+jwt",
        "application/at+jwt",
        "dpop+jwt",
        "jwt",
        "JOSE+JSON",
        "",
    ] {
        assert_eq!(
            reason(&verifier, &with_typ(Some(typ))),
            "invalid_type",
            "{typ}"
        );
    }
    let numeric = example.sign_raw("ES256", r#"{"alg":"ES256","kid":"k1","typ":1}"#, &payload);
    assert_eq!(reason(&verifier, &numeric), "malformed");
}

#[test]
fn conformance_62_sub_must_be_a_spiffe_id_whose_trust_domain_picks_the_key() {
    let example = Authority::new("example.org", "k1");
    // Another trust domain whose authority uses the same key ids.
    let other = Authority::new("other.org", "k1");
    let verifier = verifier(&[&example, &other]);
    let with_sub = |authority: &Authority, sub: Option<&str>| {
        let mut claims = authority.claims("/web");
        match sub {
            Some(sub) => claims["sub"] = sub.into(),
            None => {
                claims.as_object_mut().unwrap().remove("sub");
            }
        }
        authority.sign("ES256", &claims)
    };
    assert_eq!(
        reason(&verifier, &with_sub(&example, None)),
        "missing_claim"
    );
    for sub in [
        "alice",
        "",
        "spiffe://example.org",
        "Spiffe://example.org/web",
        "spiffe://EXAMPLE.org/web",
        "spiffe://example.org/web/",
        "spiffe://example.org/../web",
        "spiffe://example.org/web?x",
    ] {
        assert_eq!(
            reason(&verifier, &with_sub(&example, Some(sub))),
            "invalid_subject",
            "{sub}"
        );
    }
    let numeric = example.sign(
        "ES256",
        &json!({"sub": 1, "aud": AUDIENCE, "exp": NOW + 60}),
    );
    assert_eq!(reason(&verifier, &numeric), "invalid_claim");
    // A trust domain without a bundle.
    let stranger = with_sub(&example, Some("spiffe://stranger.org/web"));
    assert_eq!(reason(&verifier, &stranger), "unknown_trust_domain");
    // `sub` in other.org, signed by example.org's key under the `kid` other.org uses too:
    // only other.org's bundle is consulted, and its key does not verify.
    let crossed = with_sub(&example, Some("spiffe://other.org/web"));
    assert_eq!(reason(&verifier, &crossed), "bad_signature");
    let crossed_back = with_sub(&other, Some("spiffe://example.org/web"));
    assert_eq!(reason(&verifier, &crossed_back), "bad_signature");
    // Each trust domain's own tokens verify.
    assert!(
        verifier
            .verify(&with_sub(&other, Some("spiffe://other.org/web")))
            .is_ok()
    );
    // A verifier with only example.org's bundle refuses other.org outright.
    let only_example = crate::authority::verifier(&[&example]);
    let theirs = with_sub(&other, Some("spiffe://other.org/web"));
    assert_eq!(reason(&only_example, &theirs), "unknown_trust_domain");
}

#[test]
fn conformance_63_exp_and_aud_are_required_and_aud_must_name_this_service() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let without = |name: &str| {
        let mut claims = example.claims("/web");
        claims.as_object_mut().unwrap().remove(name);
        example.sign("ES256", &claims)
    };
    let missing = verifier.verify(&without("exp")).unwrap_err();
    assert_eq!(missing.to_string(), "JWT-SVID claim `exp` is missing");
    let missing = verifier.verify(&without("aud")).unwrap_err();
    assert_eq!(missing.to_string(), "JWT-SVID claim `aud` is missing");
    let with_aud = |aud: serde_json::Value| {
        let mut claims = example.claims("/web");
        claims["aud"] = aud;
        example.sign("ES256", &claims)
    };
    assert!(verifier.verify(&with_aud(json!(AUDIENCE))).is_ok());
    assert!(
        verifier
            .verify(&with_aud(json!(["other", AUDIENCE])))
            .is_ok()
    );
    for aud in [
        json!("spiffe://example.org/other-api"),
        json!(["other"]),
        json!([]),
        json!("SPIFFE://example.org/orders-api"),
    ] {
        assert_eq!(
            reason(&verifier, &with_aud(aud.clone())),
            "audience",
            "{aud}"
        );
    }
    assert_eq!(reason(&verifier, &with_aud(json!(7))), "invalid_claim");
    // An empty expected-audience list is a configuration error, not "any audience".
    let unset = JwtSvidVerifier::builder(BundleSet::new())
        .build()
        .unwrap_err();
    assert_eq!(unset, JwtSvidBuilderError::AudienceUnset);
    let none: [&str; 0] = [];
    let empty_list = JwtSvidVerifier::builder(BundleSet::new())
        .audiences(none)
        .build();
    assert_eq!(empty_list.unwrap_err().reason(), "audience_unset");
    let blank = JwtSvidVerifier::builder(BundleSet::new())
        .audience("")
        .build();
    assert_eq!(blank.unwrap_err(), JwtSvidBuilderError::EmptyAudience);
}

#[test]
fn conformance_64_leeway_for_exp_nbf_and_iat_defaults_to_60_seconds() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let with = |name: &str, value: i64| {
        let mut claims = example.claims("/web");
        claims[name] = value.into();
        example.sign("ES256", &claims)
    };
    // `exp`: the current time must be before `exp` + 60 s.
    assert!(verifier.verify(&with("exp", NOW - 59)).is_ok());
    assert_eq!(reason(&verifier, &with("exp", NOW - 60)), "expired");
    // `nbf` up to 60 s ahead is tolerated, not more.
    assert!(verifier.verify(&with("nbf", NOW + 60)).is_ok());
    assert_eq!(reason(&verifier, &with("nbf", NOW + 61)), "not_yet_valid");
    // `iat` likewise.
    assert!(verifier.verify(&with("iat", NOW + 60)).is_ok());
    assert_eq!(
        reason(&verifier, &with("iat", NOW + 61)),
        "issued_in_future"
    );
    for name in ["exp", "nbf", "iat"] {
        let mut claims = example.claims("/web");
        claims[name] = json!("1800000000");
        let token = example.sign("ES256", &claims);
        assert_eq!(reason(&verifier, &token), "invalid_claim", "{name}");
    }
    // The leeway is configurable; with none, `exp == now` is expired.
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(NOW));
    let strict = JwtSvidVerifier::builder(BundleSet::from_bundles([example.bundle()]).unwrap())
        .audience(AUDIENCE)
        .leeway(Duration::ZERO)
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(reason(&strict, &with("exp", NOW)), "expired");
    assert!(strict.verify(&with("exp", NOW + 1)).is_ok());
    // Later, the same token expires under the default verifier too.
    let later = verifier_at(&[&example], NOW + 360);
    assert_eq!(reason(&later, &example.svid("/web")), "expired");
}

#[test]
fn general_jws_rules_hold_for_jwt_svids() {
    let example = Authority::new("example.org", "k1");
    let verifier = verifier(&[&example]);
    let payload = example.claims("/web").to_string();
    let sign = |header: &str| example.sign_raw("ES256", header, &payload);
    // go-spiffe refuses JWT-SVIDs without `kid` (CONFORMANCE 17).
    assert_eq!(
        reason(&verifier, &sign(r#"{"alg":"ES256"}"#)),
        "missing_key_id"
    );
    // `kid` is an opaque lookup string.
    assert_eq!(
        reason(&verifier, &sign(r#"{"alg":"ES256","kid":"../k1"}"#)),
        "unknown_key"
    );
    // `crit` (11), duplicate members (10), nested tokens.
    assert_eq!(
        reason(
            &verifier,
            &sign(r#"{"alg":"ES256","kid":"k1","crit":["exp"]}"#)
        ),
        "unsupported_crit"
    );
    assert_eq!(
        reason(&verifier, &sign(r#"{"alg":"ES256","kid":"k1","kid":"k2"}"#)),
        "malformed"
    );
    assert_eq!(
        reason(
            &verifier,
            &sign(r#"{"alg":"ES256","kid":"k1","cty":"JWT"}"#)
        ),
        "malformed"
    );
    let duplicate_sub = example.sign_raw(
        "ES256",
        r#"{"alg":"ES256","kid":"k1"}"#,
        r#"{"sub":"spiffe://example.org/a","sub":"spiffe://example.org/b","aud":"x","exp":1}"#,
    );
    assert_eq!(reason(&verifier, &duplicate_sub), "malformed");
    // Shape (7), encoding (8), empty signature, a flipped signature bit (12).
    let good = example.svid("/web");
    let (input, signature) = good.rsplit_once('.').unwrap();
    assert_eq!(reason(&verifier, &format!("{input}.")), "malformed");
    assert_eq!(reason(&verifier, &format!("{good}.x")), "malformed");
    assert_eq!(
        reason(&verifier, &format!("{input}.{signature}=")),
        "malformed"
    );
    let mut flipped = signature.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{input}.{}", String::from_utf8(flipped).unwrap());
    assert_eq!(reason(&verifier, &flipped), "bad_signature");
    // A DER-encoded ECDSA signature is not a JWS one (6).
    let der = assemble(r#"{"alg":"ES256","kid":"k1"}"#, &payload, &[0x30; 72]);
    assert_eq!(reason(&verifier, &der), "bad_signature");
    // Size is bounded before decoding (32).
    let huge = format!("{input}.{}", "A".repeat(20_000));
    assert_eq!(reason(&verifier, &huge), "too_large");
}

/// Every SPIFFE ID case of `spiffe/spiffe.json` (go-spiffe's and the SPIFFE ID spec's) as a
/// JWT-SVID `sub`, each signed by a key its trust domain's bundle holds: valid IDs with a
/// path verify as exactly that ID, everything else is `invalid_subject`.
#[test]
fn go_spiffe_id_cases_decide_a_jwt_svid_subject() {
    let authority = Authority::new("example.org", "k1");
    let vectors = crate::support::read_json("spiffe/spiffe.json");
    let cases = vectors["spiffe_id_cases"].as_array().unwrap();
    let bundles = cases
        .iter()
        .filter_map(|case| case["trust_domain"].as_str())
        .map(|td| {
            let td = TrustDomain::new(td).unwrap();
            let json = authority.bundle_json(1);
            meshguard::token::jwt_svid::SpiffeBundle::from_json(td, json.as_bytes()).unwrap()
        });
    let verifier = JwtSvidVerifier::builder(BundleSet::from_bundles(bundles).unwrap())
        .audience(AUDIENCE)
        .clock(Arc::new(FixedClock(NOW)))
        .build()
        .unwrap();
    let (mut verified, mut refused) = (0, 0);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let mut claims = authority.claims("/x");
        claims["sub"] = input.into();
        let outcome = verifier.verify(&authority.sign("ES256", &claims));
        let workload = case["expected"] == "valid" && case["path"] != "";
        match outcome {
            Ok(svid) if workload => {
                assert_eq!(svid.spiffe_id().as_str(), input);
                verified += 1;
            }
            Err(error) if !workload => {
                assert_eq!(error.reason(), "invalid_subject", "{input:?}");
                refused += 1;
            }
            other => panic!("{input:?}: {:?}", other.map(|s| s.spiffe_id().clone())),
        }
    }
    // 116 valid IDs with a path; the one without (`spiffe://trustdomain`) names no workload.
    assert_eq!((verified, refused), (116, 445));
}
