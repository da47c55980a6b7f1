//! A refusal in the terms both protocols need, and how it is rendered: RFC 6750 challenges
//! and RFC 9457 problem details for HTTP, trailers-only responses with `grpc-status` for gRPC.

use std::sync::Arc;

use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use super::{RefusalBody, RequestHead};

/// Which step of the guard refused a request; a label for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The calling workload's certificate (mTLS or a trusted proxy's XFCC).
    Peer,
    /// The bearer token: missing, malformed, invalid, or not bound to the client certificate.
    Token,
    /// The token lacks a scope the route requires.
    Scope,
    /// The request could not be mapped to a Cedar request (bad path encoding, ...).
    Request,
    /// The Cedar policies denied the request.
    Policy,
}

impl Stage {
    /// A short, stable name: `peer`, `token`, `scope`, `request` or `policy`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Peer => "peer",
            Self::Token => "token",
            Self::Scope => "scope",
            Self::Request => "request",
            Self::Policy => "policy",
        }
    }
}

/// The `error` attribute of an RFC 6750 §3.1 `WWW-Authenticate: Bearer` challenge, or of an
/// RFC 9449 §7.1 `WWW-Authenticate: DPoP` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: the credential is malformed or there are several (400).
    InvalidRequest,
    /// `invalid_token`: the token is expired, revoked, malformed or invalid (401).
    InvalidToken,
    /// `insufficient_scope`: the token lacks a scope the request needs (403).
    InsufficientScope,
    /// `invalid_dpop_proof`: the DPoP proof is missing, malformed or invalid (RFC 9449 §7.1).
    InvalidDpopProof,
    /// `use_dpop_nonce`: the proof must carry the server's current nonce, sent along in a
    /// `DPoP-Nonce` header (RFC 9449 §9).
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as RFC 6750 spells it, e.g. `invalid_token`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// Why a request was refused, in the terms both protocols need.
///
/// Each capability's error knows its own refusal (for example
/// [`TokenError::refusal`](crate::token::TokenError::refusal)); layers never decide a
/// status themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    stage: Stage,
    status: StatusCode,
    grpc_status: u16,
    error: Option<ErrorCode>,
    description: &'static str,
    reason: &'static str,
    scope: Option<String>,
    dpop: Option<Box<DpopChallenge>>,
}

/// What a refusal says about DPoP (RFC 9449 §7.1): whether its error is DPoP's, the
/// algorithms a proof may use, and a fresh server nonce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DpopChallenge {
    /// The error belongs in the `DPoP` challenge, not the `Bearer` one.
    scheme: bool,
    algs: Option<Arc<str>>,
    nonce: Option<Box<str>>,
}

impl Refusal {
    /// A refusal by `stage` with `status` and the gRPC status that matches it: 16
    /// (UNAUTHENTICATED) for 401, 7 (PERMISSION_DENIED) for 403, 3 (INVALID_ARGUMENT) for
    /// 400 and 13 (INTERNAL) for anything else. `reason` is the stable string for logs and
    /// metrics; `description` is shown to the client and must hold nothing secret.
    #[must_use]
    pub fn new(
        stage: Stage,
        status: StatusCode,
        reason: &'static str,
        description: &'static str,
    ) -> Self {
        let grpc_status = match status {
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            StatusCode::BAD_REQUEST => 3,
            _ => 13,
        };
        Self {
            stage,
            status,
            grpc_status,
            error: None,
            description,
            reason,
            scope: None,
            dpop: None,
        }
    }

    /// Sets the RFC 6750 `error` attribute.
    #[must_use]
    pub fn with_error(mut self, error: ErrorCode) -> Self {
        self.error = Some(error);
        self
    }

    /// Sets the gRPC status code.
    #[must_use]
    pub fn with_grpc_status(mut self, code: u16) -> Self {
        self.grpc_status = code;
        self
    }

    /// Sets the `scope` attribute of the challenge.
    #[must_use]
    pub fn with_scope(mut self, scope: String) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Makes the refusal a DPoP one (RFC 9449 §7.1): its challenge is `WWW-Authenticate:
    /// DPoP` instead of `Bearer`.
    #[must_use]
    pub fn with_dpop_scheme(mut self) -> Self {
        self.dpop.get_or_insert_with(Box::default).scheme = true;
        self
    }

    /// The algorithms a DPoP proof may use, space-separated (`algs`, RFC 9449 §7.1). On a
    /// DPoP refusal they go into its challenge; on a bearer refusal a second challenge,
    /// `DPoP algs="..."`, tells the client that DPoP is accepted too.
    #[must_use]
    pub fn with_dpop_algs(mut self, algs: Arc<str>) -> Self {
        self.dpop.get_or_insert_with(Box::default).algs = Some(algs);
        self
    }

    /// A server nonce for the client's next DPoP proof, sent as the `DPoP-Nonce` header (or
    /// gRPC metadata `dpop-nonce`) with the refusal (RFC 9449 §8).
    #[must_use]
    pub fn with_dpop_nonce(mut self, nonce: impl Into<Box<str>>) -> Self {
        self.dpop.get_or_insert_with(Box::default).nonce = Some(nonce.into());
        self
    }

    /// Whether the challenge is `WWW-Authenticate: DPoP` (see
    /// [`with_dpop_scheme`](Self::with_dpop_scheme)).
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        self.dpop.as_ref().is_some_and(|dpop| dpop.scheme)
    }

    /// The `DPoP-Nonce` sent with the refusal, if any.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop.as_ref().and_then(|dpop| dpop.nonce.as_deref())
    }

    /// The step that refused.
    #[must_use]
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The HTTP status: 400, 401, 403 or 500.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The gRPC status code: 16 (UNAUTHENTICATED), 7 (PERMISSION_DENIED), 3
    /// (INVALID_ARGUMENT) or 13 (INTERNAL).
    #[must_use]
    pub fn grpc_code(&self) -> u16 {
        self.grpc_status
    }

    /// The RFC 6750 `error` attribute, when there is one (none when no credential was sent).
    #[must_use]
    pub fn error(&self) -> Option<ErrorCode> {
        self.error
    }

    /// A short, fixed description safe to show the client (never token contents).
    #[must_use]
    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The stable reason string, for logs and metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The scopes the route requires, space-separated, for `insufficient_scope` refusals.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Whether the HTTP response carries a `WWW-Authenticate` challenge (`Bearer`, or `DPoP`
    /// for a [DPoP refusal](Self::with_dpop_scheme)): refusals about the token and its scopes do; refusals of the peer, of the request's
    /// shape and of the policies are not about the token and do not.
    #[must_use]
    pub fn challenges(&self) -> bool {
        matches!(self.stage, Stage::Token | Stage::Scope)
    }

    /// Renders the refusal of `request`: a trailers-only gRPC response for gRPC requests
    /// (see [`RequestHead::is_grpc`]), otherwise an HTTP error with a problem-details body
    /// and, for token refusals, a `WWW-Authenticate` challenge.
    pub fn render<B: RefusalBody>(&self, request: RequestHead<'_>, realm: &str) -> Response<B> {
        if request.is_grpc() {
            return self.render_grpc();
        }
        let mut response = Response::new(B::json(self.problem_json()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.challenges() {
            if let Ok(challenge) = HeaderValue::from_str(&self.challenge(realm)) {
                headers.insert(WWW_AUTHENTICATE, challenge);
            }
            if let Some(offer) = self.dpop_offer(realm)
                && let Ok(offer) = HeaderValue::from_str(&offer)
            {
                headers.append(WWW_AUTHENTICATE, offer);
            }
        }
        self.insert_nonce(headers);
        response
    }

    /// The `DPoP-Nonce` header, when the refusal carries a nonce (RFC 9449 §8.1).
    fn insert_nonce(&self, headers: &mut http::HeaderMap) {
        if let Some(nonce) = self.dpop_nonce()
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            headers.insert("dpop-nonce", value);
        }
    }

    /// The second challenge of a bearer refusal that also offers DPoP: `DPoP algs="..."`.
    fn dpop_offer(&self, realm: &str) -> Option<String> {
        let dpop = self.dpop.as_deref().filter(|dpop| !dpop.scheme)?;
        let algs = dpop.algs.as_deref()?;
        Some(format!(
            "DPoP realm=\"{}\", algs=\"{}\"",
            quoted_safe(realm),
            quoted_safe(algs)
        ))
    }

    fn render_grpc<B: RefusalBody>(&self) -> Response<B> {
        let mut response = Response::new(B::empty());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(self.grpc_status));
        if let Ok(message) = HeaderValue::from_str(&percent_encode(self.description)) {
            headers.insert("grpc-message", message);
        }
        self.insert_nonce(headers);
        response
    }

    /// The RFC 6750 §3 challenge (RFC 9449 §7.1 for a [DPoP](Self::with_dpop_scheme)
    /// refusal): each attribute at most once, values free of `"` and `\`.
    pub fn challenge(&self, realm: &str) -> String {
        let dpop = self.dpop.as_deref().filter(|dpop| dpop.scheme);
        let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
        let mut challenge = format!("{scheme} realm=\"{}\"", quoted_safe(realm));
        if let Some(algs) = dpop.and_then(|dpop| dpop.algs.as_deref()) {
            challenge.push_str(&format!(", algs=\"{}\"", quoted_safe(algs)));
        }
        if let Some(error) = self.error {
            challenge.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                error.as_str(),
                quoted_safe(self.description)
            ));
            if let Some(scope) = &self.scope {
                challenge.push_str(&format!(", scope=\"{}\"", quoted_safe(scope)));
            }
        }
        challenge
    }

    fn problem_json(&self) -> String {
        serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.description,
        })
        .to_string()
    }
}

/// RFC 6750 §3: `error_description` and friends use `%x20-21 / %x23-5B / %x5D-7E`.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '_',
        })
        .collect()
}

/// gRPC's `grpc-message` is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses").
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{AuthorizeError, BindingError, PeerError, SpiffeId};
    use crate::policy::{DenyCause, MappingError};
    use crate::token::{BearerError, TokenError};

    use http::header::CONTENT_TYPE;
    use http::{HeaderMap, Version};

    fn refusal(status: StatusCode, error: Option<ErrorCode>) -> Refusal {
        let refusal = Refusal::new(Stage::Token, status, "expired", "token has \"expired\"\\");
        match error {
            Some(error) => refusal.with_error(error),
            None => refusal,
        }
    }

    #[test]
    fn challenge_values_never_hold_quotes_or_backslashes() {
        let challenge =
            refusal(StatusCode::UNAUTHORIZED, Some(ErrorCode::InvalidToken)).challenge("a\"b");
        assert_eq!(
            challenge,
            "Bearer realm=\"a_b\", error=\"invalid_token\", error_description=\"token has _expired__\""
        );
    }

    #[test]
    fn missing_credentials_get_a_challenge_without_error() {
        assert_eq!(
            refusal(StatusCode::UNAUTHORIZED, None).challenge("api"),
            "Bearer realm=\"api\""
        );
    }

    #[test]
    fn grpc_requests_get_trailers_only_responses() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        let response: Response<String> =
            refusal(StatusCode::FORBIDDEN, Some(ErrorCode::InsufficientScope))
                .render(RequestHead::new(Version::HTTP_2, &headers), "api");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "7");
        assert!(response.body().is_empty());
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn grpc_is_recognised_by_its_media_type_in_any_case() {
        let grpc = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            RequestHead::new(Version::HTTP_2, &headers).is_grpc()
        };
        for value in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc+json",
            "application/grpc;charset=utf-8",
            "Application/gRPC",
            "APPLICATION/GRPC+PROTO",
            "application/grpc-web",
            "application/grpc-web-text+proto",
        ] {
            assert!(grpc(value), "{value}");
        }
        for value in [
            "application/grpcx",
            "application/json",
            "application/grp",
            "text/plain",
            "",
        ] {
            assert!(!grpc(value), "{value}");
        }
        assert!(!RequestHead::new(Version::HTTP_2, &HeaderMap::new()).is_grpc());
    }

    #[test]
    fn http1_requests_never_get_grpc_shaped_refusals() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        for version in [Version::HTTP_09, Version::HTTP_10, Version::HTTP_11] {
            let request = RequestHead::new(version, &headers);
            assert!(!request.is_grpc(), "{version:?}");
            let response: Response<String> =
                refusal(StatusCode::UNAUTHORIZED, Some(ErrorCode::InvalidToken))
                    .render(request, "api");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().get("grpc-status").is_none());
        }
    }

    #[test]
    fn http_refusals_are_problem_details() {
        let response: Response<String> =
            refusal(StatusCode::UNAUTHORIZED, Some(ErrorCode::InvalidToken))
                .render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()), "api");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["status"], 401);
    }

    #[test]
    fn dpop_refusals_challenge_with_dpop_and_send_the_nonce() {
        let algs: Arc<str> = Arc::from("ES256 EdDSA");
        let dpop = Refusal::new(
            Stage::Token,
            StatusCode::UNAUTHORIZED,
            "dpop_use_nonce",
            "x",
        )
        .with_error(ErrorCode::UseDpopNonce)
        .with_dpop_scheme()
        .with_dpop_algs(Arc::clone(&algs))
        .with_dpop_nonce("n-1");
        let response: Response<String> =
            dpop.render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()), "api");
        let challenges: Vec<_> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(
            challenges,
            [
                r#"DPoP realm="api", algs="ES256 EdDSA", error="use_dpop_nonce", error_description="x""#
            ]
        );
        assert_eq!(response.headers()["dpop-nonce"], "n-1");
        let mut grpc = HeaderMap::new();
        grpc.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let response: Response<String> =
            dpop.render(RequestHead::new(Version::HTTP_2, &grpc), "api");
        assert_eq!(response.headers()["grpc-status"], "16");
        assert_eq!(response.headers()["dpop-nonce"], "n-1");
        // A bearer refusal that also offers DPoP: two challenges, the error in the first.
        let bearer =
            refusal(StatusCode::UNAUTHORIZED, Some(ErrorCode::InvalidToken)).with_dpop_algs(algs);
        let response: Response<String> =
            bearer.render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()), "api");
        let challenges: Vec<_> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(challenges.len(), 2);
        assert!(
            challenges[0]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"api\", error=")
        );
        assert_eq!(challenges[1], r#"DPoP realm="api", algs="ES256 EdDSA""#);
        assert!(response.headers().get("dpop-nonce").is_none());
    }

    fn answer(refusal: &Refusal) -> (Stage, u16, u16, Option<&'static str>) {
        (
            refusal.stage(),
            refusal.status().as_u16(),
            refusal.grpc_code(),
            refusal.error().map(ErrorCode::as_str),
        )
    }

    #[test]
    fn each_error_knows_its_answer() {
        let id: SpiffeId = "spiffe://example.org/x".parse().unwrap();
        let cases = [
            (
                TokenError::Expired.refusal(),
                (Stage::Token, 401, 16, Some("invalid_token")),
            ),
            (
                BearerError::Missing.refusal(),
                (Stage::Token, 401, 16, None),
            ),
            (
                BearerError::Multiple.refusal(),
                (Stage::Token, 400, 3, Some("invalid_request")),
            ),
            (
                BindingError::Mismatch.refusal(),
                (Stage::Token, 401, 16, Some("invalid_token")),
            ),
            (
                PeerError::NoCertificate.refusal(),
                (Stage::Peer, 403, 16, None),
            ),
            (
                PeerError::XfccMultipleHeaders.refusal(),
                (Stage::Peer, 400, 3, None),
            ),
            (
                AuthorizeError::Unauthorized(id).refusal(),
                (Stage::Peer, 403, 7, None),
            ),
            (
                MappingError::BadEncoding.refusal(),
                (Stage::Request, 400, 3, None),
            ),
            (
                DenyCause::Forbidden.refusal(),
                (Stage::Policy, 403, 7, None),
            ),
        ];
        for (refusal, expected) in cases {
            assert_eq!(answer(&refusal), expected, "{}", refusal.reason());
        }
        assert_eq!(
            BindingError::Unbound.refusal().status(),
            BindingError::Unbound.status()
        );
        assert_eq!(StatusCode::UNAUTHORIZED, BindingError::Unbound.status());
    }
}
