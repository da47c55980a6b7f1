//! Reloading policy sets: atomic swaps, generations, broken reloads, and the polling watcher.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use meshguard::policy::{
    EntitySource, PolicyEngine, PolicySource, ReloadEvent, Request, SchemaSource,
};
use policy_support::{Recorder, Scratch, uid};

fn request() -> Request {
    Request::new(
        uid(r#"User::"alice""#),
        uid(r#"Action::"read""#),
        uid(r#"Doc::"d""#),
    )
}

/// Version `k` of a two-file set: both files must be seen together.
fn write_version(dir: &Scratch, k: usize) {
    dir.write(
        "a.cedar",
        &format!("@id(\"a-{k}\") permit(principal, action, resource);"),
    );
    dir.write(
        "b.cedar",
        &format!("@id(\"b-{k}\") permit(principal, action == Action::\"read\", resource);"),
    );
}

#[test]
fn reload_swaps_the_set_and_bumps_the_generation() {
    let dir = Scratch::new("swap");
    write_version(&dir, 0);
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap();
    assert_eq!(engine.generation(), 1);
    assert_eq!(engine.authorize_request(request()).policy_ids()[0], "a-0");
    write_version(&dir, 1);
    assert_eq!(engine.reload().unwrap(), 2);
    let decision = engine.authorize_request(request());
    assert_eq!(decision.details().generation(), 2);
    assert_eq!(decision.policy_ids()[0], "a-1");
}

#[test]
fn broken_reload_keeps_the_previous_set_and_says_why() {
    let dir = Scratch::new("broken");
    write_version(&dir, 0);
    let schema = dir.write(
        "schema.cedarschema",
        "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };",
    );
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .schema(SchemaSource::file(&schema))
        .build()
        .unwrap();
    let recorder = Recorder::default();

    // A syntax error in one of two files.
    dir.write("b.cedar", "permit(principal, action, resource)");
    let err = recorder.record(|| engine.reload().unwrap_err());
    assert_eq!(err.reason(), "invalid");
    assert_eq!(err.diagnostics()[0].origin(), "b.cedar");
    let logged = recorder.events("meshguard::policy::reload");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].level, tracing::Level::ERROR);
    assert_eq!(logged[0].field("reason"), Some("invalid"));

    // A policy that no longer validates against the schema.
    dir.write(
        "b.cedar",
        "permit(principal, action == Action::\"write\", resource);",
    );
    assert_eq!(
        engine.reload().unwrap_err().diagnostics()[0].policy_id(),
        Some("b.cedar#0")
    );

    // Files gone.
    std::fs::remove_file(dir.path("a.cedar")).unwrap();
    std::fs::remove_file(dir.path("b.cedar")).unwrap();
    assert_eq!(engine.reload().unwrap_err().reason(), "no_policy_files");

    let decision = engine.authorize_request(request());
    assert!(decision.is_allow());
    assert_eq!(decision.details().generation(), 1);
    assert_eq!(decision.policy_ids(), ["a-0", "b-0"]);
}

#[test]
fn entities_reload_with_the_policies() {
    let dir = Scratch::new("entities");
    let entities = dir.write("entities.json", r#"[{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Role", "id": "admin"}]}]"#);
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"permit(principal in Role::"admin", action, resource);"#,
    ))
    .entities(EntitySource::file(&entities))
    .build()
    .unwrap();
    assert!(engine.authorize_request(request()).is_allow());
    dir.write(
        "entities.json",
        r#"[{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []}]"#,
    );
    engine.reload().unwrap();
    assert!(!engine.authorize_request(request()).is_allow());
}

#[test]
fn concurrent_requests_never_see_a_half_loaded_set() {
    let dir = Scratch::new("concurrent");
    write_version(&dir, 0);
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap();
    let expected: Arc<Mutex<HashMap<u64, usize>>> = Arc::new(Mutex::new(HashMap::from([(1, 0)])));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let engine = engine.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let decision = engine.authorize_request(request());
                    assert!(decision.is_allow(), "{decision:?}");
                    let ids: Vec<String> = decision
                        .policy_ids()
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    seen.push((decision.details().generation(), ids));
                }
                seen
            })
        })
        .collect();
    for k in 1..=30 {
        write_version(&dir, k);
        let generation = engine.reload().unwrap();
        expected.lock().unwrap().insert(generation, k);
        std::thread::sleep(Duration::from_millis(2));
    }
    done.store(true, Ordering::Relaxed);
    let expected = expected.lock().unwrap();
    let mut generations = std::collections::BTreeSet::new();
    for worker in workers {
        for (generation, ids) in worker.join().unwrap() {
            let k = expected[&generation];
            assert_eq!(
                ids,
                [format!("a-{k}"), format!("b-{k}")],
                "generation {generation}"
            );
            generations.insert(generation);
        }
    }
    assert!(generations.len() > 1, "requests ran across reloads");
}

#[test]
fn watcher_reloads_on_change_and_reports_failures() {
    let dir = Scratch::new("watch");
    write_version(&dir, 0);
    let engine = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap();
    let (events, received) = mpsc::channel();
    let watcher = engine
        .watch(Duration::from_millis(20), move |event| {
            let _ = events.send(event);
        })
        .unwrap();

    write_version(&dir, 1);
    let event = received.recv_timeout(Duration::from_secs(20)).unwrap();
    let ReloadEvent::Reloaded { generation } = event else {
        panic!("{event:?}")
    };
    assert!(generation >= 2);
    // Both files may land in one poll or in two; wait for the set with both.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while engine.authorize_request(request()).policy_ids() != ["a-1", "b-1"] {
        assert!(
            std::time::Instant::now() < deadline,
            "new set never in force"
        );
        let _ = received.recv_timeout(Duration::from_millis(50));
    }

    dir.write("a.cedar", "permit(");
    let failed = loop {
        match received.recv_timeout(Duration::from_secs(20)).unwrap() {
            ReloadEvent::Failed { error } => break error,
            ReloadEvent::Reloaded { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(failed.reason(), "invalid");
    assert_eq!(
        engine.authorize_request(request()).policy_ids(),
        ["a-1", "b-1"]
    );
    drop(watcher);

    write_version(&dir, 2);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        engine.authorize_request(request()).policy_ids(),
        ["a-1", "b-1"],
        "a dropped watcher no longer reloads"
    );
}

/// Two files, a `permit` for everyone and the `forbid` that stops mallory.
fn write_guarded(dir: &Scratch, forbid: &str) {
    dir.write(
        "a.cedar",
        r#"@id("all") permit(principal, action, resource);"#,
    );
    dir.write("b.cedar", forbid);
}

fn mallory() -> Request {
    Request::new(
        uid(r#"User::"mallory""#),
        uid(r#"Action::"read""#),
        uid(r#"Doc::"d""#),
    )
}

#[test]
fn a_broken_candidate_never_blocks_the_enforced_set() {
    let dir = Scratch::new("shadow-broken");
    write_guarded(&dir, "// no forbid yet");
    let candidates = Scratch::new("shadow-candidate");
    let candidate = candidates.write("candidate.cedar", "permit(principal, action, resource)");
    let recorder = Recorder::default();
    let engine = recorder
        .record(|| {
            PolicyEngine::builder(PolicySource::path(&dir.0))
                .shadow(PolicySource::path(&candidate))
                .build()
        })
        .expect("the candidate's syntax error does not fail build()");
    let dropped = recorder.events("meshguard::policy::shadow");
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0].level, tracing::Level::WARN);
    assert_eq!(dropped[0].field("reason"), Some("invalid"));
    assert!(engine.authorize_request(mallory()).is_allow());
    assert!(
        engine
            .authorize_request(mallory())
            .details()
            .shadow()
            .is_none()
    );

    // The urgent forbid is applied although the candidate is still broken.
    dir.write(
        "b.cedar",
        r#"@id("no-mallory") forbid(principal == User::"mallory", action, resource);"#,
    );
    assert_eq!(engine.reload().unwrap(), 2);
    assert_eq!(
        engine.authorize_request(mallory()).policy_ids(),
        ["no-mallory"]
    );

    // A candidate that is gone is dropped the same way; one that loads is evaluated again.
    std::fs::remove_file(&candidate).unwrap();
    engine.reload().unwrap();
    candidates.write("candidate.cedar", "permit(principal, action, resource);");
    engine.reload().unwrap();
    let shadow = engine.authorize_request(mallory());
    assert!(shadow.details().shadow().unwrap().would_allow());
}

#[test]
fn a_reload_to_zero_policies_is_refused_unless_allowed() {
    let dir = Scratch::new("empty");
    let file = dir.write(
        "p.cedar",
        r#"@id("all") permit(principal, action, resource);"#,
    );
    let engine = PolicyEngine::builder(PolicySource::path(&file))
        .build()
        .unwrap();
    dir.write("p.cedar", "");
    let recorder = Recorder::default();
    let error = recorder.record(|| engine.reload().unwrap_err());
    assert_eq!(error.reason(), "no_policies");
    let logged = recorder.events("meshguard::policy::reload");
    assert_eq!(logged[0].level, tracing::Level::WARN);
    assert_eq!(engine.policy_ids(), ["all"]);
    assert!(engine.authorize_request(request()).is_allow());

    dir.write(
        "p.cedar",
        r#"@id("all") permit(principal, action, resource);"#,
    );
    let allowing = PolicyEngine::builder(PolicySource::path(&file))
        .allow_empty_reload()
        .build()
        .unwrap();
    dir.write("p.cedar", "// emptied on purpose");
    let recorder = Recorder::default();
    recorder.record(|| allowing.reload().unwrap());
    assert!(allowing.policy_ids().is_empty());
    assert!(!allowing.authorize_request(request()).is_allow());
    let logged = recorder.events("meshguard::policy::reload");
    assert!(
        logged.iter().any(|e| e.level == tracing::Level::WARN),
        "{logged:?}"
    );
}

#[test]
fn watcher_refuses_an_emptied_file_and_keeps_the_set() {
    let dir = Scratch::new("watch-empty");
    write_version(&dir, 0);
    let single = dir.path("a.cedar");
    let engine = PolicyEngine::builder(PolicySource::path(&single))
        .build()
        .unwrap();
    let (events, received) = mpsc::channel();
    let _watcher = engine
        .watch(Duration::from_millis(20), move |event| {
            let _ = events.send(event);
        })
        .unwrap();
    dir.write("a.cedar", "");
    let event = received.recv_timeout(Duration::from_secs(20)).unwrap();
    let ReloadEvent::Failed { error } = event else {
        panic!("{event:?}")
    };
    assert_eq!(error.reason(), "no_policies");
    assert_eq!(engine.policy_ids(), ["a-0"]);
    assert!(engine.authorize_request(request()).is_allow());
}

#[test]
fn a_policy_directory_is_bounded_as_a_whole() {
    let dir = Scratch::new("dir-bound");
    // Two files, each under the per-file bound, together over it.
    let half = "/".repeat(meshguard::policy::MAX_SOURCE_BYTES / 2 + 1);
    dir.write("a.cedar", &half);
    dir.write("b.cedar", &half);
    let error = PolicyEngine::builder(PolicySource::path(&dir.0))
        .build()
        .unwrap_err();
    let meshguard::policy::PolicyError::TooLarge { origin, limit, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(origin, &dir.0.display().to_string());
    assert_eq!(*limit, meshguard::policy::MAX_SOURCE_BYTES as u64);
}
