//! payments: charges an order when the policies allow both the user and the workload that
//! carries the user's token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::response::Response;
use axum::routing::post;
use http::StatusCode;
use meshguard::caller::Caller;
use meshguard::peer::PeerIdentityLayer;
use meshguard::policy::{Decision, PolicyId};
use meshguard::token::VerifiedToken;
use serde_json::json;

use crate::idp::DemoIdp;
use crate::pki::Workload;
use crate::serve::{self, json};
use crate::{BoxError, PAYMENTS};

/// Starts payments as `me`; its address.
pub(crate) async fn serve(me: &Workload, idp: &DemoIdp) -> Result<SocketAddr, BoxError> {
    // The peer layer reads the caller's SPIFFE ID from the mTLS connection; with the token's
    // user it makes the Caller the policies decide on (user as principal, workload in
    // `context.peer`).
    let guard = serve::guard(PAYMENTS, idp, include_str!("policies/payments.cedar"))?
        .peer(PeerIdentityLayer::new())
        .build()?;
    let charges = std::sync::Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/charges",
            post(move |caller: Caller, decision: Decision| {
                let number = charges.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                async move { charge(number, &caller, &decision) }
            }),
        )
        .layer(guard);
    serve::mtls(me, app).await
}

/// Reached only when the guard allowed the request: who was charged, through whom, and
/// which policy allowed it.
fn charge(number: u64, caller: &Caller, decision: &Decision) -> Response {
    let policies: Vec<&str> = decision.policy_ids().iter().map(PolicyId::as_str).collect();
    json(
        StatusCode::OK,
        &json!({
            "service": PAYMENTS,
            "charge": format!("ch-{number}"),
            "user": caller.user().and_then(VerifiedToken::subject),
            "workload": caller.workload().and_then(|workload| workload.spiffe_id()),
            "policies": policies,
        }),
    )
}
