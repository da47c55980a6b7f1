//! orders: places an order for the user the edge sent, and has payments charge it with the
//! user's token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use http::StatusCode;
use meshguard::outgoing::InboundBearer;
use meshguard::peer::PeerIdentityLayer;
use serde_json::json;

use crate::downstream::Downstream;
use crate::idp::DemoIdp;
use crate::pki::Workload;
use crate::serve::{self, json};
use crate::{BoxError, ORDERS};

/// Starts orders as `me`, calling payments through `payments`; its address.
pub(crate) async fn serve(
    me: &Workload,
    idp: &DemoIdp,
    payments: Downstream,
) -> Result<SocketAddr, BoxError> {
    let guard = serve::guard(ORDERS, idp, include_str!("policies/orders.cedar"))?
        .peer(PeerIdentityLayer::new())
        .build()?;
    let app = Router::new()
        .route("/orders", post(place))
        .with_state(Arc::new(payments))
        .layer(guard);
    serve::mtls(me, app).await
}

/// Reached when the user came through the edge: charges the order at payments, carrying
/// the user's token.
async fn place(State(payments): State<Arc<Downstream>>, inbound: Request) -> Response {
    // The token the guard verified on this request, and only that one, goes on.
    let bearer = match InboundBearer::from_request(&inbound) {
        Ok(bearer) => bearer,
        Err(error) => {
            return json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "service": ORDERS, "error": error.reason() }),
            );
        }
    };
    let charge = json!({ "amount": 42, "currency": "EUR" });
    payments
        .relay(ORDERS, "payment", "/charges", bearer, &charge)
        .await
}
