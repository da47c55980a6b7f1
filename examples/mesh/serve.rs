//! What the three services share: the guard in front of each, the refusal bodies, and
//! serving over mTLS with the workload's rotating SVID.

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use meshguard::guard::{GuardBuilder, GuardLayer};
use meshguard::peer::{Authorizer, MtlsConnectInfo, MtlsListener, svid_server_config};
use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource, PrincipalMapping};
use meshguard::response::{Refusal, RequestHead};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::BoxError;
use crate::idp::DemoIdp;
use crate::pki::Workload;

/// The guard of the service `name`: users' tokens from the demo identity provider, and
/// `policies` (Cedar text) deciding every request with the token's `roles` as `Role`s.
/// Refusal bodies name the service, the stage that refused and the stable reason, so that
/// the output can tell who refused what (the default body leaves them out).
pub(crate) fn guard(
    name: &'static str,
    idp: &DemoIdp,
    policies: &'static str,
) -> Result<GuardBuilder, BoxError> {
    let engine = PolicyEngine::builder(PolicySource::text(policies))
        .principal_mapping(PrincipalMapping::new().role_claim("roles"))
        .build()?;
    Ok(GuardLayer::builder()
        .realm(name)
        .tokens(idp.verifier()?)
        .policies(engine, HttpMapping::conventions(name))
        .render(
            move |refusal: &Refusal, request: RequestHead<'_>, realm: &str| {
                refusal.render::<String>(request, realm).map(|body| {
                    match serde_json::from_str(&body) {
                        Ok(Value::Object(mut problem)) => {
                            problem.insert("service".into(), name.into());
                            problem.insert("stage".into(), refusal.stage().as_str().into());
                            problem.insert("reason".into(), refusal.reason().into());
                            Value::Object(problem).to_string()
                        }
                        _ => body,
                    }
                })
            },
        ))
}

/// Serves `app` on a free port of 127.0.0.1 over mTLS as `workload`: the server presents
/// the workload's current SVID and requires a client SVID of the same trust domain at each
/// handshake, both read from its store as rotations replace them.
///
/// Every workload of the trust domain may connect (`Authorizer::member_of`): which one may
/// do what is for the policies to decide, per request, with a 403 that says so, rather than
/// a handshake failure that says nothing.
pub(crate) async fn mtls(workload: &Workload, app: Router) -> Result<SocketAddr, BoxError> {
    let members = Authorizer::member_of(workload.id.trust_domain().clone());
    let config = Arc::new(svid_server_config(&workload.store, members)?);
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let serving = axum::serve(
        MtlsListener::new(tcp, config),
        app.into_make_service_with_connect_info::<MtlsConnectInfo>(),
    );
    tokio::spawn(serving.into_future());
    Ok(addr)
}

/// Serves `app` on a free port of 127.0.0.1 over plain HTTP.
pub(crate) async fn plain(app: Router) -> Result<SocketAddr, BoxError> {
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    tokio::spawn(axum::serve(tcp, app).into_future());
    Ok(addr)
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
