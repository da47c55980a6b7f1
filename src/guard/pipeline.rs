//! The checks a guarded request goes through, in order: route rule, peer identity, workload
//! token (JWT-SVID), bearer token, certificate binding, scopes, caller, policies; then what
//! is left in the extensions.

use std::sync::Arc;

use http::{Extensions, Request, Response, StatusCode};

use super::Admission;
use super::dpop::Credential;
#[cfg(feature = "remote-jwks")]
use super::dpop::Verification;
use super::routes::{Access, Route, RouteMatch, Routes};
use crate::caller::{Caller, WorkloadIdentity};
use crate::peer::{CertificateBinding, PeerError, PeerIdentity, PeerIdentityLayer};
use crate::policy::{AuthorizationLayer, Decision, DenyCause};
use crate::response::{
    DEFAULT_REALM, ErrorCode, Refusal, RefusalBody, Renderer, RequestHead, Stage,
};
use crate::token::dpop::DpopVerifier;
use crate::token::jwt_svid::{self, JwtSvidLayer, VerifiedJwtSvid, WorkloadToken};
use crate::token::{Authenticated, AuthenticationLayer, BearerError, VerifiedToken};

/// The configured checks; shared by every clone of a guarded service.
pub(crate) struct Pipeline {
    pub(crate) peer: Option<PeerIdentityLayer>,
    pub(crate) svid: Option<JwtSvidLayer>,
    pub(crate) authn: Option<AuthenticationLayer>,
    pub(crate) dpop: Option<DpopVerifier>,
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
    /// Answer with this refusal.
    Refuse(Refused),
    /// Wait for a remote key source or an introspection endpoint to settle the token.
    #[cfg(feature = "remote-jwks")]
    AwaitKeys(Box<Parked>),
}

/// A refused request: the refusal to answer with, and the denying decision when the
/// policies refused (for the audit span and the decision counter).
pub(crate) struct Refused {
    pub(crate) refusal: Refusal,
    pub(crate) decision: Option<Box<Decision>>,
}

/// What the checks resume with once a remote key source or an introspection endpoint has
/// been waited for.
#[cfg(feature = "remote-jwks")]
pub(crate) struct Parked {
    pub(crate) verification: Verification,
    pub(crate) peer: Option<PeerIdentity>,
    pub(crate) route: RouteMatch,
}

/// What this guard's own layers identified (layers stacked in front leave theirs in the
/// extensions).
struct Identified {
    peer: Option<PeerIdentity>,
    token: Option<VerifiedToken>,
}

/// What the checks after identification concluded for an admitted request.
struct Checked {
    caller: Option<Caller>,
    decision: Option<Decision>,
}

impl Pipeline {
    fn with(
        peer: Option<PeerIdentityLayer>,
        svid: Option<JwtSvidLayer>,
        authn: Option<AuthenticationLayer>,
        authz: Option<AuthorizationLayer>,
    ) -> Self {
        let realm = authn
            .as_ref()
            .map_or_else(|| Arc::from(DEFAULT_REALM), |a| Arc::clone(a.realm_name()));
        Self {
            peer,
            svid,
            authn,
            dpop: None,
            authz,
            binding: CertificateBinding::default(),
            routes: Routes::default(),
            realm,
            render: Renderer::default(),
        }
    }

    pub(crate) fn peer_only(layer: PeerIdentityLayer) -> Self {
        Self::with(Some(layer), None, None, None)
    }

    pub(crate) fn workload_tokens_only(layer: JwtSvidLayer) -> Self {
        Self::with(None, Some(layer), None, None)
    }

    pub(crate) fn authentication_only(layer: AuthenticationLayer) -> Self {
        Self::with(None, None, Some(layer), None)
    }

    pub(crate) fn authorization_only(layer: AuthorizationLayer) -> Self {
        Self::with(None, None, None, Some(layer))
    }

    /// Runs the checks that need no waiting; the extensions are filled on [`Admit::Pass`].
    pub(crate) fn admit<B>(&self, request: &mut Request<B>) -> Admit {
        let found = self.routes.find(request.method(), request.uri().path());
        match found.access {
            Access::Ambiguous => return Admit::Refuse(ambiguous_path().into()),
            Access::Public => {
                self.pass_public(request);
                return Admit::Pass;
            }
            Access::Required | Access::OptionalToken => {}
        }
        let peer = match self.identify(request) {
            Ok(peer) => peer,
            Err(refusal) => return Admit::Refuse(refusal.into()),
        };
        // Kept in the extensions at once, so that a wait for the user token's keys below
        // resumes with it.
        match self.identify_workload_token(request, found.access) {
            Ok(Some(svid)) => {
                request.extensions_mut().insert(svid);
            }
            Ok(None) => {}
            Err(refusal) => return Admit::Refuse(refusal.into()),
        }
        let token = match self.credential(request, found) {
            Credential::Token(token) => Some(token),
            Credential::Absent => None,
            Credential::Refused(refusal) => return Admit::Refuse(refusal.into()),
            #[cfg(feature = "remote-jwks")]
            Credential::Await(verification) => {
                return Admit::AwaitKeys(Box::new(Parked {
                    verification,
                    peer,
                    route: found,
                }));
            }
        };
        self.finish(request, Identified { peer, token }, found)
    }

    /// Continues after a remote key source or an introspection endpoint was waited for.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn resume<B>(
        &self,
        request: &mut Request<B>,
        peer: Option<PeerIdentity>,
        verified: Result<VerifiedToken, Refusal>,
        found: RouteMatch,
    ) -> Admit {
        match verified {
            Ok(token) => self.finish(
                request,
                Identified {
                    peer,
                    token: Some(token),
                },
                found,
            ),
            Err(refusal) => Admit::Refuse(refusal.into()),
        }
    }

    /// A public route: no identity is taken, but an XFCC header from a peer that is not a
    /// trusted proxy must not reach the handler there either.
    fn pass_public<B>(&self, request: &mut Request<B>) {
        if let Some(layer) = &self.peer {
            layer.strip_untrusted(request);
        }
        self.insert_admission(request);
    }

    /// The peer-identity step: the calling workload, when this guard identifies peers.
    fn identify<B>(&self, request: &mut Request<B>) -> Result<Option<PeerIdentity>, Refusal> {
        match &self.peer {
            Some(layer) => layer.identify(request),
            None => Ok(None),
        }
    }

    /// The JWT-SVID step, when this guard takes workload tokens; a missing one is refused
    /// unless the route or the layer makes it optional.
    fn identify_workload_token<B>(
        &self,
        request: &Request<B>,
        access: Access,
    ) -> Result<Option<VerifiedJwtSvid>, Refusal> {
        let Some(layer) = &self.svid else {
            return Ok(None);
        };
        match layer.authenticate(request) {
            WorkloadToken::Verified(svid) => Ok(Some(svid)),
            WorkloadToken::Absent if access == Access::OptionalToken || layer.is_optional() => {
                Ok(None)
            }
            WorkloadToken::Absent => Err(jwt_svid::missing()),
            WorkloadToken::Refused(refusal) => Err(refusal),
        }
    }

    /// The bearer-token step; a missing token is refused unless the route or the layer
    /// makes it optional.
    pub(super) fn authenticate<B>(&self, request: &Request<B>, access: Access) -> Authenticated {
        let Some(layer) = &self.authn else {
            return Authenticated::Absent;
        };
        match layer.authenticate(request) {
            Authenticated::Absent if access != Access::OptionalToken && !layer.is_optional() => {
                Authenticated::Refused(BearerError::Missing.refusal())
            }
            authenticated => authenticated,
        }
    }

    /// The checks after identification, then the extensions of an admitted request.
    fn finish<B>(&self, request: &mut Request<B>, own: Identified, found: RouteMatch) -> Admit {
        match self.check(request, &own, found) {
            Ok(checked) => {
                self.record(request, own, checked);
                Admit::Pass
            }
            Err(refused) => Admit::Refuse(refused),
        }
    }

    /// Certificate binding, scopes, caller and policies, in that order.
    fn check<B>(
        &self,
        request: &Request<B>,
        own: &Identified,
        found: RouteMatch,
    ) -> Result<Checked, Refused> {
        let route = self.routes.get(found);
        let extensions = request.extensions();
        // Identities from layers stacked in front of this one count as this one's.
        let peer = own
            .peer
            .as_ref()
            .or_else(|| extensions.get::<PeerIdentity>());
        let token = own
            .token
            .as_ref()
            .or_else(|| extensions.get::<VerifiedToken>());
        // A JWT-SVID names the calling workload even where a certificate is seen too: behind
        // a proxy that ends mTLS, the certificate is the proxy's.
        let svid = extensions.get::<VerifiedJwtSvid>();
        self.check_binding(token, peer)?;
        check_scopes(route, token)?;
        let own_svid = self.svid.is_some() && svid.is_some();
        let caller = match extensions.get::<Caller>() {
            Some(caller) if own.peer.is_none() && own.token.is_none() && !own_svid => {
                Some(caller.clone())
            }
            _ => {
                let workload = match svid {
                    Some(svid) => Some(Arc::new(svid.clone()) as Arc<dyn WorkloadIdentity>),
                    None => peer.map(|peer| Arc::new(peer.clone()) as Arc<dyn WorkloadIdentity>),
                };
                Caller::from_parts(token.cloned(), workload)
            }
        };
        let decision = self.decide(request, caller.as_ref(), route, found.access)?;
        Ok(Checked { caller, decision })
    }

    /// RFC 8705: a token bound to a certificate must come with that certificate.
    fn check_binding(
        &self,
        token: Option<&VerifiedToken>,
        peer: Option<&PeerIdentity>,
    ) -> Result<(), Refusal> {
        match (self.authn.is_some() || self.dpop.is_some(), token) {
            (true, Some(token)) => self
                .binding
                .check(token, peer)
                .map_err(|error| error.refusal()),
            _ => Ok(()),
        }
    }

    /// The policies' decision for `caller`, when this guard has policies; only an allowing
    /// decision comes back.
    fn decide<B>(
        &self,
        request: &Request<B>,
        caller: Option<&Caller>,
        route: Option<&Route>,
        access: Access,
    ) -> Result<Option<Decision>, Refused> {
        let Some(authz) = &self.authz else {
            return Ok(None);
        };
        let caller = match caller {
            Some(caller) => caller,
            None if access == Access::OptionalToken => return Ok(None),
            None => return Err(self.no_caller(request.extensions()).into()),
        };
        let decision = authz
            .decide(
                request,
                caller,
                route.map(Route::template),
                route.and_then(|r| r.action.as_ref()),
                crate::peer::client_ip(request.extensions()),
            )
            .map_err(|error| Refused::from(error.refusal()))?;
        if decision.is_allow() {
            Ok(Some(decision))
        } else {
            Err(Refused::denied(decision))
        }
    }

    /// Leaves what was found in the extensions of an admitted request.
    fn record<B>(&self, request: &mut Request<B>, own: Identified, checked: Checked) {
        let extensions = request.extensions_mut();
        if let Some(peer) = own.peer {
            extensions.insert(peer);
        }
        if let Some(token) = own.token {
            extensions.insert(token);
        }
        if let Some(caller) = checked.caller {
            extensions.insert(caller);
        }
        if let Some(decision) = checked.decision {
            extensions.insert(decision);
        }
        self.insert_admission(request);
    }

    /// Why a request with no identity at all is refused: it brought no token when this
    /// guard, or one stacked in front of it, takes tokens.
    fn no_caller(&self, extensions: &Extensions) -> Refusal {
        if self.takes_tokens(extensions) {
            BearerError::Missing.refusal()
        } else {
            PeerError::NoCertificate.refusal()
        }
    }

    fn takes_tokens(&self, extensions: &Extensions) -> bool {
        self.authn.is_some()
            || self.dpop.is_some()
            || extensions.get::<Admission>().is_some_and(|a| a.tokens)
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
        let head = RequestHead::of(request);
        self.render.render(refusal, head, realm)
    }
}

impl Refused {
    /// The refusal of a request the policies denied with `decision`.
    fn denied(decision: Decision) -> Self {
        let cause = decision.details().cause().unwrap_or(DenyCause::Error);
        Self {
            refusal: cause.refusal(),
            decision: Some(Box::new(decision)),
        }
    }
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        Self {
            refusal,
            decision: None,
        }
    }
}

/// The refusal of a path that reads as different routes encoded and decoded.
fn ambiguous_path() -> Refusal {
    Refusal::new(
        Stage::Request,
        StatusCode::BAD_REQUEST,
        "ambiguous_path",
        "the path reads as different routes encoded and decoded",
    )
}

/// The route's scopes must all be in the token (RFC 6750 §3.1); a route with scopes
/// needs a token.
fn check_scopes(route: Option<&Route>, token: Option<&VerifiedToken>) -> Result<(), Refusal> {
    let Some((route, scope_text)) = route.and_then(|r| Some((r, r.scope_text.as_ref()?))) else {
        return Ok(());
    };
    let Some(token) = token else {
        return Err(BearerError::Missing.refusal());
    };
    if route.scopes.iter().all(|scope| token.has_scope(scope)) {
        return Ok(());
    }
    Err(Refusal::new(
        Stage::Scope,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "the token lacks a scope this route requires",
    )
    .with_error(ErrorCode::InsufficientScope)
    .with_scope(scope_text.clone()))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::caller::WorkloadIdentity;
    use crate::peer::MtlsConnectInfo;

    fn identity() -> PeerIdentity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://example.org/ns/shop/sa/cart".try_into().unwrap(),
        )];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        PeerIdentity::from_der_chain(&[der]).unwrap()
    }

    #[test]
    fn the_connection_identity_is_shared_with_the_request_not_copied() {
        let identity = identity();
        let address: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(MtlsConnectInfo::new(address, Some(identity.clone())));
        let pipeline = Pipeline::peer_only(PeerIdentityLayer::new());
        assert!(matches!(pipeline.admit(&mut request), Admit::Pass));

        let extensions = request.extensions();
        let seen = extensions.get::<PeerIdentity>().unwrap();
        let caller = extensions.get::<Caller>().unwrap();
        // The same allocation as the connection's identity: a shared reference, no copy.
        let original = identity.x5t_s256().as_ptr();
        assert!(std::ptr::eq(seen.x5t_s256().as_ptr(), original));
        let spiffe_id = caller.workload().and_then(WorkloadIdentity::spiffe_id);
        let spiffe_id_of = |peer: &PeerIdentity| peer.spiffe_id().map(|id| id.as_str().as_ptr());
        assert_eq!(spiffe_id.map(str::as_ptr), spiffe_id_of(&identity));
    }
}
