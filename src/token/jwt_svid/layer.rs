//! [`JwtSvidLayer`]: the configuration that takes the calling workload's identity from a
//! JWT-SVID in each request, and the check the guard runs with it.

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName};
use http::{Request, StatusCode};

use super::super::bearer;
use super::super::error::BearerError;
use super::verifier::{JwtSvidVerifier, VerifiedJwtSvid};
use crate::peer::Authorizer;
use crate::response::{Refusal, Stage};

/// Identifies the calling workload by a JWT-SVID, for services whose mTLS ends at a proxy
/// in front of them (its tower `Layer` makes a [`Guard`](crate::guard::Guard) with this
/// check alone; [`GuardBuilder::workload_tokens`](crate::guard::GuardBuilder::workload_tokens)
/// adds it to a guard).
///
/// Where the token is read is explicit. [`new`](Self::new) reads `Authorization: Bearer`,
/// as go-spiffe's and SPIRE's examples send JWT-SVIDs. A service that also takes users'
/// access tokens reads the JWT-SVID from a header of its own instead
/// ([`header`](Self::header), e.g. `x-jwt-svid`, holding the bare token), and a guard
/// refuses to be built with both read from `Authorization`: one header cannot say which
/// kind of token it carries, so a JWT-SVID could be taken for a user's token or the
/// reverse.
///
/// The verified [`VerifiedJwtSvid`] goes into the request extensions, and the guard's
/// [`Caller`](crate::caller::Caller) has it as its workload (in preference to an mTLS
/// peer's certificate, which behind a proxy is the proxy's). Refusals: no JWT-SVID when
/// one is required → 401 `missing_workload_token`; an invalid one → 401 `invalid_token`;
/// two `Authorization` headers or a malformed value → 400 `invalid_request`; a workload
/// the [`Authorizer`] rejects → 403.
///
/// # Example
///
/// ```
/// use http::HeaderName;
/// use meshguard::peer::{Authorizer, TrustDomain};
/// use meshguard::token::jwt_svid::{BundleSet, JwtSvidLayer, JwtSvidVerifier};
///
/// let verifier = JwtSvidVerifier::builder(BundleSet::new()).audience("orders").build()?;
/// let layer = JwtSvidLayer::new(verifier)
///     .header(HeaderName::from_static("x-jwt-svid"))
///     .authorize(Authorizer::member_of(TrustDomain::new("example.org")?));
/// // axum: Router::new().route(...).layer(layer)
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct JwtSvidLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    verifier: JwtSvidVerifier,
    header: Option<HeaderName>,
    authorizer: Option<Authorizer>,
    optional: bool,
}

/// What the JWT-SVID step found.
pub(crate) enum WorkloadToken {
    /// A verified JWT-SVID of an authorized workload.
    Verified(VerifiedJwtSvid),
    /// No JWT-SVID in the request.
    Absent,
    /// A refusal to answer with.
    Refused(Refusal),
}

impl JwtSvidLayer {
    /// A layer verifying JWT-SVIDs sent as `Authorization: Bearer <JWT-SVID>`, required on
    /// every request it sees, any verified workload accepted.
    pub fn new(verifier: JwtSvidVerifier) -> Self {
        Self {
            config: Arc::new(Config {
                verifier,
                header: None,
                authorizer: None,
                optional: false,
            }),
        }
    }

    /// Reads the JWT-SVID from `header` (its value is the bare token) instead of
    /// `Authorization`. Defaults to `Authorization: Bearer`.
    #[must_use]
    pub fn header(self, header: HeaderName) -> Self {
        self.with(|config| {
            config.header = (header != AUTHORIZATION).then_some(header);
        })
    }

    /// Refuses workloads that `authorizer` does not accept (403 / PERMISSION_DENIED).
    #[must_use]
    pub fn authorize(self, authorizer: Authorizer) -> Self {
        self.with(|config| config.authorizer = Some(authorizer))
    }

    /// Lets requests without a JWT-SVID through; one that is present must still verify.
    /// Defaults to requiring one.
    #[must_use]
    pub fn optional(self) -> Self {
        self.with(|config| config.optional = true)
    }

    /// The verifier.
    pub fn verifier(&self) -> &JwtSvidVerifier {
        &self.config.verifier
    }

    /// Whether the JWT-SVID is read from `Authorization`.
    pub(crate) fn reads_authorization(&self) -> bool {
        self.config.header.is_none()
    }

    pub(crate) fn is_optional(&self) -> bool {
        self.config.optional
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
    }

    /// Takes, verifies and authorizes the request's JWT-SVID.
    pub(crate) fn authenticate<B>(&self, request: &Request<B>) -> WorkloadToken {
        let config = &*self.config;
        let token = match &config.header {
            None => bearer::from_headers(request.headers()),
            Some(name) => from_header(request, name),
        };
        let token = match token {
            Ok(token) => token,
            Err(BearerError::Missing) => return WorkloadToken::Absent,
            Err(error) => return WorkloadToken::Refused(error.refusal()),
        };
        let svid = match config.verifier.verify(token) {
            Ok(svid) => svid,
            Err(error) => return WorkloadToken::Refused(error.refusal()),
        };
        if let Some(authorizer) = &config.authorizer
            && let Err(error) = authorizer.authorize_id(svid.spiffe_id())
        {
            return WorkloadToken::Refused(error.refusal());
        }
        WorkloadToken::Verified(svid)
    }
}

/// The refusal of a request without the JWT-SVID a route requires.
pub(crate) fn missing() -> Refusal {
    Refusal::new(
        Stage::Token,
        StatusCode::UNAUTHORIZED,
        "missing_workload_token",
        "a workload token is required",
    )
}

/// The bare token of a header of the service's choosing: exactly one value, printable
/// ASCII without spaces.
fn from_header<'a, B>(request: &'a Request<B>, name: &HeaderName) -> Result<&'a str, BearerError> {
    let mut values = request.headers().get_all(name).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Multiple);
    }
    let token = value.to_str().map_err(|_| BearerError::Malformed)?;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}
