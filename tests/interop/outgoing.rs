//! Outgoing credentials from oidc-provider's token endpoint: client-credentials tokens with
//! both ways of client authentication, cached, and verified by meshguard through discovery;
//! the IdP's refusals typed; and an RFC 8693 token exchange (a grant tests/idp/idp.mjs
//! registers) of a verified inbound token for a token to another resource.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{Extensions, HeaderMap, HeaderValue};
use meshguard::outgoing::{ClientAuth, ClientCredentials, InboundBearer, TokenExchange};
use meshguard::token::remote::{RemoteJwks, Startup};
use meshguard::token::{Issuer, SystemClock, Verifier};

use crate::idp_support::{Idp, IdpClient};

const ES256: &str = "https://api.test/es256";
const RS256: &str = "https://api.test/rs256";

/// A verifier of the IdP's tokens for `audience`, keys found through discovery.
async fn verifier(idp: &Idp, audience: &str) -> Verifier {
    let keys = RemoteJwks::discover(idp.issuer()).startup(Startup::FailFast);
    Verifier::builder()
        .issuer(
            Issuer::remote(idp.issuer(), keys)
                .audience(audience)
                .access_token_profile(),
        )
        .clock(Arc::new(SystemClock))
        .build_async()
        .await
        .unwrap()
}

fn auth(idp: &Idp, client: IdpClient) -> ClientAuth {
    let (id, secret) = idp.credentials(client);
    match client {
        IdpClient::Post | IdpClient::Exchanger => ClientAuth::post(id, secret),
        _ => ClientAuth::basic(id, secret),
    }
}

fn bearer(header: &HeaderValue) -> &str {
    header.to_str().unwrap().strip_prefix("Bearer ").unwrap()
}

async fn client_credentials_verify(client: IdpClient, id: &str) {
    let Some(idp) = Idp::shared() else { return };
    let source = ClientCredentials::new(idp.token_endpoint(), auth(&idp, client))
        .resource(ES256)
        .scope("read")
        .build()
        .unwrap();
    let header = source.authorization_header().await.unwrap();
    let token = verifier(&idp, ES256)
        .await
        .verify_async(bearer(&header))
        .await
        .unwrap();
    assert_eq!(token.client_id(), Some(id));
    assert!(token.has_scope("read"));
    // Kept: the next request reuses it.
    assert_eq!(source.authorization_header().await.unwrap(), header);
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn interop_client_credentials_with_basic_authentication_verify() {
    client_credentials_verify(IdpClient::Basic, "svc-basic").await;
}

#[tokio::test]
async fn interop_client_credentials_with_post_authentication_verify() {
    client_credentials_verify(IdpClient::Post, "svc-post").await;
}

#[tokio::test]
async fn interop_refusals_of_the_idp_are_typed() {
    let Some(idp) = Idp::shared() else { return };
    let (id, _) = idp.credentials(IdpClient::Basic);
    let wrong_secret = ClientCredentials::new(idp.token_endpoint(), ClientAuth::basic(id, "no"))
        .resource(ES256)
        .build()
        .unwrap();
    let error = wrong_secret.authorization_header().await.unwrap_err();
    assert_eq!(error.reason(), "token_endpoint_refused");
    assert!(error.to_string().contains("`invalid_client`"), "{error}");
    let unknown_resource =
        ClientCredentials::new(idp.token_endpoint(), auth(&idp, IdpClient::Basic))
            .resource("https://api.test/nowhere")
            .build()
            .unwrap();
    let error = unknown_resource.authorization_header().await.unwrap_err();
    assert!(error.to_string().contains("`invalid_target`"), "{error}");
}

#[tokio::test]
async fn interop_token_exchange_trades_a_verified_inbound_token() {
    let Some(idp) = Idp::shared() else { return };
    // The inbound token: one the IdP issued for this service (ES256), verified as a guard
    // would, and taken from the request's `Authorization`.
    let subject = idp.access_token(IdpClient::Basic, ES256).await.access_token;
    let mut extensions = Extensions::new();
    extensions.insert(
        verifier(&idp, ES256)
            .await
            .verify_async(&subject)
            .await
            .unwrap(),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {subject}")).unwrap(),
    );
    let inbound = InboundBearer::from_parts(&headers, &extensions).unwrap();

    let exchanger = TokenExchange::new(idp.token_endpoint(), auth(&idp, IdpClient::Exchanger))
        .resource(RS256)
        .scope("read")
        .build()
        .unwrap();
    let header = exchanger.authorization_header(&inbound).await.unwrap();
    let exchanged = verifier(&idp, RS256)
        .await
        .verify_async(bearer(&header))
        .await
        .unwrap();
    assert_eq!(exchanged.audiences(), [RS256]);
    assert_eq!(exchanged.subject(), Some("svc-basic"));
    assert_eq!(
        exchanged.claim("act"),
        Some(&serde_json::json!({ "sub": "svc-exchange" }))
    );
    assert_eq!(
        exchanger.authorization_header(&inbound).await.unwrap(),
        header
    );
    assert_eq!(exchanger.fetches(), 1);

    // A client not registered for the grant is refused by the IdP.
    let not_allowed = TokenExchange::new(idp.token_endpoint(), auth(&idp, IdpClient::Basic))
        .resource(RS256)
        .build()
        .unwrap();
    let error = not_allowed
        .authorization_header(&inbound)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "token_endpoint_refused", "{error}");
}
