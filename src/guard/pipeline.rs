//! The checks a guarded request goes through, in order: route rule, peer identity, bearer
//! token, certificate binding, scopes, policies.

use std::sync::Arc;

use http::{Extensions, Request, Response, StatusCode};

use super::Admission;
use super::routes::{Access, Route, RouteMatch, Routes};
use crate::caller::Caller;
use crate::peer::{CertificateBinding, PeerError, PeerIdentity, PeerIdentityLayer};
use crate::policy::{AuthorizationLayer, Decision};
use crate::response::{Refusal, RefusalBody, Renderer, RequestHead, Stage};
use crate::token::layer::{Authenticated, AuthenticationLayer, bearer_refusal};
use crate::token::{BearerError, VerifiedToken};
#[cfg(feature = "remote-jwks")]
use crate::token::{TokenError, layer::token_refusal};

/// The configured checks; shared by every clone of a guarded service.
pub(crate) struct Pipeline {
    pub(crate) peer: Option<PeerIdentityLayer>,
    pub(crate) authn: Option<AuthenticationLayer>,
    pub(crate) authz: Option<AuthorizationLayer>,
    pub(crate) binding: CertificateBinding,
    pub(crate) routes: Routes,
    pub(crate) realm: Arc<str>,
    pub(crate) render: Renderer,
}

/// The outcome of the checks on one request.
pub(crate) enum Admit {
    /// Forward the request to the service.
    Pass,
    /// Answer with this refusal; the decision when the policies refused.
    Refuse(Box<(Refusal, Option<Decision>)>),
    /// Wait for a remote key source before verifying this token again.
    #[cfg(feature = "remote-jwks")]
    AwaitKeys(Box<Parked>),
}

/// What the checks resume with once a remote key source has been waited for.
#[cfg(feature = "remote-jwks")]
pub(crate) struct Parked {
    pub(crate) token: String,
    pub(crate) verifier: crate::token::Verifier,
    pub(crate) peer: Option<PeerIdentity>,
    pub(crate) route: RouteMatch,
}

impl Pipeline {
    fn with(
        peer: Option<PeerIdentityLayer>,
        authn: Option<AuthenticationLayer>,
        authz: Option<AuthorizationLayer>,
    ) -> Self {
        let realm = authn
            .as_ref()
            .map_or_else(|| Arc::from("meshguard"), |a| Arc::clone(a.realm_name()));
        Self {
            peer,
            authn,
            authz,
            binding: CertificateBinding::default(),
            routes: Routes::default(),
            realm,
            render: Renderer::default(),
        }
    }

    pub(crate) fn peer_only(layer: PeerIdentityLayer) -> Self {
        Self::with(Some(layer), None, None)
    }

    pub(crate) fn authentication_only(layer: AuthenticationLayer) -> Self {
        Self::with(None, Some(layer), None)
    }

    pub(crate) fn authorization_only(layer: AuthorizationLayer) -> Self {
        Self::with(None, None, Some(layer))
    }

    /// Runs the checks that need no waiting; the extensions are filled on [`Admit::Pass`].
    pub(crate) fn admit<B>(&self, request: &mut Request<B>) -> Admit {
        let route = self.routes.find(request.method(), request.uri().path());
        let access = route.access;
        if access == Access::Ambiguous {
            let refusal = Refusal::new(
                Stage::Request,
                StatusCode::BAD_REQUEST,
                "ambiguous_path",
                "the path reads as different routes encoded and decoded",
            );
            return Admit::Refuse(Box::new((refusal, None)));
        }
        if access == Access::Public {
            // No identity is taken on public routes, but an XFCC header from a peer that is
            // not a trusted proxy must not reach the handler there either.
            if let Some(layer) = &self.peer {
                layer.strip_untrusted(request);
            }
            self.insert_admission(request);
            return Admit::Pass;
        }
        let peer = match &self.peer {
            Some(layer) => match layer.identify(request) {
                Ok(peer) => peer,
                Err(refusal) => return Admit::Refuse(Box::new((refusal, None))),
            },
            None => None,
        };
        let token = match &self.authn {
            Some(layer) => match layer.authenticate(request) {
                Authenticated::Token(token) => Some(token),
                Authenticated::Absent if access == Access::OptionalToken || layer.is_optional() => {
                    None
                }
                Authenticated::Absent => {
                    return Admit::Refuse(Box::new((bearer_refusal(BearerError::Missing), None)));
                }
                Authenticated::Refused(refusal) => return Admit::Refuse(Box::new((refusal, None))),
                #[cfg(feature = "remote-jwks")]
                Authenticated::AwaitKeys(token) => {
                    return Admit::AwaitKeys(Box::new(Parked {
                        token,
                        verifier: layer.verifier().clone(),
                        peer,
                        route,
                    }));
                }
            },
            None => None,
        };
        self.finish(request, peer, token, route)
    }

    /// Continues after a remote key source was waited for.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn resume<B>(
        &self,
        request: &mut Request<B>,
        peer: Option<PeerIdentity>,
        verified: Result<VerifiedToken, TokenError>,
        route: RouteMatch,
    ) -> Admit {
        match verified {
            Ok(token) => self.finish(request, peer, Some(token), route),
            Err(error) => Admit::Refuse(Box::new((token_refusal(&error), None))),
        }
    }

    /// The checks after identification: binding, scopes, policies; then the extensions.
    fn finish<B>(
        &self,
        request: &mut Request<B>,
        own_peer: Option<PeerIdentity>,
        own_token: Option<VerifiedToken>,
        found: RouteMatch,
    ) -> Admit {
        let route = self.routes.get(found);
        let access = found.access;
        let extensions = request.extensions();
        // Identities from layers stacked in front of this one count as this one's.
        let peer = own_peer
            .as_ref()
            .or_else(|| extensions.get::<PeerIdentity>());
        let token = own_token
            .as_ref()
            .or_else(|| extensions.get::<VerifiedToken>());
        if let (Some(_), Some(token)) = (&self.authn, token)
            && let Err(error) = self.binding.check(token, peer)
        {
            let refusal = Refusal::new(
                Stage::Token,
                StatusCode::UNAUTHORIZED,
                error.reason(),
                "the token is not bound to the client certificate",
            )
            .with_error("invalid_token");
            return Admit::Refuse(Box::new((refusal, None)));
        }
        if let Some(route) = route
            && let Some(refusal) = missing_scopes(route, token)
        {
            return Admit::Refuse(Box::new((refusal, None)));
        }
        let caller = match extensions.get::<Caller>() {
            Some(caller) if own_peer.is_none() && own_token.is_none() => Some(caller.clone()),
            _ => Caller::from_parts(token.cloned(), peer.cloned()),
        };
        let mut decision = None;
        if let Some(authz) = &self.authz {
            match &caller {
                None if access == Access::OptionalToken => {}
                None => {
                    return Admit::Refuse(Box::new((self.no_caller(request.extensions()), None)));
                }
                Some(caller) => {
                    match authz.decide(
                        request,
                        caller,
                        route.map(Route::template),
                        route.and_then(|r| r.action.as_ref()),
                        crate::peer::client_ip(request.extensions()),
                    ) {
                        Ok(allowed) => decision = Some(allowed),
                        Err(refused) => return Admit::Refuse(refused),
                    }
                }
            }
        }
        let extensions = request.extensions_mut();
        if let Some(peer) = own_peer {
            extensions.insert(peer);
        }
        if let Some(token) = own_token {
            extensions.insert(token);
        }
        if let Some(caller) = caller {
            extensions.insert(caller);
        }
        if let Some(decision) = decision {
            extensions.insert(decision);
        }
        self.insert_admission(request);
        Admit::Pass
    }

    /// Why a request with no identity at all is refused: it brought no token when this
    /// guard, or one stacked in front of it, takes tokens.
    fn no_caller(&self, extensions: &Extensions) -> Refusal {
        if self.takes_tokens(extensions) {
            bearer_refusal(BearerError::Missing)
        } else {
            crate::peer::peer_refusal(&PeerError::NoCertificate)
        }
    }

    fn takes_tokens(&self, extensions: &Extensions) -> bool {
        self.authn.is_some() || extensions.get::<Admission>().is_some_and(|a| a.tokens)
    }

    /// The realm of challenges: without a token layer of its own, the one of the layer
    /// stacked in front, so that hand-stacked layers answer as one guard.
    fn realm_for<'a>(&'a self, extensions: &'a Extensions) -> &'a Arc<str> {
        match (&self.authn, extensions.get::<Admission>()) {
            (None, Some(outer)) => &outer.realm,
            _ => &self.realm,
        }
    }

    fn insert_admission<B>(&self, request: &mut Request<B>) {
        let extensions = request.extensions();
        let admission = Admission {
            realm: Arc::clone(self.realm_for(extensions)),
            tokens: self.takes_tokens(extensions),
            engine: self.authz.as_ref().map(|a| a.engine().clone()),
            render: self.render.clone(),
        };
        request.extensions_mut().insert(admission);
    }

    /// The response for `refusal` of `request`, with the custom renderer when one is set.
    pub(crate) fn render<B: RefusalBody, R>(
        &self,
        refusal: &Refusal,
        request: &Request<R>,
    ) -> Response<B> {
        let realm = self.realm_for(request.extensions());
        self.render.render(refusal, RequestHead::of(request), realm)
    }
}

/// The refusal when the route needs scopes the token lacks (RFC 6750 §3.1).
fn missing_scopes(route: &Route, token: Option<&VerifiedToken>) -> Option<Refusal> {
    let scope_text = route.scope_text.as_ref()?;
    let Some(token) = token else {
        return Some(bearer_refusal(BearerError::Missing));
    };
    if route.scopes.iter().all(|scope| token.has_scope(scope)) {
        return None;
    }
    Some(
        Refusal::new(
            Stage::Scope,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks a scope this route requires",
        )
        .with_error("insufficient_scope")
        .with_scope(scope_text.clone()),
    )
}
