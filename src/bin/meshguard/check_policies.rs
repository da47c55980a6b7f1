//! `meshguard check-policies`: load and validate policies without deciding anything.

use std::path::PathBuf;
use std::process::ExitCode;

use meshguard::policy::{PolicyEngine, PolicyError, PolicySource, SchemaSource};

/// Check that policies parse (and validate against a schema in strict mode). Exit status 0
/// when valid; otherwise every problem is printed on stderr and the status is 1 when the
/// policies or schema are invalid (too large or nested too deeply included), 2 when they
/// cannot be read.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A `.cedar` file or a directory of them.
    #[arg(long)]
    policies: PathBuf,
    /// A schema: `.cedarschema` text, or JSON when the name ends in `.json`.
    #[arg(long)]
    schema: Option<PathBuf>,
}

const INVALID: u8 = 1;
const UNREADABLE: u8 = 2;

pub(crate) fn run(args: Args) -> ExitCode {
    let mut builder = PolicyEngine::builder(PolicySource::path(&args.policies));
    if let Some(schema) = &args.schema {
        builder = builder.schema(SchemaSource::file(schema));
    }
    match builder.build() {
        Ok(engine) => {
            println!("OK: {} policies", engine.policy_ids().len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            if error.diagnostics().is_empty() {
                eprintln!("error: {error}");
            } else {
                for diagnostic in error.diagnostics() {
                    eprintln!("{diagnostic}");
                }
            }
            ExitCode::from(match error {
                PolicyError::Io { .. } | PolicyError::NoPolicyFiles { .. } => UNREADABLE,
                _ => INVALID,
            })
        }
    }
}
