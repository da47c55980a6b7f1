//! edge: where users' requests enter the mesh. It verifies the user's token and sends the
//! checkout on to orders with it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use http::StatusCode;
use meshguard::outgoing::InboundBearer;
use serde_json::json;

use crate::downstream::Downstream;
use crate::idp::DemoIdp;
use crate::serve::{self, json};
use crate::{BoxError, EDGE};

/// Starts the edge, calling orders through `orders`; its address.
///
/// Users reach it over plain HTTP on 127.0.0.1 to keep the demo self-contained; a real edge
/// terminates TLS with a public certificate here. Its own SVID is for calling into the mesh.
pub(crate) async fn serve(idp: &DemoIdp, orders: Downstream) -> Result<SocketAddr, BoxError> {
    let guard = serve::guard(EDGE, idp, include_str!("policies/edge.cedar"))?.build()?;
    let app = Router::new()
        .route("/checkout", post(checkout))
        .with_state(Arc::new(orders))
        .layer(guard);
    serve::plain(app).await
}

/// Reached with a verified user: places the order at orders, carrying the user's token.
async fn checkout(State(orders): State<Arc<Downstream>>, inbound: Request) -> Response {
    let bearer = match InboundBearer::from_request(&inbound) {
        Ok(bearer) => bearer,
        Err(error) => {
            return json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "service": EDGE, "error": error.reason() }),
            );
        }
    };
    let order = json!({ "item": "book", "quantity": 1 });
    orders.relay(EDGE, "order", "/orders", bearer, &order).await
}
