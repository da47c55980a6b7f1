//! [`AuthenticationLayer`]: verifies the request's bearer token and puts the
//! [`VerifiedToken`](super::VerifiedToken) into the request extensions, or answers 401/400
//! itself.
//!
//! # Example
//!
//! ```
//! use meshguard::token::{Issuer, KeySet, Verifier, layer::AuthenticationLayer};
//!
//! let keys = KeySet::hmac_secret("k1", b"demo-secret-that-is-at-least-32-bytes!")?;
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://idp.example", keys).audience("api://orders"))
//!     .build()?;
//! let layer = AuthenticationLayer::new(verifier).realm("orders");
//! // axum: Router::new().route(...).layer(layer)
//! // tonic: Server::builder().layer(layer)
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::bearer::BearerExtractor;
use super::error::{BearerError, TokenError};
use super::verifier::Verifier;
use crate::response::{Refusal, RefusalBody};

/// Verifies bearer tokens in front of a service.
///
/// A request without a token is refused with 401 and a challenge without `error` (RFC 6750
/// §3.1), unless the layer is [`optional`](AuthenticationLayer::optional); a request with an
/// invalid token is always refused (401 `invalid_token`); a request with two tokens or a
/// malformed `Authorization` header gets 400 `invalid_request`. gRPC requests get
/// trailers-only responses with `grpc-status` 16 or 3 instead. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct AuthenticationLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    verifier: Verifier,
    extractor: BearerExtractor,
    realm: String,
    optional: bool,
}

impl AuthenticationLayer {
    /// A layer verifying `Authorization: Bearer` tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        AuthenticationLayer {
            config: Arc::new(Config {
                verifier,
                extractor: BearerExtractor::new(),
                realm: "meshguard".to_owned(),
                optional: false,
            }),
        }
    }

    /// The `realm` of `WWW-Authenticate` challenges. Defaults to `meshguard`.
    pub fn realm(self, realm: impl Into<String>) -> Self {
        self.with(|config| config.realm = realm.into())
    }

    /// Where tokens are looked for (e.g. also a cookie). Defaults to the
    /// `Authorization` header only.
    pub fn extractor(self, extractor: BearerExtractor) -> Self {
        self.with(|config| config.extractor = extractor)
    }

    /// Lets requests without any token through, without a [`VerifiedToken`] extension;
    /// a token that is present must still verify. Defaults to requiring a token.
    ///
    /// [`VerifiedToken`]: super::VerifiedToken
    pub fn optional(self) -> Self {
        self.with(|config| config.optional = true)
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        AuthenticationLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authentication {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`AuthenticationLayer`] wraps around `S`.
#[derive(Clone, Debug)]
pub struct Authentication<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Authentication<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Authentication<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: RefusalBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = &*self.config;
        let found = config
            .extractor
            .extract(request.headers(), request.uri())
            .map_err(bearer_refusal)
            .and_then(|token| config.verifier.verify(token).map_err(|e| token_refusal(&e)));
        match found {
            Ok(verified) => {
                request.extensions_mut().insert(verified);
            }
            Err(refusal) if refusal.reason == "missing_token" && config.optional => {}
            Err(refusal) => {
                return ResponseFuture::refused(refusal.render(request.headers(), &config.realm));
            }
        }
        ResponseFuture::inner(self.inner.call(request))
    }
}

pin_project! {
    /// The response future of [`Authentication`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(future: F) -> Self {
        ResponseFuture {
            state: State::Inner { future },
        }
    }

    fn refused(response: Response<B>) -> Self {
        ResponseFuture {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: RefusalBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            StateProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: a contract violation by the caller, answered
                // with an error response rather than a panic.
                None => {
                    let mut response = Response::new(B::empty());
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    Poll::Ready(Ok(response))
                }
            },
        }
    }
}

/// The refusal for a request whose bearer credential could not be taken.
pub fn bearer_refusal(error: BearerError) -> Refusal {
    match error {
        BearerError::Missing => Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            description: "a bearer token is required",
            reason: error.reason(),
        },
        BearerError::Malformed | BearerError::Multiple => Refusal {
            status: StatusCode::BAD_REQUEST,
            error: error.error_code(),
            description: match error {
                BearerError::Multiple => "the request carries more than one token",
                _ => "the bearer credential is malformed",
            },
            reason: error.reason(),
        },
    }
}

/// The refusal for a token that did not verify: 401 `invalid_token` with a fixed description.
pub fn token_refusal(error: &TokenError) -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        error: Some(error.error_code()),
        description: match error {
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::KeySourceUnavailable => "the token cannot be verified now",
            _ => "the token is invalid",
        },
        reason: error.reason(),
    }
}
