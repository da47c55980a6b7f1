//! Which entities an evaluation can read: the entity literals of a policy's conditions that
//! Cedar may dereference, whether the conditions read the context, and the entity uids held
//! in Cedar values (attributes, tags, context fields).
//!
//! Cedar reads an entity from the store in exactly three ways: an attribute or tag access
//! (`e.a`, `e has a`, `e.getTag(t)`, `e.hasTag(t)`) and the left side of `in`, which reads the
//! entity's ancestors. The entity being read is a value of the expression, and a value of
//! entity type can only come from the request's principal, action or resource, from the
//! context, from an entity literal in a policy, or from an attribute or tag of an entity
//! already read (Cedar has no expression that yields an entity's parents). The entity slice
//! of a request (see `slice.rs`) is built from exactly those sources; this module finds them.

use std::collections::BTreeSet;
use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, EvalResult, Policy};
use cedar_policy_core::ast;
use serde_json::Value;

/// What a policy's `when`/`unless` conditions can read besides the request's principal,
/// action and resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reads {
    /// Entity literals that may be dereferenced. Literals that Cedar only compares (`==`,
    /// `!=`) or tests membership against (the right side of `in`, `is .. in`) are left out:
    /// Cedar never looks them up in the store.
    pub(crate) literals: Box<[EntityUid]>,
    /// Whether the conditions mention `context`.
    pub(crate) context: bool,
    /// Which fields of the context the conditions can read.
    pub(crate) context_fields: ContextFields,
}

/// The fields of the context that conditions can read: Cedar reads a field of a record only
/// through `context.f` and `context has f` (`context has a.b` is `context has a &&
/// context.a has b`); any other use of `context` (compared, put in a set or record, passed
/// to a method) reads all of it. The decision cache keys on what this names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextFields {
    /// Only these fields, each through an access or a `has` test.
    Named(BTreeSet<String>),
    /// The whole context.
    Whole,
}

impl Default for ContextFields {
    fn default() -> Self {
        Self::Named(BTreeSet::new())
    }
}

impl ContextFields {
    /// Adds what `other` reads.
    pub(crate) fn merge(&mut self, other: &Self) {
        match (&mut *self, other) {
            (Self::Whole, _) => {}
            (_, Self::Whole) => *self = Self::Whole,
            (Self::Named(mine), Self::Named(theirs)) => mine.extend(theirs.iter().cloned()),
        }
    }
}

impl Reads {
    /// What `policy`'s conditions can read. The scope is not looked at: its literals are
    /// only compared or on the right of `in`, and its variables are always in the slice.
    pub(crate) fn of(policy: &Policy) -> Self {
        if !policy.has_non_scope_constraint() {
            return Self::default();
        }
        let walked = policy.to_json().ok().and_then(|json| {
            let mut walk = Walk::default();
            let conditions = json.get("conditions")?;
            walk.expression(conditions)?;
            walk.context = mentions_context(conditions);
            let mut fields = BTreeSet::new();
            let named = context_fields(conditions, &mut fields);
            Some((
                walk,
                if named {
                    ContextFields::Named(fields)
                } else {
                    ContextFields::Whole
                },
            ))
        });
        match walked {
            Some((walk, context_fields)) => Self {
                literals: walk.literals.into(),
                context: walk.context,
                context_fields,
            },
            // A policy the walk cannot read is taken to read every literal it holds and the
            // context: more entities in the slice, never fewer.
            None => Self::everything(policy),
        }
    }
}

/// Stack for [`Reads::of_each`]. Converting a policy to its JSON form and walking it recurse
/// once per level of the expression, which the loader bounds (`MAX_EXPRESSION_HEIGHT`) but
/// which needs more than the 2 MiB a tokio worker or a spawned thread has; reserved address
/// space only, pages are touched as deep as the deepest policy goes.
const ANALYSIS_STACK: usize = 256 * 1024 * 1024;

impl Reads {
    /// [`Reads::of`] for each policy, in order, on a thread with a stack for the deepest
    /// policy the loader accepts. When that thread cannot be started or fails, every policy
    /// is taken to read all its literals and the context: more entities in a slice, never
    /// fewer.
    pub(crate) fn of_each(policies: &[&Policy]) -> Vec<Self> {
        let analysed = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("meshguard-policy-reads".into())
                .stack_size(ANALYSIS_STACK)
                .spawn_scoped(scope, || policies.iter().map(|p| Self::of(p)).collect())
                .ok()
                .and_then(|thread| thread.join().ok())
        });
        analysed.unwrap_or_else(|| policies.iter().map(|p| Self::everything(p)).collect())
    }

    fn everything(policy: &Policy) -> Self {
        Self {
            literals: policy.entity_literals().into(),
            context: true,
            context_fields: ContextFields::Whole,
        }
    }
}

/// A walk over the JSON form (EST) of a policy's conditions.
#[derive(Default)]
struct Walk {
    literals: Vec<EntityUid>,
    context: bool,
}

impl Walk {
    /// Walks any part of an expression; `None` when a literal cannot be read back.
    fn expression(&mut self, node: &Value) -> Option<()> {
        match node {
            Value::Array(items) => {
                for item in items {
                    self.expression(item)?;
                }
            }
            Value::Object(fields) => {
                for (key, inner) in fields {
                    match (key.as_str(), inner) {
                        ("Value", value) => self.value(value)?,
                        ("in" | "==" | "!=", Value::Object(operands))
                            if operands.contains_key("left") && operands.contains_key("right") =>
                        {
                            let symmetric = key != "in";
                            for (side, operand) in operands {
                                let compared = side == "right" || symmetric;
                                if !(compared && only_literals(operand)) {
                                    self.expression(operand)?;
                                }
                            }
                        }
                        ("is", Value::Object(operands))
                            if operands.contains_key("left")
                                && operands.contains_key("entity_type") =>
                        {
                            for (side, operand) in operands {
                                if !(side == "in" && only_literals(operand)) {
                                    self.expression(operand)?;
                                }
                            }
                        }
                        _ => self.expression(inner)?,
                    }
                }
            }
            _ => {}
        }
        Some(())
    }

    /// Collects the entity uids of a literal value (`__entity` escapes at any depth).
    fn value(&mut self, value: &Value) -> Option<()> {
        match value {
            Value::Array(items) => {
                for item in items {
                    self.value(item)?;
                }
            }
            Value::Object(fields) => match fields.get("__entity") {
                Some(escape) if fields.len() == 1 => self.literals.push(uid_of(escape)?),
                _ => {
                    for inner in fields.values() {
                        self.value(inner)?;
                    }
                }
            },
            _ => {}
        }
        Some(())
    }
}

/// Whether `{"Var": "context"}` appears anywhere (also inside record literals, where a key
/// may be spelled like an operator: a false positive only adds entities).
fn mentions_context(node: &Value) -> bool {
    match node {
        Value::Array(items) => items.iter().any(mentions_context),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, inner)| (key == "Var" && inner == "context") || mentions_context(inner)),
        _ => false,
    }
}

/// Collects into `out` the fields read by `context.f` and `context has f` (in the JSON form:
/// `{".": {"left": {"Var": "context"}, "attr": "f"}}`, and `"has"` alike, whose `"attr"`
/// may also be a path `["f", ..]`); false when
/// `context` appears in any other position. A record literal cannot take that shape (its
/// values are expressions, never bare strings or arrays), so a false answer is the only mistake the
/// JSON form allows, and it only makes the key wider.
fn context_fields(node: &Value, out: &mut BTreeSet<String>) -> bool {
    match node {
        Value::Array(items) => items.iter().all(|item| context_fields(item, out)),
        Value::Object(fields) => {
            if let Some(field) = field_of_context(fields) {
                out.insert(field.to_owned());
                return true;
            }
            fields.iter().all(|(key, inner)| {
                !(key == "Var" && inner == "context") && context_fields(inner, out)
            })
        }
        _ => true,
    }
}

/// The field of `context.f` or `context has f`, when `fields` is one of them.
fn field_of_context(fields: &serde_json::Map<String, Value>) -> Option<&str> {
    let mut entries = fields.iter();
    let (operator, operands) = entries.next()?;
    if entries.next().is_some() || !(operator == "." || operator == "has") {
        return None;
    }
    let operands = operands.as_object()?;
    let is_context = operands
        .get("left")?
        .as_object()
        .is_some_and(|left| left.len() == 1 && left.get("Var").is_some_and(|v| v == "context"));
    (operands.len() == 2 && is_context).then_some(())?;
    // `context has a.b` keeps its path (`["a", "b"]`); its first step is the field.
    match operands.get("attr")? {
        Value::String(field) => Some(field),
        Value::Array(path) if operator == "has" => path.first()?.as_str(),
        _ => None,
    }
}

/// Whether an operand is a literal, or a set of literals, that Cedar only compares.
fn only_literals(operand: &Value) -> bool {
    let is_literal = |node: &Value| {
        node.as_object()
            .is_some_and(|f| f.len() == 1 && f.contains_key("Value"))
    };
    match operand.get("Set") {
        Some(Value::Array(items)) if operand.as_object().is_some_and(|f| f.len() == 1) => {
            items.iter().all(is_literal)
        }
        _ => is_literal(operand),
    }
}

fn uid_of(escape: &Value) -> Option<EntityUid> {
    let type_name = EntityTypeName::from_str(escape.get("type")?.as_str()?).ok()?;
    let id = escape.get("id")?.as_str()?;
    Some(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

/// Pushes every entity uid held in `value` (in sets and records at any depth).
pub(crate) fn uids_in(value: &EvalResult, out: &mut Vec<EntityUid>) {
    match value {
        EvalResult::EntityUid(uid) => out.push(uid.clone()),
        EvalResult::Set(set) => set.iter().for_each(|item| uids_in(item, out)),
        EvalResult::Record(record) => record.iter().for_each(|(_, item)| uids_in(item, out)),
        EvalResult::Bool(_)
        | EvalResult::Long(_)
        | EvalResult::String(_)
        | EvalResult::ExtensionValue(_) => {}
    }
}

/// The entity uids an entity's attributes and tags hold.
pub(crate) fn entity_refs(entity: &cedar_policy::Entity) -> Vec<EntityUid> {
    let mut out = Vec::new();
    for (_, value) in entity.attrs().chain(entity.tags()) {
        if let Ok(value) = value {
            uids_in(&value, &mut out);
        }
    }
    out
}

/// The entity uids a context holds, read from its Cedar values in place (converting each
/// field to an expression and back, as iterating a `cedar_policy::Context` does, cost more
/// than the rest of the slice for an HTTP context).
pub(crate) fn context_refs(context: &cedar_policy::Context) -> Vec<EntityUid> {
    let mut out = Vec::new();
    match AsRef::<ast::Context>::as_ref(context) {
        ast::Context::Value(fields) => fields.values().for_each(|v| value_uids(v, &mut out)),
        // Only partial evaluation makes residual contexts; read them the slow way.
        ast::Context::RestrictedResidual(_) => {
            for (key, _) in context.clone() {
                if let Some(value) = context.get(&key) {
                    uids_in(&value, &mut out);
                }
            }
        }
    }
    out
}

/// Pushes every entity uid held in a Cedar value (in sets and records at any depth; a
/// context's depth is bounded when it is built).
fn value_uids(value: &ast::Value, out: &mut Vec<EntityUid>) {
    match value.value_kind() {
        ast::ValueKind::Lit(ast::Literal::EntityUID(uid)) => {
            out.push(EntityUid::from(uid.as_ref().clone()));
        }
        ast::ValueKind::Set(set) => set.iter().for_each(|item| value_uids(item, out)),
        ast::ValueKind::Record(fields) => fields.values().for_each(|item| value_uids(item, out)),
        ast::ValueKind::Lit(_) | ast::ValueKind::ExtensionValue(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(text: &str) -> (Vec<String>, bool) {
        let policy = Policy::from_str(text).unwrap();
        let reads = Reads::of(&policy);
        let mut literals: Vec<String> = reads.literals.iter().map(ToString::to_string).collect();
        literals.sort();
        (literals, reads.context)
    }

    #[test]
    fn compared_literals_are_not_reads_and_dereferenced_ones_are() {
        let (literals, context) = reads(
            r#"permit(principal in Group::"scope", action, resource) when {
                principal in [Group::"a", Group::"b"] && resource == Doc::"c" &&
                User::"d".level > 1 && [User::"e"].contains(principal) &&
                principal is User in Group::"f" && Group::"g" in Group::"h"
            };"#,
        );
        assert_eq!(literals, [r#"Group::"g""#, r#"User::"d""#, r#"User::"e""#]);
        assert!(!context);
    }

    #[test]
    fn context_is_seen_at_any_depth() {
        assert!(reads(r#"permit(principal, action, resource) unless { if true then {a: context.x}.a else false };"#).1);
        assert!(!reads("permit(principal, action, resource);").1);
    }

    #[test]
    fn context_refs_are_the_uids_cedars_own_values_hold() {
        let json = serde_json::json!({
            "owner": {"__entity": {"type": "User", "id": "alice"}},
            "team": [{"__entity": {"type": "Team", "id": "t"}}, 3, "x"],
            "deep": {"a": {"b": [{"__entity": {"type": "Doc", "id": "d"}}]}},
            "ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}},
            "n": 1,
        });
        let context = cedar_policy::Context::from_json_value(json, None).unwrap();
        let mut slow = Vec::new();
        for (key, _) in context.clone() {
            uids_in(&context.get(&key).unwrap(), &mut slow);
        }
        let mut fast = context_refs(&context);
        slow.sort();
        fast.sort();
        assert_eq!(fast, slow);
        assert_eq!(fast.len(), 3);
    }

    fn fields(text: &str) -> ContextFields {
        Reads::of(&Policy::from_str(text).unwrap()).context_fields
    }

    #[test]
    fn context_fields_are_named_only_when_read_through_access_or_has() {
        let named =
            |names: &[&str]| ContextFields::Named(names.iter().map(|n| (*n).to_owned()).collect());
        assert_eq!(fields("permit(principal, action, resource);"), named(&[]));
        assert_eq!(
            fields(
                r#"permit(principal, action, resource) when {
                    context.scopes.contains("a") && context has peer.id && context.peer.id == "x"
                };"#
            ),
            named(&["peer", "scopes"])
        );
        for whole in [
            r#"permit(principal, action, resource) when { context == {} };"#,
            r#"permit(principal, action, resource) when { {a: context}.a has time };"#,
            r#"permit(principal, action, resource) when { [context].contains({x: 1}) };"#,
            r#"permit(principal, action, resource) when { context["time"] == 1 && context.isEmpty() };"#,
        ] {
            assert_eq!(fields(whole), ContextFields::Whole, "{whole}");
        }
        // A record literal shaped like an access is still a record holding the context.
        assert_eq!(
            fields(
                r#"permit(principal, action, resource) when { {".": {left: context, attr: "x"}} has x };"#
            ),
            ContextFields::Whole
        );
    }
}
