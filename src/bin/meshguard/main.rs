//! The `meshguard` command-line tool: verify tokens, inspect peers, evaluate policies.
//!
//! Exit codes are a contract: 0 success, 1 rejected (with one `rejected: <reason>` line on
//! stderr), 2 usage, input or configuration errors (unreadable files included); `authorize`
//! exits 3 for a deny (and 2 for a malformed request), and `check-policies` 1 for invalid
//! policies (2 when they cannot be read). `inspect-peer` keeps the contract it was given
//! first (issue 5): every problem with its input, an unreadable `--cert` file included, is
//! exit 1 with `rejected: <reason>` (`cannot_read_file`); only usage errors are exit 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod authorize;
mod check_policies;
mod dpop;
mod inspect_peer;
mod verify_svid;
mod verify_token;

#[derive(Parser)]
#[command(name = "meshguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the identity of a client certificate (PEM) or an XFCC header as JSON.
    InspectPeer(inspect_peer::Args),
    /// Verify a JWT access token against local keys or a remote JWKS, an opaque one by
    /// introspection, or a JWT-SVID against SPIFFE bundles.
    // Boxed: its flags for every kind of credential make it several times the others' size.
    VerifyToken(Box<verify_token::Args>),
    /// Evaluate one request against Cedar policies.
    Authorize(authorize::Args),
    /// Load and validate Cedar policies (and a schema) without deciding anything.
    CheckPolicies(check_policies::Args),
}

fn main() -> ExitCode {
    // clap exits with status 2 on usage errors, which is the CLI contract.
    let cli = Cli::parse();
    match cli.command {
        Command::InspectPeer(args) => inspect_peer::run(args),
        Command::VerifyToken(args) => verify_token::run(*args),
        Command::Authorize(args) => authorize::run(args),
        Command::CheckPolicies(args) => check_policies::run(args),
    }
}
