//! The traffic: a buyer's checkouts through edge → orders → payments ten times a second,
//! and once a second a user without the buyer role checking out and an intruder workload
//! calling payments directly with the buyer's token. Every answer is compared with what it
//! should be.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::downstream::{Downstream, chain};
use crate::report::Report;
use crate::{BoxError, ORDERS, PAYMENTS, spiffe_id};

/// How often the buyer checks out.
const PACE: Duration = Duration::from_millis(100);

/// Every how many checkouts the others try, and a status line is printed.
const OTHERS_EVERY: u64 = 10;
const STATUS_EVERY: u64 = 50;

/// The answers of one kind of request: as expected or not.
#[derive(Default, Clone, Copy)]
pub(crate) struct Count {
    pub(crate) expected: u64,
    pub(crate) unexpected: u64,
}

/// What the traffic got.
#[derive(Default)]
pub(crate) struct Tally {
    /// The buyer's checkouts: expected to succeed.
    pub(crate) buyer: Count,
    /// Checkouts of the user without the buyer role: expected to be refused by payments.
    pub(crate) no_role: Count,
    /// The intruder's calls: expected to be refused by payments.
    pub(crate) intruder: Count,
    /// When the traffic started and ended (times since the start of the run).
    pub(crate) started: Duration,
    pub(crate) ended: Duration,
}

/// Who sends what.
pub(crate) struct Traffic {
    /// The users' side of the edge.
    pub(crate) edge: SocketAddr,
    /// The intruder's client of payments.
    pub(crate) intruder: Downstream,
    /// A buyer's token (alice) and a token without the role (bob).
    pub(crate) buyer_token: String,
    pub(crate) no_role_token: String,
    pub(crate) report: Arc<Report>,
}

/// One kind of request and the answer it should get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Buyer,
    NoRole,
    Intruder,
}

impl Traffic {
    /// Sends the traffic for `seconds`.
    pub(crate) async fn run(&self, seconds: u64) -> Result<Tally, BoxError> {
        let users = user_client()?;
        let mut tally = Tally {
            started: self.report.elapsed(),
            ..Tally::default()
        };
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut pace = tokio::time::interval(PACE);
        let mut n: u64 = 0;
        while Instant::now() < deadline {
            pace.tick().await;
            let answer = self.checkout(&users, &self.buyer_token).await;
            self.judge(Kind::Buyer, answer, &mut tally);
            if n.is_multiple_of(OTHERS_EVERY) {
                let answer = self.checkout(&users, &self.no_role_token).await;
                self.judge(Kind::NoRole, answer, &mut tally);
                let charge = json!({ "amount": 1000, "currency": "EUR" });
                let answer = self
                    .intruder
                    .send_with_token("/charges", &self.buyer_token, &charge)
                    .await;
                self.judge(Kind::Intruder, answer, &mut tally);
            }
            n = n.saturating_add(1);
            if n.is_multiple_of(STATUS_EVERY) {
                self.status(&tally);
            }
        }
        tally.ended = self.report.elapsed();
        Ok(tally)
    }

    /// A checkout at the edge with `token`.
    async fn checkout(
        &self,
        users: &reqwest::Client,
        token: &str,
    ) -> Result<(StatusCode, Value), String> {
        let response = users
            .post(format!("http://{}/checkout", self.edge))
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"item":"book"}"#)
            .send()
            .await
            .map_err(|e| chain(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| chain(&e))?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// Counts `answer`; prints the first of each kind, and any that is not as expected.
    fn judge(&self, kind: Kind, answer: Result<(StatusCode, Value), String>, tally: &mut Tally) {
        let (who, count) = match kind {
            Kind::Buyer => ("alice (buyer) → edge → orders → payments", &mut tally.buyer),
            Kind::NoRole => (
                "bob (no role) → edge → orders → payments",
                &mut tally.no_role,
            ),
            Kind::Intruder => (
                "intruder with alice's token → payments",
                &mut tally.intruder,
            ),
        };
        let (as_expected, text) = match &answer {
            Ok((status, body)) => (is_expected(kind, *status, body), describe(*status, body)),
            Err(error) => (false, format!("request failed: {error}")),
        };
        let first = count.expected == 0 && count.unexpected == 0;
        if as_expected {
            count.expected = count.expected.saturating_add(1);
        } else {
            count.unexpected = count.unexpected.saturating_add(1);
        }
        if !as_expected {
            self.report.line(format_args!("UNEXPECTED {who}: {text}"));
        } else if first {
            self.report.line(format_args!("{who}: {text}"));
        }
    }

    fn status(&self, tally: &Tally) {
        let generation = |name| {
            self.report
                .generations_seen(name)
                .last()
                .map_or_else(|| "-".to_owned(), u64::to_string)
        };
        self.report.line(format_args!(
            "alice {} ok, {} failed · bob refused {}/{} · intruder refused {}/{} · \
             clients shown orders gen {}, payments gen {}",
            tally.buyer.expected,
            tally.buyer.unexpected,
            tally.no_role.expected,
            tally
                .no_role
                .expected
                .saturating_add(tally.no_role.unexpected),
            tally.intruder.expected,
            tally
                .intruder
                .expected
                .saturating_add(tally.intruder.unexpected),
            generation(ORDERS),
            generation(PAYMENTS),
        ));
    }
}

/// Whether `status` and `body` are what a request of `kind` should get: the buyer is
/// charged by payments, seen there as alice calling through orders; the others are refused
/// by payments' policies.
fn is_expected(kind: Kind, status: StatusCode, body: &Value) -> bool {
    let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
    match kind {
        Kind::Buyer => {
            status == StatusCode::OK
                && text("/order/payment/user") == Some("alice")
                && text("/order/payment/workload") == Some(spiffe_id(ORDERS).as_str())
        }
        Kind::NoRole | Kind::Intruder => {
            status == StatusCode::FORBIDDEN
                && text("/service") == Some(PAYMENTS)
                && text("/stage") == Some("policy")
        }
    }
}

/// An answer in a few words.
fn describe(status: StatusCode, body: &Value) -> String {
    let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str).unwrap_or("?");
    let status = status.as_u16();
    if let Some(payment) = body.pointer("/order/payment") {
        let policies = payment.get("policies").map_or(Value::Null, Value::clone);
        return format!(
            "{status}, charged {} for {} calling from {} (policies {policies})",
            text("/order/payment/charge"),
            text("/order/payment/user"),
            text("/order/payment/workload"),
        );
    }
    match (body.get("service"), body.get("reason")) {
        (Some(_), Some(_)) => format!(
            "{status}, refused by {} at the {} stage: {}",
            text("/service"),
            text("/stage"),
            text("/reason")
        ),
        _ => format!("{status} {body}"),
    }
}

/// The users' client. The edge's user-facing side is plain HTTP on loopback; reqwest as
/// meshguard builds it has no TLS provider of its own, so it gets a ring configuration that
/// trusts no server (it never dials HTTPS here).
fn user_client() -> Result<reqwest::Client, BoxError> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?)
}
