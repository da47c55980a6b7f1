//! Reload on change: a polling watcher on a plain thread.
//!
//! Polling works everywhere (containers with ConfigMap symlink swaps included) and needs no
//! async runtime, so the core stays free of tokio. Each poll hashes the files' contents:
//! modification times are too coarse to see two quick same-size edits. The thread sleeps on a
//! channel, so dropping the [`PolicyWatcher`] wakes and stops it at once.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::MAX_SOURCE_BYTES;
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
    /// Checks the contents of the policy, schema and entity files every `interval` and
    /// reloads when any changed since the call to `watch`, calling `on_event` with the outcome (failures
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
        // Taken before the thread starts, so that a change made right after `watch` returns
        // is seen however late the thread is scheduled.
        let mut seen = fingerprint(&paths);
        let thread = std::thread::Builder::new()
            .name("meshguard-policy-watch".to_owned())
            .spawn(move || {
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

/// A hash of every watched file's content (directories expanded one level, in name order);
/// a missing or unreadable file hashes as such, so its return is a change too.
fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for path in paths {
        hash_file(path, &mut hasher);
        if let Ok(entries) = std::fs::read_dir(path) {
            let mut children: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            children.sort();
            for child in children {
                hash_file(&child, &mut hasher);
            }
        }
    }
    hasher.finish()
}

fn hash_file(path: &Path, hasher: &mut DefaultHasher) {
    path.hash(hasher);
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() && metadata.len() <= MAX_SOURCE_BYTES as u64 => {
            std::fs::read(path).ok().hash(hasher);
        }
        Ok(metadata) => (metadata.is_dir(), metadata.len()).hash(hasher),
        Err(_) => "missing".hash(hasher),
    }
}
