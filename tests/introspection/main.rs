//! Opaque tokens by introspection (RFC 7662) against a hand-rolled endpoint on 127.0.0.1:
//! what is sent, how the answers are cached and shared, and every way the endpoint can fail,
//! each refused (fail closed), and a guard taking opaque tokens beside JWTs. The real IdP's
//! side is in tests/interop/introspection.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../remote_support/mod.rs"]
mod remote_support;

mod cache;
mod endpoint;
mod failures;
mod guard;

use std::sync::Arc;

use meshguard::token::Clock;
use meshguard::token::introspection::{ClientAuth, Introspection};

use remote_support::ManualClock;

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "https://api.test/orders";

/// A fixed "now" for the tests' manual clocks.
const NOW: i64 = 1_700_000_000;

/// An active answer for `AUDIENCE` expiring `lifetime` seconds after [`NOW`].
fn active(lifetime: i64) -> String {
    format!(
        r#"{{"active":true,"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"u1","client_id":"svc",
        "scope":"read","token_type":"Bearer","exp":{},"iat":{NOW}}}"#,
        NOW + lifetime
    )
}

/// The configuration the tests start from: the endpoint at `url`, a manual clock, no leeway.
fn config(url: &str, clock: &Arc<ManualClock>) -> Introspection {
    let clock: Arc<dyn Clock> = clock.clone();
    Introspection::new(ISSUER, url, ClientAuth::basic("rs", "secret"))
        .audience(AUDIENCE)
        .leeway(std::time::Duration::ZERO)
        .clock(clock)
}
