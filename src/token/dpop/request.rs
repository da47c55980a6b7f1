//! A DPoP-bound request as the guard sees it: `Authorization: DPoP <token>`, one `DPoP`
//! header, and the URI the client used, rebuilt from a configured origin.

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, Request};

use super::error::{DpopBuilderError, DpopError};
use super::{DpopVerified, DpopVerifier, Presentation, htu};
use crate::token::bearer::is_b64token;

/// Where the origin of the request's URI comes from.
pub(crate) enum Origin {
    /// The configured public origins, normalized, without a trailing slash.
    Public(Vec<String>),
    /// The request's URI or `Host` header, with this scheme when the URI has none.
    Host(&'static str),
}

impl Origin {
    /// The configured origin; `None` when neither kind was configured.
    pub(crate) fn new(
        origins: Vec<String>,
        host_scheme: Option<String>,
    ) -> Result<Option<Self>, DpopBuilderError> {
        if let Some(scheme) = host_scheme {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "http" => "http",
                "https" => "https",
                _ => return Err(DpopBuilderError::Origin(scheme)),
            };
            if origins.is_empty() {
                return Ok(Some(Origin::Host(scheme)));
            }
        }
        if origins.is_empty() {
            return Ok(None);
        }
        let mut normalized = Vec::with_capacity(origins.len());
        for origin in origins {
            let Some(mut clean) = htu::normalize(&origin).filter(|_| !origin.contains(['?', '#']))
            else {
                return Err(DpopBuilderError::Origin(origin));
            };
            if clean.ends_with('/') {
                clean.pop();
            }
            normalized.push(clean);
        }
        Ok(Some(Origin::Public(normalized)))
    }

    /// Whether `htu` (normalized) is the request's URI.
    fn matches<B>(&self, request: &Request<B>, htu: &str) -> bool {
        let uri = request.uri();
        let path = uri.path();
        match self {
            Origin::Public(origins) => origins
                .iter()
                .any(|origin| htu::normalize(&format!("{origin}{path}")).as_deref() == Some(htu)),
            Origin::Host(default_scheme) => {
                let scheme = uri.scheme_str().unwrap_or(default_scheme);
                let authority = match uri.authority() {
                    Some(authority) => Some(authority.as_str()),
                    None => single(request.headers(), HOST),
                };
                authority.is_some_and(|authority| {
                    htu::normalize(&format!("{scheme}://{authority}{path}")).as_deref() == Some(htu)
                })
            }
        }
    }
}

/// Whether the request's `Authorization` header uses the DPoP scheme.
pub(crate) fn is_dpop(headers: &HeaderMap) -> bool {
    headers.get_all(AUTHORIZATION).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b' ')
            .next()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"dpop"))
    })
}

impl DpopVerifier {
    /// Whether this verifier knows the origin of requests, as the guard needs.
    pub(crate) fn has_origin(&self) -> bool {
        self.inner.origin.is_some()
    }

    /// Verifies a request's `Authorization: DPoP` token with its `DPoP` proof, against the
    /// request's method and its URI under the configured origin.
    pub(crate) fn verify_request<B>(
        &self,
        request: &Request<B>,
    ) -> Result<DpopVerified, DpopError> {
        let (token, proof) = self.credentials(request.headers())?;
        let checked = self.check_request(request, token, proof)?;
        let verified = self.inner.verifier.verify_as(token, Presentation::Dpop);
        self.finish(checked, verified)
    }

    /// What [`verify_request`](Self::verify_request) reads from the request, owned, for a
    /// verification that waits for a remote key source: the token, the proof, the method
    /// and the URI the proof's `htu` was found to match.
    #[cfg(feature = "remote-jwks")]
    pub(crate) fn owned_parts<B>(&self, request: &Request<B>) -> Result<[String; 4], DpopError> {
        let (token, proof) = self.credentials(request.headers())?;
        let checked = self.check_request(request, token, proof)?;
        let htu = checked.proof.claims.htu.clone().unwrap_or_default();
        Ok([
            token.to_owned(),
            proof.to_owned(),
            request.method().as_str().to_owned(),
            htu,
        ])
    }

    fn check_request<B>(
        &self,
        request: &Request<B>,
        token: &str,
        proof: &str,
    ) -> Result<super::Checked, DpopError> {
        let origin = self.inner.origin.as_ref().ok_or(DpopError::UriMismatch)?;
        self.check_proof(token, proof, request.method().as_str(), &|htu| {
            origin.matches(request, htu)
        })
    }

    /// The token of `Authorization: DPoP` and the single `DPoP` proof.
    fn credentials<'a>(&self, headers: &'a HeaderMap) -> Result<(&'a str, &'a str), DpopError> {
        let mut authorizations = headers.get_all(AUTHORIZATION).iter();
        let (Some(authorization), None) = (authorizations.next(), authorizations.next()) else {
            return Err(DpopError::MalformedCredential);
        };
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("dpop") && is_b64token(token))
            .map(|(_, token)| token)
            .ok_or(DpopError::MalformedCredential)?;
        let mut proofs = headers.get_all("dpop").iter();
        let proof = match (proofs.next(), proofs.next()) {
            (None, _) => return Err(DpopError::MissingProof),
            (Some(_), Some(_)) => return Err(DpopError::MultipleProofs),
            (Some(proof), None) => proof,
        };
        if proof.len() > self.inner.max_proof_bytes {
            return Err(DpopError::TooLarge {
                limit: self.inner.max_proof_bytes,
            });
        }
        let proof = proof
            .to_str()
            .map_err(|_| DpopError::Malformed("proof is not ASCII"))?;
        Ok((token, proof))
    }
}

/// The value of a header that occurs exactly once, as text.
fn single(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    }
}
