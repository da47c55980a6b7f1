//! Why an opaque token was refused after, or for want of, introspection.

use http::StatusCode;

use crate::response::{ErrorCode, Refusal, Stage};
use crate::token::TokenError;

/// Why an opaque token was not accepted by introspection (RFC 7662).
///
/// Each variant has a stable snake_case [`reason`](IntrospectionError::reason). `Display`
/// never contains the token, the client secret or the endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The endpoint answered `"active": false`: the token is unknown, expired, revoked or not
    /// for this client to see.
    #[error("token is not active")]
    Inactive,
    /// The endpoint could not be asked or gave no usable answer: down, too slow, a status
    /// other than 200 (a refused client secret among them), a body too large or not an
    /// introspection response. The token is refused: nothing vouched for it.
    #[error("token introspection is unavailable: {0}")]
    Unavailable(Box<str>),
    /// The endpoint called the token active, but its claims failed a configured check
    /// (expired, another audience or issuer, an unchecked confirmation, a DPoP token
    /// presented as bearer), or the token is too large to send.
    #[error(transparent)]
    Token(TokenError),
}

impl IntrospectionError {
    /// A stable, machine-readable reason: `inactive`, `introspection_unavailable`, or the
    /// [`TokenError::reason`] of a failed claim check.
    pub fn reason(&self) -> &'static str {
        match self {
            IntrospectionError::Inactive => "inactive",
            IntrospectionError::Unavailable(_) => "introspection_unavailable",
            IntrospectionError::Token(error) => error.reason(),
        }
    }

    /// The RFC 6750 §3.1 error code for a `WWW-Authenticate` challenge: always
    /// `invalid_token`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidToken
    }

    /// How a request carrying this token is answered: 401 (gRPC UNAUTHENTICATED) with a
    /// fixed description that never shows the token.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let description = match self {
            IntrospectionError::Unavailable(_) => "the token cannot be verified now",
            IntrospectionError::Token(error) => return error.refusal(),
            IntrospectionError::Inactive => "the token is invalid",
        };
        Refusal::new(
            Stage::Token,
            StatusCode::UNAUTHORIZED,
            self.reason(),
            description,
        )
        .with_error(self.error_code())
    }
}

impl From<TokenError> for IntrospectionError {
    fn from(error: TokenError) -> Self {
        IntrospectionError::Token(error)
    }
}

/// Why an [`Introspection`](super::Introspection) configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionBuilderError {
    /// Neither [`audience`](super::Introspection::audience) nor
    /// [`allow_any_audience`](super::Introspection::allow_any_audience) was called.
    #[error("no audience configured: call `audience` or `allow_any_audience`")]
    AudienceUnset,
    /// The endpoint is not an `https://` URL (or `http://` to a loopback host), or holds
    /// credentials.
    #[error("introspection endpoint is refused: {0}")]
    Endpoint(Box<str>),
    /// The HTTP client could not be set up (a configured root certificate is unreadable).
    #[error("introspection client cannot be set up: {0}")]
    Client(Box<str>),
}

impl IntrospectionBuilderError {
    /// A stable, machine-readable reason: `audience_unset`, `invalid_endpoint` or
    /// `client_setup`.
    pub fn reason(&self) -> &'static str {
        match self {
            IntrospectionBuilderError::AudienceUnset => "audience_unset",
            IntrospectionBuilderError::Endpoint(_) => "invalid_endpoint",
            IntrospectionBuilderError::Client(_) => "client_setup",
        }
    }
}
