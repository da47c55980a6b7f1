//! What a guarded request leaves behind: a `tracing` span, and counters through the
//! `metrics` facade.
//!
//! Counters go through `metrics` rather than `tracing` because that is what Prometheus and
//! OpenTelemetry exporters read directly; with no recorder installed a counter costs an
//! atomic load. The span carries the per-request facts for logs and traces.

use std::time::Instant;

use tracing::Span;
use tracing::field::Empty;

use super::pipeline::Refused;
use crate::caller::Caller;
use crate::policy::{Decision, PolicyId};

/// Counter of decided requests, labelled `decision` = `allow` | `deny`.
pub const DECISIONS_TOTAL: &str = "meshguard_decisions_total";
/// Counter of refused requests, labelled `stage` (see [`Stage`](crate::response::Stage)) and `reason`
/// (the refusal's stable reason, such as `expired` or `no_permit`).
pub const REJECTIONS_TOTAL: &str = "meshguard_rejections_total";

/// The span of one guarded request, at target `meshguard::request`.
pub(crate) fn request_span() -> Span {
    tracing::info_span!(
        target: "meshguard::request",
        "meshguard",
        caller = Empty,
        action = Empty,
        decision = Empty,
        policies = Empty,
        rejected = Empty,
        duration_us = Empty,
    )
}

/// Records an admitted request.
pub(crate) fn admitted(
    span: &Span,
    caller: Option<&Caller>,
    decision: Option<&Decision>,
    started: Instant,
) {
    // The caller's short name first: a decision replaces it with the Cedar principal, as
    // on refused requests, so that one caller looks the same whatever was decided.
    if !span.is_disabled()
        && let Some(name) = caller.and_then(Caller::display_name)
    {
        span.record("caller", name);
    }
    if let Some(decision) = decision {
        metrics::counter!(DECISIONS_TOTAL, "decision" => "allow").increment(1);
        record_decision(span, decision);
    }
    if !span.is_disabled() {
        span.record("duration_us", micros(started));
    }
}

/// Records a refused request, with the denying decision when the policies refused.
pub(crate) fn refused(span: &Span, refused: &Refused, started: Instant) {
    let refusal = &refused.refusal;
    if let Some(decision) = &refused.decision {
        metrics::counter!(DECISIONS_TOTAL, "decision" => "deny").increment(1);
        record_decision(span, decision);
    }
    metrics::counter!(
        REJECTIONS_TOTAL,
        "stage" => refusal.stage().as_str(),
        "reason" => refusal.reason(),
    )
    .increment(1);
    if !span.is_disabled() {
        span.record("rejected", refusal.reason());
        span.record("duration_us", micros(started));
        tracing::info!(
            target: "meshguard::request",
            parent: span,
            stage = refusal.stage().as_str(),
            reason = refusal.reason(),
            status = refusal.status().as_u16(),
            "request refused"
        );
    }
}

fn record_decision(span: &Span, decision: &Decision) {
    if span.is_disabled() {
        return;
    }
    let details = decision.details();
    span.record(
        "decision",
        if decision.is_allow() { "allow" } else { "deny" },
    );
    if let Some(action) = details.action() {
        span.record("action", tracing::field::display(action));
    }
    if let Some(principal) = details.principal() {
        span.record("caller", tracing::field::display(principal));
    }
    let ids: Vec<&str> = details.policy_ids().iter().map(PolicyId::as_str).collect();
    span.record("policies", ids.join(",").as_str());
}

fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}
