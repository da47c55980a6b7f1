//! The end of a run: the summary, and for `--self-check` the verdict on it.

use std::time::Duration;

use crate::report::Report;
use crate::traffic::Tally;
use crate::{EDGE, INTRUDER, ORDERS, PAYMENTS};

/// The services that must rotate while the traffic runs, and how often at least.
const ROTATING: [&str; 3] = [EDGE, ORDERS, PAYMENTS];
const MIN_ROTATIONS: usize = 2;

/// Prints what the traffic got, the rotations and the certificates clients were shown.
pub(crate) fn summary(tally: &Tally, report: &Report) {
    let (checked, bad) = report.certificates();
    println!();
    println!(
        "summary over {:.1} s of traffic:",
        tally.ended.saturating_sub(tally.started).as_secs_f64()
    );
    println!(
        "  alice's checkouts       {} succeeded, {} failed",
        tally.buyer.expected, tally.buyer.unexpected
    );
    println!(
        "  bob (no buyer role)     refused by payments {} times, otherwise answered {} times",
        tally.no_role.expected, tally.no_role.unexpected
    );
    println!(
        "  intruder workload       refused by payments {} times, otherwise answered {} times",
        tally.intruder.expected, tally.intruder.unexpected
    );
    for name in ROTATING.into_iter().chain([INTRUDER]) {
        println!(
            "  {name:<9} rotations   {} while the traffic ran, {} in all",
            report.rotations_between(name, tally.started, tally.ended),
            report.rotations(name)
        );
    }
    println!(
        "  server certificates     {checked} checked by the clients, {} expired or unknown; \
         generations shown: orders {:?}, payments {:?}",
        bad.len(),
        report.generations_seen(ORDERS),
        report.generations_seen(PAYMENTS),
    );
}

/// What went other than expected; empty when the run passes the self-check.
pub(crate) fn problems(tally: &Tally, report: &Report) -> Vec<String> {
    let mut found = Vec::new();
    if tally.buyer.unexpected > 0 || tally.buyer.expected == 0 {
        found.push(format!(
            "{} of alice's checkouts failed ({} succeeded)",
            tally.buyer.unexpected, tally.buyer.expected
        ));
    }
    for (who, count) in [
        ("bob (no buyer role)", tally.no_role),
        ("the intruder", tally.intruder),
    ] {
        if count.unexpected > 0 || count.expected == 0 {
            found.push(format!(
                "{who} was not refused by payments' policies {} times (refused {})",
                count.unexpected, count.expected
            ));
        }
    }
    for name in ROTATING {
        let rotations = report.rotations_between(name, tally.started, tally.ended);
        if rotations < MIN_ROTATIONS {
            found.push(format!(
                "{name} rotated {rotations} times while the traffic ran, \
                 expected at least {MIN_ROTATIONS} (run 31 s or more)"
            ));
        }
    }
    let (checked, bad) = report.certificates();
    if checked == 0 {
        found.push("no server certificate was checked".to_owned());
    }
    found.extend(bad);
    // Rotation is only shown if new handshakes take the new SVIDs: the callers of orders
    // and payments must have been shown each generation issued while they called (up to a
    // second before the end, ten checkouts' time).
    let last_second = tally.ended.saturating_sub(Duration::from_secs(1));
    for name in [ORDERS, PAYMENTS] {
        let shown = report.generations_seen(name).len();
        let wanted = report
            .rotations_between(name, tally.started, last_second)
            .saturating_add(1);
        if shown < wanted {
            found.push(format!(
                "clients of {name} were shown {shown} generations of its SVID, \
                 expected {wanted}"
            ));
        }
    }
    found
}
