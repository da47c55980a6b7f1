//! What answering a request needs: its version and headers, and a body type to answer with.

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, Version};

use super::Refusal;

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

/// Renders refusals in place of [`Refusal::render`]: given the refusal, the request's
/// version and headers and the realm, the response to send. An empty body becomes an empty
/// response body; any other text is sent as it is.
pub type RenderFn = dyn Fn(&Refusal, RequestHead<'_>, &str) -> Response<String> + Send + Sync;

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
