//! How meshguard's layers answer a refused request: RFC 6750 challenges and RFC 9457 problem
//! details for HTTP, trailers-only responses with `grpc-status` for gRPC.

use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};

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
impl RefusalBody for axum::body::Body {
    fn empty() -> Self {
        axum::body::Body::empty()
    }

    fn json(json: String) -> Self {
        axum::body::Body::from(json)
    }
}

#[cfg(feature = "tonic")]
impl RefusalBody for tonic::body::Body {
    fn empty() -> Self {
        tonic::body::Body::default()
    }

    fn json(json: String) -> Self {
        tonic::body::Body::new(json)
    }
}

/// Why a request was refused, in the terms both protocols need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The HTTP status: 400, 401, 403 or 500.
    pub status: StatusCode,
    /// The RFC 6750 `error` attribute, when there is one (none when no credential was sent).
    pub error: Option<&'static str>,
    /// A short, fixed description safe to show the client (never token contents).
    pub description: &'static str,
    /// The stable reason string, for logs and metrics.
    pub reason: &'static str,
}

impl Refusal {
    /// The gRPC status code for this refusal.
    pub fn grpc_code(&self) -> u16 {
        match self.status {
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            StatusCode::BAD_REQUEST => 3,
            _ => 13,
        }
    }

    /// Renders the refusal for a request with `request_headers`: a trailers-only gRPC
    /// response for gRPC requests, otherwise an HTTP error with a `WWW-Authenticate`
    /// challenge for 400/401/403 and a problem-details body.
    pub fn render<B: RefusalBody>(&self, request_headers: &HeaderMap, realm: &str) -> Response<B> {
        if is_grpc(request_headers) {
            return self.render_grpc();
        }
        let mut response = Response::new(B::json(self.problem_json()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let challenged = matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
        );
        if challenged && let Ok(challenge) = HeaderValue::from_str(&self.challenge(realm)) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }

    fn render_grpc<B: RefusalBody>(&self) -> Response<B> {
        let mut response = Response::new(B::empty());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(self.grpc_code()));
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

/// Whether a request speaks gRPC (`content-type: application/grpc`, `+proto`, `+json`, ...).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
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
        Refusal {
            status,
            error,
            description: "token has \"expired\"\\",
            reason: "expired",
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
        let response: Response<String> =
            refusal(StatusCode::FORBIDDEN, Some("insufficient_scope")).render(&headers, "api");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "7");
        assert!(response.body().is_empty());
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn http_refusals_are_problem_details() {
        let response: Response<String> = refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"))
            .render(&HeaderMap::new(), "api");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["status"], 401);
    }
}
