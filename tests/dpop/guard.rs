//! The guard with DPoP in front of a real axum server on 127.0.0.1, called by a real reqwest
//! client sending `Authorization: DPoP` and `DPoP` headers with proofs signed at test time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use meshguard::guard::{GuardBuilderError, GuardLayer, RouteRule};
use meshguard::token::dpop::{DpopVerifier, DpopVerifierBuilder};
use meshguard::token::{SystemClock, VerifiedToken};
use serde_json::json;
use tokio::net::TcpListener;

use crate::dpop_support::{ClientKey, Idp, claims};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn whoami(token: VerifiedToken) -> String {
    token.subject().unwrap_or("?").to_owned()
}

/// A server whose guard takes bearer tokens, and DPoP ones configured by `configure`; `GET
/// /orders/{id}` and `POST /orders` require DPoP, `GET /catalog` does not.
async fn serve(
    idp: &Idp,
    configure: impl FnOnce(DpopVerifierBuilder) -> DpopVerifierBuilder,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let origin = format!("http://{address}");
    let clock = Arc::new(SystemClock);
    let dpop = configure(idp.dpop(clock.clone()).public_origin(&origin))
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .realm("orders")
        .tokens(idp.verifier(clock))
        .dpop(dpop)
        .route("/orders/{id}", RouteRule::new().require_dpop())
        .route("POST /orders", RouteRule::new().require_dpop())
        .build()
        .unwrap();
    spawn(listener, guard);
    origin
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    (listener, format!("http://{address}"))
}

fn spawn(listener: TcpListener, guard: GuardLayer) {
    let app = Router::new()
        .route("/orders/{id}", get(whoami))
        .route("/orders", axum::routing::post(whoami))
        .route("/catalog", get(whoami))
        .layer(guard);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

struct Answer {
    status: StatusCode,
    challenges: Vec<String>,
    nonce: Option<String>,
    body: String,
}

async fn send(
    method: reqwest::Method,
    url: &str,
    authorization: &str,
    proof: Option<&str>,
) -> Answer {
    let mut request = client()
        .request(method, url)
        .header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    Answer {
        status,
        challenges: headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect(),
        nonce: headers
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.text().await.unwrap(),
    }
}

async fn get_dpop(url: &str, token: &str, proof: &str) -> Answer {
    send(
        reqwest::Method::GET,
        url,
        &format!("DPoP {token}"),
        Some(proof),
    )
    .await
}

/// The `error` of the single challenge, which must be a DPoP one naming the algorithms.
fn dpop_error(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.challenges.len(), 1, "{:?}", answer.challenges);
    let challenge = &answer.challenges[0];
    assert!(
        challenge.starts_with("DPoP realm=\"orders\", algs=\"RS256"),
        "{challenge}"
    );
    assert!(challenge.contains("ES256"), "{challenge}");
    assert!(challenge.contains("EdDSA"), "{challenge}");
    challenge
        .split("error=\"")
        .nth(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn dpop_requests_of_each_key_kind_are_admitted() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    for key in [ClientKey::es256(), ClientKey::ed25519(), ClientKey::ps256()] {
        let token = idp.token("alice", now() + 300, Some(&key.jkt));
        let url = format!("{origin}/orders/42");
        // The query is not part of `htu`.
        let proof = key.proof("GET", &url, &token, now());
        let answer = get_dpop(&format!("{url}?page=2"), &token, &proof).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {:?}",
            key.alg,
            answer.challenges
        );
        assert_eq!(answer.body, "alice");
        let post = key.proof("POST", &format!("{origin}/orders"), &token, now());
        let answer = send(
            reqwest::Method::POST,
            &format!("{origin}/orders"),
            &format!("DPoP {token}"),
            Some(&post),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", key.alg);
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/42");
    let proof = key.proof("GET", &url, &token, now());
    assert_eq!(get_dpop(&url, &token, &proof).await.status, StatusCode::OK);
    let again = get_dpop(&url, &token, &proof).await;
    assert_eq!(dpop_error(&again), "invalid_dpop_proof");
}

#[tokio::test]
async fn proofs_for_another_method_uri_or_time_are_refused() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/42");
    let cases = [
        key.proof("POST", &url, &token, now()),
        key.proof("GET", &format!("{origin}/orders/43"), &token, now()),
        key.proof(
            "GET",
            &format!("https://{}/orders/42", &origin[7..]),
            &token,
            now(),
        ),
        key.proof("GET", "http://other.example/orders/42", &token, now()),
        key.proof("GET", &url, &token, now() - 600),
        key.proof("GET", &url, &token, now() + 600),
    ];
    for proof in cases {
        let answer = get_dpop(&url, &token, &proof).await;
        assert_eq!(dpop_error(&answer), "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn a_proof_for_another_token_or_key_is_refused() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/42");
    // `ath` of another token.
    let other_token = idp.token("bob", now() + 300, Some(&key.jkt));
    let proof = key.proof("GET", &url, &other_token, now());
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &proof).await),
        "invalid_dpop_proof"
    );
    // A valid proof by a key the token is not bound to.
    let thief = ClientKey::es256();
    let proof = thief.proof("GET", &url, &token, now());
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &proof).await),
        "invalid_token"
    );
    // A private key in the header.
    let mut header = key.header();
    header["jwk"]["d"] = json!("AAAA");
    let proof = key.proof_with(&header, &claims("GET", &url, &token, now()));
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &proof).await),
        "invalid_dpop_proof"
    );
}

#[tokio::test]
async fn hs256_and_none_proofs_are_refused() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/42");
    let body = crate::support::b64(claims("GET", &url, &token, now()).to_string());
    let secret = b"a-shared-secret-of-at-least-32-bytes!!";
    let hs_header = crate::support::b64(
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": crate::support::b64(secret)}})
            .to_string(),
    );
    let input = format!("{hs_header}.{body}");
    let hs256 = format!(
        "{input}.{}",
        crate::support::b64(crate::support::hs256(secret, &input))
    );
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &hs256).await),
        "invalid_dpop_proof"
    );
    let mut none_header = key.header();
    none_header["alg"] = json!("none");
    let none = format!("{}.{body}.", crate::support::b64(none_header.to_string()));
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &none).await),
        "invalid_dpop_proof"
    );
}

#[tokio::test]
async fn bearer_presentations_of_bound_tokens_and_on_dpop_routes_are_refused() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b).await;
    let key = ClientKey::es256();
    let bound = idp.token("alice", now() + 300, Some(&key.jkt));
    let plain = idp.token("bob", now() + 300, None);
    // A DPoP-bound token sent as Bearer, where bearer tokens are accepted.
    let answer = send(
        reqwest::Method::GET,
        &format!("{origin}/catalog"),
        &format!("Bearer {bound}"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges,
        [
            r#"Bearer realm="orders", error="invalid_token", error_description="the token is invalid""#,
            r#"DPoP realm="orders", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519""#,
        ]
    );
    // A plain bearer token where bearer tokens are accepted.
    let answer = send(
        reqwest::Method::GET,
        &format!("{origin}/catalog"),
        &format!("Bearer {plain}"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "bob");
    // Any bearer token on a route that requires DPoP; no credential at all.
    for token in [&bound, &plain] {
        let answer = send(
            reqwest::Method::GET,
            &format!("{origin}/orders/1"),
            &format!("Bearer {token}"),
            None,
        )
        .await;
        assert_eq!(dpop_error(&answer), "invalid_token");
    }
    let answer = client()
        .get(format!("{origin}/orders/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let challenge = answer.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("DPoP realm=\"orders\", algs="),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "{challenge}");
    // `Authorization: DPoP` without a proof, and with two.
    let proof = key.proof("GET", &format!("{origin}/orders/1"), &bound, now());
    let answer = send(
        reqwest::Method::GET,
        &format!("{origin}/orders/1"),
        &format!("DPoP {bound}"),
        None,
    )
    .await;
    assert_eq!(dpop_error(&answer), "invalid_dpop_proof");
    let answer = client()
        .get(format!("{origin}/orders/1"))
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", &proof)
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_nonce_flow_asks_once_then_admits() {
    let idp = Idp::new();
    let origin = serve(&idp, |b| b.require_nonce(Duration::from_secs(300))).await;
    let key = ClientKey::ed25519();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/7");
    let first = get_dpop(&url, &token, &key.proof("GET", &url, &token, now())).await;
    assert_eq!(dpop_error(&first), "use_dpop_nonce");
    let nonce = first.nonce.clone().expect("a DPoP-Nonce header");
    let mut body = claims("GET", &url, &token, now());
    body["nonce"] = json!(nonce);
    let retry = get_dpop(&url, &token, &key.proof_with(&key.header(), &body)).await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.challenges);
    assert_eq!(retry.body, "alice");
}

#[tokio::test]
async fn a_guard_with_dpop_routes_needs_a_dpop_verifier_with_an_origin() {
    let idp = Idp::new();
    let clock = Arc::new(SystemClock);
    let without_origin = DpopVerifier::builder(idp.verifier(clock.clone()))
        .build()
        .unwrap();
    let refused = GuardLayer::builder()
        .dpop(without_origin)
        .build()
        .unwrap_err();
    assert_eq!(refused, GuardBuilderError::DpopOrigin);
    let refused = GuardLayer::builder()
        .tokens(idp.verifier(clock))
        .route("/x", RouteRule::new().require_dpop())
        .build()
        .unwrap_err();
    assert_eq!(refused, GuardBuilderError::DpopOrigin);
}

#[tokio::test]
async fn a_dpop_request_waits_for_the_remote_key_source_of_its_token() {
    use crate::remote_support::{AUDIENCE, EXP, JwksServer, TestKey, jwks};
    use meshguard::token::remote::RemoteJwks;
    use meshguard::token::{Issuer, Verifier};
    let idp = TestKey::es256("2030-01");
    let server = JwksServer::start(jwks(&[&idp])).await;
    // Built synchronously: no keys until the first request needs them.
    let verifier = Verifier::builder()
        .issuer(
            Issuer::remote(crate::dpop_support::ISS, RemoteJwks::url(server.jwks_url()))
                .audience(AUDIENCE),
        )
        .build()
        .unwrap();
    let (listener, origin) = bind().await;
    let dpop = DpopVerifier::builder(verifier)
        .public_origin(&origin)
        .build()
        .unwrap();
    // DPoP only: no bearer tokens anywhere.
    spawn(
        listener,
        GuardLayer::builder()
            .realm("orders")
            .dpop(dpop)
            .build()
            .unwrap(),
    );
    let key = ClientKey::es256();
    let claims = |sub: &str| json!({"iss": crate::dpop_support::ISS, "aud": AUDIENCE, "sub": sub, "exp": EXP, "cnf": {"jkt": key.jkt}});
    let token = idp.token_with_claims(&claims("alice"));
    let url = format!("{origin}/catalog");
    let answer = get_dpop(&url, &token, &key.proof("GET", &url, &token, now())).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    assert_eq!(answer.body, "alice");
    assert_eq!(server.jwks_requests(), 1);
    // A rotation: the new key is fetched while the request waits.
    let rotated = TestKey::es256("2030-02");
    server.set_jwks(jwks(&[&idp, &rotated]));
    let token = rotated.token_with_claims(&claims("bob"));
    let answer = get_dpop(&url, &token, &key.proof("GET", &url, &token, now())).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    assert_eq!(answer.body, "bob");
    assert_eq!(server.jwks_requests(), 2);
    // A proof for another URI is refused before any key is waited for.
    let token = idp.token_with_claims(&claims("carol"));
    let wrong = key.proof("GET", &format!("{origin}/other"), &token, now());
    assert_eq!(
        dpop_error(&get_dpop(&url, &token, &wrong).await),
        "invalid_dpop_proof"
    );
    // A bearer token, on a guard that takes DPoP only.
    let answer = send(
        reqwest::Method::GET,
        &url,
        &format!("Bearer {}", idp.token(crate::dpop_support::ISS)),
        None,
    )
    .await;
    assert_eq!(dpop_error(&answer), "invalid_token");
}

#[tokio::test]
async fn the_origin_can_come_from_the_host_header_but_never_from_forwarded_headers() {
    let idp = Idp::new();
    let (listener, origin) = bind().await;
    let clock = Arc::new(SystemClock);
    let dpop = idp
        .dpop(clock.clone())
        .origin_from_host("http")
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .realm("orders")
        .dpop(dpop)
        .build()
        .unwrap();
    spawn(listener, guard);
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let url = format!("{origin}/orders/9");
    let answer = get_dpop(&url, &token, &key.proof("GET", &url, &token, now())).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    // The client names another host: the proof for that host is what counts.
    let proof = key.proof("GET", "http://api.example/orders/9", &token, now());
    let answer = client()
        .get(&url)
        .header("host", "api.example")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // Forwarded headers do not move the origin.
    let proof = key.proof("GET", "https://public.example/orders/9", &token, now());
    let answer = client()
        .get(&url)
        .header("x-forwarded-host", "public.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=public.example;proto=https")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_public_origin_with_a_path_prefix_stands_for_a_gateway() {
    let idp = Idp::new();
    let (listener, origin) = bind().await;
    // Clients call https://gw.example/orders-api/...; the gateway strips the prefix.
    let dpop = idp
        .dpop(Arc::new(SystemClock))
        .public_origin("https://GW.example:443/orders-api/")
        .build()
        .unwrap();
    spawn(listener, GuardLayer::builder().dpop(dpop).build().unwrap());
    let key = ClientKey::es256();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let public = "https://gw.example/orders-api/orders/5";
    let answer = get_dpop(
        &format!("{origin}/orders/5"),
        &token,
        &key.proof("GET", public, &token, now()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    let direct = format!("{origin}/orders/5");
    let answer = get_dpop(&direct, &token, &key.proof("GET", &direct, &token, now())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}
