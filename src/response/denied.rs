//! A handler-level denial by the policies, and how it is answered.

use std::sync::Arc;

use http::Response;

use super::{Refusal, RefusalBody, Renderer, RequestHead};
use crate::policy::{Decision, DenyCause};

/// A handler-level denial: the decision, and the 403 to answer with (see
/// [`PolicyCheck::authorize`](crate::guard::PolicyCheck::authorize)).
#[derive(Debug, Clone)]
pub struct Denied {
    refusal: Refusal,
    decision: Box<Decision>,
    realm: Arc<str>,
    render: Renderer,
}

impl Denied {
    /// The denial by `decision`, answered by `render` with challenges in `realm`.
    pub(crate) fn new(decision: Decision, realm: Arc<str>, render: Renderer) -> Self {
        let cause = decision.details().cause().unwrap_or(DenyCause::Error);
        Self {
            refusal: cause.refusal(),
            decision: Box::new(decision),
            realm,
            render,
        }
    }

    /// The denying decision.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The refusal.
    #[must_use]
    pub fn refusal(&self) -> &Refusal {
        &self.refusal
    }

    /// The response to `request`: 403 problem details, or PERMISSION_DENIED for a gRPC
    /// request; rendered as the guard that prepared the
    /// [`PolicyCheck`](crate::guard::PolicyCheck) renders its own refusals (see
    /// [`GuardBuilder::render`](crate::guard::GuardBuilder::render)).
    pub fn render<B: RefusalBody>(&self, request: RequestHead<'_>) -> Response<B> {
        self.render.render(&self.refusal, request, &self.realm)
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "denied by policy ({})", self.refusal.reason())
    }
}

impl std::error::Error for Denied {}
