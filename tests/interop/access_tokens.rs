//! JWT access tokens (RFC 9068) that oidc-provider issues through the client_credentials
//! grant, verified through OpenID Connect discovery of the running IdP: each signing
//! algorithm it offers, both ways of client authentication, and the refusals (another
//! audience, a tampered token, an expired one, an opaque one).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshguard::token::remote::{RemoteJwks, Startup};
use meshguard::token::{Clock, Issuer, SystemClock, Verifier};
use serde_json::Value;

use crate::idp_support::{Idp, IdpClient};
use crate::remote_support::ManualClock;

/// The resource (RFC 8707) whose tokens the IdP signs as `name` says (see tests/idp/idp.mjs).
fn resource(name: &str) -> String {
    format!("https://api.test/{name}")
}

/// A verifier for the IdP's tokens meant for `audience`, under the RFC 9068 profile, with
/// keys found through discovery and fetched before it is returned.
async fn verifier(idp: &Idp, audience: &str, clock: Arc<dyn Clock>) -> Verifier {
    verifier_with(idp, clock, |issuer| {
        issuer.audience(audience).access_token_profile()
    })
    .await
}

async fn verifier_with(
    idp: &Idp,
    clock: Arc<dyn Clock>,
    rules: impl FnOnce(Issuer) -> Issuer,
) -> Verifier {
    let keys = RemoteJwks::discover(idp.issuer()).startup(Startup::FailFast);
    Verifier::builder()
        .issuer(rules(Issuer::remote(idp.issuer(), keys)))
        .clock(clock)
        .build_async()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "verifier for {}: {e}; IdP stderr: {}",
                idp.issuer(),
                idp.stderr()
            )
        })
}

/// A token for the resource `name`, signed with `alg`, verifies with every claim RFC 9068
/// asks for and the header oidc-provider writes (`typ: at+jwt`, the key's `kid`).
async fn verifies_through_discovery(name: &str, alg: &str) {
    let Some(idp) = Idp::shared() else { return };
    let resource = resource(name);
    let issued = idp.access_token(IdpClient::Basic, &resource).await;
    assert_eq!(issued.token_type, "Bearer");
    let verifier = verifier(&idp, &resource, Arc::new(SystemClock)).await;

    let token = verifier
        .verify_async(&issued.access_token)
        .await
        .unwrap_or_else(|e| panic!("{alg} token refused: {e}"));
    assert_eq!(token.header().algorithm().unwrap().as_str(), alg);
    let kid = format!("{}-key", alg.to_lowercase());
    assert_eq!(token.header().key_id(), Some(kid.as_str()));
    assert_eq!(token.header().token_type(), Some("at+jwt"));
    assert_eq!(token.issuer(), Some(idp.issuer()));
    assert_eq!(token.audiences(), [resource]);
    assert_eq!(token.client_id(), Some("svc-basic"));
    assert_eq!(token.subject(), Some("svc-basic"));
    assert!(token.jwt_id().is_some());
    assert!(token.has_scope("read"));
    assert!(!token.has_scope("write"), "only `read` was asked for");
}

#[tokio::test]
async fn interop_rs256_access_token_verifies_through_discovery() {
    verifies_through_discovery("rs256", "RS256").await;
}

#[tokio::test]
async fn interop_ps256_access_token_verifies_through_discovery() {
    verifies_through_discovery("ps256", "PS256").await;
}

#[tokio::test]
async fn interop_es256_access_token_verifies_through_discovery() {
    verifies_through_discovery("es256", "ES256").await;
}

#[tokio::test]
async fn interop_es384_access_token_verifies_through_discovery() {
    verifies_through_discovery("es384", "ES384").await;
}

#[tokio::test]
async fn interop_eddsa_access_token_verifies_through_discovery() {
    verifies_through_discovery("eddsa", "EdDSA").await;
}

/// oidc-provider signs with the fully-specified name `alg: Ed25519` (RFC 9864) when asked
/// to, from a key whose JWK says `alg: Ed25519`: that key is used, not skipped.
#[tokio::test]
async fn interop_ed25519_access_token_verifies_through_discovery() {
    verifies_through_discovery("ed25519", "Ed25519").await;
}

/// oidc-provider writes `typ: at+jwt`; RFC 7515 §4.1.9 makes it the same type as
/// `application/at+jwt`, so requiring the long form accepts it too.
#[tokio::test]
async fn interop_at_jwt_type_satisfies_a_required_application_at_jwt() {
    let Some(idp) = Idp::shared() else { return };
    let resource = resource("es256");
    let issued = idp.access_token(IdpClient::Basic, &resource).await;
    let verifier = verifier_with(&idp, Arc::new(SystemClock), |issuer| {
        issuer
            .audience(&resource)
            .require_token_type(["application/at+jwt"])
    })
    .await;
    let token = verifier.verify_async(&issued.access_token).await.unwrap();
    assert_eq!(token.header().token_type(), Some("at+jwt"));
}

#[tokio::test]
async fn interop_client_secret_post_token_verifies() {
    let Some(idp) = Idp::shared() else { return };
    let resource = resource("es256");
    let issued = idp.access_token(IdpClient::Post, &resource).await;
    let verifier = verifier(&idp, &resource, Arc::new(SystemClock)).await;
    let token = verifier.verify_async(&issued.access_token).await.unwrap();
    assert_eq!(token.client_id(), Some("svc-post"));
}

/// A token the IdP minted for another resource server is refused here, though its
/// signature is the IdP's own (RFC 8725 §3.9).
#[tokio::test]
async fn interop_token_for_another_resource_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let issued = idp.access_token(IdpClient::Basic, &resource("es384")).await;
    let verifier = verifier(&idp, &resource("es256"), Arc::new(SystemClock)).await;
    let error = verifier
        .verify_async(&issued.access_token)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "audience");
}

/// A genuine token is accepted (and so cached); each altered copy of it is refused: a
/// widened scope, a flipped signature bit, and the header claiming HMAC with the public key.
#[tokio::test]
async fn interop_tampered_token_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let resource = resource("es256");
    let issued = idp.access_token(IdpClient::Basic, &resource).await;
    let verifier = verifier(&idp, &resource, Arc::new(SystemClock)).await;
    verifier.verify_async(&issued.access_token).await.unwrap();

    let parts: Vec<&str> = issued.access_token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        panic!("not a JWS: {}", issued.access_token)
    };

    let mut claims = decode(payload);
    claims["scope"] = "read write".into();
    let widened = format!("{header}.{}.{signature}", encode(&claims));

    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    let flipped = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&bytes));

    let mut fields = decode(header);
    fields["alg"] = "HS256".into();
    let confused = format!("{}.{payload}.{signature}", encode(&fields));

    for (what, token, reason) in [
        ("widened scope", widened, "bad_signature"),
        ("flipped signature bit", flipped, "bad_signature"),
        ("alg HS256", confused, "disallowed_algorithm"),
    ] {
        let error = verifier.verify_async(&token).await.unwrap_err();
        assert_eq!(error.reason(), reason, "{what}");
    }
}

/// A token from the short-lived resource (5 s) is accepted until its `exp` plus the
/// leeway and refused from then on, cached or not. The verifier's clock is moved rather
/// than waited for; it starts at the real time the IdP stamps its tokens with.
#[tokio::test]
async fn interop_expired_token_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let now = SystemClock.unix_seconds();
    let clock = ManualClock::at(now);
    let resource = resource("short");
    let issued = idp.access_token(IdpClient::Basic, &resource).await;
    assert_eq!(issued.expires_in, 5);
    let verifier = verifier(&idp, &resource, clock.clone()).await;

    let token = verifier.verify_async(&issued.access_token).await.unwrap();
    let exp = token.expires_at().unwrap();
    assert_eq!(exp - token.issued_at().unwrap(), 5);

    let leeway = i64::try_from(meshguard::token::DEFAULT_LEEWAY.as_secs()).unwrap();
    clock.advance(exp + leeway - 1 - now);
    verifier.verify_async(&issued.access_token).await.unwrap();
    clock.advance(1);
    let error = verifier
        .verify_async(&issued.access_token)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "expired");
}

/// An opaque token (the IdP's `opaque` resource) is not a JWS: an issuer that reads only
/// JWTs refuses it as malformed rather than guessing.
#[tokio::test]
async fn interop_opaque_token_is_refused_by_a_jwt_issuer() {
    let Some(idp) = Idp::shared() else { return };
    let resource = resource("opaque");
    let issued = idp.access_token(IdpClient::Basic, &resource).await;
    assert_eq!(issued.access_token.matches('.').count(), 0);
    let verifier = verifier(&idp, &resource, Arc::new(SystemClock)).await;
    let error = verifier
        .verify_async(&issued.access_token)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "malformed");
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}
