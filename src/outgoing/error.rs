//! Why an outgoing request got no credentials, and why a configuration was refused.

/// Why an outgoing request could not be given its credentials. The request is then not
/// sent: meshguard never lets a call go out without the credentials it was configured for.
///
/// Each variant has a stable snake_case [`reason`](OutgoingError::reason). `Display` never
/// contains a token, a client secret or the token endpoint's body; only the endpoint's RFC
/// 6749 error code, which is checked to be one short word of the allowed characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutgoingError {
    /// The token endpoint could not be asked: unreachable, too slow, a redirect (never
    /// followed: it would resend the secret), or a status without an RFC 6749 error body.
    #[error("token endpoint is unavailable: {0}")]
    Unavailable(Box<str>),
    /// The token endpoint refused the request with an RFC 6749 §5.2 error code (for
    /// example `invalid_client`, `invalid_scope`, `invalid_target`).
    #[error("token endpoint refused the request: `{code}` (status {status})")]
    Refused {
        /// The `error` member of the endpoint's answer.
        code: Box<str>,
        /// The HTTP status it came with.
        status: u16,
    },
    /// The endpoint answered 200 with something that is not a usable token response.
    #[error("token response is unusable: {0}")]
    InvalidResponse(&'static str),
    /// The endpoint issued a DPoP-bound token (`token_type` `DPoP`): it is only usable
    /// with a proof of possession per request, which this layer does not make.
    #[error("token endpoint issued a DPoP-bound token, which cannot be sent as a bearer token")]
    DpopIssued,
    /// A recent request to the token endpoint failed and the next one is not due yet
    /// (exponential back-off, or the endpoint's `Retry-After`).
    #[error("token endpoint failed recently and is not asked again before {retry_at}: {last}")]
    BackingOff {
        /// Unix seconds at which the endpoint is asked again.
        retry_at: i64,
        /// The last failure's reason.
        last: &'static str,
    },
    /// No token came within the configured wait.
    #[error("no token from the token endpoint within the wait")]
    Timeout,
    /// Credentials are fetched on a tokio runtime and none is running.
    #[error("no tokio runtime to fetch a token on")]
    NoRuntime,
    /// Forwarding or exchanging needs the inbound token, and the outgoing request carries
    /// no [`InboundBearer`](super::InboundBearer) in its extensions.
    #[error("the outgoing request carries no `InboundBearer` to forward or exchange")]
    MissingInboundToken,
    /// The inbound request has no token verified by meshguard (no `VerifiedToken` in its
    /// extensions): only a token meshguard accepted is passed on.
    #[error("the inbound request has no verified token")]
    InboundNotVerified,
    /// The inbound request's `Authorization` holds no single `Bearer` token, or not the
    /// token that was verified (it came from a cookie or another place).
    #[error("the inbound request carries no single verified bearer token in `Authorization`")]
    InboundNotBearer,
    /// The inbound token is DPoP-bound (`Authorization: DPoP`, or `cnf.jkt`): its proofs
    /// are bound to the request that brought it, so it cannot be forwarded or exchanged.
    #[error("the inbound token is DPoP-bound and cannot be passed on")]
    InboundDpopBound,
    /// The inbound token expired: nothing is obtained for it any more.
    #[error("the inbound token expired")]
    InboundExpired,
    /// The request does not go to the origin the layer was configured for (or is not
    /// `https://`, nor `http://` to loopback).
    #[error("request destination is not the configured origin")]
    Destination,
}

impl OutgoingError {
    /// A stable, machine-readable reason: `token_endpoint_unavailable`,
    /// `token_endpoint_refused`, `invalid_token_response`, `dpop_token_issued`,
    /// `backing_off`, `timeout`, `no_runtime`, `missing_inbound_token`,
    /// `inbound_not_verified`, `inbound_not_bearer`, `inbound_dpop_bound`, `inbound_expired` or `destination`.
    pub fn reason(&self) -> &'static str {
        match self {
            OutgoingError::Unavailable(_) => "token_endpoint_unavailable",
            OutgoingError::Refused { .. } => "token_endpoint_refused",
            OutgoingError::InvalidResponse(_) => "invalid_token_response",
            OutgoingError::DpopIssued => "dpop_token_issued",
            OutgoingError::BackingOff { .. } => "backing_off",
            OutgoingError::Timeout => "timeout",
            OutgoingError::NoRuntime => "no_runtime",
            OutgoingError::MissingInboundToken => "missing_inbound_token",
            OutgoingError::InboundNotVerified => "inbound_not_verified",
            OutgoingError::InboundNotBearer => "inbound_not_bearer",
            OutgoingError::InboundDpopBound => "inbound_dpop_bound",
            OutgoingError::InboundExpired => "inbound_expired",
            OutgoingError::Destination => "destination",
        }
    }
}

/// Why an outgoing-credentials configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutgoingBuilderError {
    /// The token endpoint is not an `https://` URL (or `http://` to a loopback host), or
    /// holds credentials.
    #[error("token endpoint is refused: {0}")]
    Endpoint(Box<str>),
    /// The destination origin is not `https://host[:port]` (or `http://` to a loopback
    /// host), or has a path, a query or credentials.
    #[error(
        "destination origin `{0}` is refused: it must be https (or http to loopback) without path"
    )]
    Origin(Box<str>),
    /// The HTTP client could not be set up (a configured root certificate is unreadable).
    #[error("token endpoint client cannot be set up: {0}")]
    Client(Box<str>),
}

impl OutgoingBuilderError {
    /// A stable, machine-readable reason: `invalid_endpoint`, `invalid_origin` or
    /// `client_setup`.
    pub fn reason(&self) -> &'static str {
        match self {
            OutgoingBuilderError::Endpoint(_) => "invalid_endpoint",
            OutgoingBuilderError::Origin(_) => "invalid_origin",
            OutgoingBuilderError::Client(_) => "client_setup",
        }
    }
}
