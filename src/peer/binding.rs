//! Certificate-bound access tokens (RFC 8705 §3): the token's `cnf["x5t#S256"]` must name
//! the client certificate the request came with.

use crate::response::{ErrorCode, Refusal, Stage};
use crate::token::VerifiedToken;

use super::identity::PeerIdentity;

/// When a token must be bound to the client certificate.
///
/// # Example
///
/// ```
/// use meshguard::peer::CertificateBinding;
///
/// // The default checks bound tokens and lets unbound ones through.
/// assert_eq!(CertificateBinding::default(), CertificateBinding::IfPresent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CertificateBinding {
    /// The binding is not checked.
    ///
    /// # Security
    ///
    /// A stolen bound token then works from any client, which is what binding exists to
    /// prevent. Only for services that never see bound tokens.
    Off,
    /// A token with `cnf["x5t#S256"]` must match the client certificate (RFC 8705 §3);
    /// tokens without it pass. The default.
    #[default]
    IfPresent,
    /// Every token must carry `cnf["x5t#S256"]` and match the client certificate.
    Required,
}

/// Why a token is not bound to the request's client certificate.
///
/// Every variant answers 401 with `error="invalid_token"` (RFC 8705 §3, RFC 6750).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The token is bound but the request has no client certificate (plain TLS, or a proxy
    /// that sanitized the XFCC header).
    #[error("certificate-bound token without a client certificate")]
    MissingCertificate,
    /// The token's `x5t#S256` is not the client certificate's thumbprint.
    #[error("token is bound to a different certificate")]
    Mismatch,
    /// Binding is required and the token has no `cnf["x5t#S256"]`.
    #[error("token is not bound to a certificate")]
    Unbound,
}

impl BindingError {
    /// A short, stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCertificate => "certificate_required",
            Self::Mismatch => "certificate_mismatch",
            Self::Unbound => "token_not_bound",
        }
    }

    /// The HTTP status to answer with: always 401 (`invalid_token`).
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::UNAUTHORIZED
    }

    /// How the request is answered: [`status`](Self::status) with `invalid_token` (gRPC
    /// UNAUTHENTICATED).
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        Refusal::new(
            Stage::Token,
            self.status(),
            self.reason(),
            "the token is not bound to the client certificate",
        )
        .with_error(ErrorCode::InvalidToken)
    }
}

impl CertificateBinding {
    /// Checks `token` against the client certificate of the request, `client` (from the
    /// TLS connection, or from the trusted XFCC element, whose `Hash` has been converted
    /// from hex to the same base64url form).
    ///
    /// The comparison is exact: `x5t#S256` must equal [`PeerIdentity::x5t_s256`], the
    /// unpadded base64url SHA-256 of the certificate's DER.
    ///
    /// # Errors
    ///
    /// [`BindingError::MissingCertificate`] for a bound token without client certificate,
    /// [`BindingError::Mismatch`] for a different certificate, [`BindingError::Unbound`]
    /// for an unbound token when binding is [`Required`](Self::Required).
    pub fn check(
        self,
        token: &VerifiedToken,
        client: Option<&PeerIdentity>,
    ) -> Result<(), BindingError> {
        let thumbprint = match (self, token.certificate_thumbprint()) {
            (Self::Off, _) | (Self::IfPresent, None) => return Ok(()),
            (Self::Required, None) => return Err(BindingError::Unbound),
            (_, Some(thumbprint)) => thumbprint,
        };
        let client = client.ok_or(BindingError::MissingCertificate)?;
        if client.x5t_s256() == thumbprint {
            Ok(())
        } else {
            Err(BindingError::Mismatch)
        }
    }
}
