//! [`AuthenticationLayer`]: verifies the request's bearer token and puts the
//! [`VerifiedToken`] into the request extensions, or answers 401/400
//! itself.
//!
//! # Example
//!
//! ```
//! use meshguard::token::{Issuer, KeySet, Verifier, layer::AuthenticationLayer};
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

use http::{Request, StatusCode};
use tower_layer::Layer;

use super::bearer::BearerExtractor;
use super::claims::VerifiedToken;
use super::error::{BearerError, TokenError};
use super::verifier::Verifier;
use crate::guard::{Guarded, Pipeline};
use crate::response::{Refusal, Stage};

/// Verifies bearer tokens in front of a service.
///
/// A request without a token is refused with 401 and a challenge without `error` (RFC 6750
/// §3.1), unless the layer is [`optional`](AuthenticationLayer::optional); a request with an
/// invalid token is always refused (401 `invalid_token`); a request with two tokens or a
/// malformed `Authorization` header gets 400 `invalid_request`. gRPC requests get
/// trailers-only responses with `grpc-status` 16 or 3 instead.
///
/// With a remote key source, a token signed by a key the cache does not hold yet (a cold
/// start, a rotation) waits for the refresh that [`Verifier::verify_async`] allows instead
/// of being refused. Cloning is cheap.
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
}

/// What the token step found.
pub(crate) enum Authenticated {
    /// A verified token.
    Token(VerifiedToken),
    /// No token at all.
    Absent,
    /// A refusal to answer with.
    Refused(Refusal),
    /// A token whose key may arrive with a refresh of a remote key source.
    #[cfg(feature = "remote-jwks")]
    AwaitKeys(String),
}

impl AuthenticationLayer {
    /// A layer verifying `Authorization: Bearer` tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        AuthenticationLayer {
            config: Arc::new(Config {
                verifier,
                extractor: BearerExtractor::new(),
                realm: Arc::from("meshguard"),
                optional: false,
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

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.config.verifier
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
            Err(error) => return Authenticated::Refused(bearer_refusal(error)),
        };
        match config.verifier.verify(token) {
            Ok(verified) => Authenticated::Token(verified),
            #[cfg(feature = "remote-jwks")]
            Err(TokenError::UnknownKey | TokenError::KeySourceUnavailable)
                if config.verifier.has_remote_sources() =>
            {
                Authenticated::AwaitKeys(token.to_owned())
            }
            Err(error) => Authenticated::Refused(token_refusal(&error)),
        }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded::new(inner, Arc::new(Pipeline::authentication_only(self.clone())))
    }
}

/// The refusal for a request whose bearer credential could not be taken.
pub fn bearer_refusal(error: BearerError) -> Refusal {
    match error {
        BearerError::Missing => Refusal::new(
            Stage::Token,
            StatusCode::UNAUTHORIZED,
            error.reason(),
            "a bearer token is required",
        ),
        BearerError::Malformed | BearerError::Multiple => {
            let refusal = Refusal::new(
                Stage::Token,
                StatusCode::BAD_REQUEST,
                error.reason(),
                match error {
                    BearerError::Multiple => "the request carries more than one token",
                    _ => "the bearer credential is malformed",
                },
            );
            match error.error_code() {
                Some(code) => refusal.with_error(code),
                None => refusal,
            }
        }
    }
}

/// The refusal for a token that did not verify: 401 `invalid_token` with a fixed description.
pub fn token_refusal(error: &TokenError) -> Refusal {
    Refusal::new(
        Stage::Token,
        StatusCode::UNAUTHORIZED,
        error.reason(),
        match error {
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::KeySourceUnavailable => "the token cannot be verified now",
            _ => "the token is invalid",
        },
    )
    .with_error(error.error_code())
}
