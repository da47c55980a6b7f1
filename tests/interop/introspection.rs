//! Opaque access tokens that oidc-provider issues for `https://api.test/opaque`, accepted by
//! asking its introspection endpoint (RFC 7662) with either way of client authentication,
//! and the refusals: an unknown token, another audience, a wrong client secret.

use meshguard::token::introspection::{ClientAuth, Introspection, Introspector};

use crate::idp_support::{Idp, IdpClient};

const OPAQUE: &str = "https://api.test/opaque";

fn introspector(idp: &Idp, auth: ClientAuth, audience: &str) -> Introspector {
    Introspection::new(idp.issuer(), idp.introspection_endpoint(), auth)
        .audience(audience)
        .build()
        .unwrap()
}

fn as_registered(idp: &Idp, client: IdpClient) -> ClientAuth {
    let (id, secret) = idp.credentials(client);
    match client {
        IdpClient::Post | IdpClient::Exchanger => ClientAuth::post(id, secret),
        IdpClient::Basic | IdpClient::Nonce | IdpClient::Introspector => {
            ClientAuth::basic(id, secret)
        }
    }
}

/// The resource server `rs` (client_secret_basic) introspects a token another client
/// obtained; the answer's claims become the token's.
#[tokio::test]
async fn interop_opaque_token_is_accepted_by_introspection_with_basic_auth() {
    let Some(idp) = Idp::shared() else { return };
    let issued = idp.access_token(IdpClient::Basic, OPAQUE).await;
    assert_eq!(
        issued.access_token.matches('.').count(),
        0,
        "the IdP issued a JWT, not an opaque token"
    );
    let rs = introspector(&idp, as_registered(&idp, IdpClient::Introspector), OPAQUE);
    let token = rs
        .introspect(&issued.access_token)
        .await
        .unwrap_or_else(|e| panic!("{e}; IdP stderr: {}", idp.stderr()));
    assert_eq!(token.issuer(), Some(idp.issuer()));
    assert_eq!(token.audiences(), [OPAQUE]);
    assert_eq!(token.client_id(), Some("svc-basic"));
    assert!(token.has_scope("read"));
    assert!(token.expires_at().is_some());
    assert_eq!(token.header().algorithm(), None);
}

/// A client authenticating with client_secret_post may introspect its own token.
#[tokio::test]
async fn interop_opaque_token_is_accepted_by_introspection_with_post_auth() {
    let Some(idp) = Idp::shared() else { return };
    let issued = idp.access_token(IdpClient::Post, OPAQUE).await;
    let own = introspector(&idp, as_registered(&idp, IdpClient::Post), OPAQUE);
    let token = own
        .introspect(&issued.access_token)
        .await
        .unwrap_or_else(|e| panic!("{e}; IdP stderr: {}", idp.stderr()));
    assert_eq!(token.client_id(), Some("svc-post"));
}

#[tokio::test]
async fn interop_unknown_opaque_token_is_inactive() {
    let Some(idp) = Idp::shared() else { return };
    let rs = introspector(&idp, as_registered(&idp, IdpClient::Introspector), OPAQUE);
    let refused = rs.introspect("an-opaque-token-this-idp-never-issued").await;
    assert_eq!(refused.unwrap_err().reason(), "inactive");
}

/// An active token for another audience is refused here, as a JWT for it would be.
#[tokio::test]
async fn interop_opaque_token_for_another_audience_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let issued = idp.access_token(IdpClient::Basic, OPAQUE).await;
    let elsewhere = introspector(
        &idp,
        as_registered(&idp, IdpClient::Introspector),
        "https://api.test/other",
    );
    let refused = elsewhere.introspect(&issued.access_token).await;
    assert_eq!(refused.unwrap_err().reason(), "audience");
}

/// The IdP refuses a wrong client secret (401): nothing vouched for the token, so it is
/// refused as unavailable, never as accepted.
#[tokio::test]
async fn interop_wrong_client_secret_fails_closed() {
    let Some(idp) = Idp::shared() else { return };
    let issued = idp.access_token(IdpClient::Basic, OPAQUE).await;
    let (id, _) = idp.credentials(IdpClient::Introspector);
    let wrong = introspector(&idp, ClientAuth::basic(id, "not-the-secret"), OPAQUE);
    let refused = wrong.introspect(&issued.access_token).await;
    assert_eq!(refused.unwrap_err().reason(), "introspection_unavailable");
}
