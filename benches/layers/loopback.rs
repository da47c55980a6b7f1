//! The guarded router served over loopback (`axum::serve` on 127.0.0.1) to keep-alive
//! hyper connections, beside the bare handler and the token check alone.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use criterion::Criterion;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::service::{bare_router, cases, guarded_router, token_only_router};
use crate::{CONNECTIONS, LOOPBACK_BATCH, PAIRED_LOOPBACK_ROUNDS, PATH, paired};

/// A server on 127.0.0.1 and its keep-alive client connections.
struct Loopback {
    clients: Vec<SendRequest<Empty<Bytes>>>,
}

impl Loopback {
    async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(connect(addr).await);
        }
        Self { clients }
    }

    /// Sends `total` requests spread over the connections, each connection one at a time.
    async fn batch(&mut self, bearer: &str, total: usize) {
        let per_connection = total / self.clients.len();
        let mut tasks = tokio::task::JoinSet::new();
        for mut client in self.clients.drain(..) {
            let bearer = bearer.to_owned();
            tasks.spawn(async move {
                for _ in 0..per_connection {
                    assert_eq!(send(&mut client, &bearer).await, StatusCode::OK);
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

async fn send(client: &mut SendRequest<Empty<Bytes>>, bearer: &str) -> StatusCode {
    client.ready().await.unwrap();
    let request = Request::get(PATH)
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, bearer)
        .body(Empty::new())
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

pub(crate) fn loopback(c: &mut Criterion) {
    let _ = meshguard::token::crypto::install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut bare = runtime.block_on(Loopback::start(bare_router()));
    let mut summary = Vec::new();
    for case in cases() {
        let bearer = format!("Bearer {}", case.token);
        let mut guarded = runtime.block_on(Loopback::start(guarded_router(case.verifier.clone())));
        let mut token_only =
            runtime.block_on(Loopback::start(token_only_router(case.verifier.clone())));
        runtime.block_on(guarded.batch(&bearer, CONNECTIONS));
        runtime.block_on(token_only.batch(&bearer, CONNECTIONS));

        let mut group = c.benchmark_group(format!("loopback/{}", case.name));
        group.sample_size(10);
        group.throughput(criterion::Throughput::Elements(LOOPBACK_BATCH as u64));
        group.bench_function("bare handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(bare.batch(&bearer, LOOPBACK_BATCH));
                }
                start.elapsed()
            })
        });
        group.bench_function("guarded handler", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(guarded.batch(&bearer, LOOPBACK_BATCH));
                }
                start.elapsed()
            })
        });
        group.finish();
        if !paired() {
            continue;
        }

        let (mut bare_time, mut guarded_time, mut token_time) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..PAIRED_LOOPBACK_ROUNDS {
            let start = Instant::now();
            runtime.block_on(bare.batch(&bearer, LOOPBACK_BATCH));
            bare_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(guarded.batch(&bearer, LOOPBACK_BATCH));
            guarded_time += start.elapsed();
            let start = Instant::now();
            runtime.block_on(token_only.batch(&bearer, LOOPBACK_BATCH));
            token_time += start.elapsed();
        }
        let per =
            |t: Duration| t.as_secs_f64() * 1e6 / (PAIRED_LOOPBACK_ROUNDS * LOOPBACK_BATCH) as f64;
        summary.push(format!(
            "loopback/{} paired ({CONNECTIONS} connections): bare {:.2} µs/request, guarded \
             {:.2} µs/request, ratio {:.2} (target <= 1.15); token check alone {:.2} \
             µs/request, ratio {:.2}",
            case.name,
            per(bare_time),
            per(guarded_time),
            guarded_time.as_secs_f64() / bare_time.as_secs_f64(),
            per(token_time),
            token_time.as_secs_f64() / bare_time.as_secs_f64(),
        ));
    }
    for line in summary {
        println!("{line}");
    }
}
