//! A proxy named in the environment never sees a request to a loopback `http://` token
//! endpoint: it would read the client secret in the clear. The environment is set on a
//! child process (this test binary again, filtered to the test) rather than on this one.

use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

use crate::credentials;
use crate::endpoint::{Answer, Endpoint};
use crate::remote_support::ManualClock;

/// Set on the child: it fetches the token under the proxy variables instead of starting
/// a proxy and a child.
const CHILD: &str = "MESHGUARD_TEST_PROXY_CHILD";
const NAME: &str = "proxy::a_loopback_token_endpoint_is_never_reached_through_a_proxy";

#[tokio::test]
async fn a_loopback_token_endpoint_is_never_reached_through_a_proxy() {
    if std::env::var_os(CHILD).is_some() {
        let clock = ManualClock::new();
        let endpoint = Endpoint::start(Answer::bearer(300), &clock).await;
        let source = credentials(endpoint.url(), &clock).build().unwrap();
        source.authorization_header().await.unwrap();
        assert_eq!(endpoint.posts(), 1);
        return;
    }
    // A fake proxy that keeps what it is sent and never answers.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn({
        let seen = Arc::clone(&seen);
        async move {
            while let Ok((mut connection, _)) = proxy.accept().await {
                let mut received = vec![0; 4096];
                let n = connection.read(&mut received).await.unwrap_or(0);
                received.truncate(n);
                seen.lock().unwrap().push(received);
            }
        }
    });
    let child = tokio::task::spawn_blocking(move || {
        Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env("all_proxy", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen.is_empty(),
        "the proxy saw: {:?}",
        seen.iter()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .collect::<Vec<_>>()
    );
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stdout)
    );
    // The child ran the test (a filter matching nothing would also succeed).
    assert!(String::from_utf8_lossy(&child.stdout).contains("1 passed"));
}
