//! [`OutgoingCredentialsLayer`]: attaches credentials to every request a client sends, and
//! refuses to send a request it cannot give them to.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::destination::Origin;
use super::error::{OutgoingBuilderError, OutgoingError};
use super::{InboundBearer, TokenExchanger, TokenSource};

/// The error type of [`OutgoingCredentials`]: the inner service's error, or an
/// [`OutgoingError`] when the request got no credentials (downcast to tell them apart).
/// tonic turns it into a `Status` of code `Unknown` whose message is the error's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which credentials a layer attaches.
#[derive(Clone, Debug)]
pub struct Credentials(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Forward,
    ClientCredentials(TokenSource),
    Exchange(TokenExchanger),
}

impl Credentials {
    /// The inbound user's bearer token, as it came: each outgoing request must carry the
    /// [`InboundBearer`] of the request it is made for in its extensions.
    pub fn forward() -> Self {
        Credentials(Kind::Forward)
    }

    /// This service's own token from `source` (OAuth 2.0 client credentials).
    pub fn client_credentials(source: TokenSource) -> Self {
        Credentials(Kind::ClientCredentials(source))
    }

    /// The inbound user's token exchanged by `exchanger` (RFC 8693): each outgoing request
    /// must carry the [`InboundBearer`] of the request it is made for in its extensions.
    pub fn exchange(exchanger: TokenExchanger) -> Self {
        Credentials(Kind::Exchange(exchanger))
    }
}

/// A tower layer putting credentials into the `Authorization` header of every outgoing
/// request (replacing any there), for requests to one origin.
///
/// A request's URI must name the configured origin exactly, or the request fails with
/// [`OutgoingError::Destination`]; the origin itself must be `https://` or `http://` to a
/// loopback host, so a token never travels in the clear beyond this machine. A URI of a
/// path only (as tonic's generated clients send them to a `Channel`, which adds its own
/// endpoint's origin) names no origin the layer can check: it is refused unless
/// [`trust_inner_origin`](Self::trust_inner_origin) vouches for the inner service. A request that cannot be given its credentials is not sent: the call fails
/// with the [`OutgoingError`] boxed into [`BoxError`].
///
/// The inner service must be `Clone` (tonic's `Channel` and hyper-util's client are): a
/// request waiting for a token is sent by the clone that was ready.
#[derive(Clone, Debug)]
pub struct OutgoingCredentialsLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    credentials: Credentials,
    origin: Origin,
    /// Whether path-only URIs are sent, the inner service adding the origin.
    trust_inner_origin: bool,
}

impl OutgoingCredentialsLayer {
    /// Attaches `credentials` to requests for `origin` (`https://host[:port]`, or
    /// `http://` to `localhost` or a loopback address).
    ///
    /// # Errors
    ///
    /// [`OutgoingBuilderError::Origin`] for any other origin, or one with a path.
    pub fn new(credentials: Credentials, origin: &str) -> Result<Self, OutgoingBuilderError> {
        Ok(OutgoingCredentialsLayer {
            config: Arc::new(Config {
                credentials,
                origin: Origin::parse(origin)?,
                trust_inner_origin: false,
            }),
        })
    }

    /// Sends requests whose URI is a path only, trusting the inner service to send them to
    /// the configured origin: for tonic's `Channel`, whose generated clients make such
    /// requests and which sends every one to its `Endpoint`.
    ///
    /// # Security
    ///
    /// The layer cannot see where a path-only request goes: the inner service picks the
    /// scheme and host (a `Channel` built for `http://payments.internal:50051` would carry
    /// the token in the clear across the network). With this, you vouch that the inner
    /// service connects only to the configured origin, over TLS or to loopback. Absolute
    /// URIs are still checked against the origin. Defaults to refusing path-only requests
    /// with [`OutgoingError::Destination`].
    pub fn trust_inner_origin(self) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        config.trust_inner_origin = true;
        OutgoingCredentialsLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for OutgoingCredentialsLayer {
    type Service = OutgoingCredentials<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutgoingCredentials {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service [`OutgoingCredentialsLayer`] makes.
#[derive(Clone)]
pub struct OutgoingCredentials<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> OutgoingCredentials<S> {
    /// Wraps `inner` as [`OutgoingCredentialsLayer::new`] would.
    ///
    /// # Errors
    ///
    /// As [`OutgoingCredentialsLayer::new`].
    pub fn new(
        inner: S,
        credentials: Credentials,
        origin: &str,
    ) -> Result<Self, OutgoingBuilderError> {
        Ok(OutgoingCredentialsLayer::new(credentials, origin)?.layer(inner))
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for OutgoingCredentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingCredentials")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

type Pending = Pin<Box<dyn Future<Output = Result<HeaderValue, OutgoingError>> + Send>>;

impl<S, B> Service<Request<B>> for OutgoingCredentials<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !self
            .config
            .origin
            .admits(request.uri(), self.config.trust_inner_origin)
        {
            return ResponseFuture::failed(OutgoingError::Destination);
        }
        // Taken out: it has no business further down the stack.
        let inbound = request.extensions_mut().remove::<InboundBearer>();
        let pending: Pending = match (&self.config.credentials.0, inbound) {
            (Kind::Forward, Some(inbound)) => {
                return self.send(request, inbound.authorization().clone());
            }
            (Kind::ClientCredentials(source), _) => match source.ready() {
                Some(header) => return self.send(request, header),
                None => Box::pin(source.wait_owned()),
            },
            (Kind::Exchange(exchanger), Some(inbound)) => match exchanger.ready(&inbound) {
                Some(header) => return self.send(request, header),
                None => {
                    let exchanger = exchanger.clone();
                    Box::pin(async move { exchanger.authorization_header(&inbound).await })
                }
            },
            (Kind::Forward | Kind::Exchange(_), None) => {
                return ResponseFuture::failed(OutgoingError::MissingInboundToken);
            }
        };
        // The service that was made ready sends the request once the token is there.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Waiting {
                pending,
                request: Some(request),
                service: ready,
            },
        }
    }
}

impl<S> OutgoingCredentials<S> {
    fn send<B>(&mut self, mut request: Request<B>, header: HeaderValue) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        request.headers_mut().insert(AUTHORIZATION, header);
        ResponseFuture {
            state: State::Calling {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of [`OutgoingCredentials`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Calling { #[pin] future: S::Future },
        Waiting { pending: Pending, request: Option<Request<B>>, service: S },
        Failed { error: Option<OutgoingError> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn failed(error: OutgoingError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Calling { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Waiting {
                    pending,
                    request,
                    service,
                } => {
                    let header = match ready!(pending.as_mut().poll(cx)) {
                        Ok(header) => header,
                        Err(error) => return Poll::Ready(Err(Box::new(error))),
                    };
                    let Some(mut request) = request.take() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    request.headers_mut().insert(AUTHORIZATION, header);
                    let future = service.call(request);
                    state.set(State::Calling { future });
                }
                StateProj::Failed { error } => {
                    let error: BoxError = match error.take() {
                        Some(error) => Box::new(error),
                        None => "polled after completion".into(),
                    };
                    return Poll::Ready(Err(error));
                }
            }
        }
    }
}
