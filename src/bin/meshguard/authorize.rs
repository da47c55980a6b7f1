//! `meshguard authorize`: decide one request with Cedar policies.

use std::path::PathBuf;
use std::process::ExitCode;

use meshguard::policy::{
    Context, Decision, EntitySource, EntityUid, MAX_SOURCE_BYTES, PolicyEngine, PolicySource,
    Request, SchemaSource, cedar,
};

/// Decide one request: prints `ALLOW` or `DENY`, then the determining policy ids one per line.
/// Exit status 0 for allow, 3 for deny, 2 for usage or load errors and malformed requests
/// (such as a context value Cedar has no equivalent for).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A `.cedar` file or a directory of them.
    #[arg(long)]
    policies: PathBuf,
    /// A schema: `.cedarschema` text, or JSON when the name ends in `.json`.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Static entities in Cedar's entities JSON format.
    #[arg(long)]
    entities: Option<PathBuf>,
    /// The principal, such as `User::"alice"`.
    #[arg(long)]
    principal: String,
    /// The action, such as `Action::"view"`.
    #[arg(long)]
    action: String,
    /// The resource, such as `Photo::"vacation.jpg"`.
    #[arg(long)]
    resource: String,
    /// The context as a JSON object.
    #[arg(long)]
    context: Option<String>,
    /// Skip policies whose evaluation errors, as Cedar does, instead of denying.
    #[arg(long)]
    skip_erroring_policies: bool,
}

const USAGE_OR_LOAD: u8 = 2;
const DENY: u8 = 3;

pub(crate) fn run(args: Args) -> ExitCode {
    match decide(args) {
        Ok(decision) => {
            let (word, code) = match &decision {
                Decision::Allow(_) => ("ALLOW", ExitCode::SUCCESS),
                Decision::Deny(_) => ("DENY", ExitCode::from(DENY)),
            };
            println!("{word}");
            for id in decision.policy_ids() {
                println!("{id}");
            }
            for error in decision.errors() {
                eprintln!("error: {error}");
            }
            code
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(USAGE_OR_LOAD)
        }
    }
}

fn decide(args: Args) -> Result<Decision, String> {
    let uid = |what: &str, text: &str| {
        text.parse::<EntityUid>()
            .map_err(|e| format!("--{what}: {e}"))
    };
    let principal = uid("principal", &args.principal)?;
    let action = uid("action", &args.action)?;
    let resource = uid("resource", &args.resource)?;
    let context = match &args.context {
        Some(text) => context(text).map_err(|e| format!("--context: {e}"))?,
        None => Context::new(),
    };
    let mut builder = PolicyEngine::builder(PolicySource::path(&args.policies));
    if let Some(schema) = &args.schema {
        builder = builder.schema(SchemaSource::file(schema));
    }
    if let Some(entities) = &args.entities {
        builder = builder.entities(EntitySource::file(entities));
    }
    if args.skip_erroring_policies {
        builder = builder.skip_erroring_policies();
    }
    let engine = builder.build().map_err(|e| e.to_string())?;
    Ok(engine.authorize_request(Request::new(principal, action, resource).with_context(context)))
}

/// The context, refused when it is too large or holds a value Cedar's JSON format cannot
/// express whatever the schema says (a float, `null`, nesting past the bound): that request
/// is malformed, which is not the same answer as a deny.
fn context(text: &str) -> Result<Context, String> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "{} bytes, more than the limit of {MAX_SOURCE_BYTES}",
            text.len()
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let context = Context::from_json(value).map_err(|e| e.to_string())?;
    let mut probe = cedar::from_context(cedar_policy::Context::empty());
    for (key, field) in context.as_json().into_iter().flatten() {
        probe
            .insert(key, field.clone())
            .map_err(|e| e.to_string())?;
    }
    Ok(context)
}
