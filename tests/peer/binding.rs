//! Certificate-bound tokens (RFC 8705; CONFORMANCE 34–37), with tokens minted by
//! `token::TokenSigner` and verified by `token::Verifier`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, StatusCode};
use meshguard::peer::{
    BindingError, CertificateBinding, DirectPeer, PeerIdentity, XFCC_HEADER, XfccPolicy,
};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use peer_support::Ca;
use serde_json::{Value, json};

const SECRET: &[u8] = b"binding-test-secret-of-at-least-32-bytes";

fn token(cnf: Option<Value>) -> VerifiedToken {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": "https://idp.example",
        "aud": "api",
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
    });
    if let Some(cnf) = cnf {
        claims["cnf"] = cnf;
    }
    let jwt = TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap();
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(
                "https://idp.example",
                KeySet::hmac_secret("k1", SECRET).unwrap(),
            )
            .audience("api"),
        )
        .build()
        .unwrap();
    verifier.verify(&jwt).unwrap()
}

fn bound_to(x5t: &str) -> VerifiedToken {
    token(Some(json!({ "x5t#S256": x5t })))
}

fn client() -> PeerIdentity {
    let ca = Ca::new("example.org");
    PeerIdentity::from_der_chain(&[ca.svid("spiffe://example.org/client").der()]).unwrap()
}

// CONFORMANCE 34
#[test]
fn bound_token_matching_the_client_certificate_passes() {
    let client = client();
    let token = bound_to(client.x5t_s256());
    assert_eq!(token.certificate_thumbprint(), Some(client.x5t_s256()));
    for mode in [CertificateBinding::IfPresent, CertificateBinding::Required] {
        assert_eq!(mode.check(&token, Some(&client)), Ok(()), "{mode:?}");
    }
}

// CONFORMANCE 34, 35
#[test]
fn bound_token_with_another_certificate_is_a_401_mismatch() {
    let client = client();
    let other = self::client();
    let token = bound_to(other.x5t_s256());
    let err = CertificateBinding::IfPresent
        .check(&token, Some(&client))
        .unwrap_err();
    assert_eq!(err, BindingError::Mismatch);
    assert_eq!(err.reason(), "certificate_mismatch");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

// CONFORMANCE 34: exact comparison, no normalization of the encoding.
#[test]
fn thumbprint_in_another_encoding_does_not_match() {
    let client = client();
    let sha = client.sha256();
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    for wrong in [
        STANDARD.encode(sha),
        URL_SAFE.encode(sha),
        hex,
        client.x5t_s256().to_uppercase(),
        format!("{} ", client.x5t_s256()),
    ] {
        if wrong == client.x5t_s256() {
            continue;
        }
        assert_eq!(
            CertificateBinding::Required.check(&bound_to(&wrong), Some(&client)),
            Err(BindingError::Mismatch),
            "{wrong}"
        );
    }
    assert_eq!(URL_SAFE_NO_PAD.encode(sha), client.x5t_s256());
}

// CONFORMANCE 36
#[test]
fn bound_token_without_a_client_certificate_is_rejected() {
    let token = bound_to(client().x5t_s256());
    for mode in [CertificateBinding::IfPresent, CertificateBinding::Required] {
        let err = mode.check(&token, None).unwrap_err();
        assert_eq!(err, BindingError::MissingCertificate);
        assert_eq!(err.reason(), "certificate_required");
    }
}

#[test]
fn unbound_token_passes_unless_binding_is_required() {
    let token = token(None);
    let client = client();
    assert_eq!(
        CertificateBinding::IfPresent.check(&token, Some(&client)),
        Ok(())
    );
    assert_eq!(CertificateBinding::IfPresent.check(&token, None), Ok(()));
    assert_eq!(
        CertificateBinding::Required.check(&token, Some(&client)),
        Err(BindingError::Unbound)
    );
    assert_eq!(BindingError::Unbound.reason(), "token_not_bound");
}

#[test]
fn off_ignores_the_binding() {
    let token = bound_to("not-this-client");
    assert_eq!(CertificateBinding::Off.check(&token, None), Ok(()));
    assert_eq!(
        CertificateBinding::Off.check(&token, Some(&client())),
        Ok(())
    );
}

// CONFORMANCE 37
#[test]
fn xfcc_hash_is_converted_from_hex_before_comparing() {
    let ca = Ca::new("example.org");
    let der = ca.svid("spiffe://example.org/client").der();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        XFCC_HEADER,
        HeaderValue::from_str(&format!(
            "Hash=0000000000000000000000000000000000000000000000000000000000000000;\
             URI=spiffe://example.org/earlier-hop,\
             Hash={hex};URI=spiffe://example.org/client"
        ))
        .unwrap(),
    );
    let policy = XfccPolicy::builder().trust_loopback().build();
    let direct = DirectPeer::tcp("127.0.0.1:9".parse().unwrap(), None);
    let forwarded = policy.resolve(&direct, &headers).unwrap().unwrap();

    let good = bound_to(&URL_SAFE_NO_PAD.encode(digest.as_ref()));
    assert_eq!(
        CertificateBinding::Required.check(&good, Some(&forwarded)),
        Ok(())
    );
    // The hex text itself is not the thumbprint.
    assert_eq!(
        CertificateBinding::Required.check(&bound_to(&hex), Some(&forwarded)),
        Err(BindingError::Mismatch)
    );
    // Only the trusted (rightmost) element counts, not an earlier hop's Hash.
    let earlier = bound_to(&URL_SAFE_NO_PAD.encode([0u8; 32]));
    assert_eq!(
        CertificateBinding::Required.check(&earlier, Some(&forwarded)),
        Err(BindingError::Mismatch)
    );
}

// CONFORMANCE 36: a proxy that sanitized XFCC forwards no certificate.
#[test]
fn sanitized_xfcc_leaves_a_bound_token_without_certificate() {
    let policy = XfccPolicy::builder().trust_loopback().build();
    let direct = DirectPeer::tcp("127.0.0.1:9".parse().unwrap(), None);
    let forwarded = policy.resolve(&direct, &HeaderMap::new()).unwrap();
    assert_eq!(forwarded, None);
    let token = bound_to(client().x5t_s256());
    assert_eq!(
        CertificateBinding::IfPresent.check(&token, forwarded.as_ref()),
        Err(BindingError::MissingCertificate)
    );
}
