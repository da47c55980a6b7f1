//! Reload on change by polling on a plain thread, shared by the watchers of policy files
//! and of SVID files.
//!
//! Polling works everywhere (Kubernetes volumes whose `..data` symlink is swapped included)
//! and needs no async runtime, so the core stays free of tokio. A watcher reads its files on
//! each poll, within the bounds of a load, and digests exactly the bytes read: modification
//! times are too coarse to see two quick same-size edits, and a digest of what was read is
//! the same whether a file was rewritten in place or swapped behind a symlink. [`Settle`]
//! says when such a digest is stable enough to load; [`PollThread`] runs the polls and stops
//! as soon as it is dropped.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A thread that calls a poll function every interval until dropped.
#[derive(Debug)]
pub(crate) struct PollThread {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PollThread {
    /// Spawns a thread named `name` that calls `poll` every `interval`, the first time one
    /// interval from now.
    ///
    /// The thread sleeps on a channel rather than in `thread::sleep`, so dropping the
    /// returned handle wakes it and ends it at once, whatever the interval.
    pub(crate) fn spawn<F>(name: &str, interval: Duration, mut poll: F) -> std::io::Result<Self>
    where
        F: FnMut() + Send + 'static,
    {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => poll(),
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PollThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in a poll (a user's callback) ended the thread already; nothing is
            // left to stop.
            let _ = thread.join();
        }
    }
}

/// The stability rule: load the bytes of a poll only when the poll before read the same
/// bytes, and they are not the bytes loaded (or refused) last.
///
/// A file being rewritten in place, or a set of files written one after the other, reads
/// differently on two polls in a row, so it is never loaded half-written.
#[derive(Debug)]
pub(crate) struct Settle {
    /// What was last loaded or refused.
    loaded: Vec<u8>,
    /// What the previous poll read.
    previous: Vec<u8>,
}

impl Settle {
    /// Starts from the fingerprint of what is loaded now.
    pub(crate) fn new(current: Vec<u8>) -> Self {
        Self {
            loaded: current.clone(),
            previous: current,
        }
    }

    /// Records a poll's fingerprint and says whether to load what it read.
    pub(crate) fn observe(&mut self, now: Vec<u8>) -> bool {
        let settled = now == self.previous && now != self.loaded;
        if settled {
            self.loaded.clone_from(&now);
        }
        self.previous = now;
        settled
    }
}
