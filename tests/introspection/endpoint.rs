//! A hand-rolled introspection endpoint on 127.0.0.1 (axum): it answers as the test sets,
//! counts the POSTs it receives and keeps the last request's form and `Authorization`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

/// What the endpoint answers.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// 200 with this body as `application/json`.
    Json(String),
    /// This status with an empty body.
    Status(u16),
    /// 307 to this URL.
    Redirect(String),
    /// Never answers.
    Hang,
}

#[derive(Default)]
struct Shared {
    answer: Mutex<Option<Answer>>,
    posts: AtomicUsize,
    last: Mutex<Option<(String, Option<String>)>>,
}

pub(crate) struct Endpoint {
    url: String,
    shared: Arc<Shared>,
}

impl Endpoint {
    /// Starts answering `answer` on a loopback port, served by a task of the current runtime.
    pub(crate) async fn start(answer: Answer) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.answer.lock().unwrap() = Some(answer);
        let router = Router::new()
            .route("/introspect", post(introspect))
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Endpoint { url, shared }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn set(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = Some(answer);
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

async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    shared.posts.fetch_add(1, Ordering::SeqCst);
    let authorization = headers
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_owned());
    *shared.last.lock().unwrap() = Some((body, authorization));
    let answer = shared.answer.lock().unwrap().clone().unwrap();
    match answer {
        Answer::Json(body) => {
            (StatusCode::OK, [("content-type", "application/json")], body).into_response()
        }
        Answer::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Answer::Redirect(location) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", location)]).into_response()
        }
        Answer::Hang => std::future::pending().await,
    }
}
