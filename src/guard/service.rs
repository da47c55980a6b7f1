//! The service every meshguard layer wraps around the application, and its response
//! future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::Span;

use super::observe;
#[cfg(feature = "remote-jwks")]
use super::pipeline::Parked;
use super::pipeline::{Admit, Pipeline};
use super::routes::RouteMatch;
use crate::caller::Caller;
use crate::peer::PeerIdentity;
use crate::policy::Decision;
use crate::response::RefusalBody;
use crate::token::{TokenError, VerifiedToken};

/// The service a meshguard layer ([`GuardLayer`](super::GuardLayer),
/// [`PeerIdentityLayer`](crate::peer::PeerIdentityLayer),
/// [`AuthenticationLayer`](crate::token::layer::AuthenticationLayer),
/// [`AuthorizationLayer`](crate::policy::AuthorizationLayer)) wraps around `S`.
///
/// Admitted requests reach `S` with the identities and the decision in their extensions;
/// refused ones are answered here. Cloning is cheap: the configuration is shared.
pub struct Guarded<S> {
    inner: S,
    pipeline: Arc<Pipeline>,
}

impl<S: Clone> Clone for Guarded<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            pipeline: Arc::clone(&self.pipeline),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S, pipeline: Arc<Pipeline>) -> Self {
        Self { inner, pipeline }
    }

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

type Verification = Pin<Box<dyn Future<Output = Result<VerifiedToken, TokenError>> + Send>>;

/// A request parked while a remote key source refreshes.
#[cfg_attr(
    not(feature = "remote-jwks"),
    expect(dead_code, reason = "only remote key sources are waited for")
)]
struct Awaiting<S, Req> {
    verification: Verification,
    request: Req,
    inner: S,
    peer: Option<PeerIdentity>,
    route: RouteMatch,
    pipeline: Arc<Pipeline>,
    started: Instant,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Guarded<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: RefusalBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request<ReqBody>, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let span = observe::request_span();
        let pipeline = &*self.pipeline;
        match pipeline.admit(&mut request) {
            Admit::Pass => {
                let extensions = request.extensions();
                observe::admitted(
                    &span,
                    extensions.get::<Caller>(),
                    extensions.get::<Decision>(),
                    started,
                );
                let future = {
                    let _entered = span.enter();
                    self.inner.call(request)
                };
                ResponseFuture::forward(future, span)
            }
            Admit::Refuse(refused) => {
                let (refusal, decision) = *refused;
                observe::refused(&span, &refusal, decision.as_ref(), started);
                ResponseFuture::refused(pipeline.render(&refusal, &request), span)
            }
            #[cfg(feature = "remote-jwks")]
            Admit::AwaitKeys(parked) => {
                let Parked {
                    token,
                    verifier,
                    peer,
                    route,
                } = *parked;
                // The service that was readied goes with the request; this one keeps a clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let awaiting = Awaiting {
                    verification: Box::pin(async move { verifier.verify_async(&token).await }),
                    request,
                    inner,
                    peer,
                    route,
                    pipeline: Arc::clone(&self.pipeline),
                    started,
                };
                ResponseFuture::awaiting(Box::new(awaiting), span)
            }
        }
    }
}

pin_project! {
    /// The response future of [`Guarded`].
    pub struct ResponseFuture<S, Req, B>
    where
        S: Service<Req>,
    {
        #[pin]
        future: Option<S::Future>,
        refused: Option<Response<B>>,
        awaiting: Option<Box<Awaiting<S, Req>>>,
        span: Span,
    }
}

impl<S: Service<Req>, Req, B> ResponseFuture<S, Req, B> {
    fn forward(future: S::Future, span: Span) -> Self {
        Self {
            future: Some(future),
            refused: None,
            awaiting: None,
            span,
        }
    }

    fn refused(response: Response<B>, span: Span) -> Self {
        Self {
            future: None,
            refused: Some(response),
            awaiting: None,
            span,
        }
    }

    #[cfg(feature = "remote-jwks")]
    fn awaiting(awaiting: Box<Awaiting<S, Req>>, span: Span) -> Self {
        Self {
            future: None,
            refused: None,
            awaiting: Some(awaiting),
            span,
        }
    }
}

impl<S, ReqBody, B> Future for ResponseFuture<S, Request<ReqBody>, B>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    B: RefusalBody,
{
    type Output = Result<Response<B>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut future = this.future;
        let _entered = this.span.enter();
        #[cfg(feature = "remote-jwks")]
        if let Some(awaiting) = this.awaiting.as_mut() {
            let Poll::Ready(verified) = awaiting.verification.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            if let Some(awaiting) = this.awaiting.take() {
                let Awaiting {
                    mut request,
                    mut inner,
                    peer,
                    route,
                    pipeline,
                    started,
                    ..
                } = *awaiting;
                match resume(&pipeline, &mut request, peer, verified, route) {
                    Ok(()) => {
                        let extensions = request.extensions();
                        observe::admitted(
                            this.span,
                            extensions.get::<Caller>(),
                            extensions.get::<Decision>(),
                            started,
                        );
                        future.set(Some(inner.call(request)));
                    }
                    Err(refused) => {
                        let (refusal, decision) = *refused;
                        observe::refused(this.span, &refusal, decision.as_ref(), started);
                        return Poll::Ready(Ok(pipeline.render(&refusal, &request)));
                    }
                }
            }
        }
        if let Some(future) = future.as_mut().as_pin_mut() {
            return future.poll(cx);
        }
        match this.refused.take() {
            Some(response) => Poll::Ready(Ok(response)),
            // Polled again after completion: a contract violation by the caller, answered
            // with an error response rather than a panic.
            None => {
                let mut response = Response::new(B::empty());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(feature = "remote-jwks")]
type Resumed = Result<(), Box<(crate::Refusal, Option<Decision>)>>;

#[cfg(feature = "remote-jwks")]
fn resume<B>(
    pipeline: &Pipeline,
    request: &mut Request<B>,
    peer: Option<PeerIdentity>,
    verified: Result<VerifiedToken, TokenError>,
    route: RouteMatch,
) -> Resumed {
    match pipeline.resume(request, peer, verified, route) {
        Admit::Pass => Ok(()),
        Admit::Refuse(refused) => Err(refused),
        // The token verified after the wait: the remaining checks never wait again.
        Admit::AwaitKeys(_) => Err(Box::new((
            crate::token::layer::token_refusal(&TokenError::KeySourceUnavailable),
            None,
        ))),
    }
}
