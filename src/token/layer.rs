//! [`AuthenticationLayer`]: the configuration that verifies the request's bearer token and
//! puts the [`VerifiedToken`] into the request extensions, or answers 401/400 itself; and
//! the check the guard runs with it.
//!
//! # Example
//!
//! ```
//! use meshguard::token::{AuthenticationLayer, Issuer, KeySet, Verifier};
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

use std::sync::Arc;

use http::Request;

use super::bearer::BearerExtractor;
use super::claims::VerifiedToken;
use super::error::BearerError;
#[cfg(feature = "remote-jwks")]
use super::error::TokenError;
#[cfg(feature = "introspection")]
use super::introspection::{Introspector, is_compact_jws};
use super::verifier::Verifier;
use crate::response::{DEFAULT_REALM, Refusal};

/// Verifies bearer tokens in front of a service (its tower `Layer` makes a
/// [`Guard`](crate::guard::Guard) with this check alone).
///
/// A request without a token is refused with 401 and a challenge without `error` (RFC 6750
/// §3.1), unless the layer is [`optional`](AuthenticationLayer::optional); a request with an
/// invalid token is always refused (401 `invalid_token`); a request with two tokens or a
/// malformed `Authorization` header gets 400 `invalid_request`. gRPC requests get
/// trailers-only responses with `grpc-status` 16 or 3 instead.
///
/// With a remote key source, a token signed by a key the cache does not hold yet (a cold
/// start, a rotation) waits for the refresh that [`Verifier::verify_async`] allows instead
/// of being refused. With an [`introspection`](AuthenticationLayer::introspection), a token
/// that is not a JWS waits for its issuer's introspection endpoint instead. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct AuthenticationLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    verifier: Verifier,
    extractor: BearerExtractor,
    realm: Arc<str>,
    optional: bool,
    #[cfg(feature = "introspection")]
    introspector: Option<Introspector>,
}

/// What the token step found.
pub(crate) enum Authenticated {
    /// A verified token.
    Token(VerifiedToken),
    /// No token at all.
    Absent,
    /// A refusal to answer with.
    Refused(Refusal),
    /// A token whose key may arrive with a refresh of a remote key source, and the
    /// verifier to wait with.
    #[cfg(feature = "remote-jwks")]
    AwaitKeys {
        /// The token as the request carried it.
        token: String,
        /// The verifier that knows the remote sources.
        verifier: Verifier,
    },
    /// An opaque token, to be introspected.
    #[cfg(feature = "introspection")]
    Introspect {
        /// The token as the request carried it.
        token: String,
        /// The introspector of its issuer.
        introspector: Introspector,
    },
}

impl AuthenticationLayer {
    /// A layer verifying `Authorization: Bearer` tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        AuthenticationLayer {
            config: Arc::new(Config {
                verifier,
                extractor: BearerExtractor::new(),
                realm: Arc::from(DEFAULT_REALM),
                optional: false,
                #[cfg(feature = "introspection")]
                introspector: None,
            }),
        }
    }

    /// The `realm` of `WWW-Authenticate` challenges. Defaults to `meshguard`.
    pub fn realm(self, realm: impl Into<String>) -> Self {
        let realm: String = realm.into();
        self.with(|config| config.realm = Arc::from(realm))
    }

    /// Where tokens are looked for (e.g. also a cookie). Defaults to the
    /// `Authorization` header only.
    pub fn extractor(self, extractor: BearerExtractor) -> Self {
        self.with(|config| config.extractor = extractor)
    }

    /// Lets requests without any token through, without a [`VerifiedToken`] extension;
    /// a token that is present must still verify. Defaults to requiring a token.
    pub fn optional(self) -> Self {
        self.with(|config| config.optional = true)
    }

    /// Accepts opaque tokens beside the verifier's JWTs: a token that is not shaped as a
    /// compact JWS (three base64url segments) is sent to `introspector`'s endpoint, and the
    /// request waits for the answer; a JWS is verified by the verifier alone and never sent.
    /// An inactive token is refused with 401 `invalid_token` (reason `inactive`), and so is
    /// every token while the endpoint cannot answer (reason `introspection_unavailable`).
    /// Without it, opaque tokens are refused as malformed.
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection(self, introspector: Introspector) -> Self {
        self.with(|config| config.introspector = Some(introspector))
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.config.verifier
    }

    /// The issuers whose tokens this layer accepts (`None` for any): the verifier's, then
    /// the introspector's unless the verifier names it already.
    pub(crate) fn issuer_names(&self) -> Vec<Option<&str>> {
        let verifier = &self.config.verifier;
        let names = verifier.issuer_names();
        #[cfg(feature = "introspection")]
        let names = {
            let introspected = self.config.introspector.as_ref().map(|i| Some(i.issuer()));
            names
                .chain(introspected.filter(|issuer| !verifier.issuer_names().any(|n| n == *issuer)))
        };
        names.collect()
    }

    pub(crate) fn realm_name(&self) -> &Arc<str> {
        &self.config.realm
    }

    pub(crate) fn is_optional(&self) -> bool {
        self.config.optional
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        AuthenticationLayer {
            config: Arc::new(config),
        }
    }

    /// Takes and verifies the request's token.
    pub(crate) fn authenticate<B>(&self, request: &Request<B>) -> Authenticated {
        let config = &*self.config;
        let token = match config.extractor.extract(request.headers(), request.uri()) {
            Ok(token) => token,
            Err(BearerError::Missing) => return Authenticated::Absent,
            Err(error) => return Authenticated::Refused(error.refusal()),
        };
        #[cfg(feature = "introspection")]
        if let Some(introspector) = &config.introspector
            && !is_compact_jws(token)
        {
            return Authenticated::Introspect {
                token: token.to_owned(),
                introspector: introspector.clone(),
            };
        }
        match config.verifier.verify(token) {
            Ok(verified) => Authenticated::Token(verified),
            #[cfg(feature = "remote-jwks")]
            Err(TokenError::UnknownKey | TokenError::KeySourceUnavailable)
                if config.verifier.has_remote_sources() =>
            {
                Authenticated::AwaitKeys {
                    token: token.to_owned(),
                    verifier: config.verifier.clone(),
                }
            }
            Err(error) => Authenticated::Refused(error.refusal()),
        }
    }
}
