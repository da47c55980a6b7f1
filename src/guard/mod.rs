//! One builder composing meshguard's layers in the right order — peer identity, then the
//! bearer token, then the policies — with per-route rules.
//!
//! # Example
//!
//! ```
//! use meshguard::guard::{GuardLayer, RouteRule};
//! use meshguard::policy::{HttpMapping, PolicyEngine, PolicySource};
//! use meshguard::token::{Issuer, KeySet, Verifier};
//!
//! let keys = KeySet::hmac_secret("k1", b"demo-secret-that-is-at-least-32-bytes!")?;
//! let verifier = Verifier::builder()
//!     .issuer(Issuer::new("https://idp.example", keys).audience("orders"))
//!     .build()?;
//! let engine = PolicyEngine::builder(PolicySource::text(
//!     r#"permit(principal, action == Action::"GET /orders/{id}", resource);"#,
//! ))
//! .build()?;
//! let guard = GuardLayer::builder()
//!     .realm("orders")
//!     .tokens(verifier)
//!     .policies(engine, HttpMapping::conventions("orders"))
//!     .public("/health")
//!     .optional_token("GET /catalog")
//!     .route("DELETE /orders/{id}", RouteRule::new().scopes(["orders:write"]))
//!     .build()?;
//! // axum: Router::new().route(...).layer(guard)
//! // tonic: Server::builder().layer(guard)
//! # let _ = guard;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod dpop;
mod future;
mod layers;
mod observe;
mod pipeline;
mod routes;
mod service;

use std::sync::Arc;

use http::Response;
use tower_layer::Layer;

use crate::peer::{CertificateBinding, PeerIdentityLayer};
use crate::policy::{AuthorizationLayer, HttpMapping, IssuerNamespaceError, PolicyEngine};
use crate::response::{DEFAULT_REALM, Refusal, RenderFn, Renderer, RequestHead};
use crate::token::dpop::DpopVerifier;
#[cfg(feature = "introspection")]
use crate::token::introspection::Introspector;
use crate::token::jwt_svid::JwtSvidLayer;
use crate::token::{AuthenticationLayer, Verifier};

pub use check::PolicyCheck;
pub use future::ResponseFuture;
pub use observe::{DECISIONS_TOTAL, REJECTIONS_TOTAL};
pub use routes::RouteRule;
pub use service::Guard;

use pipeline::Pipeline;
use routes::{Route, Routes};

/// Configures a [`GuardLayer`]; start with [`GuardLayer::builder`].
#[must_use]
pub struct GuardBuilder {
    peer: Option<PeerIdentityLayer>,
    svid: Option<JwtSvidLayer>,
    authn: Option<AuthenticationLayer>,
    #[cfg(feature = "introspection")]
    introspector: Option<Introspector>,
    dpop: Option<DpopVerifier>,
    authz: Option<AuthorizationLayer>,
    binding: CertificateBinding,
    routes: Vec<(String, RouteRule)>,
    realm: Option<String>,
    render: Option<Arc<RenderFn>>,
}

impl std::fmt::Debug for GuardBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardBuilder")
            .field("peer", &self.peer)
            .field("svid", &self.svid)
            .field("authn", &self.authn)
            .field("dpop", &self.dpop)
            .field("authz", &self.authz)
            .field("binding", &self.binding)
            .field("routes", &self.routes)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl GuardBuilder {
    /// Identifies the calling workload first (see [`PeerIdentityLayer`]).
    pub fn peer(mut self, layer: PeerIdentityLayer) -> Self {
        self.peer = Some(layer);
        self
    }

    /// Identifies the calling workload by a JWT-SVID (see [`JwtSvidLayer`]), after the peer
    /// identity and before the user's token: the [`Caller`](crate::caller::Caller)'s
    /// workload is then the JWT-SVID's subject, and policies decide by it. On
    /// [optional-token](RouteRule::optional_token) routes the JWT-SVID is optional too.
    pub fn workload_tokens(mut self, layer: JwtSvidLayer) -> Self {
        self.svid = Some(layer);
        self
    }

    /// Verifies `Authorization: Bearer` tokens with `verifier`.
    pub fn tokens(self, verifier: Verifier) -> Self {
        self.authentication(AuthenticationLayer::new(verifier))
    }

    /// Verifies bearer tokens as `layer` is configured (cookie, optional tokens, realm).
    pub fn authentication(mut self, layer: AuthenticationLayer) -> Self {
        self.authn = Some(layer);
        self
    }

    /// Accepts opaque bearer tokens beside the JWTs of [`tokens`](Self::tokens) (or
    /// [`authentication`](Self::authentication)), which it needs: a token that is not
    /// shaped as a compact JWS is introspected by `introspector` while the request waits
    /// (see [`AuthenticationLayer::introspection`]); a JWS is never sent to the endpoint.
    /// The introspected token then goes through the same checks as a JWT (certificate
    /// binding, scopes, caller, policies) and is left in the extensions as a
    /// [`VerifiedToken`](crate::token::VerifiedToken).
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection(mut self, introspector: Introspector) -> Self {
        self.introspector = Some(introspector);
        self
    }

    /// Verifies `Authorization: DPoP` tokens with their `DPoP` proofs (RFC 9449) with
    /// `verifier`, against each request's method and its URI under the verifier's
    /// [public origin](crate::token::dpop::DpopVerifierBuilder::public_origin). Bearer
    /// tokens stay accepted where [`tokens`](Self::tokens) is configured, except on routes
    /// that [require DPoP](RouteRule::require_dpop); without `tokens`, every route requires
    /// DPoP. Bearer refusals then also offer a `WWW-Authenticate: DPoP algs="..."` challenge.
    pub fn dpop(mut self, verifier: DpopVerifier) -> Self {
        self.dpop = Some(verifier);
        self
    }

    /// Decides every admitted request with `engine`, mapping requests with `mapping`.
    pub fn policies(self, engine: PolicyEngine, mapping: HttpMapping) -> Self {
        self.authorization(AuthorizationLayer::new(engine, mapping))
    }

    /// Decides every admitted request as `layer` is configured.
    pub fn authorization(mut self, layer: AuthorizationLayer) -> Self {
        self.authz = Some(layer);
        self
    }

    /// Whether tokens must be bound to the client certificate (RFC 8705). Defaults to
    /// [`CertificateBinding::IfPresent`]: a token with `cnf["x5t#S256"]` must match the
    /// peer's certificate.
    pub fn certificate_binding(mut self, binding: CertificateBinding) -> Self {
        self.binding = binding;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges. Defaults to the authentication
    /// layer's, `meshguard`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Applies `rule` to requests matching `pattern`: an optional method and an axum-style
    /// path template (`GET /orders/{id}`, `/docs/{*rest}`).
    ///
    /// Rules are matched as axum routes requests: on the undecoded path, the most specific
    /// template winning (literal segments before parameters before wildcards), whatever the
    /// order the rules were given in. Among the rules of that template, one naming the
    /// request's method wins, then a `GET` rule for a `HEAD` request (routers answer HEAD
    /// with the GET handler), then a rule without a method. Requests no rule matches get
    /// every check, and so do paths that could be spelled another way (percent-encoded
    /// letters, digits, `-._~`, `/`, `\` or `%`; empty, `.` or `..` segments; a trailing
    /// slash).
    ///
    /// Methods are the standard ones in upper case; literal segments hold letters, digits,
    /// `-`, `.`, `_` and `~`; parameters are whole segments. [`build`](Self::build) refuses
    /// anything else, two rules for the same method and template, and templates a router
    /// could not tell apart (`/a/{x}` beside `/a/{y}`).
    pub fn route(mut self, pattern: impl Into<String>, rule: RouteRule) -> Self {
        self.routes.push((pattern.into(), rule));
        self
    }

    /// No check for requests matching `pattern` (see [`route`](Self::route)).
    pub fn public(self, pattern: impl Into<String>) -> Self {
        self.route(pattern, RouteRule::public())
    }

    /// An optional token for requests matching `pattern` (see
    /// [`RouteRule::optional_token`]).
    pub fn optional_token(self, pattern: impl Into<String>) -> Self {
        self.route(pattern, RouteRule::new().optional_token())
    }

    /// Renders refusals with `render` instead of [`Refusal::render`]; given the refusal,
    /// the request's version and headers and the realm. An empty body is sent as an empty body.
    /// The [`PolicyCheck`]s the guard prepares render their [`Denied`](crate::response::Denied)
    /// with it too, so that a handler's denial answers as the guard's own refusals do.
    pub fn render<F>(mut self, render: F) -> Self
    where
        F: Fn(&Refusal, RequestHead<'_>, &str) -> Response<String> + Send + Sync + 'static,
    {
        self.render = Some(Arc::new(render));
        self
    }

    /// The layer.
    ///
    /// # Errors
    /// [`GuardBuilderError::NoChecks`] without any layer, [`GuardBuilderError::NoIdentity`]
    /// for policies without a token or peer layer to identify the caller,
    /// [`GuardBuilderError::SharedAuthorization`] when user tokens and JWT-SVIDs would
    /// both be read from `Authorization`,
    /// [`GuardBuilderError::Route`] for a pattern or rule that does not parse,
    /// [`GuardBuilderError::Principals`] when the token
    /// issuers' principals could be confused under the policies' mapping (see
    /// [`PolicyEngine::check_issuers`]; an introspector's issuer counts),
    /// `IntrospectionWithoutTokens` for an introspector without tokens,
    /// [`GuardBuilderError::DpopOrigin`] for a DPoP verifier without an origin, or a route
    /// that requires DPoP without one.
    #[cfg_attr(
        not(feature = "introspection"),
        expect(
            unused_mut,
            reason = "only an introspector is moved into the token layer"
        )
    )]
    pub fn build(mut self) -> Result<GuardLayer, GuardBuilderError> {
        #[cfg(feature = "introspection")]
        if let Some(introspector) = self.introspector.take() {
            let authn = self
                .authn
                .take()
                .ok_or(GuardBuilderError::IntrospectionWithoutTokens)?;
            self.authn = Some(authn.introspection(introspector));
        }
        let tokens = self.authn.is_some() || self.dpop.is_some();
        let identifies = self.peer.is_some() || self.svid.is_some() || tokens;
        if !identifies && self.authz.is_none() {
            return Err(GuardBuilderError::NoChecks);
        }
        if self.authz.is_some() && !identifies {
            return Err(GuardBuilderError::NoIdentity);
        }
        if tokens
            && self
                .svid
                .as_ref()
                .is_some_and(JwtSvidLayer::reads_authorization)
        {
            return Err(GuardBuilderError::SharedAuthorization);
        }
        if let Some(authz) = &self.authz {
            if let Some(authn) = &self.authn {
                authz.engine().check_layer_issuers(authn)?;
            }
            if let Some(dpop) = &self.dpop {
                authz.engine().check_issuers(dpop.verifier())?;
            }
        }
        let dpop_routes = self.routes.iter().any(|(_, rule)| rule.dpop);
        if !self
            .dpop
            .as_ref()
            .map_or(!dpop_routes, DpopVerifier::has_origin)
        {
            return Err(GuardBuilderError::DpopOrigin);
        }
        let mut routes = Routes::default();
        for (pattern, rule) in self.routes {
            Route::new(&pattern, rule)
                .and_then(|route| routes.push(route))
                .map_err(|message| GuardBuilderError::Route { pattern, message })?;
        }
        let realm: Arc<str> = match (self.realm, &self.authn) {
            (Some(realm), _) => Arc::from(realm),
            (None, Some(authn)) => Arc::clone(authn.realm_name()),
            (None, None) => Arc::from(DEFAULT_REALM),
        };
        Ok(GuardLayer {
            pipeline: Arc::new(Pipeline {
                peer: self.peer,
                svid: self.svid,
                authn: self.authn,
                dpop: self.dpop,
                authz: self.authz,
                binding: self.binding,
                routes,
                realm,
                render: self.render.map(Renderer::custom).unwrap_or_default(),
            }),
        })
    }
}

/// Why a [`GuardBuilder`] could not build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardBuilderError {
    /// No peer, token or policy layer was configured.
    #[error("the guard has no checks: add peer identity, tokens or policies")]
    NoChecks,
    /// Policies were configured with nothing to identify the caller.
    #[error("policies need a caller: add tokens or peer identity")]
    NoIdentity,
    /// User tokens and JWT-SVIDs would both be read from `Authorization`, where nothing
    /// tells one kind from the other; read JWT-SVIDs from a header of their own
    /// ([`JwtSvidLayer::header`]).
    #[error("user tokens and JWT-SVIDs cannot share the `Authorization` header")]
    SharedAuthorization,
    /// A route pattern or rule is invalid.
    #[error("route `{pattern}`: {message}")]
    Route {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// Users of two token issuers could be the same principal.
    #[error(transparent)]
    Principals(#[from] IssuerNamespaceError),
    /// An introspector was given without [`tokens`](GuardBuilder::tokens) to go beside.
    #[cfg(feature = "introspection")]
    #[error("introspection needs bearer tokens: add `tokens` or `authentication`")]
    IntrospectionWithoutTokens,
    /// DPoP is required or accepted, but the guard has no DPoP verifier, or its verifier
    /// has no origin to check proofs' `htu` against (`public_origin` or `origin_from_host`).
    #[error("DPoP needs a verifier with a public origin: see `DpopVerifierBuilder::public_origin`")]
    DpopOrigin,
}

/// The composed layer: peer identity, bearer token, certificate binding, scopes and
/// policies, in that order, with per-route rules. Cloning is cheap.
#[derive(Clone)]
pub struct GuardLayer {
    pipeline: Arc<Pipeline>,
}

impl GuardLayer {
    /// Starts a guard with no checks; add at least one.
    pub fn builder() -> GuardBuilder {
        GuardBuilder {
            peer: None,
            svid: None,
            authn: None,
            #[cfg(feature = "introspection")]
            introspector: None,
            dpop: None,
            authz: None,
            binding: CertificateBinding::default(),
            routes: Vec::new(),
            realm: None,
            render: None,
        }
    }
}

impl std::fmt::Debug for GuardLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardLayer")
            .field("realm", &self.pipeline.realm)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard::new(inner, Arc::clone(&self.pipeline))
    }
}

/// What a guard leaves in the extensions of every request it admits, for extractors and
/// handler-level checks: the realm of its challenges and its policy engine.
#[derive(Debug, Clone)]
pub struct Admission {
    pub(crate) realm: Arc<str>,
    /// Whether bearer tokens were looked for, here or by a layer stacked in front.
    tokens: bool,
    engine: Option<PolicyEngine>,
    /// How the guard answers, for the denials of handler-level checks.
    pub(crate) render: Renderer,
}

impl Admission {
    /// The realm of `WWW-Authenticate` challenges.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The policy engine of the guard, when it has one.
    #[must_use]
    pub fn engine(&self) -> Option<&PolicyEngine> {
        self.engine.as_ref()
    }
}
