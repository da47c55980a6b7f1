//! The `meshguard` command-line tool: verify tokens, inspect peers, evaluate policies.
use clap::{Parser, Subcommand};
use std::process::ExitCode;
mod authorize;
mod check_policies;
#[derive(Parser)]
#[command(name = "meshguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}
#[derive(Subcommand)]
enum Command {
    /// Evaluate one request against Cedar policies.
    Authorize(authorize::Args),
    /// Load and validate Cedar policies (and a schema) without deciding anything.
    CheckPolicies(check_policies::Args),
}
fn main() -> ExitCode {
    // clap exits with status 2 on usage errors, which is the CLI contract.
    let cli = Cli::parse();
    match cli.command {
        Command::Authorize(args) => authorize::run(args),
        Command::CheckPolicies(args) => check_policies::run(args),
    }
}
