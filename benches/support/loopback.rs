//! A router served by `axum::serve` on 127.0.0.1 and keep-alive hyper HTTP/1.1 connections
//! to it, shared by the benches that measure a request over loopback.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// A server on 127.0.0.1 and its keep-alive client connections.
pub(crate) struct Loopback {
    clients: Vec<SendRequest<Empty<Bytes>>>,
}

impl Loopback {
    /// Serves `router` and opens `connections` connections to it.
    pub(crate) async fn start(router: Router, connections: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            clients.push(connect(addr).await);
        }
        Self { clients }
    }

    /// Sends exactly `total` `GET path` requests spread over the connections, each
    /// connection one at a time, and checks that every one is answered 200.
    pub(crate) async fn send(&mut self, path: &'static str, bearer: &str, total: u64) {
        let connections = self.clients.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, mut client) in self.clients.drain(..).enumerate() {
            let count = total / connections + u64::from((index as u64) < total % connections);
            let bearer = bearer.to_owned();
            tasks.spawn(async move {
                for _ in 0..count {
                    assert_eq!(request(&mut client, path, &bearer).await, StatusCode::OK);
                }
                client
            });
        }
        while let Some(client) = tasks.join_next().await {
            self.clients.push(client.unwrap());
        }
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn request(client: &mut SendRequest<Empty<Bytes>>, path: &str, bearer: &str) -> StatusCode {
    client.ready().await.unwrap();
    let request = Request::get(path)
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, bearer)
        .body(Empty::new())
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}
