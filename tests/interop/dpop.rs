//! DPoP-bound access tokens (RFC 9449) from oidc-provider, with real proofs: a key made by
//! the test signs the proof of the token request, the IdP binds the token to that key
//! (`cnf.jkt`), and meshguard verifies the token with a fresh proof for a resource request,
//! as a plain function and behind the guard of a real axum service, and refuses the misuses:
//! the token presented as a bearer token, a proof by another key, the token request's proof
//! replayed at the resource, a resource proof replayed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshguard::guard::{GuardLayer, RouteRule};
use meshguard::token::dpop::DpopVerifier;
use meshguard::token::remote::{RemoteJwks, Startup};
use meshguard::token::{Clock, Issuer, SystemClock, VerifiedToken, Verifier};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::dpop_support::{ClientKey, jti};
use crate::idp_support::{Idp, IdpClient, Issued, http_client};

/// The resource (RFC 8707) the bound tokens are for; the IdP signs its tokens with ES256.
const RESOURCE: &str = "https://api.test/es256";
/// The resource request the proofs of the plain-function tests are made for.
const ORDERS: &str = "https://api.test/es256/orders/7";

fn now() -> i64 {
    SystemClock.unix_seconds()
}

/// A verifier for the IdP's tokens for [`RESOURCE`], with keys found through discovery.
async fn verifier(idp: &Idp) -> Verifier {
    let keys = RemoteJwks::discover(idp.issuer()).startup(Startup::FailFast);
    Verifier::builder()
        .issuer(
            Issuer::remote(idp.issuer(), keys)
                .audience(RESOURCE)
                .access_token_profile(),
        )
        .clock(Arc::new(SystemClock))
        .build_async()
        .await
        .unwrap_or_else(|e| panic!("verifier: {e}; IdP stderr: {}", idp.stderr()))
}

async fn dpop_verifier(idp: &Idp) -> DpopVerifier {
    DpopVerifier::builder(verifier(idp).await).build().unwrap()
}

/// The proof of a token request signed by `key`: `htm` POST, `htu` the token endpoint that
/// discovery names, and no `ath`, as there is no token yet (RFC 9449 §4.2).
async fn token_request_proof(idp: &Idp, key: &ClientKey) -> String {
    let discovery = idp.discovery().await;
    let endpoint = discovery["token_endpoint"].as_str().unwrap();
    let claims = json!({"jti": jti(), "htm": "POST", "htu": endpoint, "iat": now()});
    key.proof_with(&key.header(), &claims)
}

/// A token for [`RESOURCE`] that the IdP bound to `key`, and the proof it was asked with.
async fn bound_token(idp: &Idp, key: &ClientKey) -> (Issued, String) {
    let proof = token_request_proof(idp, key).await;
    let issued = idp
        .dpop_access_token(IdpClient::Basic, RESOURCE, &proof)
        .await;
    assert_eq!(issued.token_type, "DPoP");
    (issued, proof)
}

/// The token's claims, read without verification, to see what the IdP wrote.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `key` gets a token bound to it (the IdP's thumbprint equals the test's own), and the
/// token verifies with a fresh proof of a resource request signed by `key`.
async fn bound_token_verifies(key: &ClientKey) {
    let Some(idp) = Idp::shared() else { return };
    let (issued, _) = bound_token(&idp, key).await;
    let token = &issued.access_token;
    assert_eq!(claims_of(token)["cnf"], json!({"jkt": key.jkt}));

    let dpop = dpop_verifier(&idp).await;
    let proof = key.proof("GET", ORDERS, token, now());
    let verified = dpop
        .verify_async(token, &proof, "GET", ORDERS)
        .await
        .unwrap_or_else(|e| panic!("{} proof refused: {e}", key.alg));
    assert_eq!(verified.thumbprint(), key.jkt);
    assert_eq!(verified.token().client_id(), Some("svc-basic"));
    assert_eq!(verified.token().audiences(), [RESOURCE]);
    assert!(verified.token().has_scope("read"));
}

#[tokio::test]
async fn interop_dpop_bound_token_verifies_with_a_fresh_proof() {
    bound_token_verifies(&ClientKey::es256()).await;
}

/// An Ed25519 proof key named by the polymorphic `alg: EdDSA` (RFC 8037).
#[tokio::test]
async fn interop_dpop_bound_token_verifies_with_an_eddsa_proof() {
    bound_token_verifies(&ClientKey::ed25519()).await;
}

/// An Ed25519 proof key named by the fully-specified `alg: Ed25519` (RFC 9864), both in
/// the proof of the token request and in the resource request's.
#[tokio::test]
async fn interop_dpop_bound_token_verifies_with_an_ed25519_proof() {
    let mut key = ClientKey::ed25519();
    key.alg = "Ed25519";
    bound_token_verifies(&key).await;
}

/// The bound token sent as a bearer token: the verifier does not know the sender holds the
/// key, so it refuses rather than ignore the binding (RFC 9449 §7.1).
#[tokio::test]
async fn interop_dpop_bound_token_presented_as_bearer_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let (issued, _) = bound_token(&idp, &ClientKey::es256()).await;
    let error = verifier(&idp)
        .await
        .verify_async(&issued.access_token)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "unsupported_confirmation");
}

/// A well-formed, fresh proof for the right request, signed by a key other than the one the
/// token is bound to.
#[tokio::test]
async fn interop_dpop_proof_by_another_key_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let (issued, _) = bound_token(&idp, &ClientKey::es256()).await;
    let token = &issued.access_token;
    let other = ClientKey::es256();
    let proof = other.proof("GET", ORDERS, token, now());
    let error = dpop_verifier(&idp)
        .await
        .verify_async(token, &proof, "GET", ORDERS)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "dpop_key_mismatch");
}

/// The proof the token was requested with, captured and replayed at the resource: it has
/// no `ath` binding it to a token, which meshguard checks before `htm` and `htu`, so it is
/// refused for that at the resource's method and URI and at the token endpoint's alike.
#[tokio::test]
async fn interop_dpop_token_request_proof_replayed_at_the_resource_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let (issued, proof) = bound_token(&idp, &ClientKey::es256()).await;
    let token = &issued.access_token;
    let dpop = dpop_verifier(&idp).await;
    let endpoint = idp.token_endpoint();
    for (method, uri) in [("GET", ORDERS), ("POST", endpoint.as_str())] {
        let error = dpop
            .verify_async(token, &proof, method, uri)
            .await
            .unwrap_err();
        assert_eq!(
            (error.reason(), error.to_string().as_str()),
            ("dpop_missing_claim", "DPoP proof lacks the `ath` claim"),
            "{method} {uri}"
        );
    }
}

/// A proof that does carry the token's `ath` but names the token endpoint's method and URI
/// (as a client confusing the two requests would make it) is refused at the resource.
#[tokio::test]
async fn interop_dpop_proof_for_the_token_endpoint_is_refused_at_the_resource() {
    let Some(idp) = Idp::shared() else { return };
    let key = ClientKey::es256();
    let (issued, _) = bound_token(&idp, &key).await;
    let token = &issued.access_token;
    let dpop = dpop_verifier(&idp).await;
    let endpoint = idp.token_endpoint();
    for (method, uri, reason) in [
        ("GET", ORDERS, "dpop_method_mismatch"),
        ("POST", ORDERS, "dpop_uri_mismatch"),
    ] {
        let proof = key.proof("POST", &endpoint, token, now());
        let error = dpop
            .verify_async(token, &proof, method, uri)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), reason, "{method} {uri}");
    }
}

/// A resource proof is good once: the same proof again is refused by the replay cache.
#[tokio::test]
async fn interop_dpop_resource_proof_replayed_is_refused() {
    let Some(idp) = Idp::shared() else { return };
    let key = ClientKey::es256();
    let (issued, _) = bound_token(&idp, &key).await;
    let token = &issued.access_token;
    let dpop = dpop_verifier(&idp).await;
    let proof = key.proof("GET", ORDERS, token, now());
    dpop.verify_async(token, &proof, "GET", ORDERS)
        .await
        .unwrap();
    let error = dpop
        .verify_async(token, &proof, "GET", ORDERS)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "dpop_replayed");
}

/// The IdP's nonce round trip (RFC 9449 §8) for the one client it holds to nonces: a token
/// request whose proof has no nonce is answered `use_dpop_nonce` with a `DPoP-Nonce`; the
/// request again with a proof carrying that nonce gets the bound token, which verifies.
#[tokio::test]
async fn interop_dpop_nonce_round_trip_at_the_token_endpoint() {
    let Some(idp) = Idp::shared() else { return };
    let key = ClientKey::es256();
    let endpoint = idp.discovery().await["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let request_proof = |nonce: Option<&str>| {
        let mut claims = json!({"jti": jti(), "htm": "POST", "htu": endpoint, "iat": now()});
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        key.proof_with(&key.header(), &claims)
    };

    let first = request_proof(None);
    let (status, body, headers) = idp
        .token_request(IdpClient::Nonce, RESOURCE, &[("dpop", &first)])
        .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("use_dpop_nonce")),
        "{body}"
    );
    let nonce = headers
        .get("dpop-nonce")
        .unwrap_or_else(|| panic!("no DPoP-Nonce in {headers:?}"))
        .to_str()
        .unwrap()
        .to_owned();

    let retry = request_proof(Some(&nonce));
    let issued = idp
        .dpop_access_token(IdpClient::Nonce, RESOURCE, &retry)
        .await;
    assert_eq!(issued.token_type, "DPoP");
    let token = &issued.access_token;
    let proof = key.proof("GET", ORDERS, token, now());
    let verified = dpop_verifier(&idp)
        .await
        .verify_async(token, &proof, "GET", ORDERS)
        .await
        .unwrap();
    assert_eq!(verified.thumbprint(), key.jkt);
    assert_eq!(verified.token().client_id(), Some("svc-nonce"));
}

async fn whoami(token: VerifiedToken) -> String {
    token.client_id().unwrap_or("?").to_owned()
}

/// A real axum service whose guard takes the IdP's DPoP-bound tokens and requires DPoP on
/// `/orders/{id}`; its public origin is the address it listens on.
async fn serve(idp: &Idp) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let origin = format!("http://{address}");
    let dpop = DpopVerifier::builder(verifier(idp).await)
        .public_origin(&origin)
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .realm("orders")
        .dpop(dpop)
        .route("/orders/{id}", RouteRule::new().require_dpop())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(whoami))
        .layer(guard);
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// GET `url` with `authorization` and a `DPoP` header if given: the status, the
/// `WWW-Authenticate` value and the body.
async fn call(url: &str, authorization: &str, proof: Option<&str>) -> (u16, String, String) {
    let mut request = http_client()
        .get(url)
        .header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
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

/// End to end: reqwest sends the IdP's bound token with a proof for the service's URL and
/// is admitted; the same token as a bearer token, or with the token request's proof, gets
/// a DPoP challenge.
#[tokio::test]
async fn interop_dpop_axum_service_admits_a_bound_token_with_its_proof() {
    let Some(idp) = Idp::shared() else { return };
    let origin = serve(&idp).await;
    let key = ClientKey::es256();
    let (issued, token_request_proof) = bound_token(&idp, &key).await;
    let token = &issued.access_token;
    let url = format!("{origin}/orders/7");

    let proof = key.proof("GET", &url, token, now());
    let (status, challenge, body) = call(&url, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!((status, body.as_str()), (200, "svc-basic"), "{challenge}");

    let (status, challenge, _) = call(&url, &format!("Bearer {token}"), None).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP "), "{challenge}");

    let (status, challenge, _) =
        call(&url, &format!("DPoP {token}"), Some(&token_request_proof)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
}
