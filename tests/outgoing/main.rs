//! Credentials on outgoing requests against a test token endpoint on 127.0.0.1 (axum): what
//! is sent, the cache and its single flight, renewal before expiry, every way the endpoint
//! can fail (each failing the call, never sending it bare), token exchange, forwarding a
//! verified inbound token, and the layer under real tonic and hyper clients calling real
//! servers that verify the header. The real IdP's side is in tests/interop/outgoing.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../remote_support/mod.rs"]
mod remote_support;

mod client_credentials;
mod endpoint;
mod exchange;
mod failures;
mod forward;
mod layer;
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use meshguard::outgoing::{ClientAuth, ClientCredentials, TokenExchange};
use meshguard::token::{Algorithm, Clock, Issuer, KeySet, TokenSigner, Verifier};
use remote_support::ManualClock;
use serde_json::{Value, json};

/// The issuer of the tokens the test endpoint makes, and the audience it makes them for.
const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "payments";
/// TEST-ONLY: the HMAC secret the test endpoint signs with and the test servers verify.
const SECRET: &[u8] = b"outgoing-test-hmac-secret-at-least-32-bytes";

/// A JWT of [`ISSUER`] for [`AUDIENCE`] with `claims` merged in, signed with [`SECRET`].
fn jwt(extra: &Value) -> String {
    let mut claims = json!({ "iss": ISSUER, "aud": AUDIENCE });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    TokenSigner::new(Algorithm::HS256, SECRET)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap()
}

/// A verifier of the test endpoint's tokens, at the system clock.
fn verifier() -> Verifier {
    Verifier::builder()
        .issuer(Issuer::new(ISSUER, KeySet::hmac_secret("k1", SECRET).unwrap()).audience(AUDIENCE))
        .build()
        .unwrap()
}

/// Client credentials at `url`, authenticated with `client_secret_basic`, on `clock`.
fn credentials(url: &str, clock: &Arc<ManualClock>) -> ClientCredentials {
    let clock: Arc<dyn Clock> = clock.clone();
    ClientCredentials::new(url, ClientAuth::basic("orders", "orders-secret"))
        .scope("pay")
        .clock(clock)
        .wait(Duration::from_secs(10))
}

/// Token exchange at `url` for [`AUDIENCE`], on `clock`.
fn exchange(url: &str, clock: &Arc<ManualClock>) -> TokenExchange {
    let clock: Arc<dyn Clock> = clock.clone();
    TokenExchange::new(url, ClientAuth::post("orders", "orders-secret"))
        .audience(AUDIENCE)
        .clock(clock)
}

/// Waits (a liveness bound, not a timing assertion) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{what} never happened");
}
