//! A test token endpoint on 127.0.0.1 (axum): it answers as the test sets (issuing JWTs
//! signed with the test secret, or failing in a chosen way), counts the POSTs it receives
//! and keeps the last request's form and `Authorization`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use meshguard::token::Clock;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::jwt;
use crate::remote_support::ManualClock;

/// What the endpoint answers.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// 200 with a new JWT living `lifetime` seconds from the test clock's now, of this
    /// `token_type`; a token exchange's answer also names its `issued_token_type`.
    Issue { lifetime: i64, token_type: String },
    /// As `Issue` with `Bearer`, once the test opens the gate.
    Held { lifetime: i64 },
    /// This status and body, with this `Retry-After` if any.
    Raw {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// 307 to this URL.
    Redirect(String),
    /// Never answers.
    Hang,
}

impl Answer {
    pub(crate) fn bearer(lifetime: i64) -> Self {
        Answer::Issue {
            lifetime,
            token_type: "Bearer".into(),
        }
    }

    pub(crate) fn status(status: u16, body: &str) -> Self {
        Answer::Raw {
            status,
            body: body.into(),
            retry_after: None,
        }
    }
}

struct Shared {
    answer: Mutex<Answer>,
    posts: AtomicUsize,
    issued: AtomicUsize,
    last: Mutex<Option<(String, Option<String>)>>,
    gate: watch::Sender<bool>,
    clock: Arc<ManualClock>,
}

pub(crate) struct Endpoint {
    url: String,
    shared: Arc<Shared>,
}

impl Endpoint {
    /// Starts answering `answer` on a loopback port, its tokens' times read from `clock`.
    pub(crate) async fn start(answer: Answer, clock: &Arc<ManualClock>) -> Self {
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            posts: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            last: Mutex::new(None),
            gate: watch::Sender::new(false),
            clock: Arc::clone(clock),
        });
        let router = Router::new()
            .route("/token", post(token))
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Endpoint { url, shared }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn set(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Lets held requests (and later ones) be answered.
    pub(crate) fn open_gate(&self) {
        self.shared.gate.send_replace(true);
    }

    /// How many POSTs arrived.
    pub(crate) fn posts(&self) -> usize {
        self.shared.posts.load(Ordering::SeqCst)
    }

    /// The last request's form body and `Authorization` header.
    pub(crate) fn last_request(&self) -> (String, Option<String>) {
        self.shared.last.lock().unwrap().clone().unwrap()
    }
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    shared.posts.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_owned());
    let exchange = body.contains("grant-type%3Atoken-exchange");
    *shared.last.lock().unwrap() = Some((body, authorization));
    let answer = shared.answer.lock().unwrap().clone();
    let (lifetime, token_type) = match answer {
        Answer::Issue {
            lifetime,
            token_type,
        } => (lifetime, token_type),
        Answer::Held { lifetime } => {
            let mut gate = shared.gate.subscribe();
            gate.wait_for(|open| *open).await.unwrap();
            (lifetime, "Bearer".to_owned())
        }
        Answer::Raw {
            status,
            body,
            retry_after,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", value.parse().unwrap());
            }
            return response;
        }
        Answer::Redirect(location) => {
            return (StatusCode::TEMPORARY_REDIRECT, [("location", location)]).into_response();
        }
        Answer::Hang => return std::future::pending().await,
    };
    let n = shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let now = shared.clock.unix_seconds();
    let access_token = jwt(&json!({
        "sub": "orders", "jti": format!("t{n}"), "iat": now, "exp": now + lifetime,
    }));
    let mut answer = json!({
        "access_token": access_token, "token_type": token_type, "expires_in": lifetime,
    });
    if exchange {
        answer["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token".into();
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}
