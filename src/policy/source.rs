//! Where policies, the schema and static entities come from, and how they are loaded: read,
//! parsed, given stable ids and validated, all before a set can decide anything.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};

use super::error::{Diagnostic, DiagnosticKind, PolicyError};
use super::nesting::{self, Syntax};
use super::position::Positions;
use super::read::{NamedText, PolicyText, Texts};

/// Where policies come from.
///
/// Policy ids are the `@id("...")` annotation when a policy has one. Otherwise, for text and
/// for a single file, they are Cedar's default ids `policy0`, `policy1`, … in source order;
/// for a directory, they are the file name and the index in that file, such as
/// `orders.cedar#0`. Ids must be unique across the whole set.
///
/// # Example
/// ```
/// use meshguard::policy::PolicySource;
///
/// let inline = PolicySource::text(r#"@id("admins") permit(principal in Role::"admin", action, resource);"#);
/// let from_disk = PolicySource::path("/etc/myservice/policies");
/// # let _ = (inline, from_disk);
/// ```
#[derive(Debug, Clone)]
pub struct PolicySource(pub(super) PolicyRepr);

#[derive(Debug, Clone)]
pub(super) enum PolicyRepr {
    Text(Arc<str>),
    Path(PathBuf),
}

impl PolicySource {
    /// Policies given as Cedar text; errors name it `<policies>`.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self(PolicyRepr::Text(Arc::from(text.into())))
    }

    /// A `.cedar` file, or a directory whose `.cedar` files (not its subdirectories) are read
    /// in file-name order. Which of the two is decided each time the source is loaded.
    #[must_use]
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self(PolicyRepr::Path(path.into()))
    }
}

/// Where the Cedar schema comes from: Cedar schema text (`.cedarschema`) or its JSON form.
///
/// # Example
/// ```
/// use meshguard::policy::SchemaSource;
///
/// let schema = SchemaSource::cedar("entity User; action view appliesTo { principal: User, resource: User };");
/// let from_disk = SchemaSource::file("/etc/myservice/schema.cedarschema");
/// # let _ = (schema, from_disk);
/// ```
#[derive(Debug, Clone)]
pub struct SchemaSource(pub(super) SchemaRepr);

#[derive(Debug, Clone)]
pub(super) enum SchemaRepr {
    Cedar(Arc<str>),
    Json(Arc<str>),
    File(PathBuf),
}

impl SchemaSource {
    /// A schema in Cedar's schema syntax; errors name it `<schema>`.
    #[must_use]
    pub fn cedar(text: impl Into<String>) -> Self {
        Self(SchemaRepr::Cedar(Arc::from(text.into())))
    }

    /// A schema in Cedar's JSON schema format; errors name it `<schema>`.
    #[must_use]
    pub fn json(text: impl Into<String>) -> Self {
        Self(SchemaRepr::Json(Arc::from(text.into())))
    }

    /// A schema file: JSON when its name ends in `.json`, else Cedar schema syntax.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(SchemaRepr::File(path.into()))
    }
}

/// Where the static entities come from: Cedar's entities JSON (an array of
/// `{"uid", "attrs", "parents"}`), validated against the schema when there is one.
///
/// # Example
/// ```
/// use meshguard::policy::EntitySource;
///
/// let roles = EntitySource::json(r#"[{"uid": {"type": "Role", "id": "admin"}, "attrs": {}, "parents": []}]"#);
/// # let _ = roles;
/// ```
#[derive(Debug, Clone)]
pub struct EntitySource(pub(super) EntityRepr);

#[derive(Debug, Clone)]
pub(super) enum EntityRepr {
    Json(Arc<str>),
    File(PathBuf),
}

impl EntitySource {
    /// Entities JSON text; errors name it `<entities>`.
    #[must_use]
    pub fn json(text: impl Into<String>) -> Self {
        Self(EntityRepr::Json(Arc::from(text.into())))
    }

    /// An entities JSON file.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(EntityRepr::File(path.into()))
    }
}

/// Everything an engine loads, as configured.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) policies: PolicySource,
    pub(crate) shadow: Option<PolicySource>,
    pub(crate) schema: Option<SchemaSource>,
    pub(crate) entities: Option<EntitySource>,
}

/// The result of a successful load.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) policies: PolicySet,
    pub(crate) shadow: Option<PolicySet>,
    pub(crate) schema: Option<Schema>,
    pub(crate) entities: cedar_policy::Entities,
}

impl Sources {
    /// Reads, parses and validates everything, collecting every problem before failing.
    pub(crate) fn load(&self) -> Result<Loaded, PolicyError> {
        self.read().and_then(parse)
    }
}

/// Parses and validates what was read, collecting every problem before failing. The
/// candidate set is parsed and validated on its own, after the enforced set succeeded: a
/// broken candidate is dropped with a warning and never fails the load.
pub(crate) fn parse(texts: Texts) -> Result<Loaded, PolicyError> {
    let mut diagnostics = Vec::new();
    let schema = match &texts.schema {
        Some((named, json)) => parse_schema(named, *json, &mut diagnostics)?,
        None => None,
    };
    let schema_failed = texts.schema.is_some() && schema.is_none();
    let policies = parse_policies(&texts.policies, &mut diagnostics)?;
    if let Some(schema) = &schema {
        validate(&Validator::new(schema.clone()), &policies, &mut diagnostics);
    }
    let entities = if schema_failed {
        None
    } else {
        parse_entities(texts.entities.as_ref(), schema.as_ref(), &mut diagnostics)?
    };
    match (entities, diagnostics.is_empty()) {
        (Some(entities), true) => Ok(Loaded {
            policies: policies.set,
            shadow: texts
                .shadow
                .and_then(|candidate| parse_candidate(candidate, schema.as_ref())),
            schema,
            entities,
        }),
        _ => Err(PolicyError::Invalid { diagnostics }),
    }
}

/// The candidate set, or `None` with a warning when it cannot be read, parsed or validated.
fn parse_candidate(
    candidate: Result<Vec<PolicyText>, PolicyError>,
    schema: Option<&Schema>,
) -> Option<PolicySet> {
    let mut diagnostics = Vec::new();
    let parsed = candidate.and_then(|files| {
        let parsed = parse_policies(&files, &mut diagnostics)?;
        if let Some(schema) = schema {
            validate(&Validator::new(schema.clone()), &parsed, &mut diagnostics);
        }
        if diagnostics.is_empty() {
            Ok(parsed.set)
        } else {
            Err(PolicyError::Invalid { diagnostics })
        }
    });
    match parsed {
        Ok(set) => Some(set),
        Err(error) => {
            tracing::warn!(
                target: "meshguard::policy::shadow",
                reason = error.reason(),
                error = %error,
                "shadow policy set dropped; the enforced set is not affected"
            );
            None
        }
    }
}

/// A parsed policy set with the text of every file, to place validation errors.
struct ParsedPolicies {
    set: PolicySet,
    /// Policy id → (origin, source text).
    texts: HashMap<String, (Arc<str>, Arc<str>)>,
}

fn parse_policies(
    files: &[PolicyText],
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<ParsedPolicies, PolicyError> {
    let mut parsed = ParsedPolicies {
        set: PolicySet::new(),
        texts: HashMap::new(),
    };
    for file in files {
        check_nesting(&file.origin, &file.text, Syntax::Policy)?;
        parse_file(
            &file.origin,
            &file.text,
            file.prefixed,
            &mut parsed,
            diagnostics,
        );
    }
    Ok(parsed)
}

fn parse_file(
    origin: &Arc<str>,
    text: &Arc<str>,
    prefixed: bool,
    parsed: &mut ParsedPolicies,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file_set = match PolicySet::from_str(text) {
        Ok(set) => set,
        Err(errors) => {
            let mut positions = Positions::default();
            for error in errors.iter() {
                diagnostics.push(
                    Diagnostic::new(DiagnosticKind::PolicySyntax, origin, message_of(error))
                        .at(positions.of(error, text)),
                );
            }
            return;
        }
    };
    for template in file_set.templates() {
        diagnostics.push(
            Diagnostic::new(
                DiagnosticKind::Template,
                origin,
                "templates are not supported; write a static policy".to_owned(),
            )
            .for_policy(template.id().as_ref()),
        );
    }
    // Cedar names policies `policy<N>` in source order; sort by N so ids and errors follow
    // the file.
    let mut policies: Vec<(usize, &cedar_policy::Policy)> = file_set
        .policies()
        .map(|p| (default_index(p.id().as_ref()), p))
        .collect();
    policies.sort_by_key(|(index, _)| *index);
    for (index, policy) in policies {
        let id = match policy.annotation("id") {
            Some("") => {
                diagnostics.push(Diagnostic::new(
                    DiagnosticKind::PolicyId,
                    origin,
                    format!("policy #{index} has an empty `@id` annotation"),
                ));
                continue;
            }
            Some(id) => id.to_owned(),
            None if prefixed => format!("{origin}#{index}"),
            None => format!("policy{index}"),
        };
        if let Some((first, _)) = parsed.texts.get(&id) {
            diagnostics.push(
                Diagnostic::new(
                    DiagnosticKind::PolicyId,
                    origin,
                    format!("policy id `{id}` is already used in `{first}`"),
                )
                .for_policy(&id),
            );
            continue;
        }
        let renamed = policy.new_id(cedar_policy::PolicyId::new(&id));
        if let Err(error) = parsed.set.add(renamed) {
            diagnostics.push(
                Diagnostic::new(DiagnosticKind::PolicyId, origin, error.to_string())
                    .for_policy(&id),
            );
            continue;
        }
        parsed.texts.insert(id, (origin.clone(), text.clone()));
    }
}

fn default_index(id: &str) -> usize {
    id.strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn validate(validator: &Validator, policies: &ParsedPolicies, diagnostics: &mut Vec<Diagnostic>) {
    let result = validator.validate(&policies.set, ValidationMode::Strict);
    // Many policies share one file's text: each is indexed once.
    let mut positions = Positions::default();
    let mut found: Vec<Diagnostic> = result
        .validation_errors()
        .map(|error| {
            let id = error.policy_id().as_ref();
            let (origin, text) = policies
                .texts
                .get(id)
                .map(|(origin, text)| (origin.as_ref(), Some(text.as_ref())))
                .unwrap_or(("<policies>", None));
            Diagnostic::new(DiagnosticKind::Validation, origin, message_of(error))
                .at(text.and_then(|text| positions.of(error, text)))
                .for_policy(id)
        })
        .collect();
    found.sort_by(|a, b| {
        (a.origin(), a.line(), a.column()).cmp(&(b.origin(), b.line(), b.column()))
    });
    diagnostics.extend(found);
}

fn parse_schema(
    named: &NamedText,
    json: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Option<Schema>, PolicyError> {
    let (origin, text) = (named.origin.as_ref(), named.text.as_ref());
    check_nesting(
        origin,
        text,
        if json { Syntax::Json } else { Syntax::Schema },
    )?;
    let parsed = if json {
        Schema::from_json_str(text).map_err(|error| {
            vec![
                Diagnostic::new(DiagnosticKind::Schema, origin, message_of(&error))
                    .at(Positions::default().of(&error, text)),
            ]
        })
    } else {
        Schema::from_cedarschema_str(text)
            .map(|(schema, _warnings)| schema)
            .map_err(|error| schema_diagnostics(&error, origin, text))
    };
    match parsed {
        Ok(schema) => Ok(Some(schema)),
        Err(found) => {
            diagnostics.extend(found);
            Ok(None)
        }
    }
}

/// Cedar reports several schema syntax errors as related diagnostics of one error.
fn schema_diagnostics(
    error: &cedar_policy::CedarSchemaError,
    origin: &str,
    text: &str,
) -> Vec<Diagnostic> {
    let mut positions = Positions::default();
    let related: Vec<Diagnostic> = miette::Diagnostic::related(error)
        .map(|items| {
            items
                .map(|item| {
                    Diagnostic::new(DiagnosticKind::Schema, origin, message_of(item))
                        .at(positions.of(item, text))
                })
                .collect()
        })
        .unwrap_or_default();
    if related.is_empty() {
        vec![
            Diagnostic::new(DiagnosticKind::Schema, origin, message_of(error))
                .at(positions.of(error, text)),
        ]
    } else {
        related
    }
}

fn parse_entities(
    named: Option<&NamedText>,
    schema: Option<&Schema>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Option<cedar_policy::Entities>, PolicyError> {
    let (origin, text) = match named {
        Some(named) => (named.origin.clone(), named.text.clone()),
        None => (Arc::from("<entities>"), Arc::from("[]")),
    };
    check_nesting(&origin, &text, Syntax::Json)?;
    match cedar_policy::Entities::from_json_str(&text, schema) {
        Ok(entities) => Ok(Some(entities)),
        Err(error) => {
            diagnostics.push(
                Diagnostic::new(DiagnosticKind::Entities, &origin, message_of(&error))
                    .at(Positions::default().of(&error, &text)),
            );
            Ok(None)
        }
    }
}

/// The error's message followed by Cedar's help text, which often names the fix.
fn message_of(error: &dyn miette::Diagnostic) -> String {
    match error.help() {
        Some(help) => format!("{error} (help: {help})"),
        None => error.to_string(),
    }
}

/// Refuses text nested past what Cedar parses safely, before Cedar sees it.
fn check_nesting(origin: &str, text: &str, syntax: Syntax) -> Result<(), PolicyError> {
    nesting::check(text, syntax).map_err(|found| PolicyError::TooDeep {
        origin: origin.to_owned(),
        line: found.line,
        column: found.column,
        limit: found.limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MAX_SOURCE_BYTES;

    fn sources(policies: &str) -> Sources {
        Sources {
            policies: PolicySource::text(policies),
            shadow: None,
            schema: None,
            entities: None,
        }
    }

    #[test]
    fn ids_follow_source_order_and_annotations() {
        let loaded = sources(
            "permit(principal, action, resource);\n@id(\"named\") forbid(principal, action, resource);\npermit(principal, action, resource);",
        )
        .load()
        .unwrap();
        let mut ids: Vec<String> = loaded
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["named", "policy0", "policy2"]);
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_line() {
        let err =
            sources("permit(principal, action, resource);\n\npermit(principal, action resource);")
                .load()
                .unwrap_err();
        let diagnostics = err.diagnostics();
        assert!(!diagnostics.is_empty());
        assert_eq!(diagnostics[0].kind(), DiagnosticKind::PolicySyntax);
        assert_eq!(diagnostics[0].line(), Some(3));
        assert_eq!(diagnostics[0].origin(), "<policies>");
    }

    #[test]
    fn duplicate_and_empty_ids_are_rejected() {
        let err = sources(
            "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") permit(principal, action, resource);\n@id(\"\") permit(principal, action, resource);",
        )
        .load()
        .unwrap_err();
        let kinds: Vec<_> = err.diagnostics().iter().map(Diagnostic::kind).collect();
        assert_eq!(kinds, [DiagnosticKind::PolicyId, DiagnosticKind::PolicyId]);
    }

    #[test]
    fn templates_are_refused() {
        let err = sources("permit(principal == ?principal, action, resource);")
            .load()
            .unwrap_err();
        assert_eq!(err.diagnostics()[0].kind(), DiagnosticKind::Template);
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let big = " ".repeat(MAX_SOURCE_BYTES + 1);
        let err = sources(&big).load().unwrap_err();
        assert_eq!(err.reason(), "too_large");
    }
}
