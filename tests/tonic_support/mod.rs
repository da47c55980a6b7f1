//! A guarded gRPC service for the tonic tests: tonic's health service behind a guard on
//! plain TCP (h2c) on 127.0.0.1, and a channel to it.
#![allow(clippy::unwrap_used, reason = "test set-up")]

use meshguard::guard::GuardLayer;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};

/// Serves the health service behind `guard` on plain TCP (h2c): no TLS, no certificate.
pub(crate) async fn serve_plain(guard: GuardLayer) -> Channel {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(tcp);
    tokio::spawn(async move {
        Server::builder()
            .layer(guard)
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}
