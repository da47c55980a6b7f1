//! What a guarded axum server leaves for operators after a known mix of requests: the
//! `metrics` counters of decisions and rejections, and the `meshguard` span of each request.
//!
//! Each test runs its server and client on one current-thread runtime inside a recorder or
//! subscriber scoped to that thread, so tests running side by side never count each
//! other's requests.
//!
//! A binary of its own: tracing caches each callsite's interest process-wide, and a test on
//! another thread that reaches the `meshguard` span first, while no subscriber is scoped
//! anywhere, can leave this test's subscriber with no span at all (seen as 0 of 13 spans
//! when these tests shared the guard binary).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use http::header::AUTHORIZATION;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::guard::{DECISIONS_TOTAL, GuardLayer, REJECTIONS_TOTAL, RouteRule};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &[u8] = b"guard-metrics-test-secret-0123456789abc";
const ISS: &str = "https://idp.example";
const AUD: &str = "orders";

const POLICIES: &str = r#"
@id("alice-orders")
permit(principal == User::"alice", action, resource == Application::"orders");

@id("admin-closed")
forbid(principal, action == Action::"GET /admin", resource);
"#;

fn signed(secret: &[u8], sub: &str, exp_offset: i64, extra: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({"iss": ISS, "aud": AUD, "sub": sub, "exp": now + exp_offset});
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    TokenSigner::new(Algorithm::HS256, secret)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap()
}

async fn serve() -> SocketAddr {
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
        .build()
        .unwrap();
    let engine = PolicyEngine::builder(PolicySource::text(POLICIES))
        .build()
        .unwrap();
    let guard = GuardLayer::builder()
        .realm("orders")
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions("orders"))
        .public("/health")
        .route(
            "POST /orders/{id}",
            RouteRule::new().scopes(["orders:write"]),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async { "order" }).merge(post(|| async { "posted" })),
        )
        .route("/admin", get(|| async { "admin" }))
        .route("/health", get(|| async { "ok" }))
        .layer(guard);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn send(addr: SocketAddr, method: Method, path: &str, authorization: Option<&str>) -> u16 {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    status
}

/// The known mix: each request with the status it must get.
async fn known_mix(addr: SocketAddr) {
    let bearer = |token: String| format!("Bearer {token}");
    let alice = bearer(signed(SECRET, "alice", 300, json!({})));
    let bob = bearer(signed(SECRET, "bob", 300, json!({})));
    let expired = bearer(signed(SECRET, "alice", -3600, json!({})));
    let forged = bearer(signed(
        b"another-secret-0123456789abcdefghijk",
        "alice",
        300,
        json!({}),
    ));
    let reader = bearer(signed(
        SECRET,
        "alice",
        300,
        json!({"scope": "orders:read"}),
    ));
    let writer = bearer(signed(
        SECRET,
        "alice",
        300,
        json!({"scope": "orders:write"}),
    ));
    let requests: Vec<(Method, &str, Option<&str>, u16)> = vec![
        (Method::GET, "/orders/1", Some(&alice), 200),
        (Method::GET, "/orders/2", Some(&alice), 200),
        (Method::POST, "/orders/3", Some(&writer), 200),
        (Method::GET, "/orders/1", Some(&bob), 403),
        (Method::GET, "/orders/2", Some(&bob), 403),
        (Method::GET, "/admin", Some(&alice), 403),
        (Method::GET, "/orders/1", None, 401),
        (Method::GET, "/orders/1", Some(&expired), 401),
        (Method::GET, "/orders/2", Some(&expired), 401),
        (Method::GET, "/orders/1", Some(&forged), 401),
        (Method::POST, "/orders/3", Some(&reader), 403),
        (Method::GET, "/orders/1", Some("Bearer a b"), 400),
        (Method::GET, "/health", None, 200),
    ];
    for (method, path, authorization, status) in requests {
        assert_eq!(
            send(addr, method.clone(), path, authorization).await,
            status,
            "{method} {path} {authorization:?}"
        );
    }
}

/// tracing caches per call site whether anyone listens; a scoped subscriber set while
/// another test's thread registers the same call sites can lose that race, so the tests of
/// this binary take turns.
static TURNS: Mutex<()> = Mutex::new(());

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn decisions_and_rejections_are_counted_by_label() {
    let _turn = TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        current_thread().block_on(async { known_mix(serve().await).await });
    });
    let mut counters: BTreeMap<(String, Vec<(String, String)>), u64> = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let DebugValue::Counter(count) = value else {
            panic!("only counters are expected: {key:?}");
        };
        let key = key.key();
        let labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        counters.insert((key.name().to_owned(), labels), count);
    }
    let decision = |d: &str| {
        (
            DECISIONS_TOTAL.to_owned(),
            vec![("decision".to_owned(), d.to_owned())],
        )
    };
    let rejection = |stage: &str, reason: &str| {
        (
            REJECTIONS_TOTAL.to_owned(),
            vec![
                ("stage".to_owned(), stage.to_owned()),
                ("reason".to_owned(), reason.to_owned()),
            ],
        )
    };
    let expected = BTreeMap::from([
        (decision("allow"), 3),
        (decision("deny"), 3),
        (rejection("policy", "no_permit"), 2),
        (rejection("policy", "forbidden"), 1),
        (rejection("token", "missing_token"), 1),
        (rejection("token", "expired"), 2),
        (rejection("token", "bad_signature"), 1),
        (rejection("token", "malformed_request"), 1),
        (rejection("scope", "insufficient_scope"), 1),
    ]);
    assert_eq!(counters, expected);
}

/// The fields recorded on one span, by name.
#[derive(Debug, Clone, Default)]
struct SpanRecord {
    target: String,
    name: String,
    fields: BTreeMap<String, String>,
}

impl tracing::field::Visit for SpanRecord {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }
}

/// A subscriber keeping every span and what was recorded on it; nothing else.
#[derive(Clone, Default)]
struct SpanCapture(Arc<Mutex<Vec<SpanRecord>>>);

impl tracing::Subscriber for SpanCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut record = SpanRecord {
            target: attributes.metadata().target().to_owned(),
            name: attributes.metadata().name().to_owned(),
            ..SpanRecord::default()
        };
        attributes.record(&mut record);
        let mut spans = self.0.lock().unwrap();
        spans.push(record);
        tracing::span::Id::from_u64(spans.len() as u64)
    }

    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        let index = usize::try_from(span.into_u64() - 1).unwrap();
        values.record(&mut spans[index]);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn each_request_has_a_span_with_caller_action_decision_and_policies() {
    let _turn = TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let capture = SpanCapture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        // tracing-core caches callsite interest process-wide: rebuild it with this
        // subscriber in place, so callsites another test registered stay visible here.
        tracing::callsite::rebuild_interest_cache();
        current_thread().block_on(async { known_mix(serve().await).await });
    });
    let spans: Vec<SpanRecord> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.target == "meshguard::request" && s.name == "meshguard")
        .cloned()
        .collect();
    assert_eq!(spans.len(), 13, "{spans:#?}");
    let field = |span: &SpanRecord, name: &str| span.fields.get(name).cloned();
    for span in &spans {
        let duration = field(span, "duration_us").expect("duration_us");
        assert!(duration.parse::<u64>().is_ok(), "{span:?}");
    }

    let allowed: Vec<_> = spans
        .iter()
        .filter(|s| field(s, "decision").as_deref() == Some("allow"))
        .collect();
    assert_eq!(allowed.len(), 3, "{spans:#?}");
    for span in &allowed {
        assert_eq!(field(span, "caller").as_deref(), Some(r#"User::"alice""#));
        assert_eq!(field(span, "policies").as_deref(), Some("alice-orders"));
        assert_eq!(field(span, "rejected"), None);
    }
    let actions: Vec<_> = allowed.iter().map(|s| field(s, "action")).collect();
    assert!(actions.contains(&Some(r#"Action::"GET /orders/{id}""#.to_owned())));
    assert!(actions.contains(&Some(r#"Action::"POST /orders/{id}""#.to_owned())));

    let forbidden = spans
        .iter()
        .find(|s| field(s, "rejected").as_deref() == Some("forbidden"))
        .expect("the forbidden request");
    assert_eq!(field(forbidden, "decision").as_deref(), Some("deny"));
    assert_eq!(
        field(forbidden, "caller").as_deref(),
        Some(r#"User::"alice""#)
    );
    assert_eq!(
        field(forbidden, "action").as_deref(),
        Some(r#"Action::"GET /admin""#)
    );
    assert_eq!(
        field(forbidden, "policies").as_deref(),
        Some("admin-closed")
    );

    let no_permit: Vec<_> = spans
        .iter()
        .filter(|s| field(s, "rejected").as_deref() == Some("no_permit"))
        .collect();
    assert_eq!(no_permit.len(), 2);
    for span in no_permit {
        assert_eq!(field(span, "caller").as_deref(), Some(r#"User::"bob""#));
        assert_eq!(field(span, "decision").as_deref(), Some("deny"));
        assert_eq!(field(span, "policies").as_deref(), Some(""));
    }

    // Refused before the policies: no decision on the span, only the reason.
    let mut early: Vec<String> = spans
        .iter()
        .filter(|s| field(s, "decision").is_none())
        .filter_map(|s| field(s, "rejected"))
        .collect();
    early.sort();
    assert_eq!(
        early,
        [
            "bad_signature",
            "expired",
            "expired",
            "insufficient_scope",
            "malformed_request",
            "missing_token",
        ]
    );
    // The public request: nothing checked, nothing but its duration.
    let quiet: Vec<_> = spans.iter().filter(|s| s.fields.len() == 1).collect();
    assert_eq!(quiet.len(), 1, "{spans:#?}");
    assert!(quiet[0].fields.contains_key("duration_us"));
    assert!(
        spans
            .iter()
            .all(|s| !s.fields.values().any(|v| v.contains("eyJ"))),
        "a token on a span: {spans:#?}"
    );
}
