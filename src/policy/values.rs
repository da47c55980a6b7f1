//! The values a request is made of: entity uids, entities, contexts and policy ids, as thin
//! wrappers over cedar-policy's types so that a cedar-policy upgrade does not break users.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use cedar_policy::RestrictedExpression;
use serde_json::{Map, Value};

use super::MAX_SOURCE_BYTES;
use super::direct;
use super::error::EntityError;

/// Nesting depth allowed in JSON values turned into Cedar values.
pub(super) const MAX_DEPTH: usize = 32;

/// A Cedar entity uid such as `User::"alice"` or `Action::"GET /orders/{id}"`.
///
/// # Example
/// ```
/// use meshguard::policy::EntityUid;
///
/// let alice: EntityUid = r#"User::"alice""#.parse()?;
/// assert_eq!(alice, EntityUid::new("User", "alice")?);
/// assert_eq!(alice.type_name(), "User");
/// assert_eq!(alice.id(), "alice");
/// # Ok::<(), meshguard::policy::EntityError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityUid(cedar_policy::EntityUid);

impl EntityUid {
    /// Builds a uid from a type name (such as `User` or `App::User`) and any id string.
    ///
    /// # Errors
    /// [`EntityError::InvalidUid`] when `type_name` is not a valid Cedar type name.
    pub fn new(type_name: &str, id: &str) -> Result<Self, EntityError> {
        let name = cedar_policy::EntityTypeName::from_str(type_name)
            .map_err(|e| invalid_uid(type_name, &e.to_string()))?;
        Ok(Self(cedar_policy::EntityUid::from_type_name_and_id(
            name,
            cedar_policy::EntityId::new(id),
        )))
    }

    /// A uid of a type name parsed once beforehand: Cedar's parser costs microseconds, too
    /// much to pay for a constant name on every request.
    #[must_use]
    pub(crate) fn of_type(name: &cedar_policy::EntityTypeName, id: &str) -> Self {
        Self(cedar_policy::EntityUid::from_type_name_and_id(
            name.clone(),
            cedar_policy::EntityId::new(id),
        ))
    }

    /// Wraps a cedar-policy uid (public as [`cedar::from_entity_uid`](super::cedar::from_entity_uid)).
    #[must_use]
    pub(crate) fn from_cedar(uid: cedar_policy::EntityUid) -> Self {
        Self(uid)
    }

    /// The cedar-policy uid (public as [`cedar::entity_uid`](super::cedar::entity_uid)).
    #[must_use]
    pub(crate) fn as_cedar(&self) -> &cedar_policy::EntityUid {
        &self.0
    }

    /// The type name, such as `User`.
    #[must_use]
    pub fn type_name(&self) -> String {
        self.0.type_name().to_string()
    }

    /// The id, unescaped.
    #[must_use]
    pub fn id(&self) -> &str {
        self.0.id().unescaped()
    }
}

impl FromStr for EntityUid {
    type Err = EntityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        cedar_policy::EntityUid::from_str(s)
            .map(Self)
            .map_err(|e| invalid_uid(s, &e.to_string()))
    }
}

impl fmt::Display for EntityUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of a policy: its `@id("...")` annotation, else a name derived from its source and
/// position (see [`PolicySource`](super::PolicySource)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(cedar_policy::PolicyId);

impl PolicyId {
    pub(crate) fn from_cedar(id: cedar_policy::PolicyId) -> Self {
        Self(id)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for PolicyId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PolicyId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One entity supplied with a request: a uid, attributes and parents.
///
/// # Example
/// ```
/// use meshguard::policy::{Entity, EntityUid};
/// use serde_json::json;
///
/// let doc = Entity::builder(EntityUid::new("Document", "d1")?)
///     .attribute("owner", &json!({"__entity": {"type": "User", "id": "alice"}}))?
///     .attribute("public", &json!(false))?
///     .parent(EntityUid::new("Folder", "shared")?)
///     .build()?;
/// assert_eq!(doc.uid().id(), "d1");
/// # Ok::<(), meshguard::policy::EntityError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Entity(cedar_policy::Entity);

impl Entity {
    /// Starts an entity with the given uid, no attributes and no parents.
    #[must_use]
    pub fn builder(uid: EntityUid) -> EntityBuilder {
        EntityBuilder {
            uid,
            attributes: HashMap::new(),
            parents: HashSet::new(),
        }
    }

    /// Wraps a cedar-policy entity (public as [`cedar::from_entity`](super::cedar::from_entity)).
    #[must_use]
    pub(crate) fn from_cedar(entity: cedar_policy::Entity) -> Self {
        Self(entity)
    }

    /// The cedar-policy entity (public as [`cedar::entity`](super::cedar::entity)).
    #[must_use]
    pub(crate) fn as_cedar(&self) -> &cedar_policy::Entity {
        &self.0
    }

    /// The entity's uid.
    #[must_use]
    pub fn uid(&self) -> EntityUid {
        EntityUid(self.0.uid())
    }

    pub(crate) fn into_cedar(self) -> cedar_policy::Entity {
        self.0
    }
}

/// Builds an [`Entity`]; made by [`Entity::builder`].
#[derive(Debug)]
pub struct EntityBuilder {
    uid: EntityUid,
    attributes: HashMap<String, RestrictedExpression>,
    parents: HashSet<cedar_policy::EntityUid>,
}

impl EntityBuilder {
    /// Sets an attribute from a JSON value: strings, booleans, integers, arrays (sets) and
    /// objects (records); `{"__entity": {"type": .., "id": ..}}` is an entity reference and
    /// `{"__extn": {"fn": .., "arg": ..}}` an extension value such as `ip` or `decimal`.
    ///
    /// # Errors
    /// [`EntityError::UnsupportedValue`] for floats, `null`, integers outside `i64`, malformed
    /// escapes, or nesting deeper than 32.
    pub fn attribute(mut self, name: &str, value: &Value) -> Result<Self, EntityError> {
        let expression = restricted(value, name, 0)?;
        self.attributes.insert(name.to_owned(), expression);
        Ok(self)
    }

    /// Sets an attribute from a cedar-policy expression (public as
    /// [`cedar::attribute`](super::cedar::attribute)).
    #[must_use]
    pub(crate) fn cedar_attribute(mut self, name: &str, value: RestrictedExpression) -> Self {
        self.attributes.insert(name.to_owned(), value);
        self
    }

    /// Adds a parent: the entity is then `in` that parent (and in its ancestors).
    #[must_use]
    pub fn parent(mut self, parent: EntityUid) -> Self {
        self.parents.insert(parent.0);
        self
    }

    /// Builds the entity.
    ///
    /// # Errors
    /// [`EntityError::InvalidEntity`] when an extension value does not evaluate (such as
    /// `ip("not an ip")`).
    pub fn build(self) -> Result<Entity, EntityError> {
        cedar_policy::Entity::new(self.uid.0, self.attributes, self.parents)
            .map(Entity)
            .map_err(|e| EntityError::InvalidEntity {
                message: e.to_string(),
            })
    }
}

/// Entities supplied with one request, on top of the engine's static entities.
///
/// They are validated against the schema (when there is one) as the request is decided, and
/// must not contradict a static entity of the same uid.
#[derive(Debug, Clone, Default)]
pub struct Entities {
    built: Vec<cedar_policy::Entity>,
    json: Vec<Value>,
}

impl Entities {
    /// No entities.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Entities from Cedar's entities JSON format (an array of `{"uid", "attrs", "parents"}`).
    /// They are parsed against the schema when the request is decided, so the schema's types
    /// apply (an `ipaddr` attribute may be a plain string).
    ///
    /// # Errors
    /// [`EntityError::InvalidEntity`] when the text is not a JSON array or nests more than
    /// [`MAX_DATA_NESTING`](super::MAX_DATA_NESTING) levels deep,
    /// [`EntityError::TooLarge`] past [`MAX_SOURCE_BYTES`](super::MAX_SOURCE_BYTES).
    pub fn from_json_str(json: &str) -> Result<Self, EntityError> {
        if json.len() > MAX_SOURCE_BYTES {
            return Err(EntityError::TooLarge {
                size: json.len(),
                limit: MAX_SOURCE_BYTES,
            });
        }
        // The same bound as static entities, before serde_json and Cedar recurse into it.
        super::nesting::check(json, super::nesting::Syntax::Json).map_err(|found| {
            EntityError::InvalidEntity {
                message: format!(
                    "nests more than {} levels deep at line {}, column {}",
                    found.limit, found.line, found.column
                ),
            }
        })?;
        let value: Value = serde_json::from_str(json).map_err(|e| EntityError::InvalidEntity {
            message: e.to_string(),
        })?;
        Self::from_json_value(value)
    }

    /// Entities from an already-parsed entities JSON array.
    ///
    /// # Errors
    /// [`EntityError::InvalidEntity`] when the value is not an array.
    pub fn from_json_value(value: Value) -> Result<Self, EntityError> {
        match value {
            Value::Array(items) => Ok(Self {
                built: Vec::new(),
                json: items,
            }),
            _ => Err(EntityError::InvalidEntity {
                message: "entities JSON must be an array".to_owned(),
            }),
        }
    }

    /// Adds one entity.
    pub fn push(&mut self, entity: Entity) {
        self.built.push(entity.0);
    }

    /// Adds every entity of `other`.
    pub fn extend(&mut self, other: Entities) {
        self.built.extend(other.built);
        self.json.extend(other.json);
    }

    /// Whether there are no entities.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.built.is_empty() && self.json.is_empty()
    }

    /// The built entities and the JSON ones, each in the order they were added.
    pub(crate) fn parts(&self) -> (&[cedar_policy::Entity], &[Value]) {
        (&self.built, &self.json)
    }

    /// Turns the entities into cedar-policy entities, parsing the JSON ones with `schema`.
    pub(crate) fn resolve(
        self,
        schema: Option<&cedar_policy::Schema>,
    ) -> Result<Vec<cedar_policy::Entity>, String> {
        let mut out = self.built;
        for item in self.json {
            // Cedar recurses into the value; text was scanned, a value built in code was not.
            if nests_deeper(&item, super::MAX_DATA_NESTING) {
                return Err(format!(
                    "an entity nests more than {} levels deep",
                    super::MAX_DATA_NESTING
                ));
            }
            let entity =
                cedar_policy::Entity::from_json_value(item, schema).map_err(|e| e.to_string())?;
            out.push(entity);
        }
        Ok(out)
    }
}

impl FromIterator<Entity> for Entities {
    fn from_iter<T: IntoIterator<Item = Entity>>(iter: T) -> Self {
        Self {
            built: iter.into_iter().map(Entity::into_cedar).collect(),
            json: Vec::new(),
        }
    }
}

/// The `context` of a request: a record of named values.
///
/// JSON contexts are parsed against the schema's declared context type for the action (when
/// there is a schema) as the request is decided.
///
/// # Example
/// ```
/// use meshguard::policy::Context;
/// use serde_json::json;
///
/// let mut context = Context::from_json(json!({"mfa": true}))?;
/// context.insert("amount", json!(120))?;
/// assert_eq!(context.as_json().map(|fields| fields.len()), Some(2));
/// # Ok::<(), meshguard::policy::EntityError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Context(ContextRepr);

#[derive(Debug, Clone)]
enum ContextRepr {
    Json(Map<String, Value>),
    Cedar(cedar_policy::Context),
}

impl Context {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self(ContextRepr::Json(Map::new()))
    }

    /// A context from a JSON object in Cedar's JSON value format.
    ///
    /// # Errors
    /// [`EntityError::ContextNotObject`] when `value` is not an object.
    pub fn from_json(value: Value) -> Result<Self, EntityError> {
        match value {
            Value::Object(map) => Ok(Self(ContextRepr::Json(map))),
            _ => Err(EntityError::ContextNotObject),
        }
    }

    /// A context from a cedar-policy context, used as is (it is still checked against the
    /// schema when the request is decided); public as
    /// [`cedar::from_context`](super::cedar::from_context).
    #[must_use]
    pub(crate) fn from_cedar(context: cedar_policy::Context) -> Self {
        Self(ContextRepr::Cedar(context))
    }

    /// Sets one field from a JSON value (Cedar's JSON value format).
    ///
    /// # Errors
    /// [`EntityError::UnsupportedValue`] when the context came from
    /// [`cedar::from_context`](super::cedar::from_context)
    /// and `value` has no Cedar equivalent, or the key is already set there.
    pub fn insert(&mut self, key: &str, value: Value) -> Result<(), EntityError> {
        match &mut self.0 {
            ContextRepr::Json(map) => {
                map.insert(key.to_owned(), value);
                Ok(())
            }
            ContextRepr::Cedar(context) => {
                let expression = restricted(&value, key, 0)?;
                let merged = context
                    .clone()
                    .merge([(key.to_owned(), expression)])
                    .map_err(|e| EntityError::UnsupportedValue {
                        path: key.to_owned(),
                        message: e.to_string(),
                    })?;
                *context = merged;
                Ok(())
            }
        }
    }

    /// The JSON fields, for a JSON context.
    #[must_use]
    pub fn as_json(&self) -> Option<&Map<String, Value>> {
        match &self.0 {
            ContextRepr::Json(map) => Some(map),
            ContextRepr::Cedar(_) => None,
        }
    }

    pub(crate) fn into_cedar(
        self,
        schema: Option<(&cedar_policy::Schema, &cedar_policy::EntityUid)>,
    ) -> Result<cedar_policy::Context, String> {
        match self.0 {
            ContextRepr::Cedar(context) => Ok(context),
            ContextRepr::Json(map) if map.is_empty() => Ok(cedar_policy::Context::empty()),
            // With a schema, Cedar's JSON reader is type-directed (a string becomes an
            // `ipaddr` where the schema says so). A context built directly that the schema
            // accepts as it is holds exactly what that reader would have made of it, so it
            // is used; anything else goes through the reader, which decides as it always has.
            ContextRepr::Json(map) if schema.is_some() => {
                // The same depth bound as without a schema, before Cedar recurses into it.
                if map.values().any(|value| nests_deeper(value, MAX_DEPTH)) {
                    return Err(format!("context nests more than {MAX_DEPTH} levels deep"));
                }
                if let Some((schema, action)) = schema
                    && let Ok(context) =
                        direct::context(&map, MAX_DEPTH, direct::ExprEscape::Unsupported)
                    && context.validate(schema, action).is_ok()
                {
                    return Ok(context);
                }
                cedar_policy::Context::from_json_value(Value::Object(map), schema)
                    .map_err(|e| e.to_string())
            }
            // Without one, the values are built directly: what `restricted` and
            // `cedar_policy::Context::from_pairs` make of them, without Cedar's evaluator.
            ContextRepr::Json(map) => direct::context(&map, MAX_DEPTH, direct::ExprEscape::Record)
                .map_err(|unbuilt| match unbuilt {
                    direct::Unbuilt::Invalid(message) => message,
                    direct::Unbuilt::Unsupported => "unsupported context value".to_owned(),
                }),
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

/// Converts a JSON value to a Cedar value, with the `__entity` / `__extn` escapes of Cedar's
/// JSON format.
pub(crate) fn restricted(
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<RestrictedExpression, EntityError> {
    let unsupported = |message: &str| EntityError::UnsupportedValue {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    if depth > MAX_DEPTH {
        return Err(unsupported("nested too deeply"));
    }
    match value {
        Value::Null => Err(unsupported("null has no Cedar equivalent")),
        Value::Bool(b) => Ok(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(RestrictedExpression::new_long)
            .ok_or_else(|| unsupported("only integers in the i64 range are Cedar values")),
        Value::String(s) => Ok(RestrictedExpression::new_string(s.clone())),
        Value::Array(items) => {
            let mut set = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                set.push(restricted(item, &format!("{path}[{i}]"), depth + 1)?);
            }
            Ok(RestrictedExpression::new_set(set))
        }
        Value::Object(map) => {
            // As in Cedar's JSON format, an escape is an object with that one key; with
            // other keys beside it, the object is a record.
            if map.len() == 1 {
                if let Some(escape) = map.get("__entity") {
                    return entity_escape(escape)
                        .ok_or_else(|| unsupported("malformed `__entity`"));
                }
                if let Some(escape) = map.get("__extn") {
                    return extension_escape(escape)
                        .ok_or_else(|| unsupported("malformed `__extn`"));
                }
            }
            let mut fields = Vec::with_capacity(map.len());
            for (key, item) in map {
                fields.push((
                    key.clone(),
                    restricted(item, &format!("{path}.{key}"), depth + 1)?,
                ));
            }
            RestrictedExpression::new_record(fields).map_err(|e| unsupported(&e.to_string()))
        }
    }
}

/// Whether `value` has arrays or objects nested more than `limit` deep; the recursion stops
/// at `limit`, so any value is safe to check.
fn nests_deeper(value: &Value, limit: usize) -> bool {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => return false,
    };
    match limit.checked_sub(1) {
        None => true,
        Some(rest) => children.into_iter().any(|child| nests_deeper(child, rest)),
    }
}

fn entity_escape(escape: &Value) -> Option<RestrictedExpression> {
    let type_name = escape.get("type")?.as_str()?;
    let id = escape.get("id")?.as_str()?;
    EntityUid::new(type_name, id)
        .ok()
        .map(|uid| RestrictedExpression::new_entity_uid(uid.0))
}

fn extension_escape(escape: &Value) -> Option<RestrictedExpression> {
    let function = escape.get("fn")?.as_str()?;
    let argument = escape.get("arg")?.as_str()?;
    let expression = match function {
        "ip" | "ipaddr" => RestrictedExpression::new_ip(argument),
        "decimal" => RestrictedExpression::new_decimal(argument),
        "datetime" => RestrictedExpression::new_datetime(argument),
        "duration" => RestrictedExpression::new_duration(argument),
        _ => return None,
    };
    Some(expression)
}

fn invalid_uid(input: &str, message: &str) -> EntityError {
    EntityError::InvalidUid {
        input: input.chars().take(128).collect(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_built_in_code_are_bounded_before_cedar_sees_them() {
        // Deep enough to pass both bounds, shallow enough for Cedar on a test thread, so
        // that without the bounds this fails instead of aborting.
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert!(nests_deeper(&deep, MAX_DEPTH));
        assert!(!nests_deeper(&json!([[1]]), 2));
        assert!(nests_deeper(&json!([[[1]]]), 2));
        let schema = cedar_policy::Schema::from_cedarschema_str(
            "entity User; action view appliesTo { principal: User, resource: User, context: { a: Set<Long> } };",
        )
        .unwrap()
        .0;
        let action = EntityUid::new("Action", "view").unwrap();
        let context = Context::from_json(json!({ "a": deep.clone() })).unwrap();
        let error = context
            .into_cedar(Some((&schema, action.as_cedar())))
            .unwrap_err();
        assert!(error.contains("nests more than 32"), "{error}");
        let entity =
            json!({"uid": {"type": "User", "id": "a"}, "attrs": {"a": deep}, "parents": []});
        let error = Entities::from_json_value(json!([entity]))
            .unwrap()
            .resolve(None)
            .unwrap_err();
        assert!(error.contains("nests more than 64"), "{error}");
    }

    #[test]
    fn uid_round_trips_through_text() {
        let uid = EntityUid::new("Action", "GET /orders/{id}").unwrap();
        let text = uid.to_string();
        assert_eq!(text.parse::<EntityUid>().unwrap(), uid);
        assert_eq!(uid.id(), "GET /orders/{id}");
    }

    #[test]
    fn bad_uid_text_is_rejected() {
        let err = "User:alice".parse::<EntityUid>().unwrap_err();
        assert_eq!(err.reason(), "invalid_uid");
        assert_eq!(
            EntityUid::new("9bad", "x").unwrap_err().reason(),
            "invalid_uid"
        );
    }

    #[test]
    fn json_values_without_cedar_equivalent_are_rejected() {
        for value in [
            json!(null),
            json!(1.5),
            json!({"a": [null]}),
            json!({"__extn": 3}),
        ] {
            let err = Entity::builder(EntityUid::new("T", "x").unwrap())
                .attribute("a", &value)
                .unwrap_err();
            assert_eq!(err.reason(), "unsupported_value", "{value}");
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(
            Entity::builder(EntityUid::new("T", "x").unwrap())
                .attribute("a", &deep)
                .is_err()
        );
    }

    #[test]
    fn bad_extension_argument_fails_at_build() {
        let err = Entity::builder(EntityUid::new("T", "x").unwrap())
            .attribute("ip", &json!({"__extn": {"fn": "ip", "arg": "not-an-ip"}}))
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.reason(), "invalid_entity");
    }

    #[test]
    fn entities_json_must_be_an_array() {
        assert!(Entities::from_json_str("{}").is_err());
        assert!(Entities::from_json_str("[").is_err());
        assert!(Entities::from_json_str("[]").unwrap().is_empty());
        let deep = format!("[{}1{}]", "[".repeat(64), "]".repeat(64));
        let message = Entities::from_json_str(&deep).unwrap_err().to_string();
        assert!(
            message.contains("nests more than 64 levels deep"),
            "{message}"
        );
    }

    #[test]
    fn context_must_be_an_object() {
        assert_eq!(
            Context::from_json(json!([1])).unwrap_err(),
            EntityError::ContextNotObject
        );
    }

    #[test]
    fn schemaless_contexts_read_as_cedars_json_reader_reads_them() {
        let context = json!({
            "method": "GET",
            "path": "/orders/42",
            "path_params": {"id": "42"},
            "query": {},
            "client_ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
            "time": {"__extn": {"fn": "datetime", "arg": "2026-11-28T16:00:00.000Z"}},
            "scopes": ["orders:read", "orders:write"],
            "peer": {"id": "spiffe://example.org/cart", "trust_domain": "example.org"},
            "owner": {"__entity": {"type": "User", "id": "alice"}},
            "count": 3,
            "flag": true,
            "not_an_entity": {"__entity": {"type": "User", "id": "a"}, "extra": 1},
            "not_an_extension": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}, "extra": 1},
        });
        let direct = Context::from_json(context.clone())
            .unwrap()
            .into_cedar(None)
            .unwrap();
        let through_json = cedar_policy::Context::from_json_value(context.clone(), None).unwrap();
        for key in context.as_object().unwrap().keys() {
            assert_eq!(direct.get(key), through_json.get(key), "{key}");
        }

        for bad in [
            json!({"a": null}),
            json!({"a": 1.5}),
            json!({"ip": {"__extn": {"fn": "ip", "arg": "not-an-ip"}}}),
        ] {
            let ours = Context::from_json(bad.clone()).and_then(|c| {
                c.into_cedar(None)
                    .map_err(|message| EntityError::UnsupportedValue {
                        path: String::new(),
                        message,
                    })
            });
            assert!(ours.is_err(), "{bad}");
            assert!(
                cedar_policy::Context::from_json_value(bad.clone(), None).is_err(),
                "{bad}"
            );
        }
    }
}
