//! One connection that fails before any answer (an identity provider restarting under a
//! kept-alive connection) is retried at once; nothing else is, and never more than once.
//!
//! The server is a bare `TcpListener` on 127.0.0.1 that reads each request and then either
//! answers with the JWKS and closes (so every fetch is a new connection it can count) or, for
//! as many connections as it is told, closes without a word.
#![cfg(feature = "remote-jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::remote_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshguard::token::remote::{RemoteJwks, Startup};
use meshguard::token::{Issuer, Verifier, VerifierBuilderError};
use remote_support::{AUDIENCE, JwksServer, ManualClock, Mode, TestKey, jwks};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const ISS: &str = "https://idp.test";

/// A JWKS server that hangs up on the next `drop` connections after reading their request.
struct FlakyServer {
    url: String,
    jwks: Arc<Mutex<String>>,
    drop: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyServer {
    async fn start(jwks: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(jwks));
        let drop = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (document, dropping, counter) = (jwks.clone(), drop.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let hang_up = dropping
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let body = document.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    if hang_up {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FlakyServer {
            url,
            jwks,
            drop,
            accepted,
            task,
        }
    }

    fn hang_up_on_next(&self, connections: usize) {
        self.drop.store(connections, Ordering::SeqCst);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FlakyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn build(
    remote: RemoteJwks,
    clock: &Arc<ManualClock>,
) -> Result<Verifier, VerifierBuilderError> {
    Verifier::builder()
        .issuer(Issuer::remote(ISS, remote).audience(AUDIENCE))
        .clock(clock.clone())
        .build_async()
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_closed_before_the_answer_is_retried_at_once() {
    let old = TestKey::es256("k1");
    let server = FlakyServer::start(jwks(&[&old])).await;
    let clock = ManualClock::new();
    let verifier = build(RemoteJwks::url(&server.url), &clock).await.unwrap();
    assert_eq!(server.accepted(), 1);

    // The provider restarts with a new key; the first connection after it dies unanswered.
    let new = TestKey::es256("k2");
    *server.jwks.lock().unwrap() = jwks(&[&new]);
    server.hang_up_on_next(1);
    let verified = verifier.verify_async(&new.token(ISS)).await;
    assert!(verified.is_ok(), "{verified:?}");
    let status = &verifier.remote_status()[0];
    // One refresh, two connections, no failure recorded: the 30-second wait never started.
    assert_eq!((status.fetches(), status.failures()), (2, 0));
    assert_eq!(server.accepted(), 3);
    assert!(status.last_error().is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_source_that_keeps_hanging_up_is_tried_twice_and_no_more() {
    let key = TestKey::es256("k1");
    let server = FlakyServer::start(jwks(&[&key])).await;
    server.hang_up_on_next(usize::MAX);
    let clock = ManualClock::new();
    let remote = RemoteJwks::url(&server.url).startup(Startup::FailFast);
    let Err(VerifierBuilderError::KeySource(error)) = build(remote, &clock).await else {
        panic!("a source that always hangs up cannot give keys");
    };
    assert_eq!(error.reason(), "transport");
    assert_eq!(server.accepted(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn http_errors_timeouts_and_bad_documents_are_not_retried() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let clock = ManualClock::new();
    for (mode, reason) in [
        (Mode::Status(503), "status"),
        (Mode::Garbage("not json".into()), "invalid_jwks"),
        (Mode::Hang, "timeout"),
    ] {
        server.set_mode(mode);
        let before = server.jwks_requests();
        let remote = RemoteJwks::url(server.jwks_url())
            .startup(Startup::FailFast)
            .request_timeout(Duration::from_millis(300));
        let Err(VerifierBuilderError::KeySource(error)) = build(remote, &clock).await else {
            panic!("{reason}: expected the build to fail");
        };
        assert_eq!(error.reason(), reason);
        assert_eq!(server.jwks_requests() - before, 1, "{reason}");
    }
}
