//! `Guard` in front of real axum servers on 127.0.0.1, driven by a real hyper client: every
//! status and header of the layers (CONFORMANCE 39 and 41–46), per-route rules, the
//! extractors, hand-stacked layers, a remote JWKS, mTLS peers and hundreds of concurrent
//! requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::peer_support;
use crate::remote_support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::caller::Caller;
use meshguard::guard::{GuardBuilder, GuardLayer, PolicyCheck, RouteRule};
use meshguard::peer::{
    Authorizer, ClientRoots, MtlsConnectInfo, MtlsListener, PeerIdentity, PeerIdentityLayer,
    server_config,
};
use meshguard::policy::{
    AuthorizationLayer, Context, Decision, Entities, Entity, EntityUid, HttpMapping, PolicyEngine,
    PolicySource,
};
use meshguard::token::AuthenticationLayer;
use meshguard::token::remote::RemoteJwks;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use peer_support::{Ca, Leaf};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const SECRET: &[u8] = b"guard-axum-test-secret-0123456789abcdef";
const ISS: &str = "https://idp.example";
const AUD: &str = "orders";

const CART: &str = "spiffe://example.org/ns/shop/sa/cart";
const UI: &str = "spiffe://example.org/ns/shop/sa/ui";
const ADS: &str = "spiffe://example.org/ns/shop/sa/ads";

const POLICIES: &str = r#"
@id("alice-orders")
permit(principal == User::"alice", action, resource == Application::"orders");

@id("bob-reads-42")
permit(principal == User::"bob", action == Action::"GET /orders/{id}", resource)
when { context.path_params.id == "42" };

@id("bob-purges")
permit(principal == User::"bob", action == Action::"purge", resource);

@id("admin-closed")
forbid(principal, action == Action::"GET /admin", resource);

@id("catalog")
permit(principal, action, resource) when { context has path && context.path like "/catalog*" };

@id("documents")
permit(principal, action == Action::"GET /documents/{id}", resource);

@id("owners-read")
permit(principal, action == Action::"read", resource)
when { resource has owner && resource.owner == principal };

@id("cart-reads")
permit(principal == Service::"spiffe://example.org/ns/shop/sa/cart", action == Action::"GET /orders/{id}", resource);
"#;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn verifier() -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
        .build()
        .unwrap()
}

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap()
}

/// A token signed with `secret` under `kid`, expiring `exp_offset` seconds from now, with
/// `extra` claims merged in.
fn signed(secret: &[u8], kid: &str, sub: &str, exp_offset: i64, extra: Value) -> String {
    let mut claims = json!({"iss": ISS, "aud": AUD, "sub": sub, "exp": now() + exp_offset});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    TokenSigner::new(Algorithm::HS256, secret)
        .unwrap()
        .with_kid(kid)
        .sign(&claims)
        .unwrap()
}

fn token(sub: &str) -> String {
    signed(SECRET, "k1", sub, 300, json!({}))
}

fn expired(sub: &str) -> String {
    signed(SECRET, "k1", sub, -3600, json!({}))
}

/// Same header and claims as a good token, signed with a key the service does not trust.
fn forged(sub: &str) -> String {
    signed(
        b"not-the-service-secret-0123456789abcdef",
        "k1",
        sub,
        300,
        json!({}),
    )
}

/// What every handler answers: what the guard left in the request extensions.
async fn show(
    method: Method,
    caller: Option<Caller>,
    token: Option<VerifiedToken>,
    decision: Option<Decision>,
    peer: Option<PeerIdentity>,
) -> String {
    let decision = decision.map(|d| {
        json!({
            "allow": d.is_allow(),
            "action": d.details().action().map(ToString::to_string),
            "principal": d.details().principal().map(ToString::to_string),
            "policies": d.policy_ids().iter().map(|p| p.as_str().to_owned()).collect::<Vec<_>>(),
        })
    });
    json!({
        "method": method.as_str(),
        "caller": caller.as_ref().map(|c| json!({
            "user": c.user().and_then(VerifiedToken::subject),
            "workload": c.workload().and_then(|w| w.spiffe_id()),
        })),
        "token": token.as_ref().map(|t| json!({"sub": t.subject(), "jti": t.jwt_id()})),
        "decision": decision,
        "peer": peer.as_ref().and_then(|p| p.spiffe_id()).map(|id| id.as_str().to_owned()),
    })
    .to_string()
}

async fn me(caller: Caller) -> String {
    caller
        .user()
        .and_then(VerifiedToken::subject)
        .unwrap_or("?")
        .to_owned()
}

async fn token_only(token: VerifiedToken) -> String {
    token.subject().unwrap_or("?").to_owned()
}

async fn peer_only(peer: PeerIdentity) -> String {
    peer.spiffe_id()
        .map(ToString::to_string)
        .unwrap_or_default()
}

async fn decided(decision: Decision) -> String {
    decision.is_allow().to_string()
}

/// Reads a document the handler "loaded": d1 is alice's, d2 is bob's.
async fn document(check: PolicyCheck, Path(id): Path<String>) -> AxumResponse {
    let owner = if id == "d1" { "alice" } else { "bob" };
    let uid = EntityUid::new("Document", &id).unwrap();
    let entity = Entity::builder(uid.clone())
        .attribute("owner", &json!({"__entity": {"type": "User", "id": owner}}))
        .unwrap()
        .build()
        .unwrap();
    let read = EntityUid::new("Action", "read").unwrap();
    match check.authorize(&read, &uid, Entities::from_iter([entity]), Context::new()) {
        Ok(decision) => format!("{id} for {:?}", decision.policy_ids()[0].as_str()).into_response(),
        Err(denied) => denied.into_response(),
    }
}

fn app() -> Router {
    Router::new()
        .route("/orders/{id}", get(show).post(show).delete(show))
        .route("/orders/{id}/refund", axum::routing::post(show))
        .route("/admin", get(show))
        .route("/health", get(show))
        .route("/catalog", get(show))
        .route("/catalog/me", get(me))
        .route("/catalog/token", get(token_only))
        .route("/catalog/decision", get(decided))
        .route("/catalog/peer", get(peer_only))
        .route("/catalog/check", get(document_check_without_token))
        .route("/public/{*rest}", get(show))
        .route("/docs/{*rest}", get(show))
        .route("/documents/{id}", get(document))
}

/// A `PolicyCheck` extractor on an optional-token route.
async fn document_check_without_token(check: PolicyCheck) -> String {
    check
        .caller()
        .user()
        .and_then(VerifiedToken::subject)
        .unwrap_or("?")
        .to_owned()
}

fn guard_builder() -> GuardBuilder {
    GuardLayer::builder()
        .realm("orders")
        .tokens(verifier())
        .policies(engine(), HttpMapping::conventions("orders"))
        .public("/health")
        .route("GET /docs/private", RouteRule::new())
        .public("/docs/{*rest}")
        .public("GET /public/{*rest}")
        .optional_token("GET /catalog")
        .optional_token("GET /catalog/{*rest}")
        .route(
            "POST /orders/{id}/refund",
            RouteRule::new().scopes(["orders:write", "refunds"]),
        )
        .route("DELETE /orders/{id}", RouteRule::new().action("purge"))
}

fn guard() -> GuardLayer {
    guard_builder().build().unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn serve_guarded() -> SocketAddr {
    serve(app().layer(guard())).await
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The one `WWW-Authenticate` challenge, with its attributes checked against the
    /// RFC 6750 §3 grammar (CONFORMANCE 45).
    fn challenge(&self) -> Vec<(String, String)> {
        let values: Vec<_> = self.headers.get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(values.len(), 1, "exactly one challenge: {self:?}");
        attributes(values[0].to_str().unwrap())
    }

    fn attribute(&self, name: &str) -> Option<String> {
        self.challenge()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn assert_no_challenge(&self) {
        assert!(
            self.headers.get(WWW_AUTHENTICATE).is_none(),
            "no Bearer challenge expected: {self:?}"
        );
    }

    /// An RFC 9457 problem-details body with this status.
    fn assert_problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.headers[CONTENT_TYPE], "application/problem+json");
        let problem = self.json();
        assert_eq!(problem["status"], status.as_u16());
        assert!(problem["detail"].is_string(), "{problem}");
    }

    /// 401 `invalid_token` with the realm and a description.
    fn assert_invalid_token(&self) {
        self.assert_problem(StatusCode::UNAUTHORIZED);
        assert_eq!(self.attribute("realm").as_deref(), Some("orders"));
        assert_eq!(self.attribute("error").as_deref(), Some("invalid_token"));
        assert!(self.attribute("error_description").is_some());
    }

    /// 401 with a challenge that names the realm and nothing else (CONFORMANCE 41).
    fn assert_bare_challenge(&self) {
        self.assert_problem(StatusCode::UNAUTHORIZED);
        assert_eq!(
            self.challenge(),
            vec![("realm".to_owned(), "orders".to_owned())]
        );
    }

    /// 403 from the policies: problem details and no challenge.
    fn assert_policy_denial(&self) {
        self.assert_problem(StatusCode::FORBIDDEN);
        self.assert_no_challenge();
    }

    fn all_text(&self) -> String {
        let mut text = self.body.clone();
        for (name, value) in &self.headers {
            text.push_str(&format!(
                "\n{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        text
    }
}

/// The attributes of a Bearer challenge, checking RFC 6750 §3: `auth-param`s separated by
/// `, `, quoted values without `"` or `\`, printable ASCII, each name at most once.
fn attributes(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.strip_prefix("Bearer ").expect("Bearer scheme");
    let mut attributes: Vec<(String, String)> = Vec::new();
    for part in rest.split(", ") {
        let (name, value) = part.split_once('=').unwrap();
        assert!(
            ["realm", "error", "error_description", "error_uri", "scope"].contains(&name),
            "unknown attribute {name} in {challenge}"
        );
        let value = value.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
        assert!(!value.contains(['"', '\\']), "{challenge}");
        assert!(
            value.chars().all(|c| (' '..='~').contains(&c)),
            "{challenge}"
        );
        assert!(
            attributes.iter().all(|(n, _)| n != name),
            "{name} twice in {challenge}"
        );
        attributes.push((name.to_owned(), value.to_owned()));
    }
    attributes
}

fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
}

fn get_with(path: &str, bearer: Option<&str>) -> Request<Empty<Bytes>> {
    let mut builder = request(Method::GET, path);
    if let Some(token) = bearer {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Empty::new()).unwrap()
}

/// One request over a fresh HTTP/1.1 connection on `io`.
async fn exchange<IO>(io: IO, request: Request<Empty<Bytes>>) -> Answer
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// One request over a fresh HTTP/2 connection (prior knowledge, as gRPC clients speak it).
async fn send_h2(addr: SocketAddr, mut request: Request<Empty<Bytes>>) -> Answer {
    *request.uri_mut() = format!("http://{addr}{}", request.uri()).parse().unwrap();
    request.headers_mut().remove("host");
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn send(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Answer {
    exchange(TcpStream::connect(addr).await.unwrap(), request).await
}

async fn get_as(addr: SocketAddr, path: &str, bearer: Option<&str>) -> Answer {
    send(addr, get_with(path, bearer)).await
}

#[tokio::test]
async fn admitted_requests_carry_caller_token_and_decision_to_handlers() {
    let addr = serve_guarded().await;
    let answer = get_as(addr, "/orders/7", Some(&token("alice"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["caller"]["user"], "alice");
    assert_eq!(body["caller"]["workload"], Value::Null);
    assert_eq!(body["token"]["sub"], "alice");
    assert_eq!(body["decision"]["allow"], true);
    assert_eq!(body["decision"]["principal"], r#"User::"alice""#);
    assert_eq!(body["decision"]["action"], r#"Action::"GET /orders/{id}""#);
    assert_eq!(body["decision"]["policies"], json!(["alice-orders"]));
    assert_eq!(body["peer"], Value::Null);

    // The scheme name is matched without regard to case (CONFORMANCE 38).
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let request = request(Method::GET, "/orders/7")
            .header(AUTHORIZATION, format!("{scheme} {}", token("alice")))
            .body(Empty::new())
            .unwrap();
        assert_eq!(send(addr, request).await.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn the_matched_route_is_the_action_and_its_parameters_reach_the_context() {
    let addr = serve_guarded().await;
    let bob = token("bob");
    // bob-reads-42 names `Action::"GET /orders/{id}"` and reads `context.path_params.id`.
    let answer = get_as(addr, "/orders/42", Some(&bob)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.json()["decision"]["policies"],
        json!(["bob-reads-42"])
    );
    get_as(addr, "/orders/43", Some(&bob))
        .await
        .assert_policy_denial();
}

#[tokio::test]
async fn no_token_is_a_challenge_with_the_realm_and_no_error() {
    let addr = serve_guarded().await;
    let answer = get_as(addr, "/orders/7", None).await;
    answer.assert_bare_challenge();
    // Another scheme is no bearer token either.
    let basic = request(Method::GET, "/orders/7")
        .header(AUTHORIZATION, "Basic YWxpY2U6c2VjcmV0")
        .body(Empty::new())
        .unwrap();
    send(addr, basic).await.assert_bare_challenge();
    // Query-parameter tokens are not read unless configured (CONFORMANCE 40).
    let query = format!("/orders/7?access_token={}", token("alice"));
    get_as(addr, &query, None).await.assert_bare_challenge();
}

#[tokio::test]
async fn invalid_expired_and_forged_tokens_are_invalid_token_and_never_echoed() {
    let addr = serve_guarded().await;
    let sneaky_kid = signed(SECRET, "kid-\"with\\quotes", "alice", 300, json!({}));
    let wrong_audience = signed(SECRET, "k1", "alice", 300, json!({"aud": "billing"}));
    let cases = [
        ("expired", expired("alice")),
        ("forged", forged("alice")),
        ("unknown kid", sneaky_kid),
        ("wrong audience", wrong_audience),
        ("not a jwt", "eyJub3QiOiJhIGp3dCJ9.e30.c2ln".to_owned()),
    ];
    for (case, bad) in cases {
        let answer = get_as(addr, "/orders/7", Some(&bad)).await;
        answer.assert_invalid_token();
        let text = answer.all_text();
        for part in bad.split('.').filter(|p| p.len() > 3) {
            assert!(!text.contains(part), "{case}: echoes the token: {text}");
        }
        assert!(!text.contains("kid-"), "{case}: echoes the key id: {text}");
        assert!(!text.contains("alice"), "{case}: echoes a claim: {text}");
    }
    let answer = get_as(addr, "/orders/7", Some(&expired("alice"))).await;
    assert_eq!(
        answer.attribute("error_description").as_deref(),
        Some("the token has expired")
    );
}

#[tokio::test]
async fn two_tokens_or_a_malformed_header_are_invalid_request() {
    let addr = serve_guarded().await;
    let good = token("alice");
    let two = request(Method::GET, "/orders/7")
        .header(AUTHORIZATION, format!("Bearer {good}"))
        .header(AUTHORIZATION, format!("Bearer {good}"))
        .body(Empty::new())
        .unwrap();
    let opaque = request(Method::GET, "/orders/7")
        .header(
            AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .body(Empty::new())
        .unwrap();
    let mut answers = vec![
        ("two headers", send(addr, two).await),
        ("not ASCII", send(addr, opaque).await),
    ];
    for value in [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer  {good}"),
        format!("Bearer {good} extra"),
        "Bearer a\"b".to_owned(),
    ] {
        let malformed = request(Method::GET, "/orders/7")
            .header(AUTHORIZATION, value.as_str())
            .body(Empty::new())
            .unwrap();
        answers.push(("malformed", send(addr, malformed).await));
    }
    for (case, answer) in answers {
        answer.assert_problem(StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.attribute("error").as_deref(),
            Some("invalid_request"),
            "{case}"
        );
        assert_eq!(answer.attribute("realm").as_deref(), Some("orders"));
        assert!(!answer.all_text().contains(&good[10..]), "{case}");
    }
}

#[tokio::test]
async fn policy_denials_are_403_problem_details_without_a_bearer_challenge() {
    let addr = serve_guarded().await;
    // No permit for bob on a POST, and a forbid on /admin that beats alice's permit.
    let post = request(Method::POST, "/orders/7")
        .header(AUTHORIZATION, format!("Bearer {}", token("bob")))
        .body(Empty::new())
        .unwrap();
    send(addr, post).await.assert_policy_denial();
    let admin = get_as(addr, "/admin", Some(&token("alice"))).await;
    admin.assert_policy_denial();
    assert_eq!(admin.json()["detail"], "the request is not allowed");
    // A request the mapping cannot express is malformed, not a token problem.
    let unmappable = get_as(addr, "/orders/7?a=1&a=2", Some(&token("alice"))).await;
    unmappable.assert_problem(StatusCode::BAD_REQUEST);
    unmappable.assert_no_challenge();
}

#[tokio::test]
async fn missing_scopes_are_insufficient_scope_naming_the_required_scopes() {
    let addr = serve_guarded().await;
    let refund = |bearer: Option<String>| {
        let mut builder = request(Method::POST, "/orders/7/refund");
        if let Some(bearer) = bearer {
            builder = builder.header(AUTHORIZATION, format!("Bearer {bearer}"));
        }
        builder.body(Empty::new()).unwrap()
    };
    let read_only = signed(
        SECRET,
        "k1",
        "alice",
        300,
        json!({"scope": "orders:read refunds"}),
    );
    let answer = send(addr, refund(Some(read_only))).await;
    answer.assert_problem(StatusCode::FORBIDDEN);
    assert_eq!(
        answer.attribute("error").as_deref(),
        Some("insufficient_scope")
    );
    assert_eq!(
        answer.attribute("scope").as_deref(),
        Some("orders:write refunds")
    );
    assert_eq!(answer.attribute("realm").as_deref(), Some("orders"));

    let writer = signed(
        SECRET,
        "k1",
        "alice",
        300,
        json!({"scope": "orders:write refunds"}),
    );
    let answer = send(addr, refund(Some(writer))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    send(addr, refund(None)).await.assert_bare_challenge();
}

#[tokio::test]
async fn challenge_values_are_sanitized_to_the_rfc6750_grammar() {
    let guard = guard_builder()
        .realm("orders \"eu\\west\"\u{e9}")
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;
    for answer in [
        get_as(addr, "/orders/7", None).await,
        get_as(addr, "/orders/7", Some(&expired("alice"))).await,
    ] {
        assert_eq!(
            answer.attribute("realm").as_deref(),
            Some("orders _eu_west__"),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn grpc_requests_get_trailers_only_answers() {
    let addr = serve_guarded().await;
    let grpc = |bearer: Option<String>, path: &str| {
        let mut builder =
            request(Method::POST, path).header(CONTENT_TYPE, "application/grpc+proto");
        if let Some(bearer) = bearer {
            builder = builder.header(AUTHORIZATION, bearer);
        }
        builder.body(Empty::new()).unwrap()
    };
    let cases = [
        (grpc(None, "/orders/7"), "16"),
        (
            grpc(Some(format!("Bearer {}", expired("alice"))), "/orders/7"),
            "16",
        ),
        (
            grpc(Some(format!("Bearer {}", token("bob"))), "/orders/7"),
            "7",
        ),
        (grpc(Some("Bearer a b".to_owned()), "/orders/7"), "3"),
    ];
    for (request, code) in cases {
        let answer = send_h2(addr, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.headers["grpc-status"], code, "{answer:?}");
        assert_eq!(answer.headers[CONTENT_TYPE], "application/grpc");
        assert!(answer.headers.contains_key("grpc-message"));
        answer.assert_no_challenge();
        assert!(answer.body.is_empty());
    }
}

/// A client picks its own content type: over HTTP/1.1 a gRPC content type must not turn a
/// refusal into an HTTP 200, which a forward-auth proxy would read as "allowed".
#[tokio::test]
async fn grpc_content_type_over_http1_gets_real_http_statuses() {
    let addr = serve_guarded().await;
    let grpc = |bearer: Option<String>| {
        let mut builder =
            request(Method::POST, "/orders/7").header(CONTENT_TYPE, "application/grpc");
        if let Some(bearer) = bearer {
            builder = builder.header(AUTHORIZATION, bearer);
        }
        builder.body(Empty::new()).unwrap()
    };
    let cases = [
        (grpc(None), StatusCode::UNAUTHORIZED),
        (
            grpc(Some(format!("Bearer {}", expired("alice")))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            grpc(Some(format!("Bearer {}", token("bob")))),
            StatusCode::FORBIDDEN,
        ),
        (grpc(Some("Bearer a b".to_owned())), StatusCode::BAD_REQUEST),
    ];
    for (request, status) in cases {
        let answer = send(addr, request).await;
        answer.assert_problem(status);
        assert!(answer.headers.get("grpc-status").is_none(), "{answer:?}");
    }
}

#[tokio::test]
async fn custom_rendering_replaces_the_default_answers() {
    let guard = guard_builder()
        .render(|refusal, request, realm| {
            let body = match request.headers().contains_key("x-empty") {
                true => String::new(),
                false => format!(
                    "{realm}: {} ({})",
                    refusal.reason(),
                    refusal.stage().as_str()
                ),
            };
            Response::builder()
                .status(refusal.status())
                .header("x-refused-by", "meshguard")
                .body(body)
                .unwrap()
        })
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;
    let answer = get_as(addr, "/orders/7", Some(&expired("alice"))).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body, "orders: expired (token)");
    assert_eq!(answer.headers["x-refused-by"], "meshguard");
    answer.assert_no_challenge();
    let answer = get_as(addr, "/orders/43", Some(&token("bob"))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body, "orders: no_permit (policy)");
    let empty = request(Method::GET, "/orders/7")
        .header("x-empty", "1")
        .body(Empty::new())
        .unwrap();
    let answer = send(addr, empty).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.is_empty());
    // Admitted requests are not rendered.
    assert_eq!(
        get_as(addr, "/orders/7", Some(&token("alice")))
            .await
            .status,
        StatusCode::OK
    );
}

/// A handler's `Denied` (from the `PolicyCheck` the guard prepared) answers through the
/// guard's renderer, as the guard's own policy refusals do.
#[tokio::test]
async fn handler_denials_are_rendered_like_the_guards_refusals() {
    let guard = guard_builder()
        .render(|refusal, _, realm| {
            Response::builder()
                .status(refusal.status())
                .header("x-refused-by", "meshguard")
                .body(format!(
                    "{realm}: {} ({})",
                    refusal.reason(),
                    refusal.stage().as_str()
                ))
                .unwrap()
        })
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;
    let answer = get_as(addr, "/documents/d1", Some(&token("bob"))).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    assert_eq!(answer.body, "orders: no_permit (policy)");
    assert_eq!(answer.headers["x-refused-by"], "meshguard");
}

#[tokio::test]
async fn public_routes_run_no_check_and_add_nothing() {
    let addr = serve_guarded().await;
    for bearer in [None, Some(forged("alice")), Some(token("alice"))] {
        let answer = get_as(addr, "/health", bearer.as_deref()).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let body = answer.json();
        for extension in ["caller", "token", "decision", "peer"] {
            assert_eq!(body[extension], Value::Null, "{extension}: {body}");
        }
    }
    // `GET /public/...` only: other methods get every check.
    assert_eq!(
        get_as(addr, "/public/a/b", None).await.status,
        StatusCode::OK
    );
    let post = request(Method::POST, "/public/a/b")
        .body(Empty::new())
        .unwrap();
    send(addr, post).await.assert_bare_challenge();
}

#[tokio::test]
async fn optional_token_routes_admit_anonymous_callers_and_still_refuse_bad_tokens() {
    let addr = serve_guarded().await;
    let anonymous = get_as(addr, "/catalog", None).await;
    assert_eq!(anonymous.status, StatusCode::OK, "{anonymous:?}");
    let body = anonymous.json();
    assert_eq!(body["caller"], Value::Null);
    assert_eq!(body["decision"], Value::Null);

    let known = get_as(addr, "/catalog", Some(&token("bob"))).await;
    assert_eq!(known.status, StatusCode::OK, "{known:?}");
    assert_eq!(known.json()["caller"]["user"], "bob");
    assert_eq!(known.json()["decision"]["policies"], json!(["catalog"]));

    get_as(addr, "/catalog", Some(&expired("bob")))
        .await
        .assert_invalid_token();
    get_as(addr, "/catalog", Some(&forged("bob")))
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn a_route_action_replaces_the_mapped_action() {
    let addr = serve_guarded().await;
    let delete = |who: &str| {
        request(Method::DELETE, "/orders/9")
            .header(AUTHORIZATION, format!("Bearer {}", token(who)))
            .body(Empty::new())
            .unwrap()
    };
    // Only `Action::"purge"` is permitted to bob; the mapped action would be denied.
    let answer = send(addr, delete("bob")).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json()["decision"]["action"], r#"Action::"purge""#);
    assert_eq!(answer.json()["decision"]["policies"], json!(["bob-purges"]));
    let carol = send(addr, delete("carol")).await;
    carol.assert_policy_denial();
}

#[tokio::test]
async fn the_first_matching_rule_wins() {
    let addr = serve_guarded().await;
    // `GET /docs/private` comes before the public `/docs/{*rest}`.
    get_as(addr, "/docs/private", None)
        .await
        .assert_bare_challenge();
    assert_eq!(
        get_as(addr, "/docs/readme", None).await.status,
        StatusCode::OK
    );
    let answer = get_as(addr, "/docs/private", Some(&token("alice"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.json()["decision"]["action"],
        r#"Action::"GET /docs/{*rest}""#
    );
}

#[tokio::test]
async fn non_canonical_paths_never_match_a_public_rule() {
    let addr = serve_guarded().await;
    for path in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/./a",
        "/public//a",
        "/public/a%2fb",
    ] {
        let answer = get_as(addr, path, None).await;
        answer.assert_bare_challenge();
    }
}

#[tokio::test]
async fn extractors_reject_what_the_guard_did_not_provide() {
    let addr = serve_guarded().await;
    // Optional-token route without a token: required identities are absent.
    for path in ["/catalog/me", "/catalog/token", "/catalog/check"] {
        get_as(addr, path, None).await.assert_bare_challenge();
    }
    // No client certificate over plain TCP, token or not: 403 without a challenge.
    for bearer in [None, Some(token("alice"))] {
        let answer = get_as(addr, "/catalog/peer", bearer.as_deref()).await;
        answer.assert_problem(StatusCode::FORBIDDEN);
        answer.assert_no_challenge();
    }
    // Anonymous requests are not decided by the policies.
    let undecided = get_as(addr, "/catalog/decision", None).await;
    undecided.assert_policy_denial();
    // With a token, each extractor finds what it needs.
    let bob = token("bob");
    for (path, body) in [
        ("/catalog/me", "bob"),
        ("/catalog/token", "bob"),
        ("/catalog/check", "bob"),
        ("/catalog/decision", "true"),
    ] {
        let answer = get_as(addr, path, Some(&bob)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, body),
            "{path}"
        );
    }

    // A guard without policies: PolicyCheck is a wiring mistake, Decision is absent.
    let tokens_only = GuardLayer::builder()
        .realm("orders")
        .tokens(verifier())
        .build()
        .unwrap();
    let addr = serve(app().layer(tokens_only)).await;
    get_as(addr, "/documents/d1", Some(&bob))
        .await
        .assert_problem(StatusCode::INTERNAL_SERVER_ERROR);
    get_as(addr, "/catalog/decision", Some(&bob))
        .await
        .assert_policy_denial();
}

#[tokio::test]
async fn extractors_without_a_guard_answer_500() {
    async fn optional_caller(caller: Option<Caller>) -> &'static str {
        if caller.is_some() { "caller" } else { "none" }
    }
    let app = app().route("/optional", get(optional_caller));
    let addr = serve(app).await;
    for path in [
        "/catalog/me",
        "/catalog/token",
        "/catalog/decision",
        "/documents/d1",
        "/optional",
        "/orders/7",
    ] {
        let answer = get_as(addr, path, Some(&token("alice"))).await;
        answer.assert_problem(StatusCode::INTERNAL_SERVER_ERROR);
        answer.assert_no_challenge();
    }
}

#[tokio::test]
async fn policy_checks_decide_against_the_handlers_data() {
    let addr = serve_guarded().await;
    let answer = get_as(addr, "/documents/d1", Some(&token("alice"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body, r#"d1 for "owners-read""#);
    let answer = get_as(addr, "/documents/d2", Some(&token("bob"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    // The route is permitted to everyone; the document is not.
    let answer = get_as(addr, "/documents/d1", Some(&token("bob"))).await;
    answer.assert_policy_denial();
    assert_eq!(answer.json()["detail"], "the request is not allowed");
}

#[tokio::test]
async fn hand_stacked_layers_in_order_work_like_the_guard() {
    // Outermost first: peer identity, then the token, then the policies.
    let app = app()
        .layer(AuthorizationLayer::new(
            engine(),
            HttpMapping::conventions("orders"),
        ))
        .layer(AuthenticationLayer::new(verifier()).realm("orders"))
        .layer(PeerIdentityLayer::new().optional());
    let addr = serve(app).await;
    let answer = get_as(addr, "/orders/42", Some(&token("bob"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["caller"]["user"], "bob");
    assert_eq!(body["token"]["sub"], "bob");
    assert_eq!(body["decision"]["action"], r#"Action::"GET /orders/{id}""#);
    assert_eq!(body["decision"]["policies"], json!(["bob-reads-42"]));
    get_as(addr, "/orders/43", Some(&token("bob")))
        .await
        .assert_policy_denial();
    get_as(addr, "/orders/42", Some(&expired("bob")))
        .await
        .assert_invalid_token();
    get_as(addr, "/orders/42", None)
        .await
        .assert_bare_challenge();
    // The extractors work behind hand-stacked layers too.
    let answer = get_as(addr, "/documents/d1", Some(&token("alice"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

#[tokio::test]
async fn hand_stacked_layers_challenge_anonymous_callers_of_an_optional_token_layer() {
    let app = app()
        .layer(AuthorizationLayer::new(
            engine(),
            HttpMapping::conventions("orders"),
        ))
        .layer(
            AuthenticationLayer::new(verifier())
                .realm("orders")
                .optional(),
        );
    let addr = serve(app).await;
    // No credentials at all: a Bearer challenge, as the guard answers, not a 403.
    get_as(addr, "/orders/7", None)
        .await
        .assert_bare_challenge();
    let answer = get_as(addr, "/orders/7", Some(&token("alice"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
}

#[tokio::test]
async fn a_remote_jwks_is_fetched_for_the_first_request_and_rotations_are_picked_up() {
    use remote_support::{AUDIENCE, JwksServer, TestKey, jwks};
    let first = TestKey::es256("2030-01");
    let server = JwksServer::start(jwks(&[&first])).await;
    // Built synchronously: no keys until the first request needs them.
    let verifier = Verifier::builder()
        .issuer(Issuer::remote(ISS, RemoteJwks::url(server.jwks_url())).audience(AUDIENCE))
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .realm("orders")
        .tokens(verifier)
        .policies(engine(), HttpMapping::conventions("orders"))
        .build()
        .unwrap();
    let addr = serve(app().layer(guard)).await;

    // Fifty first requests at once: each waits for the one fetch and is admitted.
    let mut first_requests = JoinSet::new();
    for _ in 0..50 {
        let token = first.token(ISS);
        first_requests.spawn(async move { get_as(addr, "/orders/7", Some(&token)).await });
    }
    while let Some(answer) = first_requests.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.json()["caller"]["user"], "alice");
    }
    assert_eq!(server.jwks_requests(), 1);

    let second = TestKey::es256("2030-02");
    server.set_jwks(jwks(&[&first, &second]));
    let fetched = server.jwks_requests();
    let answer = get_as(addr, "/orders/7", Some(&second.token(ISS))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(server.jwks_requests(), fetched + 1);

    // A key nobody published is still refused, after the wait.
    let stranger = TestKey::es256("2030-03");
    get_as(addr, "/orders/7", Some(&stranger.token(ISS)))
        .await
        .assert_invalid_token();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_mixed_requests_are_each_answered_correctly() {
    let addr = serve_guarded().await;
    let mut requests = JoinSet::new();
    for i in 0..400_u32 {
        requests.spawn(async move {
            let kind = i % 5;
            let (path, bearer) = match kind {
                0 => (
                    format!("/orders/{i}"),
                    Some(signed(
                        SECRET,
                        "k1",
                        "alice",
                        300,
                        json!({"jti": i.to_string()}),
                    )),
                ),
                1 => (format!("/orders/{i}"), Some(expired("alice"))),
                2 => (format!("/orders/{i}"), Some(forged("alice"))),
                3 => (format!("/orders/{i}"), Some(token("bob"))),
                _ => (
                    "/orders/42".to_owned(),
                    Some(signed(
                        SECRET,
                        "k1",
                        "bob",
                        300,
                        json!({"jti": i.to_string()}),
                    )),
                ),
            };
            let answer = get_as(addr, &path, bearer.as_deref()).await;
            match kind {
                0 | 4 => {
                    assert_eq!(answer.status, StatusCode::OK, "{i}: {answer:?}");
                    let body = answer.json();
                    assert_eq!(body["token"]["jti"], i.to_string(), "{i}");
                    let who = if kind == 0 { "alice" } else { "bob" };
                    assert_eq!(body["caller"]["user"], who, "{i}");
                }
                1 => {
                    answer.assert_invalid_token();
                    assert_eq!(
                        answer.attribute("error_description").as_deref(),
                        Some("the token has expired")
                    );
                }
                2 => {
                    answer.assert_invalid_token();
                    assert_eq!(
                        answer.attribute("error_description").as_deref(),
                        Some("the token is invalid")
                    );
                }
                _ => answer.assert_policy_denial(),
            }
            kind
        });
    }
    let mut per_kind = [0; 5];
    while let Some(kind) = requests.join_next().await {
        per_kind[kind.unwrap() as usize] += 1;
    }
    assert_eq!(per_kind, [80; 5]);
}

/// The mTLS world: a CA for example.org, the service's SVID, and clients' SVIDs.
struct Mesh {
    ca: Ca,
    addr: SocketAddr,
}

fn der_key(leaf: &Leaf) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()))
}

impl Mesh {
    /// The guarded app behind `MtlsListener`, admitting cart and ui, with optional tokens.
    async fn start() -> Self {
        let ca = Ca::new("example.org");
        let roots = ClientRoots::spiffe()
            .with_bundle_pem("example.org".parse().unwrap(), ca.pem().as_bytes())
            .unwrap();
        let server = ca.svid("spiffe://example.org/ns/shop/sa/orders");
        let config = server_config(vec![server.der().into()], der_key(&server), &roots).unwrap();
        let peers = PeerIdentityLayer::new().authorize(Authorizer::one_of([
            CART.parse().unwrap(),
            UI.parse().unwrap(),
        ]));
        let guard = GuardLayer::builder()
            .realm("orders")
            .peer(peers)
            .authentication(AuthenticationLayer::new(verifier()).optional())
            .policies(engine(), HttpMapping::conventions("orders"))
            .build()
            .unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = MtlsListener::new(tcp, Arc::new(config));
        let app = app().layer(guard);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
            )
            .await
            .unwrap();
        });
        Self { ca, addr }
    }

    /// `request` over mTLS as the workload holding `client`.
    async fn send(&self, client: &Leaf, request: Request<Empty<Bytes>>) -> Answer {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca.der())).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![client.der().into()], der_key(client))
        .unwrap();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        exchange(tls, request).await
    }
}

/// RFC 8705 §3.1: the base64url SHA-256 of the certificate's DER.
fn thumbprint(leaf: &Leaf) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &leaf.der()))
}

#[tokio::test]
async fn mtls_peers_reach_handlers_and_workload_only_callers_are_services() {
    let mesh = Mesh::start().await;
    let cart = mesh.ca.svid(CART);
    let answer = mesh.send(&cart, get_with("/orders/7", None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["peer"], CART);
    assert_eq!(body["caller"]["workload"], CART);
    assert_eq!(body["caller"]["user"], Value::Null);
    assert_eq!(
        body["decision"]["principal"],
        format!("Service::\"{CART}\"")
    );
    assert_eq!(body["decision"]["policies"], json!(["cart-reads"]));
    // The same workload on an action its policies do not permit.
    let post = request(Method::POST, "/orders/7")
        .body(Empty::new())
        .unwrap();
    mesh.send(&cart, post).await.assert_policy_denial();

    // A user's token carried by a workload: the user is the principal.
    let ui = mesh.ca.svid(UI);
    let answer = mesh
        .send(&ui, get_with("/orders/7", Some(&token("alice"))))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["caller"]["user"], "alice");
    assert_eq!(body["caller"]["workload"], UI);
    assert_eq!(body["decision"]["principal"], r#"User::"alice""#);
    // ui alone is no principal any policy permits.
    mesh.send(&ui, get_with("/orders/7", None))
        .await
        .assert_policy_denial();
}

#[tokio::test]
async fn workloads_the_authorizer_refuses_get_403_without_a_challenge() {
    let mesh = Mesh::start().await;
    let ads = mesh.ca.svid(ADS);
    for bearer in [None, Some(token("alice"))] {
        let answer = mesh
            .send(&ads, get_with("/orders/7", bearer.as_deref()))
            .await;
        answer.assert_problem(StatusCode::FORBIDDEN);
        answer.assert_no_challenge();
        assert_eq!(
            answer.json()["detail"],
            "the calling workload is not allowed"
        );
    }
}

#[tokio::test]
async fn certificate_bound_tokens_only_work_from_their_certificate() {
    let mesh = Mesh::start().await;
    let ui = mesh.ca.svid(UI);
    let cart = mesh.ca.svid(CART);
    let bound = signed(
        SECRET,
        "k1",
        "alice",
        300,
        json!({"cnf": {"x5t#S256": thumbprint(&ui)}}),
    );
    let answer = mesh.send(&ui, get_with("/orders/7", Some(&bound))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json()["caller"]["user"], "alice");

    let stolen = mesh.send(&cart, get_with("/orders/7", Some(&bound))).await;
    stolen.assert_invalid_token();
    assert!(!stolen.all_text().contains(&thumbprint(&ui)));

    // Replayed over plain TCP, where there is no certificate to match.
    let plain = serve_guarded().await;
    get_as(plain, "/orders/7", Some(&bound))
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn tokens_bound_by_dpop_or_a_jwk_are_not_taken_as_bearer_tokens() {
    let addr = serve_guarded().await;
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}),
    ] {
        let bound = signed(SECRET, "k1", "alice", 300, json!({ "cnf": cnf }));
        let answer = get_as(addr, "/orders/7", Some(&bound)).await;
        answer.assert_invalid_token();
        assert!(!answer.body.contains("alice"), "{answer:?}");
    }

    // An issuer that knowingly allows it (a proxy in front checks the DPoP proofs).
    let relaxed = Verifier::builder()
        .issuer(
            Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap())
                .audience(AUD)
                .allow_unverified_confirmation(),
        )
        .build()
        .unwrap();
    let addr = serve(app().layer(guard_builder().tokens(relaxed).build().unwrap())).await;
    let bound = signed(SECRET, "k1", "alice", 300, json!({"cnf": {"jkt": "x"}}));
    let answer = get_as(addr, "/orders/7", Some(&bound)).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json()["caller"]["user"], "alice");
}
