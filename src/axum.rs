//! axum extractors for what meshguard's layers put into the request extensions, with
//! rejections that answer as the layers do.
//!
//! | extractor | rejection | when absent |
//! | --- | --- | --- |
//! | [`VerifiedToken`] | [`VerifiedTokenRejection`] | 401 with a `Bearer` challenge (an optional-token route without a token) |
//! | [`Caller`] | [`CallerRejection`] | 401 with a `Bearer` challenge |
//! | [`PeerIdentity`] | [`PeerIdentityRejection`] | 403 (no client certificate) |
//! | [`Decision`] | [`DecisionRejection`] | 403 (the route was not decided by policies) |
//! | [`PolicyCheck`] | [`PolicyCheckRejection`] | 401 without a caller, 500 when the guard has no policies |
//!
//! Each is also available as `Option<T>`. Without a meshguard layer in front of the
//! handler every extractor answers 500 naming the layer it needs: a wiring mistake, logged
//! at error level.
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

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, Version};

use crate::caller::Caller;
use crate::guard::{Admission, PolicyCheck};
use crate::peer::{PeerError, PeerIdentity};
use crate::policy::Decision;
use crate::response::{DEFAULT_REALM, Denied, Refusal, RequestHead, Stage};
use crate::token::{BearerError, VerifiedToken};

/// Defines an extractor's rejection: a refusal and the realm of its challenge.
macro_rules! define_rejection {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            refusal: Refusal,
            realm: Arc<str>,
        }

        impl $name {
            /// The refusal the rejection answers with.
            #[must_use]
            pub fn refusal(&self) -> &Refusal {
                &self.refusal
            }
        }

        impl From<Rejected> for $name {
            fn from(Rejected { refusal, realm }: Rejected) -> Self {
                Self { refusal, realm }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.refusal.description())
            }
        }

        impl std::error::Error for $name {}

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                tracing::debug!(
                    target: "meshguard::axum",
                    rejection = stringify!($name),
                    reason = self.refusal.reason(),
                    "extractor rejected the request"
                );
                let headers = HeaderMap::new();
                self.refusal
                    .render(RequestHead::new(Version::HTTP_11, &headers), &self.realm)
            }
        }
    };
}

define_rejection! {
    /// Why the [`VerifiedToken`] extractor rejected a request: 401 without a token, 500
    /// without [`AuthenticationLayer`](crate::token::AuthenticationLayer) or
    /// [`GuardLayer`](crate::guard::GuardLayer) in front of the handler.
    VerifiedTokenRejection
}

define_rejection! {
    /// Why the [`Caller`] extractor rejected a request: 401 without a caller, 500 without a
    /// meshguard layer in front of the handler.
    CallerRejection
}

define_rejection! {
    /// Why the [`PeerIdentity`] extractor rejected a request: 403 without a client
    /// certificate, 500 without [`PeerIdentityLayer`](crate::peer::PeerIdentityLayer) or
    /// [`GuardLayer`](crate::guard::GuardLayer) in front of the handler.
    PeerIdentityRejection
}

define_rejection! {
    /// Why the [`Decision`] extractor rejected a request: 403 when the policies did not
    /// decide it, 500 without [`AuthorizationLayer`](crate::policy::AuthorizationLayer) or
    /// [`GuardLayer`](crate::guard::GuardLayer) in front of the handler.
    DecisionRejection
}

define_rejection! {
    /// Why the [`PolicyCheck`] extractor rejected a request: 401 without a caller, 500
    /// without a [`GuardLayer`](crate::guard::GuardLayer) with policies in front of the
    /// handler.
    PolicyCheckRejection
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        self.render(RequestHead::new(Version::HTTP_11, &HeaderMap::new()))
    }
}

/// A rejection before it takes its extractor's type.
struct Rejected {
    refusal: Refusal,
    realm: Arc<str>,
}

/// The admission of the guard in front, or the 500 naming the layer `needs` says the
/// extractor needs.
fn admission<'a>(parts: &'a Parts, needs: &'static str) -> Result<&'a Admission, Rejected> {
    parts.extensions.get::<Admission>().ok_or_else(|| {
        tracing::error!(
            target: "meshguard::axum",
            path = parts.uri.path(),
            "{needs}"
        );
        Rejected {
            refusal: Refusal::new(
                Stage::Request,
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_guard",
                needs,
            ),
            realm: Arc::from(DEFAULT_REALM),
        }
    })
}

fn extract<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
    needs: &'static str,
    absent: impl FnOnce() -> Refusal,
) -> Result<T, Rejected> {
    let admission = admission(parts, needs)?;
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| Rejected {
            refusal: absent(),
            realm: Arc::clone(&admission.realm),
        })
}

const TOKEN_NEEDS: &str =
    "the VerifiedToken extractor needs AuthenticationLayer or GuardLayer on this route";
const CALLER_NEEDS: &str =
    "the Caller extractor needs GuardLayer, AuthenticationLayer or PeerIdentityLayer on this route";
const PEER_NEEDS: &str =
    "the PeerIdentity extractor needs PeerIdentityLayer or GuardLayer on this route";
const DECISION_NEEDS: &str =
    "the Decision extractor needs AuthorizationLayer or GuardLayer on this route";
const POLICY_CHECK_NEEDS: &str =
    "the PolicyCheck extractor needs GuardLayer or AuthorizationLayer with policies on this route";

fn no_token() -> Refusal {
    BearerError::Missing.refusal()
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = VerifiedTokenRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(extract(parts, TOKEN_NEEDS, no_token)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = CallerRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(extract(parts, CALLER_NEEDS, no_token)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerIdentity {
    type Rejection = PeerIdentityRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(extract(parts, PEER_NEEDS, || {
            PeerError::NoCertificate.refusal()
        })?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Decision {
    type Rejection = DecisionRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(extract(parts, DECISION_NEEDS, || {
            Refusal::new(
                Stage::Policy,
                StatusCode::FORBIDDEN,
                "not_decided",
                "the request was not decided by policies",
            )
        })?)
    }
}

/// `Option<T>`: `None` when the guard in front found no `T`; still 500 without a guard.
macro_rules! optional_extractor {
    ($($extracted:ty => $rejection:ty, $needs:expr;)*) => {$(
        impl<S: Send + Sync> OptionalFromRequestParts<S> for $extracted {
            type Rejection = $rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                _: &S,
            ) -> Result<Option<Self>, Self::Rejection> {
                admission(parts, $needs)?;
                Ok(parts.extensions.get::<Self>().cloned())
            }
        }
    )*};
}

optional_extractor! {
    VerifiedToken => VerifiedTokenRejection, TOKEN_NEEDS;
    Caller => CallerRejection, CALLER_NEEDS;
    PeerIdentity => PeerIdentityRejection, PEER_NEEDS;
    Decision => DecisionRejection, DECISION_NEEDS;
}

impl<S: Send + Sync> FromRequestParts<S> for PolicyCheck {
    type Rejection = PolicyCheckRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let admission = admission(parts, POLICY_CHECK_NEEDS)?;
        let realm = Arc::clone(&admission.realm);
        if admission.engine().is_none() {
            tracing::error!(target: "meshguard::axum", "{POLICY_CHECK_NEEDS}");
            return Err(PolicyCheckRejection {
                refusal: Refusal::new(
                    Stage::Policy,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no_policies",
                    POLICY_CHECK_NEEDS,
                ),
                realm,
            });
        }
        PolicyCheck::from_extensions(&parts.extensions).ok_or(PolicyCheckRejection {
            refusal: no_token(),
            realm,
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::guard::GuardLayer;
    use crate::token::{Issuer, KeySet, Verifier};

    async fn token(_: VerifiedToken) {}
    async fn caller(_: Caller) {}
    async fn peer(_: PeerIdentity) {}
    async fn decision(_: Decision) {}
    async fn check(_: PolicyCheck) {}
    async fn maybe_token(_: Option<VerifiedToken>) {}

    fn app() -> Router {
        Router::new()
            .route("/token", get(token))
            .route("/caller", get(caller))
            .route("/peer", get(peer))
            .route("/decision", get(decision))
            .route("/check", get(check))
            .route("/maybe-token", get(maybe_token))
    }

    /// The status and problem `detail` of `app`'s answer to `GET path`.
    async fn answer(app: Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, problem["detail"].as_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn each_extractor_without_a_layer_names_the_layer_it_needs() {
        let needs = [
            (
                "/token",
                "VerifiedToken",
                "AuthenticationLayer or GuardLayer",
            ),
            (
                "/maybe-token",
                "VerifiedToken",
                "AuthenticationLayer or GuardLayer",
            ),
            (
                "/caller",
                "Caller",
                "GuardLayer, AuthenticationLayer or PeerIdentityLayer",
            ),
            ("/peer", "PeerIdentity", "PeerIdentityLayer or GuardLayer"),
            ("/decision", "Decision", "AuthorizationLayer or GuardLayer"),
            (
                "/check",
                "PolicyCheck",
                "GuardLayer or AuthorizationLayer with policies",
            ),
        ];
        for (path, extractor, layers) in needs {
            let (status, detail) = answer(app(), path).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert_eq!(
                detail,
                format!("the {extractor} extractor needs {layers} on this route")
            );
        }
    }

    #[tokio::test]
    async fn policy_check_behind_a_guard_without_policies_names_the_layer() {
        let keys = KeySet::hmac_secret("k1", b"TEST-ONLY-secret-of-at-least-32-bytes").unwrap();
        let verifier = Verifier::builder()
            .issuer(Issuer::new("https://idp.example", keys).audience("api"))
            .build()
            .unwrap();
        let guard = GuardLayer::builder()
            .tokens(verifier)
            .public("/check")
            .build()
            .unwrap();
        let (status, detail) = answer(app().layer(guard), "/check").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(detail, POLICY_CHECK_NEEDS);
    }
}
