//! Deep nesting and long chains, built from repetition counts that byte-level mutation would
//! not reach within its input size: every policy, schema and entities text either loads or
//! is refused with an error, on a 2 MiB thread (a tokio worker's stack), and never overflows
//! it. A crash here means the nesting pre-scan let through something Cedar cannot parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::policy::{EntitySource, PolicyEngine, PolicySource, SchemaSource};

/// A tokio worker's stack, 2 MiB, in the optimized builds of fuzz/run-all.sh campaigns
/// (tests/policy/nesting.rs checks the same figure in plain debug builds). The unoptimized,
/// coverage-instrumented `--dev` build of the CI smoke run spends more stack per frame than
/// either (a schema and entities 60 levels deep, within the bounds, overflowed 2 MiB there),
/// so it gets twice as much.
const STACK: usize = if cfg!(debug_assertions) { 4 << 20 } else { 2 << 20 };

/// Pieces that nest or chain, as (opening, closing) around a core.
const PIECES: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a: ", "}"),
    ("ip(", ")"),
    ("!(", ")"),
    ("if context.a then ", " else false"),
    ("if context.a then true else ", ""),
    ("context.a || ", ""),
    ("1 + ", ""),
    ("", ".a"),
    ("", "[\"a\"]"),
    ("", ".contains(1)"),
    ("-", ""),
    ("\"((\\\"[\" == ", ""),
    ("// ((((\n", ""),
];

fuzz_target!(|data: &[u8]| {
    // Each 3 bytes: which piece, and how many times (up to 4,095).
    let mut open = String::new();
    let mut close = String::new();
    for chunk in data.chunks_exact(3).take(8) {
        let (Some(&which), Some(&high), Some(&low)) = (chunk.first(), chunk.get(1), chunk.get(2))
        else {
            return;
        };
        let Some((before, after)) = PIECES.get(usize::from(which) % PIECES.len()) else {
            return;
        };
        let count = usize::from(u16::from_be_bytes([high, low]) & 0x0fff);
        open.push_str(&before.repeat(count));
        close.insert_str(0, &after.repeat(count));
    }
    let policy = format!("permit(principal, action, resource) when {{ {open}true{close} }};");
    let depth = usize::from(data.first().copied().unwrap_or_default()) * 4;
    let schema = format!(
        "entity User {{ a: {}Long{} }}; action view appliesTo {{ principal: User, resource: User, context: {{ a: Bool }} }};",
        "Set<".repeat(depth),
        ">".repeat(depth)
    );
    let entities = format!(
        r#"[{{"uid": {{"type": "User", "id": "a"}}, "attrs": {{"a": {}1{}}}, "parents": []}}]"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let load = move || {
        for with_schema in [false, true] {
            let mut builder = PolicyEngine::builder(PolicySource::text(policy.clone()))
                .entities(EntitySource::json(entities.clone()));
            if with_schema {
                builder = builder.schema(SchemaSource::cedar(schema.clone()));
            }
            if let Err(error) = builder.build() {
                assert!(!error.reason().is_empty());
            }
        }
    };
    let Ok(thread) = std::thread::Builder::new().stack_size(STACK).spawn(load) else {
        return;
    };
    assert!(thread.join().is_ok(), "loading panicked");
});
