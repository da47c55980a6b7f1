//! meshguard between services: an edge and two services (orders → payments) on 127.0.0.1,
//! each with its own X509-SVID from a DEMO certificate authority, living 30 seconds and
//! rotated at half-life while users' requests keep flowing.
//!
//! ```sh
//! cargo run --example mesh --features axum,rustls,outgoing                  # 35 s, a summary
//! cargo run --example mesh --features axum,rustls,outgoing -- --self-check  # exit 1 unless as expected
//! ```
//!
//! A user's token, signed by a DEMO key minted at start, enters at the edge. The edge calls
//! orders and orders calls payments over mTLS: `peer::svid_server_config` behind axum,
//! `peer::svid_client_config` in reqwest accepting only the callee's SPIFFE ID, both reading
//! the workload's `SvidStore` at every handshake. Each hop forwards the user's token with
//! meshguard's outgoing layer (`Credentials::forward`). Payments decides with Cedar on both
//! the user (her `buyer` role) and the calling workload (orders' SPIFFE ID): an intruder
//! workload with a valid SVID of the same trust domain and a buyer's token is refused, and so
//! is a user without the role.
//!
//! `pki.rs` is the demo CA and each workload's rotation, `idp.rs` the demo identity
//! provider, `edge.rs`, `orders.rs` and `payments.rs` the services with `serve.rs` what
//! they share and `policies/` their Cedar policies, `downstream.rs` the calling side,
//! `traffic.rs` the users and the intruder, `report.rs` the output and the client-side
//! certificate checks, `self_check.rs` the summary and the verdict, `args.rs` the command
//! line. Nothing is read from disk or the network beyond 127.0.0.1.

mod args;
mod downstream;
mod edge;
mod idp;
mod orders;
mod payments;
mod pki;
mod report;
mod self_check;
mod serve;
mod traffic;

use std::process::ExitCode;
use std::sync::Arc;

use crate::args::Mode;
use crate::downstream::Downstream;
use crate::idp::DemoIdp;
use crate::pki::{DemoCa, SVID_LIFETIME, Workload};
use crate::report::Report;
use crate::traffic::{Tally, Traffic};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// DEMO ONLY: the trust domain of the mesh.
const TRUST_DOMAIN: &str = "mesh.demo";

/// The workloads, by the last segment of their SPIFFE IDs (`spiffe://mesh.demo/<name>`).
const EDGE: &str = "edge";
const ORDERS: &str = "orders";
const PAYMENTS: &str = "payments";
const INTRUDER: &str = "intruder";

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    let (seconds, self_check) = match args::mode(std::env::args().skip(1)) {
        Ok(Mode::Run(seconds)) => (seconds, false),
        Ok(Mode::SelfCheck(seconds)) => (seconds, true),
        Ok(Mode::Help) => {
            print!("{}", args::USAGE);
            return Ok(ExitCode::SUCCESS);
        }
        Err(unknown) => {
            eprint!("mesh: {unknown}\n{}", args::USAGE);
            return Ok(ExitCode::from(2));
        }
    };
    let report = Arc::new(Report::new());
    let tally = run(seconds, &report).await?;
    self_check::summary(&tally, &report);
    if !self_check {
        return Ok(ExitCode::SUCCESS);
    }
    let problems = self_check::problems(&tally, &report);
    if problems.is_empty() {
        println!("\nself-check passed");
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nself-check FAILED:");
    for problem in &problems {
        println!("  - {problem}");
    }
    Ok(ExitCode::FAILURE)
}

/// Starts the mesh and sends the traffic for `seconds`.
async fn run(seconds: u64, report: &Arc<Report>) -> Result<Tally, BoxError> {
    println!(
        "meshguard mesh example: trust domain {TRUST_DOMAIN}, SVIDs living {} s from a DEMO CA \
         minted at start, rotated at half-life",
        SVID_LIFETIME.as_secs()
    );
    let ca = Arc::new(DemoCa::new(TRUST_DOMAIN)?);
    let idp = DemoIdp::new()?;
    let [edge, orders, payments, intruder] = [EDGE, ORDERS, PAYMENTS, INTRUDER]
        .map(|name| Workload::start(name, &spiffe_id(name), &ca, report));
    let (edge, orders, payments, intruder) = (edge?, orders?, payments?, intruder?);

    let payments_addr = payments::serve(&payments, &idp).await?;
    let to_payments = Downstream::new(&orders, &payments, payments_addr, report)?;
    let orders_addr = orders::serve(&orders, &idp, to_payments).await?;
    let to_orders = Downstream::new(&edge, &orders, orders_addr, report)?;
    let edge_addr = edge::serve(&idp, to_orders).await?;
    println!("edge      http://{edge_addr}   (users' side, plain HTTP on loopback)");
    println!(
        "orders    https://{orders_addr}  (mTLS, {})",
        orders.id.as_str()
    );
    println!(
        "payments  https://{payments_addr}  (mTLS, {})",
        payments.id.as_str()
    );
    println!("traffic for {seconds} s: alice (buyer) 10/s, bob (no role) and the intruder 1/s\n");

    let traffic = Traffic {
        edge: edge_addr,
        intruder: Downstream::new(&intruder, &payments, payments_addr, report)?,
        buyer_token: idp.token("alice", &["buyer"])?,
        no_role_token: idp.token("bob", &["browser"])?,
        report: Arc::clone(report),
    };
    traffic.run(seconds).await
}

/// The SPIFFE ID of the workload `name`.
fn spiffe_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/{name}")
}
