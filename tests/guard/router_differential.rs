//! Differential test of the guard's rules against axum's own router (issue 10).
//!
//! Generated routers — literal, parameter and wildcard routes, a nested router, a fallback —
//! each route with a rule of its own written with the same template: public, optional token,
//! or a scope `rN` only that route's rule demands. Thousands of generated method × path
//! pairs (percent-encodings of any byte, unicode, trailing and double slashes, dot
//! segments, HEAD and OPTIONS) go through the real router with the guard, and for each
//! request that a handler serves:
//!
//! - a token holding every scope but the route's own never reaches a scoped route: the rule
//!   applied is the route's, not a neighbour's;
//! - no token reaches a route whose rule is not public or optional;
//! - a public or optional route is reached without a token whenever its path is spelled
//!   plainly (the guard applied the relaxation written for that route);
//! - the fallback, which no rule names, is never reached without a token.
//!
//! The requests go through `Router` in-process (`tower::ServiceExt::oneshot`): the same
//! router, guard and handlers a server runs, minus the socket, so that thousands of cases
//! stay within seconds; tests/guard/request_view.rs sends the findings' exact shapes over a
//! real socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, any, get};
use http::{HeaderValue, Method, Request, StatusCode};
use meshguard::guard::{GuardLayer, RouteRule};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use serde_json::json;
use tower::ServiceExt as _;

const SECRET: &[u8] = b"differential-test-secret-0123456789abcdef";
const ISS: &str = "https://idp.example";
const AUD: &str = "svc";
const ROUTER_SEEDS: u64 = 24;
const REQUESTS_PER_ROUTER: usize = 250;

/// A small deterministic generator (xorshift64*), so failures reproduce by seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const LITERALS: &[&str] = &["a", "b", "docs", "me", "v1", "x-y", "file.txt", "~u", "_"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Optional,
    Scoped,
}

#[derive(Debug, Clone)]
struct Route {
    template: String,
    get_only: bool,
    access: Access,
}

/// A template of literal, parameter and wildcard segments.
fn template(rng: &mut Rng, index: usize) -> String {
    let depth = 1 + rng.below(3);
    let mut segments = Vec::new();
    for i in 0..depth {
        let last = i + 1 == depth;
        let roll = rng.below(10);
        if last && roll == 0 {
            segments.push(format!("{{*w{index}}}"));
        } else if roll < 3 {
            segments.push(format!("{{p{index}x{i}}}"));
        } else {
            segments.push((*rng.pick(LITERALS)).to_owned());
        }
    }
    format!("/{}", segments.join("/"))
}

/// Routes whose templates axum accepts together (matchit's own conflict rules).
fn routes(rng: &mut Rng) -> Vec<Route> {
    let mut matcher = matchit::Router::new();
    let mut routes = Vec::new();
    for index in 0..(4 + rng.below(10)) {
        let template = template(rng, index);
        if matcher.insert(template.clone(), ()).is_err() {
            continue;
        }
        let access = *rng.pick(&[
            Access::Public,
            Access::Optional,
            Access::Scoped,
            Access::Scoped,
        ]);
        routes.push(Route {
            template,
            get_only: rng.chance(50),
            access,
        });
    }
    routes
}

/// A concrete path for `template`, plain or spelled in one of the ways that confuse
/// routers.
fn path_for(rng: &mut Rng, template: &str) -> String {
    let mut segments: Vec<String> = template
        .trim_start_matches('/')
        .split('/')
        .map(|part| match part {
            p if p.starts_with("{*") => {
                let n = 1 + rng.below(3);
                (0..n).map(|_| value(rng)).collect::<Vec<_>>().join("/")
            }
            p if p.starts_with('{') => value(rng),
            literal => literal.to_owned(),
        })
        .collect();
    if rng.chance(40) {
        let i = rng.below(segments.len());
        segments[i] = mangle(rng, &segments[i]);
    }
    let mut path = format!("/{}", segments.join("/"));
    match rng.below(12) {
        0 => path.push('/'),
        1 => path = path.replacen('/', "//", 1),
        2 => path.push_str("/.."),
        3 => path.push_str("/%2e"),
        4 => path.push_str("/%2F"),
        _ => {}
    }
    path
}

fn value(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => (*rng.pick(LITERALS)).to_owned(),
        1 => "caf%C3%A9".to_owned(),
        2 => format!("%{:02X}", rng.below(256)),
        _ => format!("v{}", rng.below(100)),
    }
}

/// Percent-encodes some bytes of `segment`, in upper or lower case hex.
fn mangle(rng: &mut Rng, segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if rng.chance(50) {
            if rng.chance(50) {
                out.push_str(&format!("%{byte:02X}"));
            } else {
                out.push_str(&format!("%{byte:02x}"));
            }
        } else {
            out.push(char::from(byte));
        }
    }
    if out == segment {
        out.push_str("%41");
    }
    out
}

/// A path with no percent-encoding, no empty, `.` or `..` segment and no trailing slash.
fn is_plain(path: &str) -> bool {
    !path.contains('%')
        && !path.contains("//")
        && !path.ends_with('/')
        && path.split('/').all(|s| s != "." && s != "..")
}

fn handler(name: String) -> impl Fn() -> std::future::Ready<axum::response::Response> + Clone {
    move || {
        let mut response = StatusCode::OK.into_response();
        response
            .headers_mut()
            .insert("x-route", HeaderValue::from_str(&name).unwrap());
        std::future::ready(response)
    }
}

fn method_router(route: &Route, name: String) -> MethodRouter {
    if route.get_only {
        get(handler(name))
    } else {
        any(handler(name))
    }
}

/// The app: the first routes at the top, the others nested under `/n`, a fallback; the
/// guard is layered on the whole router, with a rule per route written with the route's
/// full template.
fn app(routes: &[Route], nested_from: usize, guard: GuardLayer) -> Router {
    let mut top = Router::new();
    let mut inner = Router::new();
    for (i, route) in routes.iter().enumerate() {
        if i < nested_from {
            top = top.route(&route.template, method_router(route, format!("r{i}")));
        } else {
            inner = inner.route(&route.template, method_router(route, format!("r{i}")));
        }
    }
    top.nest("/n", inner)
        .fallback(handler("fallback".to_owned()))
        .layer(guard)
}

fn full_template(routes: &[Route], nested_from: usize, i: usize) -> String {
    match i < nested_from {
        true => routes[i].template.clone(),
        false => format!("/n{}", routes[i].template),
    }
}

fn guard(routes: &[Route], nested_from: usize) -> GuardLayer {
    let verifier = Verifier::builder()
        .issuer(Issuer::new(ISS, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUD))
        .build()
        .unwrap();
    let engine = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
        .build()
        .unwrap();
    let mut builder = GuardLayer::builder()
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions("svc").omit_query());
    for (i, route) in routes.iter().enumerate() {
        let template = full_template(routes, nested_from, i);
        let pattern = match route.get_only {
            true => format!("GET {template}"),
            false => template,
        };
        let rule = match route.access {
            Access::Public => RouteRule::public(),
            Access::Optional => RouteRule::new().optional_token(),
            Access::Scoped => RouteRule::new().scopes([format!("r{i}")]),
        };
        builder = builder.route(pattern, rule);
    }
    builder.build().unwrap()
}

fn token(scopes: &BTreeSet<String>) -> String {
    let scope = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": exp, "scope": scope}))
        .unwrap()
}

/// The handler that served the request, if any.
async fn served_by(
    app: &Router,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> Option<String> {
    let mut request = Request::builder().method(method.clone()).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::empty()).ok()?;
    let response = app.clone().oneshot(request).await.unwrap();
    if response.status() != StatusCode::OK {
        return None;
    }
    response
        .headers()
        .get("x-route")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_rule_applied_is_the_rule_written_for_the_route_axum_ran() {
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::OPTIONS,
        Method::DELETE,
    ];
    let mut checked = 0usize;
    let mut relaxed_checked = 0usize;
    for seed in 1..=ROUTER_SEEDS {
        let mut rng = Rng::new(seed);
        let routes = routes(&mut rng);
        let nested_from = routes.len() / 2 + rng.below(routes.len() / 2 + 1);
        let app = app(&routes, nested_from, guard(&routes, nested_from));
        let every_scope: BTreeSet<String> = (0..routes.len()).map(|i| format!("r{i}")).collect();
        let full = token(&every_scope);
        for _ in 0..REQUESTS_PER_ROUTER {
            let target = rng.below(routes.len());
            let mut path = path_for(&mut rng, &routes[target].template);
            if target >= nested_from {
                path = format!("/n{path}");
            }
            let method = rng.pick(&methods).clone();
            let Some(ran) = served_by(&app, &method, &path, Some(&full)).await else {
                continue;
            };
            checked += 1;
            let context = format!("seed {seed}: {method} {path} ran {ran}; routes {routes:?}");
            let anonymous = served_by(&app, &method, &path, None).await;
            if ran == "fallback" {
                assert_eq!(anonymous, None, "fallback without a token: {context}");
                continue;
            }
            let i: usize = ran.trim_start_matches('r').parse().unwrap();
            match routes[i].access {
                Access::Scoped => {
                    let mut others = every_scope.clone();
                    others.remove(&ran);
                    let lacking = served_by(&app, &method, &path, Some(&token(&others))).await;
                    assert_eq!(lacking, None, "scoped route without its scope: {context}");
                    assert_eq!(anonymous, None, "scoped route without a token: {context}");
                }
                Access::Public | Access::Optional => {
                    if is_plain(&path) {
                        relaxed_checked += 1;
                        assert_eq!(
                            anonymous.as_deref(),
                            Some(ran.as_str()),
                            "relaxed route refused its anonymous caller: {context}"
                        );
                    }
                }
            }
        }
    }
    // The generator must reach the cases it is meant to test.
    assert!(checked >= 2_000, "only {checked} served requests");
    assert!(
        relaxed_checked >= 300,
        "only {relaxed_checked} plain relaxed requests"
    );
}
