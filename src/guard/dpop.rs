//! The guard's token step when it accepts DPoP: `Authorization: DPoP` requests are verified
//! with their proof against the request, routes that require DPoP refuse bearer tokens, and
//! bearer refusals tell the client that DPoP is accepted too.

#[cfg(feature = "remote-jwks")]
use std::future::Future;
#[cfg(feature = "remote-jwks")]
use std::pin::Pin;

use http::Request;

use super::pipeline::Pipeline;
use super::routes::{Access, RouteMatch};
use crate::response::Refusal;
use crate::token::dpop::{DpopError, DpopVerifier};
use crate::token::{Authenticated, BearerError, VerifiedToken, bearer};
#[cfg(feature = "remote-jwks")]
use crate::token::{TokenError, dpop::DpopVerified};

/// A token verification that waits for a remote key source or an introspection endpoint,
/// ending in the token or the refusal to answer with.
#[cfg(feature = "remote-jwks")]
pub(crate) type Verification = Pin<Box<dyn Future<Output = Result<VerifiedToken, Refusal>> + Send>>;

/// What the token step found, bearer or DPoP.
pub(crate) enum Credential {
    /// A verified token.
    Token(VerifiedToken),
    /// No credential at all.
    Absent,
    /// A refusal to answer with.
    Refused(Refusal),
    /// A verification to wait for.
    #[cfg(feature = "remote-jwks")]
    Await(Verification),
}

impl From<Authenticated> for Credential {
    fn from(authenticated: Authenticated) -> Self {
        match authenticated {
            Authenticated::Token(token) => Credential::Token(token),
            Authenticated::Absent => Credential::Absent,
            Authenticated::Refused(refusal) => Credential::Refused(refusal),
            #[cfg(feature = "remote-jwks")]
            Authenticated::AwaitKeys { token, verifier } => {
                Credential::Await(Box::pin(async move {
                    verifier
                        .verify_async(&token)
                        .await
                        .map_err(|error| error.refusal())
                }))
            }
            #[cfg(feature = "introspection")]
            Authenticated::Introspect {
                token,
                introspector,
            } => Credential::Await(Box::pin(async move {
                introspector
                    .introspect(&token)
                    .await
                    .map_err(|error| error.refusal())
            })),
        }
    }
}

impl Pipeline {
    /// The token step: DPoP when the request uses it (and the guard accepts it), else bearer;
    /// on a route that requires DPoP (or in a guard without bearer tokens) a bearer token is
    /// refused.
    pub(super) fn credential<B>(&self, request: &Request<B>, found: RouteMatch) -> Credential {
        let Some(dpop) = &self.dpop else {
            return self.authenticate(request, found.access).into();
        };
        if crate::token::dpop::is_dpop(request.headers()) {
            return verify(dpop, request);
        }
        let required = self.authn.is_none() || self.routes.get(found).is_some_and(|r| r.dpop);
        if !required {
            return match self.authenticate(request, found.access).into() {
                Credential::Refused(refusal) => {
                    Credential::Refused(refusal.with_dpop_algs(dpop.algs().clone()))
                }
                other => other,
            };
        }
        let presented = match &self.authn {
            Some(layer) => !matches!(layer.authenticate(request), Authenticated::Absent),
            None => !matches!(
                bearer::from_headers(request.headers()),
                Err(BearerError::Missing)
            ),
        };
        let optional = found.access == Access::OptionalToken
            || self.authn.as_ref().is_some_and(|layer| layer.is_optional());
        if presented {
            Credential::Refused(dpop.refusal(&DpopError::BearerNotAccepted))
        } else if optional {
            Credential::Absent
        } else {
            Credential::Refused(dpop.refusal(&DpopError::MissingToken))
        }
    }
}

/// A DPoP request: its token and proof, verified against its method and URI.
fn verify<B>(dpop: &DpopVerifier, request: &Request<B>) -> Credential {
    match dpop.verify_request(request) {
        Ok(verified) => Credential::Token(verified.into_token()),
        #[cfg(feature = "remote-jwks")]
        Err(DpopError::Token(TokenError::UnknownKey | TokenError::KeySourceUnavailable))
            if dpop.verifier().has_remote_sources() =>
        {
            match dpop.owned_parts(request) {
                Ok([token, proof, method, htu]) => {
                    let dpop = dpop.clone();
                    Credential::Await(Box::pin(async move {
                        dpop.verify_async(&token, &proof, &method, &htu)
                            .await
                            .map(DpopVerified::into_token)
                            .map_err(|error| dpop.refusal(&error))
                    }))
                }
                Err(error) => Credential::Refused(dpop.refusal(&error)),
            }
        }
        Err(error) => Credential::Refused(dpop.refusal(&error)),
    }
}
