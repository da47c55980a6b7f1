//! A real axum service behind meshguard's `AuthenticationLayer`, called with tokens the IdP
//! issued: what a deployment does end to end, over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use meshguard::token::remote::{RemoteJwks, Startup};
use meshguard::token::{AuthenticationLayer, Issuer, SystemClock, VerifiedToken, Verifier};
use tokio::net::TcpListener;

use crate::idp_support::{Idp, IdpClient, http_client};

const RESOURCE: &str = "https://api.test/es256";

/// Says who called, from the verified token the layer put in the request.
async fn whoami(Extension(token): Extension<VerifiedToken>) -> String {
    format!(
        "{} {}",
        token.client_id().unwrap_or("?"),
        token.has_scope("read")
    )
}

/// The service for [`RESOURCE`], trusting the IdP through discovery.
async fn serve(idp: &Idp) -> SocketAddr {
    let keys = RemoteJwks::discover(idp.issuer()).startup(Startup::FailFast);
    let verifier = Verifier::builder()
        .issuer(
            Issuer::remote(idp.issuer(), keys)
                .audience(RESOURCE)
                .access_token_profile(),
        )
        .clock(Arc::new(SystemClock))
        .build_async()
        .await
        .unwrap();
    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthenticationLayer::new(verifier));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// GET `/whoami`, with `token` as a bearer credential if given: the status, the
/// `WWW-Authenticate` value and the body.
async fn call(addr: SocketAddr, token: Option<&str>) -> (u16, String, String) {
    let mut request = http_client().get(format!("http://{addr}/whoami"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.text().await.unwrap())
}

#[tokio::test]
async fn interop_axum_service_accepts_the_idp_token_for_it_and_challenges_others() {
    let Some(idp) = Idp::shared() else { return };
    let addr = serve(&idp).await;

    let mine = idp.access_token(IdpClient::Basic, RESOURCE).await;
    let (status, _, body) = call(addr, Some(&mine.access_token)).await;
    assert_eq!((status, body.as_str()), (200, "svc-basic true"));

    let theirs = idp
        .access_token(IdpClient::Post, "https://api.test/es384")
        .await;
    let (status, challenge, _) = call(addr, Some(&theirs.access_token)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );

    let (status, challenge, _) = call(addr, None).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "{challenge}"
    );
}
