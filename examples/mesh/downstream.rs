//! The calling side: one client per downstream service, over mTLS with the caller's
//! rotating SVID, accepting only the callee's SPIFFE ID, forwarding the user's token through
//! meshguard's outgoing layer, and checking the certificate the callee presented.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::response::Response;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use meshguard::outgoing::{
    Credentials, InboundBearer, OutgoingCredentials, OutgoingCredentialsLayer,
};
use meshguard::peer::{Authorizer, svid_client_config};
use reqwest::tls::TlsInfo;
use serde_json::{Value, json};
use tower::{Layer as _, Service, ServiceExt as _};

use crate::BoxError;
use crate::pki::Workload;
use crate::report::Report;
use crate::serve::json;

/// A client of one downstream service, for the workload that calls it.
pub(crate) struct Downstream {
    callee: &'static str,
    origin: String,
    /// reqwest under meshguard's outgoing layer, which puts the user's token on requests to
    /// `origin` and refuses to send it anywhere else.
    forwarding: OutgoingCredentials<Reqwest>,
    report: Arc<Report>,
}

impl Downstream {
    /// A client with which `caller` calls `callee`, listening at `addr`.
    pub(crate) fn new(
        caller: &Workload,
        callee: &Workload,
        addr: std::net::SocketAddr,
        report: &Arc<Report>,
    ) -> Result<Self, BoxError> {
        // The server must prove it is the callee: its SVID chains to the trust domain's
        // current bundle and names exactly this SPIFFE ID.
        let server = Authorizer::id(callee.id.clone());
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(svid_client_config(&caller.store, server)?)
            .tls_info(true)
            // A new connection, so a new handshake, for every request: each one shows the
            // SVIDs the stores hold at that moment, and the certificate check below is the
            // handshake's. A pooled connection keeps the certificates it was opened with.
            .pool_max_idle_per_host(0)
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        let origin = format!("https://{addr}");
        let forwarding =
            OutgoingCredentialsLayer::new(Credentials::forward(), &origin)?.layer(Reqwest(client));
        Ok(Self {
            callee: callee.name,
            origin,
            forwarding,
            report: Arc::clone(report),
        })
    }

    /// POSTs `body` to `path` with the inbound user's token forwarded, and answers for the
    /// service `me`: the callee's answer inside its own under `key` when it succeeded, the
    /// callee's refusal as it came, 502 when the call failed.
    pub(crate) async fn relay(
        &self,
        me: &'static str,
        key: &str,
        path: &str,
        bearer: InboundBearer,
        body: &Value,
    ) -> Response {
        match self.forward(path, bearer, body).await {
            Ok((status, answer)) if status.is_success() => {
                json(StatusCode::OK, &json!({ "service": me, key: answer }))
            }
            Ok((status, refusal)) => json(status, &refusal),
            Err(error) => json(
                StatusCode::BAD_GATEWAY,
                &json!({ "service": me, "error": format!("calling {}: {error}", self.callee) }),
            ),
        }
    }

    /// POSTs `body` to `path` with the inbound user's token forwarded.
    pub(crate) async fn forward(
        &self,
        path: &str,
        bearer: InboundBearer,
        body: &Value,
    ) -> Result<(StatusCode, Value), String> {
        let mut request = http::Request::post(format!("{}{path}", self.origin))
            .header(CONTENT_TYPE, "application/json")
            .body(reqwest::Body::from(body.to_string()))
            .map_err(|e| e.to_string())?;
        // The token travels only with the requests made for the request it came with.
        request.extensions_mut().insert(bearer);
        let sent = SystemTime::now();
        let response = self
            .forwarding
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| chain(&*e))?;
        self.read(response, sent).await
    }

    /// POSTs `body` to `path` with `token` set by hand, as a workload holding a user's token
    /// it was not given by a request would.
    pub(crate) async fn send_with_token(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value), String> {
        let sent = SystemTime::now();
        let response = self
            .forwarding
            .get_ref()
            .0
            .post(format!("{}{path}", self.origin))
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| chain(&e))?;
        self.read(response, sent).await
    }

    /// Checks the certificate the callee presented on the connection opened for a request
    /// sent at `sent`, then reads its answer.
    async fn read(
        &self,
        response: reqwest::Response,
        sent: SystemTime,
    ) -> Result<(StatusCode, Value), String> {
        let shown = response.extensions().get::<TlsInfo>();
        self.report.server_certificate(
            self.callee,
            shown.and_then(TlsInfo::peer_certificate),
            sent,
        );
        let status = response.status();
        let body = response.bytes().await.map_err(|e| chain(&e))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// reqwest as a tower service of `http::Request`s, the requests meshguard's outgoing layer
/// takes (reqwest's own tower service takes `reqwest::Request`s).
#[derive(Clone)]
pub(crate) struct Reqwest(reqwest::Client);

impl Service<http::Request<reqwest::Body>> for Reqwest {
    type Response = reqwest::Response;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, reqwest::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.execute(reqwest::Request::try_from(request)?).await })
    }
}

/// An error with its causes: reqwest's own message alone does not say a handshake failed.
pub(crate) fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
