//! A request through [`Guard`] (bearer token with warm static keys, 100 Cedar policies) against
//! the same trivial axum handler bare, in-process with `tower::ServiceExt::oneshot` and over
//! loopback with keep-alive hyper clients; each guarded run is paired with its floors (the bare
//! handler, raw ring verifying the token's signature, raw `cedar_policy::Authorizer` deciding
//! the same request), and the steps of the guard are measured one by one.
//!
//! Run with `cargo bench --features axum --bench layers`; besides criterion's groups it
//! prints ratios from alternating batches (the README records them), unless
//! `MESHGUARD_BENCH_PAIRED=0` (for profiling one group). `MESHGUARD_BENCH_TOKEN_CACHE=0`
//! turns the verifier's token cache off, so every request checks its signature. The target: the layers add at
//! most 15 % to a trivial handler.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark with a broken set-up should stop loudly"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use meshguard::caller::Caller;
use meshguard::guard::Guard;
use meshguard::policy::{
    EntityUid, HttpInput, HttpMapping, PolicyEngine, PolicySource, PrincipalMapping,
};
use meshguard::token::bearer::BearerExtractor;
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const ISS: &str = "https://idp.bench.example";
const AUD: &str = "api://orders";
const SERVICE: &str = "orders";
const HMAC_SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";
const PATH: &str = "/orders/42";
const ROUTE: &str = "/orders/{id}";
const POLICIES: usize = 100;

/// Keep-alive connections of the loopback load generator, and requests per measured batch.
const CONNECTIONS: usize = 8;
const LOOPBACK_BATCH: usize = 256;
/// Alternating rounds in the paired comparisons, and requests per side per round.
const PAIRED_ROUNDS: usize = 60;
const PAIRED_BATCH: usize = 50;
const PAIRED_LOOPBACK_ROUNDS: usize = 20;

/// Whether to run the alternating comparisons after criterion's groups.
fn paired() -> bool {
    std::env::var_os("MESHGUARD_BENCH_PAIRED").is_none_or(|value| value != "0")
}

/// Raw ring checking a signing input and signature.
type Floor = Box<dyn Fn(&[u8], &[u8]) -> bool>;

struct Case {
    name: &'static str,
    token: String,
    verifier: Verifier,
    floor: Floor,
}

fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    serde_json::json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "exp": now + 3600, "iat": now,
        "jti": "6f1d2c7a-9b1e-4a53-8f0e-3c2d1b0a9f8e", "client_id": "orders-frontend",
        "scope": "orders:read orders:write", "roles": ["reader", "role7"],
    })
}

fn verifier(keys: KeySet) -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISS, keys).audience(AUD))
        .token_cache(token_cache())
        .build()
        .unwrap()
}

/// The verifier's token cache: the default unless `MESHGUARD_BENCH_TOKEN_CACHE` sets a size
/// (`0` verifies every request's signature, as a stream of distinct tokens would need).
fn token_cache() -> usize {
    std::env::var("MESHGUARD_BENCH_TOKEN_CACHE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(meshguard::token::DEFAULT_TOKEN_CACHE)
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn sign(signer: TokenSigner) -> String {
    signer.with_kid("k1").sign(&claims()).unwrap()
}

/// One case per algorithm family; asymmetric keys are generated per run, RSA is the test key
/// of `tests/data`.
fn cases() -> Vec<Case> {
    let rng = SystemRandom::new();
    let mut cases = Vec::new();

    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed_public = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":"k1",
        "x": URL_SAFE_NO_PAD.encode(&ed_public)});
    cases.push(Case {
        name: "EdDSA",
        token: sign(TokenSigner::new(Algorithm::EdDSA, ed_pkcs8.as_ref()).unwrap()),
        verifier: verifier(KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap()),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::ED25519, &ed_public)
                .verify(input, sig)
                .is_ok()
        }),
    });

    let ec_pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec_point = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_pkcs8.as_ref(),
        &rng,
    )
    .unwrap()
    .public_key()
    .as_ref()
    .to_vec();
    let (x, y) = ec_point[1..].split_at(32);
    let jwk = serde_json::json!({"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    cases.push(Case {
        name: "ES256",
        token: sign(TokenSigner::new(Algorithm::ES256, ec_pkcs8.as_ref()).unwrap()),
        verifier: verifier(KeySet::from_jwk_json(jwk.to_string().as_bytes()).unwrap()),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &ec_point)
                .verify(input, sig)
                .is_ok()
        }),
    });

    let rsa_private = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pyjwt/keys/TEST-ONLY-rsa2048.key.pem"
    ))
    .unwrap();
    let rsa_public = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pyjwt/keys/rsa2048.pkcs1.pem"
    ))
    .unwrap();
    let pkcs1 = pem_der(&rsa_public);
    cases.push(Case {
        name: "RS256",
        token: sign(TokenSigner::from_pem(Algorithm::RS256, rsa_private.as_bytes()).unwrap()),
        verifier: verifier(KeySet::from_pem(rsa_public.as_bytes()).unwrap()),
        floor: Box::new(move |input, sig| {
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &pkcs1)
                .verify(input, sig)
                .is_ok()
        }),
    });

    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HMAC_SECRET);
    cases.push(Case {
        name: "HS256",
        token: sign(TokenSigner::new(Algorithm::HS256, HMAC_SECRET).unwrap()),
        verifier: verifier(KeySet::hmac_secret("k1", HMAC_SECRET).unwrap()),
        floor: Box::new(move |input, sig| ring::hmac::verify(&hmac, input, sig).is_ok()),
    });
    cases
}

/// 100 policies over distinct roles and actions, permits and forbids, as a role-based service
/// writes them; the benchmark request (`GET /orders/{id}` by a `reader`) matches the last.
fn policies() -> String {
    let mut text: String = (0..POLICIES - 1)
        .map(|i| match i % 4 {
            3 => format!(
                "forbid(principal in Role::\"suspended{i}\", action == Action::\"DELETE /r{i}/{{id}}\", resource);\n"
            ),
            _ => format!(
                "permit(principal in Role::\"role{i}\", action == Action::\"GET /r{i}/{{id}}\", resource);\n"
            ),
        })
        .collect();
    text.push_str(
        "permit(principal in Role::\"reader\", action == Action::\"GET /orders/{id}\", \
         resource == Application::\"orders\") when { context.scopes.contains(\"orders:read\") };\n",
    );
    text
}

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(policies()))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()
        .unwrap()
}

async fn ok() -> &'static str {
    "ok"
}

fn bare_router() -> Router {
    Router::new().route(ROUTE, get(ok))
}

fn guarded_router(verifier: Verifier) -> Router {
    let guard = Guard::builder()
        .realm(SERVICE)
        .tokens(verifier)
        .policies(engine(), HttpMapping::conventions(SERVICE))
        .build()
        .unwrap();
    bare_router().layer(guard)
}

/// The guard with the token check alone, to separate the cost of the policies.
fn token_only_router(verifier: Verifier) -> Router {
    let guard = Guard::builder()
        .realm(SERVICE)
        .tokens(verifier)
        .build()
        .unwrap();
    bare_router().layer(guard)
}

fn request(bearer: &str) -> Request<Body> {
    Request::get(PATH)
        .header(header::AUTHORIZATION, bearer)
        .body(Body::empty())
        .unwrap()
}

fn call(runtime: &Runtime, router: &Router, bearer: &str) -> StatusCode {
    runtime.block_on(async {
        router
            .clone()
            .oneshot(request(bearer))
            .await
            .unwrap()
            .status()
    })
}

/// Raw cedar-policy deciding what the guard decides for the case's token: the same policies,
/// principal with its roles, action, resource and context, prepared in advance.
struct CedarFloor {
    authorizer: cedar_policy::Authorizer,
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    request: cedar_policy::Request,
}

impl CedarFloor {
    fn new(engine: &PolicyEngine, caller: &Caller) -> Self {
        let http = request("");
        let input = HttpInput::from_request(&http, SystemTime::now()).with_route(ROUTE);
        let mapped = HttpMapping::conventions(SERVICE).map(&input).unwrap();
        let prepared = engine
            .request_for(
                caller,
                mapped.action(),
                mapped.resource(),
                mapped.context().clone(),
            )
            .unwrap();
        let context = cedar_policy::Context::from_json_value(
            serde_json::Value::Object(prepared.context().as_json().unwrap().clone()),
            None,
        )
        .unwrap();
        let user = cedar_policy::Entity::new_no_attrs(
            prepared.principal().as_cedar().clone(),
            ["reader", "role7"]
                .into_iter()
                .map(|role| EntityUid::new("Role", role).unwrap().as_cedar().clone())
                .collect(),
        );
        let floor = Self {
            authorizer: cedar_policy::Authorizer::new(),
            policies: cedar_policy::PolicySet::from_str(&policies()).unwrap(),
            entities: cedar_policy::Entities::from_entities([user], None).unwrap(),
            request: cedar_policy::Request::new(
                prepared.principal().as_cedar().clone(),
                prepared.action().as_cedar().clone(),
                prepared.resource().as_cedar().clone(),
                context,
                None,
            )
            .unwrap(),
        };
        assert_eq!(floor.decide(), cedar_policy::Decision::Allow);
        floor
    }

    fn decide(&self) -> cedar_policy::Decision {
        self.authorizer
            .is_authorized(&self.request, &self.policies, &self.entities)
            .decision()
    }
}

fn in_process(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = bare_router();
    let mut summary = Vec::new();
    for case in cases() {
        let bearer = format!("Bearer {}", case.token);
        let guarded = guarded_router(case.verifier.clone());
        let token_only = token_only_router(case.verifier.clone());
        assert_eq!(call(&runtime, &bare, &bearer), StatusCode::OK);
        assert_eq!(call(&runtime, &token_only, &bearer), StatusCode::OK);
        assert_eq!(call(&runtime, &guarded, &bearer), StatusCode::OK);
        let denied = format!("Bearer {}x", case.token);
        assert_eq!(call(&runtime, &guarded, &denied), StatusCode::UNAUTHORIZED);

        let (input, signature_b64) = case.token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        assert!((case.floor)(input.as_bytes(), &signature));
        let caller = Caller::from_token(case.verifier.verify(&case.token).unwrap());
        let cedar = CedarFloor::new(&engine(), &caller);

        let mut group = c.benchmark_group(format!("in_process/{}", case.name));
        group.bench_function("bare handler", |b| {
            b.iter(|| call(&runtime, &bare, black_box(&bearer)))
        });
        group.bench_function("guarded handler", |b| {
            b.iter(|| call(&runtime, &guarded, black_box(&bearer)))
        });
        group.bench_function("token check alone", |b| {
            b.iter(|| call(&runtime, &token_only, black_box(&bearer)))
        });
        group.bench_function("raw ring verify", |b| {
            b.iter(|| (case.floor)(black_box(input.as_bytes()), black_box(&signature)))
        });
        group.bench_function("raw cedar is_authorized", |b| {
            b.iter(|| black_box(&cedar).decide())
        });
        group.finish();
        if !paired() {
            continue;
        }

        // Alternating batches of the four, so that load drifting on the shared machine hits
        // all of them alike.
        let mut times = [Duration::ZERO; 5];
        for _ in 0..PAIRED_ROUNDS {
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &bare, black_box(&bearer));
            }
            times[0] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &guarded, black_box(&bearer));
            }
            times[1] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                (case.floor)(black_box(input.as_bytes()), black_box(&signature));
            }
            times[2] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                black_box(&cedar).decide();
            }
            times[3] += start.elapsed();
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                call(&runtime, &token_only, black_box(&bearer));
            }
            times[4] += start.elapsed();
        }
        let per = |t: Duration| t.as_secs_f64() * 1e6 / (PAIRED_ROUNDS * PAIRED_BATCH) as f64;
        let [bare_us, guarded_us, ring_us, cedar_us, token_us] = times.map(per);
        summary.push(format!(
            "in_process/{} paired: bare {bare_us:.2} µs, guarded {guarded_us:.2} µs \
             (ratio {:.2}; target <= 1.15), ring {ring_us:.2} µs, cedar {cedar_us:.2} µs, \
             glue = guarded - bare - ring - cedar = {:.2} µs; token check alone {token_us:.2} µs \
             (ratio {:.2})",
            case.name,
            guarded_us / bare_us,
            guarded_us - bare_us - ring_us - cedar_us,
            token_us / bare_us,
        ));
    }
    for line in summary {
        println!("{line}");
    }
}

/// The guard's steps one by one, for the HS256 case (the verification step of the other
/// algorithms is their signature check, measured above).
fn steps(c: &mut Criterion) {
    let case = cases().pop().unwrap();
    let engine = engine();
    let mapping = HttpMapping::conventions(SERVICE);
    let bearer = format!("Bearer {}", case.token);
    let http = request(&bearer);
    let extractor = BearerExtractor::new();
    let verified = case.verifier.verify(&case.token).unwrap();
    let caller = Caller::from_token(verified.clone());
    let now = SystemTime::now();
    let mapped = mapping
        .map(&HttpInput::from_request(&http, now).with_route(ROUTE))
        .unwrap();
    let prepared = engine
        .request_for(
            &caller,
            mapped.action(),
            mapped.resource(),
            mapped.context().clone(),
        )
        .unwrap();
    let decision = engine.authorize_request(prepared.clone());
    assert!(decision.is_allow());
    let cedar = CedarFloor::new(&engine, &caller);
    let context_json = serde_json::Value::Object(prepared.context().as_json().unwrap().clone());
    let user = cedar
        .entities
        .get(prepared.principal().as_cedar())
        .unwrap()
        .clone();

    let mut group = c.benchmark_group("steps/HS256");
    group.bench_function("bearer extraction", |b| {
        b.iter(|| {
            extractor
                .extract(black_box(http.headers()), http.uri())
                .unwrap()
                .len()
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| case.verifier.verify(black_box(&case.token)).unwrap())
    });
    group.bench_function("HttpMapping::map", |b| {
        b.iter(|| {
            mapping
                .map(&HttpInput::from_request(black_box(&http), now).with_route(ROUTE))
                .unwrap()
        })
    });
    group.bench_function("principal mapping (request_for)", |b| {
        b.iter_batched(
            || mapped.context().clone(),
            |context| {
                engine
                    .request_for(&caller, mapped.action(), mapped.resource(), context)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("engine.authorize_request", |b| {
        b.iter_batched(
            || prepared.clone(),
            |request| engine.authorize_request(request).is_allow(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("engine.authorize (mapping + decision)", |b| {
        b.iter_batched(
            || mapped.context().clone(),
            |context| {
                engine
                    .authorize(&caller, mapped.action(), mapped.resource(), context)
                    .is_allow()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("raw cedar is_authorized", |b| {
        b.iter(|| black_box(&cedar).decide())
    });
    group.bench_function("cedar Context::from_json_value", |b| {
        b.iter_batched(
            || context_json.clone(),
            |json| cedar_policy::Context::from_json_value(json, None).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cedar Context::from_pairs (same values)", |b| {
        b.iter(|| context_from_pairs(black_box(&context_json)))
    });
    group.bench_function("cedar Entities::add_entities (the principal)", |b| {
        b.iter_batched(
            || user.clone(),
            |user| {
                cedar_policy::Entities::empty()
                    .add_entities([user], None)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("extension inserts", |b| {
        b.iter(|| {
            let mut extensions = http::Extensions::new();
            extensions.insert(verified.clone());
            extensions.insert(caller.clone());
            extensions.insert(decision.clone());
            extensions.len()
        })
    });
    group.bench_function("span and counter", |b| {
        b.iter(|| {
            let span = tracing::info_span!(
                target: "meshguard::request",
                "meshguard",
                caller = tracing::field::Empty,
                duration_us = tracing::field::Empty,
            );
            metrics::counter!("meshguard_decisions_total", "decision" => "allow").increment(1);
            span.is_disabled()
        })
    });
    group.finish();
    if !paired() {
        return;
    }

    // The steps that matter, in alternating batches: what each costs next to raw Cedar.
    let steps: [(&str, &dyn Fn()); 8] = [
        ("bearer extraction", &|| {
            black_box(
                extractor
                    .extract(black_box(http.headers()), http.uri())
                    .is_ok(),
            );
        }),
        ("verify", &|| {
            black_box(case.verifier.verify(black_box(&case.token)).is_ok());
        }),
        ("HttpMapping::map", &|| {
            black_box(
                mapping
                    .map(&HttpInput::from_request(black_box(&http), now).with_route(ROUTE))
                    .is_ok(),
            );
        }),
        ("principal mapping (request_for)", &|| {
            let context = mapped.context().clone();
            black_box(
                engine
                    .request_for(&caller, mapped.action(), mapped.resource(), context)
                    .is_ok(),
            );
        }),
        ("engine.authorize_request", &|| {
            black_box(engine.authorize_request(prepared.clone()).is_allow());
        }),
        ("raw cedar is_authorized", &|| {
            black_box(black_box(&cedar).decide());
        }),
        ("cedar Context::from_json_value", &|| {
            black_box(cedar_policy::Context::from_json_value(context_json.clone(), None).is_ok());
        }),
        ("cedar Context::from_pairs (same values)", &|| {
            black_box(context_from_pairs(black_box(&context_json)));
        }),
    ];
    let mut times = [Duration::ZERO; 8];
    for _ in 0..PAIRED_ROUNDS {
        for ((_, step), time) in steps.iter().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..PAIRED_BATCH {
                step();
            }
            *time += start.elapsed();
        }
    }
    for ((name, _), time) in steps.iter().zip(times) {
        println!(
            "steps/HS256 paired: {name} {:.2} µs",
            time.as_secs_f64() * 1e6 / (PAIRED_ROUNDS * PAIRED_BATCH) as f64
        );
    }
}

/// The JSON context as Cedar values built directly, without cedar's JSON parser: what a
/// direct conversion could cost (it handles only what `HttpMapping::conventions` produces).
fn context_from_pairs(json: &serde_json::Value) -> cedar_policy::Context {
    fn value(json: &serde_json::Value) -> cedar_policy::RestrictedExpression {
        use cedar_policy::RestrictedExpression as E;
        match json {
            serde_json::Value::Bool(b) => E::new_bool(*b),
            serde_json::Value::Number(n) => E::new_long(n.as_i64().unwrap()),
            serde_json::Value::String(s) => E::new_string(s.clone()),
            serde_json::Value::Array(items) => E::new_set(items.iter().map(value)),
            serde_json::Value::Object(map) => match map.get("__extn") {
                Some(extn) => E::new_datetime(extn["arg"].as_str().unwrap()),
                None => E::new_record(map.iter().map(|(k, v)| (k.clone(), value(v)))).unwrap(),
            },
            serde_json::Value::Null => panic!("no null in the context"),
        }
    }
    let fields = json.as_object().unwrap();
    cedar_policy::Context::from_pairs(fields.iter().map(|(k, v)| (k.clone(), value(v)))).unwrap()
}

/// A server on 127.0.0.1 and its keep-alive client connections.
struct Loopback {
    clients: Vec<SendRequest<Empty<Bytes>>>,
}

impl Loopback {
    async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(connect(addr).await);
        }
        Self { clients }
    }

    /// Sends `total` requests spread over the connections, each connection one at a time.
    async fn batch(&mut self, bearer: &str, total: usize) {
        let per_connection = total / self.clients.len();
        let mut tasks = tokio::task::JoinSet::new();
        for mut client in self.clients.drain(..) {
            let bearer = bearer.to_owned();
            tasks.spawn(async move {
                for _ in 0..per_connection {
                    assert_eq!(send(&mut client, &bearer).await, StatusCode::OK);
                }
                client
            });
        }
        while let Some(client) = tasks.join_next().await {
            self.clients.push(client.unwrap());
        }
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn send(client: &mut SendRequest<Empty<Bytes>>, bearer: &str) -> StatusCode {
    client.ready().await.unwrap();
    let request = Request::get(PATH)
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, bearer)
        .body(Empty::new())
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

fn loopback(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut bare = runtime.block_on(Loopback::start(bare_router()));
    let mut summary = Vec::new();
    for case in cases() {
        let bearer = format!("Bearer {}", case.token);
        let mut guarded = runtime.block_on(Loopback::start(guarded_router(case.verifier.clone())));
        let mut token_only =
            runtime.block_on(Loopback::start(token_only_router(case.verifier.clone())));
        runtime.block_on(guarded.batch(&bearer, CONNECTIONS));
        runtime.block_on(token_only.batch(&bearer, CONNECTIONS));

        let mut group = c.benchmark_group(format!("loopback/{}", case.name));
        group.sample_size(10);
        group.throughput(criterion::Throughput::Elements(LOOPBACK_BATCH as u64));
        group.bench_function("bare handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(bare.batch(&bearer, LOOPBACK_BATCH));
                }
                start.elapsed()
            })
        });
        group.bench_function("guarded handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(guarded.batch(&bearer, LOOPBACK_BATCH));
                }
                start.elapsed()
            })
        });
        group.finish();
        if !paired() {
            continue;
        }

        let (mut bare_time, mut guarded_time, mut token_time) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..PAIRED_LOOPBACK_ROUNDS {
            let start = Instant::now();
            runtime.block_on(bare.batch(&bearer, LOOPBACK_BATCH));
            bare_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(guarded.batch(&bearer, LOOPBACK_BATCH));
            guarded_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(token_only.batch(&bearer, LOOPBACK_BATCH));
            token_time += start.elapsed();
        }
        let per =
            |t: Duration| t.as_secs_f64() * 1e6 / (PAIRED_LOOPBACK_ROUNDS * LOOPBACK_BATCH) as f64;
        summary.push(format!(
            "loopback/{} paired ({CONNECTIONS} connections): bare {:.2} µs/request, guarded \
             {:.2} µs/request, ratio {:.2} (target <= 1.15); token check alone {:.2} \
             µs/request, ratio {:.2}",
            case.name,
            per(bare_time),
            per(guarded_time),
            guarded_time.as_secs_f64() / bare_time.as_secs_f64(),
            per(token_time),
            token_time.as_secs_f64() / bare_time.as_secs_f64(),
        ));
    }
    for line in summary {
        println!("{line}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = in_process, steps, loopback
}
criterion_main!(benches);
