//! meshguard quickstart: a small documents service on 127.0.0.1, secured by a
//! [`Guard`] — access tokens signed by an embedded DEMO key, Cedar policies embedded from
//! `examples/quickstart/policies.cedar`, a public `/health`, and a handler that asks the
//! policies about the document it loaded ([`PolicyCheck`]).
//!
//! ```sh
//! cargo run --example quickstart                 # prints curl commands, serves until Ctrl-C
//! cargo run --example quickstart -- --self-check # sends the requests itself, exit 0 if all as expected
//! ```
//!
//! Everything it needs is embedded below; nothing is read from disk or the network.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::caller::Caller;
use meshguard::guard::{Guard, GuardLayer, PolicyCheck, RouteRule};
use meshguard::policy::{
    Context, Decision, Entities, Entity, EntityUid, HttpMapping, PolicyEngine, PolicyId,
    PolicySource, PrincipalMapping,
};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, VerifiedToken, Verifier};
use meshguard::{Refusal, RequestHead};
use serde_json::{Value, json};
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

/// DEMO ONLY — never use in production. An Ed25519 private key published in this example,
/// playing the identity provider that signs access tokens. Anyone can mint tokens with it.
const DEMO_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ8oUazCDEDCuDJMYGgW0aoVZekSZM9m8qL7g4zXOy8c
-----END PRIVATE KEY-----
";

/// DEMO ONLY — never use in production. The public half of the demo key: what a real
/// service fetches from its identity provider's JWKS.
const DEMO_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAThlffzCz+GFYTBbcDCG0S5ny4TxdahMFMrHee6NzwaA=
-----END PUBLIC KEY-----
";

/// DEMO ONLY: the demo identity provider's name, under the reserved `.invalid` domain.
const ISSUER: &str = "https://idp.demo.meshguard.invalid";
const AUDIENCE: &str = "api://documents";
const REALM: &str = "documents";
/// The service's Cedar policies (DEMO).
const POLICIES: &str = include_str!("policies.cedar");
/// Where the service listens unless the port is taken.
const PREFERRED_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    let self_check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--self-check") => true,
        Some(other) => {
            eprintln!("unknown argument `{other}`; usage: quickstart [--self-check]");
            return Ok(ExitCode::from(2));
        }
    };
    let app = app()?;
    let idp = DemoIdp::new()?;
    if self_check {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let all_as_expected = self_check_table(addr, &idp).await?;
        let _ = stop.send(());
        server.await??;
        return Ok(if all_as_expected {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let listener = match TcpListener::bind(PREFERRED_ADDR).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("{PREFERRED_ADDR} is taken; listening on another port");
            TcpListener::bind("127.0.0.1:0").await?
        }
        Err(error) => return Err(error.into()),
    };
    print_curl_commands(listener.local_addr()?, &idp)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The service: routes, their handlers, and the guard in front of all of them.
fn app() -> Result<Router, BoxError> {
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(ISSUER, KeySet::from_pem(DEMO_PUBLIC_KEY_PEM.as_bytes())?)
                .audience(AUDIENCE)
                .algorithms([Algorithm::EdDSA])
                .access_token_profile(),
        )
        .build()?;
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()?;
    let guard: GuardLayer = Guard::builder()
        .realm(REALM)
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions("documents"))
        .public("GET /health")
        .route(
            "DELETE /documents/{id}",
            RouteRule::new().scopes(["documents:write"]),
        )
        .render(problem_with_reason)
        .build()?;
    let store = Store::default();
    Ok(Router::new()
        .route("/health", get(health))
        .route("/documents", get(list_documents))
        .route(
            "/documents/{id}",
            get(read_document).delete(delete_document),
        )
        .with_state(store)
        .layer(guard))
}

/// The default refusal (RFC 9457 problem details, RFC 6750 challenge) with the stable
/// `reason` and the `stage` that refused added to the body, so that clients — and the
/// self-check — can tell an expired token from a forged one.
fn problem_with_reason(
    refusal: &Refusal,
    request: RequestHead<'_>,
    realm: &str,
) -> http::Response<String> {
    refusal.render::<String>(request, realm).map(|body| {
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(mut problem)) => {
                problem.insert("reason".into(), refusal.reason.into());
                problem.insert("stage".into(), refusal.stage.as_str().into());
                Value::Object(problem).to_string()
            }
            // gRPC refusals have an empty body; anything else is left as it is.
            _ => body,
        }
    })
}

#[derive(Debug, Clone)]
struct Document {
    title: &'static str,
    owner: &'static str,
}

/// The service's own data: documents and their owners.
#[derive(Debug, Clone)]
struct Store(Arc<Mutex<BTreeMap<String, Document>>>);

impl Default for Store {
    fn default() -> Self {
        let documents = [
            (
                "d1",
                Document {
                    title: "Alice's notes",
                    owner: "alice",
                },
            ),
            (
                "d2",
                Document {
                    title: "Bob's plans",
                    owner: "bob",
                },
            ),
        ];
        Self(Arc::new(Mutex::new(
            documents
                .into_iter()
                .map(|(id, doc)| (id.to_owned(), doc))
                .collect(),
        )))
    }
}

impl Store {
    fn get(&self, id: &str) -> Option<Document> {
        self.documents().get(id).cloned()
    }

    fn documents(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Document>> {
        // The map is valid after any panic of a holder: entries are replaced whole.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Reached only when the guard admitted the request: the caller and the route-level
/// decision are in the request, taken by meshguard's extractors.
async fn list_documents(
    State(store): State<Store>,
    caller: Caller,
    decision: Decision,
) -> Response {
    let documents: Vec<Value> = store
        .documents()
        .iter()
        .map(|(id, doc)| json!({ "id": id, "title": doc.title, "owner": doc.owner }))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "caller": subject(&caller),
            "decision": decision_name(&decision),
            "policies": policy_ids(&decision),
            "documents": documents,
        }),
    )
}

/// Past the guard, the handler loads the document and asks the policies whether this caller
/// may read this very document (its owner is data the guard could not see).
async fn read_document(
    State(store): State<Store>,
    Path(id): Path<String>,
    check: PolicyCheck,
    version: Version,
    headers: HeaderMap,
) -> Response {
    let Some(doc) = store.get(&id) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such document" }),
        );
    };
    match decide_on_document(&check, "read", &id, &doc) {
        Ok(decision) => json_response(
            StatusCode::OK,
            &json!({
                "caller": subject(check.caller()),
                "decision": decision_name(&decision),
                "policies": policy_ids(&decision),
                "document": { "id": id, "title": doc.title, "owner": doc.owner },
            }),
        ),
        Err(refusal) => problem_with_reason(&refusal, RequestHead::new(version, &headers), REALM)
            .map(Body::from)
            .into_response(),
    }
}

/// The guard has checked the `documents:write` scope and the route-level policy; the
/// handler checks ownership before deleting.
async fn delete_document(
    State(store): State<Store>,
    Path(id): Path<String>,
    check: PolicyCheck,
    version: Version,
    headers: HeaderMap,
) -> Response {
    let Some(doc) = store.get(&id) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "no such document" }),
        );
    };
    match decide_on_document(&check, "delete", &id, &doc) {
        Ok(decision) => {
            store.documents().remove(&id);
            json_response(
                StatusCode::OK,
                &json!({
                    "caller": subject(check.caller()),
                    "decision": decision_name(&decision),
                    "policies": policy_ids(&decision),
                    "deleted": id,
                }),
            )
        }
        Err(refusal) => problem_with_reason(&refusal, RequestHead::new(version, &headers), REALM)
            .map(Body::from)
            .into_response(),
    }
}

/// `Action::"<action>"` on `Document::"<id>"`, with the document's owner as an attribute.
fn decide_on_document(
    check: &PolicyCheck,
    action: &str,
    id: &str,
    doc: &Document,
) -> Result<Decision, Refusal> {
    let entity = EntityUid::new("Document", id)
        .and_then(|uid| {
            Entity::builder(uid)
                .attribute(
                    "owner",
                    &json!({ "__entity": { "type": "User", "id": doc.owner } }),
                )?
                .build()
        })
        .and_then(|entity| Ok((EntityUid::new("Action", action)?, entity)));
    // Only the constant type names can fail to parse: a bug, answered as one.
    let (action, entity) = entity.map_err(|_| {
        Refusal::new(
            meshguard::Stage::Policy,
            StatusCode::INTERNAL_SERVER_ERROR,
            "entity_error",
            "the request cannot be decided",
        )
    })?;
    let resource = entity.uid();
    check
        .authorize(
            &action,
            &resource,
            Entities::from_iter([entity]),
            Context::new(),
        )
        .map_err(|denied| denied.refusal().clone())
}

fn subject(caller: &Caller) -> Option<&str> {
    caller.user().and_then(VerifiedToken::subject)
}

fn decision_name(decision: &Decision) -> &'static str {
    if decision.is_allow() { "allow" } else { "deny" }
}

fn policy_ids(decision: &Decision) -> Vec<&str> {
    decision.policy_ids().iter().map(PolicyId::as_str).collect()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The demo identity provider: mints access tokens with the DEMO key.
struct DemoIdp {
    signer: TokenSigner,
    now: u64,
}

impl DemoIdp {
    fn new() -> Result<Self, BoxError> {
        let signer = TokenSigner::from_pem(Algorithm::EdDSA, DEMO_PRIVATE_KEY_PEM.as_bytes())?
            .with_kid("demo-key-1")
            .with_type("at+jwt");
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        Ok(Self { signer, now })
    }

    /// An RFC 9068 access token for `sub` expiring `expires_in` seconds from now (a negative
    /// number: already expired).
    fn token(
        &self,
        sub: &str,
        roles: &[&str],
        scope: &str,
        expires_in: i64,
    ) -> Result<String, BoxError> {
        let exp = self.now.saturating_add_signed(expires_in);
        Ok(self.signer.sign(&json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": "quickstart",
            "iat": self.now, "exp": exp, "jti": format!("{sub}-{exp}-{scope}"),
            "roles": roles, "scope": scope,
        }))?)
    }

    fn alice(&self) -> Result<String, BoxError> {
        self.token("alice", &["member"], "documents:read", 3600)
    }

    fn bob(&self) -> Result<String, BoxError> {
        self.token("bob", &["guest"], "documents:read", 3600)
    }
}

fn print_curl_commands(addr: SocketAddr, idp: &DemoIdp) -> Result<(), BoxError> {
    let base = format!("http://{addr}");
    println!("meshguard quickstart: documents service on {base}");
    println!("DEMO ONLY: tokens signed by a key published in examples/quickstart.rs\n");
    println!("# alice is a member: allowed; bob is a guest: denied (tokens valid for 1 hour)");
    println!("ALICE='{}'", idp.alice()?);
    println!("BOB='{}'\n", idp.bob()?);
    let alice = "-H \"Authorization: Bearer $ALICE\" ";
    let bob = "-H \"Authorization: Bearer $BOB\" ";
    let commands = [
        ("", "/health", "200: public"),
        (alice, "/documents", "200: allowed by members-call-the-api"),
        (bob, "/documents", "403: no policy permits a guest"),
        (
            "",
            "/documents",
            "401: WWW-Authenticate: Bearer realm=\"documents\"",
        ),
        (
            alice,
            "/documents/d1",
            "200: alice owns d1 (PolicyCheck in the handler)",
        ),
        (alice, "/documents/d2", "403: d2 is bob's"),
    ];
    for (header, path, outcome) in commands {
        let command = format!("curl -i {header}{base}{path}");
        println!("{command:<76} # {outcome}");
    }
    println!("\nserving until Ctrl-C");
    Ok(())
}

/// What the self-check expects of the `WWW-Authenticate` header.
enum Challenge {
    Absent,
    Exactly(String),
    Containing(&'static str),
}

/// One request of the self-check and the answer it must get.
struct Case {
    method: &'static str,
    path: &'static str,
    token: Option<String>,
    who: &'static str,
    status: u16,
    decision: &'static str,
    policy: &'static str,
    challenge: Challenge,
}

impl Case {
    fn new(
        method: &'static str,
        path: &'static str,
        token: Option<&str>,
        who: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            token: token.map(str::to_owned),
            who,
            status: 0,
            decision: "-",
            policy: "-",
            challenge: Challenge::Absent,
        }
    }

    /// The expected status, decision, and determining policy (or refusal reason).
    fn expect(mut self, status: u16, decision: &'static str, policy: &'static str) -> Self {
        self.status = status;
        self.decision = decision;
        self.policy = policy;
        self
    }

    fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }
}

/// What a response said, as a client reads it.
struct Answer {
    status: u16,
    decision: String,
    policy: String,
    challenge: Option<String>,
}

/// Sends every case to the service at `addr`, prints the table, and says whether every
/// answer was the expected one.
async fn self_check_table(addr: SocketAddr, idp: &DemoIdp) -> Result<bool, BoxError> {
    let alice = idp.alice()?;
    let bob = idp.bob()?;
    let expired = idp.token("alice", &["member"], "documents:read", -3600)?;
    // Bob made a member, under the signature of alice's token: a forged payload.
    let forged = forge(
        &alice,
        &idp.token("bob", &["member"], "documents:read", 3600)?,
    )?;
    let writer = idp.token("alice", &["member"], "documents:read documents:write", 3600)?;
    let cases = [
        Case::new("GET", "/health", None, "no token").expect(200, "-", "-"),
        Case::new("GET", "/documents", Some(&alice), "alice, member").expect(
            200,
            "allow",
            "members-call-the-api",
        ),
        Case::new("GET", "/documents", Some(&bob), "bob, guest").expect(403, "deny", "no_permit"),
        Case::new("GET", "/documents", None, "no token")
            .expect(401, "-", "missing_token")
            .challenge(Challenge::Exactly(format!("Bearer realm=\"{REALM}\""))),
        Case::new("GET", "/documents", Some(&expired), "expired token")
            .expect(401, "-", "expired")
            .challenge(Challenge::Containing("error=\"invalid_token\"")),
        Case::new("GET", "/documents", Some(&forged), "forged token")
            .expect(401, "-", "bad_signature")
            .challenge(Challenge::Containing("error=\"invalid_token\"")),
        Case::new("GET", "/documents/d1", Some(&alice), "alice, owner").expect(
            200,
            "allow",
            "owners-read-documents",
        ),
        Case::new("GET", "/documents/d2", Some(&alice), "alice, not owner").expect(
            403,
            "deny",
            "no_permit",
        ),
        Case::new("DELETE", "/documents/d1", Some(&alice), "alice, read scope")
            .expect(403, "-", "insufficient_scope")
            .challenge(Challenge::Containing("scope=\"documents:write\"")),
        Case::new(
            "DELETE",
            "/documents/d1",
            Some(&writer),
            "alice, write scope",
        )
        .expect(200, "allow", "owners-delete-documents"),
    ];
    println!("meshguard quickstart self-check against http://{addr}\n");
    println!(
        "{:<42} {:>6}  {:<8} {:<26} result",
        "request", "status", "decision", "policy / reason"
    );
    let mut failures = 0;
    for case in &cases {
        let answer = send(addr, case).await?;
        let mismatches = mismatches(case, &answer);
        let result = match mismatches.is_empty() {
            true => "ok".to_owned(),
            false => format!("UNEXPECTED: {}", mismatches.join("; ")),
        };
        let request = format!("{} {} ({})", case.method, case.path, case.who);
        println!(
            "{request:<42} {:>6}  {:<8} {:<26} {result}",
            answer.status, answer.decision, answer.policy
        );
        if !mismatches.is_empty() {
            failures += 1;
        }
    }
    println!();
    if failures == 0 {
        println!("all {} answers as expected", cases.len());
    } else {
        println!(
            "{failures} of {} answers differ from the expectation",
            cases.len()
        );
    }
    Ok(failures == 0)
}

/// `payload_of`'s payload under `signed`'s header and signature.
fn forge(signed: &str, payload_of: &str) -> Result<String, BoxError> {
    let mut signed = signed.split('.');
    let mut other = payload_of.split('.');
    match (signed.next(), other.nth(1), signed.nth(1)) {
        (Some(header), Some(payload), Some(signature)) => {
            Ok(format!("{header}.{payload}.{signature}"))
        }
        _ => Err("a token without three parts".into()),
    }
}

fn mismatches(case: &Case, answer: &Answer) -> Vec<String> {
    let mut found = Vec::new();
    if answer.status != case.status {
        found.push(format!("status, expected {}", case.status));
    }
    if answer.decision != case.decision {
        found.push(format!("decision, expected {}", case.decision));
    }
    if answer.policy != case.policy {
        found.push(format!("policy/reason, expected {}", case.policy));
    }
    let challenge = answer.challenge.as_deref();
    match &case.challenge {
        Challenge::Absent if challenge.is_some() => {
            found.push("a WWW-Authenticate header, expected none".to_owned());
        }
        Challenge::Exactly(expected) if challenge != Some(expected.as_str()) => {
            found.push(format!(
                "WWW-Authenticate {challenge:?}, expected `{expected}`"
            ));
        }
        Challenge::Containing(part) if !challenge.is_some_and(|c| c.contains(part)) => {
            found.push(format!(
                "WWW-Authenticate {challenge:?}, expected it to contain `{part}`"
            ));
        }
        _ => {}
    }
    found
}

/// One request over a fresh HTTP/1.1 connection; the decision and policy come from the
/// handler's JSON, or from the refusal's problem details.
async fn send(addr: SocketAddr, case: &Case) -> Result<Answer, BoxError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(case.method)
        .uri(case.path)
        .header(HOST, addr.to_string());
    if let Some(token) = &case.token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response.into_body().collect().await?.to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let (decision, policy) = match (text("decision"), text("reason")) {
        (Some(decision), _) => {
            let ids: Vec<&str> = body
                .get("policies")
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (
                decision.to_owned(),
                if ids.is_empty() {
                    "-".to_owned()
                } else {
                    ids.join(",")
                },
            )
        }
        // Refused: a deny when the policies refused, otherwise no decision was made.
        (None, Some(reason)) => {
            let decision = if text("stage") == Some("policy") {
                "deny"
            } else {
                "-"
            };
            (decision.to_owned(), reason.to_owned())
        }
        (None, None) => ("-".to_owned(), "-".to_owned()),
    };
    Ok(Answer {
        status,
        decision,
        policy,
        challenge,
    })
}
