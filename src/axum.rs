//! axum extractors for what meshguard's layers put into the request extensions, with
//! rejections that answer as the layers do.
//!
//! | extractor | rejection when absent |
//! | --- | --- |
//! | [`VerifiedToken`], [`Caller`] | 401 with a `Bearer` challenge (an optional-token route without a token) |
//! | [`PeerIdentity`] | 403 (no client certificate) |
//! | [`Decision`] | 403 (the route was not decided by policies) |
//! | [`PolicyCheck`] | 401 without a caller, 500 when the guard has no policies |
//!
//! Each is also available as `Option<T>`. Without a meshguard layer in front of the
//! handler every extractor answers 500: a wiring mistake, logged at error level.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use meshguard::caller::Caller;
//! use meshguard::token::VerifiedToken;
//!
//! async fn me(token: VerifiedToken) -> String {
//!     token.subject().unwrap_or("?").to_owned()
//! }
//!
//! async fn hello(caller: Option<Caller>) -> &'static str {
//!     if caller.is_some() { "hello again" } else { "hello, stranger" }
//! }
//!
//! let app: Router = Router::new().route("/me", get(me)).route("/hello", get(hello));
//! # let _ = app;
//! ```

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, Version};

use crate::caller::Caller;
use crate::guard::{Admission, Denied, PolicyCheck};
use crate::peer::{PeerError, PeerIdentity};
use crate::policy::Decision;
use crate::response::{Refusal, RequestHead, Stage};
use crate::token::layer::bearer_refusal;
use crate::token::{BearerError, VerifiedToken};

/// Why an extractor found nothing to extract.
#[derive(Debug, Clone)]
pub struct Rejection {
    refusal: Refusal,
    realm: String,
}

impl Rejection {
    /// The refusal the rejection answers with.
    #[must_use]
    pub fn refusal(&self) -> &Refusal {
        &self.refusal
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.refusal.description)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let headers = HeaderMap::new();
        self.refusal
            .render(RequestHead::new(Version::HTTP_11, &headers), &self.realm)
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        self.render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()))
    }
}

/// The admission of the guard in front, or the 500 for a handler without one.
fn admission(parts: &Parts) -> Result<&Admission, Rejection> {
    parts.extensions.get::<Admission>().ok_or_else(|| {
        tracing::error!(
            target: "meshguard::axum",
            path = parts.uri.path(),
            "a meshguard extractor ran without a meshguard layer in front of the handler"
        );
        Rejection {
            refusal: Refusal::new(
                Stage::Request,
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_guard",
                "the request was not checked",
            ),
            realm: "meshguard".to_owned(),
        }
    })
}

fn extract<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
    absent: impl FnOnce() -> Refusal,
) -> Result<T, Rejection> {
    let admission = admission(parts)?;
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| Rejection {
            refusal: absent(),
            realm: admission.realm().to_owned(),
        })
}

fn optional<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<Option<T>, Rejection> {
    admission(parts)?;
    Ok(parts.extensions.get::<T>().cloned())
}

fn no_token() -> Refusal {
    bearer_refusal(BearerError::Missing)
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        extract(parts, no_token)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        extract(parts, no_token)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerIdentity {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        extract(parts, || {
            crate::peer::peer_refusal(&PeerError::NoCertificate)
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Decision {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        extract(parts, || {
            Refusal::new(
                Stage::Policy,
                StatusCode::FORBIDDEN,
                "not_decided",
                "the request was not decided by policies",
            )
        })
    }
}

/// `Option<T>`: `None` when the guard in front found no `T`; still 500 without a guard.
macro_rules! optional_extractor {
    ($($extracted:ty),*) => {$(
        impl<S: Send + Sync> OptionalFromRequestParts<S> for $extracted {
            type Rejection = Rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _: &S,
            ) -> Result<Option<Self>, Self::Rejection> {
                optional(parts)
            }
        }
    )*};
}

optional_extractor!(VerifiedToken, Caller, PeerIdentity, Decision);

impl<S: Send + Sync> FromRequestParts<S> for PolicyCheck {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let admission = admission(parts)?;
        let realm = admission.realm().to_owned();
        if admission.engine().is_none() {
            tracing::error!(
                target: "meshguard::axum",
                "PolicyCheck needs a guard with policies in front of the handler"
            );
            return Err(Rejection {
                refusal: Refusal::new(
                    Stage::Policy,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no_policies",
                    "the request cannot be decided",
                ),
                realm,
            });
        }
        PolicyCheck::from_extensions(&parts.extensions).ok_or(Rejection {
            refusal: no_token(),
            realm,
        })
    }
}
