//! What happened, as the run goes: timestamped output lines, the SVIDs issued, and every
//! server certificate a client was shown, checked on the client side.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use meshguard::peer::{PeerIdentity, Svid};

/// The run's record, shared by the rotation tasks, the clients and the traffic driver.
pub(crate) struct Report {
    start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When each workload's SVID was replaced (every issue after the first).
    rotations: BTreeMap<&'static str, Vec<Duration>>,
    /// Each serial issued (lowercase hex, as `PeerIdentity::serial` reads it) with its
    /// workload and generation, to name what clients are shown.
    issued: HashMap<String, (&'static str, u64)>,
    /// How many server certificates clients checked.
    checked: u64,
    /// The generations of each server's SVID its clients were shown.
    seen: BTreeMap<&'static str, BTreeSet<u64>>,
    /// What was wrong with certificates clients were shown.
    bad: Vec<String>,
}

impl Report {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// Time since the start of the run.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Prints `text` after the time since the start.
    pub(crate) fn line(&self, text: impl fmt::Display) {
        println!("[{:>5.1}s] {text}", self.elapsed().as_secs_f64());
    }

    /// Records and prints that `name` took `svid`, its first (`rotated` false) or a
    /// replacement.
    pub(crate) fn issued(&self, name: &'static str, svid: &Svid, rotated: bool) {
        let serial = svid.identity().serial().unwrap_or("?").to_owned();
        let now = self.elapsed();
        {
            let mut state = self.state();
            state
                .issued
                .insert(serial.clone(), (name, svid.generation()));
            if rotated {
                state.rotations.entry(name).or_default().push(now);
            }
        }
        self.line(format_args!(
            "{:<7} {name:<9} generation {}  serial {}  valid until {} UTC",
            if rotated { "rotated" } else { "issued" },
            svid.generation(),
            short_serial(&serial),
            time_of_day(svid.not_after()),
        ));
    }

    /// The client-side check of the certificate the server `name` presented (its DER leaf,
    /// as the TLS connection reports it) on a connection opened after `sent`: not expired
    /// by then, valid from before now, and one the CA issued to `name`. Returns the
    /// generation it was.
    ///
    /// `sent` rather than now: a certificate presented in its last millisecond may expire
    /// before the answer arrives, which is no fault of the server.
    pub(crate) fn server_certificate(
        &self,
        name: &'static str,
        der: Option<&[u8]>,
        sent: SystemTime,
    ) -> Option<u64> {
        let found = der
            .ok_or_else(|| "no certificate".to_owned())
            .and_then(|der| PeerIdentity::from_der_chain(&[der]).map_err(|e| e.to_string()))
            .and_then(|leaf| self.judge(name, &leaf, sent));
        let mut state = self.state();
        state.checked = state.checked.saturating_add(1);
        match found {
            Ok(generation) => {
                state.seen.entry(name).or_default().insert(generation);
                Some(generation)
            }
            Err(problem) => {
                let problem = format!("{name} presented {problem}");
                drop(state);
                self.line(format_args!("CERTIFICATE PROBLEM: {problem}"));
                self.state().bad.push(problem);
                None
            }
        }
    }

    /// How many times `name` rotated between `from` and `to` (times since the start).
    pub(crate) fn rotations_between(&self, name: &str, from: Duration, to: Duration) -> usize {
        self.state().rotations.get(name).map_or(0, |times| {
            times.iter().filter(|t| (from..=to).contains(*t)).count()
        })
    }

    /// How many rotations `name` had in all.
    pub(crate) fn rotations(&self, name: &str) -> usize {
        self.state().rotations.get(name).map_or(0, Vec::len)
    }

    /// The generations of `name`'s SVID its clients were shown.
    pub(crate) fn generations_seen(&self, name: &str) -> Vec<u64> {
        self.state()
            .seen
            .get(name)
            .map(|seen| seen.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How many server certificates clients checked, and what was wrong with any.
    pub(crate) fn certificates(&self) -> (u64, Vec<String>) {
        let state = self.state();
        (state.checked, state.bad.clone())
    }

    fn judge(&self, name: &str, leaf: &PeerIdentity, sent: SystemTime) -> Result<u64, String> {
        let serial = leaf.serial().unwrap_or("?");
        if leaf.not_after().is_none_or(|t| t <= sent) {
            return Err(format!("an EXPIRED certificate (serial {serial})"));
        }
        if leaf.not_before().is_none_or(|t| t > SystemTime::now()) {
            return Err(format!("a certificate not yet valid (serial {serial})"));
        }
        match self.state().issued.get(serial) {
            Some((owner, generation)) if *owner == name => Ok(*generation),
            Some((owner, _)) => Err(format!("the certificate of {owner} (serial {serial})")),
            None => Err(format!("a certificate never issued (serial {serial})")),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Counters and lists only: a panic elsewhere while it was held leaves them usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A serial as the output shows it: hex without leading zeros.
fn short_serial(serial: &str) -> &str {
    match serial.trim_start_matches('0') {
        "" => "0",
        short => short,
    }
}

/// `hh:mm:ss` of a time in seconds since the Unix epoch, in UTC.
fn time_of_day(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use meshguard::peer::{SpiffeId, SvidStore};

    use super::{Report, short_serial, time_of_day};
    use crate::pki::{DemoCa, unix_now};

    #[test]
    fn serials_and_times_read_shortly() {
        assert_eq!(short_serial("000000000000000a"), "a");
        assert_eq!(short_serial("0000"), "0");
        assert_eq!(time_of_day(86_400 + 3 * 3600 + 4 * 60 + 5), "03:04:05");
    }

    /// The client-side check that stands behind the self-check's "no expired certificate
    /// was presented": it must refuse what a server should never present.
    #[test]
    fn the_client_side_check_refuses_expired_foreign_and_unknown_certificates() {
        let ca = DemoCa::new("mesh.demo").unwrap();
        let report = Report::new();
        let orders = SpiffeId::new("spiffe://mesh.demo/orders").unwrap();
        let now = unix_now().unwrap();
        let (leaf, key) = ca.mint(&orders, now - 1, now + 30).unwrap();
        let store = SvidStore::new();
        let svid = store.update(ca.delivery(leaf.clone(), key)).unwrap();
        report.issued("orders", &svid, false);
        let sent = SystemTime::now();

        assert_eq!(
            report.server_certificate("orders", Some(&leaf), sent),
            Some(1)
        );
        // orders' certificate, shown by a server that should be payments.
        assert_eq!(
            report.server_certificate("payments", Some(&leaf), sent),
            None
        );
        // orders' certificate on a connection opened after it expired.
        let later = sent + Duration::from_secs(31);
        assert_eq!(
            report.server_certificate("orders", Some(&leaf), later),
            None
        );
        // A certificate whose validity ended before the request was sent.
        let (old, _) = ca.mint(&orders, now - 60, now - 30).unwrap();
        assert_eq!(report.server_certificate("orders", Some(&old), sent), None);
        assert_eq!(report.server_certificate("orders", None, sent), None);

        let (checked, bad) = report.certificates();
        assert_eq!(checked, 5);
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].contains("the certificate of orders"), "{bad:?}");
        assert!(
            bad[1].contains("EXPIRED") && bad[2].contains("EXPIRED"),
            "{bad:?}"
        );
        assert!(bad[3].contains("no certificate"), "{bad:?}");
        assert_eq!(report.generations_seen("orders"), [1]);
    }
}
