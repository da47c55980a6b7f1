//! DPoP over gRPC: a real tonic server (h2c on 127.0.0.1) behind the guard and a real tonic
//! client sending `authorization: DPoP` and `dpop` metadata; refusals are UNAUTHENTICATED.

use std::sync::Arc;

use meshguard::guard::GuardLayer;
use meshguard::token::SystemClock;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::dpop_support::{ClientKey, Idp};

const CHECK: &str = "/grpc.health.v1.Health/Check";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The health service behind a DPoP-only guard; the channel and the origin clients use.
async fn serve(idp: &Idp) -> (Channel, String) {
    // HTTP/2 requests carry their scheme and authority: the origin comes from them.
    let dpop = idp
        .dpop(Arc::new(SystemClock))
        .origin_from_host("http")
        .build()
        .unwrap();
    let guard = GuardLayer::builder().dpop(dpop).build().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", tcp.local_addr().unwrap());
    let incoming = tonic::transport::server::TcpIncoming::from(tcp);
    tokio::spawn(async move {
        Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(origin.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, origin)
}

async fn check(channel: &Channel, authorization: &str, proof: &str) -> Result<(), Code> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let metadata = request.metadata_mut();
    metadata.insert("authorization", authorization.parse().unwrap());
    metadata.insert("dpop", proof.parse().unwrap());
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|_| ())
        .map_err(|status| status.code())
}

#[tokio::test]
async fn a_grpc_call_with_a_dpop_proof_is_admitted_and_a_bad_one_unauthenticated() {
    let idp = Idp::new();
    let (channel, origin) = serve(&idp).await;
    let key = ClientKey::ed25519();
    let token = idp.token("alice", now() + 300, Some(&key.jkt));
    let dpop = format!("DPoP {token}");
    let url = format!("{origin}{CHECK}");
    let proof = key.proof("POST", &url, &token, now());
    assert_eq!(check(&channel, &dpop, &proof).await, Ok(()));
    // The same proof again, a proof for another method, another key's proof, a bearer token.
    assert_eq!(
        check(&channel, &dpop, &proof).await,
        Err(Code::Unauthenticated)
    );
    let get = key.proof("GET", &url, &token, now());
    assert_eq!(
        check(&channel, &dpop, &get).await,
        Err(Code::Unauthenticated)
    );
    let thief = ClientKey::es256().proof("POST", &url, &token, now());
    assert_eq!(
        check(&channel, &dpop, &thief).await,
        Err(Code::Unauthenticated)
    );
    let fresh = key.proof("POST", &url, &token, now());
    let bearer = format!("Bearer {token}");
    assert_eq!(
        check(&channel, &bearer, &fresh).await,
        Err(Code::Unauthenticated)
    );
}
