//! Load with faults: tens of thousands of requests of every kind (valid, expired, forged,
//! denied, malformed, oversized, unknown key) through the axum documents service and a
//! guarded tonic service, with real hyper HTTP/1.1 and HTTP/2 clients and a tonic client,
//! while the JWKS endpoint rotates keys, goes down, hangs and serves garbage and the policy
//! directory is rewritten with good and broken sets. Every answer is checked, no answer may
//! be a 5xx or missing, no call may wait past the key fetch's configured bound, and the
//! resident set may not grow without bound. Also: a panicking entity provider denies its
//! request and the service keeps serving. Loopback only; every loop is bounded.
//!
//! Its own test binary: it reads the process's resident set, which other tests in the same
//! process would move.
#![cfg(all(
    feature = "axum",
    feature = "tonic",
    feature = "rustls",
    feature = "remote-jwks"
))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The example's service itself: its engine, guard, routes and handlers.
#[path = "../examples/axum_service/service.rs"]
mod documents_service;
mod load_support;
mod remote_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use load_support::{
    Credentials, Expected, HEALTH_POLICIES, HttpClient, ISS, Kind, MAX_TOKEN_BYTES, Outcome,
    grpc_check, rss_kib, serve_documents, serve_health, wait_until,
};
use meshguard::guard::GuardLayer;
use meshguard::policy::{
    Entities, EntityUid, HttpMapping, PolicyEngine, PolicySource, PolicyWatcher, PrincipalMapping,
    ProviderError, ReloadEvent, Request,
};
use meshguard::token::Verifier;
use meshguard::token::remote::RemoteJwks;
use remote_support::{AUDIENCE, JwksServer, ManualClock, Mode, TestKey, jwks};
use tonic::Code;
use tonic::transport::Channel;

/// HTTP requests per phase (half over HTTP/1.1, half over HTTP/2) and gRPC calls per phase.
const HTTP_PER_PHASE: usize = 3_000;
const GRPC_PER_PHASE: usize = 750;
/// Calls in flight at once, per protocol.
const CONCURRENCY: usize = 32;
/// The remote source's bounds on one fetch.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// A call may take the fetch's bounds plus this much scheduling slack on a loaded machine.
const SLACK: Duration = Duration::from_secs(2);
/// Growth of the resident set allowed between the end of warm-up and the end of the run.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// The test clock moves this far between phases: one refresh interval, so a fetch may start.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const MAX_STALE: Duration = Duration::from_secs(600);

/// The JWKS endpoint's behaviour during a phase.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Serving,
    /// A new key replaces the old one.
    Rotated,
    Down,
    Hanging,
    Garbage,
    /// Down, with the clock past the keys' lifetime and stale period.
    DownPastStale,
    /// Serving again after the outage.
    Recovered,
}

const PHASES: [Fault; 7] = [
    Fault::Serving,
    Fault::Rotated,
    Fault::Down,
    Fault::Hanging,
    Fault::Garbage,
    Fault::DownPastStale,
    Fault::Recovered,
];

#[derive(Default)]
struct Tally {
    /// (phase, kind) → answers checked.
    answers: BTreeMap<(String, Kind), usize>,
    wrong: Vec<String>,
    server_errors: usize,
    timed_out: usize,
    failed: usize,
    slowest: Duration,
}

impl Tally {
    fn record(
        &mut self,
        phase: Fault,
        kind: Kind,
        expected: Expected,
        outcome: Outcome,
        took: Duration,
    ) {
        self.slowest = self.slowest.max(took);
        *self
            .answers
            .entry((format!("{phase:?}"), kind))
            .or_default() += 1;
        let right = match &outcome {
            Outcome::Answer { status, body } => {
                if status.is_server_error() {
                    self.server_errors += 1;
                }
                *status == expected.status && body.contains(expected.detail)
            }
            Outcome::Grpc { code, message } => {
                *code == expected.code() && (*code == Code::Ok || message == expected.detail)
            }
            Outcome::TimedOut => {
                self.timed_out += 1;
                false
            }
            Outcome::Failed(_) => {
                self.failed += 1;
                false
            }
        };
        if !right && self.wrong.len() < 20 {
            self.wrong.push(format!(
                "{phase:?} {kind:?}: expected {expected:?}, got {outcome:?}"
            ));
        }
    }
}

/// Held by each test for its whole run: the resident set is the process's, and a panic's
/// backtrace (the provider test panics on purpose) loads the binary's debug information,
/// tens of MiB that must not land between the load test's two readings.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_services_answer_correctly_under_load_while_keys_and_policies_fail() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let first = TestKey::es256("load-1");
    let second = TestKey::es256("load-2");
    let never_published = TestKey::es256("load-unpublished");
    let not_yet_retired = TestKey::es256("load-0");
    let idp = JwksServer::start(jwks(&[&first])).await;
    let clock = ManualClock::new();
    let verifier = Verifier::builder()
        .issuer(
            meshguard::token::Issuer::remote(
                ISS,
                RemoteJwks::url(idp.jwks_url())
                    .refresh_interval(REFRESH_INTERVAL)
                    .max_stale(MAX_STALE)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .request_timeout(FETCH_TIMEOUT),
            )
            .audience(AUDIENCE),
        )
        .max_token_bytes(MAX_TOKEN_BYTES)
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();

    // The axum example's policies and schema, in a directory the test rewrites.
    let dir = temp_dir("load-faults");
    let policy_file = dir.join("policies").join("documents.cedar");
    let good_policies = include_str!("../examples/axum_service/policies/documents.cedar");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(&policy_file, good_policies).unwrap();
    std::fs::write(
        dir.join("documents.cedarschema"),
        include_str!("../examples/axum_service/documents.cedarschema"),
    )
    .unwrap();
    let engine = documents_service::engine(
        &dir.join("policies"),
        Some(&dir.join("documents.cedarschema")),
    )
    .unwrap();
    let (documents_policies, _documents_watcher) =
        Watched::start(&engine, policy_file, good_policies);
    let http_addr =
        serve_documents(documents_service::router(verifier.clone(), engine, false).unwrap()).await;
    // The health service's policies, in a second watched directory.
    let health_file = dir.join("health").join("health.cedar");
    std::fs::create_dir_all(dir.join("health")).unwrap();
    std::fs::write(&health_file, HEALTH_POLICIES).unwrap();
    let health_engine = PolicyEngine::builder(PolicySource::path(dir.join("health")))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()
        .unwrap();
    let (health_policies, _health_watcher) =
        Watched::start(&health_engine, health_file, HEALTH_POLICIES);
    let grpc_addr = serve_health(
        GuardLayer::builder()
            .tokens(verifier.clone())
            .policies(health_engine, HttpMapping::grpc("health"))
            .build()
            .unwrap(),
    )
    .await;
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut tally = Tally::default();
    let mut rss_after_warm_up = 0;
    let (mut current, mut retired) = (&first, &not_yet_retired);
    // Fetch attempts and failures of the key source per phase: each fault was met.
    let mut fetches_per_phase = Vec::new();
    let source_counts = || {
        let status = verifier.remote_status();
        (status[0].fetches(), status[0].failures())
    };
    for (index, phase) in PHASES.into_iter().enumerate() {
        let before = source_counts();
        let keys_usable = !matches!(phase, Fault::DownPastStale);
        match phase {
            Fault::Serving => {}
            Fault::Rotated => {
                idp.set_jwks(jwks(&[&second]));
                (current, retired) = (&second, &first);
            }
            Fault::Down | Fault::DownPastStale => idp.set_mode(Mode::Down),
            Fault::Hanging => idp.set_mode(Mode::Hang),
            Fault::Garbage => idp.set_mode(Mode::Garbage("<html>maintenance</html>".to_owned())),
            Fault::Recovered => idp.set_mode(Mode::Serve),
        }
        // One refresh interval: each phase may fetch once for an unknown key.
        clock.advance(REFRESH_INTERVAL.as_secs() as i64 + 1);
        if matches!(phase, Fault::DownPastStale) {
            clock.advance(remote_support_ttl() + MAX_STALE.as_secs() as i64 + 1);
        }
        let credentials = Arc::new(Credentials::new(
            &format!("{index}"),
            current,
            retired,
            &never_published,
        ));
        // A first valid request settles the phase's key set (the rotation's fetch, the
        // recovery's), so that the batch's expectations do not depend on request order.
        let mut probe = HttpClient::new(http_addr, false);
        let settled = probe
            .get(
                "/documents/d1",
                credentials.header(Kind::Valid),
                FETCH_TIMEOUT + CONNECT_TIMEOUT + SLACK,
            )
            .await;
        tally.record(
            phase,
            Kind::Valid,
            Expected::of(Kind::Valid, keys_usable),
            settled,
            Duration::ZERO,
        );

        let rewriting = Arc::new(AtomicBool::new(true));
        let rewriters = [&documents_policies, &health_policies].map(|watched| {
            tokio::spawn(rewrite_policies(
                Arc::clone(watched),
                Arc::clone(&rewriting),
            ))
        });
        let (http, grpc) = tokio::join!(
            http_batch(http_addr, keys_usable, Arc::clone(&credentials)),
            grpc_batch(channel.clone(), keys_usable, Arc::clone(&credentials)),
        );
        rewriting.store(false, Ordering::SeqCst);
        for rewriter in rewriters {
            rewriter.await.unwrap();
        }
        for (kind, expected, outcome, took) in http.into_iter().chain(grpc) {
            tally.record(phase, kind, expected, outcome, took);
        }
        let after = source_counts();
        fetches_per_phase.push((phase, after.0 - before.0, after.1 - before.1));
        if index == 0 {
            rss_after_warm_up = rss_kib();
        }
    }
    let rss_at_end = rss_kib();
    let elapsed = started.elapsed();

    let total: usize = tally.answers.values().sum();
    eprintln!(
        "load_faults: {total} answers in {elapsed:?}, slowest {:?}; RSS after warm-up {rss_after_warm_up} KiB, \
         at end {rss_at_end} KiB; policy reloads (documents, health) applied {:?}, refused {:?}; \
         JWKS requests reaching the endpoint {}; (phase, fetches, failed fetches) {fetches_per_phase:?}",
        tally.slowest,
        [&documents_policies, &health_policies].map(|w| w.applied.load(Ordering::SeqCst)),
        [&documents_policies, &health_policies].map(|w| w.refused.load(Ordering::SeqCst)),
        idp.jwks_requests(),
    );
    for ((phase, kind), count) in &tally.answers {
        eprintln!("  {phase:<14} {kind:?}: {count}");
    }
    assert!(tally.wrong.is_empty(), "wrong answers: {:#?}", tally.wrong);
    assert_eq!(tally.server_errors, 0, "5xx answers");
    assert_eq!(tally.timed_out, 0, "calls past the deadline");
    assert_eq!(tally.failed, 0, "failed connections");
    assert!(
        rss_at_end.saturating_sub(rss_after_warm_up) < RSS_GROWTH_BOUND_KIB,
        "resident set grew from {rss_after_warm_up} KiB to {rss_at_end} KiB"
    );
    for (phase, fetches, failures) in fetches_per_phase {
        assert!(fetches >= 1, "{phase:?}: no fetch");
        let failing = !matches!(phase, Fault::Serving | Fault::Rotated | Fault::Recovered);
        assert_eq!(
            failures >= 1,
            failing,
            "{phase:?}: {failures} failed fetches"
        );
    }
    for watched in [&documents_policies, &health_policies] {
        assert!(watched.applied.load(Ordering::SeqCst) >= PHASES.len() as u64);
        assert!(watched.refused.load(Ordering::SeqCst) >= PHASES.len() as u64);
    }
    assert!(total >= PHASES.len() * (HTTP_PER_PHASE + GRPC_PER_PHASE));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The remote source's default key lifetime, in seconds (the JWKS sets no `max-age`).
fn remote_support_ttl() -> i64 {
    meshguard::token::remote::DEFAULT_TTL.as_secs() as i64
}

type Answers = Vec<(Kind, Expected, Outcome, Duration)>;

/// `HTTP_PER_PHASE` requests, `CONCURRENCY` at a time, half of the workers on HTTP/2.
async fn http_batch(addr: SocketAddr, keys_usable: bool, credentials: Arc<Credentials>) -> Answers {
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let credentials = Arc::clone(&credentials);
        workers.spawn(async move {
            let mut client = HttpClient::new(addr, worker % 2 == 1);
            let mut answers = Answers::new();
            for n in (worker..HTTP_PER_PHASE).step_by(CONCURRENCY) {
                let kind = Kind::MIX[n % Kind::MIX.len()];
                let start = Instant::now();
                let outcome = client
                    .get("/documents/d1", credentials.header(kind), deadline())
                    .await;
                answers.push((
                    kind,
                    Expected::of(kind, keys_usable),
                    outcome,
                    start.elapsed(),
                ));
            }
            answers
        });
    }
    workers.join_all().await.into_iter().flatten().collect()
}

/// `GRPC_PER_PHASE` calls of `Health/Check` on one HTTP/2 channel, `CONCURRENCY` at a time.
async fn grpc_batch(channel: Channel, keys_usable: bool, credentials: Arc<Credentials>) -> Answers {
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (channel, credentials) = (channel.clone(), Arc::clone(&credentials));
        workers.spawn(async move {
            let mut answers = Answers::new();
            for n in (worker..GRPC_PER_PHASE).step_by(CONCURRENCY) {
                let kind = Kind::MIX[(n + 3) % Kind::MIX.len()];
                let start = Instant::now();
                let outcome = grpc_check(&channel, credentials.header(kind), deadline()).await;
                answers.push((
                    kind,
                    Expected::of(kind, keys_usable),
                    outcome,
                    start.elapsed(),
                ));
            }
            answers
        });
    }
    workers.join_all().await.into_iter().flatten().collect()
}

/// A call waiting for a key fetch may wait for its connect and request bounds, no longer.
fn deadline() -> Duration {
    CONNECT_TIMEOUT + FETCH_TIMEOUT + SLACK
}

/// A policy file the test rewrites, and the verdicts of its engine's watcher.
struct Watched {
    file: PathBuf,
    good: &'static str,
    applied: AtomicU64,
    refused: AtomicU64,
}

impl Watched {
    /// Watches `engine` (every 50 ms), whose source holds `file`, now `good`.
    fn start(
        engine: &PolicyEngine,
        file: PathBuf,
        good: &'static str,
    ) -> (Arc<Self>, PolicyWatcher) {
        let watched = Arc::new(Self {
            file,
            good,
            applied: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let counting = Arc::clone(&watched);
        let watcher = engine
            .watch(Duration::from_millis(50), move |event| match event {
                ReloadEvent::Reloaded { .. } => {
                    counting.applied.fetch_add(1, Ordering::SeqCst);
                }
                ReloadEvent::Failed { .. } => {
                    counting.refused.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            })
            .unwrap();
        (watched, watcher)
    }
}

/// While `running`, alternates a broken policy file and a good one (the original with a
/// changed comment: the same decisions), waiting for the watcher's verdict on each.
async fn rewrite_policies(watched: Arc<Watched>, running: Arc<AtomicBool>) {
    // Every good text differs from all earlier ones, so that each is a change to reload.
    static REWRITES: AtomicU64 = AtomicU64::new(0);
    // Broken first, good last: the file each batch ends with is a good one.
    for round in 0..1_000u32 {
        if round % 2 == 0 && round > 0 && !running.load(Ordering::SeqCst) {
            return;
        }
        let (text, counter) = if round % 2 == 0 {
            (
                "permit (principal, action, resource) when {".to_owned(),
                &watched.refused,
            )
        } else {
            let rewrite = REWRITES.fetch_add(1, Ordering::SeqCst);
            (
                format!("{}\n// rewrite {rewrite}\n", watched.good),
                &watched.applied,
            )
        };
        let before = counter.load(Ordering::SeqCst);
        std::fs::write(&watched.file, text).unwrap();
        let seen = wait_until(Duration::from_secs(10), || {
            counter.load(Ordering::SeqCst) > before
        })
        .await;
        assert!(
            seen,
            "the watcher did not act on rewrite {round} of {:?}",
            watched.file
        );
    }
}

/// Documents as a handler's entity provider would load them; `boom` makes the provider
/// panic, synchronously or inside its future.
fn provider_entities(request: &Request) -> Result<Entities, ProviderError> {
    let resource = request.resource();
    if resource.id() == "boom" {
        panic!("the document store is corrupt");
    }
    let document = meshguard::policy::Entity::builder(resource.clone())
        .attribute(
            "owner",
            &serde_json::json!({ "__entity": { "type": "User", "id": "alice" } }),
        )?
        .build()?;
    Ok(Entities::from_iter([document]))
}

struct AsyncDocuments;

impl meshguard::policy::EntityProvider for AsyncDocuments {
    async fn entities(&self, request: &Request) -> Result<Entities, ProviderError> {
        // A store lookup: the panic comes at a later poll, not at the call.
        tokio::task::yield_now().await;
        provider_entities(request)
    }
}

async fn read_with_provider(
    State(engine): State<PolicyEngine>,
    axum::extract::Path((style, id)): axum::extract::Path<(String, String)>,
) -> Response {
    let request = Request::new(
        EntityUid::new("User", "alice").unwrap(),
        EntityUid::new("Action", "read").unwrap(),
        EntityUid::new("Document", &id).unwrap(),
    );
    let decision = if style == "sync" {
        engine.authorize_with(request, &provider_entities).await
    } else {
        engine.authorize_with(request, &AsyncDocuments).await
    };
    if decision.is_allow() {
        StatusCode::OK.into_response()
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_entity_provider_denies_its_request_and_the_service_keeps_serving() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"@id("owners-read") permit(principal, action == Action::"read", resource)
           when { resource.owner == principal };"#,
    ))
    .build()
    .unwrap();
    let app = Router::new()
        .route("/{style}/{id}", get(read_with_provider))
        .with_state(engine);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });

    for http2 in [false, true] {
        // One connection throughout: a panic escaping the handler would also close it.
        let mut client = HttpClient::new(addr, http2);
        for round in 0..10 {
            for style in ["sync", "async"] {
                for (id, expected) in [("boom", StatusCode::FORBIDDEN), ("d1", StatusCode::OK)] {
                    let outcome = client
                        .get(
                            &format!("/{style}/{id}"),
                            "Bearer unused",
                            Duration::from_secs(10),
                        )
                        .await;
                    assert!(
                        matches!(outcome, Outcome::Answer { status, .. } if status == expected),
                        "round {round}, {style} {id}, HTTP/2 {http2}: {outcome:?}"
                    );
                }
            }
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshguard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
