//! A JSON context turned into Cedar values directly, without Cedar's expression evaluator.
//!
//! `cedar_policy::Context::from_pairs` evaluates each value as a restricted expression, and
//! `RestrictedExpression::new_ip`/`new_datetime` parse the extension function's name with
//! Cedar's policy parser on every call: tens of microseconds for the HTTP context, the
//! largest share of a decision. Here the values are built as Cedar builds them after
//! evaluation, and an extension value is made by calling the same extension function Cedar's
//! evaluator calls, looked up once. The result is the value Cedar's own constructors give
//! (`tests` below compares them), and every failure is one of theirs.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use cedar_policy_core::ast::{self, Name, PartialValue, Value};
use cedar_policy_core::extensions::Extensions;
use serde_json::{Map, Value as Json};

use super::error::EntityError;
use super::values::EntityUid;

/// Why a context could not be built directly.
#[derive(Debug)]
pub(crate) enum Unbuilt {
    /// A value with no Cedar equivalent, or an extension argument the extension refuses:
    /// the message Cedar's constructors give.
    Invalid(String),
    /// A value this builder leaves to Cedar's JSON reader (the reserved `__expr` escape,
    /// which Cedar's reader refuses with its own error).
    Unsupported,
}

/// How `{"__expr": ..}` is read: as a record (the schemaless reading meshguard has always
/// had), or left to Cedar's JSON reader (which refuses it) when a schema directs the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExprEscape {
    Record,
    Unsupported,
}

/// The context record built from `fields`, with the conversions and errors of
/// [`restricted`](super::values::restricted) and `cedar_policy::Context::from_pairs`.
pub(crate) fn context(
    fields: &Map<String, Json>,
    max_depth: usize,
    expr: ExprEscape,
) -> Result<cedar_policy::Context, Unbuilt> {
    let mut record = BTreeMap::new();
    for (key, value) in fields {
        record.insert(
            key.into(),
            value_of(value, &|| key.clone(), 0, max_depth, expr)?,
        );
    }
    Ok(cedar_policy::Context::from(ast::Context::Value(Arc::new(
        record,
    ))))
}

/// `path` names the value in error messages; it is rendered only when one is needed, so
/// that a valid context costs no string per field.
fn value_of(
    json: &Json,
    path: &dyn Fn() -> String,
    depth: usize,
    max_depth: usize,
    expr: ExprEscape,
) -> Result<Value, Unbuilt> {
    let unsupported = |message: &str| {
        Unbuilt::Invalid(
            EntityError::UnsupportedValue {
                path: path(),
                message: message.to_owned(),
            }
            .to_string(),
        )
    };
    if depth > max_depth {
        return Err(unsupported("nested too deeply"));
    }
    match json {
        Json::Null => Err(unsupported("null has no Cedar equivalent")),
        Json::Bool(b) => Ok(Value::from(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(Value::from)
            .ok_or_else(|| unsupported("only integers in the i64 range are Cedar values")),
        Json::String(s) => Ok(Value::from(s.as_str())),
        Json::Array(items) => {
            let mut set = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                set.push(value_of(
                    item,
                    &|| format!("{}[{i}]", path()),
                    depth + 1,
                    max_depth,
                    expr,
                )?);
            }
            Ok(Value::set(set, None))
        }
        Json::Object(map) => {
            // As in Cedar's JSON format, an escape is an object with that one key; with
            // other keys beside it, the object is a record.
            if map.len() == 1 {
                if let Some(escape) = map.get("__entity") {
                    return entity(escape).ok_or_else(|| unsupported("malformed `__entity`"));
                }
                if let Some(escape) = map.get("__extn") {
                    return extension(escape)
                        .unwrap_or_else(|| Err(unsupported("malformed `__extn`")));
                }
                if expr == ExprEscape::Unsupported && map.contains_key("__expr") {
                    return Err(Unbuilt::Unsupported);
                }
            }
            let mut record = BTreeMap::new();
            for (key, item) in map {
                let value = value_of(
                    item,
                    &|| format!("{}.{key}", path()),
                    depth + 1,
                    max_depth,
                    expr,
                )?;
                record.insert(key.into(), value);
            }
            Ok(Value::record_arc(Arc::new(record), None))
        }
    }
}

fn entity(escape: &Json) -> Option<Value> {
    let type_name = escape.get("type")?.as_str()?;
    let id = escape.get("id")?.as_str()?;
    let uid = EntityUid::new(type_name, id).ok()?;
    Some(Value::from(
        AsRef::<ast::EntityUID>::as_ref(uid.as_cedar()).clone(),
    ))
}

/// The extension functions meshguard's `__extn` escape names, looked up once.
struct Constructors {
    ip: Name,
    decimal: Name,
    datetime: Name,
    duration: Name,
}

static CONSTRUCTORS: LazyLock<Option<Constructors>> = LazyLock::new(|| {
    let name = |text: &str| text.parse::<Name>().ok();
    Some(Constructors {
        ip: name("ip")?,
        decimal: name("decimal")?,
        datetime: name("datetime")?,
        duration: name("duration")?,
    })
});

/// `None` when the escape is malformed (not `{"fn": <known name>, "arg": <string>}`);
/// otherwise what the extension function gives for the argument.
fn extension(escape: &Json) -> Option<Result<Value, Unbuilt>> {
    let function = escape.get("fn")?.as_str()?;
    let argument = escape.get("arg")?.as_str()?;
    let constructors = CONSTRUCTORS.as_ref()?;
    let name = match function {
        "ip" | "ipaddr" => &constructors.ip,
        "decimal" => &constructors.decimal,
        "datetime" => &constructors.datetime,
        "duration" => &constructors.duration,
        _ => return None,
    };
    if let Some(value) = LAST_CALL.with_borrow(|last| last.recall(function, argument)) {
        return Some(Ok(value));
    }
    let called = Extensions::all_available()
        .func(name)
        .map_err(|e| Unbuilt::Invalid(e.to_string()))
        .and_then(|function| {
            function
                .call(&[Value::from(argument)])
                .map_err(|e| Unbuilt::Invalid(e.to_string()))
        });
    let value = called.and_then(|value| match value {
        PartialValue::Value(value) => Ok(value),
        // Only partial evaluation yields residuals; these constructors never do.
        PartialValue::Residual(_) => Err(Unbuilt::Unsupported),
    });
    if let Ok(value) = &value {
        LAST_CALL.with_borrow_mut(|last| last.keep(function, argument, value));
    }
    Some(value)
}

thread_local! {
    /// The last extension value this thread built. Constructors are pure functions of
    /// their name and argument, and requests arriving in the same millisecond carry the
    /// same `datetime` argument (the HTTP mapping's `time`), whose parse (a regex) is the
    /// largest part of building an HTTP context: a repeated call costs a comparison.
    static LAST_CALL: std::cell::RefCell<LastCall> = const {
        std::cell::RefCell::new(LastCall {
            function: String::new(),
            argument: String::new(),
            value: None,
        })
    };
}

/// One remembered constructor call.
struct LastCall {
    function: String,
    argument: String,
    value: Option<Value>,
}

impl LastCall {
    fn recall(&self, function: &str, argument: &str) -> Option<Value> {
        (self.function == function && self.argument == argument)
            .then(|| self.value.clone())
            .flatten()
    }

    fn keep(&mut self, function: &str, argument: &str, value: &Value) {
        self.function.clear();
        self.function.push_str(function);
        self.argument.clear();
        self.argument.push_str(argument);
        self.value = Some(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn direct(value: &Json) -> Result<cedar_policy::Context, Unbuilt> {
        context(
            value.as_object().unwrap(),
            super::super::values::MAX_DEPTH,
            ExprEscape::Record,
        )
    }

    /// How meshguard built schemaless contexts before: each value as a restricted
    /// expression, evaluated by `cedar_policy::Context::from_pairs`.
    fn evaluated(value: &Json) -> Result<cedar_policy::Context, String> {
        let mut pairs = Vec::new();
        for (key, value) in value.as_object().unwrap() {
            let value =
                super::super::values::restricted(value, key, 0).map_err(|e| e.to_string())?;
            pairs.push((key.clone(), value));
        }
        cedar_policy::Context::from_pairs(pairs).map_err(|e| e.to_string())
    }

    fn inner(context: &cedar_policy::Context) -> &ast::Context {
        context.as_ref()
    }

    #[test]
    fn values_equal_the_evaluated_ones_and_cedars_json_reader() {
        let readable = json!({
            "method": "GET",
            "path": "/orders/42",
            "path_params": {"id": "42", "name": "caf\u{e9} \"x\""},
            "query": {},
            "client_ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
            "client_net": {"__extn": {"fn": "ip", "arg": "2001:db8::/32"}},
            "time": {"__extn": {"fn": "datetime", "arg": "2026-11-28T16:00:00.000Z"}},
            "offset_time": {"__extn": {"fn": "datetime", "arg": "2026-11-28T16:00:00.123+0130"}},
            "day": {"__extn": {"fn": "datetime", "arg": "2026-11-28"}},
            "ttl": {"__extn": {"fn": "duration", "arg": "1h30m"}},
            "amount": {"__extn": {"fn": "decimal", "arg": "12.3400"}},
            "scopes": ["orders:read", "orders:write", "orders:read"],
            "empty": [],
            "peer": {"id": "spiffe://example.org/cart", "trust_domain": "example.org"},
            "owner": {"__entity": {"type": "App::User", "id": "al\"ice"}},
            "count": -3,
            "big": i64::MAX,
            "flag": true,
            "nested": {"a": [{"b": [1, 2, {"c": "d"}]}]},
            "not_an_entity": {"__entity": {"type": "User", "id": "a"}, "extra": 1},
        });
        let built = direct(&readable).unwrap();
        let read = cedar_policy::Context::from_json_value(readable.clone(), None).unwrap();
        assert_eq!(inner(&built), inner(&evaluated(&readable).unwrap()));
        assert_eq!(inner(&built), inner(&read));
        for key in readable.as_object().unwrap().keys() {
            assert_eq!(built.get(key), read.get(key), "{key}");
        }
        // meshguard's own spellings, which Cedar's reader does not know.
        for own in [
            json!({"ip": {"__extn": {"fn": "ipaddr", "arg": "10.0.0.1"}}}),
            json!({"e": {"__expr": "1 + 1"}}),
            json!({"e": {"__extn": {"fn": "ip"}, "x": 1}}),
        ] {
            assert_eq!(
                inner(&direct(&own).unwrap()),
                inner(&evaluated(&own).unwrap()),
                "{own}"
            );
        }
    }

    #[test]
    fn a_repeated_constructor_call_gives_the_same_value_as_a_fresh_one() {
        let escape = |function: &str, argument: &str| json!({"fn": function, "arg": argument});
        let calls = [
            ("datetime", "2026-11-28T16:00:00.000Z"),
            ("datetime", "2026-11-28T16:00:00.000Z"),
            ("duration", "2026-11-28T16:00:00.000Z"),
            ("datetime", "2026-11-28T16:00:00.001Z"),
            ("datetime", "not a time"),
            ("datetime", "2026-11-28T16:00:00.001Z"),
            ("ip", "10.0.0.1"),
            ("decimal", "10.0"),
            ("ip", "10.0.0.1"),
        ];
        for (function, argument) in calls {
            let mine = extension(&escape(function, argument)).unwrap();
            LAST_CALL.with_borrow_mut(|last| last.value = None);
            let fresh = extension(&escape(function, argument)).unwrap();
            match (mine, fresh) {
                (Ok(mine), Ok(fresh)) => assert_eq!(mine, fresh, "{function}({argument})"),
                (Err(Unbuilt::Invalid(mine)), Err(Unbuilt::Invalid(fresh))) => {
                    assert_eq!(mine, fresh);
                }
                other => panic!("{function}({argument}): {other:?}"),
            }
        }
    }

    #[test]
    fn failures_are_the_evaluated_ones() {
        for bad in [
            json!({"a": null}),
            json!({"a": 1.5}),
            json!({"a": u64::MAX}),
            json!({"a": [1, [null]]}),
            json!({"ip": {"__extn": {"fn": "ip", "arg": "not-an-ip"}}}),
            json!({"t": {"__extn": {"fn": "datetime", "arg": "2026-13-01"}}}),
            json!({"t": {"__extn": {"fn": "duration", "arg": "1y"}}}),
            json!({"t": {"__extn": {"fn": "decimal", "arg": "1.23456"}}}),
            json!({"t": {"__extn": {"fn": "nope", "arg": "x"}}}),
            json!({"t": {"__extn": {"fn": "ip"}}}),
            json!({"t": {"__extn": 3}}),
            json!({"t": {"__entity": {"type": "9bad", "id": "x"}}}),
        ] {
            let Err(Unbuilt::Invalid(message)) = direct(&bad) else {
                panic!("{bad} was built");
            };
            assert_eq!(message, evaluated(&bad).unwrap_err(), "{bad}");
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let deep = json!({ "a": deep });
        assert!(direct(&deep).is_err());
        assert!(evaluated(&deep).is_err());
    }

    #[test]
    fn the_expr_escape_is_left_to_cedar_when_a_schema_directs_the_reading() {
        let expr = json!({"e": {"__expr": "1 + 1"}});
        assert!(matches!(
            context(expr.as_object().unwrap(), 32, ExprEscape::Unsupported),
            Err(Unbuilt::Unsupported)
        ));
    }

    #[test]
    fn with_a_schema_the_context_is_what_cedars_typed_reader_makes_of_it() {
        let (schema, _) = cedar_policy::Schema::from_cedarschema_str(
            "entity User; entity Application; \
             action view appliesTo { principal: User, resource: Application, context: { \
                method: String, path_params: { id: String }, scopes?: Set<String>, \
                time: datetime, client_ip?: ipaddr, owner?: User, e?: { __expr: String } } };",
        )
        .unwrap();
        let action = EntityUid::new("Action", "view").unwrap();
        let time = json!({"__extn": {"fn": "datetime", "arg": "2026-11-28T16:00:00.000Z"}});
        for fields in [
            // Built directly: every value already has the schema's type.
            json!({"method": "GET", "path_params": {"id": "42"}, "time": time,
                   "client_ip": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}},
                   "scopes": ["a", "b"], "owner": {"__entity": {"type": "User", "id": "al"}}}),
            // Read by Cedar: the schema turns a plain string into an `ipaddr`.
            json!({"method": "GET", "path_params": {"id": "42"}, "time": time,
                   "client_ip": "10.1.2.3"}),
            // Read by Cedar, which refuses the reserved escape and the wrong types.
            json!({"method": "GET", "path_params": {"id": "42"}, "time": time,
                   "e": {"__expr": "x"}}),
            json!({"method": 1, "path_params": {"id": "42"}, "time": time}),
            json!({"method": "GET", "path_params": {"id": "42"}, "time": time, "extra": 1}),
        ] {
            let ours = super::super::values::Context::from_json(fields.clone())
                .unwrap()
                .into_cedar(Some((&schema, action.as_cedar())));
            let cedars = cedar_policy::Context::from_json_value(
                fields.clone(),
                Some((&schema, action.as_cedar())),
            );
            match (ours, cedars) {
                (Ok(ours), Ok(cedars)) => assert_eq!(inner(&ours), inner(&cedars), "{fields}"),
                (Err(ours), Err(cedars)) => assert_eq!(ours, cedars.to_string(), "{fields}"),
                (ours, cedars) => panic!("{fields}: {ours:?} but Cedar {cedars:?}"),
            }
        }
    }
}
