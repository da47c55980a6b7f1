//! The result of deciding one request, and the audit record it renders.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use super::error::DecisionError;
use super::values::{EntityUid, PolicyId};
use crate::response::{Refusal, Stage};

/// The decision on one request: allow or deny, with why.
///
/// # Example
/// ```
/// use meshguard::policy::{Decision, EntityUid, PolicyEngine, PolicySource, Request};
///
/// let engine = PolicyEngine::builder(PolicySource::text(
///     r#"@id("readers") permit(principal, action == Action::"read", resource);"#,
/// ))
/// .build()?;
/// let request = Request::new(
///     EntityUid::new("User", "alice")?,
///     EntityUid::new("Action", "read")?,
///     EntityUid::new("Doc", "d1")?,
/// );
/// match engine.authorize_request(request) {
///     Decision::Allow(details) => assert_eq!(details.policy_ids()[0], "readers"),
///     Decision::Deny(details) => panic!("denied: {:?}", details.cause()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub enum Decision {
    /// The request is allowed.
    Allow(Details),
    /// The request is denied.
    Deny(Details),
}

impl Decision {
    /// Whether the decision is [`Decision::Allow`].
    #[must_use]
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// The details, whichever the decision.
    #[must_use]
    pub fn details(&self) -> &Details {
        match self {
            Self::Allow(details) | Self::Deny(details) => details,
        }
    }

    /// The determining policies, sorted by id: the `permit`s that matched for an allow, the
    /// `forbid`s that matched for a deny (none when nothing matched). When an error denies a
    /// request Cedar would have allowed ([`DenyCause::Error`]), they are the `permit`s that
    /// matched.
    #[must_use]
    pub fn policy_ids(&self) -> &[PolicyId] {
        self.details().policy_ids()
    }

    /// Everything that went wrong while deciding.
    #[must_use]
    pub fn errors(&self) -> &[DecisionError] {
        self.details().errors()
    }

    /// This decision answered from the engine's decision cache, taking `elapsed`.
    pub(crate) fn cached(mut self, elapsed: Duration) -> Self {
        let (Self::Allow(details) | Self::Deny(details)) = &mut self;
        details.cached = true;
        details.elapsed = elapsed;
        self
    }

    /// The structured audit record of this decision.
    #[must_use]
    pub fn audit_record(&self) -> AuditRecord<'_> {
        AuditRecord { decision: self }
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyCause {
    /// No `permit` policy matched (Cedar's default deny).
    NoPermit,
    /// A `forbid` policy matched.
    Forbidden,
    /// Something failed (a policy's evaluation, the request's shape, its entities); the
    /// engine fails closed.
    Error,
}

impl DenyCause {
    /// A short, stable, machine-readable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoPermit => "no_permit",
            Self::Forbidden => "forbidden",
            Self::Error => "error",
        }
    }

    /// How a request denied for this cause is answered: 403 (gRPC PERMISSION_DENIED)
    /// without a bearer challenge; the reason is [`as_str`](Self::as_str).
    #[must_use]
    pub fn refusal(self) -> Refusal {
        Refusal::new(
            Stage::Policy,
            StatusCode::FORBIDDEN,
            self.as_str(),
            "the request is not allowed",
        )
    }
}

/// What was decided, why, by which policy-set generation, and how long it took.
#[derive(Debug, Clone)]
pub struct Details {
    pub(crate) principal: Option<EntityUid>,
    pub(crate) action: Option<EntityUid>,
    pub(crate) resource: Option<EntityUid>,
    pub(crate) policy_ids: Vec<PolicyId>,
    pub(crate) errors: Vec<DecisionError>,
    pub(crate) cause: Option<DenyCause>,
    pub(crate) generation: u64,
    pub(crate) elapsed: Duration,
    pub(crate) shadow: Option<Shadow>,
    pub(crate) cached: bool,
}

impl Details {
    /// The principal of the request, when it could be determined.
    #[must_use]
    pub fn principal(&self) -> Option<&EntityUid> {
        self.principal.as_ref()
    }

    /// The action of the request.
    #[must_use]
    pub fn action(&self) -> Option<&EntityUid> {
        self.action.as_ref()
    }

    /// The resource of the request.
    #[must_use]
    pub fn resource(&self) -> Option<&EntityUid> {
        self.resource.as_ref()
    }

    /// The determining policies, sorted by id.
    #[must_use]
    pub fn policy_ids(&self) -> &[PolicyId] {
        &self.policy_ids
    }

    /// Everything that went wrong while deciding.
    #[must_use]
    pub fn errors(&self) -> &[DecisionError] {
        &self.errors
    }

    /// Why the request was denied; `None` for an allow.
    #[must_use]
    pub fn cause(&self) -> Option<DenyCause> {
        self.cause
    }

    /// The generation of the policy set that decided: 1 for the set loaded at build time,
    /// then one more for each successful reload.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long the decision took; for a decision from the cache, how long the lookup took.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether the decision came from the engine's decision cache
    /// ([`PolicyEngineBuilder::decision_cache`](super::PolicyEngineBuilder::decision_cache)):
    /// an earlier evaluation of a request with the same inputs under the same policy-set
    /// generation, whose decision, determining policies, errors and shadow result it
    /// repeats.
    #[must_use]
    pub fn is_cached(&self) -> bool {
        self.cached
    }

    /// What the shadow (candidate) policy set decided, when one is configured.
    #[must_use]
    pub fn shadow(&self) -> Option<&Shadow> {
        self.shadow.as_ref()
    }
}

/// The candidate policy set's decision on a request; it is logged, never enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    pub(crate) allowed: bool,
    pub(crate) policy_ids: Vec<PolicyId>,
    pub(crate) errors: usize,
}

impl Shadow {
    /// Whether the candidate set would have allowed the request.
    #[must_use]
    pub fn would_allow(&self) -> bool {
        self.allowed
    }

    /// The candidate set's determining policies, sorted by id.
    #[must_use]
    pub fn policy_ids(&self) -> &[PolicyId] {
        &self.policy_ids
    }

    /// How many policies of the candidate set failed to evaluate.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.errors
    }
}

/// The audit view of a [`Decision`]: principal, action, resource, decision, policy ids,
/// errors, duration, policy-set generation and whether the decision came from the cache. The engine emits it through `tracing` at
/// target `meshguard::policy::audit` (info for allows, warn for denies); it can also be
/// rendered as JSON for an audit sink of your own.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord<'a> {
    decision: &'a Decision,
}

impl AuditRecord<'_> {
    /// The record as a JSON object.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let details = self.decision.details();
        let text = |uid: Option<&EntityUid>| uid.map(ToString::to_string);
        let mut record = json!({
            "decision": if self.decision.is_allow() { "allow" } else { "deny" },
            "principal": text(details.principal()),
            "action": text(details.action()),
            "resource": text(details.resource()),
            "policy_ids": details.policy_ids().iter().map(PolicyId::as_str).collect::<Vec<_>>(),
            "errors": details.errors().iter().map(|e| json!({"reason": e.reason(), "message": e.to_string()})).collect::<Vec<_>>(),
            "cause": details.cause().map(DenyCause::as_str),
            "generation": details.generation(),
            "duration_us": u64::try_from(details.elapsed().as_micros()).unwrap_or(u64::MAX),
            "cached": details.is_cached(),
        });
        if let (Some(shadow), Some(object)) = (details.shadow(), record.as_object_mut()) {
            object.insert(
                "shadow".to_owned(),
                json!({
                    "decision": if shadow.would_allow() { "allow" } else { "deny" },
                    "policy_ids": shadow.policy_ids().iter().map(PolicyId::as_str).collect::<Vec<_>>(),
                    "errors": shadow.error_count(),
                }),
            );
        }
        record
    }

    /// Emits the record through `tracing` at target `meshguard::policy::audit`.
    pub fn emit(&self) {
        let details = self.decision.details();
        if self.decision.is_allow() {
            tracing::info!(
                target: "meshguard::policy::audit",
                decision = "allow",
                principal = details.principal().map(tracing::field::display),
                action = details.action().map(tracing::field::display),
                resource = details.resource().map(tracing::field::display),
                policy_ids = %Joined(details.policy_ids()),
                errors = details.errors().len(),
                generation = details.generation(),
                duration_us = details.elapsed().as_micros(),
                cached = details.is_cached(),
                "policy decision"
            );
        } else {
            tracing::warn!(
                target: "meshguard::policy::audit",
                decision = "deny",
                cause = details.cause().map(DenyCause::as_str),
                principal = details.principal().map(tracing::field::display),
                action = details.action().map(tracing::field::display),
                resource = details.resource().map(tracing::field::display),
                policy_ids = %Joined(details.policy_ids()),
                errors = %JoinedErrors(details.errors()),
                generation = details.generation(),
                duration_us = details.elapsed().as_micros(),
                cached = details.is_cached(),
                "policy decision"
            );
        }
    }
}

struct Joined<'a>(&'a [PolicyId]);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(id.as_str())?;
        }
        Ok(())
    }
}

struct JoinedErrors<'a>(&'a [DecisionError]);

impl std::fmt::Display for JoinedErrors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
