//! How a refused request is answered: the [`Refusal`] each capability's error knows, and its
//! rendering as an RFC 6750 challenge with RFC 9457 problem details for HTTP or a
//! trailers-only response with `grpc-status` for gRPC.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, Response, StatusCode, Version};
//! use meshguard::response::{DEFAULT_REALM, RequestHead};
//! use meshguard::token::TokenError;
//!
//! let refusal = TokenError::Expired.refusal();
//! let headers = HeaderMap::new();
//! let response: Response<String> =
//!     refusal.render(RequestHead::new(Version::HTTP_11, &headers), DEFAULT_REALM);
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer realm="meshguard", error="invalid_token", error_description="the token has expired""#
//! );
//! ```

mod denied;
mod refusal;
mod renderer;
mod request;

pub use denied::Denied;
pub use refusal::{ErrorCode, Refusal, Stage};
pub(crate) use renderer::Renderer;
pub use request::{RefusalBody, RenderFn, RequestHead};

/// The `realm` of `WWW-Authenticate` challenges unless one is configured.
pub const DEFAULT_REALM: &str = "meshguard";
