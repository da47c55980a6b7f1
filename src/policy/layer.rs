//! [`AuthorizationLayer`]: decides each request with the Cedar policies, as the caller the
//! layers in front of it identified, and puts the [`Decision`] into the request extensions.
//!
//! # Example
//!
//! ```
//! use meshguard::policy::{AuthorizationLayer, HttpMapping, PolicyEngine, PolicySource};
//!
//! let engine = PolicyEngine::builder(PolicySource::text(
//!     r#"permit(principal, action == Action::"GET /orders/{id}", resource);"#,
//! ))
//! .build()?;
//! let layer = AuthorizationLayer::new(engine, HttpMapping::conventions("orders"));
//! // Behind an identity layer; prefer `meshguard::guard::GuardLayer`, which keeps the order.
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::Request;

use super::decision::Decision;
use super::engine::PolicyEngine;
use super::http::{HttpInput, HttpMapping, MappingError};
use super::values::EntityUid;
use crate::caller::Caller;
use crate::token::Clock;

/// Decides requests with a [`PolicyEngine`] in front of a service (its tower `Layer` makes
/// a [`Guard`](crate::guard::Guard) with this check alone).
///
/// The caller is taken from the request extensions ([`Caller`], or the
/// [`VerifiedToken`](crate::token::VerifiedToken) and
/// [`PeerIdentity`](crate::peer::PeerIdentity) that the identity layers put there); the
/// action, resource and context come from the [`HttpMapping`], with axum's matched route
/// template when there is one. A denial answers 403 (gRPC PERMISSION_DENIED) without a
/// bearer challenge; a request that cannot be mapped answers 400; a request with no caller
/// is refused (401 when it brought no credentials). Cloning is cheap.
#[derive(Clone, Debug)]
pub struct AuthorizationLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    engine: PolicyEngine,
    mapping: HttpMapping,
    clock: Option<Arc<dyn Clock>>,
}

impl AuthorizationLayer {
    /// Decides with `engine`, mapping requests with `mapping`.
    pub fn new(engine: PolicyEngine, mapping: HttpMapping) -> Self {
        Self {
            config: Arc::new(Config {
                engine,
                mapping,
                clock: None,
            }),
        }
    }

    /// The clock giving `context.time`. Defaults to the system clock.
    #[must_use]
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        config.clock = Some(clock);
        Self {
            config: Arc::new(config),
        }
    }

    /// The engine deciding the requests.
    #[must_use]
    pub fn engine(&self) -> &PolicyEngine {
        &self.config.engine
    }

    /// Decides `request` for `caller`: the decision, allowing or denying, or why the
    /// request cannot be mapped to a policy request.
    pub(crate) fn decide<B>(
        &self,
        request: &Request<B>,
        caller: &Caller,
        template: Option<&str>,
        action: Option<&EntityUid>,
        client_ip: Option<IpAddr>,
    ) -> Result<Decision, MappingError> {
        let config = &*self.config;
        let now = match &config.clock {
            Some(clock) => {
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(clock.unix_seconds()).unwrap_or(0))
            }
            None => SystemTime::now(),
        };
        let routed = crate::route::routed_template(request.extensions());
        let mut input = HttpInput::from_request(request, now);
        if let Some(template) = routed.as_deref().or(template) {
            input = input.with_route(template);
        }
        if let Some(ip) = client_ip {
            input = input.with_client_ip(ip);
        }
        let mapped = config.mapping.map(&input)?;
        let mapped = match action {
            Some(action) => mapped.with_action(action.clone()),
            None => mapped,
        };
        let (action, resource, context) = mapped.into_parts();
        Ok(config.engine.authorize(caller, &action, &resource, context))
    }
}
