//! The documents service of the `axum_service` example, apart from its command line and
//! listener: the policy engine, the guard and the router. The example's `main` serves it;
//! the load-with-faults test (`tests/load_faults.rs`) includes this file too, so that the
//! load runs through exactly the service the example ships.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use meshguard::caller::Caller;
use meshguard::guard::{GuardBuilderError, GuardLayer, PolicyCheck};
use meshguard::peer::PeerIdentityLayer;
use meshguard::policy::{
    Context, Decision, Entities, Entity, EntityUid, HttpMapping, PolicyEngine, PolicyError,
    PolicyId, PolicySource, PrincipalMapping, SchemaSource,
};
use meshguard::token::{VerifiedToken, Verifier};
use serde_json::json;

/// Every `.cedar` file of `policies`, validated against `schema` if given; the token's
/// `roles` claim gives the user `Role` parents.
pub(crate) fn engine(policies: &Path, schema: Option<&Path>) -> Result<PolicyEngine, PolicyError> {
    let mut builder = PolicyEngine::builder(PolicySource::path(policies))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"));
    if let Some(schema) = schema {
        builder = builder.schema(SchemaSource::file(schema));
    }
    builder.build()
}

/// The service's routes behind the guard: tokens from `verifier`, decisions by `engine`,
/// and with `mtls` the calling workload's identity from the connection.
pub(crate) fn router(
    verifier: Verifier,
    engine: PolicyEngine,
    mtls: bool,
) -> Result<Router, GuardBuilderError> {
    let mut guard = GuardLayer::builder()
        .realm("documents")
        .tokens(verifier.clone())
        // The schema declares no query parameters, so the context carries none.
        .policies(engine, HttpMapping::conventions("documents").omit_query())
        .public("GET /health")
        .public("GET /ready");
    if mtls {
        guard = guard.peer(PeerIdentityLayer::new());
    }
    Ok(Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/documents", get(list_documents))
        .route("/documents/{id}", get(read_document))
        .with_state(AppState {
            verifier,
            documents: Arc::new(demo_documents()),
        })
        .layer(guard.build()?))
}

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
    /// Stands in for the service's database: document id → owner.
    documents: Arc<BTreeMap<String, String>>,
}

fn demo_documents() -> BTreeMap<String, String> {
    [("d1", "alice"), ("d2", "bob")]
        .into_iter()
        .map(|(id, owner)| (id.to_owned(), owner.to_owned()))
        .collect()
}

/// Readiness: 503 until the identity provider's keys have been fetched, or once they are
/// too stale to use.
async fn ready(State(state): State<AppState>) -> Response {
    let sources = state.verifier.remote_status();
    let ready = sources.iter().all(|source| source.health().is_ready());
    let report: Vec<_> = sources
        .iter()
        .map(|source| {
            json!({
                "issuer": source.issuer(),
                "health": format!("{:?}", source.health()),
                "keys": source.keys(),
                "last_error": source.last_error().map(|error| error.reason()),
            })
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &json!({ "key_sources": report }))
}

async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    decision: Decision,
) -> Response {
    let body = json!({
        "caller": caller.user().and_then(VerifiedToken::subject),
        "workload": caller.workload().and_then(|workload| workload.spiffe_id()),
        "allowed_by": decision.policy_ids().iter().map(PolicyId::as_str).collect::<Vec<_>>(),
        "documents": state.documents.keys().collect::<Vec<_>>(),
    });
    json_response(StatusCode::OK, &body)
}

/// The guard let the caller use the route; the owner check needs the document, so the
/// handler asks the policies itself.
async fn read_document(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    check: PolicyCheck,
) -> Response {
    let Some(owner) = state.documents.get(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let document = EntityUid::new("Document", &id).and_then(|uid| {
        Entity::builder(uid)
            .attribute(
                "owner",
                &json!({ "__entity": { "type": "User", "id": owner } }),
            )?
            .build()
    });
    let (document, read) = match (document, EntityUid::new("Action", "read")) {
        (Ok(document), Ok(read)) => (document, read),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("document `{id}`: {error}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let uid = document.uid();
    match check.authorize(&read, &uid, Entities::from_iter([document]), Context::new()) {
        Ok(_) => json!({ "id": id, "owner": owner })
            .to_string()
            .into_response(),
        Err(denied) => denied.into_response(),
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
