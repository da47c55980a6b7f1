//! `WorkloadApiSource` against the test Workload API server.

use std::time::{Duration, Instant};

use meshguard::peer::{
    MAX_WORKLOAD_SVIDS, SvidHealth, SvidStore, SvidUpdateError, WorkloadApiError, WorkloadApiSource,
};
use tonic::Code;

use crate::peer_support::Ca;
use crate::server::{
    Delivery, FETCH_X509_SVID, TestWorkloadApi, X509SvidRequest, X509SvidResponse, absent_socket,
};

const ORDERS: &str = "spiffe://example.org/orders";
/// A bound on waits for what must happen, so that a broken build fails instead of hanging;
/// nothing is asserted about how long anything takes.
const PATIENCE: Duration = Duration::from_secs(30);

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn source(server: &TestWorkloadApi) -> WorkloadApiSource {
    WorkloadApiSource::new(&server.endpoint())
        .unwrap()
        .start_timeout(PATIENCE)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

fn trust_domains(store: &SvidStore) -> Vec<String> {
    store
        .current()
        .unwrap()
        .trust_domains()
        .map(|td| td.as_str().to_owned())
        .collect()
}

fn last_reason(store: &SvidStore) -> Option<&'static str> {
    store.status().last_error().map(SvidUpdateError::reason)
}

fn with_header(server: &TestWorkloadApi) -> usize {
    server
        .state
        .with_header
        .load(std::sync::atomic::Ordering::SeqCst)
}

fn open_streams(server: &TestWorkloadApi) -> usize {
    server
        .state
        .open_streams
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn the_first_delivery_is_taken_with_its_bundles_and_the_security_header_was_sent() {
    let (ca, partner) = (Ca::new("example.org"), Ca::new("partner.test"));
    let server = TestWorkloadApi::start();
    server.push(
        Delivery::new()
            .svid(&ca, ORDERS, 60)
            .federated("partner.test", &partner)
            .build(),
    );
    let store = SvidStore::new();
    let watcher = source(&server).start(store.clone()).await.unwrap();

    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Current);
    assert_eq!(status.spiffe_id().map(|id| id.as_str()), Some(ORDERS));
    assert_eq!(status.generation(), 1);
    assert_eq!(trust_domains(&store), ["example.org", "partner.test"]);
    assert!(watcher.is_running());
    assert_eq!(with_header(&server), 1);
    assert_eq!(
        server
            .state
            .without_header
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn start_waits_for_the_first_delivery() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    let store = SvidStore::new();
    let starting = tokio::spawn(source(&server).start(store.clone()));
    eventually("the stream to open", || open_streams(&server) == 1).await;
    assert_eq!(store.status().health(), SvidHealth::Empty);
    assert!(!starting.is_finished());

    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let _watcher = starting.await.unwrap().unwrap();
    assert_eq!(store.status().health(), SvidHealth::Current);
}

#[tokio::test]
async fn each_rotation_pushed_is_taken_and_counts_a_generation() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 10).build());
    let store = SvidStore::new();
    let _watcher = source(&server).start(store.clone()).await.unwrap();
    let mut thumbprints = vec![store.current().unwrap().identity().x5t_s256().to_owned()];

    for generation in 2..=4 {
        server.push(Delivery::new().svid(&ca, ORDERS, 10).build());
        eventually("the rotation", || store.status().generation() == generation).await;
        thumbprints.push(store.current().unwrap().identity().x5t_s256().to_owned());
    }
    thumbprints.dedup();
    assert_eq!(thumbprints.len(), 4, "each generation is a new certificate");
    assert_eq!(store.status().health(), SvidHealth::Current);
    assert_eq!(store.status().failures(), 0);
}

#[tokio::test]
async fn a_federated_bundle_no_longer_sent_is_no_longer_trusted() {
    let (ca, partner, third) = (
        Ca::new("example.org"),
        Ca::new("partner.test"),
        Ca::new("third.test"),
    );
    let server = TestWorkloadApi::start();
    server.push(
        Delivery::new()
            .svid(&ca, ORDERS, 60)
            .federated("partner.test", &partner)
            .build(),
    );
    let store = SvidStore::new();
    let _watcher = source(&server).start(store.clone()).await.unwrap();
    assert_eq!(trust_domains(&store), ["example.org", "partner.test"]);

    server.push(
        Delivery::new()
            .svid(&ca, ORDERS, 60)
            .federated("partner.test", &partner)
            .federated("third.test", &third)
            .build(),
    );
    eventually("federation with third.test", || {
        store.status().generation() == 2
    })
    .await;
    assert_eq!(
        trust_domains(&store),
        ["example.org", "partner.test", "third.test"]
    );

    server.push(
        Delivery::new()
            .svid(&ca, ORDERS, 60)
            .federated("third.test", &third)
            .build(),
    );
    eventually("de-federation of partner.test", || {
        store.status().generation() == 3
    })
    .await;
    assert_eq!(trust_domains(&store), ["example.org", "third.test"]);

    // An empty bundle withdraws every root of the domain: the delivery is taken, the
    // domain is no longer trusted.
    server.push(
        Delivery::new()
            .svid(&ca, ORDERS, 60)
            .federated_empty("third.test")
            .build(),
    );
    eventually("de-federation of third.test", || {
        store.status().generation() == 4
    })
    .await;
    assert_eq!(trust_domains(&store), ["example.org"]);
    assert_eq!(store.status().failures(), 0);
}

#[tokio::test]
async fn a_bad_delivery_is_refused_and_the_last_good_material_stays() {
    let (ca, other) = (Ca::new("example.org"), Ca::new("other.test"));
    let server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let _watcher = source(&server).start(store.clone()).await.unwrap();
    let good = store.current().unwrap();

    let cases = [
        // The spiffe crate takes it; meshguard's store sees the key is another certificate's.
        (
            Delivery::new().svid_with(&ca, &ca, ORDERS, 60, "", true),
            "key_mismatch",
        ),
        // An example.org ID signed by another trust domain's CA.
        (
            Delivery::new().svid_with(&other, &ca, ORDERS, 60, "", false),
            "svid_untrusted",
        ),
    ];
    for (failures, (delivery, reason)) in (1..).zip(cases) {
        server.push(delivery.build());
        eventually(reason, || store.status().failures() == failures).await;
        let status = store.status();
        assert_eq!(last_reason(&store), Some(reason));
        assert_eq!(status.health(), SvidHealth::Failing);
        assert!(status.health().is_ready());
        assert_eq!(status.generation(), 1);
        assert!(std::sync::Arc::ptr_eq(&store.current().unwrap(), &good));
    }
    // Refused by the store, on the first stream: no reason to reconnect.
    assert_eq!(with_header(&server), 1);

    // The spiffe crate refuses an ID without a path while parsing: the stream is given up
    // and opened again (which the agent answers with the same delivery until it has another).
    server.push(
        Delivery::new()
            .svid(&ca, "spiffe://example.org", 60)
            .build(),
    );
    eventually("the stream to be opened again", || {
        with_header(&server) >= 2
    })
    .await;
    assert_eq!(last_reason(&store), Some("source_failed"));
    assert_eq!(store.status().generation(), 1);

    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    eventually("the good delivery", || store.status().generation() == 2).await;
    assert_eq!(store.status().health(), SvidHealth::Current);
}

#[tokio::test]
async fn deliveries_over_the_bounds_are_refused() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let _watcher = source(&server).start(store.clone()).await.unwrap();

    let mut many = Delivery::new().svid(&ca, ORDERS, 60).build();
    many.svids = vec![many.svids[0].clone(); MAX_WORKLOAD_SVIDS + 1];
    server.push(many);
    eventually("too many SVIDs", || store.status().failures() == 1).await;
    let refused = store.status().last_error().unwrap().to_string();
    assert!(refused.contains("more than 100 SVIDs"), "{refused}");

    // Larger than gRPC's 4 MiB message limit: refused by the decoder, before any parsing.
    let mut huge = Delivery::new().svid(&ca, ORDERS, 60).build();
    huge.svids[0].bundle.resize(5 << 20, 0);
    server.push(huge);
    eventually("a message over the limit", || {
        store.status().failures() >= 2
    })
    .await;
    let status = store.status();
    let refused = status.last_error().unwrap();
    assert_eq!(refused.reason(), "source_failed");
    // The limit's own error each time: the rest of the message is not read on as
    // further (empty) messages.
    assert!(
        refused.to_string().contains("length too large"),
        "{refused}"
    );
    assert_eq!(status.generation(), 1);
}

#[tokio::test]
async fn after_a_server_crash_the_source_reconnects_with_backoff_and_takes_the_next_delivery() {
    let ca = Ca::new("example.org");
    let mut server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let watcher = source(&server).start(store.clone()).await.unwrap();

    server.kill();
    // The broken stream (its error and its end: one or two reports), then at least two
    // attempts to connect to the missing socket.
    eventually("failed reconnects", || store.status().failures() >= 4).await;
    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Failing);
    assert_eq!(
        status.last_error().map(SvidUpdateError::reason),
        Some("source_failed")
    );
    assert_eq!(
        status.generation(),
        1,
        "the last good material is still served"
    );
    assert!(watcher.is_running());

    server.restart();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    eventually("the delivery after the restart", || {
        store.status().generation() == 2
    })
    .await;
    assert_eq!(store.status().health(), SvidHealth::Current);
    assert_eq!(with_header(&server), 2);
}

#[tokio::test]
async fn a_missing_socket_at_start_is_a_start_timeout_with_the_connect_failure() {
    let server = TestWorkloadApi::start();
    let endpoint = format!("unix://{}", absent_socket(&server).display());
    let store = SvidStore::new();
    let error = WorkloadApiSource::new(&endpoint)
        .unwrap()
        .start_timeout(Duration::from_secs(1))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .start(store.clone())
        .await
        .unwrap_err();

    assert_eq!(error.reason(), "start_timeout");
    let WorkloadApiError::StartTimeout {
        last_error: Some(last),
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(last.reason(), "source_failed");
    assert!(last.to_string().contains("cannot connect"), "{last}");
    assert_eq!(store.status().health(), SvidHealth::Empty);
    assert!(store.status().failures() >= 1);
}

#[tokio::test]
async fn invalid_argument_and_unimplemented_stop_the_source_without_a_retry() {
    for (code, name) in [
        (Code::InvalidArgument, "invalid_argument"),
        (Code::Unimplemented, "unimplemented"),
    ] {
        let server = TestWorkloadApi::start();
        server.refuse_with(code);
        let store = SvidStore::new();
        let error = source(&server).start(store.clone()).await.unwrap_err();
        assert_eq!(error.reason(), "workload_api_refused");
        assert!(
            matches!(&error, WorkloadApiError::Refused { code, .. } if *code == name),
            "{error:?}"
        );
        assert_eq!(with_header(&server), 1, "{name} is not retried");
        assert_eq!(last_reason(&store), Some("source_failed"));
    }
}

#[tokio::test]
async fn unavailable_is_retried_until_the_start_timeout() {
    let server = TestWorkloadApi::start();
    server.refuse_with(Code::Unavailable);
    let store = SvidStore::new();
    let error = WorkloadApiSource::new(&server.endpoint())
        .unwrap()
        .start_timeout(Duration::from_secs(2))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .start(store)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "start_timeout");
    assert!(with_header(&server) >= 2, "Unavailable is retried");
}

#[tokio::test]
async fn a_refusal_after_start_stops_the_watcher_and_says_why() {
    let ca = Ca::new("example.org");
    let mut server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let watcher = source(&server).start(store.clone()).await.unwrap();
    assert!(watcher.stopped_by().is_none());

    server.refuse_with(Code::InvalidArgument);
    server.restart();
    eventually("the watcher to stop", || !watcher.is_running()).await;
    assert_eq!(
        watcher.stopped_by().map(|error| error.reason()),
        Some("workload_api_refused")
    );
    assert_eq!(store.status().generation(), 1);
    assert_eq!(store.status().health(), SvidHealth::Failing);
}

#[tokio::test]
async fn the_svid_with_the_configured_hint_is_served() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.push(
        Delivery::new()
            .svid_with(&ca, &ca, ORDERS, 60, "orders", false)
            .svid_with(
                &ca,
                &ca,
                "spiffe://example.org/payments",
                60,
                "payments",
                false,
            )
            .build(),
    );
    let store = SvidStore::new();
    let _watcher = source(&server)
        .svid_hint("payments")
        .start(store.clone())
        .await
        .unwrap();
    assert_eq!(
        store.status().spiffe_id().map(|id| id.as_str()),
        Some("spiffe://example.org/payments")
    );

    let other = SvidStore::new();
    let error = source(&server)
        .svid_hint("billing")
        .start_timeout(Duration::from_secs(2))
        .start(other.clone())
        .await
        .unwrap_err();
    let WorkloadApiError::StartTimeout {
        last_error: Some(last),
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(last.to_string().contains("`billing`"), "{last}");
    assert_eq!(other.status().health(), SvidHealth::Empty);
}

#[tokio::test]
async fn dropping_the_watcher_closes_the_stream() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let watcher = source(&server).start(store.clone()).await.unwrap();
    assert_eq!(open_streams(&server), 1);

    drop(watcher);
    eventually("the stream to close", || open_streams(&server) == 0).await;
}

#[test]
fn endpoints_other_than_unix_and_tcp_addresses_are_refused() {
    for endpoint in [
        "/run/spire/agent.sock",
        "http://127.0.0.1:8081",
        "unix://host/run/agent.sock",
        "tcp://localhost:8081",
    ] {
        let error = WorkloadApiSource::new(endpoint).unwrap_err();
        assert_eq!(error.reason(), "invalid_endpoint", "{endpoint}");
    }
    assert!(WorkloadApiSource::new("unix:///run/spire/agent.sock").is_ok());
    assert!(WorkloadApiSource::new("tcp://127.0.0.1:8081").is_ok());
    assert!(WorkloadApiSource::new("tcp://127.0.0.2:8081").is_ok());
    assert!(WorkloadApiSource::new("tcp://[::1]:8081").is_ok());
}

/// Plaintext gRPC carries the SVID's private key: TCP stays on the host.
#[test]
fn tcp_endpoints_off_the_loopback_are_refused() {
    for endpoint in [
        "tcp://10.0.0.7:8081",
        "tcp://0.0.0.0:8081",
        "tcp://[2001:db8::1]:8081",
        "tcp://[::]:8081",
    ] {
        let error = WorkloadApiSource::new(endpoint).unwrap_err();
        assert_eq!(error.reason(), "non_loopback_endpoint", "{endpoint}");
    }
}

/// The server itself refuses a request without `workload.spiffe.io: true`, so the first
/// test's count of requests with it shows the client sent it.
#[tokio::test]
async fn the_test_server_refuses_a_request_without_the_security_header() {
    let server = TestWorkloadApi::start();
    let path = server.socket();
    let channel = tonic::transport::Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let refused = grpc
        .server_streaming(
            tonic::Request::new(X509SvidRequest {}),
            http::uri::PathAndQuery::from_static(FETCH_X509_SVID),
            tonic_prost::ProstCodec::<X509SvidRequest, X509SvidResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        server
            .state
            .without_header
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn start_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    use std::future::Future as _;
    use std::task::{Context, Poll, Waker};

    let source = WorkloadApiSource::new("unix:///run/spire/agent.sock").unwrap();
    let mut start = std::pin::pin!(source.start(SvidStore::new()));
    let mut cx = Context::from_waker(Waker::noop());
    match start.as_mut().poll(&mut cx) {
        Poll::Ready(Err(error)) => assert_eq!(error.reason(), "no_runtime"),
        Poll::Ready(Ok(_)) => panic!("started without a runtime"),
        Poll::Pending => panic!("waited without a runtime"),
    }
}

/// An agent that served the workload and now answers `Unimplemented` (being upgraded, say)
/// is asked again, slowly, and its next delivery is taken.
#[tokio::test]
async fn unimplemented_after_start_is_retried_until_the_agent_delivers_again() {
    let ca = Ca::new("example.org");
    let mut server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let watcher = source(&server).start(store.clone()).await.unwrap();

    server.refuse_with(Code::Unimplemented);
    server.restart();
    eventually("two refused requests", || with_header(&server) >= 3).await;
    assert!(watcher.is_running());
    assert!(watcher.stopped_by().is_none());
    assert_eq!(store.status().health(), SvidHealth::Failing);

    server.accept_again();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    eventually("the delivery after the refusals", || {
        store.status().generation() == 2
    })
    .await;
    assert_eq!(store.status().health(), SvidHealth::Current);
}

/// An agent that closes each stream after one delivery: every connection delivers, yet the
/// back-off keeps growing (it restarts only after a connection that stayed up), so the
/// source connects a bounded number of times in a second, where a reset after each delivery
/// would reconnect every 10-20 ms.
#[tokio::test]
async fn a_stream_that_ends_after_each_delivery_does_not_reset_the_backoff() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.end_streams_after_first_delivery();
    server.push(Delivery::new().svid(&ca, ORDERS, 60).build());
    let store = SvidStore::new();
    let _watcher = WorkloadApiSource::new(&server.endpoint())
        .unwrap()
        .start_timeout(PATIENCE)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_secs(2))
        .start(store.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The shortest delays of a growing back-off add up to 10, 30, 70, 150, 310, 630 and
    // 1,270 ms: at most six reconnects after the first connection within the second.
    let connections = with_header(&server);
    assert!(connections >= 2, "the source reconnected ({connections})");
    assert!(connections <= 7, "{connections} connections in a second");
    assert!(store.status().generation() >= 2);
}

/// A stream that stays open but sends no rotation is taken for stuck once three quarters of
/// the SVID's validity have passed: the source reports it and connects again (and the agent
/// sends its current delivery on the new stream).
#[tokio::test]
async fn a_stream_silent_for_most_of_the_svid_lifetime_is_replaced() {
    let ca = Ca::new("example.org");
    let server = TestWorkloadApi::start();
    server.push(Delivery::new().svid(&ca, ORDERS, 4).build());
    let store = SvidStore::new();
    let _watcher = source(&server).start(store.clone()).await.unwrap();
    assert_eq!(with_header(&server), 1);

    eventually("a new connection", || with_header(&server) >= 2).await;
    assert!(store.status().failures() >= 1);
    eventually("the delivery on it", || store.status().generation() >= 2).await;
}
