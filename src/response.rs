//! How meshguard's layers answer a refused request: RFC 6750 challenges and RFC 9457 problem
//! details for HTTP, trailers-only responses with `grpc-status` for gRPC.

use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode, Version};

/// A response body the layers can build a refusal with.
///
/// Implemented for `String`, and for axum's and tonic's body types behind the `axum` and
/// `tonic` features; implement it for your own body type to use the layers with it.
pub trait RefusalBody {
    /// An empty body (gRPC refusals carry everything in headers).
    fn empty() -> Self;
    /// A body holding `json`, an RFC 9457 problem-details document.
    fn json(json: String) -> Self;
}

impl RefusalBody for String {
    fn empty() -> Self {
        String::new()
    }

    fn json(json: String) -> Self {
        json
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl RefusalBody for axum::body::Body {
    fn empty() -> Self {
        axum::body::Body::empty()
    }

    fn json(json: String) -> Self {
        axum::body::Body::from(json)
    }
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl RefusalBody for tonic::body::Body {
    fn empty() -> Self {
        tonic::body::Body::default()
    }

    fn json(json: String) -> Self {
        tonic::body::Body::new(json)
    }
}

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

/// Why a request was refused, in the terms both protocols need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The step that refused.
    pub stage: Stage,
    /// The HTTP status: 400, 401, 403 or 500.
    pub status: StatusCode,
    /// The gRPC status code: 16 (UNAUTHENTICATED), 7 (PERMISSION_DENIED), 3
    /// (INVALID_ARGUMENT) or 13 (INTERNAL).
    pub grpc_status: u16,
    /// The RFC 6750 `error` attribute, when there is one (none when no credential was sent).
    pub error: Option<&'static str>,
    /// A short, fixed description safe to show the client (never token contents).
    pub description: &'static str,
    /// The stable reason string, for logs and metrics.
    pub reason: &'static str,
    /// The scopes the route requires, space-separated, for `insufficient_scope` refusals.
    pub scope: Option<String>,
}

/// Renders refusals in place of [`Refusal::render`]: given the refusal, the request's
/// version and headers and the realm, the response to send. An empty body becomes an empty
/// response body; any other text is sent as it is.
pub type RenderFn = dyn Fn(&Refusal, RequestHead<'_>, &str) -> Response<String> + Send + Sync;

/// How a guard answers: with [`Refusal::render`], or with the [`RenderFn`] it was given. A
/// guard hands it to the handler-level checks it prepares, so that their denials answer as
/// the guard's own refusals do.
#[derive(Clone, Default)]
pub(crate) struct Renderer(pub(crate) Option<std::sync::Arc<RenderFn>>);

impl Renderer {
    /// The response for `refusal` of the request `head`.
    pub(crate) fn render<B: RefusalBody>(
        &self,
        refusal: &Refusal,
        head: RequestHead<'_>,
        realm: &str,
    ) -> Response<B> {
        match &self.0 {
            Some(render) => render(refusal, head, realm).map(|body| match body.is_empty() {
                true => B::empty(),
                false => B::json(body),
            }),
            None => refusal.render(head, realm),
        }
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Renderer(custom)",
            None => "Renderer(default)",
        })
    }
}

/// What answering a request needs to know of it: its HTTP version and headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    version: Version,
    headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    /// A request of `version` with `headers`.
    #[must_use]
    pub fn new(version: Version, headers: &'a HeaderMap) -> Self {
        Self { version, headers }
    }

    /// The version and headers of `request`.
    #[must_use]
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        Self::new(request.version(), request.headers())
    }

    /// The HTTP version.
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// Whether the request speaks gRPC: HTTP/2 with `content-type: application/grpc`,
    /// alone or followed by `+proto`, `+json` or parameters (media types matched without
    /// regard to case, RFC 9110 §8.3.1).
    ///
    /// Only HTTP/2 counts: a client picks its own content type, and a gRPC-shaped refusal
    /// is an HTTP 200 that a forward-auth proxy (nginx `auth_request`, Traefik
    /// ForwardAuth) reads as "allowed". HTTP/1.1 requests, gRPC-Web among them, always
    /// get real HTTP statuses.
    #[must_use]
    pub fn is_grpc(&self) -> bool {
        self.version == Version::HTTP_2 && has_grpc_media_type(self.headers)
    }
}

impl Refusal {
    /// A refusal by `stage` with `status` and the gRPC status that matches it.
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
        }
    }

    /// Sets the RFC 6750 `error` attribute.
    #[must_use]
    pub fn with_error(mut self, error: &'static str) -> Self {
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

    /// The gRPC status code for this refusal.
    pub fn grpc_code(&self) -> u16 {
        self.grpc_status
    }

    /// Whether the HTTP response carries a `WWW-Authenticate: Bearer` challenge: refusals
    /// about the bearer token and its scopes do; refusals of the peer, of the request's
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
        if self.challenges()
            && let Ok(challenge) = HeaderValue::from_str(&self.challenge(realm))
        {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }

    fn render_grpc<B: RefusalBody>(&self) -> Response<B> {
        let mut response = Response::new(B::empty());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(self.grpc_status));
        if let Ok(message) = HeaderValue::from_str(&percent_encode(self.description)) {
            headers.insert("grpc-message", message);
        }
        response
    }

    /// The RFC 6750 §3 challenge: each attribute at most once, values free of `"` and `\`.
    pub fn challenge(&self, realm: &str) -> String {
        let mut challenge = format!("Bearer realm=\"{}\"", quoted_safe(realm));
        if let Some(error) = self.error {
            challenge.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
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

/// Whether the content type is `application/grpc`, alone or followed by `+proto`, `+json`,
/// parameters, or gRPC-Web's `-web`/`-web-text`.
fn has_grpc_media_type(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    let Some(value) = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes) else {
        return false;
    };
    value
        .get(..GRPC.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(GRPC))
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';' | b'-'))
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

    fn refusal(status: StatusCode, error: Option<&'static str>) -> Refusal {
        let refusal = Refusal::new(Stage::Token, status, "expired", "token has \"expired\"\\");
        match error {
            Some(error) => refusal.with_error(error),
            None => refusal,
        }
    }

    #[test]
    fn challenge_values_never_hold_quotes_or_backslashes() {
        let challenge = refusal(StatusCode::UNAUTHORIZED, Some("invalid_token")).challenge("a\"b");
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
        let response: Response<String> = refusal(StatusCode::FORBIDDEN, Some("insufficient_scope"))
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
                refusal(StatusCode::UNAUTHORIZED, Some("invalid_token")).render(request, "api");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().get("grpc-status").is_none());
        }
    }

    #[test]
    fn http_refusals_are_problem_details() {
        let response: Response<String> = refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"))
            .render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()), "api");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["status"], 401);
    }
}
