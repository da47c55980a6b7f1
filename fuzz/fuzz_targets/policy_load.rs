//! Policy, schema and entity loading from arbitrary text: never panics, never overflows the
//! 2 MiB stack of a tokio worker (the nesting pre-scan refuses what would), and a set that
//! loads decides a request without panicking, failing closed on anything odd.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::policy::{
    Context, Entities, EntitySource, EntityUid, PolicyEngine, PolicySource, Request, SchemaSource,
};

/// A tokio worker's stack, 2 MiB, in the optimized builds of fuzz/run-all.sh campaigns
/// (tests/policy/nesting.rs checks the same figure in plain debug builds). The unoptimized,
/// coverage-instrumented `--dev` build of the CI smoke run spends more stack per frame than
/// either (a schema and entities 60 levels deep, within the bounds, overflowed 2 MiB there),
/// so it gets twice as much.
const STACK: usize = if cfg!(debug_assertions) { 4 << 20 } else { 2 << 20 };

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.to_owned();
    let Ok(thread) =
        std::thread::Builder::new().stack_size(STACK).spawn(move || load_and_decide(&text))
    else {
        return;
    };
    assert!(thread.join().is_ok(), "loading or deciding panicked");
});

fn load_and_decide(text: &str) {
    // Sections: policies, schema (Cedar or JSON by its first character), static entities,
    // request entities, context.
    let mut parts = text.splitn(5, '\u{0}');
    let policies = parts.next().unwrap_or_default();
    let schema = parts.next();
    let entities = parts.next();
    let request_entities = parts.next();
    let context = parts.next();

    let mut builder = PolicyEngine::builder(PolicySource::text(policies));
    if let Some(schema) = schema.filter(|s| !s.is_empty()) {
        builder = builder.schema(if schema.starts_with('{') {
            SchemaSource::json(schema)
        } else {
            SchemaSource::cedar(schema)
        });
    }
    if let Some(entities) = entities.filter(|s| !s.is_empty()) {
        builder = builder.entities(EntitySource::json(entities));
    }
    let engine = match builder.build() {
        Ok(engine) => engine,
        Err(error) => {
            assert!(!error.reason().is_empty());
            let _ = error.to_string();
            return;
        }
    };
    let (Ok(principal), Ok(action), Ok(resource)) = (
        EntityUid::new("User", "alice"),
        EntityUid::new("Action", "view"),
        EntityUid::new("Photo", "p"),
    ) else {
        return;
    };
    let mut request = Request::new(principal, action, resource);
    if let Some(Ok(entities)) = request_entities.map(Entities::from_json_str) {
        request = request.with_entities(entities);
    }
    if let Some(Ok(value)) = context.map(serde_json::from_str) {
        if let Ok(context) = Context::from_json(value) {
            request = request.with_context(context);
        }
    }
    let decision = engine.authorize_request(request);
    if !decision.errors().is_empty() {
        assert!(!decision.is_allow(), "errors must deny by default");
    }
    let _ = decision.audit_record().to_json();
}
