//! Reload on change: a polling watcher on a plain thread.
//!
//! Polling the sources' sizes and modification times works everywhere (containers with
//! ConfigMap symlink swaps included) and needs no async runtime, so the core stays free of
//! tokio. The thread sleeps on a channel, so dropping the [`PolicyWatcher`] wakes and stops it
//! at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::engine::PolicyEngine;
use super::error::PolicyError;

/// What one reload attempt by a [`PolicyWatcher`] gave.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadEvent {
    /// The sources changed and the new set is in force with this generation.
    Reloaded {
        /// The new generation.
        generation: u64,
    },
    /// The sources changed but did not load; the previous set stays in force.
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
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PolicyEngine {
    /// Checks the sizes and modification times of the policy, schema and entity files every
    /// `interval` and reloads when any changed, calling `on_event` with the outcome (failures
    /// are also logged by [`PolicyEngine::reload`]). A failed reload is retried at the next
    /// change.
    ///
    /// # Errors
    /// The error of spawning the polling thread.
    pub fn watch<F>(&self, interval: Duration, on_event: F) -> std::io::Result<PolicyWatcher>
    where
        F: FnMut(ReloadEvent) + Send + 'static,
    {
        let engine = self.clone();
        let paths = self.sources().watched_paths();
        let (stop, stopped) = mpsc::channel::<()>();
        let mut on_event = on_event;
        let thread = std::thread::Builder::new()
            .name("meshguard-policy-watch".to_owned())
            .spawn(move || {
                let mut seen = fingerprint(&paths);
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let now = fingerprint(&paths);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    on_event(match engine.reload() {
                        Ok(generation) => ReloadEvent::Reloaded { generation },
                        Err(error) => ReloadEvent::Failed { error },
                    });
                }
            })?;
        Ok(PolicyWatcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the user's callback ended the thread already; nothing is left to stop.
            let _ = thread.join();
        }
    }
}

type Stamp = Option<(u64, Option<SystemTime>)>;

/// Size and modification time of every watched file, directories expanded one level.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, Stamp)> {
    let mut out = Vec::new();
    for path in paths {
        out.push((path.clone(), stamp(path)));
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut children: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.sort();
            for child in children {
                let stamp = stamp(&child);
                out.push((child, stamp));
            }
        }
    }
    out
}

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}
