//! [`ResponseFuture`]: the response future of [`Guard`](super::Guard), a state machine that
//! forwards, answers a refusal, or waits for a remote key source or an introspection endpoint
//! first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracing::Span;

#[cfg(feature = "remote-jwks")]
use super::dpop::Verification;
#[cfg(feature = "remote-jwks")]
use super::observe;
#[cfg(feature = "remote-jwks")]
use super::pipeline::Parked;
use super::pipeline::Pipeline;
#[cfg(feature = "remote-jwks")]
use super::pipeline::{Admit, Refused};
use super::routes::RouteMatch;
#[cfg(feature = "remote-jwks")]
use crate::caller::Caller;
use crate::peer::PeerIdentity;
#[cfg(feature = "remote-jwks")]
use crate::policy::Decision;
#[cfg(feature = "remote-jwks")]
use crate::response::Refusal;
use crate::response::RefusalBody;
#[cfg(feature = "remote-jwks")]
use crate::token::{TokenError, VerifiedToken};

pin_project! {
    /// The response future of [`Guard`](super::Guard).
    pub struct ResponseFuture<S, Req, B>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, B>,
        span: Span,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<S, Req, B>
    where
        S: Service<Req>,
    {
        // Admitted: the inner service's future.
        Forward { #[pin] future: S::Future },
        // Refused: the answer, returned on the first poll.
        Refused { response: Response<B> },
        // The token waits for a remote key source or an introspection endpoint before the
        // remaining checks.
        AwaitingKeys { awaiting: Box<Awaiting<S, Req>> },
        // The answer was returned.
        Done,
    }
}

/// A request parked while a remote key source refreshes or its token is introspected.
#[cfg_attr(
    not(feature = "remote-jwks"),
    expect(
        dead_code,
        reason = "only remote key sources and introspection are waited for"
    )
)]
struct Awaiting<S, Req> {
    #[cfg(feature = "remote-jwks")]
    verification: Verification,
    request: Req,
    inner: S,
    peer: Option<PeerIdentity>,
    route: RouteMatch,
    pipeline: Arc<Pipeline>,
    started: Instant,
}

impl<S: Service<Req>, Req, B> ResponseFuture<S, Req, B> {
    pub(super) fn forward(future: S::Future, span: Span) -> Self {
        Self {
            state: State::Forward { future },
            span,
        }
    }

    pub(super) fn refused(response: Response<B>, span: Span) -> Self {
        Self {
            state: State::Refused { response },
            span,
        }
    }

    #[cfg(feature = "remote-jwks")]
    pub(super) fn awaiting_keys(
        parked: Parked,
        request: Req,
        inner: S,
        pipeline: Arc<Pipeline>,
        started: Instant,
        span: Span,
    ) -> Self {
        let Parked {
            verification,
            peer,
            route,
        } = parked;
        let awaiting = Awaiting {
            verification,
            request,
            inner,
            peer,
            route,
            pipeline,
            started,
        };
        Self {
            state: State::AwaitingKeys {
                awaiting: Box::new(awaiting),
            },
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
        let mut this = self.project();
        let _entered = this.span.enter();
        #[cfg(feature = "remote-jwks")]
        if let StateProj::AwaitingKeys { awaiting } = this.state.as_mut().project() {
            let Poll::Ready(verified) = awaiting.verification.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            this.state.as_mut().resume(verified, this.span);
        }
        match this.state.as_mut().project() {
            StateProj::Forward { future } => future.poll(cx),
            // Waiting for keys ends above in forwarding or refusing.
            StateProj::Refused { .. } | StateProj::AwaitingKeys { .. } | StateProj::Done => {
                Poll::Ready(Ok(this.state.as_mut().answer()))
            }
        }
    }
}

impl<S: Service<Req>, Req, B: RefusalBody> State<S, Req, B> {
    /// The refusal's answer, once; then [`Done`](State::Done).
    fn answer(self: Pin<&mut Self>) -> Response<B> {
        match self.project_replace(State::Done) {
            StateReplace::Refused { response } => response,
            // Polled again after completion: a contract violation by the caller, answered
            // with an error response rather than a panic.
            _ => {
                let mut response = Response::new(B::empty());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}

#[cfg(feature = "remote-jwks")]
impl<S, ReqBody, B> State<S, Request<ReqBody>, B>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    B: RefusalBody,
{
    /// From awaiting keys to forwarding or refusing, now that the token has been verified
    /// (or not).
    fn resume(mut self: Pin<&mut Self>, verified: Result<VerifiedToken, Refusal>, span: &Span) {
        if let StateReplace::AwaitingKeys { awaiting } = self.as_mut().project_replace(State::Done)
        {
            self.set(match (*awaiting).resume(verified, span) {
                Ok(future) => State::Forward { future },
                Err(response) => State::Refused { response },
            });
        }
    }
}

#[cfg(feature = "remote-jwks")]
impl<S, ReqBody> Awaiting<S, Request<ReqBody>>
where
    S: Service<Request<ReqBody>>,
{
    /// The remaining checks once the token has been verified (or not) after the wait: the
    /// inner service's future, or the refusal's answer.
    fn resume<B: RefusalBody>(
        self,
        verified: Result<VerifiedToken, Refusal>,
        span: &Span,
    ) -> Result<S::Future, Response<B>> {
        let Awaiting {
            mut request,
            mut inner,
            peer,
            route,
            pipeline,
            started,
            ..
        } = self;
        let refused = match pipeline.resume(&mut request, peer, verified, route) {
            Admit::Pass => {
                let extensions = request.extensions();
                observe::admitted(
                    span,
                    extensions.get::<Caller>(),
                    extensions.get::<Decision>(),
                    started,
                );
                return Ok(inner.call(request));
            }
            Admit::Refuse(refused) => refused,
            // The token verified after the wait: the remaining checks never wait again.
            Admit::AwaitKeys(_) => Refused::from(TokenError::KeySourceUnavailable.refusal()),
        };
        observe::refused(span, &refused, started);
        Err(pipeline.render(&refused.refusal, &request))
    }
}
