//! The self-check: the service on a free port of 127.0.0.1, a request for each case a
//! newcomer should see (allowed, denied, no token, expired, forged, owner checks, scopes), one
//! line per answer, and whether every answer was the expected one.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use http::header::{AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use meshguard::response::{Refusal, RequestHead};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::idp::DemoIdp;
use crate::{BoxError, REALM};

/// Serves `app` on a free port, sends every case to it, and exits 0 if every answer was
/// the expected one, 1 otherwise.
pub(crate) async fn run(app: Router, idp: &DemoIdp) -> Result<ExitCode, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let all_as_expected = self_check_table(addr, idp).await?;
    let _ = stop.send(());
    server.await??;
    Ok(if all_as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the self-check expects of the `WWW-Authenticate` header.
enum Challenge {
    Absent,
    Exactly(String),
    Containing(&'static str),
}

/// One request of the self-check and the answer it must get.
struct Case {
    method: &'static str,
    path: &'static str,
    token: Option<String>,
    who: &'static str,
    status: u16,
    decision: &'static str,
    policy: &'static str,
    challenge: Challenge,
}

impl Case {
    fn new(
        method: &'static str,
        path: &'static str,
        token: Option<&str>,
        who: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            token: token.map(str::to_owned),
            who,
            status: 0,
            decision: "-",
            policy: "-",
            challenge: Challenge::Absent,
        }
    }

    /// The expected status, decision, and determining policy (or refusal reason).
    fn expect(mut self, status: u16, decision: &'static str, policy: &'static str) -> Self {
        self.status = status;
        self.decision = decision;
        self.policy = policy;
        self
    }

    fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }
}

/// What a response said, as a client reads it.
struct Answer {
    status: u16,
    decision: String,
    policy: String,
    challenge: Option<String>,
}

/// The default refusal (RFC 9457 problem details, RFC 6750 challenge) with the stable
/// `reason` and the `stage` that refused added to the body, so that clients — and the
/// self-check — can tell an expired token from a forged one.
pub(crate) fn problem_with_reason(
    refusal: &Refusal,
    request: RequestHead<'_>,
    realm: &str,
) -> http::Response<String> {
    refusal
        .render::<String>(request, realm)
        .map(|body| match serde_json::from_str(&body) {
            Ok(Value::Object(mut problem)) => {
                problem.insert("reason".into(), refusal.reason().into());
                problem.insert("stage".into(), refusal.stage().as_str().into());
                Value::Object(problem).to_string()
            }
            // gRPC refusals have an empty body; anything else is left as it is.
            _ => body,
        })
}

/// Sends every case to the service at `addr`, prints the table, and says whether every
/// answer was the expected one.
async fn self_check_table(addr: SocketAddr, idp: &DemoIdp) -> Result<bool, BoxError> {
    let alice = idp.alice()?;
    let bob = idp.bob()?;
    let expired = idp.token("alice", &["member"], "documents:read", -3600)?;
    // Bob made a member, under the signature of alice's token: a forged payload.
    let forged = forge(
        &alice,
        &idp.token("bob", &["member"], "documents:read", 3600)?,
    )?;
    let writer = idp.token("alice", &["member"], "documents:read documents:write", 3600)?;
    let cases = [
        Case::new("GET", "/health", None, "no token").expect(200, "-", "-"),
        Case::new("GET", "/documents", Some(&alice), "alice, member").expect(
            200,
            "allow",
            "members-call-the-api",
        ),
        Case::new("GET", "/documents", Some(&bob), "bob, guest").expect(403, "deny", "no_permit"),
        Case::new("GET", "/documents", None, "no token")
            .expect(401, "-", "missing_token")
            .challenge(Challenge::Exactly(format!("Bearer realm=\"{REALM}\""))),
        Case::new("GET", "/documents", Some(&expired), "expired token")
            .expect(401, "-", "expired")
            .challenge(Challenge::Containing("error=\"invalid_token\"")),
        Case::new("GET", "/documents", Some(&forged), "forged token")
            .expect(401, "-", "bad_signature")
            .challenge(Challenge::Containing("error=\"invalid_token\"")),
        Case::new("GET", "/documents/d1", Some(&alice), "alice, owner").expect(
            200,
            "allow",
            "owners-read-documents",
        ),
        Case::new("GET", "/documents/d2", Some(&alice), "alice, not owner").expect(
            403,
            "deny",
            "no_permit",
        ),
        Case::new("DELETE", "/documents/d1", Some(&alice), "alice, read scope")
            .expect(403, "-", "insufficient_scope")
            .challenge(Challenge::Containing("scope=\"documents:write\"")),
        Case::new(
            "DELETE",
            "/documents/d1",
            Some(&writer),
            "alice, write scope",
        )
        .expect(200, "allow", "owners-delete-documents"),
    ];
    println!("meshguard quickstart self-check against http://{addr}\n");
    println!(
        "{:<42} {:>6}  {:<8} {:<26} result",
        "request", "status", "decision", "policy / reason"
    );
    let mut failures = 0;
    for case in &cases {
        let answer = send(addr, case).await?;
        let mismatches = mismatches(case, &answer);
        let result = match mismatches.is_empty() {
            true => "ok".to_owned(),
            false => format!("UNEXPECTED: {}", mismatches.join("; ")),
        };
        let request = format!("{} {} ({})", case.method, case.path, case.who);
        println!(
            "{request:<42} {:>6}  {:<8} {:<26} {result}",
            answer.status, answer.decision, answer.policy
        );
        if !mismatches.is_empty() {
            failures += 1;
        }
    }
    println!();
    if failures == 0 {
        println!("all {} answers as expected", cases.len());
    } else {
        println!(
            "{failures} of {} answers differ from the expectation",
            cases.len()
        );
    }
    Ok(failures == 0)
}

/// `payload_of`'s payload under `signed`'s header and signature.
fn forge(signed: &str, payload_of: &str) -> Result<String, BoxError> {
    let mut signed = signed.split('.');
    let mut other = payload_of.split('.');
    match (signed.next(), other.nth(1), signed.nth(1)) {
        (Some(header), Some(payload), Some(signature)) => {
            Ok(format!("{header}.{payload}.{signature}"))
        }
        _ => Err("a token without three parts".into()),
    }
}

fn mismatches(case: &Case, answer: &Answer) -> Vec<String> {
    let mut found = Vec::new();
    if answer.status != case.status {
        found.push(format!("status, expected {}", case.status));
    }
    if answer.decision != case.decision {
        found.push(format!("decision, expected {}", case.decision));
    }
    if answer.policy != case.policy {
        found.push(format!("policy/reason, expected {}", case.policy));
    }
    let challenge = answer.challenge.as_deref();
    match &case.challenge {
        Challenge::Absent if challenge.is_some() => {
            found.push("a WWW-Authenticate header, expected none".to_owned());
        }
        Challenge::Exactly(expected) if challenge != Some(expected.as_str()) => {
            found.push(format!(
                "WWW-Authenticate {challenge:?}, expected `{expected}`"
            ));
        }
        Challenge::Containing(part) if !challenge.is_some_and(|c| c.contains(part)) => {
            found.push(format!(
                "WWW-Authenticate {challenge:?}, expected it to contain `{part}`"
            ));
        }
        _ => {}
    }
    found
}

/// One request over a fresh HTTP/1.1 connection; the decision and policy come from the
/// handler's JSON, or from the refusal's problem details.
async fn send(addr: SocketAddr, case: &Case) -> Result<Answer, BoxError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(case.method)
        .uri(case.path)
        .header(HOST, addr.to_string());
    if let Some(token) = &case.token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response.into_body().collect().await?.to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let (decision, policy) = match (text("decision"), text("reason")) {
        (Some(decision), _) => {
            let ids: Vec<&str> = body
                .get("policies")
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (
                decision.to_owned(),
                if ids.is_empty() {
                    "-".to_owned()
                } else {
                    ids.join(",")
                },
            )
        }
        // Refused: a deny when the policies refused, otherwise no decision was made.
        (None, Some(reason)) => {
            let decision = if text("stage") == Some("policy") {
                "deny"
            } else {
                "-"
            };
            (decision.to_owned(), reason.to_owned())
        }
        (None, None) => ("-".to_owned(), "-".to_owned()),
    };
    Ok(Answer {
        status,
        decision,
        policy,
        challenge,
    })
}
