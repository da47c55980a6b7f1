//! The policy index: a request is evaluated only against the policies whose scope matches it.
//!
//! Cedar evaluates a policy as the conjunction `principal-scope && action-scope &&
//! resource-scope && conditions`, left to right with short-circuit (cedar-policy-core's
//! `TemplateBody::condition` and the evaluator's `And`). A scope constraint is `==`, `in`,
//! `is` or `is .. in` between a request variable and entity literals (or linked values),
//! which cannot raise an error: `in` only reads the left side's ancestors and is false for
//! an entity missing from the store. A policy whose scope does not match is therefore false
//! without any error and contributes nothing to the decision, its determining policies or its
//! errors; leaving it out changes none of them.
//!
//! Each policy is filed under one key of its scope: the uid of its `principal ==`/`in`/
//! `is .. in` constraint, else that of its resource constraint, else the uids of its action
//! constraint; policies with none of these (only `is` or unconstrained) match any request
//! as far as the index knows. A request looks up its principal, resource and action with
//! their ancestors (in the store it is evaluated with), and the policies found are then
//! checked against their whole scope exactly as Cedar evaluates it. Linked policies are
//! filed by their linked values (cedar-policy resolves them in the constraint accessors).

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};

use super::cache::Bounded;
use super::reach::Reads;

/// The policies of a set by the keys of their scopes, with what their conditions read.
#[derive(Debug)]
pub(crate) struct PolicyIndex {
    policies: Vec<Indexed>,
    by_principal: HashMap<EntityUid, Vec<usize>>,
    by_resource: HashMap<EntityUid, Vec<usize>>,
    by_action: HashMap<EntityUid, Vec<usize>>,
    /// Policies without an entity in their scope.
    unkeyed: Vec<usize>,
    /// What the conditions of all policies read, for when the whole set is evaluated.
    all_reads: Reads,
    /// The subsets built for recent requests, by the positions of their policies.
    subsets: Bounded<Box<[usize]>, Subset>,
}

/// Some policies of the set, and what their conditions read.
#[derive(Debug)]
pub(crate) struct Subset {
    policies: PolicySet,
    reads: Reads,
}

/// The policies a request is evaluated against, and what their conditions read.
pub(crate) enum Selected<'a> {
    /// Every policy matches (or a subset could not be built).
    Whole(&'a PolicySet, &'a Reads),
    /// The policies that match.
    Part(Arc<Subset>),
}

impl Selected<'_> {
    pub(crate) fn policies(&self) -> &PolicySet {
        match self {
            Self::Whole(policies, _) => policies,
            Self::Part(subset) => &subset.policies,
        }
    }

    pub(crate) fn reads(&self) -> &Reads {
        match self {
            Self::Whole(_, reads) => reads,
            Self::Part(subset) => &subset.reads,
        }
    }
}

#[derive(Debug)]
struct Indexed {
    policy: Policy,
    principal: Scope,
    action: ActionConstraint,
    resource: Scope,
    reads: Reads,
}

/// A principal or resource scope constraint.
#[derive(Debug)]
enum Scope {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(EntityTypeName),
    IsIn(EntityTypeName, EntityUid),
}

impl PolicyIndex {
    pub(crate) fn new(set: &PolicySet) -> Self {
        let mut index = Self {
            policies: Vec::new(),
            by_principal: HashMap::new(),
            by_resource: HashMap::new(),
            by_action: HashMap::new(),
            unkeyed: Vec::new(),
            all_reads: Reads::default(),
            subsets: Bounded::new(),
        };
        let mut literals = Vec::new();
        let policies: Vec<&Policy> = set.policies().collect();
        let reads = Reads::of_each(&policies);
        for (position, (policy, reads)) in policies.into_iter().zip(reads).enumerate() {
            let indexed = Indexed {
                principal: Scope::from(policy.principal_constraint()),
                action: policy.action_constraint(),
                resource: Scope::from(policy.resource_constraint()),
                reads,
                policy: policy.clone(),
            };
            if let Some(uid) = indexed.principal.key() {
                index
                    .by_principal
                    .entry(uid.clone())
                    .or_default()
                    .push(position);
            } else if let Some(uid) = indexed.resource.key() {
                index
                    .by_resource
                    .entry(uid.clone())
                    .or_default()
                    .push(position);
            } else {
                match &indexed.action {
                    ActionConstraint::Any => index.unkeyed.push(position),
                    ActionConstraint::Eq(uid) => {
                        index
                            .by_action
                            .entry(uid.clone())
                            .or_default()
                            .push(position);
                    }
                    // `action in []` matches nothing, and is filed nowhere.
                    ActionConstraint::In(uids) => {
                        for uid in uids {
                            index
                                .by_action
                                .entry(uid.clone())
                                .or_default()
                                .push(position);
                        }
                    }
                }
            }
            literals.extend(indexed.reads.literals.iter().cloned());
            index.all_reads.context |= indexed.reads.context;
            index
                .all_reads
                .context_fields
                .merge(&indexed.reads.context_fields);
            index.policies.push(indexed);
        }
        index.all_reads.literals = literals.into();
        index
    }

    /// The policies whose scope matches a request for `principal`, `action` and `resource`,
    /// whose ancestors are those in `entities`.
    pub(crate) fn select<'a>(
        &'a self,
        full: &'a PolicySet,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Selected<'a> {
        let mut found: Vec<usize> = self.unkeyed.clone();
        for (bucket, uid) in [
            (&self.by_principal, principal),
            (&self.by_resource, resource),
            (&self.by_action, action),
        ] {
            let ancestors = entities.ancestors(uid).into_iter().flatten();
            for key in std::iter::once(uid).chain(ancestors) {
                if let Some(positions) = bucket.get(key) {
                    found.extend_from_slice(positions);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found.retain(|&position| {
            self.policies
                .get(position)
                .is_some_and(|indexed| indexed.matches(principal, action, resource, entities))
        });
        if found.len() == self.policies.len() {
            return Selected::Whole(full, &self.all_reads);
        }
        let found = found.into_boxed_slice();
        if let Some(subset) = self.subsets.get(&found) {
            return Selected::Part(subset);
        }
        let mut policies = PolicySet::new();
        let mut reads = Reads::default();
        let mut literals = Vec::new();
        for indexed in found
            .iter()
            .filter_map(|&position| self.policies.get(position))
        {
            // Only a linked policy cannot be added on its own; then the whole set is
            // evaluated, which decides the same.
            if policies.add(indexed.policy.clone()).is_err() {
                return Selected::Whole(full, &self.all_reads);
            }
            literals.extend(indexed.reads.literals.iter().cloned());
            reads.context |= indexed.reads.context;
            reads.context_fields.merge(&indexed.reads.context_fields);
        }
        reads.literals = literals.into();
        let subset = Arc::new(Subset { policies, reads });
        let weight = found.len();
        self.subsets.insert(found, subset.clone(), weight);
        Selected::Part(subset)
    }

    /// What the conditions of all policies read.
    pub(crate) fn all_reads(&self) -> &Reads {
        &self.all_reads
    }
}

impl Indexed {
    /// Cedar's value of the policy's scope for this request.
    fn matches(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> bool {
        let action_matches = match &self.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(uid) => uid == action,
            ActionConstraint::In(uids) => uids.iter().any(|uid| is_in(action, uid, entities)),
        };
        self.principal.matches(principal, entities)
            && action_matches
            && self.resource.matches(resource, entities)
    }
}

impl Scope {
    fn key(&self) -> Option<&EntityUid> {
        match self {
            Self::Eq(uid) | Self::In(uid) | Self::IsIn(_, uid) => Some(uid),
            Self::Any | Self::Is(_) => None,
        }
    }

    fn matches(&self, uid: &EntityUid, entities: &Entities) -> bool {
        match self {
            Self::Any => true,
            Self::Eq(target) => uid == target,
            Self::In(target) => is_in(uid, target, entities),
            Self::Is(type_name) => uid.type_name() == type_name,
            Self::IsIn(type_name, target) => {
                uid.type_name() == type_name && is_in(uid, target, entities)
            }
        }
    }
}

impl From<PrincipalConstraint> for Scope {
    fn from(constraint: PrincipalConstraint) -> Self {
        match constraint {
            PrincipalConstraint::Any => Self::Any,
            PrincipalConstraint::Eq(uid) => Self::Eq(uid),
            PrincipalConstraint::In(uid) => Self::In(uid),
            PrincipalConstraint::Is(type_name) => Self::Is(type_name),
            PrincipalConstraint::IsIn(type_name, uid) => Self::IsIn(type_name, uid),
        }
    }
}

impl From<ResourceConstraint> for Scope {
    fn from(constraint: ResourceConstraint) -> Self {
        match constraint {
            ResourceConstraint::Any => Self::Any,
            ResourceConstraint::Eq(uid) => Self::Eq(uid),
            ResourceConstraint::In(uid) => Self::In(uid),
            ResourceConstraint::Is(type_name) => Self::Is(type_name),
            ResourceConstraint::IsIn(type_name, uid) => Self::IsIn(type_name, uid),
        }
    }
}

/// Cedar's `uid in target`: equal, or `target` among the ancestors of `uid`'s entity (none
/// when it is not in the store).
fn is_in(uid: &EntityUid, target: &EntityUid, entities: &Entities) -> bool {
    uid == target || entities.is_ancestor_of(target, uid)
}
