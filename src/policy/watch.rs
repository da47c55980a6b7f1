//! Reload on change: a polling watcher on a plain thread.
//!
//! Polling works everywhere (containers with ConfigMap symlink swaps included) and needs no
//! async runtime, so the core stays free of tokio. Each poll reads the files, within the same
//! bounds as a load, and digests exactly the bytes read: modification times are too coarse to
//! see two quick same-size edits. A change is loaded only once it has settled — when two
//! polls in a row read the same bytes — and what is loaded is those very bytes, so a file
//! being rewritten in place is not enforced half-written. The thread sleeps on a channel, so
//! dropping the [`PolicyWatcher`] wakes and stops it at once. The thread and the settling
//! rule are shared with the SVID file watcher (`crate::watch`).

use std::time::Duration;

use super::engine::PolicyEngine;
use super::error::PolicyError;
use super::read::fingerprint;
use crate::watch::{PollThread, Settle};

/// What one reload attempt by a [`PolicyWatcher`] gave.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadEvent {
    /// The sources changed and the new set is in force with this generation.
    Reloaded {
        /// The new generation.
        generation: u64,
    },
    /// The sources changed but did not load, or were refused (such as a set left without
    /// policies, [`PolicyError::NoPolicies`]); the previous set stays in force.
    Failed {
        /// Why.
        error: PolicyError,
    },
}

/// Polls an engine's file sources and reloads it when they change; stops when dropped.
///
/// Made by [`PolicyEngine::watch`].
#[derive(Debug)]
pub struct PolicyWatcher {
    // Dropping it stops and joins the polling thread.
    _thread: PollThread,
}

impl PolicyEngine {
    /// Reads the policy, schema and entity files every `interval` and, once they differ from
    /// what was read at the call to `watch` or at the last reload and two reads in a row
    /// gave the same bytes, reloads from those bytes, calling `on_event` with the outcome
    /// (failures are also logged as by [`PolicyEngine::reload`]). A change therefore takes
    /// effect one to two intervals after the files stop changing. A failed or refused reload
    /// is retried at the next change.
    ///
    /// # Errors
    /// The error of spawning the polling thread.
    pub fn watch<F>(&self, interval: Duration, on_event: F) -> std::io::Result<PolicyWatcher>
    where
        F: FnMut(ReloadEvent) + Send + 'static,
    {
        let mut on_event = on_event;
        // Taken before the thread starts, so that a change made right after `watch` returns
        // is seen however late the thread is scheduled.
        let mut poller = Poller::new(self.clone());
        let thread = PollThread::spawn("meshguard-policy-watch", interval, move || {
            if let Some(event) = poller.poll() {
                on_event(event);
            }
        })?;
        Ok(PolicyWatcher { _thread: thread })
    }
}

/// One watcher's state: the engine, and the fingerprints that say when to reload.
struct Poller {
    engine: PolicyEngine,
    settle: Settle,
}

impl Poller {
    fn new(engine: PolicyEngine) -> Self {
        let now = fingerprint(&engine.sources().read());
        Self {
            engine,
            settle: Settle::new(now),
        }
    }

    /// Reads the sources once and reloads from what was read when it has settled.
    fn poll(&mut self) -> Option<ReloadEvent> {
        let read = self.engine.sources().read();
        if !self.settle.observe(fingerprint(&read)) {
            return None;
        }
        Some(match self.engine.reload_from(read) {
            Ok(generation) => ReloadEvent::Reloaded { generation },
            Err(error) => ReloadEvent::Failed { error },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySource;

    #[test]
    fn a_change_loads_only_after_two_equal_polls() {
        let mut settle = Settle::new(b"a".to_vec());
        assert!(!settle.observe(b"a".to_vec()), "nothing changed");
        assert!(!settle.observe(b"half".to_vec()), "seen once");
        assert!(!settle.observe(b"b".to_vec()), "still changing");
        assert!(settle.observe(b"b".to_vec()), "settled");
        assert!(!settle.observe(b"b".to_vec()), "loaded already");
        assert!(!settle.observe(b"c".to_vec()));
        assert!(!settle.observe(b"b".to_vec()), "back to what is loaded");
        assert!(!settle.observe(b"b".to_vec()), "back to what is loaded");
    }

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("meshguard-watch-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const FULL: &str = "@id(\"p-2\") permit(principal, action, resource);\n@id(\"f-2\") forbid(principal == User::\"mallory\", action, resource);\n";

    fn ids(engine: &PolicyEngine) -> Vec<String> {
        engine
            .policy_ids()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_file_rewritten_in_place_is_never_enforced_half_written() {
        let dir = Dir::new("half");
        let file = dir.0.join("policies.cedar");
        std::fs::write(&file, "@id(\"p-1\") permit(principal, action, resource);").unwrap();
        let engine = PolicyEngine::builder(PolicySource::path(&file))
            .build()
            .unwrap();
        let mut poller = Poller::new(engine.clone());

        // The first half is a valid set: the permit without its forbid.
        let half = FULL.find('\n').unwrap() + 1;
        std::fs::write(&file, &FULL[..half]).unwrap();
        assert!(poller.poll().is_none());
        std::fs::write(&file, FULL).unwrap();
        assert!(poller.poll().is_none());
        assert_eq!(ids(&engine), ["p-1"]);
        let event = poller.poll();
        assert!(
            matches!(event, Some(ReloadEvent::Reloaded { generation: 2 })),
            "{event:?}"
        );
        assert_eq!(ids(&engine), ["f-2", "p-2"]);
        assert!(poller.poll().is_none());
    }

    #[test]
    fn an_emptied_file_is_refused_once_and_a_later_change_loads() {
        let dir = Dir::new("empty");
        let file = dir.0.join("policies.cedar");
        std::fs::write(&file, FULL).unwrap();
        let engine = PolicyEngine::builder(PolicySource::path(&file))
            .build()
            .unwrap();
        let mut poller = Poller::new(engine.clone());
        std::fs::write(&file, "").unwrap();
        assert!(poller.poll().is_none());
        let event = poller.poll();
        let Some(ReloadEvent::Failed { error }) = event else {
            panic!("{event:?}")
        };
        assert_eq!(error.reason(), "no_policies");
        assert!(poller.poll().is_none(), "refused once, not at every poll");
        assert_eq!(ids(&engine), ["f-2", "p-2"]);
        std::fs::write(&file, "@id(\"p-3\") permit(principal, action, resource);").unwrap();
        assert!(poller.poll().is_none());
        assert!(matches!(poller.poll(), Some(ReloadEvent::Reloaded { .. })));
        assert_eq!(ids(&engine), ["p-3"]);
    }
}
