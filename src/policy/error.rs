//! Errors of the policy engine: loading ([`PolicyError`]), building request values
//! ([`EntityError`]) and deciding ([`DecisionError`]).

use std::fmt;
use std::path::PathBuf;

/// Why a policy set, schema or entity file could not be loaded or reloaded.
///
/// Loading never yields a partial policy set: any error leaves the engine without a new set
/// (at build time) or with the previous one (on reload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A source file or directory could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A source is larger than [`MAX_SOURCE_BYTES`](super::MAX_SOURCE_BYTES).
    #[error("`{origin}` has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file path or the name of the in-memory source.
        origin: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A source nests deeper than Cedar can parse safely: more than
    /// [`MAX_POLICY_NESTING`](super::MAX_POLICY_NESTING) brackets and `if`s or an expression
    /// taller than [`MAX_EXPRESSION_HEIGHT`](super::MAX_EXPRESSION_HEIGHT) in policies, or more
    /// than [`MAX_DATA_NESTING`](super::MAX_DATA_NESTING) brackets in a schema or entities.
    /// Found by a scan before any parsing.
    #[error("`{origin}` nests more than {limit} levels deep at line {line}, column {column}")]
    TooDeep {
        /// The file path or the name of the in-memory source.
        origin: String,
        /// The 1-based line where the bound was passed.
        line: u32,
        /// The 1-based column (in characters) where the bound was passed.
        column: u32,
        /// The bound that was passed.
        limit: usize,
    },
    /// A reload found no policy while the set in force has some; refused unless
    /// [`allow_empty_reload`](super::PolicyEngineBuilder::allow_empty_reload).
    #[error("the new policy set has no policies; the previous set of {previous} stays in force")]
    NoPolicies {
        /// How many policies the set in force has.
        previous: usize,
    },
    /// A policy directory holds no `.cedar` file.
    #[error("no `.cedar` file in directory `{path}`")]
    NoPolicyFiles {
        /// The directory.
        path: PathBuf,
    },
    /// Policies, schema or entities are invalid; every problem found is listed.
    #[error("{}", DiagnosticList(diagnostics))]
    Invalid {
        /// All problems found, in source order.
        diagnostics: Vec<Diagnostic>,
    },
    /// The principal mapping's per-issuer namespaces do not keep their issuers apart.
    #[error(transparent)]
    Principals(#[from] super::issuers::IssuerNamespaceError),
}

impl PolicyError {
    /// A short, stable, machine-readable name of the error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::TooLarge { .. } => "too_large",
            Self::TooDeep { .. } => "too_deep",
            Self::NoPolicies { .. } => "no_policies",
            Self::NoPolicyFiles { .. } => "no_policy_files",
            Self::Invalid { .. } => "invalid",
            Self::Principals(_) => "principals",
        }
    }

    /// The individual problems when the error is [`PolicyError::Invalid`], else an empty slice.
    #[must_use]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid { diagnostics } => diagnostics,
            _ => &[],
        }
    }
}

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A policy does not parse.
    PolicySyntax,
    /// A policy id is empty or used twice.
    PolicyId,
    /// A policy template (with `?principal` or `?resource` slots) was found; templates need
    /// links that a static policy source cannot give, so they are refused rather than ignored.
    Template,
    /// The schema does not parse or is inconsistent.
    Schema,
    /// A policy fails strict validation against the schema.
    Validation,
    /// The entities do not parse or do not conform to the schema.
    Entities,
}

impl DiagnosticKind {
    /// A short, stable, machine-readable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicySyntax => "policy_syntax",
            Self::PolicyId => "policy_id",
            Self::Template => "template",
            Self::Schema => "schema",
            Self::Validation => "validation",
            Self::Entities => "entities",
        }
    }
}

/// One problem found while loading, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    kind: DiagnosticKind,
    origin: String,
    line: Option<u32>,
    column: Option<u32>,
    policy_id: Option<String>,
    message: String,
}

impl Diagnostic {
    pub(crate) fn new(kind: DiagnosticKind, origin: &str, message: String) -> Self {
        Self {
            kind,
            origin: origin.to_owned(),
            line: None,
            column: None,
            policy_id: None,
            message,
        }
    }

    pub(crate) fn at(mut self, position: Option<(u32, u32)>) -> Self {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    pub(crate) fn for_policy(mut self, id: &str) -> Self {
        self.policy_id = Some(id.to_owned());
        self
    }

    /// What kind of problem this is.
    #[must_use]
    pub fn kind(&self) -> DiagnosticKind {
        self.kind
    }

    /// The file path, or the name of the in-memory source (such as `<policies>`).
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The 1-based line, when the problem has a position.
    #[must_use]
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The 1-based column (in characters), when the problem has a position.
    #[must_use]
    pub fn column(&self) -> Option<u32> {
        self.column
    }

    /// The id of the policy concerned, when there is one.
    #[must_use]
    pub fn policy_id(&self) -> Option<&str> {
        self.policy_id.as_deref()
    }

    /// The description of the problem.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.kind.as_str())?;
        if let Some(id) = &self.policy_id {
            write!(f, " in policy `{id}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} problem(s) in policies, schema or entities",
            self.0.len()
        )?;
        for diagnostic in self.0 {
            write!(f, "\n  {diagnostic}")?;
        }
        Ok(())
    }
}

/// Why an entity uid, entity, entity list or context could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntityError {
    /// Not a Cedar entity uid such as `User::"alice"`, or not a valid entity type name.
    #[error("invalid entity uid `{input}`: {message}")]
    InvalidUid {
        /// The rejected text (truncated to 128 characters).
        input: String,
        /// Why.
        message: String,
    },
    /// A JSON value has no Cedar equivalent (a float, `null`, or nesting too deep).
    #[error("unsupported value at `{path}`: {message}")]
    UnsupportedValue {
        /// Where in the value, as a dotted path.
        path: String,
        /// Why.
        message: String,
    },
    /// An entity or entity list is invalid.
    #[error("invalid entity: {message}")]
    InvalidEntity {
        /// Why.
        message: String,
    },
    /// A context is not a JSON object.
    #[error("context must be a JSON object")]
    ContextNotObject,
    /// A JSON input is larger than [`MAX_SOURCE_BYTES`](super::MAX_SOURCE_BYTES).
    #[error("input has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl EntityError {
    /// A short, stable, machine-readable name of the error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidUid { .. } => "invalid_uid",
            Self::UnsupportedValue { .. } => "unsupported_value",
            Self::InvalidEntity { .. } => "invalid_entity",
            Self::ContextNotObject => "context_not_object",
            Self::TooLarge { .. } => "too_large",
        }
    }
}

/// A problem met while deciding one request. Any of them makes the decision a deny, except
/// [`DecisionError::Evaluation`] under
/// [`PolicyEngineBuilder::skip_erroring_policies`](super::PolicyEngineBuilder::skip_erroring_policies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// A policy raised an error while evaluating (for example an attribute missing from an
    /// entity, an overflow, or a wrong type when there is no schema).
    #[error("policy `{policy_id}` failed to evaluate: {message}")]
    Evaluation {
        /// The id of the policy that failed.
        policy_id: String,
        /// Cedar's description of the failure.
        message: String,
    },
    /// The request does not conform to the schema (unknown action, wrong principal or
    /// resource type, context of the wrong shape).
    #[error("request does not conform to the schema: {message}")]
    InvalidRequest {
        /// Why.
        message: String,
    },
    /// The per-request entities (the caller's principal, the provider's entities) are invalid,
    /// do not conform to the schema, or conflict with the static entities.
    #[error("invalid request entities: {message}")]
    InvalidEntities {
        /// Why.
        message: String,
    },
    /// The [`EntityProvider`](super::EntityProvider) failed.
    #[error("entity provider failed: {message}")]
    Provider {
        /// Why.
        message: String,
    },
    /// The caller could not be mapped to a principal.
    #[error("caller cannot be mapped to a principal: {message}")]
    Principal {
        /// Why.
        message: String,
    },
}

impl DecisionError {
    /// A short, stable, machine-readable name of the error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Evaluation { .. } => "evaluation",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::InvalidEntities { .. } => "invalid_entities",
            Self::Provider { .. } => "entity_provider",
            Self::Principal { .. } => "principal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display_names_origin_line_and_policy() {
        let d = Diagnostic::new(DiagnosticKind::Validation, "a.cedar", "bad".to_owned())
            .at(Some((3, 7)))
            .for_policy("p1");
        assert_eq!(d.to_string(), "a.cedar:3:7: validation in policy `p1`: bad");
        let e = PolicyError::Invalid {
            diagnostics: vec![d.clone(), d],
        };
        assert_eq!(e.reason(), "invalid");
        assert_eq!(e.diagnostics().len(), 2);
        assert!(e.to_string().starts_with("2 problem(s)"));
    }
}
