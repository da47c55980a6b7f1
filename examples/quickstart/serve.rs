//! Serving the quickstart for curl: on 127.0.0.1:3000 (another free port if that one is
//! taken), with ready-to-paste commands and fresh DEMO tokens, until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use tokio::net::TcpListener;

use crate::BoxError;
use crate::idp::DemoIdp;

/// Where the service listens unless the port is taken.
const PREFERRED_ADDR: &str = "127.0.0.1:3000";

/// Serves `app` until Ctrl-C, after printing curl commands with tokens from `idp`.
pub(crate) async fn run(app: Router, idp: &DemoIdp) -> Result<ExitCode, BoxError> {
    let listener = match TcpListener::bind(PREFERRED_ADDR).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("{PREFERRED_ADDR} is taken; listening on another port");
            TcpListener::bind("127.0.0.1:0").await?
        }
        Err(error) => return Err(error.into()),
    };
    print_curl_commands(listener.local_addr()?, idp)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_curl_commands(addr: SocketAddr, idp: &DemoIdp) -> Result<(), BoxError> {
    let base = format!("http://{addr}");
    println!("meshguard quickstart: documents service on {base}");
    println!("DEMO ONLY: tokens signed by a key published in examples/quickstart/idp.rs\n");
    println!("# alice is a member: allowed; bob is a guest: denied (tokens valid for 1 hour)");
    println!("ALICE='{}'", idp.alice()?);
    println!("BOB='{}'\n", idp.bob()?);
    let alice = "-H \"Authorization: Bearer $ALICE\" ";
    let bob = "-H \"Authorization: Bearer $BOB\" ";
    let commands = [
        ("", "/health", "200: public"),
        (alice, "/documents", "200: allowed by members-call-the-api"),
        (bob, "/documents", "403: no policy permits a guest"),
        (
            "",
            "/documents",
            "401: WWW-Authenticate: Bearer realm=\"documents\"",
        ),
        (
            alice,
            "/documents/d1",
            "200: alice owns d1 (PolicyCheck in the handler)",
        ),
        (alice, "/documents/d2", "403: d2 is bob's"),
    ];
    for (header, path, outcome) in commands {
        let command = format!("curl -i {header}{base}{path}");
        println!("{command:<76} # {outcome}");
    }
    println!("\nserving until Ctrl-C");
    Ok(())
}
