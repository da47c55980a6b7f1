//! Cost bounded by input size: every parser of untrusted input spends about as much on the
//! worst input we can build (many members, deep nesting, long escapes, many elements) as on
//! a normal input of the same size.
//!
//! Each test measures both inputs in this process and fails when worst/normal passes
//! [`BOUND`]. The measure is time, taken as the minimum of many interleaved samples: other
//! load on the machine only ever adds time, so the minimum is what the work itself costs.
//! Counting operations would need hooks inside the parsers (or an allocator, which needs
//! `unsafe`, forbidden here; and a quadratic scan allocates nothing). The bound sits far
//! from both outcomes, so a busy machine cannot flip it: linear parsers measure at most
//! about 4× here (short members cost more per byte than long strings; up to about 7× for
//! members kept in a map, n·log n), while the quadratic
//! duplicate-name check this file was written against measured 90× to 460× in the same
//! debug build (see each test), growing with the input.
//!
//! Its own test binary: its measurements take turns, and no other test's threads share its
//! process while it measures. One module per family of inputs: tokens and proofs
//! (`tokens`), JSON documents from remote parties (`documents`), peer identity
//! (`peer`), policies (`policies`), request paths (`routes`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../peer_support/mod.rs"]
mod peer_support;
#[path = "../support/mod.rs"]
mod support;

mod documents;
mod peer;
mod policies;
mod routes;
mod tokens;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The largest worst/normal ratio a linear parser may show.
const BOUND: f64 = 12.0;

/// Samples per input; the minimum of each is compared.
const SAMPLES: usize = 25;

/// Samples taken however long they last.
const MIN_SAMPLES: usize = 7;

/// Fails when `worst` costs more than [`BOUND`] times `normal`.
fn assert_linear(what: &str, normal: &mut dyn FnMut(), worst: &mut dyn FnMut()) {
    // One measurement at a time: the tests of this binary run on parallel threads.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    // Enough repetitions that one sample of the normal input takes about 2 ms.
    let once = time(normal, 1);
    let reps = (Duration::from_millis(2).as_nanos() / once.as_nanos().max(1)).clamp(1, 10_000);
    let reps = u32::try_from(reps).unwrap();
    let (mut best_normal, mut best_worst) = (Duration::MAX, Duration::MAX);
    let started = Instant::now();
    for sample in 0..SAMPLES {
        best_normal = best_normal.min(time(normal, reps));
        best_worst = best_worst.min(time(worst, reps));
        // Large documents: fewer samples, each already long enough to be steady.
        if sample >= MIN_SAMPLES && started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let ratio = best_worst.as_secs_f64() / best_normal.as_secs_f64();
    eprintln!("{what}: worst/normal = {ratio:.2} ({best_worst:?} / {best_normal:?} per {reps})");
    assert!(
        ratio <= BOUND,
        "{what}: worst input costs {ratio:.1}× a normal one of the same size"
    );
}

/// How many parts of the input [`assert_scales_linearly`] compares the whole with.
const PARTS: usize = 32;

/// Fails when `parse(input(size))` costs more than [`BOUND`] times [`PARTS`] calls of
/// `parse(input(size / PARTS))`: a quadratic parser measures about 32× here, a linear one
/// about 1×. For inputs whose every item costs more than any normal input of the same size
/// (an allocation per item), where only the growth with size can be compared.
fn assert_scales_linearly(
    what: &str,
    input: impl Fn(usize) -> String,
    parse: impl Fn(&str),
    size: usize,
) {
    let (whole, part) = (input(size), input(size / PARTS));
    assert!(whole.len() > (PARTS - 1) * part.len(), "{what}: sizes");
    assert_linear(
        what,
        &mut || {
            for _ in 0..PARTS {
                parse(&part);
            }
        },
        &mut || parse(&whole),
    );
}

fn time(f: &mut dyn FnMut(), reps: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed()
}

/// `open`, then `item(0)`, `item(1)`, … joined by commas until the text reaches `size`
/// bytes, then `close`.
fn grow(open: &str, item: impl Fn(usize) -> String, close: &str, size: usize) -> String {
    let mut text = open.to_owned();
    let mut i = 0;
    while text.len() + close.len() < size {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&item(i));
        i += 1;
    }
    text.push_str(close);
    text
}

/// The `i`-th of the shortest distinct member names of one length (3 characters: 238,328
/// of them), so the most members fit and every pair of names needs a full comparison.
fn name(i: usize) -> String {
    const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    [i / (62 * 62), i / 62, i]
        .iter()
        .map(|d| char::from(DIGITS[d % 62]))
        .collect()
}

fn member(i: usize) -> String {
    format!(r#""{}":0"#, name(i))
}

/// The same names with every character escaped, so each one must be decoded and copied.
fn escaped_member(i: usize) -> String {
    let name: String = name(i)
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    format!(r#""{name}":0"#)
}

/// A string element as long as a member, the shape of `x5c`, `groups` or `roles` arrays.
fn element(i: usize) -> String {
    format!(r#""e{}""#, name(i))
}

/// Arrays nested up to meshguard's depth bound (16, counting the enclosing objects).
fn nested(_: usize) -> String {
    format!("{}0{}", "[".repeat(12), "]".repeat(12))
}

/// A JSON object opening with `open` whose bulk is the array `array` of string elements, up
/// to `size` bytes: the normal input of a document of that size.
fn normal_object(open: &str, array: &str, size: usize) -> String {
    grow(&format!(r#"{open}"{array}":["#), element, "]}", size)
}

/// The worst JSON objects opening with `open` that we can build up to `size` bytes, named
/// after `what`: many members, escaped names, nested arrays.
fn worst_objects(what: &str, open: &str, size: usize) -> [(String, String); 3] {
    [
        (
            format!("many {what} members"),
            grow(open, member, "}", size),
        ),
        (
            format!("escaped {what} members"),
            grow(open, escaped_member, "}", size),
        ),
        (
            format!("nested {what} arrays"),
            grow(&format!(r#"{open}"n":["#), nested, "]}", size),
        ),
    ]
}
