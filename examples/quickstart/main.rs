//! meshguard quickstart: a small documents service on 127.0.0.1, secured by a [`Guard`] —
//! access tokens signed by a DEMO key, Cedar policies from `policies.cedar`, a public
//! `/health`, and handlers that ask the policies about the document they loaded
//! ([`PolicyCheck`]) and answer a denial with `?`.
//!
//! ```sh
//! cargo run --example quickstart                 # prints curl commands, serves until Ctrl-C
//! cargo run --example quickstart -- --self-check # sends the requests itself, exit 0 if all as expected
//! ```
//!
//! This file is the service, `documents.rs` its data; `idp.rs` plays the identity provider,
//! `serve.rs` and `self_check.rs` run the service, `args.rs` reads the command line. Nothing
//! is read from disk or the network.

mod args;
mod documents;
mod idp;
mod self_check;
mod serve;

use std::process::ExitCode;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Router, routing::get};
use meshguard::caller::Caller;
use meshguard::guard::{GuardLayer, PolicyCheck, RouteRule};
use meshguard::policy::{Context, Decision, HttpMapping, PolicyEngine, PolicyId};
use meshguard::policy::{PolicySource, PrincipalMapping};
use meshguard::response::Denied;
use meshguard::token::{Algorithm, Issuer, KeySet, VerifiedToken, Verifier};
use serde_json::{Value, json};

use crate::args::Mode;
use crate::documents::{Store, not_found, ok};
use crate::idp::DemoIdp;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// DEMO ONLY: the demo identity provider's name, under the reserved `.invalid` domain.
const ISSUER: &str = "https://idp.demo.meshguard.invalid";
const AUDIENCE: &str = "api://documents";
const REALM: &str = "documents";

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    match args::mode(std::env::args().skip(1)) {
        Ok(Mode::Serve) => serve::run(app()?, &DemoIdp::new()?).await,
        Ok(Mode::SelfCheck) => self_check::run(app()?, &DemoIdp::new()?).await,
        Ok(Mode::Help) => {
            print!("{}", args::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Err(unknown) => {
            eprint!("{unknown}\n{}", args::USAGE);
            Ok(ExitCode::from(2))
        }
    }
}

/// The service: routes, their handlers, and the guard in front of all of them.
fn app() -> Result<Router, BoxError> {
    let keys = KeySet::from_pem(idp::DEMO_PUBLIC_KEY_PEM.as_bytes())?;
    let verifier = Verifier::builder()
        .issuer(
            Issuer::new(ISSUER, keys)
                .audience(AUDIENCE)
                .algorithms([Algorithm::EdDSA])
                .access_token_profile(),
        )
        .build()?;
    let engine = PolicyEngine::builder(PolicySource::text(include_str!("policies.cedar")))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()?;
    let guard: GuardLayer = GuardLayer::builder()
        .realm(REALM)
        .tokens(verifier)
        .policies(engine, HttpMapping::conventions("documents"))
        .public("GET /health")
        .route(
            "DELETE /documents/{id}",
            RouteRule::new().scopes(["documents:write"]),
        )
        // The stable reason in refusal bodies, for the self-check (the default leaves it out).
        .render(self_check::problem_with_reason)
        .build()?;
    Ok(Router::new()
        .route("/health", get(|| async { ok(&json!({ "status": "ok" })) }))
        .route("/documents", get(list_documents))
        .route(
            "/documents/{id}",
            get(read_document).delete(delete_document),
        )
        .with_state(Store::new()?)
        .layer(guard))
}

/// Reached only when the guard admitted the request: the caller and the route-level
/// decision are in the request, taken by meshguard's extractors.
async fn list_documents(
    State(store): State<Store>,
    caller: Caller,
    decision: Decision,
) -> Response {
    answer(&caller, &decision, "documents", store.list())
}

/// Past the guard, the handler loads the document and asks the policies whether this caller
/// may read this very document (its owner is data the guard could not see).
async fn read_document(
    State(store): State<Store>,
    Path(id): Path<String>,
    check: PolicyCheck,
) -> Result<Response, Denied> {
    let Some(doc) = store.get(&id) else {
        return Ok(not_found());
    };
    let decision = check.authorize(&store.read, &doc.uid, doc.entities(), Context::new())?;
    Ok(answer(check.caller(), &decision, "document", doc.json()))
}

/// The guard has checked the `documents:write` scope and the route-level policy; the
/// handler checks ownership before deleting.
async fn delete_document(
    State(store): State<Store>,
    Path(id): Path<String>,
    check: PolicyCheck,
) -> Result<Response, Denied> {
    let Some(doc) = store.get(&id) else {
        return Ok(not_found());
    };
    let decision = check.authorize(&store.delete, &doc.uid, doc.entities(), Context::new())?;
    store.remove(&id);
    Ok(answer(check.caller(), &decision, "deleted", id.into()))
}

/// Who asked, what the policies decided and which policies decided it, and `value`.
fn answer(caller: &Caller, decision: &Decision, key: &str, value: Value) -> Response {
    let policies: Vec<&str> = decision.policy_ids().iter().map(PolicyId::as_str).collect();
    let mut body = json!({
        "caller": caller.user().and_then(VerifiedToken::subject),
        "decision": if decision.is_allow() { "allow" } else { "deny" },
        "policies": policies,
    });
    if let Some(fields) = body.as_object_mut() {
        fields.insert(key.to_owned(), value);
    }
    ok(&body)
}
