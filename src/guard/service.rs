//! [`Guard`]: the service every meshguard layer wraps around the application.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::observe;
use super::pipeline::{Admit, Pipeline};
use crate::caller::Caller;
use crate::policy::Decision;
use crate::response::RefusalBody;

/// The service a meshguard layer ([`GuardLayer`](super::GuardLayer),
/// [`PeerIdentityLayer`](crate::peer::PeerIdentityLayer),
/// [`AuthenticationLayer`](crate::token::AuthenticationLayer),
/// [`AuthorizationLayer`](crate::policy::AuthorizationLayer)) wraps around `S`.
///
/// Admitted requests reach `S` with the identities and the decision in their extensions;
/// refused ones are answered here. Cloning is cheap: the configuration is shared.
pub struct Guard<S> {
    inner: S,
    pipeline: Arc<Pipeline>,
}

impl<S> Guard<S> {
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

impl<S: Clone> Clone for Guard<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            pipeline: Arc::clone(&self.pipeline),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S>
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
        match self.pipeline.admit(&mut request) {
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
                observe::refused(&span, &refused, started);
                ResponseFuture::refused(self.pipeline.render(&refused.refusal, &request), span)
            }
            #[cfg(feature = "remote-jwks")]
            Admit::AwaitKeys(parked) => {
                // The service that was readied goes with the request; this one keeps a clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::awaiting_keys(
                    *parked,
                    request,
                    inner,
                    Arc::clone(&self.pipeline),
                    started,
                    span,
                )
            }
        }
    }
}
