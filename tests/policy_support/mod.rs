//! Helpers shared by the policy test binaries: scratch directories and a tracing recorder.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use meshguard::policy::EntityUid;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// A fresh, empty directory under the system's temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshguard-policy-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn uid(text: &str) -> EntityUid {
    text.parse().unwrap()
}

/// One recorded event: its target, level and fields as text.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub target: String,
    pub level: tracing::Level,
    pub fields: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that keeps every event, for asserting on audit and shadow logs.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    /// Runs `f` with this recorder as the thread's subscriber.
    ///
    /// tracing-core caches each callsite's interest for the whole process, and while only one
    /// dispatcher exists it asks the *registering* thread's subscriber: a callsite that
    /// another test thread, with no subscriber, reaches first would be cached as never
    /// wanted, and this recorder would miss its events (seen once in CI as a missing audit
    /// event). A second dispatcher that is always alive and answers "sometimes" makes every
    /// registration ask each event's own thread instead.
    pub fn record<R>(&self, f: impl FnOnce() -> R) -> R {
        static ANCHOR: OnceLock<Dispatch> = OnceLock::new();
        ANCHOR.get_or_init(|| Dispatch::new(Anchor));
        tracing::subscriber::with_default(self.clone(), || {
            tracing::callsite::rebuild_interest_cache();
            f()
        })
    }

    pub fn events(&self, target: &str) -> Vec<Recorded> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == target)
            .cloned()
            .collect()
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Recorded {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A subscriber that wants nothing itself but keeps every callsite's interest at
/// "sometimes" (see [`Recorder::record`]).
struct Anchor;

impl Subscriber for Anchor {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The stack of a tokio worker or a default spawned thread: 2 MiB.
pub const SMALL_STACK: usize = 2 * 1024 * 1024;

/// Runs `body` on a thread with a [`SMALL_STACK`], inside a child process (this test binary
/// run again with only `test`, named as the harness lists it: `module::name`), so that a
/// stack overflow, which aborts a process, fails this test instead of killing the whole test
/// binary.
pub fn on_small_stack_in_child(test: &str, body: impl FnOnce() + Send + 'static) {
    const CHILD: &str = "MESHGUARD_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(body)
            .unwrap()
            .join()
            .unwrap();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child running `{test}` ended with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
